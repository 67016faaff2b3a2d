-- Booking a request: google_ai_book_best_group tries the groups that may serve the model in rank order,
-- each through google_ai_book_group (45_group_booking.sql) under its counter row's lock.
set check_function_bodies = off;

-- A request's booking, as google_ai_book_best_group answers it. (A named type, not OUT parameters: a
-- function's OUT parameters are read from its catalog row again on every call.)
CREATE TYPE public.google_ai_booking AS (
    booked_group text,
    minute_bucket timestamp with time zone,
    day_bucket date,
    blocked_by text,
    reopens_at timestamp with time zone,
    recheck_at timestamp with time zone,
    cause text,
    admitted_at timestamp with time zone,
    quota jsonb,
    key_id uuid,
    key_alias text,
    env_var_name text,
    booked_usd numeric,
    budget_period text
);

-- A service caller's budget (google_ai_caller_budgets, 32_budgets.sql) as a booking at p_at sees it, its
-- row locked until the booking counts the request in it (google_ai_count_budgets): day, the owner's Pacific day
-- (every budget's, whichever provider's day the model's RPD counts in), null when the request's caller
-- has no budget or is a client's (its client_id: its token carries its budgets); worst, what the call may
-- cost where the caller has a budget in money (google_ai_worst_call_cost: the request's output_tokens,
-- the answer it is sent with, at the tiers of its class p_class); cause, period and reopens_at: the
-- budget's verdict (google_ai_budget_verdict) on the request (p_request: its caller, client, tokens,
-- attempt and requests) to the model p_model (its canonical name, which its price is read by). (The
-- name, not the model's row: a row passed is copied at the call, counted, and only its name is read.)
CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_request public.google_ai_request,
    p_model text, p_class text, p_at timestamp with time zone, OUT day date,
    OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text) RETURNS record
    LANGUAGE plpgsql
    AS $$
declare
  v_row public.google_ai_caller_budgets;
begin
  if p_request.client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that judges a budget costs more
  -- to start than this one. The row as one whole-row value: one column to set up, not one per column of
  -- the row; counted, about 16k less.)
  v_row := (select b from public.google_ai_caller_budgets b where b.caller = p_request.caller for update);
  if v_row.caller is null then
    return;
  end if;
  day := public.google_ai_pacific_day(p_at);
  if num_nonnulls(v_row.daily_max_usd, v_row.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model, p_request.estimated_tokens, p_request.output_tokens,
      p_class);
  end if;
  select v.cause, v.period, v.reopens_at into cause, period, reopens_at
  from public.google_ai_budget_verdict(public.google_ai_budget_of(v_row), p_at,
    public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens, worst) v;
end
$$;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time), with the quota it leaves and the key
-- that serves the group (read with the candidates, before the row's lock). A group the unlocked counts of
-- google_ai_candidate_groups already show full (full_by: a cooldown, the day, or the minute's window, for
-- everyone) is refused without its lock: it reopens at the cooldown's end, after the provider's midnight plus
-- the day guard (the first moments of a day still count for the day before, on a clock that may lag ours), or
-- when the window lets its tokens in for this requester (google_ai_window_reopens_for: later for a requester that
-- others' shares keep slots from). Within a priority tier a group whose row another reservation holds is
-- passed over (SKIP LOCKED) so concurrent callers spread across groups; before moving to a lower tier the
-- passed-over groups are tried again in a second pass, waiting for their locks, so a busy row is never
-- mistaken for a full one. The only group is waited for at once.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model; a service caller's budget (google_ai_caller_budgets) spent: caller_budget (its cause
-- budget, or spend_budget for money, and budget_period: day or month); booked_usd: the worst case booked
-- in its budget in money, for the request's output_tokens of answer (the answer it is sent with).
-- A service caller's budgets are locked first, until the booking counts the request in them. After waiting for
-- a group's row, the key read before the wait must still serve the group (two exits in the loop: a condition
-- that holds a query is run by the executor even when it need not be).
-- A null model (an earlier step blocked the request) books nothing and answers nulls. p_model, p_class,
-- p_caller, p_request: the request's model row (limits after the margin: google_ai_request_limits), class
-- row, caller and the request itself (its tokens, answer, requests, attempt and the keys it excludes),
-- each whole and handed down whole to the rules (google_ai_book_group). A group is passed over for
-- its counts before its lock by the row's RPM and RPD, but by no RPM where it is a bucket (bucket_share: its
-- schedule decides under the lock) and by neither where the row follows its provider (provider_limits 'follow':
-- each group's are the ones the provider stated for it, read under the lock, google_ai_followed_limits).
-- (Computed once, v_rpm and v_rpd: a SQL helper taking the row whole, inlined into the candidates' statement,
-- cost about 30k instructions more.) (A booking's answer is assigned, not selected into: a select ... into is a
-- statement of its own, counted about 15k instructions.)
CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request,
    p_now timestamp with time zone, p_at timestamp with time zone) RETURNS public.google_ai_booking
    LANGUAGE plpgsql
    AS $$
declare
  blocked_by text;   -- the earliest reopening so far, and why
  reopens_at timestamptz;
  recheck_at timestamptz;
  cause text;
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}'::text[];  -- the groups passed over in a first pass so far
  v_try public.google_ai_group_booking;  -- a candidate's answer: google_ai_book_group's, or a refusal in its shape
  v_rpm integer := case when p_model.bucket_share is null and p_model.provider_limits is distinct from 'follow'
                        then p_model.rpm end;  -- the limits its groups are passed over by before their locks
  v_rpd integer := case when p_model.provider_limits is distinct from 'follow' then p_model.rpd end;
begin
  if p_model.model is null then
    return null; -- (an earlier step blocked the request)
  end if;
  v_budget := public.google_ai_caller_budget_at(p_request, p_model.model, p_class.name, p_at);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
  end if;

  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_request.exclude_key_ids,
                 v_rpm, p_model.tpm, v_rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_request, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone);
      if v_try.outcome = 'booked' then
        exit when not v_candidate.waiting;
        exit when (v_candidate.key_id, v_candidate.quota_group) in (select s.key_id, s.quota_group
          from public.google_ai_serving_keys(p_model.model, p_request.exclude_key_ids) s);
        raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
          using errcode = '40001';
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      v_try := row(v_candidate.full_by, null, null, case v_candidate.full_by
          when 'cooldown' then v_candidate.cooldown_until
          when 'rpd' then public.google_ai_midnight_after_in(p_at, public.google_ai_day_zone(p_model.model))
                          + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
          else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model, p_class, p_caller, p_at,
            public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
            p_request.estimated_tokens, p_request.requests) end, null,
        public.google_ai_refusal_cause(v_candidate.full_by), null, null)::public.google_ai_group_booking;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif v_try.outcome = 'booked' then -- (the loop's last candidate, and its answer; a refusal before it is dropped)
    if v_budget.day is not null then
      perform public.google_ai_count_budgets(p_caller, p_at, null, public.google_ai_request_counts(p_request.attempt)
        * p_request.requests, p_request.estimated_tokens, v_budget.worst, true);
    end if;
    return row(v_candidate.quota_group, v_try.minute_bucket, v_try.day_bucket, null, null, null, null,
      v_try.admitted_at, v_try.quota, v_candidate.key_id, v_candidate.key_alias, v_candidate.env_var_name,
      v_budget.worst, null)::public.google_ai_booking;
  end if;
  -- Asking again only helps before the reopening itself.
  return row(null, null, null, blocked_by, reopens_at,
    case when recheck_at >= reopens_at then null else recheck_at end,
    coalesce(cause, public.google_ai_refusal_cause(blocked_by)), null, null, null, null, null, null,
    null)::public.google_ai_booking;
end
$$;

-- A request of several requests at its provider (p_requests: an embedding batch whose provider counts
-- each input) that no wait can admit whole, so it is refused at once, before any lock (google_ai_admit_at
-- as too_large; google_ai_refusal_at answers this), naming the limit it passes: more than the model's
-- requests a minute (p_limits: its RPM after the margin, as the booking holds it), cause over_rpm, never
-- to be asked again as it is; or more than any group that may serve it has left of its provider's day,
-- cause over_rpd, to be asked again when the day turns (its midnight plus the day guard). Answers cause,
-- requests, max_requests, per (minute or day) and retry_at; null when neither holds and the booking decides
-- (it counts all of them at once, or none).
CREATE OR REPLACE FUNCTION public.google_ai_requests_over(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_day_left integer;
begin
  if coalesce(p_requests, 1) <= 1 or p_limits.model is null then
    return null;
  end if;
  if p_limits.rpm is not null and p_requests > p_limits.rpm then
    return jsonb_build_object('cause', 'over_rpm', 'requests', p_requests, 'max_requests', p_limits.rpm,
      'per', 'minute');
  end if;
  if p_limits.rpd is not null then
    v_day_left := (select max(greatest(0, p_limits.rpd - c.rpd_used))
                   from public.google_ai_candidate_groups(p_limits.model, p_exclude_key_ids, null, null, p_limits.rpd,
                          p_now) c);
    if p_requests > v_day_left then
      return jsonb_build_object('cause', 'over_rpd', 'requests', p_requests, 'max_requests', v_day_left, 'per', 'day',
        'retry_at', public.google_ai_midnight_after_in(p_now, public.google_ai_day_zone(p_limits.model))
                    + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond');
    end if;
  end if;
  return null;
end
$$;

COMMENT ON FUNCTION public.google_ai_requests_over(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[]) IS
    'A request of more requests than the model''s minute or any group''s day has left (over_rpm, over_rpd): its '
    'figures, refused at once as too_large; null when the booking decides.';

-- 'too_large' when a request (p_request) to a row that follows its provider (p_limits: google_ai_request_limits')
-- is larger than the widest window the groups serving it follow (google_ai_followed_widest), by the tests
-- google_ai_admit_at runs on a row that keeps its own (its tokens above the TPM, its output above the OTPM,
-- its input above the ITPM, its requests above what the minute or any group's day holds); else null.
-- Called by the admission only for a row that follows, so a row that keeps its own pays one comparison.
CREATE OR REPLACE FUNCTION public.google_ai_followed_too_large(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_request public.google_ai_request) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_limits public.google_ai_model_limits := public.google_ai_followed_widest(p_limits, p_request.exclude_key_ids);
begin
  return case when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                     is not null then coalesce(p_request.output_tokens, 0) else 0 end
                or (p_request.requests > 1 and public.google_ai_requests_over(p_now, v_limits, p_request.requests,
                      p_request.exclude_key_ids) is not null)
              then 'too_large' end;
end
$$;
