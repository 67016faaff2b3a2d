-- Housekeeping: the hourly run and its steps (abandoned reservations, old attempts, responses,
-- counters, cooldowns, tokens, pg_cron history), written to the maintenance log, and the call to
-- the maintenance Edge Function (scheduled by the migration that holds the pg_cron jobs).
set check_function_bodies = off;

-- One provider's active keys, with their quota group: those the maintenance function checks against
-- that provider's model list, and those llm-invoke's exact count uses (a provider that offers one).
-- No provider named, no keys. A key is only ever sent to its own provider.
CREATE OR REPLACE FUNCTION public.google_ai_active_keys(p_provider text DEFAULT NULL::text) RETURNS TABLE(id text,
    key_alias text, env_var_name text, quota_group text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select k.id::text, k.key_alias, k.env_var_name, public.google_ai_quota_group(k.project_id, k.id)
  from public.google_ai_api_keys k
  where k.is_active and k.serves_provider = p_provider
  order by k.priority nulls last, k.key_alias
$$;

-- Deletes rows of p_table matching p_condition (on alias s; $1 is p_cutoff) in batches of
-- p_batch, taking each batch with FOR UPDATE SKIP LOCKED so rows other transactions hold are left
-- alone. Stops after p_max_batches or at p_deadline; 'more' says rows may remain for the next run (its
-- last batch was full, or it took none).
-- Internal: the condition is SQL text, so only the owner may call it.
CREATE OR REPLACE FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text,
    p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone,
    p_order text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
$$;

-- What pg_cron, the maintenance function and operators call: the database clock, always.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping() RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$ select public.google_ai_housekeeping_at(null) $$;

COMMENT ON FUNCTION public.google_ai_housekeeping() IS
    'Gateway housekeeping (retention, stale reservations, expired cooldowns and tokens, cron history, dead counters) '
    'in bounded batches; logs one google_ai_maintenance_log row per run and returns its summary.';

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_abandon(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
$$;

-- One step of a housekeeping run, as google_ai_housekeeping_steps lists it and google_ai_housekeeping_step
-- runs it: its name (its key in the run's log), the table it clears (rel), and either a function of its own
-- (fn: google_ai_housekeeping_<fn>, for abandon, attempts and counters) or a batched delete
-- (google_ai_delete_batched) of rel's rows that match condition ($1: cutoff) by key, in sort's order.
CREATE TYPE public.google_ai_housekeeping_task AS (
    name text,
    rel text,
    fn text,
    key text,
    condition text,
    cutoff timestamp with time zone,
    sort text
);

COMMENT ON TYPE public.google_ai_housekeeping_task IS
    'One step of a housekeeping run (google_ai_housekeeping_steps): its name, its table, and its own function or '
    'the batched delete''s key, condition, cutoff and order.';

-- Housekeeping's steps (google_ai_housekeeping_task), in the order a run takes them
-- (google_ai_housekeeping_at). The big deletes first. Cooldowns and responses near the end: a live call
-- may upsert a row these steps are deleting, and it waits until the run commits. dead_counters last: it
-- share-locks the keys table, and that lock should live only milliseconds.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_steps(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings) RETURNS SETOF public.google_ai_housekeeping_task
    LANGUAGE sql STABLE
    AS $_$
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
$_$;

-- One housekeeping step (p_task, a row of google_ai_housekeeping_steps) in a subtransaction of its own:
-- what it did, with its status and time. A failed step is rolled back alone and answers its (sanitized)
-- error; a table this database does not have (pg_cron's, without pg_cron) skips its step.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_step(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone,
    p_task public.google_ai_housekeeping_task) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
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
$_$;

-- Housekeeping with an injectable clock (p_now null: the database clock). Tests use it to place
-- the run in a given minute and Pacific day; everyone else calls google_ai_housekeeping(). The steps
-- (google_ai_housekeeping_steps) run one by one (google_ai_housekeeping_step): a failed step is logged
-- and the run goes on. One log row per run, a skipped one too.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
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
$_$;

-- Housekeeping's attempts step: old attempt rows deleted in batches; it folds first (waiting for a scrape's fold to
-- end) and holds the fold's row lock while it deletes, so the mark cannot move; a row above the mark is added to the
-- totals in the statement that deletes it.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_attempts(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
$$;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_counters(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_minute timestamptz := public.google_ai_minute_window(p_now);
begin
  -- While this transaction lives, no key can be activated or added (SHARE blocks writes to the keys
  -- table, not reads): a reservation that sees a newly active group afterwards also sees its counter
  -- row gone and creates a fresh one, instead of booking on a row deleted under it. NOWAIT: an
  -- operator editing keys right now wins, and this step waits for the next run.
  begin
    lock table public.google_ai_api_keys in share mode nowait;
  exception when lock_not_available then
    return jsonb_build_object('skipped', 'google_ai_api_keys is being written; retried next run');
  end;
  return public.google_ai_delete_batched('public.google_ai_usage_counters'::regclass, 'id',
    -- A counter's day is over when its provider's day has turned (the day_zone of the provider of its
    -- model, or of its pool's models: limit_pool), not Pacific's; a name no row holds any more: Pacific's.
    format('s.quota_group is not null and s.minute_bucket < $1
            and s.day_bucket < public.google_ai_day_in(%L::timestamptz, coalesce(
              (select p.day_zone from public.google_ai_model_limits m
               join public.google_ai_providers p on p.name = m.provider
               where s.model in (m.model, m.limit_pool) limit 1), %L))
            and not exists (select 1 from public.google_ai_api_keys k
                            where k.is_active and public.google_ai_quota_group(k.project_id, k.id) = s.quota_group)',
           p_now, public.google_ai_pacific_zone()),
    v_minute, p_settings.batch_size, p_settings.max_batches, p_deadline);
end
$_$;

-- Calls the maintenance Edge Function through pg_net, with its URL and the service key read from
-- Vault at call time (so rotating the key is a Vault update, not a migration). Asynchronous: returns
-- pg_net's request id; the answer lands in net._http_response. By default the function skips its own
-- housekeeping (the hourly job does that) and checks keys and the model catalogue.
-- Raises a message that says what to set up when pg_net, Vault or a secret is missing. It reads the
-- service key: only its owner (the role pg_cron runs the job as) may call it (99_access.sql).
CREATE OR REPLACE FUNCTION public.google_ai_invoke_maintenance_function(
    p_body jsonb DEFAULT '{"housekeeping": false}'::jsonb, p_timeout_ms integer DEFAULT 120000) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  -- pg_net's function and Vault's view, found by name: where either extension is absent the function
  -- still compiles (and `supabase db lint` checks it) and says what to enable; their names reach the
  -- statements below only as these values, never as text a checker would resolve.
  v_post regprocedure := pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)');
  v_secrets regclass := pg_catalog.to_regclass('vault.decrypted_secrets');
  v_url text;
  v_key text;
  v_id bigint;
begin
  if v_post is null then
    raise exception
      'pg_net is not installed: enable it (Dashboard > Database > Extensions > pg_net, or: create extension pg_net;)'
      using errcode = '55000';
  end if;
  if v_secrets is null then
    raise exception 'Supabase Vault is not available in this database (vault.decrypted_secrets is missing)'
      using errcode = '55000';
  end if;
  execute pg_catalog.format('select s.decrypted_secret from %s s where s.name = $1 order by s.created_at desc limit 1',
                            v_secrets)
    into v_url using 'eve_gateway_functions_url';
  execute pg_catalog.format('select s.decrypted_secret from %s s where s.name = $1 order by s.created_at desc limit 1',
                            v_secrets)
    into v_key using 'eve_gateway_service_key';
  if coalesce(v_url, '') = '' then
    raise exception using errcode = '55000', message = 'Vault secret eve_gateway_functions_url is missing: select '
      || 'vault.create_secret(''https://<project-ref>.supabase.co/functions/v1'', ''eve_gateway_functions_url'');';
  end if;
  if coalesce(v_key, '') = '' then
    raise exception using errcode = '55000', message = 'Vault secret eve_gateway_service_key is missing: select '
      || 'vault.create_secret(''<service or secret key>'', ''eve_gateway_service_key'');';
  end if;
  execute pg_catalog.format('select %s(url => $1, body => $2, params => ''{}''::jsonb, headers => $3, '
                            || 'timeout_milliseconds => $4)', v_post::oid::regproc)
    into v_id
    using pg_catalog.rtrim(v_url, '/') || '/maintenance',
          coalesce(p_body, '{}'::jsonb) || '{"source": "pg_cron"}'::jsonb,
          pg_catalog.jsonb_build_object('content-type', 'application/json',
            'authorization', 'Bearer ' || v_key, 'apikey', v_key, 'x-caller', 'pg_cron'),
          p_timeout_ms;
  return v_id;
end
$_$;

-- One google_ai_maintenance_log row for a run (housekeeping's, or the maintenance function's); returns its id.
CREATE OR REPLACE FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[],
    p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone,
    p_status text, p_details jsonb) RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  insert into public.google_ai_maintenance_log
    (operation, tables_affected, deleted_count, started_at, completed_at, status, details)
  values (p_operation, p_tables_affected, p_deleted_count, p_started_at, p_completed_at, p_status, p_details)
  returning id
$$;
