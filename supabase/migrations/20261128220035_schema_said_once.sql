-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Issue 79's second stop: tables, views and grants written as one writes them, one-caller
--   helpers folded, one budget_of, one reply_by check, the provider-room margin counting calls back since, a
--   cheaper /metrics scrape
set check_function_bodies = off;

drop view if exists "public"."google_ai_caller_budgets_today";

drop trigger if exists "google_ai_key_check_clears_limit_zero" on "public"."google_ai_key_health";

drop trigger if exists "google_ai_attempts_reply_check" on "public"."google_ai_attempts";

drop trigger if exists "google_ai_queue_reply_check" on "public"."google_ai_queue";

drop function if exists "public"."google_ai_attempt_reply_check"();

drop function if exists "public"."google_ai_booked_quota"(p_model public.google_ai_model_limits, p_quota_group text, p_at public.google_ai_counter_at, p_kept jsonb);

drop function if exists "public"."google_ai_bucket_room"(p_until timestamp with time zone, p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, OUT tokens_left bigint, OUT full_at timestamp with time zone);

drop function if exists "public"."google_ai_buckets_settled"(p_att public.google_ai_attempts, p_tokens integer, p_released boolean, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_window interval, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone);

drop function if exists "public"."google_ai_budget_of"(p_row public.google_ai_clients);

drop function if exists "public"."google_ai_cache_default_ttl"(p_client_id uuid, p_model text);

drop function if exists "public"."google_ai_derive_class_shares"(p_model text, p_class text);

drop function if exists "public"."google_ai_full_group_reopens_at"(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text);

drop function if exists "public"."google_ai_key_check_clears_limit_zero"();

drop function if exists "public"."google_ai_key_serves"(p_model text, p_exclude_key_ids uuid[], p_key_id uuid, p_quota_group text);

drop function if exists "public"."google_ai_model_cooldowns"(p_model text, p_now timestamp with time zone, p_show_groups boolean);

drop function if exists "public"."google_ai_model_unlisted"(p_model text);

drop function if exists "public"."google_ai_nth_slot"(p_slots timestamp with time zone[], p_n integer, p_now timestamp with time zone);

drop function if exists "public"."google_ai_pace_opens_at"(p_day date, p_used integer, p_burst integer, p_usable integer, p_zone text);

drop function if exists "public"."google_ai_queue_reply_check"();

drop function if exists "public"."google_ai_quota_report_models"(p_now timestamp with time zone, p_models text[], p_show_groups boolean, p_class text, p_caller text);

drop function if exists "public"."google_ai_quota_report_withdrawn"(p_models text[]);

drop view if exists "public"."google_ai_caller_budgets_today";

drop function if exists "public"."google_ai_budget_of"(p_row public.google_ai_caller_budgets);

drop function if exists "public"."google_ai_pacific_start"(p_day date);

CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row anyelement)
 RETURNS public.google_ai_budget
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
-- @plpgsql_check_options: anyelementtype = public.google_ai_clients
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reply_check()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_reply_by timestamptz;
begin
  if tg_table_name = 'google_ai_attempts' then
    v_reply_by := new.reply_by;
  else
    v_reply_by := nullif(pg_catalog.current_setting('google_ai.reply_by', true), '')::timestamptz;
  end if;
  if pg_catalog.clock_timestamp() > v_reply_by then
    raise exception 'the % row of request % reached its commit after its caller stopped waiting (%); rolled back',
      tg_table_name, new.request_id, v_reply_by
      using errcode = '57014';
  end if;
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb, p_model text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_limits record;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}'::jsonb;
begin
  if p_answer is null or p_answer ->> 'limit' in
     ('unknown_model', 'no_active_key', 'token_invalid', 'token_expired', 'token_revoked', 'model_not_allowed')
     or (p_answer -> 'ok' = 'true'::jsonb and jsonb_typeof(p_answer -> 'quota_group') is distinct from 'string') then
    return null;
  end if;
  v_limits := public.google_ai_request_limits(coalesce(p_answer ->> 'model', p_model));
  if v_limits.model is null then
    return null;
  end if;

  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.* into v_quota
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, p_exclude_key_ids) s) g
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                     v_limits.rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
  end if;

  -- What the model's shares keep, for the class the answer names (an admission's, or a queued
  -- refusal's ticket's). Not carried without a class (a refusal answered at once: the shares' sizes
  -- cannot be told apart) nor for a model no share keeps anything of (as a fast booking's quota).
  v_class := coalesce(p_answer ->> 'priority', p_answer -> 'queue' ->> 'priority');
  if v_class is not null and exists (select 1 from public.google_ai_quota_shares s where s.model = v_limits.model) then
    v_kept := jsonb_build_object('kept', public.google_ai_quota_kept(v_limits.model,
      v_limits.rpm, v_limits.rpd, v_class, null));
  end if;

  return jsonb_build_object(
    'model', v_limits.model,
    'quota_group', v_group,
    'rpm', v_limits.rpm,
    'requests_left', v_quota.requests_left,
    -- (google_ai_group_quota leaves a limit's reset null where the model has no such limit: so is its ms.)
    'requests_reset_ms', public.google_ai_ms_until(v_quota.requests_reset_at, v_now),
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', public.google_ai_ms_until(v_quota.tokens_reset_at, v_now),
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', public.google_ai_ms_until(v_quota.day_reset_at, v_now))
    || v_kept;
end
$function$
;

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
            p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name) end, null,
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
    -- (The day: the largest of today's count and, within a guard of midnight, the other day's, before this
    -- request; reset at midnight plus the guard, or after midnight at that guard's end when yesterday's is larger.)
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
          case when v_at.near_end then v_at.counts[2] end, case when v_at.near_start then v_at.counts[3] end) + 1)) end,
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
    reopens_at := (v_b.month_bucket + interval '1 month') at time zone public.google_ai_pacific_zone();
  else
    return;
  end if;
  period := coalesce(period, v_b.period);
  reopens_at := case when cause = 'spend_budget' and p_worst is null then null
                     when period = 'day' then public.google_ai_pacific_midnight_after(p_at) else reopens_at end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text, p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone, p_request_id text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_scope record;
  v_settings public.google_ai_response_cache_settings;
  v_ttl interval;
  v_entry public.google_ai_response_cache;
  v_age_ms bigint;
  v_claimed bigint;
begin
  if p_mode not in ('on', 'refresh', 'default') or p_key !~ '^[0-9a-f]{64}$' then
    raise exception 'google_ai_cache_lookup: bad mode or key' using errcode = '22023';
  end if;
  v_scope := public.google_ai_cache_scope(p_caller, p_token_hash, p_model);
  if v_scope.scope is null then
    return jsonb_build_object('status', 'bypass');
  end if;
  v_settings := public.google_ai_response_cache_config();
  if p_mode = 'default' then
    -- The owner's default for the client and model, the most specific first (none: the cache is off for it).
    select d.ttl into v_ttl from public.google_ai_response_cache_defaults d
    where (d.client_id = v_scope.client_id or d.client_id is null) and (d.model = p_model or d.model is null)
    order by d.client_id is null, d.model is null
    limit 1;
    if v_ttl is null then
      return jsonb_build_object('status', 'bypass');
    end if;
  else
    v_ttl := coalesce(pg_catalog.make_interval(secs => p_ttl_s), v_settings.default_ttl);
  end if;
  v_ttl := least(v_ttl, v_settings.max_ttl);

  for attempt in 1 .. 2 loop
    if p_mode <> 'refresh' then
      select * into v_entry from public.google_ai_response_cache e
      where e.scope = v_scope.scope and e.key = p_key;
      if found and v_entry.answer is not null and v_entry.expires_at > v_now then
        -- (An answer another request stored after v_now was read is younger than this clock: age 0.)
        v_age_ms := greatest(0, (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint);
        -- The hit's commit does not wait for its WAL flush: a crash of the database in the next moments
        -- could lose this audit row, never an answer or a booking (a hit books nothing).
        perform pg_catalog.set_config('synchronous_commit', 'off', true);
        insert into public.google_ai_response_cache_hits (created_at, entry_id, scope, caller, request_id, model,
          saved_input_tokens, saved_output_tokens, saved_usd, age_ms)
        values (v_now, v_entry.id, v_scope.scope, coalesce(p_caller, v_scope.member), p_request_id, v_entry.model,
          v_entry.input_tokens, v_entry.output_tokens, v_entry.cost_usd, v_age_ms);
        return jsonb_build_object('status', 'hit', 'entry', v_entry.id, 'answer', v_entry.answer,
          'age_ms', v_age_ms, 'cost_usd', v_entry.cost_usd);
      end if;
    end if;
    -- No answer to serve: take the flight unless another request holds it, or an answer landed since
    -- the read above (then it is read again: a hit). An answer stays in the row, still served to
    -- others, until a refresh's new one replaces it.
    insert into public.google_ai_response_cache as e (scope, key, model, flight_holder, flight_until)
    values (v_scope.scope, p_key, p_model, p_holder, p_flight_until)
    on conflict (scope, key) do update set flight_holder = excluded.flight_holder,
      flight_until = excluded.flight_until
    where (e.flight_until is null or e.flight_until <= v_now or e.flight_holder = excluded.flight_holder)
      and (p_mode = 'refresh' or e.answer is null or e.expires_at <= v_now)
    returning e.id into v_claimed;
    if v_claimed is not null then
      insert into public.google_ai_response_cache_misses as m (scope, misses) values (v_scope.scope, 1)
      on conflict (scope) do update set misses = m.misses + 1;
      return jsonb_build_object('status', 'miss', 'entry', v_claimed,
        'ttl_s', extract(epoch from v_ttl)::integer);
    end if;
    -- Held by another: its answer may have landed meanwhile (read it once more), else wait for it.
    select * into v_entry from public.google_ai_response_cache e
    where e.scope = v_scope.scope and e.key = p_key;
    if not (found and v_entry.answer is not null and v_entry.expires_at > v_now and p_mode <> 'refresh') then
      return jsonb_build_object('status', 'wait', 'until', v_entry.flight_until);
    end if;
  end loop;
  return jsonb_build_object('status', 'wait', 'until', v_entry.flight_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_call_cost(p_model text, p_asked_tier text, p_served_tier text, p_outcome text, p_input integer, p_cached integer, p_output integer, p_thinking integer, p_write_5m integer DEFAULT NULL::integer, p_write_1h integer DEFAULT NULL::integer)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select case when p_input is null and p_output is null then case when p_outcome = 'upstream_error' then 0 end
                else ((coalesce(p_input, 0) - coalesce(p_cached, 0) - coalesce(p_write_5m, 0)
                       - coalesce(p_write_1h, 0)) * p.input_per_mtok
                      + case when coalesce(p_cached, 0) = 0 then 0 else p_cached * p.cached_input_per_mtok end
                      + case when coalesce(p_write_5m, 0) = 0 then 0 else p_write_5m * p.cache_write_5m_per_mtok end
                      + case when coalesce(p_write_1h, 0) = 0 then 0 else p_write_1h * p.cache_write_1h_per_mtok end
                      + (coalesce(p_output, 0) - coalesce(p_thinking, 0)) * p.output_per_mtok
                      + coalesce(p_thinking, 0) * coalesce(p.thinking_per_mtok, p.output_per_mtok)) * 0.000001 end
    from (select coalesce(nullif(lower(coalesce(p_served_tier, p_asked_tier)), 'default'), 'standard') as tier) t
    join public.google_ai_model_prices p on p.model = p_model
      and p.service_tier in (t.tier, case when t.tier = 'standard' and p_asked_tier is null then 'free' end)
    order by p.service_tier = 'free' desc
    limit 1);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text, p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone, p_order text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_sql text;
  v_n bigint := p_batch;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  v_sql := format(
    'delete from %s t where t.%I in (select s.%I from %s s where %s %s limit %s for update skip locked)',
    p_table, p_key, p_key, p_table, p_condition,
    coalesce('order by ' || p_order, ''), p_batch);
  while v_batches < p_max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    execute v_sql using p_cutoff;
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_batch;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_n >= p_batch);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_derives_shares()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_model text;
  v_class text;
begin
  if tg_when = 'BEFORE' then
    if tg_op = 'INSERT' and (new.kept_rpm_percent is not null or new.kept_rpd_percent is not null)
       or tg_op = 'UPDATE' and (new.kept_rpm_percent, new.kept_rpd_percent)
                               is distinct from (old.kept_rpm_percent, old.kept_rpd_percent) then
      new.kept_changed_at := pg_catalog.now();
    end if;
    return new;
  elsif tg_table_name = 'google_ai_model_limits' then
    v_model := new.model;
  else
    v_class := new.name;
  end if;
  -- Tells the shares' trigger that these writes are the derivation's, not an operator's edit.
  perform pg_catalog.set_config('google_ai.deriving_shares', 'on', true);
  delete from public.google_ai_quota_shares s
  where s.derived_from_class
    and (v_model is null or s.model = v_model) and (v_class is null or s.priority_class = v_class)
    and not exists (select 1 from public.google_ai_derived_shares(s.model, s.priority_class));
  update public.google_ai_quota_shares s set reserved_rpm = d.reserved_rpm, reserved_rpd = d.reserved_rpd
  from public.google_ai_derived_shares(v_model, v_class) d
  where s.derived_from_class and s.model = d.model and s.priority_class = d.priority_class and s.caller is null
    and (s.reserved_rpm, s.reserved_rpd) is distinct from (d.reserved_rpm, d.reserved_rpd);
  insert into public.google_ai_quota_shares (model, priority_class,
    reserved_rpm, reserved_rpd, derived_from_class, notes)
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd, true,
         'Derived from the class''s kept percents (google_ai_priority_classes); an edit makes the row the operator''s.'
  from public.google_ai_derived_shares(v_model, v_class) d
  on conflict on constraint google_ai_quota_shares_owner_key do nothing;
  perform pg_catalog.set_config('google_ai.deriving_shares', '', true);
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, OUT names text[], OUT models text[], OUT retired boolean[], OUT answer_of integer[], OUT first integer, OUT caller text, OUT client_id uuid, OUT token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1 into names, models, retired, answer_of, first;
  if p_token_hash is not null then
    select t.models, t.id, c.id, 'client:' || c.name into v_allowed, token_id, client_id, caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (models);
      exit when cardinality(models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      names := names || v_name;
      models := models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      retired := retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      answer_of := answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
  end loop;
  if not (false = any (retired)) then
    retired := array_fill(false, array[cardinality(models)]);
  end if;
  if p_queue_ticket is not null then
    first := coalesce(array_position(models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer, OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer, OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone, OUT input_tokens_left bigint, OUT output_tokens_left bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select * into v_limits from public.google_ai_model_limits l where l.model = p_model;
  v_limits.rpm := public.google_ai_effective_limit(v_limits.rpm, v_limits.safety_margin);
  v_limits.tpm := public.google_ai_effective_limit(v_limits.tpm, v_limits.safety_margin);
  v_limits.rpd := public.google_ai_effective_limit(v_limits.rpd, v_limits.safety_margin);
  v_limits.itpm := public.google_ai_effective_limit(v_limits.itpm, v_limits.safety_margin);
  v_limits.otpm := public.google_ai_effective_limit(v_limits.otpm, v_limits.safety_margin);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(v_limits.limit_pool, p_model);
  select coalesce(r.sum_requests, 0), coalesce(r.sum_tokens, 0) into requests_used, tokens_used
  from public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0)) r;
  select q.requests_left, q.tokens_left, q.day_left, least(q.requests_reset_at, q.tokens_reset_at), q.ready_at
    into requests_left, tokens_left, day_left, window_frees_at, ready_at
  from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  -- The token buckets of a row that counts input and output apart (null: it does not).
  select t.input_left, t.output_left into input_tokens_left, output_tokens_left
  from public.google_ai_group_token_room(p_quota_group, v_limits, v_now) t;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_group_token_room(p_quota_group text, p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint, OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_window interval;
  v_row public.google_ai_usage_counters;
  v_rest timestamptz;
  v_left bigint[];
  v_full timestamptz[];
begin
  if p_limits.itpm is null and p_limits.otpm is null then
    return;
  end if;
  v_window := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model);
  select cd.cooldown_until into v_rest from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_limits.model and cd.cooldown_until > p_now;
  select array_agg(case when b.size is null then null when v_rest is not null then 0
                        else greatest(0, floor(greatest(floor(b.size * coalesce(p_limits.bucket_share, 1)), 1)
                          - extract(epoch from b.full_at - p_now) * b.size / extract(epoch from v_window))) end
                   order by b.i),
         array_agg(case when b.size is not null then greatest(b.full_at, v_rest) end order by b.i)
  into v_left, v_full
  from (values (1, greatest(v_row.input_until, p_now), p_limits.itpm),
               (2, greatest(v_row.output_until, p_now), p_limits.otpm)) b(i, full_at, size);
  select v_left[1], v_full[1], v_left[2], v_full[2] into input_left, input_full_at, output_left, output_full_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_abandon(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_cutoff timestamptz := p_now - p_settings.stale_reservation_after;
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_done timestamptz;
  v_from timestamptz;
  v_last timestamptz;
  v_start timestamptz;
  v_n bigint := p_settings.batch_size;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  -- Where the last complete pass stopped (its cutoff), less an hour for the rows of transactions
  -- that were open then; never later than a day before this cutoff (a clock set back, a log row of
  -- an injected time). No complete pass logged: from the beginning.
  select (l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'older_than')::timestamptz into v_done
  from public.google_ai_maintenance_log l
  where l.operation = 'housekeeping'
    and l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'status' = 'succeeded'
    and l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'more' = 'false'
  order by l.id desc
  limit 1;
  v_from := least(coalesce(v_done, '-infinity') - interval '1 hour', v_cutoff - interval '1 day');
  v_start := v_from;

  -- (As google_ai_delete_batched: 'more' when the last batch was full, or none was taken.)
  while v_batches < p_settings.max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    with picked as (
      select s.id from public.google_ai_attempts s
      where s.created_at >= v_from and s.created_at < v_cutoff and s.status = 'reserved'
        and coalesce(s.minute_bucket, s.created_at) < v_minute
      order by s.created_at
      limit p_settings.batch_size
      for update skip locked),
    closed as (
      update public.google_ai_attempts a set
        status = 'abandoned',
        finished_at = p_now,
        error_message = coalesce(a.error_message,
          'abandoned by housekeeping: no outcome within ' || p_settings.stale_reservation_after::text)
      where a.id in (select p.id from picked p) and a.status = 'reserved'
      returning a.created_at)
    select count(*), max(c.created_at) into v_n, v_last from closed c;
    -- The next batch starts where this one ended, not at the rows it just closed.
    v_from := coalesce(v_last, v_from);
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('abandoned', v_total, 'batches', v_batches, 'more', v_n >= p_settings.batch_size,
    'older_than', v_cutoff, 'from', v_start);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_attempts(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_cutoff timestamptz := p_now - p_settings.attempts_retention;
  -- The fold goes by the database clock even when the run is given another (tests): whether a row
  -- can still change is a matter of real time.
  v_mark bigint := public.google_ai_metrics_fold(null, true);
  v_ids bigint[];
  v_above bigint[];
  v_n bigint := p_settings.batch_size;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  while v_batches < p_settings.max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    -- An open reservation is never deleted here (the abandon step closes it first).
    select coalesce(array_agg(s.id), '{}') into v_ids
    from (select s.id from public.google_ai_attempts s
          where s.created_at < v_cutoff and s.status <> 'reserved'
          order by s.created_at limit p_settings.batch_size for update skip locked) s;
    v_n := cardinality(v_ids);
    if v_n > 0 then
      -- Rows the fold has not reached (an open reservation held it back): into the totals as they go.
      select coalesce(array_agg(i), '{}') into v_above from unnest(v_ids) i where i > v_mark;
      if cardinality(v_above) > 0 then
        insert into public.google_ai_metric_totals as m (family, suffix, labels, le, value)
        select s.family, s.suffix, s.labels, s.le, s.value
        from public.google_ai_metric_samples(
          (select min(i) - 1 from unnest(v_above) i), (select max(i) from unnest(v_above) i), v_above) s
        on conflict (family, suffix, labels, le) do update set value = m.value + excluded.value;
      end if;
      delete from public.google_ai_attempts a where a.id = any (v_ids);
    end if;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_n >= p_settings.batch_size,
    'older_than', v_cutoff);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_is_quota_cause(p_cause text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_cause = any (public.google_ai_quota_causes());
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_counts(p_at timestamp with time zone, p_mark bigint)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with serving as (
    select p.quota_group, p.model from public.google_ai_metric_serving() p
  ), known (family, kind, labels) as (
    -- Series known before their first row, exported at zero from the start: a series that first
    -- appears already holding its first observations starts at that value for Prometheus, and rate()
    -- and increase() never count a series' starting value (a model's first requests would show in no
    -- latency panel, a group's first Google 429 or lost finalize no increase() alert). The labels as
    -- google_ai_metric_samples renders them; active models by class, and the quota groups serving each.
    select h.family, 'histogram', concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('priority_class', c.name))
    from public.google_ai_model_limits l cross join public.google_ai_priority_classes c
    cross join (values ('eve_gateway_time_to_first_byte_seconds'), ('eve_gateway_added_latency_seconds'),
                       ('eve_gateway_wait_seconds')) h(family)
    where l.is_active
    union all
    select x.family, x.kind, concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group))
    from serving p
    cross join (values ('eve_gateway_google_latency_seconds', 'histogram'),
                       ('eve_gateway_finalizes_lost_total', 'counter')) x(family, kind)
    union all
    -- (Every cause a row may name: google_ai_quota_causes.)
    select 'eve_gateway_google_429_total', 'counter',
           concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider',
               (select l.provider from public.google_ai_model_limits l where l.model = p.model)),
             public.google_ai_metric_label('cause', c.cause))
    from serving p
    cross join unnest(public.google_ai_quota_causes()) c(cause)
  ), counted as (
    select t.family, t.suffix, t.labels, t.le, t.value from public.google_ai_metric_totals t
    union all
    select s.family, s.suffix, s.labels, s.le, s.value
    from public.google_ai_metric_samples(p_mark, 9223372036854775807, null,
      p_at - public.google_ai_metric_refusal_settled()) s
    union all
    -- (A histogram's +Inf bucket brings all its buckets and _count; its _sum is a sample of its own.)
    select k.family, x.suffix, k.labels, x.le, 0 from known k
    cross join lateral (values ('histogram', '_bucket', 'Infinity'::numeric), ('histogram', '_sum', 'NaN'::numeric),
                               ('counter', '', 'NaN'::numeric)) x(kind, suffix, le)
    where x.kind = k.kind
  ), histograms as (
    -- Every bucket of each histogram series, cumulative: a bucket counts in each bound at or above its own.
    select c.family, c.labels, b.le, coalesce(sum(c.value) filter (where c.le <= b.le), 0) as value
    from counted c cross join unnest(public.google_ai_metric_bounds_s()) b(le)
    where c.suffix = '_bucket' group by 1, 2, 3
  )
  -- (Only a bucket has a bound: any other sample is one per family, suffix and labels.)
  select c.family, c.family || c.suffix, c.labels, sum(c.value) from counted c where c.suffix <> '_bucket'
  group by c.family, c.suffix, c.labels
  union all
  select h.family, h.family || '_bucket',
         concat_ws(',', nullif(h.labels, ''),
           'le="' || case when h.le = 'Infinity' then '+Inf' else h.le::text end || '"'),
         h.value
  from histograms h
  union all
  select h.family, h.family || '_count', h.labels, h.value from histograms h where h.le = 'Infinity'
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
               (select l.provider from public.google_ai_model_limits l where l.model = cd.model)),
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

CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider', l.provider)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_day_in(p_at, public.google_ai_day_zone(p.model))
                then c.rpd_used else 0 end as day_requests,
           public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
           public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
           public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
  )
  select x.family, x.family, concat_ws(',', q.labels, x.w), x.v
  from quota q cross join lateral (
    select 'eve_gateway_quota_used', 'window="minute",unit="requests"', q.minute_requests::numeric
    union all select 'eve_gateway_quota_used', 'window="minute",unit="tokens"', q.minute_tokens::numeric
    union all select 'eve_gateway_quota_used', 'window="day",unit="requests"', q.day_requests::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="requests"', q.rpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="tokens"', q.tpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="day",unit="requests"', q.rpd::numeric) x(family, w, v)
  -- (A limit that is not set has no gauge.)
  where x.family = 'eve_gateway_quota_used' or x.v is not null
  union all
  select 'eve_gateway_provider_day_end_timestamp_seconds', 'eve_gateway_provider_day_end_timestamp_seconds',
         public.google_ai_metric_label('provider', v.name),
         extract(epoch from public.google_ai_midnight_after_in(p_at, v.day_zone))
  from public.google_ai_providers v
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[] DEFAULT NULL::bigint[], p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(family text, suffix text, labels text, le numeric, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as google_429,
           coalesce(d.service_tier, 'standard') as service_tier, d.served_tier,
           count(*)::numeric as n, sum(d.input_tokens)::numeric as tokens_in,
             sum(d.output_tokens)::numeric as tokens_out, sum(d.cost_usd) as spend
    from decided d
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  ), counters as (
    select x.family, x.labels, sum(x.value) as value
    from (select g.*, public.google_ai_metric_label('model', g.model) as m,
                 public.google_ai_metric_label('quota_group', g.quota_group) as qg,
                 public.google_ai_metric_label('priority_class', g.priority_class) as pc,
                 public.google_ai_metric_label('caller', g.caller) as who,
                 public.google_ai_metric_label('provider',
                   (select l.provider from public.google_ai_model_limits l where l.model = g.model)) as pv
          from groups g) g
    cross join lateral (
      select 'eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc,
        g.who, public.google_ai_metric_label('status', g.status)), g.n
      union all select 'eve_gateway_refusals_total', concat_ws(',', g.m, g.pc,
        g.who, public.google_ai_metric_label('limit', g.limit_hit),
          public.google_ai_metric_label('cause', g.refusal_cause)),
        case when g.status = 'refused' then g.n end
      union all select 'eve_gateway_google_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.google_429 then g.n end
      union all select 'eve_gateway_google_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn', 'google_error') then g.n end
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      union all select 'eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      union all select 'eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end
      union all select 'eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'),
        g.tokens_in
      union all select 'eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'),
        g.tokens_out
      -- What the calls cost (cost_usd; a call of unknown cost adds nothing).
      union all select 'eve_gateway_spend_usd_total', concat_ws(',', g.m, g.pv, g.who), g.spend
    ) x(family, labels, value)
    where x.value is not null
    group by 1, 2
  ), durations as (
    -- One row per measured duration: its histogram, its two labels (model and quota group or class), its ms.
    select h.family, d.model, h.second_name, h.second_value, h.ms
    from decided d
    cross join lateral (
      select 'eve_gateway_google_latency_seconds', 'quota_group', d.quota_group, d.latency_ms
      union all select 'eve_gateway_time_to_first_byte_seconds', 'priority_class', d.priority_class, d.first_byte_ms
      union all select 'eve_gateway_added_latency_seconds', 'priority_class', d.priority_class, d.added_ms
      -- The wait before an admission: rows from a reservation only (a refusal's wait ended in no
      -- admission; a queue lapse's is its time in line).
      union all select 'eve_gateway_wait_seconds', 'priority_class', d.priority_class,
        case when d.quota_group is not null then d.wait_ms end
    ) h(family, second_name, second_value, ms)
    where h.ms is not null
  ), buckets as (
    select u.family, concat_ws(',', public.google_ai_metric_label('model', u.model),
             public.google_ai_metric_label(u.second_name, u.second_value)) as labels,
           public.google_ai_metric_le(u.ms) as le, count(*)::numeric as n, sum(u.ms)::numeric as ms
    from durations u
    group by u.family, u.model, u.second_name, u.second_value, 3
  )
  select c.family, '', c.labels, 'NaN'::numeric, c.value from counters c
  union all
  select b.family, '_bucket', b.labels, b.le, sum(b.n) from buckets b group by 1, 3, 4
  union all
  select b.family, '_sum', b.labels, 'NaN'::numeric, sum(b.ms) / 1000 from buckets b group by 1, 3
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer, p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[], p_zone text)
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
    if p_used[i] + 1 > public.google_ai_pace_allowance(p_now, p_day, p_burst[i], v_usable, p_zone) then
      -- The first moment of the day (s to e, L long) at which the allowance, burst + floor(usable x (t - s) / L),
      -- reaches need = used + 1 - burst (to the microsecond): s + ceil(need x L / usable), within the day
      -- exactly when need < usable. Today's if any, else tomorrow's, else the day after begins.
      v_at := greatest(v_at, coalesce((
        select min(case when x.need <= 0 then d.s when x.need < v_usable
                        then d.s + ceil(x.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / v_usable)
                                   * interval '1 microsecond' end)
        from (values (p_day, p_used[i] + 1 - p_burst[i]), (p_day + 1, p_next[i] + 1 - p_burst[i])) x(day, need),
             lateral (select public.google_ai_day_start_in(x.day, p_zone) as s,
                             public.google_ai_day_start_in(x.day + 1, p_zone) as e) d),
        public.google_ai_day_start_in(p_day + 2, p_zone)));
    end if;
  end loop;
  return v_at;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$ select ((public.google_ai_pacific_day(p_at) operator(pg_catalog.+) 1)::pg_catalog.timestamp
                  at time zone public.google_ai_pacific_zone()) $function$
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
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now;
  -- never before now). None when there are fewer: the shares this waiter does not own keep every
  -- group's window from it, and the booking names when, if ever, one has room for it.
  select case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.t order by o.t))[p_slots]) end,
         case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.l order by o.l))[p_slots]) end
  into turn_at, likely_at from unnest(v_slots, v_likely) o(t, l);
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
    -- Each active model the caller may use (v_models; null: every one), in model order: its provider, the
    -- minute, the day and the queue (google_ai_model_quota), its cooldowns (the quota groups' names, Google
    -- project ids and key:<uuid>, only for a service caller: a token's caller sees each cause and end, not
    -- whose project rests) and what its shares keep (google_ai_quota_kept).
    'models', (
      select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('provider', l.provider,
                            'cooldowns', (
                              select coalesce(jsonb_agg(to_jsonb(c) - case when p_token_hash is null then ''
                                                                            else 'quota_group' end
                                                        order by c.cooldown_until, c.quota_group), '[]')
                              from (select cd.quota_group, cd.cause, cd.cooldown_until,
                                           public.google_ai_ms_until(cd.cooldown_until, v_now) as retry_after_ms
                                    from public.google_ai_cooldowns cd
                                    where cd.model = l.model and cd.cooldown_until > v_now) c),
                            'kept', public.google_ai_quota_kept(l.model,
                              public.google_ai_effective_limit(l.rpm, l.safety_margin),
                              public.google_ai_effective_limit(l.rpd, l.safety_margin), v_owner_class,
                              v_owner_caller))
                       order by l.model), '[]')
      from public.google_ai_model_limits l
      where l.is_active and (v_models is null or l.model = any (v_models))),
    -- The models their provider withdrew among those (which provider, when, its message, the successors,
    -- the shutdown date).
    'withdrawn', (
      select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
      from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
                   l.shutdown_date
            from public.google_ai_model_limits l
            where l.withdrawn_at is not null and (v_models is null or l.model = any (v_models))) w));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer DEFAULT NULL::integer, p_reason text DEFAULT NULL::text, p_message text DEFAULT NULL::text, p_models jsonb DEFAULT '[]'::jsonb, p_disable boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_key public.google_ai_api_keys;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_message text := public.google_ai_sanitize_error(p_message);
  v_listed integer;
  v_upserted integer := 0;
  v_removed integer := 0;
  v_disabled boolean := false;
  v_disabled_reason text;
begin
  if p_status is null or p_status not in ('ok', 'invalid', 'missing_secret', 'error') then
    raise exception 'p_status must be ok, invalid, missing_secret or error' using errcode = '22023';
  end if;
  if p_models is null or jsonb_typeof(p_models) <> 'array' then
    raise exception 'p_models must be a JSON array' using errcode = '22023';
  end if;

  select * into v_key from public.google_ai_api_keys k where k.id = p_key_id for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'unknown_key');
  end if;
  v_listed := case when p_status = 'ok' then jsonb_array_length(p_models) end;

  insert into public.google_ai_key_health as h (api_key_id, key_alias,
    status, checked_at, http_status, reason, message, models_listed)
  values (p_key_id, v_key.key_alias, p_status, v_now, p_http_status, left(p_reason, 200), v_message, v_listed)
  on conflict (api_key_id) do update set
    key_alias = excluded.key_alias, status = excluded.status, checked_at = excluded.checked_at,
    http_status = excluded.http_status, reason = excluded.reason, message = excluded.message,
    models_listed = excluded.models_listed;

  if p_status = 'ok' then
    -- An 'ok' check ends the limit_zero rests of the key's quota group: the project may have been given quota
    -- for the model since (the next request tries the provider once more, and a new limit: 0 rests again).
    -- Locked in model order first, as finalize writes a spend cap's rows: no deadlock between them.
    delete from public.google_ai_cooldowns c
    where c.ctid in (select l.ctid from public.google_ai_cooldowns l
                     where l.quota_group = public.google_ai_quota_group(v_key.project_id, v_key.id)
                       and l.cause = 'limit_zero'
                     order by l.model
                     for update of l);
    insert into public.google_ai_model_catalogue as c (api_key_id, model, key_alias, quota_group, display_name, version,
      input_token_limit, output_token_limit, supported_methods, first_seen_at, refreshed_at)
    select distinct on (m.model) p_key_id, m.model, v_key.key_alias,
           public.google_ai_quota_group(v_key.project_id, v_key.id),
           left(m.display_name, 200), left(m.version, 100), m.input_token_limit, m.output_token_limit,
           coalesce(m.supported_methods, '{}'), v_now, v_now
    from jsonb_to_recordset(p_models) as m(model text, display_name text, version text,
           input_token_limit integer, output_token_limit integer, supported_methods text[])
    where m.model is not null and m.model <> ''
    on conflict (api_key_id, model) do update set
      key_alias = excluded.key_alias, quota_group = excluded.quota_group, display_name = excluded.display_name,
      version = excluded.version, input_token_limit = excluded.input_token_limit,
      output_token_limit = excluded.output_token_limit, supported_methods = excluded.supported_methods,
      refreshed_at = excluded.refreshed_at;
    get diagnostics v_upserted = row_count;
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id and c.refreshed_at < v_now;
    get diagnostics v_removed = row_count;
  elsif p_status = 'invalid' then
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id;
    get diagnostics v_removed = row_count;
    if p_disable and v_key.is_active then
      v_disabled_reason := left(format('maintenance: %s rejected the key (its model list: HTTP %s%s): %s',
        (select p.display_name from public.google_ai_providers p where p.name = v_key.serves_provider),
        coalesce(p_http_status::text, '?'), coalesce(' ' || p_reason, ''), v_message), 500);
      update public.google_ai_api_keys k set
        is_active = false, disabled_reason = v_disabled_reason, disabled_at = v_now, updated_at = v_now
      where k.id = p_key_id;
      v_disabled := true;
    end if;
  end if;

  return jsonb_build_object('ok', true, 'key_alias', v_key.key_alias, 'status', p_status, 'disabled', v_disabled,
    'disabled_reason', v_disabled_reason, 'models', v_upserted, 'removed', v_removed, 'checked_at', v_now);
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
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_reply_check). (Assigned,
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

CREATE OR REPLACE FUNCTION public.google_ai_resolve_model(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits := public.google_ai_model_by_name(p_model);
begin
  return case when v_row.is_active then v_row end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_ring_expiries(p_ring_low bigint, p_ring integer[], p_window interval)
 RETURNS timestamp with time zone[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
begin
  -- Each second r.s (an offset from p_ring_low: epoch seconds pass 2^31 in 2038) at r.i, its n-th admission.
  return coalesce((
    select array_agg(public.google_ai_ring_time(r.s, p_ring[r.i + case when n = 1 then 3 else 4 end]) + p_window
                     order by r.s, n)
    from generate_series(0, cardinality(p_ring) / 4 - 1) k
    cross join lateral (select p_ring_low + k as s, ((p_ring_low + k) % (cardinality(p_ring) / 4))::integer * 4 as i) r
    cross join lateral generate_series(1, p_ring[r.i + 1]) n), '{}');
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_sanitize_error(p_message text, p_max_length integer DEFAULT 500)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO ''
AS $function$
begin
  return left(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
      coalesce(p_message, ''),
      'AIza[0-9A-Za-z_-]{10,}', '[redacted]', 'g'),
      '\msk-[0-9A-Za-z_-]{8,}', '[redacted]', 'g'),
      '(sb_secret_|evegw_tok_|evegw_cs_)[0-9A-Za-z_-]+', '[redacted]', 'g'),
      'eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*', '[redacted]', 'g'),
      '([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@', '\1[redacted]@', 'gi'),
      '\m(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
      '[[:cntrl:]]+', ' ', 'g'),
    greatest(p_max_length, 1));
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
  v_requests integer := case when p_released and p_att.admitted_at is not null then -1 else 0 end;
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
    -- (Out since: still on their way, or back since. Not only those still on their way: a caller whose
    -- answer is back may be admitting its next call now, which this count cannot see until it commits,
    -- and which will not see this rest; when the callers come back at once, all of them do. The answered
    -- call's own caller is back too, once: its call is in the provider's count already.)
    select 2 * count(*) filter (where f.out_since) + count(*) filter (where f.counted_since),
      coalesce(2 * sum(a.estimated_tokens) filter (where f.out_since), 0)
        + coalesce(sum(a.estimated_tokens) filter (where f.counted_since), 0)
    into v_margin, v_margin_tokens
    from public.google_ai_attempts a
    cross join lateral (select a.id <> p_att.id and (a.status = 'reserved' or a.finished_at >= p_att.admitted_at),
      a.id = p_att.id or a.admitted_at > p_att.admitted_at) f(out_since, counted_since)
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

CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text, p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text, p_caller text)
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
      if (p_rpm is null or v_left_requests - v_gone + 1 + v_held <= p_rpm)
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

create or replace view "public"."google_ai_caller_budgets_today" as  SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_midnight_after(now()) AS resets_at,
    b.notes
   FROM (public.google_ai_caller_budgets b
     CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b.*), public.google_ai_pacific_day(now())) u(period, max_requests, max_tokens, max_usd, bucket, requests, tokens, spent_usd, monthly_max_usd, month_bucket, spent_month_usd));

drop trigger if exists google_ai_attempts_reply_check on public.google_ai_attempts;
CREATE CONSTRAINT TRIGGER google_ai_attempts_reply_check AFTER INSERT ON public.google_ai_attempts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_reply_check();

drop trigger if exists google_ai_queue_reply_check on public.google_ai_queue;
CREATE CONSTRAINT TRIGGER google_ai_queue_reply_check AFTER INSERT OR UPDATE ON public.google_ai_queue DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.google_ai_reply_check();

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_budget_of(p_row anyelement) from public, anon, authenticated, service_role;
grant execute on function public.google_ai_budget_of(p_row anyelement) to service_role;
revoke all on table public.google_ai_caller_budgets_today from public, anon, authenticated, service_role;
grant select on table public.google_ai_caller_budgets_today to service_role;
alter view public.google_ai_caller_budgets_today set (security_invoker='true');
comment on view public.google_ai_caller_budgets_today is 'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';
revoke all on function public.google_ai_reply_check() from public, anon, authenticated, service_role;
