-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Quota report, response cache, booking: one-caller helpers read in their caller's
--   statement; one reply_by check for attempt rows and queue tickets
set check_function_bodies = off;

drop trigger if exists "google_ai_attempts_reply_check" on "public"."google_ai_attempts";

drop trigger if exists "google_ai_queue_reply_check" on "public"."google_ai_queue";

drop function if exists "public"."google_ai_attempt_reply_check"();

drop function if exists "public"."google_ai_booked_quota"(p_model public.google_ai_model_limits, p_quota_group text, p_at public.google_ai_counter_at, p_kept jsonb);

drop function if exists "public"."google_ai_cache_default_ttl"(p_client_id uuid, p_model text);

drop function if exists "public"."google_ai_full_group_reopens_at"(p_quota_group text, p_full_by text, p_cooldown_until timestamp with time zone, p_model public.google_ai_model_limits, p_at timestamp with time zone, p_tokens integer, p_class text, p_caller text);

drop function if exists "public"."google_ai_model_cooldowns"(p_model text, p_now timestamp with time zone, p_show_groups boolean);

drop function if exists "public"."google_ai_queue_reply_check"();

drop function if exists "public"."google_ai_quota_report_models"(p_now timestamp with time zone, p_models text[], p_show_groups boolean, p_class text, p_caller text);

drop function if exists "public"."google_ai_quota_report_withdrawn"(p_models text[]);

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

drop trigger if exists google_ai_attempts_reply_check on public.google_ai_attempts;
CREATE CONSTRAINT TRIGGER google_ai_attempts_reply_check AFTER INSERT ON public.google_ai_attempts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_reply_check();

drop trigger if exists google_ai_queue_reply_check on public.google_ai_queue;
CREATE CONSTRAINT TRIGGER google_ai_queue_reply_check AFTER INSERT OR UPDATE ON public.google_ai_queue DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.google_ai_reply_check();

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_reply_check() from public, anon, authenticated, service_role;
