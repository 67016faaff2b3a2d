-- Access invariants: RLS on every table in public, nothing readable or executable by the Data
-- API's anon/authenticated roles, security definer functions pinned to an empty search_path.
begin;
create extension if not exists pgtap with schema extensions;
select plan(15);

select is(
  (select coalesce(array_agg(c.relname::text order by c.relname), '{}') from pg_class c
   join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity),
  '{}'::text[], 'every table in public has row level security enabled');

select is(
  (select coalesce(array_agg(distinct table_name::text), '{}') from information_schema.role_table_grants
   where table_schema = 'public' and grantee in ('anon', 'authenticated')),
  '{}'::text[], 'anon and authenticated hold no privilege on any table in public');

select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}') from pg_proc p
   join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and (has_function_privilege('anon', p.oid, 'execute')
                                   or has_function_privilege('authenticated', p.oid, 'execute'))),
  '{}'::text[], 'no function in public is executable by anon or authenticated');

select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}') from pg_proc p
   join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and p.prosecdef
     and not coalesce(p.proconfig @> array['search_path=""'], false)),
  '{}'::text[], 'every security definer function sets search_path to empty');

select ok(has_function_privilege('service_role',
  'public.google_ai_reserve_models(text[], integer, text, text, text, uuid[], integer, integer, jsonb, boolean, text, uuid, '
  'integer, timestamptz, timestamptz, uuid, integer[], integer)', 'execute'),
  'service_role may call the reservation entry');
select ok(not has_function_privilege('service_role',
  'public.google_ai_reserve_models_at(timestamptz, public.google_ai_reservation, record)', 'execute'),
  'its clock-injecting twin is not callable by service_role');
select ok(not has_function_privilege('service_role',
  'public.google_ai_admit_at(timestamptz, public.google_ai_request)', 'execute'),
  'nor is the queue-aware admission under it');
select ok(not has_function_privilege('service_role',
  'public.google_ai_fall_back_at(timestamptz, text[], public.google_ai_request, integer[], record)', 'execute'),
  'nor is the fallback through a chain of models');
select ok(not has_function_privilege('service_role',
  'public.google_ai_token_verdict_at(timestamptz, public.google_ai_request)', 'execute'),
  'nor is a token''s verdict');
select ok(has_function_privilege('service_role', 'public.google_ai_quota_report(text, text)', 'execute')
          and has_function_privilege('service_role', 'public.google_ai_answer_quota(jsonb, text, uuid[])', 'execute'),
  'service_role may read the quota (the route''s report, an answer''s quota)');
select ok(not has_function_privilege('service_role', 'public.google_ai_quota_report_at(timestamptz, text, text)', 'execute')
          and not has_function_privilege('service_role', 'public.google_ai_answer_quota_at(timestamptz, jsonb, text, uuid[])', 'execute'),
  'the quota''s clock-injecting variants are not callable by service_role');
select ok(not has_function_privilege('service_role',
  'public.google_ai_group_quota(text, text, integer, integer, integer, timestamptz)', 'execute'),
  'nor is the quota of one group under them');

select is(
  (select coalesce(array_agg(distinct table_name || ':' || privilege_type order by table_name || ':' || privilege_type), '{}')
   from information_schema.role_table_grants
   where table_schema = 'public' and grantee = 'service_role'
     and table_name in ('google_ai_attempts', 'google_ai_usage_counters', 'google_ai_cooldowns', 'google_ai_responses',
                        'google_ai_clients', 'google_ai_tokens', 'google_ai_maintenance_log')
     and privilege_type <> 'SELECT'),
  '{}'::text[], 'service_role may only read the audit log, counters (the shares'' owners'' use too), cooldowns, responses, clients and tokens');

set local role anon;
select throws_ok($$ select public.google_ai_reserve_models(array['gemma-3-27b-it'], 1, 'x', null, null) $$, '42501', null,
  'anon cannot call the reservation RPC');
select throws_ok($$ select * from public.google_ai_api_keys $$, '42501', null, 'anon cannot read the keys table');
reset role;

select * from finish();
rollback;
