-- Housekeeping: what goes past its retention is deleted in batches, what is inside it or in a live
-- window survives, stale reservations are closed, and each run writes exactly one log row.
-- The run is placed at 2026-07-16 06:59:30 UTC = 23:59:30 PDT on 15 July: the UTC date is already
-- the 16th, the Pacific day (the one Google resets) is still the 15th.
begin;
create extension if not exists pgtap with schema extensions;
select plan(38);

create function pg_temp.now() returns timestamptz language sql immutable as $$ select '2026-07-16 06:59:30+00'::timestamptz $$;
create function pg_temp.ago(p interval) returns timestamptz language sql immutable as $$ select pg_temp.now() - p $$;

update public.google_ai_maintenance_settings set batch_size = 3, max_batches = 1000;
delete from public.google_ai_api_keys;
insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, is_active) values
  ('00000000-0000-0000-0000-00000000000a', 'live', 'KEY_LIVE', 'proj-live', true),
  ('00000000-0000-0000-0000-00000000000b', 'dead', 'KEY_DEAD', 'proj-dead', false),
  ('00000000-0000-0000-0000-00000000000c', 'lone', 'KEY_LONE', null, false);

-- Attempts ---------------------------------------------------------------------------------------
insert into public.google_ai_attempts (status, caller, model, created_at, finished_at, metadata)
select 'succeeded', 'old', 'gemma-3-27b-it', pg_temp.ago(interval '31 days' + n * interval '1 minute'), null,
       jsonb_build_object('n', n)
from generate_series(1, 10) n;
insert into public.google_ai_attempts (status, caller, model, created_at, limit_hit) values
  ('refused', 'old', 'gemma-3-27b-it', pg_temp.ago(interval '45 days'), 'rpm'),
  ('succeeded', 'edge', 'gemma-3-27b-it', pg_temp.ago(interval '30 days'), null),
  ('succeeded', 'kept', 'gemma-3-27b-it', pg_temp.ago(interval '29 days 23 hours'), null),
  ('refused', 'kept', 'gemma-3-27b-it', pg_temp.ago(interval '1 day'), 'tpm');
-- Reservations: one long dead, one stale (20 minutes, its minute long over), one still young.
insert into public.google_ai_attempts (status, caller, model, created_at, quota_group, minute_bucket, day_bucket, request_id) values
  ('reserved', 'ancient', 'gemma-3-27b-it', pg_temp.ago(interval '40 days'), 'proj-live',
   date_trunc('minute', pg_temp.ago(interval '40 days')), '2026-06-05', 'r-ancient'),
  ('reserved', 'stale', 'gemma-3-27b-it', pg_temp.ago(interval '20 minutes'), 'proj-live',
   date_trunc('minute', pg_temp.ago(interval '20 minutes')), '2026-07-15', 'r-stale'),
  ('reserved', 'young', 'gemma-3-27b-it', pg_temp.ago(interval '2 minutes'), 'proj-live',
   date_trunc('minute', pg_temp.ago(interval '2 minutes')), '2026-07-15', 'r-young');

-- Cooldowns --------------------------------------------------------------------------------------
insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason) values
  ('proj-live', 'gemma-3-27b-it', pg_temp.ago(interval '1 second'), 'expired'),
  ('proj-live', 'gemini-2.5-flash', pg_temp.now() + interval '30 seconds', 'in force'),
  ('proj-dead', 'gemma-3-27b-it', pg_temp.ago(interval '3 days'), 'long expired');

-- Counters ---------------------------------------------------------------------------------------
insert into public.google_ai_usage_counters (quota_group, model, minute_bucket, day_bucket, rpm_used, tpm_used, rpd_used) values
  -- no active key, both windows over: dead
  ('proj-dead', 'gemma-3-27b-it', '2026-07-15 06:10+00', '2026-07-14', 1, 10, 7),
  ('key:00000000-0000-0000-0000-00000000000c', 'gemma-3-27b-it', '2026-07-01 12:00+00', '2026-07-01', 1, 10, 1),
  -- no active key, but the Pacific day is still today (the UTC date is already tomorrow): live
  ('proj-dead', 'gemini-2.5-flash', '2026-07-16 06:50+00', '2026-07-15', 2, 20, 15),
  -- an active key's group, windows over: it keeps its row
  ('proj-live', 'gemma-3-27b-it', '2026-07-14 20:00+00', '2026-07-14', 3, 30, 9);
-- a legacy per-key row from before the gateway (quota_group null): never touched
insert into public.google_ai_usage_counters (api_key_id, model, minute_bucket, day_bucket, rpm_used, tpm_used, rpd_used)
values ('00000000-0000-0000-0000-00000000000b', 'gemma-3-27b-it', '2025-01-01 10:00+00', '2025-01-01', 5, 50, 50);

-- Tokens (the hook): expired or revoked more than 7 days ago go; recent ones stay.
insert into public.google_ai_clients (id, name, secret_hash, models)
values ('00000000-0000-0000-0000-0000000000c1', 'hk-test', repeat('a', 64), array['gemma-3-27b-it']);
insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, revoked_at, created_at)
select '00000000-0000-0000-0000-0000000000c1', repeat(h, 64), array['gemma-3-27b-it'], e, r, c
from (values
  ('1', pg_temp.ago(interval '8 days'), null::timestamptz, pg_temp.ago(interval '8 days 1 hour')),  -- expired long ago
  ('2', pg_temp.now() + interval '1 hour', pg_temp.ago(interval '9 days'), pg_temp.ago(interval '9 days 1 hour')), -- revoked long ago
  ('3', pg_temp.ago(interval '1 day'), null, pg_temp.ago(interval '1 day 1 hour')),  -- expired yesterday
  ('4', pg_temp.now() + interval '1 hour', null, pg_temp.ago(interval '1 hour'))  -- live
) v(h, e, r, c);

create temp table before_log as select coalesce(max(id), 0) as id from public.google_ai_maintenance_log;
create temp table run1 as select public.google_ai_housekeeping_at(pg_temp.now()) as r;

-- The run ----------------------------------------------------------------------------------------
select is((select r ->> 'status' from run1), 'succeeded', 'the run succeeds');
select is((select count(*)::int from public.google_ai_maintenance_log where id > (select id from before_log)), 1,
  'the run writes exactly one maintenance log row');
select is((select (operation, status, deleted_count)::text from public.google_ai_maintenance_log
           where id = (select (r ->> 'log_id')::int from run1)),
  '(housekeeping,succeeded,18)', 'the log row names the operation, its status and the rows deleted (12 attempts, 2 cooldowns, 2 tokens, 2 counters)');
select ok((select started_at <= completed_at and details ? 'duration_ms' and details -> 'steps' ? 'attempts_retention'
           from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run1)),
  'the log row has start, completion, duration and per-step details');
select is((select tables_affected from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run1)),
  array['google_ai_attempts', 'google_ai_tokens', 'google_ai_cooldowns', 'google_ai_usage_counters'],
  'tables_affected lists the tables the run changed, in step order');
select is((select (r -> 'steps' -> 'attempts_retention' ->> 'batches')::int from run1), 5,
  '12 old attempt rows with batches of 3: four full batches and a last, empty one');

-- Attempts
select is((select count(*)::int from public.google_ai_attempts where caller = 'old'), 0, 'attempts past the 30-day retention are deleted');
select is((select count(*)::int from public.google_ai_attempts where caller = 'edge'), 1, 'an attempt exactly 30 days old is kept');
select is((select count(*)::int from public.google_ai_attempts where caller = 'kept'), 2, 'attempts inside the retention are kept');
select is((select count(*)::int from public.google_ai_attempts where caller = 'ancient'), 0,
  'a reservation left open for 40 days is closed, then deleted with its peers');
select is((select status from public.google_ai_attempts where request_id = 'r-stale'), 'abandoned',
  'a reservation with no outcome after 15 minutes is marked abandoned');
select ok((select finished_at = pg_temp.now() and error_message like 'abandoned by housekeeping%'
           from public.google_ai_attempts where request_id = 'r-stale'), 'the abandoned row says when and why');
select is((select status from public.google_ai_attempts where request_id = 'r-young'), 'reserved',
  'a reservation 2 minutes old may still be in flight: left open');
select is((select (r -> 'steps' -> 'abandon_stale_reservations' ->> 'abandoned')::int from run1), 2,
  'the abandon step reports what it closed');

-- Cooldowns
select is((select array_agg(reason order by reason) from public.google_ai_cooldowns), array['in force'],
  'expired cooldowns are deleted, the one in force stays');

-- Counters
select is((select count(*)::int from public.google_ai_usage_counters where quota_group = 'proj-dead' and model = 'gemma-3-27b-it'), 0,
  'a counter row of a group with no active key, both windows over, is deleted');
select is((select count(*)::int from public.google_ai_usage_counters where quota_group like 'key:%'), 0,
  'the same for a key that was its own group');
select is((select rpd_used from public.google_ai_usage_counters where quota_group = 'proj-dead' and model = 'gemini-2.5-flash'), 15,
  'a row whose Pacific day is still today is kept, though the UTC date has moved on');
select is((select rpd_used from public.google_ai_usage_counters where quota_group = 'proj-live'), 9,
  'a row of a group with an active key is kept');
select is((select rpd_used from public.google_ai_usage_counters where quota_group is null), 50,
  'a legacy row (quota_group null) is never touched');

-- Tokens
select is((select array_agg(left(token_hash, 1) order by token_hash) from public.google_ai_tokens
           where client_id = '00000000-0000-0000-0000-0000000000c1'), array['3', '4'],
  'tokens expired or revoked more than 7 days ago are deleted; recent and live ones stay');

-- Cron history: no pg_cron in this database
select is((select r -> 'steps' -> 'cron_history' ->> 'status' from run1), 'skipped',
  'without pg_cron the cron history step is skipped, not failed');

-- A second run finds nothing left and still logs itself ---------------------------------------------
create temp table run2 as select public.google_ai_housekeeping_at(pg_temp.now()) as r;
select is((select (r ->> 'status', r ->> 'deleted_count')::text from run2), '(succeeded,0)', 'a second run has nothing to delete');
select is((select count(*)::int from public.google_ai_maintenance_log where id > (select id from before_log)), 2,
  'and writes its own log row');
select is((select tables_affected from public.google_ai_maintenance_log where id = (select (r ->> 'log_id')::int from run2)),
  '{}'::text[], 'an idle run lists no table');

-- max_batches bounds a run: the rest waits for the next run ------------------------------------------
update public.google_ai_maintenance_settings set batch_size = 2, max_batches = 2;
insert into public.google_ai_attempts (status, caller, model, created_at)
select 'succeeded', 'backlog', 'gemma-3-27b-it', pg_temp.ago(interval '60 days') from generate_series(1, 7);
create temp table run3 as select public.google_ai_housekeeping_at(pg_temp.now()) as r;
select is((select count(*)::int from public.google_ai_attempts where caller = 'backlog'), 3,
  'with max_batches 2 of 2 rows, one run deletes 4 of 7 rows');
select is((select (r ->> 'more_pending')::boolean from run3), true, 'and says more is pending');
create temp table run4 as select public.google_ai_housekeeping_at(pg_temp.now()) as r;
select is((select count(*)::int from public.google_ai_attempts where caller = 'backlog'), 0, 'the next run deletes the rest');
select is((select (r ->> 'more_pending')::boolean from run4), false, 'and says nothing is pending');

-- Replay responses: kept for the 24 h replay window, then deleted -------------------------------------
insert into public.google_ai_responses (caller, request_id, response, created_at) values
  ('hk', 'old', '{}', pg_temp.now() - interval '25 hours'),
  ('hk', 'recent', '{}', pg_temp.now() - interval '23 hours');
create temp table run_resp as select public.google_ai_housekeeping_at(pg_temp.now()) as r;
select is((select array_agg(request_id order by request_id) from public.google_ai_responses where caller = 'hk'), array['recent'],
  'responses past the replay window are deleted, those inside it kept');

-- Settings guard against typos --------------------------------------------------------------------------
select throws_ok($$ update public.google_ai_maintenance_settings set attempts_retention = interval '2 hours' $$, '23514', null,
  'attempt retention below one day is refused');
select throws_ok($$ update public.google_ai_maintenance_settings set stale_reservation_after = interval '1 minute' $$, '23514', null,
  'a stale-reservation age inside a function''s wall clock is refused');
select throws_ok($$ insert into public.google_ai_maintenance_settings (id) values (false) $$, '23514', null,
  'there is only one settings row');

-- A deleted settings row falls back to the defaults ---------------------------------------------------------
delete from public.google_ai_maintenance_settings;
create temp table run5 as select public.google_ai_housekeeping_at(pg_temp.now()) as r;
select is((select (attempts_retention, batch_size)::text from public.google_ai_maintenance_settings), '("30 days",5000)',
  'a run without a settings row restores the defaults');

-- A dead counter's day is its provider's ----------------------------------------------------------------------
-- At 07:30 UTC on 16 July it is 00:30 on the 16th in Pacific time, but still 21:30 on the 15th in Honolulu:
-- a Honolulu-day provider's counter of the 15th is live; a UTC-day provider's of the 15th is over.
insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone) values
  ('islandai', 'openai', 'Island AI', 'https://island.example', 'ISLAND_[A-Z]+', 'Pacific/Honolulu'),
  ('kiwiai', 'openai', 'Kiwi AI', 'https://kiwi.example', 'KIWI_[A-Z]+', 'UTC');
insert into public.google_ai_model_limits (model, provider, rpm, rpd) values ('island-1', 'islandai', 60, 100),
                                                                             ('kiwi-1', 'kiwiai', 60, 100);
insert into public.google_ai_usage_counters (quota_group, model, minute_bucket, day_bucket, rpm_used, tpm_used, rpd_used) values
  ('proj-dead', 'island-1', '2026-07-16 06:00+00', '2026-07-15', 1, 10, 40),
  ('proj-dead', 'kiwi-1', '2026-07-15 23:00+00', '2026-07-15', 1, 10, 30);
select public.google_ai_housekeeping_counters('2026-07-16 07:30+00', s, clock_timestamp() + interval '1 minute')
from public.google_ai_maintenance_settings s;
select is((select rpd_used from public.google_ai_usage_counters where model = 'island-1'), 40,
  'a group with no active key keeps its counter while its provider''s day (Honolulu''s) is live, though Pacific''s has turned');
select is((select count(*)::int from public.google_ai_usage_counters where model = 'kiwi-1'), 0,
  'a UTC-day provider''s counter goes once UTC''s day has turned');

-- Access ------------------------------------------------------------------------------------------------------
select ok(has_function_privilege('service_role', 'public.google_ai_housekeeping()', 'execute')
          and not has_function_privilege('service_role', 'public.google_ai_housekeeping_at(timestamptz)', 'execute'),
  'service_role may run housekeeping, but not with an injected clock');
select ok(not has_function_privilege('anon', 'public.google_ai_housekeeping()', 'execute')
          and not has_function_privilege('authenticated', 'public.google_ai_housekeeping()', 'execute')
          and not has_table_privilege('anon', 'public.google_ai_maintenance_settings', 'select'),
  'anon and authenticated can neither run housekeeping nor read its settings');

select * from finish();
rollback;
