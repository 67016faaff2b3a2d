-- Key checks and the model catalogue: a listed model is upserted (first seen kept), one no longer
-- listed is removed, a key Google rejects is taken out of rotation with its reason and never deleted,
-- a missing secret is only recorded, and configured models Google no longer lists are flagged. An ok
-- check ends its quota group's limit_zero rests, and only those.
begin;
create extension if not exists pgtap with schema extensions;
select plan(26);

delete from public.google_ai_api_keys;
insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, is_active) values
  ('00000000-0000-0000-0000-0000000000a1', 'a1', 'KEY_A1', 'proj-a', true),
  ('00000000-0000-0000-0000-0000000000b1', 'b1', 'KEY_B1', null, true),
  ('00000000-0000-0000-0000-0000000000c1', 'c1', 'KEY_C1', 'proj-c', true);

select is((select array_agg(distinct catalogue_status) from public.google_ai_model_catalogue_status), array['unknown'],
  'before any check every configured model is unknown');

create function pg_temp.models(variadic names text[]) returns jsonb language sql as $$
  select jsonb_agg(jsonb_build_object('model', n, 'display_name', 'Model ' || n, 'version', '001',
    'input_token_limit', 131072, 'output_token_limit', 8192,
    'supported_methods', jsonb_build_array('generateContent', 'countTokens')))
  from unnest(names) n
$$;

create temp table r1 as select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000a1', 'ok', 200, null, null,
  pg_temp.models('gemma-3-27b-it', 'gemini-2.5-flash', 'text-embedding-004')) as r;
select is((select (r ->> 'models')::int from r1), 3, 'an ok check upserts every model listed');
select is((select (input_token_limit, output_token_limit, supported_methods, quota_group, key_alias)::text
           from public.google_ai_model_catalogue where api_key_id = '00000000-0000-0000-0000-0000000000a1' and model = 'gemma-3-27b-it'),
  '(131072,8192,"{generateContent,countTokens}",proj-a,a1)', 'with token limits, methods, quota group and key alias');
select is((select (status, models_listed, http_status)::text from public.google_ai_key_health where key_alias = 'a1'), '(ok,3,200)',
  'the key''s health row says ok and how many models it lists');
select is((select catalogue_status from public.google_ai_model_catalogue_status where model = 'gemini-2.5-flash'), 'listed',
  'a configured model the key lists is listed');

update public.google_ai_model_catalogue set first_seen_at = '2026-01-01 00:00+00', refreshed_at = '2026-01-01 00:00+00';
create temp table r2 as select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000a1', 'ok', 200, null, null,
  pg_temp.models('gemma-3-27b-it', 'text-embedding-004')) as r;
select is((select (r ->> 'removed')::int from r2), 1, 'a model no longer listed is removed from the key''s catalogue');
select ok((select first_seen_at = '2026-01-01 00:00+00' and refreshed_at > '2026-01-01 00:00+00'
           from public.google_ai_model_catalogue where key_alias = 'a1' and model = 'gemma-3-27b-it'),
  'a model still listed keeps its first_seen_at and gets a new refreshed_at');
select is((select (catalogue_status, keys_checked, keys_listing)::text from public.google_ai_model_catalogue_status where model = 'gemini-2.5-flash'),
  '(unlisted,1,0)', 'a configured model no checked key lists any more is flagged unlisted');
select is((select (catalogue_status, quota_groups)::text from public.google_ai_model_catalogue_status where model = 'gemma-3-27b-it'),
  '(listed,{proj-a})', 'a configured model still listed stays listed, with the quota groups that reach it');

-- A key Google rejects.
create temp table r3 as select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000b1', 'invalid', 400, 'API_KEY_INVALID',
  'API key not valid. Please pass a valid API key. (key=AIzaSyA1234567890abcdefghijklmnopqrstu)', '[]') as r;
select is((select (r ->> 'disabled')::boolean from r3), true, 'an invalid key is reported as disabled');
select is((select is_active from public.google_ai_api_keys where key_alias = 'b1'), false, 'it is out of rotation');
select matches((select disabled_reason from public.google_ai_api_keys where key_alias = 'b1'),
  '^maintenance: Google rejected the key \(its model list: HTTP 400 API_KEY_INVALID\): API key not valid',
  'with the reason recorded');
select ok((select disabled_at is not null and position('AIzaSyA123' in disabled_reason) = 0
           from public.google_ai_api_keys where key_alias = 'b1'), 'and when; the reason holds no key');
select is((select count(*)::int from public.google_ai_api_keys where key_alias = 'b1'), 1, 'the key row is never deleted');
select is((public.google_ai_reserve_models(array['gemma-3-27b-it'], 1, 'pgtap', null, 'after-disable') ->> 'key_alias'), 'a1',
  'the reservation RPC no longer picks it');

-- A dry run records but does not disable; a missing secret is only recorded.
create temp table r4 as select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000a1', 'invalid', 403, 'PERMISSION_DENIED',
  'denied', '[]', p_disable => false) as r;
select is((select ((r ->> 'disabled')::boolean, k.is_active)::text from r4, public.google_ai_api_keys k where k.key_alias = 'a1'), '(f,t)',
  'with p_disable false an invalid key is recorded but stays active');
select lives_ok($$ select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000c1', 'missing_secret', null, null,
  'no Edge secret named KEY_C1') $$, 'a missing secret is recorded');
select is((select (k.is_active, h.status)::text from public.google_ai_api_keys k join public.google_ai_key_health h on h.api_key_id = k.id
           where k.key_alias = 'c1'), '(t,missing_secret)', 'and the key stays active');

-- Rests: a limit_zero rest says the project has no quota for the model; only an ok check (the key
-- answers again) ends it, for the key's own quota group, and no rest of another cause.
insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, is_active) values
  ('00000000-0000-0000-0000-0000000000d1', 'd1', 'KEY_D1', 'proj-d', true);
insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, cause) values
  ('proj-d', 'gemma-3-27b-it', now() + interval '1 hour', 'limit: 0', 'limit_zero'),
  ('proj-d', 'gemini-2.5-flash', now() + interval '1 hour', 'limit: 0', 'limit_zero'),
  ('proj-d', 'text-embedding-004', now() + interval '1 hour', 'spend cap', 'spend_cap'),
  ('proj-d', 'gemini-2.5-pro', now() + interval '1 minute', 'per minute', 'minute'),
  ('proj-d', 'gemini-2.0-flash', now() + interval '1 minute', 'an older row', null),
  ('proj-e', 'gemma-3-27b-it', now() + interval '1 hour', 'limit: 0', 'limit_zero');
create function pg_temp.rests(p_group text) returns text[] language sql as $$
  select coalesce(array_agg(c.model || ':' || coalesce(c.cause, 'none') order by c.model), '{}')
  from public.google_ai_cooldowns c where c.quota_group = p_group
$$;
-- Every rest the group holds before the checks: each check but an ok one leaves exactly these.
create function pg_temp.all_rests() returns text[] language sql as $$
  select array['gemini-2.0-flash:none', 'gemini-2.5-flash:limit_zero', 'gemini-2.5-pro:minute',
    'gemma-3-27b-it:limit_zero', 'text-embedding-004:spend_cap']
$$;
select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000d1', 'error', 503, 'UNAVAILABLE', 'try later');
select is(pg_temp.rests('proj-d'), pg_temp.all_rests(), 'an error check leaves the group''s rests in place');
select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000d1', 'missing_secret', null, null, 'no Edge secret');
select is(pg_temp.rests('proj-d'), pg_temp.all_rests(), 'so does a missing secret');
select public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000d1', 'invalid', 400, 'API_KEY_INVALID', 'not valid',
  '[]', p_disable => false);
select is(pg_temp.rests('proj-d'), pg_temp.all_rests(), 'and an invalid key');
select is(public.google_ai_record_key_check('00000000-0000-0000-0000-0000000000d1', 'ok', 200, null, null,
  pg_temp.models('gemma-3-27b-it')) ->> 'ok', 'true', 'an ok check is recorded');
select is(pg_temp.rests('proj-d'), array['gemini-2.0-flash:none', 'gemini-2.5-pro:minute', 'text-embedding-004:spend_cap'],
  'it ends the group''s limit_zero rests and leaves its rests of any other cause');
select is(pg_temp.rests('proj-e'), array['gemma-3-27b-it:limit_zero'], 'another group''s limit_zero rest stays');

select is(public.google_ai_record_key_check(gen_random_uuid(), 'ok') ->> 'error', 'unknown_key', 'an unknown key id is refused');
select ok(not has_function_privilege('service_role', 'public.google_ai_record_key_check(uuid, text, integer, text, text, jsonb, boolean)', 'execute')
          and not has_table_privilege('anon', 'public.google_ai_model_catalogue', 'select')
          and not has_table_privilege('authenticated', 'public.google_ai_model_catalogue_status', 'select')
          and has_table_privilege('service_role', 'public.google_ai_model_catalogue_status', 'select'),
  'only the owner records checks; service_role reads the catalogue, anon and authenticated nothing');

select * from finish();
rollback;
