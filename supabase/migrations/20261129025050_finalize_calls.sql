-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_finalize_calls: the finalizes that met in one worker, written in one transaction
--   (one commit's wait for the disk for the lot); ten functions said in fewer lines, their behaviour
--   unchanged
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_open public.google_ai_attempts[] := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id in (select (e ->> 'reservation_id')::uuid
                                                         from pg_catalog.jsonb_array_elements(p_calls) e)
    order by a.id for update);
  v_answers jsonb[] := pg_catalog.array_fill(null::jsonb, array[pg_catalog.jsonb_array_length(p_calls)]);
  c record;
begin
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  for c in
    select x.*, e.n from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n)
    cross join lateral pg_catalog.jsonb_to_record(e.call) x(reservation_id uuid, outcome text, input_tokens integer,
      output_tokens integer, http_status integer, error_code text, quota_id text, error_message text,
      latency_ms integer, cooldown_until timestamptz, cooldown_until_pacific_midnight boolean, response jsonb,
      key_rejected boolean, quota_cause text, service_tier text, served_tier text, added_ms integer,
      first_byte_ms integer, room_requests integer, room_tokens integer, room_until timestamptz,
      settled_tokens integer, cached_input_tokens integer, thinking_tokens integer, cache_write_5m_tokens integer,
      cache_write_1h_tokens integer)
    left join unnest(v_open) a on a.reservation_id = x.reservation_id
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), e.n
  loop
    v_answers[c.n] := public.google_ai_finalize(c.reservation_id, c.outcome, c.input_tokens, c.output_tokens,
      c.http_status, c.error_code, c.quota_id, c.error_message, c.latency_ms, c.cooldown_until,
      coalesce(c.cooldown_until_pacific_midnight, false), c.response, c.key_rejected, c.quota_cause, c.service_tier,
      c.served_tier, c.added_ms, c.first_byte_ms, c.room_requests, c.room_tokens, c.room_until, c.settled_tokens,
      c.cached_input_tokens, c.thinking_tokens, c.cache_write_5m_tokens, c.cache_write_1h_tokens);
  end loop;
  return pg_catalog.to_jsonb(v_answers);
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
    on conflict (scope, key) do update set flight_holder = excluded.flight_holder, flight_until = excluded.flight_until
    where (e.flight_until is null or e.flight_until <= v_now or e.flight_holder = excluded.flight_holder)
      and (p_mode = 'refresh' or e.answer is null or e.expires_at <= v_now)
    returning e.id into v_claimed;
    if v_claimed is not null then
      insert into public.google_ai_response_cache_misses as m (scope, misses) values (v_scope.scope, 1)
      on conflict (scope) do update set misses = m.misses + 1;
      return jsonb_build_object('status', 'miss', 'entry', v_claimed, 'ttl_s', extract(epoch from v_ttl)::integer);
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

CREATE OR REPLACE FUNCTION public.google_ai_cache_scope(p_caller text, p_token_hash text, p_model text, OUT scope text, OUT member text, OUT client_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  if p_token_hash is null then
    member := case when coalesce((public.google_ai_response_cache_config()).split_service_by_label, false)
                   then 'service:' || p_caller else 'service' end;
  else
    select 'client:' || c.name, c.id into member, client_id
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash and t.revoked_at is null and c.revoked_at is null
      and t.expires_at > pg_catalog.clock_timestamp() and p_model = any (t.models);
    if member is null then
      return;
    end if;
  end if;
  scope := coalesce((select s.shared_scope from public.google_ai_response_cache_shared_scopes s
                     where s.member = google_ai_cache_scope.member), member);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb, p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_attempt record;
  v_n integer;
begin
  select a.input_tokens, a.output_tokens, a.cost_usd into v_attempt
  from public.google_ai_attempts a where a.reservation_id = p_reservation_id;
  update public.google_ai_response_cache e set
    answer = p_answer, bytes = pg_catalog.octet_length(p_answer::text),
    served_model = p_served_model, provider = p_provider, finish = p_finish,
    input_tokens = v_attempt.input_tokens, output_tokens = v_attempt.output_tokens, cost_usd = v_attempt.cost_usd,
    created_at = v_now, expires_at = v_now + pg_catalog.make_interval(secs => p_ttl_s),
    flight_holder = null, flight_until = null
  where e.id = p_entry and e.flight_holder = p_holder;
  get diagnostics v_n = row_count;
  return v_n = 1;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval DEFAULT '12:00:00'::interval, p_token_max_requests integer DEFAULT NULL::integer, p_token_max_tokens integer DEFAULT NULL::integer, p_daily_max_requests integer DEFAULT NULL::integer, p_daily_max_tokens integer DEFAULT NULL::integer, p_mint_per_hour integer DEFAULT 60, p_notes text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_secret text;
  v_models text[];
  v_unknown text[];
  v_id uuid;
begin
  if p_name is null or p_name !~ '^[a-z0-9][a-z0-9._-]{0,62}$' then
    raise exception
      'client name must be 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit'
      using errcode = '22023';
  end if;
  select array_agg(coalesce((public.google_ai_resolve_model(m)).model, m) order by m),
         array_agg(m) filter (where (public.google_ai_resolve_model(m)).model is null)
    into v_models, v_unknown
  from unnest(p_models) m;
  if v_models is null or cardinality(v_models) = 0 then
    raise exception 'a client needs at least one model' using errcode = '22023';
  end if;
  if v_unknown is not null then
    raise exception 'unknown model(s): %', array_to_string(v_unknown, ', ') using errcode = '22023';
  end if;
  v_secret := 'evegw_cs_' || rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=');
  insert into public.google_ai_clients (name, secret_hash, models, max_token_ttl, token_max_requests, token_max_tokens,
    daily_max_requests, daily_max_tokens, mint_per_hour, notes)
  values (p_name, encode(pg_catalog.sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_models, p_max_token_ttl,
    p_token_max_requests, p_token_max_tokens, p_daily_max_requests, p_daily_max_tokens, p_mint_per_hour, p_notes)
  returning id into v_id;
  return jsonb_build_object('client_id', v_id, 'name', p_name, 'models', v_models, 'secret', v_secret);
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
    v_log_id := public.google_ai_log_maintenance_run('housekeeping', '{}', 0, v_started, pg_catalog.clock_timestamp(),
      'skipped', jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now));
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
  v_result := jsonb_build_object('duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps, 'failed_steps', to_jsonb(v_failed), 'more_pending', v_more);
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

CREATE OR REPLACE FUNCTION public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone)
 RETURNS TABLE(model text, quota_group text, priority_class text, status text, limit_hit text, refusal_cause text, quota_cause text, http_status integer, service_tier text, served_tier text, input_tokens integer, output_tokens integer, latency_ms integer, first_byte_ms integer, added_ms integer, wait_ms integer, caller text, cost_usd numeric)
 LANGUAGE sql
 STABLE
AS $function$
  select a.model, a.quota_group, a.priority_class, a.status, a.limit_hit, a.refusal_cause, a.quota_cause,
         a.http_status, a.service_tier, a.served_tier, a.input_tokens, a.output_tokens, a.latency_ms,
         a.first_byte_ms, a.added_ms, a.wait_ms,
         case when a.client_id is not null then a.caller else 'service' end as caller, a.cost_usd
  from public.google_ai_attempts a
  where a.id > p_after and a.id <= p_through and a.status <> 'reserved'
    and (p_only is null or a.id = any (p_only))
    and (p_settled_before is null or a.status <> 'refused' or a.created_at < p_settled_before)
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
  v_models := case when p_models is null then v_client.models else (
    select array_agg(distinct coalesce((public.google_ai_resolve_model(m)).model, m)) from unnest(p_models) m) end;
  if v_models is null or cardinality(v_models) = 0 or not (v_models <@ v_client.models)
     or (p_ttl_seconds is not null and (p_ttl_seconds < 60 or v_ttl > v_client.max_token_ttl))
     or (p_max_requests is not null and (p_max_requests < 1
       or p_max_requests > coalesce(v_client.token_max_requests, p_max_requests)))
     or (p_max_tokens is not null and (p_max_tokens < 1
       or p_max_tokens > coalesce(v_client.token_max_tokens, p_max_tokens))) then
    return jsonb_build_object('ok', false, 'error', 'scope_exceeded', 'allowed', jsonb_build_object(
      'models', v_client.models, 'max_ttl_seconds', extract(epoch from v_client.max_token_ttl)::integer,
      'max_requests', v_client.token_max_requests, 'max_tokens', v_client.token_max_tokens));
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
    'models', to_jsonb(v_models),
    'budget', jsonb_build_object('max_requests', v_max_requests, 'max_tokens', v_max_tokens,
      -- The budgets in money that apply to the token's calls: its own for its life, its client's left of
      -- the Pacific day and month (null: none).
      'max_usd', v_client.token_max_usd, 'daily_usd_left', v_left.usd, 'monthly_usd_left', v_left.month_usd));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer DEFAULT 14)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_checked text[]; -- providers with an active key whose last check succeeded
  v_listed jsonb;   -- {provider: {model: when a checked active key of that provider last listed it}}
  v_restored text[];
begin
  select coalesce(jsonb_object_agg(x.provider, x.models), '{}') into v_listed
  from (select y.provider, jsonb_object_agg(y.model, y.listed_at) as models
        from (select k.serves_provider as provider, c.model, max(c.refreshed_at) as listed_at
              from public.google_ai_model_catalogue c
              join public.google_ai_key_health h on h.api_key_id = c.api_key_id and h.status = 'ok'
              join public.google_ai_api_keys k on k.id = c.api_key_id and k.is_active
              group by k.serves_provider, c.model) y
        group by y.provider) x;
  select coalesce(array_agg(distinct k.serves_provider), '{}') into v_checked
  from public.google_ai_key_health h join public.google_ai_api_keys k on k.id = h.api_key_id
  where h.status = 'ok' and k.is_active;

  with back as (
    update public.google_ai_model_limits l set withdrawn_at = null, withdrawn_message = null, google_successor = null
    where l.provider = any (v_checked) and l.withdrawn_at is not null and v_listed -> l.provider ? l.model
      and (v_listed -> l.provider ->> l.model)::timestamptz > l.withdrawn_at
    returning l.model)
  select coalesce(array_agg(b.model order by b.model), '{}') into v_restored from back b;

  return jsonb_build_object('checked', cardinality(v_checked) > 0, 'restored', to_jsonb(v_restored),
    'withdrawn', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'withdrawn_at', l.withdrawn_at,
                             'message', l.withdrawn_message, 'successor', l.successor,
                             'google_successor', l.google_successor, 'provider', l.provider) order by l.model)
                           from public.google_ai_model_limits l where l.withdrawn_at is not null), '[]'),
    'missing', coalesce((select jsonb_agg(l.model order by l.model) from public.google_ai_model_limits l
                         where l.provider = any (v_checked) and l.is_active
                           and not coalesce(v_listed -> l.provider, '{}') ? l.model), '[]'),
    'shutting_down', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'shutdown_date', l.shutdown_date,
                                 'days_left', l.shutdown_date - current_date, 'successor', l.successor)
                                 order by l.shutdown_date, l.model)
                               from public.google_ai_model_limits l
                               where l.is_active and l.shutdown_date <= current_date + coalesce(p_within_days, 14)),
                                 '[]'),
    'unserved', coalesce((select jsonb_agg(distinct g order by g)
                          from jsonb_each(v_listed) p cross join lateral jsonb_object_keys(p.value) g
                          where not exists (select 1 from public.google_ai_model_limits l where l.model = g)), '[]'));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_limits record;
  v_sum record;
  v_bucket_limits jsonb := '{}'::jsonb;
  v_bucket_minute jsonb := '{}'::jsonb;
  v_queue jsonb;
begin
  v_limits := public.google_ai_request_limits(p_model);
  if v_limits.model is null then
    return null;
  end if;
  select count(*)::integer as groups,
         count(*) filter (where q.cooldown_until is not null)::integer as cooling,
         sum(q.requests_left)::integer as requests_left,
         min(q.requests_reset_at) filter (where q.requests_reset_at > p_now) as requests_reset_at,
         sum(q.tokens_left)::bigint as tokens_left,
         min(q.tokens_reset_at) filter (where q.tokens_reset_at > p_now) as tokens_reset_at,
         sum(q.day_left)::integer as day_left,
         min(q.day_reset_at) as day_reset_at
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                   v_limits.rpd, p_now) q;
  -- A row that counts input and output apart (itpm, otpm): its token buckets, summed, and when all are full.
  if v_limits.itpm is not null or v_limits.otpm is not null then
    select jsonb_build_object('itpm', v_limits.itpm, 'otpm', v_limits.otpm), jsonb_build_object(
             'input_tokens_left', case when v_limits.itpm is not null then coalesce(sum(t.input_left), 0) end,
             'input_tokens_reset_ms', case when v_limits.itpm is not null
               then public.google_ai_ms_until(coalesce(max(t.input_full_at), p_now), p_now) end,
             'output_tokens_left', case when v_limits.otpm is not null then coalesce(sum(t.output_left), 0) end,
             'output_tokens_reset_ms', case when v_limits.otpm is not null
               then public.google_ai_ms_until(coalesce(max(t.output_full_at), p_now), p_now) end)
      into v_bucket_limits, v_bucket_minute
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
    cross join lateral public.google_ai_group_token_room(g.quota_group, v_limits, p_now) t;
  end if;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object('model', v_limits.model,
    'limits', jsonb_build_object('rpm', v_limits.rpm, 'tpm', v_limits.tpm, 'rpd', v_limits.rpd) || v_bucket_limits,
    'quota_groups', v_sum.groups, 'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end)
      || v_bucket_minute,
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
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

  return jsonb_build_object('ok', true, 'as_of', v_now, 'caller', v_caller,
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

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_finalize_calls(p_calls jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_calls(p_calls jsonb) to eve_gateway;
grant execute on function public.google_ai_finalize_calls(p_calls jsonb) to service_role;
