-- Housekeeping: one SQL function that keeps the gateway's tables small and its state clean, safe to
-- run at any time and concurrently with traffic. pg_cron runs it hourly (the schedule file after
-- this one); the `maintenance` Edge Function runs it on demand, and reads and logs through the two
-- functions at the end of this file.
--
--   select public.google_ai_housekeeping();        -- database clock, settings below; returns jsonb
--
-- Steps, in this order, each in its own subtransaction (a failing step is rolled back alone, the
-- others keep their work, and the run is logged as 'failed' with the step's sanitized error):
--   abandon_stale_reservations  'reserved' attempts older than stale_reservation_after whose minute
--                               window is over become 'abandoned' (their capacity already expired
--                               with the window; the day's request stays counted, conservatively)
--   attempts_retention          attempt rows older than attempts_retention are deleted
--   tokens                      Kaggle tokens expired or revoked more than token_grace ago
--   cron_history                cron.job_run_details older than cron_history_retention, where pg_cron is
--   expired_cooldowns           cooldowns whose cooldown_until has passed are deleted
--   replay_responses            idempotency records older than the 24 h replay window are deleted
--   dead_counters               counter rows of quota groups with no active key whose minute and
--                               day windows are both over (legacy rows, quota_group null, never)
-- (cooldowns and responses come after the big deletes: a live call upserting a row they hold waits
-- only until the commit)
--
-- Safe with traffic: every delete/update takes its rows in bounded batches with
-- `for update skip locked` (a row a reservation holds is simply left for the next run), the run
-- stops starting batches after max_batches per step or time_budget, and it waits at most
-- lock_timeout_ms for any table lock (so it never queues behind DDL and blocks traffic behind it).
-- Nothing in a live window is touched: counters only when both their windows are over and no active
-- key can book on them; reservations only when they are long past any function's wall clock.
--
-- Every run writes exactly one google_ai_maintenance_log row (operation 'housekeeping'): status
-- 'succeeded', 'failed' (some step failed; see details.failed_steps) or 'skipped' (another run held
-- the lock). A failure never raises: raising would roll the log row back with it. Read the status
-- from the returned jsonb or the log (a failed run also emits a WARNING to the server log).

-- Settings -------------------------------------------------------------------------------------
-- One row (id = true). Edit it to tune retention; the function falls back to these defaults if the
-- row is missing.
create table if not exists public.google_ai_maintenance_settings (
  id                      boolean primary key default true,
  attempts_retention      interval not null default interval '30 days',
  stale_reservation_after interval not null default interval '15 minutes',
  token_grace             interval not null default interval '7 days',
  cron_history_retention  interval not null default interval '7 days',
  batch_size              integer not null default 5000,
  max_batches             integer not null default 100,
  time_budget             interval not null default interval '2 minutes',
  lock_timeout_ms         integer not null default 5000,
  updated_at              timestamptz not null default now(),
  constraint google_ai_maintenance_settings_singleton check (id),
  -- Lower bounds keep a typo from deleting live data: the attempt log of the current day, open
  -- reservations still inside an Edge Function's wall clock (400 s max), tokens minted within the
  -- last hour (the mint rate limit counts them), and the cron history pg_cron is writing.
  constraint google_ai_maintenance_settings_attempts_retention_check check (attempts_retention >= interval '1 day'),
  constraint google_ai_maintenance_settings_stale_reservation_check check (stale_reservation_after >= interval '7 minutes'),
  constraint google_ai_maintenance_settings_token_grace_check check (token_grace >= interval '1 hour'),
  constraint google_ai_maintenance_settings_cron_history_check check (cron_history_retention >= interval '1 hour'),
  constraint google_ai_maintenance_settings_batch_size_check check (batch_size between 1 and 100000),
  constraint google_ai_maintenance_settings_max_batches_check check (max_batches between 1 and 100000),
  constraint google_ai_maintenance_settings_time_budget_check check (time_budget > interval '0'),
  constraint google_ai_maintenance_settings_lock_timeout_check check (lock_timeout_ms between 1 and 600000)
);
insert into public.google_ai_maintenance_settings (id) values (true) on conflict (id) do nothing;

comment on table public.google_ai_maintenance_settings is
  'Housekeeping settings (one row). attempts_retention: how long attempt rows are kept; stale_reservation_after: '
  'when an open reservation counts as abandoned; token_grace: how long expired/revoked tokens are kept; '
  'cron_history_retention: cron.job_run_details kept; batch_size/max_batches/time_budget: work per run; '
  'lock_timeout_ms: longest wait for a table lock.';

-- Helpers ----------------------------------------------------------------------------------------

-- An error message fit for the log: known secret shapes redacted (the same shapes as the functions'
-- sanitize.ts), control characters flattened, length capped.
create or replace function public.google_ai_sanitize_error(p_message text, p_max_length integer default 500)
returns text language sql immutable parallel safe set search_path = ''
as $$
  select left(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
      coalesce(p_message, ''),
      'AIza[0-9A-Za-z_-]{10,}', '[redacted]', 'g'),
      '(sb_secret_|evegw_tok_|evegw_cs_)[0-9A-Za-z_-]+', '[redacted]', 'g'),
      'eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*', '[redacted]', 'g'),
      '([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@', '\1[redacted]@', 'gi'),
      '\m(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
      '[[:cntrl:]]+', ' ', 'g'),
    greatest(p_max_length, 1))
$$;

-- Deletes rows of p_table matching p_condition (on alias s; $1 is p_cutoff) in batches of
-- p_batch, taking each batch with FOR UPDATE SKIP LOCKED so rows other transactions hold are left
-- alone. Stops after p_max_batches or at p_deadline; 'more' says rows may remain for the next run.
-- Internal: the condition is SQL text, so only the owner may call it.
create or replace function public.google_ai_delete_batched(
  p_table regclass, p_key text, p_condition text, p_cutoff timestamptz,
  p_batch integer, p_max_batches integer, p_deadline timestamptz, p_order text default null)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_sql text;
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
begin
  v_sql := format(
    'delete from %s t where t.%I in (select s.%I from %s s where %s %s limit %s for update skip locked)',
    p_table, p_key, p_key, p_table, p_condition,
    coalesce('order by ' || p_order, ''), p_batch);
  loop
    if v_batches >= p_max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
    execute v_sql using p_cutoff;
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_batch;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_more);
end
$$;

-- Steps ------------------------------------------------------------------------------------------
-- Each returns jsonb with the rows it changed ('deleted' or 'abandoned'), the batches it ran and
-- whether more rows may remain ('more'); or {'skipped': why}.

create or replace function public.google_ai_housekeeping_abandon(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_cutoff timestamptz := p_now - p_settings.stale_reservation_after;
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
begin
  loop
    if v_batches >= p_settings.max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
    update public.google_ai_attempts a set
      status = 'abandoned',
      finished_at = p_now,
      error_message = coalesce(a.error_message,
        'abandoned by housekeeping: no outcome within ' || p_settings.stale_reservation_after::text)
    where a.id in (
      select s.id from public.google_ai_attempts s
      where s.status = 'reserved' and s.created_at < v_cutoff
        and coalesce(s.minute_bucket, s.created_at) < v_minute
      order by s.created_at
      limit p_settings.batch_size
      for update skip locked)
      and a.status = 'reserved';
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('abandoned', v_total, 'batches', v_batches, 'more', v_more, 'older_than', v_cutoff);
end
$$;

create or replace function public.google_ai_housekeeping_attempts(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_cutoff timestamptz := p_now - p_settings.attempts_retention;
begin
  -- An open reservation is never deleted here (the abandon step closes it first).
  return public.google_ai_delete_batched('public.google_ai_attempts'::regclass, 'id',
      's.created_at < $1 and s.status <> ''reserved''', v_cutoff,
      p_settings.batch_size, p_settings.max_batches, p_deadline, 's.created_at')
    || jsonb_build_object('older_than', v_cutoff);
end
$$;

create or replace function public.google_ai_housekeeping_cooldowns(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
begin
  -- An expired cooldown is inert (the RPC ignores it); google_ai_cooldown re-creates one when needed.
  return public.google_ai_delete_batched('public.google_ai_cooldowns'::regclass, 'ctid',
    's.cooldown_until < $1', p_now, p_settings.batch_size, p_settings.max_batches, p_deadline, 's.cooldown_until');
end
$$;

create or replace function public.google_ai_housekeeping_responses(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
begin
  -- The reservation RPC replays a stored response for 24 hours (idempotent request ids); older
  -- rows are never read again.
  return public.google_ai_delete_batched('public.google_ai_responses'::regclass, 'ctid',
    's.created_at < $1', p_now - interval '24 hours', p_settings.batch_size, p_settings.max_batches, p_deadline,
    's.created_at');
end
$$;

-- Kaggle tokens that expired or were revoked more than token_grace ago. The grace (>= 1 hour)
-- outlives any open reservation of a token (tokens live <= 12 hours) and the mint rate limit's
-- one-hour look-back.
create or replace function public.google_ai_housekeeping_tokens(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_cutoff timestamptz := p_now - p_settings.token_grace;
begin
  return public.google_ai_delete_batched('public.google_ai_tokens'::regclass, 'id',
      's.expires_at < $1 or s.revoked_at < $1', v_cutoff,
      p_settings.batch_size, p_settings.max_batches, p_deadline)
    || jsonb_build_object('older_than', v_cutoff);
end
$$;

create or replace function public.google_ai_housekeeping_cron_history(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_table regclass := pg_catalog.to_regclass('cron.job_run_details');
  v_cutoff timestamptz := p_now - p_settings.cron_history_retention;
begin
  if v_table is null then
    return jsonb_build_object('skipped', 'pg_cron is not installed in this database');
  end if;
  -- Finished runs only: a run still going has no end_time.
  return public.google_ai_delete_batched(v_table, 'runid', 's.end_time < $1', v_cutoff,
      p_settings.batch_size, p_settings.max_batches, p_deadline)
    || jsonb_build_object('older_than', v_cutoff);
end
$$;

create or replace function public.google_ai_housekeeping_counters(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_day date := public.google_ai_pacific_day(p_now);
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
    format('s.quota_group is not null and s.day_bucket < %L::date and s.minute_bucket < $1
            and not exists (select 1 from public.google_ai_api_keys k
                            where k.is_active and public.google_ai_quota_group(k.project_id, k.id) = s.quota_group)',
           v_day),
    v_minute, p_settings.batch_size, p_settings.max_batches, p_deadline);
end
$$;

-- The run ------------------------------------------------------------------------------------------

-- Housekeeping with an injectable clock (p_now null: the database clock). Tests use it to place
-- the run in a given minute and Pacific day; everyone else calls google_ai_housekeeping().
create or replace function public.google_ai_housekeeping_at(p_now timestamptz)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  -- The big deletes first. Cooldowns and responses near the end: a live call may upsert a row these
  -- steps are deleting, and it waits until this run commits. dead_counters last: it share-locks
  -- the keys table, and that lock should live only milliseconds.
  c_steps constant text[] := array['abandon', 'attempts', 'tokens', 'cron_history', 'cooldowns', 'responses',
                                   'counters'];
  c_names constant text[] := array['abandon_stale_reservations', 'attempts_retention', 'tokens', 'cron_history',
                                   'expired_cooldowns', 'replay_responses', 'dead_counters'];
  c_tables constant text[] := array['google_ai_attempts', 'google_ai_attempts', 'google_ai_tokens',
                                    'cron.job_run_details', 'google_ai_cooldowns', 'google_ai_responses',
                                    'google_ai_usage_counters'];
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_now timestamptz := coalesce(p_now, v_started);
  v_settings public.google_ai_maintenance_settings;
  v_deadline timestamptz;
  v_old_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_step_started timestamptz;
  v_result jsonb;
  v_steps jsonb := '{}';
  v_failed text[] := '{}';
  v_tables text[] := '{}';
  v_deleted bigint := 0;
  v_changed bigint;
  v_more boolean := false;
  v_status text;
  v_message text;
  v_state text;
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
  v_deadline := v_started + v_settings.time_budget;

  -- One run at a time (the hourly job and an on-demand run may meet); the other one is logged as skipped.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.google_ai_housekeeping')::bigint) then
    v_completed := pg_catalog.clock_timestamp();
    insert into public.google_ai_maintenance_log (operation, tables_affected, deleted_count, started_at,
      completed_at, status, details)
    values ('housekeeping', '{}', 0, v_started, v_completed, 'skipped',
      jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now))
    returning id into v_log_id;
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);

  for i in 1 .. pg_catalog.array_length(c_steps, 1) loop
    v_step_started := pg_catalog.clock_timestamp();
    begin
      execute format('select public.%I($1, $2, $3)', 'google_ai_housekeeping_' || c_steps[i])
        into v_result using v_now, v_settings, v_deadline;
      v_result := v_result || jsonb_build_object('status', case when v_result ? 'skipped' then 'skipped' else 'succeeded' end);
    exception when others then
      get stacked diagnostics v_message = message_text, v_state = returned_sqlstate;
      v_result := jsonb_build_object('status', 'failed', 'sqlstate', v_state,
        'error', public.google_ai_sanitize_error(v_message));
      v_failed := v_failed || c_names[i];
    end;
    v_changed := coalesce((v_result ->> 'deleted')::bigint, 0) + coalesce((v_result ->> 'abandoned')::bigint, 0);
    v_deleted := v_deleted + coalesce((v_result ->> 'deleted')::bigint, 0);
    if v_changed > 0 and not (c_tables[i] = any (v_tables)) then
      v_tables := v_tables || c_tables[i];
    end if;
    v_more := v_more or coalesce((v_result ->> 'more')::boolean, false);
    v_steps := v_steps || jsonb_build_object(c_names[i], v_result || jsonb_build_object(
      'ms', round(extract(epoch from (pg_catalog.clock_timestamp() - v_step_started)) * 1000, 1)));
  end loop;

  perform pg_catalog.set_config('lock_timeout', v_old_lock_timeout, true);

  v_status := case when cardinality(v_failed) > 0 then 'failed' else 'succeeded' end;
  v_completed := pg_catalog.clock_timestamp();
  insert into public.google_ai_maintenance_log (operation, tables_affected, deleted_count, started_at,
    completed_at, status, details)
  values ('housekeeping', v_tables, least(v_deleted, 2147483647)::integer, v_started, v_completed, v_status,
    jsonb_build_object(
      'now', v_now,
      'duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
      'steps', v_steps,
      'failed_steps', to_jsonb(v_failed),
      'more_pending', v_more,
      'settings', to_jsonb(v_settings) - 'id' - 'updated_at'))
  returning id into v_log_id;

  if v_status = 'failed' then
    raise warning 'google_ai_housekeeping: step(s) % failed; see google_ai_maintenance_log id %',
      array_to_string(v_failed, ', '), v_log_id;
  end if;

  return jsonb_build_object(
    'ok', v_status = 'succeeded',
    'status', v_status,
    'log_id', v_log_id,
    'deleted_count', v_deleted,
    'more_pending', v_more,
    'failed_steps', to_jsonb(v_failed),
    'duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps);
end
$$;

-- What pg_cron, the maintenance function and operators call: the database clock, always.
create or replace function public.google_ai_housekeeping()
returns jsonb
language sql security definer set search_path = ''
as $$ select public.google_ai_housekeeping_at(null) $$;

comment on function public.google_ai_housekeeping() is
  'Gateway housekeeping (retention, stale reservations, expired cooldowns and tokens, cron history, dead '
  'counters) in bounded batches; logs one google_ai_maintenance_log row per run and returns its summary.';

-- For the maintenance Edge Function ----------------------------------------------------------------

-- The keys the maintenance function checks against Google, with their quota group.
create or replace function public.google_ai_active_keys()
returns table (id text, key_alias text, env_var_name text, quota_group text)
language sql stable security definer set search_path = ''
as $$
  select k.id::text, k.key_alias, k.env_var_name, public.google_ai_quota_group(k.project_id, k.id)
  from public.google_ai_api_keys k
  where k.is_active
  order by k.priority nulls last, k.key_alias
$$;

-- One google_ai_maintenance_log row for a run of the maintenance function; returns its id.
create or replace function public.google_ai_log_maintenance_run(
  p_operation text, p_tables_affected text[], p_deleted_count integer, p_started_at timestamptz,
  p_completed_at timestamptz, p_status text, p_details jsonb)
returns integer
language sql security definer set search_path = ''
as $$
  insert into public.google_ai_maintenance_log
    (operation, tables_affected, deleted_count, started_at, completed_at, status, details)
  values (p_operation, p_tables_affected, p_deleted_count, p_started_at, p_completed_at, p_status, p_details)
  returning id
$$;
