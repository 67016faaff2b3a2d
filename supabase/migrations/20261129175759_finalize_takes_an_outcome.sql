-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_finalize takes one outcome record (google_ai_attempt_outcome, read from jsonb as
--   jsonb_populate_record reads it), which google_ai_call_cost prices; the batch, the cut and the withdrawn
--   model are its kinds; the former signatures stay as thin wrappers until the release
set check_function_bodies = off;

drop function if exists "public"."google_ai_call_cost"(p_model text, p_asked_tier text, p_served_tier text, p_outcome text, p_input integer, p_cached integer, p_output integer, p_thinking integer, p_write_5m integer, p_write_1h integer);

drop function if exists "public"."google_ai_record_success"(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_response jsonb);

drop function if exists "public"."google_ai_settle_call"(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_stated integer[]);

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_attempt_outcome"') is null then
    create type "public"."google_ai_attempt_outcome" as ("kind" text, "input_tokens" integer, "output_tokens" integer, "cached_input_tokens" integer, "thinking_tokens" integer, "cache_write_5m_tokens" integer, "cache_write_1h_tokens" integer, "settled_tokens" integer, "http_status" integer, "error_code" text, "error_message" text, "quota_id" text, "quota_cause" text, "latency_ms" integer, "added_ms" integer, "first_byte_ms" integer, "cooldown_until" timestamp with time zone, "cooldown_until_provider_midnight" boolean, "response" jsonb, "key_rejected" boolean, "service_tier" text, "served_tier" text, "room_requests" integer, "room_tokens" integer, "room_until" timestamp with time zone, "stated_limits" integer[], "cut_by" text, "successor" text);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_call_cost(p_model text, p_call public.google_ai_attempt_outcome)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_input integer := p_call.input_tokens;
  v_cached integer := coalesce(p_call.cached_input_tokens, 0);
  v_write_5m integer := coalesce(p_call.cache_write_5m_tokens, 0);
  v_write_1h integer := coalesce(p_call.cache_write_1h_tokens, 0);
  v_output integer := p_call.output_tokens;
  v_thinking integer := coalesce(p_call.thinking_tokens, 0);
begin
  return (
    select case when v_input is null and v_output is null then case when p_call.kind = 'upstream_error' then 0 end
                else ((coalesce(v_input, 0) - v_cached - v_write_5m - v_write_1h) * p.input_per_mtok
                      + case when v_cached = 0 then 0 else v_cached * p.cached_input_per_mtok end
                      + case when v_write_5m = 0 then 0 else v_write_5m * p.cache_write_5m_per_mtok end
                      + case when v_write_1h = 0 then 0 else v_write_1h * p.cache_write_1h_per_mtok end
                      + (coalesce(v_output, 0) - v_thinking) * p.output_per_mtok
                      + v_thinking * coalesce(p.thinking_per_mtok, p.output_per_mtok)) * 0.000001 end
    from (select coalesce(nullif(lower(coalesce(p_call.served_tier, p_call.service_tier)), 'default'), 'standard')
            as tier) t
    join public.google_ai_model_prices p on p.model = p_model
      and p.service_tier in (t.tier, case when t.tier = 'standard' and p_call.service_tier is null then 'free' end)
    order by p.service_tier = 'free' desc
    limit 1);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  return public.google_ai_finalize_attempt(p_reservation_id,
    pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome, p_outcome));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_attempt(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
  -- google_error: upstream_error's former name, taken until the next release (a finalize logged
  -- before it replays) and written as upstream_error.
  v_kind text := case p_outcome.kind when 'google_error' then 'upstream_error' else p_outcome.kind end;
begin
  if v_kind = 'withdrawn' then
    return public.google_ai_withdraw_attempt(p_reservation_id, p_outcome);
  elsif v_kind is null or v_kind not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'cut') then
    raise exception 'an outcome''s kind must be succeeded, upstream_error, network_error, timeout, cut or withdrawn'
      using errcode = '22023';
  elsif v_kind = 'cut' and (p_outcome.cut_by is null or p_outcome.cut_by not in ('client', 'upstream', 'google')) then
    raise exception 'a cut''s cut_by must be client or upstream' using errcode = '22023';
  end if;
  if not (p_outcome.quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = v_kind,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_outcome.input_tokens,
    output_tokens = p_outcome.output_tokens,
    http_status = case when v_kind = 'cut' then coalesce(p_outcome.http_status, 200) else p_outcome.http_status end,
    error_code = case when v_kind = 'cut' then 'stream_cut_by_' || p_outcome.cut_by
                      else left(p_outcome.error_code, 200) end,
    quota_id = left(p_outcome.quota_id, 200),
    error_message = left(p_outcome.error_message, 1000),
    latency_ms = p_outcome.latency_ms,
    quota_cause = p_outcome.quota_cause,
    service_tier = left(p_outcome.service_tier, 20),
    served_tier = left(p_outcome.served_tier, 20),
    -- (greatest() ignores a null: a time not known stays null)
    added_ms = case when p_outcome.added_ms is not null then greatest(0, p_outcome.added_ms) end,
    first_byte_ms = case when p_outcome.first_byte_ms is not null then greatest(0, p_outcome.first_byte_ms) end,
    cached_input_tokens = p_outcome.cached_input_tokens,
    thinking_tokens = p_outcome.thinking_tokens,
    cache_write_1h_tokens = p_outcome.cache_write_1h_tokens, cache_write_5m_tokens = p_outcome.cache_write_5m_tokens,
    cost_usd = public.google_ai_call_cost(a.model, p_outcome)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if v_kind in ('succeeded', 'cut') then
    perform public.google_ai_record_success(v_att, p_outcome);
  end if;
  -- What the outcome asks for beyond its row, when it asks (most successes do not): a key out of
  -- rotation, a rest.
  if p_outcome.cooldown_until is not null or p_outcome.cooldown_until_provider_midnight
     or coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID') then
    v_until := public.google_ai_rest_asked(v_att, p_outcome);
  end if;
  perform public.google_ai_settle_call(v_att, p_outcome);

  return jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_former_outcome(p_call jsonb)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
  select p_call - 'reservation_id' - 'outcome' - 'cooldown_until_pacific_midnight'
    || pg_catalog.jsonb_build_object('kind', p_call -> 'outcome',
         'cooldown_until_provider_midnight', p_call -> 'cooldown_until_pacific_midnight')
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_success(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if p_outcome.response is not null and p_att.request_id is not null and p_att.status = 'succeeded' then
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    values (p_att.caller, p_att.request_id, 'done', p_att.model, p_outcome.response, now(), null)
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null;
  end if;

  insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
  values (p_att.model, p_outcome.input_tokens, p_outcome.output_tokens,
    coalesce(p_outcome.input_tokens, 0) + coalesce(p_outcome.output_tokens, 0),
    coalesce(p_att.request_id, p_att.reservation_id::text),
    jsonb_build_object('source', 'eve-llm-gateway', 'caller', p_att.caller, 'key_alias', p_att.key_alias,
      'attempt', p_att.attempt, 'reservation_id', p_att.reservation_id)
      || case when p_att.status = 'cut' then jsonb_build_object('cut_by', p_outcome.cut_by) else '{}' end);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_rest_asked(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_until timestamptz;
begin
  if coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID') and p_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_outcome.error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = p_att.api_key_id and k.is_active;
  end if;

  if p_outcome.cooldown_until_provider_midnight then
    -- A per-day quota: until the next midnight of the provider's day (its row's day_zone: Pacific
    -- for Google's row, whose per-day quotas are the ones that say so).
    select public.google_ai_midnight_after_in(pg_catalog.clock_timestamp(), p.day_zone) into v_until
    from public.google_ai_api_keys k join public.google_ai_providers p on p.name = k.serves_provider
    where k.id = p_att.api_key_id;
  else
    v_until := p_outcome.cooldown_until;
  end if;
  if v_until is not null and p_att.quota_group is not null then
    perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, v_until, p_outcome.quota_cause,
      coalesce(p_outcome.error_code, p_att.status), p_outcome.quota_id);
  end if;
  return v_until;
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
    perform public.google_ai_count_budgets(p_att.token_id, p_att.client_id, p_att.caller, p_att.created_at,
      public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
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

  perform public.google_ai_count_budgets(v_att.token_id, v_att.client_id, v_att.caller, v_att.created_at,
    public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)), 0, -v_att.estimated_tokens,
    -v_att.booked_usd, false);
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

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_settled_tokens integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer, p_cache_write_5m_tokens integer DEFAULT NULL::integer, p_cache_write_1h_tokens integer DEFAULT NULL::integer, p_stated_limits integer[] DEFAULT NULL::integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  return public.google_ai_finalize(p_reservation_id, pg_catalog.jsonb_build_object(
    'kind', p_outcome, 'input_tokens', p_input_tokens, 'output_tokens', p_output_tokens,
    'http_status', p_http_status, 'error_code', p_error_code, 'quota_id', p_quota_id,
    'error_message', p_error_message, 'latency_ms', p_latency_ms, 'cooldown_until', p_cooldown_until,
    'cooldown_until_provider_midnight', coalesce(p_cooldown_until_pacific_midnight, false),
    'response', p_response, 'key_rejected', p_key_rejected, 'quota_cause', p_quota_cause,
    'service_tier', p_service_tier, 'served_tier', p_served_tier, 'added_ms', p_added_ms,
    'first_byte_ms', p_first_byte_ms, 'room_requests', p_room_requests, 'room_tokens', p_room_tokens,
    'room_until', p_room_until, 'settled_tokens', p_settled_tokens, 'cached_input_tokens', p_cached_input_tokens,
    'thinking_tokens', p_thinking_tokens, 'cache_write_5m_tokens', p_cache_write_5m_tokens,
    'cache_write_1h_tokens', p_cache_write_1h_tokens, 'stated_limits', p_stated_limits));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_ids uuid[];
  v_outcomes public.google_ai_attempt_outcome[];
  v_open public.google_ai_attempts[];
  v_answers jsonb[];
  -- The calls whose room google_ai_room_rest has weighed already.
  v_weighed boolean[];
  v_outcome public.google_ai_attempt_outcome;
  c record;
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome,
      case when pg_catalog.jsonb_typeof(e.call -> 'outcome') = 'object' then e.call -> 'outcome'
           else public.google_ai_former_outcome(e.call) end) order by e.n), '{}')
  into v_ids, v_outcomes
  from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n);
  v_open := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update);
  v_answers := pg_catalog.array_fill(null::jsonb, array[cardinality(v_ids)]);
  v_weighed := pg_catalog.array_fill(false, array[cardinality(v_ids)]);
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  for c in
    select a, g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    where (v_outcomes[g.n]).room_until is not null
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n
  loop
    v_outcome := v_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_weighed[c.n] := true;
    end if;
  end loop;
  for c in
    select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n
  loop
    v_outcome := v_outcomes[c.n];
    if v_weighed[c.n] then
      v_outcome.room_until := null;
    end if;
    v_answers[c.n] := public.google_ai_finalize_attempt(v_ids[c.n], v_outcome);
  end loop;
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_latency_ms integer DEFAULT NULL::integer, p_error_message text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer, p_cache_write_5m_tokens integer DEFAULT NULL::integer, p_cache_write_1h_tokens integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  return public.google_ai_finalize(p_reservation_id, pg_catalog.jsonb_build_object(
    'kind', 'cut', 'cut_by', p_cut_by, 'input_tokens', p_input_tokens, 'output_tokens', p_output_tokens,
    'latency_ms', p_latency_ms, 'error_message', p_error_message, 'service_tier', p_service_tier,
    'served_tier', p_served_tier, 'added_ms', p_added_ms, 'first_byte_ms', p_first_byte_ms,
    'cached_input_tokens', p_cached_input_tokens, 'thinking_tokens', p_thinking_tokens,
    'cache_write_5m_tokens', p_cache_write_5m_tokens, 'cache_write_1h_tokens', p_cache_write_1h_tokens));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404, p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_successor text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  return public.google_ai_finalize(p_reservation_id, pg_catalog.jsonb_build_object(
    'kind', 'withdrawn', 'http_status', p_http_status, 'error_code', p_error_code,
    'error_message', p_error_message, 'latency_ms', p_latency_ms, 'successor', p_successor));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer, p_class text)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_call public.google_ai_attempt_outcome;
  v_thinking integer;
  v_tier text;
  v_cost numeric;
  v_worst numeric;
begin
  select coalesce(l.max_thinking_tokens, 0) into v_thinking from public.google_ai_model_limits l
  where l.model = p_model;
  if not found or p_output is null then
    return null;
  end if;
  v_call.kind := 'succeeded';
  v_call.input_tokens := p_input;
  v_call.cached_input_tokens := 0;
  v_call.output_tokens := p_output + v_thinking;
  v_call.thinking_tokens := v_thinking;
  for v_tier in select null::text union select s.service_tier from public.google_ai_service_tiers s
               where s.model = p_model and s.priority_class = p_class loop
    v_call.service_tier := v_tier;
    v_cost := public.google_ai_call_cost(p_model, v_call);
    if v_cost is null then
      return null;
    end if;
    v_worst := greatest(v_worst, v_cost);
  end loop;
  return v_worst;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on type public.google_ai_attempt_outcome is 'What came of one attempt at the provider, as finalize takes it: its kind (succeeded, upstream_error, network_error, timeout, cut, withdrawn), the provider''s counts and answer, the rest it asks for (cooldown_until, or until the provider''s midnight), its room and the limits it states.';
revoke all on function public.google_ai_call_cost(p_model text, p_call public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_finalize_attempt(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) to eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) to service_role;
revoke all on function public.google_ai_former_outcome(p_call jsonb) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_record_success(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_rest_asked(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_settle_call(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_withdraw_attempt(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
