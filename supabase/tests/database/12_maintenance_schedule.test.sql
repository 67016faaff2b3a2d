-- The schedule migration on a database without pg_cron (every test database but `postgres`): it
-- applied without creating anything cron-related. The job that calls the maintenance function
-- through pg_net with Vault secrets, exercised against stand-ins for pg_net and Vault (neither has
-- a Debian package): it says what is missing, and sends the right request when all is there.
-- The pg_cron jobs themselves are tested for real in tests/maintenance/cron.test.ts.
begin;
create extension if not exists pgtap with schema extensions;
select plan(11);

select ok(not exists (select 1 from pg_extension where extname = 'pg_cron') and to_regclass('cron.job') is null,
  'without pg_cron available here, the schedule migration applied and created nothing cron-related');

select throws_ok($$ select public.google_ai_invoke_maintenance_function() $$, '55000',
  'pg_net is not installed: enable it (Dashboard > Database > Extensions > pg_net, or: create extension pg_net;)',
  'without pg_net the call says how to enable it');

-- Stand-ins with pg_net's and Vault's signatures.
create schema net;
create table net.requests (id bigserial primary key, url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds int);
create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
  headers jsonb default '{"Content-Type": "application/json"}', timeout_milliseconds int default 1000)
returns bigint language sql as $$
  insert into net.requests (url, body, params, headers, timeout_milliseconds)
  values (url, body, params, headers, timeout_milliseconds) returning id
$$;
select throws_like($$ select public.google_ai_invoke_maintenance_function() $$,
  '%Vault is not available%', 'without Vault the call says so');

create schema vault;
create table vault.decrypted_secrets (name text, decrypted_secret text, created_at timestamptz default now());
select throws_like($$ select public.google_ai_invoke_maintenance_function() $$,
  'Vault secret eve_gateway_functions_url is missing: select vault.create_secret(%',
  'a missing URL secret is named, with the statement that creates it');
insert into vault.decrypted_secrets (name, decrypted_secret) values ('eve_gateway_functions_url', 'https://abcd.supabase.co/functions/v1/');
select throws_like($$ select public.google_ai_invoke_maintenance_function() $$,
  'Vault secret eve_gateway_service_key is missing%', 'a missing key secret is named');
insert into vault.decrypted_secrets (name, decrypted_secret) values ('eve_gateway_service_key', 'sb_secret_test_value');

create temp table call as select public.google_ai_invoke_maintenance_function() as id;
select is((select url from net.requests where id = (select id from call)), 'https://abcd.supabase.co/functions/v1/maintenance',
  'the request goes to <functions url>/maintenance');
select is((select headers ->> 'authorization' from net.requests where id = (select id from call)), 'Bearer sb_secret_test_value',
  'with the service key from Vault as a bearer token');
select is((select headers ->> 'apikey' from net.requests where id = (select id from call)), 'sb_secret_test_value',
  'and as apikey (the header Supabase''s new secret keys use)');
select is((select body from net.requests where id = (select id from call)), '{"housekeeping": false, "source": "pg_cron"}'::jsonb,
  'the body skips the function''s own housekeeping (the hourly job runs it) and names the caller');
select is((select timeout_milliseconds from net.requests where id = (select id from call)), 120000,
  'with a timeout below the Edge Function wall clock');

select ok(not has_function_privilege('service_role', 'public.google_ai_invoke_maintenance_function(jsonb, integer)', 'execute')
          and not has_function_privilege('anon', 'public.google_ai_invoke_maintenance_function(jsonb, integer)', 'execute')
          and not has_function_privilege('authenticated', 'public.google_ai_invoke_maintenance_function(jsonb, integer)', 'execute'),
  'the function that reads the service key from Vault is callable by its owner only');

select * from finish();
rollback;
