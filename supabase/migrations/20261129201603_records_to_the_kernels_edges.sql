-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The booking takes the request whole; a ring's corrections take the ring, the owners' use
--   the counter as of the booking, a window's reopening the request's model, class and caller rows, a
--   housekeeping step its task (issue 91)
set check_function_bodies = off;

drop function if exists public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_request public.google_ai_request, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_rules public.google_ai_booking_verdict);

drop function if exists public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at);

drop function if exists public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone);

drop function if exists public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, p_requests integer);

drop view if exists "public"."google_ai_shares_today";

drop function if exists public.google_ai_housekeeping_steps(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings);

drop function if exists "public"."google_ai_book_best_group"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, p_requests integer);

drop function if exists "public"."google_ai_book_group"(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer, p_requests integer);

drop function if exists "public"."google_ai_booking_outcome"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer);

drop function if exists "public"."google_ai_booking_rules"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, p_requests integer);

drop function if exists "public"."google_ai_caller_budget_at"(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, p_requests integer, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text);

drop function if exists "public"."google_ai_count_budgets"(p_token_id uuid, p_client_id uuid, p_caller text, p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean);

drop function if exists "public"."google_ai_housekeeping_step"(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone, p_fn text, p_rel text, p_key text, p_condition text, p_cutoff timestamp with time zone, p_sort text);

drop function if exists "public"."google_ai_paced_until"(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text, p_requests integer);

drop function if exists "public"."google_ai_schedule_place"(p_model public.google_ai_model_limits, p_rank smallint, p_spread_until timestamp with time zone, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_tokens integer, p_output integer, p_in_share boolean, OUT step interval, OUT place timestamp with time zone, OUT limit_name text, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone);

drop function if exists "public"."google_ai_share_use_counted"(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_requests integer, p_day date, p_near_end boolean, p_near_start boolean);

drop function if exists "public"."google_ai_window_reopens_for"(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text, p_requests integer);

drop type if exists "public"."google_ai_booking_verdict";

drop function if exists "public"."google_ai_housekeeping_steps"(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings);

drop view if exists "public"."google_ai_shares_today";

drop function if exists "public"."google_ai_ring_at"(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_housekeeping_task"') is null then
    create type "public"."google_ai_housekeeping_task" as ("name" text, "rel" text, "fn" text, "key" text, "condition" text, "cutoff" timestamp with time zone, "sort" text);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_booking_verdict"') is null then
    create type "public"."google_ai_booking_verdict" as ("outcome" text, "cause" text, "window_full" boolean, "paced_until" timestamp with time zone, "spread_at" timestamp with time zone, "spread_step" interval, "held_rpd" bigint, "live" bigint[], "owned" bigint[], "kept" jsonb, "input_until" timestamp with time zone, "output_until" timestamp with time zone, "spread_limit" text);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_now timestamp with time zone, p_at timestamp with time zone)
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_now timestamp with time zone, p_skip_locked boolean, p_zone text)
 RETURNS public.google_ai_group_booking
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the booking, this request in its window
  v_rules public.google_ai_booking_verdict;  -- what the rules say (google_ai_booking_rules)
  v_minute timestamptz;  -- the calendar minute it counts in
  v_times record;      -- a refusal's (google_ai_refusal_times)
  v_followed jsonb;    -- a row that follows its provider: the limits the provider stated, as applied
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      return row('skipped', null, null, null, null, null, null, null)::public.google_ai_group_booking;
    end if;
    -- (A raise applies to what is booked, the window holds it; a lowering refuses nothing admitted, it counts it.)
    if p_model.provider_limits = 'follow' then
      p_model := public.google_ai_followed_limits(p_model, v_row.stated_limits);
      v_followed := coalesce(to_jsonb(v_row.stated_limits), '[]'::jsonb);
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_at := public.google_ai_counter_at(v_row, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true,
      p_request.requests, p_request.estimated_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, p_request, v_row, v_at);
    v_minute := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if v_rules.outcome <> 'booked' then
      v_times := public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at,
        p_request.estimated_tokens, p_request.requests);
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = v_minute then c.rpm_used else 0 end
                        + p_request.requests,
      tpm_used        = case when c.minute_bucket = v_minute then c.tpm_used else 0 end
                        + p_request.estimated_tokens,
      rpd_used        = v_at.counts[1] + p_request.requests,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then p_request.requests else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then p_request.requests else 0 end,
      ring_low        = v_at.ring_low,
      ring            = v_at.ring,
      window_requests = v_at.sum_requests,
      window_tokens   = v_at.sum_tokens,
      window_at       = v_at.at,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_at.at, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned,
                                    v_at, p_request.requests) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    return row('booked', v_minute, v_at.day, null, null, null, v_at.at, public.google_ai_booked_quota(p_quota_group,
      p_model, v_at, p_request.requests, v_rules.kept, v_followed))::public.google_ai_group_booking;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
  end;
  -- Refused (the lock given back): the rules' outcome and cause, and the times set above.
  return row(v_rules.outcome, v_minute, v_at.day, v_times.reopens_at, v_times.recheck_at, v_rules.cause, null,
    null)::public.google_ai_group_booking;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_request public.google_ai_request, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_rules public.google_ai_booking_verdict)
 RETURNS public.google_ai_limit_verdict
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class is unused by design, handed down whole for the rule that reads it next,
-- as said above; extra_warnings says nothing else in a body this short.)
declare
  v_requests integer := p_request.requests;
  -- The day has no room for this requester's requests (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + v_requests > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + v_requests > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + v_requests > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + v_requests > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + v_requests > p_model.rpd)
    or (p_at.near_start and p_at.counts[3] + v_requests > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  if v_day_full then
    return row('rpd', case when v_day_spent then 'day_exhausted' else 'share_kept' end,
      v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif p_rules.paced_until is not null then
    return row('pace', 'pace', v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif v_rpm_full or v_tpm_full then
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    return row(case when v_rpm_full then 'rpm' else 'tpm' end,
      case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
           else 'share_kept' end, true)::public.google_ai_limit_verdict;
  elsif p_rules.spread_at is not null then
    return row(p_rules.spread_limit, 'spread', false)::public.google_ai_limit_verdict;
  end if;
  return row('booked', null, false)::public.google_ai_limit_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at)
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
  v_kept bigint[] := '{0,0,0,0}'::bigint[];   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict public.google_ai_limit_verdict;
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
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_model, p_at, p_request, v_reserved_rpd, v_pace_burst, v_pace_kept,
      v_pace_used, v_pace_next);
  end if;
  if num_nonnulls(p_model.bucket_share, p_model.itpm, p_model.otpm) = 0 then
    v_step := public.google_ai_spread_step(p_model.spread_burst, p_at.minute, p_model.rpm, p_model.tpm,
      p_request.estimated_tokens);
    if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_at.at
       and public.google_ai_spread_holds(p_model.model, p_class.rank, p_at.at) then
      spread_at := p_counter.spread_until - v_step.tolerance;
    end if;
  else
    v_step := public.google_ai_schedule_place(p_model, p_class, p_counter, p_at, p_request, v_in_share);
    spread_at := v_step.place; input_until := v_step.input_until; output_until := v_step.output_until;
  end if;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_request, p_at, v_held_rpm, v_held,
    row(null, null, null, paced_until, spread_at, v_step.step, v_held[1], live, owned, kept, input_until,
      output_until, v_step.limit_name)::public.google_ai_booking_verdict);
  return row(v_verdict.outcome, v_verdict.cause, v_verdict.window_full, paced_until, spread_at, v_step.step,
    v_held[1], live, owned, kept, input_until, output_until, v_step.limit_name)::public.google_ai_booking_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_request public.google_ai_request, p_model text, p_class text, p_at timestamp with time zone, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_count_budgets(p_caller public.google_ai_caller, p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token_id uuid := p_caller.token_id;
  v_client_id uuid := p_caller.client_id;
  v_day date := coalesce(case when v_client_id is null then p_day end, public.google_ai_pacific_day(p_at));
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_usd numeric := coalesce(p_usd, 0);
begin
  if p_requests = 0 and p_tokens = 0 and v_usd = 0 and not p_book then
    return;
  end if;
  if v_token_id is not null then
    update public.google_ai_tokens t set (requests_used, tokens_used, spent_usd) = (select n.requests, n.tokens,
        n.spent_usd from public.google_ai_budget_counted(public.google_ai_budget_of(t), v_day, p_requests, p_tokens,
        v_usd, p_book) n), last_used_at = case when p_book then p_at else t.last_used_at end
    where t.id = v_token_id;
    update public.google_ai_clients c set (day_bucket, requests_today, tokens_today, spent_today_usd, month_bucket,
        spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket, n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(c), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where c.id = v_client_id and (p_book or c.day_bucket = v_day or c.month_bucket = v_month);
  elsif v_client_id is null then
    update public.google_ai_caller_budgets b set (day_bucket, requests_today, tokens_today, spent_today_usd,
        month_bucket, spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket,
        n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(b), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where b.caller = p_caller.name and (p_book or b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_step(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone, p_task public.google_ai_housekeeping_task)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_result jsonb;
  v_message text;
  v_state text;
begin
  begin
    if p_task.fn is not null then
      execute format('select public.%I($1, $2, $3)', 'google_ai_housekeeping_' || p_task.fn)
        into v_result using p_now, p_settings, p_deadline;
    elsif pg_catalog.to_regclass(p_task.rel) is null then
      v_result := jsonb_build_object('skipped', 'no ' || p_task.rel || ' here: pg_cron is not installed');
    else
      v_result := public.google_ai_delete_batched(pg_catalog.to_regclass(p_task.rel), p_task.key, p_task.condition,
          p_task.cutoff, p_settings.batch_size, p_settings.max_batches, p_deadline, p_task.sort)
        || jsonb_build_object('older_than', p_task.cutoff);
    end if;
    v_result := v_result || jsonb_build_object('status',
      case when v_result ? 'skipped' then 'skipped' else 'succeeded' end);
  exception when others then
    get stacked diagnostics v_message = message_text, v_state = returned_sqlstate;
    v_result := jsonb_build_object('status', 'failed', 'sqlstate', v_state,
      'error', public.google_ai_sanitize_error(v_message));
  end;
  return v_result || jsonb_build_object(
    'ms', round(extract(epoch from (pg_catalog.clock_timestamp() - v_started)) * 1000, 1));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_model public.google_ai_model_limits, p_at public.google_ai_counter_at, p_request public.google_ai_request, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[])
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_day date := p_at.day;
  v_zone text := p_at.zone;
  v_rpd integer := p_model.rpd;
  v_requests integer := p_request.requests;
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when v_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := v_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + v_requests > public.google_ai_pace_allowance(p_at.at, v_day, p_burst[i], v_usable, v_zone) then
      -- The first moment of the day (s to e, L long) at which the allowance, burst + floor(usable x (t - s) / L),
      -- reaches need = used + requests - burst (to the microsecond): s + ceil(need x L / usable), within the day
      -- exactly when need < usable. Today's if any, else tomorrow's, else the day after begins.
      v_at := greatest(v_at, coalesce((
        select min(case when x.need <= 0 then d.s when x.need < v_usable
                        then d.s + ceil(x.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / v_usable)
                                   * interval '1 microsecond' end)
        from (values (v_day, p_used[i] + v_requests - p_burst[i]), (v_day + 1, p_next[i] + v_requests - p_burst[i]))
               x(day, need),
             lateral (select public.google_ai_day_start_in(x.day, v_zone) as s,
                             public.google_ai_day_start_in(x.day + 1, v_zone) as e) d),
        public.google_ai_day_start_in(v_day + 2, v_zone)));
    end if;
  end loop;
  return v_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0)
 RETURNS public.google_ai_ring
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  -- (date_part: a double is exact to the microsecond here, and far cheaper than extract's numeric.)
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_us integer;
  v_i integer;
begin
  if v_now is not null and (ring is null or ring_low is null or coalesce(sum_requests, 0) = 0
                            or cardinality(ring) <> 4 * v_span or v_now - ring_low >= v_span) then
    -- Nothing counted, the guard changed, or a span or more passed since it moved (the seconds up to
    -- now - span have left whatever their times: their last admission was at most the guarded window
    -- ago): the ring starts again at p_at.
    select r.ring_low, r.ring, r.sum_requests, r.sum_tokens into ring_low, ring, sum_requests, sum_tokens
    from public.google_ai_ring_restarted(p_at, p_window, v_span, ring_low, ring, sum_requests, sum_tokens) r;
  end if;
  if ring is null then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  -- Up to the current second: empty seconds are passed, full ones let go as their admissions leave.
  while ring_low < v_now loop
    v_i := (ring_low % v_span)::integer * 4;
    if ring[v_i + 1] > 0 then
      if public.google_ai_ring_time(ring_low, ring[v_i + 4]) + p_window <= p_at then
        sum_requests := sum_requests - ring[v_i + 1];
        sum_tokens := sum_tokens - ring[v_i + 2];
        ring[v_i + 1 : v_i + 4] := '{0,0,0,0}';
      else
        if ring[v_i + 3] < ring[v_i + 4] and public.google_ai_ring_time(ring_low, ring[v_i + 3]) + p_window <= p_at then
          sum_requests := sum_requests - 1;
          ring[v_i + 1] := ring[v_i + 1] - 1;
          ring[v_i + 3] := ring[v_i + 4];
        end if;
        exit; -- (every later second's admissions are later than this one's last)
      end if;
    end if;
    ring_low := ring_low + 1;
  end loop;
  if p_requests = 0 and p_tokens = 0 then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  if p_requests > 0 and p_tokens >= 0 and v_now is not null then
    -- A booking now (nearly every call): the lines below in smaller expressions (they cost by size: 90k less).
    v_i := (v_now % v_span)::integer * 4;
    v_us := round((date_part('epoch', p_at) - v_now) * 1000000)::integer;
    ring[v_i + 1 : v_i + 4] := array[ring[v_i + 1] + p_requests,
      ring[v_i + 2] + case when sum_tokens is not null then p_tokens else 0 end,
      case when ring[v_i + 1] = 0 then v_us else least(ring[v_i + 3], v_us) end, greatest(ring[v_i + 4], v_us)];
    sum_requests := sum_requests + p_requests;
    sum_tokens := sum_tokens + p_tokens;
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  return public.google_ai_ring_counted(row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring,
    p_window, p_at, p_requests, p_tokens, false);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean)
 RETURNS public.google_ai_ring
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_second bigint := floor(date_part('epoch', p_at))::bigint;
  v_us integer := round((date_part('epoch', p_at) - v_second) * 1000000)::integer;
  v_i integer := (v_second % v_span)::integer * 4;
  ring integer[];
  v_count integer; v_tokens integer;  -- the second's count and tokens after this
begin
  if p_ring.ring is null or (p_requests = 0 and p_tokens = 0) or v_second < p_ring.ring_low
     or v_second >= p_ring.ring_low + v_span or (p_correction and p_ring.ring[v_i + 1] = 0) then
    return p_ring;
  end if;
  ring := p_ring.ring;
  v_count := case when p_requests > 0 or v_us >= ring[v_i + 3] then greatest(0, ring[v_i + 1] + p_requests)
                  else ring[v_i + 1] end;
  v_tokens := case when p_ring.sum_tokens is not null then greatest(0, ring[v_i + 2] + p_tokens)
                   else ring[v_i + 2] end;
  p_ring.sum_requests := p_ring.sum_requests + v_count - ring[v_i + 1];
  p_ring.sum_tokens := p_ring.sum_tokens + v_tokens - ring[v_i + 2];
  -- The second written as one slice: element by element, PL/pgSQL unpacks the whole array and packs it
  -- again (counted: about 40k instructions more a booking). Its first and last times: a booking's when it
  -- is the second's first, else the earliest and latest; a request given back leaves the last.
  ring[v_i + 1 : v_i + 4] := case
    when v_count = 0 then '{0,0,0,0}'::integer[]
    when p_requests > 0 and v_count = p_requests then array[v_count, v_tokens, v_us, v_us]
    when p_requests > 0 then array[v_count, v_tokens, least(ring[v_i + 3], v_us), greatest(ring[v_i + 4], v_us)]
    when p_requests < 0 then array[v_count, v_tokens, ring[v_i + 4], ring[v_i + 4]]
    else array[v_count, v_tokens, ring[v_i + 3], ring[v_i + 4]] end;
  return row(p_ring.ring_low, ring, p_ring.sum_requests, p_ring.sum_tokens)::public.google_ai_ring;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_schedule_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_request public.google_ai_request, p_in_share boolean, OUT step interval, OUT place timestamp with time zone, OUT limit_name text, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_now timestamptz := p_at.at;
  v_window interval := p_at.minute;
  v_tokens integer := p_request.estimated_tokens;
  v_output integer := coalesce(p_request.output_tokens, 0);
  v_step record;
  v_in record;
  v_out record;
begin
  v_step := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_model.rpm * p_model.bucket_share))::integer end, v_window, p_model.rpm, p_model.tpm,
    v_tokens);
  step := v_step.step;
  limit_name := v_step.limit_name;
  if v_step.step is not null and p_counter.spread_until - v_step.tolerance > v_now
     and (p_model.bucket_share is not null
          or (not p_in_share and public.google_ai_spread_holds(p_model.model, p_class.rank, v_now))) then
    place := p_counter.spread_until - v_step.tolerance;
  end if;
  if p_model.itpm is null and p_model.otpm is null then
    return;
  end if;
  v_in := public.google_ai_bucket_take(p_counter.input_until, v_now, v_window, p_model.itpm, p_model.bucket_share,
    v_tokens - case when p_model.booked_output_tokens is not null then v_output else 0 end);
  v_out := public.google_ai_bucket_take(p_counter.output_until, v_now, v_window, p_model.otpm, p_model.bucket_share,
    v_output);
  if greatest(v_in.opens_at, v_out.opens_at) > coalesce(place, '-infinity') then
    place := greatest(v_in.opens_at, v_out.opens_at);
    limit_name := 'tpm';
  end if;
  -- (Written only when the request is booked: a refused booking writes nothing.)
  input_until := v_in.until;
  output_until := v_out.until;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at public.google_ai_counter_at, p_requests integer)
 RETURNS public.google_ai_share_use[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_use public.google_ai_share_use[] := '{}'::public.google_ai_share_use[];
  v_ids bigint[] := p_live;
  v_day_requests integer := p_requests;
  v_at timestamptz := p_at.at;  -- a booking's: the ring moves on to it
  v_admitted_at timestamptz;  -- a release's
  v_id bigint;
  v_old public.google_ai_share_use;
  v_new public.google_ai_share_use;
  v_days integer[];
  v_ring record;
begin
  if v_ids is null then
    -- A release. (The ids apart, so that the loop's expression stays a simple one, not a query.)
    v_ids := array(select u.share_id from unnest(p_use) u);
    v_day_requests := case when p_requests < 0 then p_requests else -1 end;
    v_admitted_at := v_at;
    v_at := null;
  end if;
  foreach v_id in array v_ids loop
    v_old := null;
    for i in 1 .. coalesce(cardinality(p_use), 0) loop
      if (p_use[i]).share_id = v_id then
        v_old := p_use[i];
        exit;
      end if;
    end loop;
    if not coalesce(v_id = any(p_owned), false) or (v_day_requests < 0 and v_old.share_id is null) then
      if v_old.share_id is not null then
        v_use := v_use || v_old;
      end if;
      continue;
    end if;
    -- (A booking moves the ring on, keeping its fields loose; a release corrects its admission's second.)
    v_ring := case when v_admitted_at is null
                   then public.google_ai_ring_at(v_at, p_at.minute, v_old.ring_low, v_old.ring, v_old.window_requests,
                          null, p_requests, 0)
                   else public.google_ai_ring_counted(row(v_old.ring_low, v_old.ring, v_old.window_requests,
                          null)::public.google_ai_ring, p_at.minute, v_admitted_at, p_requests, 0, true) end;
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if v_day_requests > 0 or v_old.day_bucket = p_at.day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_at.day);
      v_new.day_bucket := p_at.day;
      v_new.day_used := greatest(0, v_days[1] + v_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_at.near_end then v_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_at.near_start then v_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer, p_requests integer DEFAULT 1)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_ring record;
  -- The others' RPM shares: what each keeps, what its owner used of the window, its ring (a row each).
  v_kept integer[];
  v_used integer[];
  v_rings integer[];
  v_span integer;
  v_left_requests integer;
  v_left_tokens bigint;
  v_i integer;
  v_us integer;
  v_gone integer;
  v_held integer;
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_model.limit_pool, p_model.model);
  v_ring := public.google_ai_ring_at(p_now, p_window, v_row.ring_low, v_row.ring, v_row.window_requests,
    v_row.window_tokens);
  if v_ring.ring_low is null then
    return null;
  end if;
  v_span := cardinality(v_ring.ring) / 4;
  select coalesce(array_agg(s.reserved_rpm), '{}'), coalesce(array_agg(r.sum_requests), '{}'),
         coalesce(array_agg(r.ring), '{}')
    into v_kept, v_used, v_rings
  from public.google_ai_quota_shares s
  left join unnest(v_row.share_use) u on u.share_id = s.id
  cross join lateral public.google_ai_ring_at(p_now, p_window, u.ring_low, u.ring, u.window_requests, null) r
  where s.model = p_model.model and s.reserved_rpm is not null and p_model.rpm is not null
    and not (coalesce(s.priority_class = p_class.name, false) or coalesce(s.caller = p_caller.name, false));

  v_left_requests := v_ring.sum_requests;
  v_left_tokens := v_ring.sum_tokens;
  for k in 0 .. v_span - 1 loop
    v_s := v_ring.ring_low + k;
    v_i := (v_s % v_span)::integer * 4;
    continue when v_ring.ring[v_i + 1] = 0;
    -- Two moments a second: its first admission leaves, then the others (and the tokens) with its last.
    foreach v_us in array v_ring.ring[v_i + 3 : v_i + 4] loop
      v_gone := case when v_us < v_ring.ring[v_i + 4] then 1 else v_ring.ring[v_i + 1] end;
      v_held := 0;
      for j in 1 .. cardinality(v_kept) loop
        -- What of the owner's admissions of this second have left by then, the same way.
        v_held := v_held + greatest(0, v_kept[j] - (v_used[j]
          - case when v_rings[j][v_i + 1] = 0 or v_rings[j][v_i + 3] > v_us then 0
                 when v_rings[j][v_i + 4] <= v_us then v_rings[j][v_i + 1] else 1 end));
      end loop;
      if (p_model.rpm is null or v_left_requests - v_gone + p_requests + v_held <= p_model.rpm)
         and (p_model.tpm is null
              or v_left_tokens - case when v_gone = v_ring.ring[v_i + 1] then v_ring.ring[v_i + 2] else 0 end
                 + p_tokens <= p_model.tpm) then
        return public.google_ai_ring_time(v_s, v_us) + p_window;
      end if;
    end loop;
    v_left_requests := v_left_requests - v_ring.ring[v_i + 1];
    v_left_tokens := v_left_tokens - v_ring.ring[v_i + 2];
    for j in 1 .. cardinality(v_kept) loop
      v_used[j] := v_used[j] - v_rings[j][v_i + 1];
    end loop;
  end loop;
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_verdict public.google_ai_admission_verdict;
  v_who jsonb;               -- a token's client and token, named in every answer of a token's request
  v_credential public.google_ai_token_verdict;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  v_new_ticket uuid := gen_random_uuid();  -- a ticket taken now (tickets of one instant are ordered by it)
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if (v_credential.refusal).ok is not null then
      return v_credential.refusal;
    end if;
    p_request := v_credential.request;  -- the token's client is the caller from here on
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_verdict := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_verdict.answer is not null then
      v_verdict.answer := v_verdict.answer || coalesce(v_who, '{}');
      return v_verdict;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.provider_limits = 'follow'
                       then public.google_ai_followed_too_large(v_now, v_limits, p_request)
                       when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                              is not null then coalesce(p_request.output_tokens, 0) else 0 end
                         or (p_request.requests > 1 and public.google_ai_requests_over(v_now, v_limits,
                               p_request.requests, p_request.exclude_key_ids) is not null)
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket, p_request.requests);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request, p_now, v_now);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    v_verdict := public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal);
  else
    v_verdict := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
      v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
      case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  end if;
  if v_who is not null then  -- (a service caller's answer is not encoded again for an empty object)
    v_verdict.answer := v_verdict.answer || v_who;
  end if;
  return v_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_counter_at(p_row public.google_ai_usage_counters, p_zone text, p_at timestamp with time zone, p_locked boolean, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0, p_settled boolean DEFAULT false)
 RETURNS public.google_ai_counter_at
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_at timestamptz := case when p_locked then greatest(p_at, p_row.window_at) else p_at end;
  v_minute interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_day date := greatest(public.google_ai_day_in(v_at, p_zone), case when p_locked then p_row.day_bucket end);
  v_midnight timestamptz := public.google_ai_midnight_after_in(v_at, p_zone);
  v_start timestamptz := public.google_ai_day_start_in(v_day, p_zone);
  v_ring record := case when p_settled
    then public.google_ai_ring_counted(row(p_row.ring_low, p_row.ring, p_row.window_requests,
           coalesce(p_row.window_tokens, 0))::public.google_ai_ring, v_minute, v_at, p_requests, p_tokens, true)
    else public.google_ai_ring_at(v_at, v_minute, p_row.ring_low, p_row.ring, p_row.window_requests,
           coalesce(p_row.window_tokens, 0), p_requests, p_tokens) end;
begin
  return row(v_at, v_minute, v_day_guard, p_zone, v_day, public.google_ai_day_counts(p_row.day_bucket, p_row.rpd_used,
    p_row.rpd_next_used, p_row.rpd_prev_used, v_day), v_midnight, v_start, v_at >= v_midnight - v_day_guard,
    v_at < v_start + v_day_guard, v_ring.ring_low, v_ring.ring, v_ring.sum_requests,
    v_ring.sum_tokens)::public.google_ai_counter_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_step public.google_ai_housekeeping_task;
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_now timestamptz := coalesce(p_now, v_started);
  v_settings public.google_ai_maintenance_settings;
  v_old_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_result jsonb;
  v_steps jsonb := '{}'::jsonb;
  v_failed text[] := '{}'::text[];
  v_tables text[] := '{}'::text[];
  v_deleted bigint := 0;
  v_more boolean := false;
  v_status text;
  v_completed timestamptz;
  v_log_id integer;
begin
  select * into v_settings from public.google_ai_maintenance_settings s where s.id;
  if not found then
    -- The row was deleted: put the defaults back (they live in the column defaults only).
    insert into public.google_ai_maintenance_settings as s (id) values (true)
    on conflict (id) do update set id = s.id
    returning * into v_settings;
  end if;

  -- One run at a time (the hourly job and an on-demand run may meet); the other one is logged as skipped.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.google_ai_housekeeping')::bigint) then
    v_log_id := public.google_ai_log_maintenance_run('housekeeping', '{}', 0, v_started, pg_catalog.clock_timestamp(),
      'skipped', jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now));
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);
  for v_step in select * from public.google_ai_housekeeping_steps(v_now, v_settings) loop
    v_result := public.google_ai_housekeeping_step(v_now, v_settings, v_started + v_settings.time_budget, v_step);
    if v_result ->> 'status' = 'failed' then
      v_failed := v_failed || v_step.name;
    end if;
    v_deleted := v_deleted + coalesce((v_result ->> 'deleted')::bigint, 0);
    if coalesce((v_result ->> 'deleted')::bigint, 0) + coalesce((v_result ->> 'abandoned')::bigint, 0) > 0
       and not (pg_catalog.regexp_replace(v_step.rel, '^public\.', '') = any (v_tables)) then
      v_tables := v_tables || pg_catalog.regexp_replace(v_step.rel, '^public\.', '');
    end if;
    v_more := v_more or coalesce((v_result ->> 'more')::boolean, false);
    v_steps := v_steps || jsonb_build_object(v_step.name, v_result);
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_old_lock_timeout, true);

  v_status := case when cardinality(v_failed) > 0 then 'failed' else 'succeeded' end;
  v_completed := pg_catalog.clock_timestamp();
  v_result := jsonb_build_object('duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps, 'failed_steps', to_jsonb(v_failed), 'more_pending', v_more,
    -- Where a model row and its provider's stated limit disagree, in the run's log.
    'limit_disagreements', public.google_ai_limit_disagreements());
  v_log_id := public.google_ai_log_maintenance_run('housekeeping', v_tables, least(v_deleted, 2147483647)::integer,
    v_started, v_completed, v_status,
    v_result || jsonb_build_object('now', v_now, 'settings', to_jsonb(v_settings) - 'id' - 'updated_at'));

  if v_status = 'failed' then
    raise warning 'google_ai_housekeeping: step(s) % failed; see google_ai_maintenance_log id %',
      array_to_string(v_failed, ', '), v_log_id;
  end if;
  return v_result || jsonb_build_object('ok', v_status = 'succeeded', 'status', v_status, 'log_id', v_log_id,
    'deleted_count', v_deleted);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_steps(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings)
 RETURNS SETOF public.google_ai_housekeeping_task
 LANGUAGE sql
 STABLE
AS $function$
  values
    ('abandon_stale_reservations', 'public.google_ai_attempts', 'abandon', null, null, null::timestamptz, null),
    ('attempts_retention', 'public.google_ai_attempts', 'attempts', null, null, null, null),
    -- Kaggle tokens expired or revoked more than token_grace ago. The grace (>= 1 hour) outlives any
    -- open reservation of a token (tokens live <= 12 hours) and the mint rate limit's look-back.
    ('tokens', 'public.google_ai_tokens', null, 'id', 's.expires_at < $1 or s.revoked_at < $1',
     p_now operator(pg_catalog.-) p_settings.token_grace, null),
    -- Finished runs only: a run still going has no end_time.
    ('cron_history', 'cron.job_run_details', null, 'runid', 's.end_time < $1',
     p_now operator(pg_catalog.-) p_settings.cron_history_retention, null),
    -- An expired cooldown is inert (the reservation ignores it); google_ai_cooldown writes one anew.
    ('expired_cooldowns', 'public.google_ai_cooldowns', null, 'ctid', 's.cooldown_until < $1', p_now,
     's.cooldown_until'),
    -- A stored response is replayed for 24 hours (idempotent request ids); older rows are never read.
    ('replay_responses', 'public.google_ai_responses', null, 'ctid', 's.created_at < $1',
     p_now operator(pg_catalog.-) interval '24 hours', 's.created_at'),
    -- A Responses API conversation past its lifetime (stored_response_lifetime) is never read again.
    ('stored_responses', 'public.google_ai_stored_responses', null, 'id', 's.expires_at < $1', p_now,
     's.expires_at'),
    ('response_cache', 'public.google_ai_response_cache', 'response_cache', null, null, null, null),
    ('dead_counters', 'public.google_ai_usage_counters', 'counters', null, null, null, null)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
  v_reservation uuid;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(row(p_request.caller, p_request.client_id,
      p_request.token_id)::public.google_ai_caller, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests, reply_by, hold_until,
    holder)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests, p_request.reply_by, p_request.hold_until, p_request.holder)
  returning a.reservation_id, jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_reservation, v_answer;
  -- The claim after the attempt row, with the request's holder (google_ai_hold_request).
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, p_request.holder,
      p_request.hold_until);
  end if;
  return row(true, null, null, null, null, p_model, null, v_reservation, null,
    v_answer)::public.google_ai_admission_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer DEFAULT 1, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
begin
  if p_rules.outcome = 'rpd' then
    reopens_at := case when p_model.rpd - p_rules.held_rpd <= p_at.counts[1] then p_at.midnight
                       when p_at.near_end then public.google_ai_midnight_after_in(p_at.midnight, p_at.zone)
                       else p_at.day_start end + p_at.day_guard;
    return;
  end if;
  if p_rules.window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, p_class, p_caller, p_at.at,
      p_at.minute, p_tokens, p_requests);
    if p_rules.outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                           where a.quota_group = p_quota_group and a.model = p_model.model
                                             and a.status = 'reserved' and a.admitted_at > p_at.at - p_at.minute
                                             and a.admitted_at < 'infinity') then
      recheck_at := p_at.at + (public.google_ai_admission_guard()).recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_rules.outcome = 'pace' then
    reopens_at := greatest(p_rules.paced_until, reopens_at);
    recheck_at := null;
  elsif p_rules.spread_at is not null then
    reopens_at := greatest(p_rules.spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
begin
  update public.google_ai_attempts a set
    status = 'released',
    finished_at = pg_catalog.clock_timestamp(),
    error_message = left(p_reason, 1000)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(row(v_att.caller, v_att.client_id, v_att.token_id)::public.google_ai_caller,
    v_att.created_at, public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)),
    -public.google_ai_request_counts(v_att.attempt) * v_att.requests, -v_att.estimated_tokens, -v_att.booked_usd,
    false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the admission, corrected in its second
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -p_att.requests else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  v_window_us numeric;
  -- The tokens a bucket gets back: what was booked less what was used.
  v_input_back integer;
  v_output_back integer;
begin
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model)
  for update;
  if not found then
    return;
  end if;
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (near_end, near_start: only a release gives those counts back; a finalize reads no zone).
  v_at := public.google_ai_counter_at(v_row, case when p_released then public.google_ai_day_zone(p_att.model) end,
    p_att.admitted_at, false, v_requests, case when p_att.admitted_at is not null then v_delta else 0 end, true);
  v_at.day := p_att.day_bucket;  -- (the day it counted in, which its owners' shares give back: its row's)
  -- The token buckets (itpm, otpm: google_ai_schedule_place) get back what the admission booked (its answer,
  -- booked_output_tokens, and its input, the rest of estimated_tokens where the row books answers in its
  -- tokens) less what the call used, as Anthropic corrects its estimates at the end: the answer's input (its
  -- cache reads left out unless the row counts them) and output. Released: all of it. No count from the
  -- provider: the input stays, the answer goes back when the settled count (p_tokens) gave it back (a call
  -- refused before generating). A call that used more than it booked takes nothing more. What goes back
  -- moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was taken; no limit
  -- (after the margin, as the booking took it: google_ai_request_limits), or nothing back: as it was.
  if p_att.booked_output_tokens is not null then
    v_input_back := p_att.estimated_tokens - case when v_model.booked_output_tokens is not null
                                                  then p_att.booked_output_tokens else 0 end;
    v_output_back := p_att.booked_output_tokens;
    if not p_released and p_att.input_tokens is not null then
      v_input_back := v_input_back - (p_att.input_tokens
        - case when v_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end);
      v_output_back := v_output_back - coalesce(p_att.output_tokens, 0);
    elsif not p_released then
      v_input_back := 0;
      v_output_back := case when p_tokens < p_att.estimated_tokens then v_output_back else 0 end;
    end if;
    v_model.itpm := public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin);
    v_model.otpm := public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin);
    v_window_us := extract(epoch from v_at.minute) * 1000000;
    if v_model.itpm is not null and coalesce(v_input_back, 0) > 0 then
      v_row.input_until := v_row.input_until
        - floor(v_window_us * v_input_back / v_model.itpm) * interval '1 microsecond';
    end if;
    if v_model.otpm is not null and coalesce(v_output_back, 0) > 0 then
      v_row.output_until := v_row.output_until
        - floor(v_window_us * v_output_back / v_model.otpm) * interval '1 microsecond';
    end if;
  end if;

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - p_att.requests) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + v_delta) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - p_att.requests) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_end
                         then greatest(0, c.rpd_next_used - p_att.requests) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_start
                         then greatest(0, c.rpd_prev_used - p_att.requests) else c.rpd_prev_used end,
    ring = v_at.ring,
    window_requests = v_at.sum_requests, window_tokens = v_at.sum_tokens,
    input_until = v_row.input_until, output_until = v_row.output_until,
    share_use = case when p_released and c.share_use is not null then public.google_ai_share_use_counted(c.share_use,
                  null, array(select s.id from public.google_ai_quota_shares s
                              where s.model = p_att.model
                                and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
                  v_at, v_requests)
                else c.share_use end
  where c.id = v_row.id;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_outcome.room_until is not null then
    v_model := public.google_ai_room_bucket_model(p_att, p_outcome.room_requests, p_outcome.room_tokens,
      p_outcome.room_until);
  end if;
  if v_model.model is not null then
    v_rpm := public.google_ai_group_rpm(v_model, p_att.quota_group);
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_outcome.room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_outcome.room_until - 60000.0 / greatest(v_model.rpm, v_rpm) * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_outcome.room_until + v_step.tolerance;
  elsif p_outcome.room_until is not null then
    perform public.google_ai_room_rest(p_att, p_outcome.room_requests, p_outcome.room_tokens, p_outcome.room_until);
  end if;

  v_counted := p_outcome.input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null)
    then coalesce(p_outcome.output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_outcome.settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(row(p_att.caller, p_att.client_id, p_att.token_id)::public.google_ai_caller,
      p_att.created_at, public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
  -- The limits the answer states, on the counter row just settled (locked: no other lock taken).
  if p_outcome.stated_limits is not null then
    perform public.google_ai_note_stated(p_att, p_outcome.stated_limits);
  end if;
end
$function$
;

create or replace view "public"."google_ai_shares_today" as  WITH clock AS (
         SELECT now() AS at,
            public.google_ai_window_length(COALESCE(( SELECT st.minute_guard_ms
                   FROM public.google_ai_admission_settings st
                  WHERE st.id), 1000)) AS window_length
        ), groups AS (
         SELECT DISTINCT s_1.id AS share_id,
            public.google_ai_quota_group(k.project_id, k.id) AS quota_group
           FROM ((public.google_ai_quota_shares s_1
             JOIN public.google_ai_model_limits m_1 ON ((m_1.model = s_1.model)))
             JOIN public.google_ai_api_keys k ON ((k.is_active AND (k.serves_provider = m_1.provider) AND ((k.models IS NULL) OR (s_1.model = ANY (k.models))))))
        ), kept AS (
         SELECT s_1.model,
            (sum(COALESCE(s_1.reserved_rpd, 0)))::integer AS reserved_rpd
           FROM public.google_ai_quota_shares s_1
          GROUP BY s_1.model
        )
 SELECT s.model,
    COALESCE(s.priority_class, s.caller) AS owner,
        CASE
            WHEN (s.priority_class IS NOT NULL) THEN 'class'::text
            ELSE 'caller'::text
        END AS owner_kind,
    g.quota_group,
    s.reserved_rpm,
    s.reserved_rpd,
    s.pace_burst,
    w.used_in_window,
    d.used_today,
        CASE
            WHEN (s.reserved_rpm IS NOT NULL) THEN GREATEST(0, (s.reserved_rpm - w.used_in_window))
            ELSE NULL::integer
        END AS rpm_kept_now,
        CASE
            WHEN (s.reserved_rpd IS NOT NULL) THEN GREATEST(0, (s.reserved_rpd - d.used_today))
            ELSE NULL::integer
        END AS rpd_kept_today,
        CASE
            WHEN ((s.pace_burst IS NOT NULL) AND (l.rpd IS NOT NULL)) THEN public.google_ai_pace_allowance(c.at, z.day, s.pace_burst, (l.rpd - (kept.reserved_rpd - COALESCE(s.reserved_rpd, 0))), z.zone)
            ELSE NULL::integer
        END AS pace_allows_today
   FROM ((((((((public.google_ai_quota_shares s
     JOIN groups g ON ((g.share_id = s.id)))
     JOIN kept ON ((kept.model = s.model)))
     CROSS JOIN clock c)
     CROSS JOIN LATERAL ( SELECT y.zone,
            public.google_ai_day_in(c.at, y.zone) AS day
           FROM ( SELECT public.google_ai_day_zone(s.model) AS zone) y) z)
     LEFT JOIN LATERAL ( SELECT e.window_requests,
            e.day_bucket,
            e.day_used,
            e.day_next_used,
            e.day_prev_used,
            e.ring_low,
            e.ring
           FROM public.google_ai_usage_counters uc,
            LATERAL unnest(uc.share_use) e(share_id, window_requests, day_bucket, day_used, day_next_used, day_prev_used, ring_low, ring)
          WHERE ((uc.quota_group = g.quota_group) AND (uc.model = s.model) AND (e.share_id = s.id))) u ON (true))
     LEFT JOIN LATERAL ( SELECT public.google_ai_effective_limit(m.rpd, m.safety_margin) AS rpd
           FROM public.google_ai_model_limits m
          WHERE (m.model = s.model)) l ON (true))
     CROSS JOIN LATERAL ( SELECT r.sum_requests AS used_in_window
           FROM public.google_ai_ring_at(c.at, c.window_length, u.ring_low, u.ring, u.window_requests, NULL::bigint) r(ring_low, ring, sum_requests, sum_tokens)) w)
     CROSS JOIN LATERAL ( SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, z.day))[1] AS used_today) d);

CREATE OR REPLACE FUNCTION public.google_ai_withdraw_attempt(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_outcome.error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = coalesce(p_outcome.http_status, 404),
    error_code = left(coalesce(p_outcome.error_code, 'NOT_FOUND'), 200),
    error_message = v_message,
    latency_ms = p_outcome.latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(row(v_att.caller, v_att.client_id, v_att.token_id)::public.google_ai_caller,
    v_att.created_at, public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)), 0,
    -v_att.estimated_tokens, -v_att.booked_usd, false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = case when pg_catalog.lower(p_outcome.successor) <> pg_catalog.lower(v_att.model)
                            then left(p_outcome.successor, 100) end
  where l.model = v_att.model and l.withdrawn_at is null;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', found,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer DEFAULT 1, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
begin
  if p_rules.outcome = 'rpd' then
    reopens_at := case when p_model.rpd - p_rules.held_rpd <= p_at.counts[1] then p_at.midnight
                       when p_at.near_end then public.google_ai_midnight_after_in(p_at.midnight, p_at.zone)
                       else p_at.day_start end + p_at.day_guard;
    return;
  end if;
  if p_rules.window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, p_class, p_caller, p_at.at,
      p_at.minute, p_tokens, p_requests);
    if p_rules.outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                           where a.quota_group = p_quota_group and a.model = p_model.model
                                             and a.status = 'reserved' and a.admitted_at > p_at.at - p_at.minute
                                             and a.admitted_at < 'infinity') then
      recheck_at := p_at.at + (public.google_ai_admission_guard()).recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_rules.outcome = 'pace' then
    reopens_at := greatest(p_rules.paced_until, reopens_at);
    recheck_at := null;
  elsif p_rules.spread_at is not null then
    reopens_at := greatest(p_rules.spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$function$;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_now timestamp with time zone, p_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_now timestamp with time zone, p_skip_locked boolean, p_zone text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_request public.google_ai_request, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_rules public.google_ai_booking_verdict) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_caller_budget_at(p_request public.google_ai_request, p_model text, p_class text, p_at timestamp with time zone, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_count_budgets(p_caller public.google_ai_caller, p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_housekeeping_step(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone, p_task public.google_ai_housekeeping_task) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_housekeeping_steps(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings) from public, anon, authenticated, service_role;
comment on type public.google_ai_housekeeping_task is 'One step of a housekeeping run (google_ai_housekeeping_steps): its name, its table, and its own function or the batched delete''s key, condition, cutoff and order.';
revoke all on function public.google_ai_paced_until(p_model public.google_ai_model_limits, p_at public.google_ai_counter_at, p_request public.google_ai_request, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer) to service_role;
revoke all on function public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean) to service_role;
revoke all on function public.google_ai_schedule_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_request public.google_ai_request, p_in_share boolean, OUT step interval, OUT place timestamp with time zone, OUT limit_name text, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at public.google_ai_counter_at, p_requests integer) from public, anon, authenticated, service_role;
revoke all on table public.google_ai_shares_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_shares_today to service_role;
alter view public.google_ai_shares_today set (security_invoker='true');
comment on view public.google_ai_shares_today is 'Reserved shares and pacing per quota group: the owner''s use in the window and today (the model''s provider''s day, in its row''s day_zone), what the share still keeps from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';
revoke all on function public.google_ai_window_reopens_for(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer, p_requests integer) from public, anon, authenticated, service_role;
