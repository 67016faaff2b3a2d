-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a reservation takes a request count (google_ai_attempts.requests,
--   google_ai_queue.requests): an embedding batch booked whole in the window, the day, the shares, the
--   budgets and the queue's slots; more than the minute or the day refused at once (google_ai_requests_over)
set check_function_bodies = off;

drop function if exists public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation);

drop function if exists public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric);

drop function if exists public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal);

drop function if exists public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer);

drop function if exists public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone);

drop function if exists public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[]);

drop function if exists public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request);

drop function if exists "public"."google_ai_book_best_group"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer);

drop function if exists "public"."google_ai_book_group"(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer);

drop function if exists "public"."google_ai_booking_outcome"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text);

drop function if exists "public"."google_ai_booking_rules"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer);

drop function if exists "public"."google_ai_caller_budget_at"(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text);

drop function if exists "public"."google_ai_paced_until"(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text);

drop function if exists "public"."google_ai_queue_place"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone);

drop function if exists "public"."google_ai_refusal_times"(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone);

drop function if exists "public"."google_ai_reserve_models"(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]);

drop function if exists "public"."google_ai_window_reopens_for"(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text);

drop type if exists "public"."google_ai_request";

drop type if exists "public"."google_ai_reservation";

alter table "public"."google_ai_attempts" add column if not exists "requests" integer not null default 1;

alter table "public"."google_ai_queue" add column if not exists "requests" integer not null default 1;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_request"') is null then
    create type "public"."google_ai_request" as ("model" text, "caller" text, "client_id" uuid, "token_id" uuid, "token_hash" text, "request_id" text, "attempt" integer, "estimated_tokens" integer, "output_tokens" integer, "wait_ms" integer, "wait_left_ms" integer, "metadata" jsonb, "priority" text, "exclude_key_ids" uuid[], "queue_ticket" uuid, "idempotent" boolean, "requests" integer);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_reservation"') is null then
    create type "public"."google_ai_reservation" as ("models" text[], "estimated_tokens" integer, "caller" text, "token_hash" text, "request_id" text, "exclude_key_ids" uuid[], "attempt" integer, "wait_ms" integer, "metadata" jsonb, "idempotent" boolean, "priority" text, "queue_ticket" uuid, "wait_left_ms" integer, "reply_by" timestamp with time zone, "hold_until" timestamp with time zone, "holder" uuid, "output_tokens" integer[], "requests" integer);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, p_requests integer DEFAULT 1)
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
    p_output, p_class.name, p_requests);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
  end if;

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
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone, p_output, p_requests);
      if v_try.outcome = 'booked' then
        -- (After waiting for the row, the key read before the wait must still serve the group. Two exits:
        -- a condition that holds a query is run by the executor even when it need not be.)
        exit when not v_candidate.waiting;
        exit when (v_candidate.key_id, v_candidate.quota_group) in
          (select s.key_id, s.quota_group from public.google_ai_serving_keys(p_model.model, p_exclude_key_ids) s);
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
          else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model.model, p_at,
            public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
            p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name, p_requests) end, null,
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
        public.google_ai_request_counts(p_attempt) * p_requests, p_tokens, v_budget.worst, true);
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

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer, p_requests integer DEFAULT 1)
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
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      return row('skipped', null, null, null, null, null, null, null)::public.google_ai_group_booking;
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_at := public.google_ai_counter_at(v_row, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true,
      p_requests, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_at, p_tokens, p_output,
      p_requests);
    v_minute := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if v_rules.outcome <> 'booked' then
      v_times := public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at, p_tokens,
        p_requests);
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = v_minute then c.rpm_used else 0 end
                        + p_requests,
      tpm_used        = case when c.minute_bucket = v_minute then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_at.counts[1] + p_requests,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then p_requests else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then p_requests else 0 end,
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
                                    v_at.at, v_at.minute, p_requests, v_at.day, v_at.near_end, v_at.near_start) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    return row('booked', v_minute, v_at.day, null, null, null, v_at.at, jsonb_build_object(
        'model', p_model.model,
        'quota_group', p_quota_group,
        'rpm', p_model.rpm,
        'requests_left', case when p_model.rpm is not null then greatest(0, p_model.rpm - v_at.sum_requests) end,
        'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute), v_at.at), v_at.at) end,
        'tpm', p_model.tpm,
        'tokens_left', case when p_model.tpm is not null then greatest(0, p_model.tpm - v_at.sum_tokens) end,
        'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute, true), v_at.at), v_at.at) end,
        'rpd', p_model.rpd,
        'day_left', case when p_model.rpd is not null then greatest(0, p_model.rpd - (greatest(v_at.counts[1],
          case when v_at.near_end then v_at.counts[2] end, case when v_at.near_start then v_at.counts[3] end)
          + p_requests)) end,
        'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
          case when v_at.near_start and v_at.counts[3] > v_at.counts[1] then v_at.day_start else v_at.midnight end
          + v_at.day_guard, v_at.at) end,
        'kept', v_rules.kept)
      - case when v_rules.kept is null then '{kept}' else '{}' end::text[])::public.google_ai_group_booking;
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

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer DEFAULT 1)
 RETURNS public.google_ai_outcome
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class and p_caller are unused by design, handed down whole for the rule that
-- reads them next, as said above; extra_warnings says nothing else in a body this short.)
declare
  -- The day has no room for this requester's p_requests (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + p_requests > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + p_requests > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + p_requests > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + p_requests > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + p_requests > p_model.rpd)
    or (p_at.near_start and p_at.counts[3] + p_requests > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  if v_day_full then
    return row('rpd', case when v_day_spent then 'day_exhausted' else 'share_kept' end,
      v_rpm_full or v_tpm_full)::public.google_ai_outcome;
  elsif p_paced_until is not null then
    return row('pace', 'pace', v_rpm_full or v_tpm_full)::public.google_ai_outcome;
  elsif v_rpm_full or v_tpm_full then
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    return row(case when v_rpm_full then 'rpm' else 'tpm' end,
      case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
           else 'share_kept' end, true)::public.google_ai_outcome;
  elsif p_spread_at is not null then
    return row(p_spread_limit, 'spread', false)::public.google_ai_outcome;
  end if;
  return row('booked', null, false)::public.google_ai_outcome;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, p_requests integer DEFAULT 1)
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
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_at.at, p_at.day, p_model.rpd, v_reserved_rpd, v_pace_burst,
      v_pace_kept, v_pace_used, v_pace_next, p_at.zone, p_requests);
  end if;
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
    spread_at, v_step.limit_name, p_requests);
  return row(v_verdict.outcome, v_verdict.cause, v_verdict.window_full, paced_until, spread_at, v_step.step,
    v_held[1], live, owned, kept, input_until, output_until)::public.google_ai_booking_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, p_requests integer DEFAULT 1, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
declare
  v_row public.google_ai_caller_budgets;
begin
  if p_client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that judges a budget costs more
  -- to start than this one.)
  select b.* into v_row from public.google_ai_caller_budgets b where b.caller = p_caller for update;
  if not found then
    return;
  end if;
  day := public.google_ai_pacific_day(p_at);
  if num_nonnulls(v_row.daily_max_usd, v_row.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model.model, p_tokens, p_output, p_class);
  end if;
  select v.cause, v.period, v.reopens_at into cause, period, reopens_at
  from public.google_ai_budget_verdict(public.google_ai_budget_of(v_row), p_at,
    public.google_ai_request_counts(p_attempt) * p_requests, p_tokens, worst) v;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text, p_requests integer DEFAULT 1)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when p_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := p_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + p_requests > public.google_ai_pace_allowance(p_now, p_day, p_burst[i], v_usable, p_zone) then
      -- The first moment of the day (s to e, L long) at which the allowance, burst + floor(usable x (t - s) / L),
      -- reaches need = used + p_requests - burst (to the microsecond): s + ceil(need x L / usable), within the day
      -- exactly when need < usable. Today's if any, else tomorrow's, else the day after begins.
      v_at := greatest(v_at, coalesce((
        select min(case when x.need <= 0 then d.s when x.need < v_usable
                        then d.s + ceil(x.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / v_usable)
                                   * interval '1 microsecond' end)
        from (values (p_day, p_used[i] + p_requests - p_burst[i]), (p_day + 1, p_next[i] + p_requests - p_burst[i]))
               x(day, need),
             lateral (select public.google_ai_day_start_in(x.day, p_zone) as s,
                             public.google_ai_day_start_in(x.day + 1, p_zone) as e) d),
        public.google_ai_day_start_in(p_day + 2, p_zone)));
    end if;
  end loop;
  return v_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, p_requests integer, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_variable
declare
  v_held public.google_ai_queue;
  v_ahead integer;
  v_due_ahead integer;
  v_head_limit text;   -- the limit a due ticket ahead waits for head first (google_ai_queue_turns)
  v_free_now integer;
  v_spread_bound boolean;
  v_kept_bound boolean;
begin
  rank := p_class.rank;
  class := p_class.name;
  may_book := true;
  if p_model.model is null then
    return;
  end if;
  if p_ticket is not null then
    select * into v_held from public.google_ai_queue q
    where q.ticket_id = p_ticket and q.caller = p_caller.name and q.model = p_model.model and q.lease_until >= p_now;
    if v_held.ticket_id is not null then
      select v_held.ticket_id, v_held.class_rank, v_held.priority_class, v_held.enqueued_at
        into ticket, rank, class, since;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      turn := least(v_held.turn,
        public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, ticket, v_held.turn));
    end if;
  end if;
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, null, null);
    since := p_now;
  end if;

  -- (A ticket of several requests holds the slots free now toward its turn: it waits because fewer are free
  -- than it needs, and a request behind it that took one would put its turn off.)
  select coalesce(sum(q.requests), 0),
         coalesce(sum(q.requests) filter (where q.expected_at <= p_now or q.requests > 1), 0),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model, p_exclude_key_ids, p_now, v_ahead + p_requests, rank, class,
    p_caller.name) t;
  -- Slots go to the due tickets ahead first; those nobody due claims go to whoever asks, when they are
  -- as many as its requests. (No turn, none today anywhere or every window kept from it by shares: the
  -- booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead + p_requests <= v_free_now
    or exists (select 1 from public.google_ai_quota_shares s
               left join (select e.* from public.google_ai_usage_counters c, unnest(c.share_use) e
                          where c.model = p_model.model) u on u.share_id = s.id
               where s.model = p_model.model and s.reserved_rpm is not null
                 and (s.priority_class = class or s.caller = p_caller.name)
                 and coalesce((public.google_ai_ring_at(p_now,
                       public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                       u.ring_low, u.ring, u.window_requests, null)).sum_requests, 0) < s.reserved_rpm));
  if not may_book then
    blocked_by := coalesce(v_head_limit, case when p_model.rpm is not null then 'rpm' else 'tpm' end);
    cause := case when v_head_limit is not null or v_free_now > 0 then 'queue_turn' when v_spread_bound then 'spread'
                  when v_kept_bound then 'share_kept' else 'window_full' end;
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queued_answer(p_ticket public.google_ai_queue, p_cause text, p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
  select jsonb_build_object(
    'ok', false,
    'limit', p_ticket.limit_hit,
    'cause', p_cause,
    'retry_after_ms', public.google_ai_ms_until(p_ticket.expected_at, p_now),
    'retry_at', p_ticket.expected_at,
    'model', p_ticket.model,
    'queue', jsonb_build_object('ticket', p_ticket.ticket_id, 'position', p_ticket."position",
                                'expected_at', p_ticket.expected_at, 'priority', p_ticket.priority_class))
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_figures(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_refusal public.google_ai_refusal, p_requests integer, p_exclude_key_ids uuid[])
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_limit text := p_refusal.limit_hit;
  v_over jsonb := case when v_limit = 'too_large' then public.google_ai_requests_over(p_now, p_limits, p_requests,
    p_exclude_key_ids) end;
begin
  return coalesce(v_over, jsonb_build_object('max_tokens',
      case when v_limit = 'too_large' then coalesce(p_limits.tpm, p_limits.itpm) end))
    || case when v_limit = 'too_large' and v_over is null and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when v_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_refusal.period is not null then jsonb_build_object('period', p_refusal.period)
            else '{}' end;
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
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, coalesce(p_model.limit_pool, p_model.model),
      p_at.at, p_at.minute, p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name, p_requests);
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

CREATE OR REPLACE FUNCTION public.google_ai_requests_over(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[])
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[], p_requests integer DEFAULT 1)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  return public.google_ai_reserve_models_at(null, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket,
    p_wait_left_ms, p_reply_by, p_hold_until, p_holder, p_output_tokens, p_requests)::public.google_ai_reservation);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text, p_requests integer DEFAULT 1)
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
  select * into v_row from public.google_ai_usage_counters c where c.quota_group = p_quota_group and c.model = p_model;
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
  where s.model = p_model and s.reserved_rpm is not null and p_rpm is not null
    and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false));

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
      if (p_rpm is null or v_left_requests - v_gone + p_requests + v_held <= p_rpm)
         and (p_tpm is null or v_left_tokens - case when v_gone = v_ring.ring[v_i + 1] then v_ring.ring[v_i + 2]
                                                     else 0 end + p_tokens <= p_tpm) then
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
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_who jsonb := '{}'::jsonb;       -- a token's client and token, named in every answer
  v_credential record;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_request.caller := v_credential.caller;
    p_request.client_id := v_credential.client_id;
    p_request.token_id := v_credential.token_id;
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_answer is not null then
      return v_answer || v_who;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_request.estimated_tokens
                         or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens
                                            - case when v_limits.booked_output_tokens is not null
                                                   then coalesce(p_request.output_tokens, 0) else 0 end
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
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens,
    p_request.requests);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal) || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
    v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
    case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_request.token_hash is null then v_answer else v_answer || v_who end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_higher_taken(p_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rank smallint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (select coalesce(sum(a.requests), 0) from public.google_ai_attempts a
          join public.google_ai_priority_classes pc on pc.name = a.priority_class
          where a.quota_group = p_group and a.model = p_model
            and a.admitted_at > p_now - p_window and a.admitted_at < 'infinity'
            and a.status not in ('released', 'withdrawn') and pc.rank < p_rank
            and coalesce(a.wait_ms, 0) < extract(epoch from p_window) * 1000);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_lapse(p_model text, p_now timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_lapsed integer;
begin
  with gone as (
    delete from public.google_ai_queue q
    where q.model = p_model and q.lease_until < p_now
    returning q.*)
  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, wait_ms, priority_class, error_message, finished_at, requests)
  select 'abandoned', g.request_id, g.caller, g.client_id, g.token_id, g.model, g.requested_model, 1, g.tokens,
    g.limit_hit, greatest(0, extract(epoch from (g.expected_at - g.enqueued_at)) * 1000)::integer, g.priority_class,
    'left the queue: no call within the grace after its turn', p_now, g.requests
  from gone g;
  get diagnostics v_lapsed = row_count;
  return v_lapsed;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_answer;
  return v_answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := public.google_ai_refusal_figures(p_now, p_limits, p_refusal, p_request.requests,
    p_request.exclude_key_ids);
begin
  p_refusal.cause := coalesce(v_said ->> 'cause', p_refusal.cause);
  v_reopens_at := coalesce((v_said ->> 'retry_at')::timestamptz, v_reopens_at);
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
        'model', p_limits.model) || v_said;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer || v_said;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_refusal.ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_refusal.ticket;
  end if;
  if v_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_request.wait_left_ms, 0) > 0 then v_wait.turn_at else p_refusal.turn_at end,
               v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if v_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_refusal.booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_request.wait_ms, 0) > 0 and p_request.request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = v_limit, refusal_cause = p_refusal.cause, retry_after_ms = v_retry_ms, wait_ms = p_request.wait_ms,
      estimated_tokens = p_request.estimated_tokens
    where a.request_id = p_request.request_id and a.caller = p_request.caller and a.attempt = p_request.attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_request.wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (v_limit = 'no_active_key' and coalesce(cardinality(p_request.exclude_key_ids), 0) > 0)
     and (coalesce(p_request.wait_ms, 0) = 0 or p_request.request_id is null or not found) then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata, requests)
    values ('refused', p_request.request_id, p_request.caller, p_request.client_id, p_request.token_id,
      coalesce(p_limits.model, p_request.model), p_request.model, p_request.attempt, p_request.estimated_tokens,
      v_limit, p_refusal.cause, v_retry_ms, p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_request.requests);
  end if;
  return jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_limits.model,
    'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said;
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

  perform public.google_ai_count_budgets(v_att.token_id, v_att.client_id, v_att.caller, v_att.created_at,
    public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)),
    -public.google_ai_request_counts(v_att.attempt) * v_att.requests, -v_att.estimated_tokens, -v_att.booked_usd,
    false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_reply_by is assigned and never read by design, set_config's answer taken by an
-- assignment because a perform costs more, as said below; its other extra warnings are none.)
declare
  v_metadata jsonb := coalesce(p_call.metadata, '{}'::jsonb);
  v_reply_by text;           -- the setting as set
  v_request public.google_ai_request;
  v_answer jsonb;
begin
  if p_call.models is null or cardinality(p_call.models) = 0 or cardinality(p_call.models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_call.caller is null) = (p_call.token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_call.caller = '' or array_position(p_call.models, null) is not null
     or array_position(p_call.models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_call.estimated_tokens is null or p_call.estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_call.output_tokens is not null and (cardinality(p_call.output_tokens) <> cardinality(p_call.models)
                                      or 0 > any (p_call.output_tokens)) then
    raise exception 'p_output_tokens must name one non-negative integer (or null) per model' using errcode = '22023';
  end if;
  if p_call.requests < 1 then
    raise exception 'p_requests must be a positive integer' using errcode = '22023';
  end if;
  if p_call.reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_call.reply_by, 'hold_until', p_call.hold_until, 'holder',
        p_call.holder)));
  end if;
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_reply_check). (Assigned,
  -- not performed: a perform is a statement of its own, counted about 6k instructions more.)
  v_reply_by := pg_catalog.set_config('google_ai.reply_by', coalesce(case
    when pg_catalog.jsonb_typeof(v_metadata -> '$holder') = 'object'
    then public.google_ai_holder_time(v_metadata -> '$holder', 'reply_by')::text end, ''), true);
  v_request := row(p_call.models[1], p_call.caller, null, null, p_call.token_hash, p_call.request_id,
    coalesce(p_call.attempt, 1), p_call.estimated_tokens, p_call.output_tokens[1], coalesce(p_call.wait_ms, 0),
    p_call.wait_left_ms, v_metadata, p_call.priority, coalesce(p_call.exclude_key_ids, '{}'), p_call.queue_ticket,
    coalesce(p_call.idempotent, false), coalesce(p_call.requests, 1));
  if cardinality(p_call.models) > 1 then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  v_answer := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if (v_answer ->> 'cause') = 'shut_down' and (v_answer ->> 'successor') is not null then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  return v_answer;
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
                  p_att.admitted_at, v_at.minute, v_requests, p_att.day_bucket, v_at.near_end, v_at.near_start)
                else c.share_use end
  where c.id = v_row.id;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_requests integer, p_day date, p_near_end boolean, p_near_start boolean)
 RETURNS public.google_ai_share_use[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  v_use public.google_ai_share_use[] := '{}'::public.google_ai_share_use[];
  v_ids bigint[] := p_live;
  v_day_requests integer := p_requests;
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
    v_admitted_at := p_at;
    p_at := null;
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
    v_ring := public.google_ai_ring_at(p_at, p_window, v_old.ring_low, v_old.ring, v_old.window_requests, null,
      p_requests, 0, v_admitted_at);
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if v_day_requests > 0 or v_old.day_bucket = p_day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_day);
      v_new.day_bucket := p_day;
      v_new.day_used := greatest(0, v_days[1] + v_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_near_end then v_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_near_start then v_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt) * coalesce(p_request.requests, 1);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    refusal := jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null);
    return;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  caller := 'client:' || v_client.name;
  client_id := v_client.id;
  token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  if v_limit is null and not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request.request_id, caller, client_id, token_id, v_model, p_request.model,
    coalesce(p_request.attempt, 1), p_request.estimated_tokens, v_limit, v_cause, v_retry_ms, p_request.wait_ms,
    coalesce(p_request.metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end;
end
$function$
;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_attempts"'::regclass
                 and conname = 'google_ai_attempts_requests_check') then
    alter table "public"."google_ai_attempts" add constraint "google_ai_attempts_requests_check" CHECK ((requests >= 1)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_attempts" validate constraint "google_ai_attempts_requests_check";

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_who jsonb := '{}'::jsonb;       -- a token's client and token, named in every answer
  v_credential record;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_request.caller := v_credential.caller;
    p_request.client_id := v_credential.client_id;
    p_request.token_id := v_credential.token_id;
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_answer is not null then
      return v_answer || v_who;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_request.estimated_tokens
                         or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens
                                            - case when v_limits.booked_output_tokens is not null
                                                   then coalesce(p_request.output_tokens, 0) else 0 end
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
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens,
    p_request.requests);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal) || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
    v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
    case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_request.token_hash is null then v_answer else v_answer || v_who end;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]'::jsonb;   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, p_now);
  for i in v_chain.first .. cardinality(v_chain.models) loop
    if v_chain.retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
        'model', v_chain.models[i]);
    else
      begin
        p_request.model := v_chain.names[i];
        p_request.output_tokens := p_output_tokens[v_chain.answer_of[i]];
        v_try := public.google_ai_admit_at(p_now, p_request);
        if not (v_try ->> 'ok')::boolean and not (v_try ? 'queue')
           and ((v_try ->> 'limit') = any (c_model_limits)
                or public.google_ai_queue_turns(v_try ->> 'limit') is not null) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_answer := v_try; -- admitted, queued, or a refusal no other model can change
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_answer is not null;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_request.queue_ticket is not null then
      delete from public.google_ai_queue q
      where q.ticket_id = p_request.queue_ticket and q.model = v_chain.models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.models[i], 'limit', v_try ->> 'limit',
      'cause', v_try ->> 'cause', 'retry_after_ms', v_try -> 'retry_after_ms'));
    -- (A model without a key once the request's own exclusions are set aside is no attempt either:
    -- google_ai_refusal_at.)
    continue when v_try ->> 'limit' = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0;
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request.request_id, coalesce(v_chain.caller, p_request.caller, 'token'), v_chain.client_id,
      v_chain.token_id, v_chain.models[i], p_models[1], p_request.attempt, p_request.estimated_tokens,
      v_try ->> 'limit', v_try ->> 'cause', (v_try ->> 'retry_after_ms')::bigint, p_request.wait_ms,
      coalesce(p_request.metadata, '{}'));
  end loop;

  if v_answer is not null then
    if (v_answer ->> 'model') is distinct from v_chain.models[1] then
      -- The rows of a fallback name the model the request asked for.
      if (v_answer ->> 'ok')::boolean then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = (v_answer ->> 'reservation_id')::uuid;
      elsif v_answer ? 'queue' then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = (v_answer -> 'queue' ->> 'ticket')::uuid;
      end if;
    end if;
    return v_answer || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.value into v_best from jsonb_array_elements(v_refusals) with ordinality r(value, i)
  order by (r.value ->> 'retry_at')::timestamptz nulls last, (r.value ->> 'limit' = 'retired'), r.i
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_answer;
  return v_answer;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := public.google_ai_refusal_figures(p_now, p_limits, p_refusal, p_request.requests,
    p_request.exclude_key_ids);
begin
  p_refusal.cause := coalesce(v_said ->> 'cause', p_refusal.cause);
  v_reopens_at := coalesce((v_said ->> 'retry_at')::timestamptz, v_reopens_at);
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
        'model', p_limits.model) || v_said;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer || v_said;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_refusal.ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_refusal.ticket;
  end if;
  if v_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_request.wait_left_ms, 0) > 0 then v_wait.turn_at else p_refusal.turn_at end,
               v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if v_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_refusal.booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_request.wait_ms, 0) > 0 and p_request.request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = v_limit, refusal_cause = p_refusal.cause, retry_after_ms = v_retry_ms, wait_ms = p_request.wait_ms,
      estimated_tokens = p_request.estimated_tokens
    where a.request_id = p_request.request_id and a.caller = p_request.caller and a.attempt = p_request.attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_request.wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (v_limit = 'no_active_key' and coalesce(cardinality(p_request.exclude_key_ids), 0) > 0)
     and (coalesce(p_request.wait_ms, 0) = 0 or p_request.request_id is null or not found) then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata, requests)
    values ('refused', p_request.request_id, p_request.caller, p_request.client_id, p_request.token_id,
      coalesce(p_limits.model, p_request.model), p_request.model, p_request.attempt, p_request.estimated_tokens,
      v_limit, p_refusal.cause, v_retry_ms, p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_request.requests);
  end if;
  return jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_limits.model,
    'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt) * coalesce(p_request.requests, 1);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    refusal := jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null);
    return;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  caller := 'client:' || v_client.name;
  client_id := v_client.id;
  token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  if v_limit is null and not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request.request_id, caller, client_id, token_id, v_model, p_request.model,
    coalesce(p_request.attempt, 1), p_request.estimated_tokens, v_limit, v_cause, v_retry_ms, p_request.wait_ms,
    coalesce(p_request.metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end;
end
$function$;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_reply_by is assigned and never read by design, set_config's answer taken by an
-- assignment because a perform costs more, as said below; its other extra warnings are none.)
declare
  v_metadata jsonb := coalesce(p_call.metadata, '{}'::jsonb);
  v_reply_by text;           -- the setting as set
  v_request public.google_ai_request;
  v_answer jsonb;
begin
  if p_call.models is null or cardinality(p_call.models) = 0 or cardinality(p_call.models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_call.caller is null) = (p_call.token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_call.caller = '' or array_position(p_call.models, null) is not null
     or array_position(p_call.models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_call.estimated_tokens is null or p_call.estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_call.output_tokens is not null and (cardinality(p_call.output_tokens) <> cardinality(p_call.models)
                                      or 0 > any (p_call.output_tokens)) then
    raise exception 'p_output_tokens must name one non-negative integer (or null) per model' using errcode = '22023';
  end if;
  if p_call.requests < 1 then
    raise exception 'p_requests must be a positive integer' using errcode = '22023';
  end if;
  if p_call.reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_call.reply_by, 'hold_until', p_call.hold_until, 'holder',
        p_call.holder)));
  end if;
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_reply_check). (Assigned,
  -- not performed: a perform is a statement of its own, counted about 6k instructions more.)
  v_reply_by := pg_catalog.set_config('google_ai.reply_by', coalesce(case
    when pg_catalog.jsonb_typeof(v_metadata -> '$holder') = 'object'
    then public.google_ai_holder_time(v_metadata -> '$holder', 'reply_by')::text end, ''), true);
  v_request := row(p_call.models[1], p_call.caller, null, null, p_call.token_hash, p_call.request_id,
    coalesce(p_call.attempt, 1), p_call.estimated_tokens, p_call.output_tokens[1], coalesce(p_call.wait_ms, 0),
    p_call.wait_left_ms, v_metadata, p_call.priority, coalesce(p_call.exclude_key_ids, '{}'), p_call.queue_ticket,
    coalesce(p_call.idempotent, false), coalesce(p_call.requests, 1));
  if cardinality(p_call.models) > 1 then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  v_answer := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if (v_answer ->> 'cause') = 'shut_down' and (v_answer ->> 'successor') is not null then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  return v_answer;
end
$function$;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request) from public, anon, authenticated, service_role;
comment on column public.google_ai_attempts."requests" is 'The requests this attempt is at its provider, booked at once in every count of requests (window, day, shares, budgets) and given back together: 1, or an embedding batch''s inputs where the model''s row counts each input (google_ai_embedding_models.counts_each_input).';
revoke all on function public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, p_requests integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer, p_requests integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, p_requests integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer, p_requests integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, p_requests integer, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text, p_requests integer) from public, anon, authenticated, service_role;
comment on table public.google_ai_queue is 'Requests waiting for capacity, in admission order (class_rank, turn, enqueued_at). A ticket ends when its request is admitted, gives up, or stops calling (lease_until): then an abandoned attempt row records it. requests: the slots its turn needs at once (google_ai_attempts.requests).';
revoke all on function public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, p_requests integer, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_queue_wait(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb, OUT turn_at timestamp with time zone, OUT expected timestamp with time zone, OUT likely_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_queued_answer(p_ticket public.google_ai_queue, p_cause text, p_now timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_figures(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_refusal public.google_ai_refusal, p_requests integer, p_exclude_key_ids uuid[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on type public.google_ai_request is 'One reservation request as its entry received it, handed whole through fall-back, admit, refuse, record and queue (google_ai_reserve_models_at builds it).';
revoke all on function public.google_ai_requests_over(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[]) from public, anon, authenticated, service_role;
comment on function public.google_ai_requests_over(p_now timestamp with time zone, p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[]) is 'A request of more requests than the model''s minute or any group''s day has left (over_rpm, over_rpd): its figures, refused at once as too_large; null when the booking decides.';
revoke all on function public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[], p_requests integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[], p_requests integer) to eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[], p_requests integer) to service_role;
revoke all on function public.google_ai_token_verdict_at(p_now timestamp with time zone, p_request public.google_ai_request, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid, OUT worst numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text, p_requests integer) from public, anon, authenticated, service_role;
