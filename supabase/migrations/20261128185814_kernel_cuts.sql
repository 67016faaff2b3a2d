-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Kernel cuts (79): the key's check after a wait asked only after a wait; settle_call's
--   bucket rest one statement
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer)
 RETURNS public.google_ai_booking
 LANGUAGE plpgsql
AS $function$
declare
  blocked_by text;   -- the earliest reopening so far, and why
  reopens_at timestamptz;
  recheck_at timestamptz;
  cause text;
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}'::text[];  -- the groups passed over in a first pass so far
  v_try public.google_ai_group_booking;  -- a candidate's answer: google_ai_book_group's, or a refusal in its shape
begin
  if p_model.model is null then
    return null; -- (an earlier step blocked the request)
  end if;
  -- A service caller's budgets, locked until the booking counts the request in them.
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model,
    p_output, p_class.name);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
  end if;

  -- The candidates, best first, each tier twice: the second pass waits for the groups the first passed
  -- over. What their unlocked counts already show (a cooldown, the day or the window full for
  -- everyone) is refused without taking their locks.
  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids,
                 case when p_model.bucket_share is null then p_model.rpm end, p_model.tpm, p_model.rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_tokens, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone, p_output);
      if v_try.outcome = 'booked' then
        exit when not v_candidate.waiting;
        -- (After waiting for the row, the key read before the wait must still serve the group: it may have
        -- changed meanwhile. Asked only then: an expression with a query is not a simple one, even when
        -- short-circuited.)
        if not exists (select 1 from public.google_ai_serving_keys(p_model.model, p_exclude_key_ids) s
                       where s.key_id = v_candidate.key_id and s.quota_group = v_candidate.quota_group) then
          raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
            using errcode = '40001';
        end if;
        exit;
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      -- Shown full: it reopens when its cooldown ends, after its next midnight plus the day guard (the first
      -- moments of a day still count for the day before, on a clock that may lag ours), or when the window
      -- lets p_tokens in for this requester (for one that others' shares keep slots from, later).
      v_try := row(v_candidate.full_by, null, null, case v_candidate.full_by
          when 'cooldown' then v_candidate.cooldown_until
          when 'rpd' then public.google_ai_midnight_after_in(p_at, v_candidate.day_zone)
                          + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
          else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model.model, p_at,
            public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), p_model.rpm,
            p_model.tpm, p_tokens, p_class.name, p_caller.name) end, null,
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
      perform public.google_ai_count_budgets(null, null, p_caller.name, p_at, null,
        public.google_ai_request_counts(p_attempt), p_tokens, v_budget.worst, true);
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it). The
  -- window is a range closed on both sides, for the generic plan (15_request_log.sql says why).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_margin integer;
  v_margin_tokens bigint;
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_room_until > v_now and p_att.quota_group is not null and p_room_requests = 0 and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
    v_rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
  end if;
  if v_model.bucket_share is not null and v_rpm > 0 then
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_room_until - 60000.0 / v_model.rpm * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_room_until + v_step.tolerance;
  elsif p_room_until > v_now and p_att.quota_group is not null then
    select 2 * count(*) filter (where a.status = 'reserved')
        + count(*) filter (where a.admitted_at > p_att.admitted_at),
      coalesce(2 * sum(a.estimated_tokens) filter (where a.status = 'reserved'), 0)
        + coalesce(sum(a.estimated_tokens) filter (where a.admitted_at > p_att.admitted_at), 0)
    into v_margin, v_margin_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity';
    if p_room_requests <= v_margin or p_room_tokens <= v_margin_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;
