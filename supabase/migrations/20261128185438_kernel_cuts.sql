-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Kernel cuts (79): full_group_reopens_at, reopens_at, key_serves and paced_until said in
--   their one caller
set check_function_bodies = off;

drop function if exists "public"."google_ai_full_group_reopens_at"(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text);

drop function if exists "public"."google_ai_key_serves"(p_model text, p_exclude_key_ids uuid[], p_key_id uuid, p_quota_group text);

drop function if exists "public"."google_ai_paced_until"(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text);

drop function if exists "public"."google_ai_reopens_at"(p_limit text, p_now timestamp with time zone, p_zone text);

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
        -- (After waiting for the row, the key read before the wait must still serve the group: it may have
        -- changed meanwhile.)
        if v_candidate.waiting and not exists (select 1 from public.google_ai_serving_keys(p_model.model,
                                                 p_exclude_key_ids) s
                                               where s.key_id = v_candidate.key_id
                                                 and s.quota_group = v_candidate.quota_group) then
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

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer)
 RETURNS public.google_ai_booking_verdict
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  paced_until timestamptz; spread_at timestamptz; live bigint[]; owned bigint[]; kept jsonb;
  input_until timestamptz; output_until timestamptz;  -- its answer's fields
  v_class text := p_class.name;
  v_caller text := p_caller.name;
  v_share record;
  v_win integer;                    -- a share's window
  v_reserved_rpd bigint := 0;       -- the day shares of all owners
  v_held_rpm bigint := 0;           -- what the others' shares keep: of the window, and of each day
  v_held bigint[] := '{0,0,0}'::bigint[];
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[]; v_pace_used integer[]; v_pace_next integer[];
  v_usable integer;                -- a paced share's usable day
  v_kept bigint[] := '{0,0,0,0}'::bigint[];   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict public.google_ai_outcome;
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = v_class, false) as for_class,
           coalesce(s.priority_class = v_class, false) or coalesce(s.caller = v_caller, false) as is_owned,
           public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_at.day) as day
    from public.google_ai_quota_shares s
    left join unnest(p_counter.share_use) u on u.share_id = s.id
    where s.model = p_model.model
    order by s.id
  loop
    v_win := case when v_share.reserved_rpm is null or (v_share.is_owned and p_model.spread_burst is null) then 0
                  else (public.google_ai_ring_at(p_at.at, p_at.minute, v_share.ring_low, v_share.ring,
                          v_share.window_requests, null)).sum_requests end;
    live := live || v_share.id;
    v_reserved_rpd := v_reserved_rpd + v_share.rpd_share;
    if v_share.is_owned then
      owned := owned || v_share.id;
      v_in_share := v_in_share or coalesce(v_win < v_share.reserved_rpm, false);
      if v_share.pace_burst is not null then
        v_pace_burst := v_pace_burst || v_share.pace_burst;
        v_pace_kept := v_pace_kept || v_share.rpd_share;
        v_pace_used := v_pace_used || v_share.day[1];
        v_pace_next := v_pace_next || v_share.day[2];
      end if;
    else
      v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_win);
      v_held := array[v_held[1] + greatest(0, v_share.rpd_share - v_share.day[1]),
                      v_held[2] + greatest(0, v_share.rpd_share - v_share.day[2]),
                      v_held[3] + greatest(0, v_share.rpd_share - v_share.day[3])];
    end if;
    v_kept := case when v_share.for_class
                   then array[v_kept[1], v_kept[2] + coalesce(v_share.reserved_rpm, 0), v_kept[3],
                              v_kept[4] + v_share.rpd_share]
                   else array[v_kept[1] + coalesce(v_share.reserved_rpm, 0), v_kept[2],
                              v_kept[3] + v_share.rpd_share, v_kept[4]] end;
  end loop;

  if v_class is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  -- Its pace: each paced share it owns must allow one more of the day (usable: the group's day less what
  -- the other owners' shares keep); else it goes when the last one allows it: today, else tomorrow
  -- (counting what the guard before midnight booked ahead), else later; the days are the provider's.
  for i in 1 .. case when v_pace_burst is null or p_model.rpd is null then 0 else cardinality(v_pace_burst) end loop
    v_usable := p_model.rpd - (v_reserved_rpd - v_pace_kept[i]);
    continue when v_pace_used[i] + 1 <= public.google_ai_pace_allowance(p_at.at, p_at.day, v_pace_burst[i], v_usable,
      p_at.zone);
    paced_until := greatest(paced_until, coalesce(
      public.google_ai_pace_opens_at(p_at.day, v_pace_used[i], v_pace_burst[i], v_usable, p_at.zone),
      public.google_ai_pace_opens_at(p_at.day + 1, v_pace_next[i], v_pace_burst[i], v_usable, p_at.zone),
      public.google_ai_day_start_in(p_at.day + 2, p_at.zone)));
  end loop;
  if num_nonnulls(p_model.bucket_share, p_model.itpm, p_model.otpm) = 0 then
    -- (No bucket, Google's and OpenAI's rows: the spread alone, as google_ai_schedule_place has it, one call less.)
    v_step := public.google_ai_spread_step(p_model.spread_burst, p_at.minute, p_model.rpm, p_model.tpm, p_tokens);
    if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_at.at
       and public.google_ai_spread_holds(p_model.model, p_class.rank, p_at.at) then
      spread_at := p_counter.spread_until - v_step.tolerance;
    end if;
  else
    v_step := public.google_ai_schedule_place(p_model, p_class.rank, p_counter.spread_until, p_counter.input_until,
      p_counter.output_until, p_at.at, p_at.minute, p_tokens, p_output, v_in_share);
    spread_at := v_step.place; input_until := v_step.input_until; output_until := v_step.output_until;
  end if;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_caller, p_at, v_held_rpm, v_held, paced_until,
    spread_at, v_step.limit_name);
  return row(v_verdict.outcome, v_verdict.cause, v_verdict.window_full, paced_until, spread_at, v_step.step,
    v_held[1], live, owned, kept, input_until, output_until)::public.google_ai_booking_verdict;
end
$function$
;
