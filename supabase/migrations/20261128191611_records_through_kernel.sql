-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Issue 79: the counter as of an instant as one record, the booking's steps and the ring as
--   named types, reserve_models_at taking the reservation whole, the attempt log's checks through functions
--   that hold their lists, the model row read whole, kernel helpers with one caller folded into it; one
--   budget shape for tokens, clients and service callers; each grant said once
set check_function_bodies = off;

drop view if exists "public"."google_ai_caller_budgets_today";

drop view if exists "public"."google_ai_shares_today";

alter table "public"."google_ai_attempts" drop constraint if exists "google_ai_attempts_quota_cause_check";

alter table "public"."google_ai_attempts" drop constraint if exists "google_ai_attempts_status_check";

alter table "public"."google_ai_cooldowns" drop constraint if exists "google_ai_cooldowns_cause_check";

drop function if exists "public"."google_ai_book_best_group"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer, OUT booked_group text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text, OUT env_var_name text, OUT booked_usd numeric, OUT budget_period text);

drop function if exists "public"."google_ai_book_group"(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer, OUT outcome text, OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone, OUT quota jsonb);

drop function if exists "public"."google_ai_booked_quota"(p_model text, p_quota_group text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, p_requests integer, p_tokens bigint, p_ring_low bigint, p_ring integer[], p_window interval, p_day integer[], p_near_end boolean, p_near_start boolean, p_today date, p_midnight timestamp with time zone, p_day_guard interval, p_kept jsonb);

drop function if exists "public"."google_ai_booking_outcome"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_requests integer, p_tokens bigint, p_day integer[], p_near_end boolean, p_near_start boolean, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text, OUT outcome text, OUT cause text, OUT window_full boolean);

drop function if exists "public"."google_ai_booking_rules"(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_now timestamp with time zone, p_window interval, p_day date, p_tokens integer, p_requests integer, p_window_tokens bigint, p_counts integer[], p_near_end boolean, p_near_start boolean, p_output integer, OUT outcome text, OUT cause text, OUT window_full boolean, OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval, OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone);

drop function if exists "public"."google_ai_bucket_give"(p_until timestamp with time zone, p_window interval, p_limit integer, p_back integer);

drop function if exists "public"."google_ai_budget_left"(p_max bigint, p_used bigint);

drop function if exists "public"."google_ai_holder_id"(p_holder jsonb);

drop function if exists "public"."google_ai_queue_turn_at"(p_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean);

drop function if exists "public"."google_ai_quota_report_owner"(p_now timestamp with time zone, p_row boolean, p_max_requests integer, p_max_tokens bigint, p_day_bucket date, p_requests_today integer, p_tokens_today bigint, p_daily_usd numeric, p_monthly_usd numeric, p_month_bucket date, p_spent_today_usd numeric, p_spent_month_usd numeric);

drop function if exists "public"."google_ai_record_admission"(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking record, p_ticket uuid, p_booked_usd numeric, p_booked_output integer);

drop function if exists "public"."google_ai_refusal_times"(p_outcome text, p_window_full boolean, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer, p_midnight timestamp with time zone, p_day_guard interval, p_near_end boolean, p_today_fits boolean, p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_recheck_ms integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone);

drop function if exists "public"."google_ai_reopens_at"(p_limit text, p_now timestamp with time zone, p_zone text);

drop function if exists "public"."google_ai_reserve_models_at"(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]);

drop function if exists "public"."google_ai_share_use_counted"(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_window_requests integer, p_day_requests integer, p_admitted_at timestamp with time zone, p_day date, p_near_end boolean, p_near_start boolean);

drop function if exists "public"."google_ai_usd_left"(p_max numeric, p_current boolean, p_spent numeric);

drop view if exists "public"."google_ai_caller_budgets_today";

drop view if exists "public"."google_ai_shares_today";

drop function if exists "public"."google_ai_daily_use"(p_bucket date, p_requests_today integer, p_tokens_today bigint, p_day date, p_requests integer, p_tokens bigint, p_max_requests integer, p_max_tokens bigint);

drop function if exists "public"."google_ai_ring_at"(p_at timestamp with time zone, p_window interval, INOUT ring_low bigint, INOUT ring integer[], INOUT sum_requests integer, INOUT sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_booking"') is null then
    create type "public"."google_ai_booking" as ("booked_group" text, "minute_bucket" timestamp with time zone, "day_bucket" date, "blocked_by" text, "reopens_at" timestamp with time zone, "recheck_at" timestamp with time zone, "cause" text, "admitted_at" timestamp with time zone, "quota" jsonb, "key_id" uuid, "key_alias" text, "env_var_name" text, "booked_usd" numeric, "budget_period" text);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_booking_verdict"') is null then
    create type "public"."google_ai_booking_verdict" as ("outcome" text, "cause" text, "window_full" boolean, "paced_until" timestamp with time zone, "spread_at" timestamp with time zone, "spread_step" interval, "held_rpd" bigint, "live" bigint[], "owned" bigint[], "kept" jsonb, "input_until" timestamp with time zone, "output_until" timestamp with time zone);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_budget"') is null then
    create type "public"."google_ai_budget" as ("period" text, "max_requests" integer, "max_tokens" bigint, "max_usd" numeric, "bucket" date, "requests" integer, "tokens" bigint, "spent_usd" numeric, "monthly_max_usd" numeric, "month_bucket" date, "spent_month_usd" numeric);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_counter_at"') is null then
    create type "public"."google_ai_counter_at" as ("at" timestamp with time zone, "minute" interval, "day_guard" interval, "zone" text, "day" date, "counts" integer[], "midnight" timestamp with time zone, "day_start" timestamp with time zone, "near_end" boolean, "near_start" boolean, "ring_low" bigint, "ring" integer[], "sum_requests" integer, "sum_tokens" bigint);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_group_booking"') is null then
    create type "public"."google_ai_group_booking" as ("outcome" text, "minute_bucket" timestamp with time zone, "day_bucket" date, "reopens_at" timestamp with time zone, "recheck_at" timestamp with time zone, "cause" text, "admitted_at" timestamp with time zone, "quota" jsonb);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_outcome"') is null then
    create type "public"."google_ai_outcome" as ("outcome" text, "cause" text, "window_full" boolean);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_reservation"') is null then
    create type "public"."google_ai_reservation" as ("models" text[], "estimated_tokens" integer, "caller" text, "token_hash" text, "request_id" text, "exclude_key_ids" uuid[], "attempt" integer, "wait_ms" integer, "metadata" jsonb, "idempotent" boolean, "priority" text, "queue_ticket" uuid, "wait_left_ms" integer, "reply_by" timestamp with time zone, "hold_until" timestamp with time zone, "holder" uuid, "output_tokens" integer[]);
  end if;
end $migration$;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_ring"') is null then
    create type "public"."google_ai_ring" as ("ring_low" bigint, "ring" integer[], "sum_requests" integer, "sum_tokens" bigint);
  end if;
end $migration$;

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
        -- (After waiting for the row, the key read before the wait must still serve the group.)
        if v_candidate.waiting and not public.google_ai_key_serves(p_model.model, p_exclude_key_ids,
                                                                   v_candidate.key_id, v_candidate.quota_group) then
          raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
            using errcode = '40001';
        end if;
        exit;
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      v_try := row(v_candidate.full_by, null, null, public.google_ai_full_group_reopens_at(v_candidate.quota_group,
        v_candidate.full_by, v_candidate.cooldown_until, p_model, p_at, p_tokens, p_class.name, p_caller.name), null,
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

CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer DEFAULT NULL::integer)
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
    v_at := public.google_ai_counter_at(v_row, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true, 1,
      p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_at, p_tokens, p_output);
    v_minute := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if v_rules.outcome <> 'booked' then
      v_times := public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at, p_tokens);
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = v_minute then c.rpm_used else 0 end
                        + 1,
      tpm_used        = case when c.minute_bucket = v_minute then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_at.counts[1] + 1,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then 1 else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then 1 else 0 end,
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
                                    v_at.at, v_at.minute, 1, v_at.day, v_at.near_end, v_at.near_start) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    return row('booked', v_minute, v_at.day, null, null, null, v_at.at,
      public.google_ai_booked_quota(p_model, p_quota_group, v_at, v_rules.kept)
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

CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_model public.google_ai_model_limits, p_quota_group text, p_at public.google_ai_counter_at, p_kept jsonb)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
  select jsonb_build_object(
    'model', p_model.model,
    'quota_group', p_quota_group,
    'rpm', p_model.rpm,
    'requests_left', case when p_model.rpm is not null
                          then greatest(0, p_model.rpm operator(pg_catalog.-) p_at.sum_requests) end,
    'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute), p_at.at), p_at.at) end,
    'tpm', p_model.tpm,
    'tokens_left', case when p_model.tpm is not null
                        then greatest(0, p_model.tpm operator(pg_catalog.-) p_at.sum_tokens) end,
    'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute, true), p_at.at), p_at.at) end,
    'rpd', p_model.rpd,
    'day_left', case when p_model.rpd is not null
                     then greatest(0, p_model.rpd operator(pg_catalog.-) (greatest(p_at.counts[1],
                                        case when p_at.near_end then p_at.counts[2] end,
                                        case when p_at.near_start then p_at.counts[3] end)
                                       operator(pg_catalog.+) 1)) end,
    'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
      case when p_at.near_start and p_at.counts[3] operator(pg_catalog.>) p_at.counts[1] then p_at.day_start
           else p_at.midnight end operator(pg_catalog.+) p_at.day_guard, p_at.at) end,
    'kept', p_kept)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text)
 RETURNS public.google_ai_outcome
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class and p_caller are unused by design, handed down whole for the rule that
-- reads them next, as said above; extra_warnings says nothing else in a body this short.)
declare
  -- The day has no room for this requester (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + 1 > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + 1 > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + 1 > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + 1 > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + 1 > p_model.rpd) or (p_at.near_start and p_at.counts[3] + 1 > p_model.rpd));
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
      v_pace_kept, v_pace_used, v_pace_next, p_at.zone);
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
    spread_at, v_step.limit_name);
  return row(v_verdict.outcome, v_verdict.cause, v_verdict.window_full, paced_until, spread_at, v_step.step,
    v_held[1], live, owned, kept, input_until, output_until)::public.google_ai_booking_verdict;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_counted(p_budget public.google_ai_budget, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_b public.google_ai_budget := case when p_book then public.google_ai_budget_on(p_budget, p_day) else p_budget end;
begin
  if p_book or p_budget.period = 'life' or p_budget.bucket = p_day then
    v_b.requests := greatest(0, v_b.requests + p_requests);
    v_b.tokens := greatest(0, v_b.tokens + p_tokens);
    v_b.spent_usd := greatest(0, v_b.spent_usd + p_usd);
  end if;
  if p_book or p_budget.month_bucket = pg_catalog.date_trunc('month', p_day)::date then
    v_b.spent_month_usd := greatest(0, v_b.spent_month_usd + p_usd);
  end if;
  return v_b;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_left(p_budget public.google_ai_budget, p_day date, OUT requests integer, OUT tokens bigint, OUT usd numeric, OUT month_usd numeric)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, p_day);
begin
  requests := v_b.max_requests - least(v_b.max_requests, v_b.requests);
  tokens := v_b.max_tokens - least(v_b.max_tokens, v_b.tokens);
  usd := v_b.max_usd - least(v_b.max_usd, v_b.spent_usd);
  month_usd := v_b.monthly_max_usd - least(v_b.monthly_max_usd, v_b.spent_month_usd);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_caller_budgets)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_clients)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_tokens)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
begin
  return row('life', p_row.max_requests, p_row.max_tokens, p_row.max_usd, null, p_row.requests_used,
    p_row.tokens_used, p_row.spent_usd, null, null, null)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
declare
  v_current boolean := p_budget.period = 'life' or p_budget.bucket = p_day;
  v_month date := pg_catalog.date_trunc('month', p_day)::date;
begin
  return row(p_budget.period, p_budget.max_requests, p_budget.max_tokens, p_budget.max_usd,
    case when p_budget.period = 'day' then p_day end, case when v_current then p_budget.requests else 0 end,
    case when v_current then p_budget.tokens else 0 end, case when v_current then p_budget.spent_usd else 0 end,
    p_budget.monthly_max_usd, v_month,
    case when p_budget.month_bucket = v_month then p_budget.spent_month_usd else 0 end)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_budget_verdict(p_budget public.google_ai_budget, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text, OUT period text, OUT reopens_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, public.google_ai_pacific_day(p_at));
begin
  if v_b.requests + p_requests > v_b.max_requests or v_b.tokens + p_tokens > v_b.max_tokens then
    cause := 'budget';
  elsif v_b.max_usd is not null and (p_worst is null or p_worst + v_b.spent_usd > v_b.max_usd) then
    cause := 'spend_budget';
  elsif v_b.monthly_max_usd is not null
        and (p_worst is null or p_worst + v_b.spent_month_usd > v_b.monthly_max_usd) then
    cause := 'spend_budget';
    period := 'month';
    reopens_at := public.google_ai_pacific_start((v_b.month_bucket + interval '1 month')::date);
  else
    return;
  end if;
  period := coalesce(period, v_b.period);
  reopens_at := case when cause = 'spend_budget' and p_worst is null then null
                     when period = 'day' then public.google_ai_pacific_midnight_after(p_at) else reopens_at end;
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
  v_ring record := public.google_ai_ring_at(case when not p_settled then v_at end, v_minute, p_row.ring_low,
    p_row.ring, p_row.window_requests, coalesce(p_row.window_tokens, 0), p_requests, p_tokens,
    case when p_settled then v_at end);
begin
  return row(v_at, v_minute, v_day_guard, p_zone, v_day, public.google_ai_day_counts(p_row.day_bucket, p_row.rpd_used,
    p_row.rpd_next_used, p_row.rpd_prev_used, v_day), v_midnight, v_start, v_at >= v_midnight - v_day_guard,
    v_at < v_start + v_day_guard, v_ring.ring_low, v_ring.ring, v_ring.sum_requests,
    v_ring.sum_tokens)::public.google_ai_counter_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_is_attempt_status(p_status text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_status = any ('{reserved,refused,succeeded,upstream_error,network_error,timeout,cut,withdrawn,google_error,
    released,abandoned}'::text[]);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_is_quota_cause(p_cause text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_cause = any ('{minute,day,limit_zero,spend_cap,monthly_cap,billing_cap,credits_depleted,unknown}'::text[]);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model public.google_ai_model_limits, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  v_spread record;
  v_spaced boolean;
  v_group record;
  v_ring record;
  v_expiries timestamptz[];
  v_count integer;
  v_room integer;
  v_part numeric;
  v_needed integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}'::timestamptz[];
  v_likely timestamptz[] := '{}'::timestamptz[];
  v_day_left bigint := 0;
begin
  free_now := 0;
  spread_bound := false;
  kept_bound := false;
  -- The schedule as google_ai_schedule_place keeps it: a request bucket (bucket_share) for every class.
  v_spread := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_model.rpm * p_model.bucket_share))::integer end, v_window, p_model.rpm, null, 0);
  v_spaced := v_spread.step is not null and (p_model.bucket_share is not null or p_rank is null
              or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank));
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model.model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model.model, u.share_use, p_now, v_window, p_class, p_caller) as held
    from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, null, p_model.rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model.model
  loop
    continue when v_group.cooldown_until is not null or (p_model.rpd is not null and v_group.rpd_used >= p_model.rpd);
    v_day_left := v_day_left + coalesce(p_model.rpd - v_group.rpd_used, 1000000);
    if p_model.rpm is null then
      free_now := 1000000;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := case when p_model.bucket_share is null or v_group.held > 0
                       then public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window) else '{}' end;
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave with their seconds (google_ai_ring_at).
    v_room := p_model.rpm - v_group.held;
    kept_bound := kept_bound or (v_count < p_model.rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_spaced and v_openings[1] <= p_now and v_group.spread_until - v_spread.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(p_model.rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_spaced then v_spread.step end, v_spread.tolerance, p_model.bucket_share is null);
    for k in 1 .. p_slots loop
      v_slots := v_slots || v_group_slots[k];
      free_now := free_now + case when v_group_slots[k] <= p_now then 1 else 0 end;
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now).
  -- None when the shares this waiter does not own keep every group's window from it: the booking
  -- names when, if ever, one has room for it.
  turn_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_slots, p_slots, p_now) end;
  likely_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_likely, p_slots, p_now) end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_budget(p_now timestamp with time zone, p_token public.google_ai_tokens, p_owner public.google_ai_budget)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'token_requests_left', t.requests, 'token_tokens_left', t.tokens, 'token_expires_at', p_token.expires_at,
    'token_max_usd', p_token.max_usd, 'token_usd_left', t.usd,
    'usd_applies_to', case when p_token.id is not null then 'client' when p_owner.period is not null then 'caller' end,
    'daily_requests_left', o.requests, 'daily_tokens_left', o.tokens,
    'daily_resets_at', case when num_nonnulls(p_owner.max_requests, p_owner.max_tokens) > 0
                            then public.google_ai_pacific_midnight_after(p_now) end,
    'daily_max_usd', p_owner.max_usd, 'daily_usd_left', o.usd,
    'monthly_max_usd', p_owner.monthly_max_usd, 'monthly_usd_left', o.month_usd,
    'spend', case when p_owner.period is not null then jsonb_build_object('today_usd', (b.owner).spent_usd,
                                                                   'month_usd', (b.owner).spent_month_usd) end)
  from (select public.google_ai_pacific_day(p_now) as day) d
  cross join lateral (select public.google_ai_budget_on(p_owner, d.day) as owner) b
  cross join lateral public.google_ai_budget_left(public.google_ai_budget_of(p_token), d.day) t
  cross join lateral public.google_ai_budget_left(p_owner, d.day) o
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
      public.google_ai_request_counts(p_request.attempt), p_request.estimated_tokens, p_booked_usd, true);
  end if;
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output)
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

CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone)
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
      p_at.at, p_at.minute, p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name);
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
  if p_call.reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_call.reply_by, 'hold_until', p_call.hold_until, 'holder',
        p_call.holder)));
  end if;
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_queue_reply_check). (Assigned,
  -- not performed: a perform is a statement of its own, counted about 6k instructions more.)
  v_reply_by := pg_catalog.set_config('google_ai.reply_by', coalesce(case
    when pg_catalog.jsonb_typeof(v_metadata -> '$holder') = 'object'
    then public.google_ai_holder_time(v_metadata -> '$holder', 'reply_by')::text end, ''), true);
  v_request := row(p_call.models[1], p_call.caller, null, null, p_call.token_hash, p_call.request_id,
    coalesce(p_call.attempt, 1), p_call.estimated_tokens, p_call.output_tokens[1], coalesce(p_call.wait_ms, 0),
    p_call.wait_left_ms, v_metadata, p_call.priority, coalesce(p_call.exclude_key_ids, '{}'), p_call.queue_ticket,
    coalesce(p_call.idempotent, false));
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

CREATE OR REPLACE FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0, p_admitted_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.google_ai_ring
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
declare
  -- (date_part: a double is exact to the microsecond here, and far cheaper than extract's numeric.)
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_second bigint;
  v_us integer;
  v_i integer;
  v_count integer; v_tokens integer;  -- the second's count and tokens after this
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
  if p_admitted_at is null and p_requests > 0 and p_tokens >= 0 and v_now is not null then
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
  v_second := floor(date_part('epoch', coalesce(p_admitted_at, p_at)))::bigint;
  v_us := round((date_part('epoch', coalesce(p_admitted_at, p_at)) - v_second) * 1000000)::integer;
  if v_second < ring_low or v_second >= ring_low + v_span then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  v_i := (v_second % v_span)::integer * 4;
  if p_admitted_at is not null and ring[v_i + 1] = 0 then -- (a correction for a second that left)
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  -- (A request given back from before the second's first left already, with it.)
  v_count := case when p_requests > 0 or v_us >= ring[v_i + 3] then greatest(0, ring[v_i + 1] + p_requests)
                  else ring[v_i + 1] end;
  v_tokens := case when sum_tokens is not null then greatest(0, ring[v_i + 2] + p_tokens) else ring[v_i + 2] end;
  sum_requests := sum_requests + v_count - ring[v_i + 1];
  sum_tokens := sum_tokens + v_tokens - ring[v_i + 2];
  -- The second written as one slice: element by element, PL/pgSQL unpacks the whole array and packs it
  -- again (counted: about 40k instructions more a booking). Its first and last times: a booking's when it
  -- is the second's first, else the earliest and latest; a request given back leaves the last.
  ring[v_i + 1 : v_i + 4] := case
    when v_count = 0 then '{0,0,0,0}'::integer[]
    when p_requests > 0 and v_count = p_requests then array[v_count, v_tokens, v_us, v_us]
    when p_requests > 0 then array[v_count, v_tokens, least(ring[v_i + 3], v_us), greatest(ring[v_i + 4], v_us)]
    when p_requests < 0 then array[v_count, v_tokens, ring[v_i + 4], ring[v_i + 4]]
    else array[v_count, v_tokens, ring[v_i + 3], ring[v_i + 4]] end;
  return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
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
  v_day_requests integer := 1;
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
    v_day_requests := -1;
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

CREATE OR REPLACE FUNCTION public.google_ai_token_refusal(p_token public.google_ai_tokens, p_client public.google_ai_clients, p_at timestamp with time zone)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case when p_token.id is null then 'token_invalid'
              when p_token.revoked_at is not null or p_client.revoked_at is not null then 'token_revoked'
              when p_token.expires_at <= p_at then 'token_expired' end
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
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens);
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

CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_holder jsonb := new.metadata -> '$holder';
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  new.metadata := new.metadata - '$holder';
  if pg_catalog.jsonb_typeof(v_holder) is distinct from 'object' then
    return new;
  end if;
  new.reply_by := public.google_ai_holder_time(v_holder, 'reply_by');
  -- The invocation it names (null when absent); anything but a uuid is a clear 22023.
  if v_holder -> 'holder' is not null and not (pg_catalog.jsonb_typeof(v_holder -> 'holder') = 'string'
     and (v_holder ->> 'holder') ~ '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$') then
    raise exception 'metadata key $holder is the gateway''s own: its holder must be a uuid' using errcode = '22023';
  end if;
  new.holder := (v_holder ->> 'holder')::uuid;
  -- Never before reply_by; none when the statement names none (then the claim keeps its lease).
  new.hold_until := case when v_holder ? 'hold_until'
                         then greatest(public.google_ai_holder_time(v_holder, 'hold_until'), new.reply_by) end;
  if new.request_id is not null and new.hold_until is not null and new.holder is not null then
    update public.google_ai_responses r set
      expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
      holder = new.holder
    where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
      and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
      and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, v_now) is not null;
  end if;
  return new;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_buckets_settled(p_att public.google_ai_attempts, p_tokens integer, p_released boolean, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_window interval, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
  v_output integer := p_att.booked_output_tokens;
  v_input integer;
  v_used_input integer;
  v_used_output integer := v_output;
  v_window_us numeric := extract(epoch from p_window) * 1000000;
  v_itpm integer; v_otpm integer;
begin
  select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
  v_input := p_att.estimated_tokens - case when v_model.booked_output_tokens is not null then v_output else 0 end;
  v_used_input := v_input;
  if p_released then
    select 0, 0 into v_used_input, v_used_output;
  elsif p_att.input_tokens is not null then
    v_used_input := p_att.input_tokens
      - case when v_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end;
    v_used_output := coalesce(p_att.output_tokens, 0);
  elsif p_tokens < p_att.estimated_tokens then
    v_used_output := 0;
  end if;
  -- What goes back moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was
  -- taken. No limit, or nothing to give back: as it was. (The limits after the margin, as the booking took
  -- them: google_ai_request_limits.)
  v_itpm := public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin);
  v_otpm := public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin);
  input_until := case when v_itpm is null or coalesce(v_input - v_used_input, 0) <= 0 then p_input_until
    else p_input_until - floor(v_window_us * (v_input - v_used_input) / v_itpm) * interval '1 microsecond' end;
  output_until := case when v_otpm is null or coalesce(v_output - v_used_output, 0) <= 0 then p_output_until
    else p_output_until - floor(v_window_us * (v_output - v_used_output) / v_otpm) * interval '1 microsecond' end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid, p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits, p_output integer, p_class text, OUT day date, OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text)
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
    public.google_ai_request_counts(p_attempt), p_tokens, worst) v;
end
$function$
;

create or replace view "public"."google_ai_caller_budgets_today" as  SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_start((public.google_ai_pacific_day(now()) + 1)) AS resets_at,
    b.notes
   FROM (public.google_ai_caller_budgets b
     CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b.*), public.google_ai_pacific_day(now())) u(period, max_requests, max_tokens, max_usd, bucket, requests, tokens, spent_usd, monthly_max_usd, month_bucket, spent_month_usd));

CREATE OR REPLACE FUNCTION public.google_ai_candidate_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone)
 RETURNS TABLE(quota_group text, priority integer, cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, headroom numeric, key_id uuid, key_alias text, env_var_name text, full_by text, day_zone text)
 LANGUAGE sql
 STABLE
AS $function$
  with keys as (
    select distinct on (s.quota_group) s.quota_group, s.priority, s.key_id, s.key_alias, s.env_var_name, s.provider
    from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
    order by s.quota_group, s.priority nulls last, s.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until, p.day_zone,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_day_in(p_now, p.day_zone)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_providers p on p.name operator(pg_catalog.=) g.provider
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join lateral (select cd.cooldown_until from public.google_ai_cooldowns cd
                       where cd.quota_group operator(pg_catalog.=) g.quota_group
                         and cd.model operator(pg_catalog.=) p_model and cd.cooldown_until operator(pg_catalog.>) p_now
                       offset 0) cd on true
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         least(coalesce(1 operator(pg_catalog.-) (u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0)), 1)),
         u.key_id, u.key_alias, u.env_var_name,
         case when u.cooldown_until is not null then 'cooldown'
              when p_rpd is not null and u.rpd_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpd then 'rpd'
              when p_rpm is not null and u.rpm_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpm then 'rpm'
         end, coalesce(u.day_zone, 'UTC')
  from usage u
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer DEFAULT 1)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_reason text;
  v_minute timestamptz := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
  v_reason := public.google_ai_token_refusal(v_token, v_client, pg_catalog.clock_timestamp());

  if v_reason is null then
    return jsonb_build_object('status', 'ok', 'token_id', v_token.id, 'client', v_client.name,
      'models', v_token.models, 'expires_at', v_token.expires_at, 'max_output_tokens', v_client.max_output_tokens);
  end if;

  if p_refusals is distinct from 0 then
    insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
    values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
    on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
      refusals = r.refusals + excluded.refusals,
      last_seen = pg_catalog.clock_timestamp();
  end if;
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_count_budgets(p_token_id uuid, p_client_id uuid, p_caller text, p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := coalesce(case when p_client_id is null then p_day end, public.google_ai_pacific_day(p_at));
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_usd numeric := coalesce(p_usd, 0);
begin
  if p_requests = 0 and p_tokens = 0 and v_usd = 0 and not p_book then
    return;
  end if;
  if p_token_id is not null then
    update public.google_ai_tokens t set (requests_used, tokens_used, spent_usd) = (select n.requests, n.tokens,
        n.spent_usd from public.google_ai_budget_counted(public.google_ai_budget_of(t), v_day, p_requests, p_tokens,
        v_usd, p_book) n), last_used_at = case when p_book then p_at else t.last_used_at end
    where t.id = p_token_id;
    update public.google_ai_clients c set (day_bucket, requests_today, tokens_today, spent_today_usd, month_bucket,
        spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket, n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(c), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where c.id = p_client_id and (p_book or c.day_bucket = v_day or c.month_bucket = v_month);
  elsif p_client_id is null then
    update public.google_ai_caller_budgets b set (day_bucket, requests_today, tokens_today, spent_today_usd,
        month_bucket, spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket,
        n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(b), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where b.caller = p_caller and (p_book or b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404, p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_successor text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    error_message = v_message,
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(v_att.token_id, v_att.client_id, v_att.caller, v_att.created_at,
    public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)), 0, -v_att.estimated_tokens,
    -v_att.booked_usd, false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = case when pg_catalog.lower(p_successor) <> pg_catalog.lower(v_att.model)
                            then left(p_successor, 100) end
  where l.model = v_att.model and l.withdrawn_at is null;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', found,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_full_group_reopens_at(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE
AS $function$
  select case p_full_by
           when 'cooldown' then p_cooldown_until
           when 'rpd' then public.google_ai_midnight_after_in(p_at, public.google_ai_day_zone(p_model.model))
                           operator(pg_catalog.+) ((public.google_ai_admission_guard()).day_guard_ms
                                                   operator(pg_catalog.*) interval '1 millisecond')
           else public.google_ai_window_reopens_for(p_quota_group, p_model.model, p_at,
             public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
             p_model.rpm, p_model.tpm, p_tokens, p_class, p_caller) end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer, p_rpd integer, p_now timestamp with time zone, OUT requests_left integer, OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint, OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone, OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of p_now, in the provider's day
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  -- (The pool's row when the model names one: limit_pool, where google_ai_book_group books it.)
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce((select l.limit_pool from public.google_ai_model_limits l
                                                              where l.model = p_model), p_model);

  -- The minute and the day, counted as google_ai_book_group counts them (google_ai_counter_at): the ring
  -- moved on to p_now, the next to leave the window its oldest seconds; within the guard of a midnight
  -- the other day's count binds too.
  v_at := public.google_ai_counter_at(v_row, public.google_ai_day_zone(p_model), p_now, false);
  if p_rpm is not null then
    requests_left := greatest(0, p_rpm - v_at.sum_requests);
    requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute), p_now);
  end if;
  if p_tpm is not null then
    tokens_left := greatest(0, p_tpm - v_at.sum_tokens);
    tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute, true), p_now);
  end if;
  if p_rpd is not null then
    day_left := greatest(0, p_rpd - greatest(v_at.counts[1], case when v_at.near_end then v_at.counts[2] else 0 end,
                                             case when v_at.near_start then v_at.counts[3] else 0 end));
    day_reset_at := case when v_at.near_start and v_at.counts[3] > v_at.counts[1] then v_at.day_start
                         else v_at.midnight end + v_at.day_guard;
  end if;

  -- A group cooling down admits nothing until the cooldown ends (and its window has room then).
  if cooldown_until is not null then
    if p_rpm is not null then
      requests_reset_at := greatest(cooldown_until, case when requests_left = 0 then requests_reset_at end);
      requests_left := 0;
    end if;
    if p_tpm is not null then
      tokens_reset_at := greatest(cooldown_until, case when tokens_left = 0 then tokens_reset_at end);
      tokens_left := 0;
    end if;
    if p_rpd is not null and cooldown_until >= v_at.midnight then
      day_left := 0; -- the provider's per-day refusal: the cooldown lasts until its midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
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
  v_step record;
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
    v_log_id := public.google_ai_log_maintenance_run('housekeeping', '{}', 0, v_started,
      pg_catalog.clock_timestamp(), 'skipped',
      jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now));
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);
  for v_step in select * from public.google_ai_housekeeping_steps(v_now, v_settings) loop
    v_result := public.google_ai_housekeeping_step(v_now, v_settings, v_started + v_settings.time_budget,
      v_step.fn, v_step.rel, v_step.key, v_step.condition, v_step.cutoff, v_step.sort);
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
  v_result := jsonb_build_object(
    'duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps,
    'failed_steps', to_jsonb(v_failed),
    'more_pending', v_more);
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

CREATE OR REPLACE FUNCTION public.google_ai_metric_gauges(p_at timestamp with time zone, p_mark bigint)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with live as (
    select a.status, a.model, a.quota_group from public.google_ai_attempts a where a.id > p_mark
  ), last_run as (
    select m.completed_at, m.status from public.google_ai_maintenance_log m
    where m.operation = 'housekeeping' and m.status <> 'skipped'
    order by m.started_at desc limit 1
  ), gauges (family, labels, value) as (
    select 'eve_gateway_attempts_in_flight', concat_ws(',', public.google_ai_metric_label('model', a.model),
             public.google_ai_metric_label('quota_group', a.quota_group)), count(*)::numeric
    from live a where a.status = 'reserved' group by a.model, a.quota_group
    union all
    select 'eve_gateway_metrics_live_rows', '', count(*)::numeric from live
    union all
    select 'eve_gateway_pacific_day_end_timestamp_seconds', '',
           extract(epoch from public.google_ai_pacific_midnight_after(p_at))
    union all
    select 'eve_gateway_queue_depth', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)), count(*)::numeric
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_queue_oldest_wait_seconds', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)),
           round(extract(epoch from (p_at - min(q.enqueued_at))), 3)
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_cooldown_seconds_left', concat_ws(',', public.google_ai_metric_label('model', cd.model),
             public.google_ai_metric_label('quota_group', cd.quota_group),
             public.google_ai_metric_label('provider',
               (select v.provider from public.google_ai_model_provider(cd.model) v)),
             public.google_ai_metric_label('cause', coalesce(cd.cause, 'unknown'))),
           round(extract(epoch from (cd.cooldown_until - p_at)), 3)
    from public.google_ai_cooldowns cd where cd.cooldown_until > p_at
    union all
    select 'eve_gateway_model_withdrawn', public.google_ai_metric_label('model', l.model),
           case when l.withdrawn_at is not null then 1 else 0 end
    from public.google_ai_model_limits l where l.is_active
    union all
    select 'eve_gateway_model_shutdown_timestamp_seconds',
           concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('successor', l.successor)),
           extract(epoch from l.shutdown_date::timestamp at time zone 'UTC')
    from public.google_ai_model_limits l where l.is_active and l.shutdown_date is not null
    union all
    select 'eve_gateway_keys', concat_ws(',', public.google_ai_metric_label('provider', k.serves_provider),
             public.google_ai_metric_label('quota_group', public.google_ai_quota_group(k.project_id, k.id)),
             public.google_ai_metric_label('health', coalesce(h.status, 'unchecked')),
             public.google_ai_metric_label('active', k.is_active::text)), count(*)::numeric
    from public.google_ai_api_keys k left join public.google_ai_key_health h on h.api_key_id = k.id
    group by 2
    union all
    select 'eve_gateway_caller_budget_remaining', concat_ws(',', public.google_ai_metric_label('caller', b.caller),
             public.google_ai_metric_label('unit', x.unit)), x.left_today
    from (select 'client:' || c.name as caller, public.google_ai_budget_of(c) as budget
          from public.google_ai_clients c where c.revoked_at is null
          union all
          select s.caller, public.google_ai_budget_of(s) from public.google_ai_caller_budgets s) b
    cross join lateral public.google_ai_budget_left(b.budget, public.google_ai_pacific_day(p_at)) l
    cross join lateral (values ('requests', l.requests::numeric), ('tokens', l.tokens::numeric)) x(unit, left_today)
    where x.left_today is not null
    union all
    select 'eve_gateway_housekeeping_last_run_timestamp_seconds', '', extract(epoch from r.completed_at)
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_run_failed', '', case when r.status = 'failed' then 1 else 0 end
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_success_timestamp_seconds', '', extract(epoch from m.completed_at)
    from (select m.completed_at from public.google_ai_maintenance_log m
          where m.operation = 'housekeeping' and m.status = 'succeeded' order by m.started_at desc limit 1) m
  )
  select g.family, g.family, g.labels, g.value from gauges g
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[] DEFAULT NULL::text[], p_ttl_seconds integer DEFAULT NULL::integer, p_max_requests integer DEFAULT NULL::integer, p_max_tokens integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_client public.google_ai_clients;
  v_models text[];
  v_ttl interval;
  v_max_requests integer;
  v_max_tokens integer;
  v_recent integer;
  v_oldest timestamptz;
  v_token_id uuid;
  v_expires timestamptz;
  v_allowed jsonb;
  v_left record;
begin
  if p_token_hash is null or p_token_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'p_token_hash must be a SHA-256 hex digest' using errcode = '22023';
  end if;

  select * into v_client from public.google_ai_clients c where c.secret_hash = p_secret_hash for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'invalid_secret');
  end if;
  if v_client.revoked_at is not null then
    return jsonb_build_object('ok', false, 'error', 'client_revoked');
  end if;

  -- Default lifetime: one hour, or the client's maximum if that is shorter.
  v_ttl := coalesce(make_interval(secs => p_ttl_seconds), least(interval '1 hour', v_client.max_token_ttl));
  v_allowed := jsonb_build_object('models', v_client.models,
    'max_ttl_seconds', extract(epoch from v_client.max_token_ttl)::integer,
    'max_requests', v_client.token_max_requests, 'max_tokens', v_client.token_max_tokens);

  if p_models is null then
    v_models := v_client.models;
  else
    select array_agg(distinct coalesce((public.google_ai_resolve_model(m)).model,
      m)) into v_models from unnest(p_models) m;
  end if;
  if v_models is null or cardinality(v_models) = 0 or not (v_models <@ v_client.models)
     or (p_ttl_seconds is not null and (p_ttl_seconds < 60 or v_ttl > v_client.max_token_ttl))
     or (p_max_requests is not null and (p_max_requests < 1
       or p_max_requests > coalesce(v_client.token_max_requests, p_max_requests)))
     or (p_max_tokens is not null and (p_max_tokens < 1
       or p_max_tokens > coalesce(v_client.token_max_tokens, p_max_tokens))) then
    return jsonb_build_object('ok', false, 'error', 'scope_exceeded', 'allowed', v_allowed);
  end if;
  v_max_requests := coalesce(p_max_requests, v_client.token_max_requests);
  v_max_tokens := coalesce(p_max_tokens, v_client.token_max_tokens);

  select count(*), min(t.created_at) into v_recent, v_oldest
  from public.google_ai_tokens t
  where t.client_id = v_client.id and t.created_at > now() - interval '1 hour';
  if v_recent >= v_client.mint_per_hour then
    return jsonb_build_object('ok', false, 'error', 'mint_rate_limited',
      'retry_after_ms', public.google_ai_ms_until(v_oldest + interval '1 hour', now()));
  end if;

  v_expires := now() + v_ttl;
  v_left := public.google_ai_budget_left(public.google_ai_budget_of(v_client),
    public.google_ai_pacific_day(pg_catalog.clock_timestamp()));
  insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, max_tokens, max_usd)
  values (v_client.id, p_token_hash, v_models, v_expires, v_max_requests, v_max_tokens, v_client.token_max_usd)
  returning id into v_token_id;

  return jsonb_build_object('ok', true, 'token_id', v_token_id, 'client', v_client.name, 'expires_at', v_expires,
    'models', to_jsonb(v_models), 'budget', jsonb_build_object('max_requests',
      v_max_requests, 'max_tokens', v_max_tokens,
      -- The budgets in money that apply to the token's calls: its own for its life, its client's left of
      -- the Pacific day and month (null: none).
      'max_usd', v_client.token_max_usd,
      'daily_usd_left', v_left.usd, 'monthly_usd_left', v_left.month_usd));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_cooldowns(p_model text, p_now timestamp with time zone, p_show_groups boolean)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(c) - case when p_show_groups then '' else 'quota_group' end
                   order by c.cooldown_until, c.quota_group), '[]')
  from (select cd.quota_group, cd.cause, cd.cooldown_until,
               public.google_ai_ms_until(cd.cooldown_until, p_now) as retry_after_ms
        from public.google_ai_cooldowns cd
        where cd.model = p_model and cd.cooldown_until > p_now) c
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_not_open(p_reservation_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return jsonb_build_object('ok', false, 'error', 'not_open',
    'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, OUT ticket uuid, OUT rank smallint, OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text, OUT cause text, OUT turn_at timestamp with time zone)
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

  select count(*), count(*) filter (where q.expected_at <= p_now),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model, p_exclude_key_ids, p_now, v_ahead + 1, rank, class, p_caller.name) t;
  -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks. (No turn,
  -- none today anywhere or every window kept from it by shares: the booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead < v_free_now
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
  select count(*), min(q.lease_until) filter (where q.expected_at <= p_now) into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + 1, p_class.rank,
    p_class.name, p_request.caller) t;
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
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
    returning * into v_ticket;
    answer := jsonb_build_object(
      'ok', false,
      'limit', p_refusal.limit_hit,
      'cause', p_refusal.cause,
      'retry_after_ms', public.google_ai_ms_until(expected, p_now),
      'retry_at', expected,
      'model', p_limits.model,
      'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                  'expected_at', expected, 'priority', p_class.name));
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_models text[];
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_owner public.google_ai_budget;  -- the token's client's or the service caller's (null: none)
  v_budget jsonb;
  v_refused text;  -- why the token can never be admitted
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    v_refused := public.google_ai_token_refusal(v_token, v_client, v_now);
    if v_refused is not null then
      return jsonb_build_object('ok', false, 'status', v_refused);
    end if;
    v_models := v_token.models;
    v_owner := public.google_ai_budget_of(v_client);
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: v_owner stays null.
    v_owner := (select public.google_ai_budget_of(b) from public.google_ai_caller_budgets b where b.caller = p_caller);
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;
  v_budget := public.google_ai_quota_report_budget(v_now, v_token, v_owner);

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    -- (A service caller has no token: its token fields are null. The money's: the token's for its life,
    -- and its client's, or the service caller's, day and month; null: none.)
    'budget', v_budget - 'spend',
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_budget -> 'spend',
    'models', public.google_ai_quota_report_models(v_now, v_models, p_token_hash is null, v_owner_class,
      v_owner_caller),
    'withdrawn', public.google_ai_quota_report_withdrawn(v_models));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_withdrawn(p_models text[])
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
  from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
               l.shutdown_date
        from public.google_ai_model_limits l
        where l.withdrawn_at is not null and (p_models is null or l.model = any (p_models))) w
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_row public.google_ai_model_limits;
begin
  -- (The row as one whole-row value: one column to set up, not one per column; counted, 6.5k less.)
  v_row := (select m from public.google_ai_model_limits m where m.model = p_model and m.is_active);
  if v_row.id is null then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  -- (No margin leaves every limit as it is, but a negative one: the row then goes on as read. A row with a
  -- field set is formed again at every call it is handed to: counted, about 60k less a reservation.)
  if v_row.safety_margin is distinct from 0 or least(v_row.rpm, v_row.tpm, v_row.rpd) < 0 then
    v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
    v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
    v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
    if v_row.itpm is not null or v_row.otpm is not null then
      v_row.itpm := public.google_ai_effective_limit(v_row.itpm, v_row.safety_margin);
      v_row.otpm := public.google_ai_effective_limit(v_row.otpm, v_row.safety_margin);
    end if;
    v_row.safety_margin := 0;
  end if;
  return v_row;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  return public.google_ai_reserve_models_at(null, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket,
    p_wait_left_ms, p_reply_by, p_hold_until, p_holder, p_output_tokens)::public.google_ai_reservation);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the admission, corrected in its second
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -1 else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce((select l.limit_pool
    from public.google_ai_model_limits l where l.model = p_att.model), p_att.model)
  for update;
  if not found then
    return;
  end if;
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (near_end, near_start: only a release gives those counts back; a finalize reads no zone).
  v_at := public.google_ai_counter_at(v_row, case when p_released then public.google_ai_day_zone(p_att.model) end,
    p_att.admitted_at, false, v_requests, case when p_att.admitted_at is not null then v_delta else 0 end, true);
  if p_att.booked_output_tokens is not null then
    select b.input_until, b.output_until into v_row.input_until, v_row.output_until
    from public.google_ai_buckets_settled(p_att, p_tokens, p_released, v_row.input_until, v_row.output_until,
      v_at.minute) b;
  end if;

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + v_delta) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - 1) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_end
                         then greatest(0, c.rpd_next_used - 1) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_at.near_start
                         then greatest(0, c.rpd_prev_used - 1) else c.rpd_prev_used end,
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
  v_count_request integer := public.google_ai_request_counts(p_request.attempt);
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

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request.request_id, caller, client_id, token_id, v_model, p_request.model,
    coalesce(p_request.attempt, 1), p_request.estimated_tokens, v_limit,
    coalesce(v_cause, public.google_ai_refusal_cause(v_limit)), v_retry_ms, p_request.wait_ms,
    coalesce(p_request.metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', coalesce(v_cause,
    public.google_ai_refusal_cause(v_limit)),
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end;
end
$function$
;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_attempts"'::regclass
                 and conname = 'google_ai_attempts_quota_cause_check') then
    alter table "public"."google_ai_attempts" add constraint "google_ai_attempts_quota_cause_check" CHECK (public.google_ai_is_quota_cause(quota_cause)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_attempts" validate constraint "google_ai_attempts_quota_cause_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_attempts"'::regclass
                 and conname = 'google_ai_attempts_status_check') then
    alter table "public"."google_ai_attempts" add constraint "google_ai_attempts_status_check" CHECK (public.google_ai_is_attempt_status(status)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_attempts" validate constraint "google_ai_attempts_status_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_cooldowns"'::regclass
                 and conname = 'google_ai_cooldowns_cause_check') then
    alter table "public"."google_ai_cooldowns" add constraint "google_ai_cooldowns_cause_check" CHECK (public.google_ai_is_quota_cause(cause)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_cooldowns" validate constraint "google_ai_cooldowns_cause_check";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_book_best_group(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer, p_output integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer, p_now timestamp with time zone, p_skip_locked boolean, p_zone text, p_output integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booked_quota(p_model public.google_ai_model_limits, p_quota_group text, p_at public.google_ai_counter_at, p_kept jsonb) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_outcome(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_held_rpm bigint, p_held bigint[], p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_booking_rules(p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at, p_tokens integer, p_output integer) from public, anon, authenticated, service_role;
comment on type public.google_ai_budget is 'A budget and its use: requests, tokens and money (US dollars) per period (life: a token''s; day: a Pacific day, bucket), money per Pacific month (month_bucket); null: no limit.';
revoke all on function public.google_ai_budget_counted(p_budget public.google_ai_budget, p_day date, p_requests integer, p_tokens integer, p_usd numeric, p_book boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_left(p_budget public.google_ai_budget, p_day date, OUT requests integer, OUT tokens bigint, OUT usd numeric, OUT month_usd numeric) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_of(p_row public.google_ai_caller_budgets) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_budget_of(p_row public.google_ai_caller_budgets) to service_role;
revoke all on function public.google_ai_budget_of(p_row public.google_ai_clients) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_of(p_row public.google_ai_tokens) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date) to service_role;
revoke all on function public.google_ai_budget_verdict(p_budget public.google_ai_budget, p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text, OUT period text, OUT reopens_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_caller_budgets."daily_max_usd" is 'The most the caller''s calls may cost in US dollars per Pacific day (monthly_max_usd: per Pacific month; null: no limit), booked and settled as a client''s (google_ai_clients.daily_max_usd). Refusal caller_budget.';
revoke all on table public.google_ai_caller_budgets_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_caller_budgets_today to service_role;
alter view public.google_ai_caller_budgets_today set (security_invoker='true');
comment on view public.google_ai_caller_budgets_today is 'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';
comment on column public.google_ai_clients."daily_max_usd" is 'The most the client''s calls may cost in US dollars per Pacific day (null: no limit): a reservation books its worst case (google_ai_worst_call_cost) in spent_today_usd and spent_month_usd, finalize settles it on the call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';
comment on type public.google_ai_counter_at is 'A quota group''s counter row as of an instant (google_ai_counter_at): the guards, the provider''s day, its counts, midnight, near-end, near-start and the ring moved on, as booking, the quota read and settling read them.';
revoke all on function public.google_ai_counter_at(p_row public.google_ai_usage_counters, p_zone text, p_at timestamp with time zone, p_locked boolean, p_requests integer, p_tokens integer, p_settled boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to eve_gateway;
grant execute on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to service_role;
revoke all on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer) to service_role;
revoke all on function public.google_ai_is_attempt_status(p_status text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_is_quota_cause(p_cause text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_queue_turn_at(p_model public.google_ai_model_limits, p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text, p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone, OUT spread_bound boolean, OUT kept_bound boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_quota_report_budget(p_now timestamp with time zone, p_token public.google_ai_tokens, p_owner public.google_ai_budget) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text, p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) to eve_gateway;
grant execute on function public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid, p_output_tokens integer[]) to service_role;
comment on type public.google_ai_ring is 'A sliding window''s ring of seconds and its sums (google_ai_ring_at).';
revoke all on function public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer, p_admitted_at timestamp with time zone) to service_role;
revoke all on function public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[], p_owned bigint[], p_at timestamp with time zone, p_window interval, p_requests integer, p_day date, p_near_end boolean, p_near_start boolean) from public, anon, authenticated, service_role;
revoke all on table public.google_ai_shares_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_shares_today to service_role;
alter view public.google_ai_shares_today set (security_invoker='true');
comment on view public.google_ai_shares_today is 'Reserved shares and pacing per quota group: the owner''s use in the window and today (the model''s provider''s day, in its row''s day_zone), what the share still keeps from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';
revoke all on function public.google_ai_token_refusal(p_token public.google_ai_tokens, p_client public.google_ai_clients, p_at timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_tokens."max_usd" is 'The most the token''s calls may cost in US dollars over its life (null: no limit), booked and settled as its client''s are (spent_usd); refused with limit token_budget, cause spend_budget, never reopening.';
