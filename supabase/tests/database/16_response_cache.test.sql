-- The response cache in the database (70_response_cache.sql): a look-up claims the flight of a
-- missing entry and a second holder waits, the holder's store makes it a hit (with its audit row and
-- its cost read from the attempt row), a token reads its client's scope only, or the shared scope the
-- owner put its client in; housekeeping drops
-- expired entries and dead flights and each scope's oldest answers over its size limit, and hit rows
-- past their retention; the owner purges by scope and by model; the metrics say hits, misses, money
-- saved and bytes held.
begin;
create extension if not exists pgtap with schema extensions;
select plan(39);

create function pg_temp.now() returns timestamptz language sql immutable as $$ select '2026-07-16 06:59:30+00'::timestamptz $$;
create function pg_temp.k(p text) returns text language sql immutable as $$
  select encode(sha256(convert_to(p, 'UTF8')), 'hex') $$;

-- Look-ups ---------------------------------------------------------------------------------------
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000a1', now() + interval '1 minute') ->> 'status',
  'miss', 'the first look-up of a key misses and takes its flight');
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000a2', now() + interval '1 minute') ->> 'status',
  'wait', 'an identical request while the flight is held waits for it');
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('a'), 'default', null,
            '00000000-0000-0000-0000-0000000000a2', now() + interval '1 minute') ->> 'status',
  'bypass', 'without the owner''s default a request that says nothing is not cached');

insert into public.google_ai_attempts (reservation_id, status, caller, model, input_tokens, output_tokens, cost_usd)
values ('00000000-0000-0000-0000-0000000000f1', 'succeeded', 'bot', 'gemma-3-27b-it', 120, 30, 0.0042);
select ok(public.google_ai_cache_store((select id from public.google_ai_response_cache where key = pg_temp.k('a')),
            '00000000-0000-0000-0000-0000000000a1', '{"text": "hello"}', 'gemma-3-27b-it', 'google', 'stop', 60,
            '00000000-0000-0000-0000-0000000000f1'),
  'the flight''s holder stores its answer');
select ok(not public.google_ai_cache_store((select id from public.google_ai_response_cache where key = pg_temp.k('a')),
            '00000000-0000-0000-0000-0000000000a2', '{"text": "other"}', 'gemma-3-27b-it', 'google', 'stop', 60,
            '00000000-0000-0000-0000-0000000000f1'),
  'another holder does not');
create temp table hit as select public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000a3', now() + interval '1 minute') as r;
select is((select r ->> 'status' from hit), 'hit', 'then it is a hit');
select is((select r -> 'answer' ->> 'text' from hit), 'hello', 'with the stored answer');
select results_eq($$ select scope, caller, saved_input_tokens, saved_output_tokens, saved_usd
                     from public.google_ai_response_cache_hits $$,
  $$ values ('service'::text, 'bot'::text, 120, 30, 0.0042::numeric) $$,
  'the hit''s audit row: its scope, caller, and what the call it spared cost');
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('a'), 'refresh', 60,
            '00000000-0000-0000-0000-0000000000a4', now() + interval '1 minute') ->> 'status',
  'miss', 'a refresh does not read: it takes the flight');
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000a5', now() + interval '1 minute') ->> 'status',
  'hit', 'while it flies, the old answer is still served');
select lives_ok($$ select public.google_ai_cache_abandon(
                     (select id from public.google_ai_response_cache where key = pg_temp.k('a')),
                     '00000000-0000-0000-0000-0000000000a4') $$, 'a flight ends without an answer');
select is((select answer ->> 'text' from public.google_ai_response_cache where key = pg_temp.k('a')), 'hello',
  'and the entry keeps its answer');

select results_eq($$ select family, value from public.google_ai_metric_response_cache()
                     where labels = 'scope="service"' order by family $$,
  $$ values ('eve_gateway_response_cache_bytes'::text, (select bytes::numeric from public.google_ai_response_cache)),
            ('eve_gateway_response_cache_entries', 1::numeric),
            ('eve_gateway_response_cache_hits', 2::numeric),
            ('eve_gateway_response_cache_misses_total', 2::numeric),
            ('eve_gateway_response_cache_saved_usd', 0.0084::numeric) $$,
  'the metrics: bytes and entries held, two hits and what they saved, two misses (the first call and the refresh)');
select ok(exists (select from public.google_ai_metrics() m where m.family = 'eve_gateway_response_cache_hits'),
  'a scrape carries them');
select results_eq($$ select hits, saved_input_tokens, saved_usd, entries from public.google_ai_response_cache_24h
                     where scope = 'service' $$,
  $$ values (2, 240::bigint, 0.0084::numeric, 1) $$, 'the usage view: the day''s hits, what they spared, what is held');

-- A token reads its client's scope only, and only for its models.
insert into public.google_ai_clients (id, name, secret_hash, models)
values ('00000000-0000-0000-0000-00000000c001', 'parser', 'x', '{gemma-3-27b-it}');
insert into public.google_ai_tokens (client_id, token_hash, models, expires_at)
values ('00000000-0000-0000-0000-00000000c001', pg_temp.k('token'), '{gemma-3-27b-it}', now() + interval '1 hour');
select is(public.google_ai_cache_lookup(null, pg_temp.k('token'), 'gemma-3-27b-it', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000b1', now() + interval '1 minute') ->> 'status',
  'miss', 'a client''s token does not read the service key''s entry');
select is((select scope from public.google_ai_response_cache where flight_holder = '00000000-0000-0000-0000-0000000000b1'),
  'client:parser', 'its entry is its client''s');
select is(public.google_ai_cache_lookup(null, pg_temp.k('token'), 'gemini-2.5-flash', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000b2', now() + interval '1 minute') ->> 'status',
  'bypass', 'nor reads anything for a model it may not ask for');

-- The service key is one scope unless the settings split it by caller label.
insert into public.google_ai_response_cache_settings (split_service_by_label) values (true);
select is(public.google_ai_cache_lookup('ops', null, 'gemma-3-27b-it', pg_temp.k('a'), 'on', 60,
            '00000000-0000-0000-0000-0000000000b3', now() + interval '1 minute') ->> 'status',
  'miss', 'split by label, another caller does not read the bot''s entry');
select is((select scope from public.google_ai_response_cache where flight_holder = '00000000-0000-0000-0000-0000000000b3'),
  'service:ops', 'its entry is its label''s');
delete from public.google_ai_response_cache_settings;

-- A shared scope the owner names: its members (two clients and the service key) read and write one
-- scope's entries; a client not in it keeps its own.
insert into public.google_ai_clients (id, name, secret_hash, models) values
  ('00000000-0000-0000-0000-00000000c002', 'checker', 'x2', '{gemma-3-27b-it}'),
  ('00000000-0000-0000-0000-00000000c003', 'loner', 'x3', '{gemma-3-27b-it}');
insert into public.google_ai_tokens (client_id, token_hash, models, expires_at) values
  ('00000000-0000-0000-0000-00000000c002', pg_temp.k('checker token'), '{gemma-3-27b-it}', now() + interval '1 hour'),
  ('00000000-0000-0000-0000-00000000c003', pg_temp.k('loner token'), '{gemma-3-27b-it}', now() + interval '1 hour');
insert into public.google_ai_response_cache_shared_scopes (member, shared_scope) values
  ('client:parser', 'shared:festival'), ('client:checker', 'shared:festival'), ('service', 'shared:festival');
select is(public.google_ai_cache_lookup(null, pg_temp.k('token'), 'gemma-3-27b-it', pg_temp.k('shared'), 'on', 60,
            '00000000-0000-0000-0000-0000000000c1', now() + interval '1 minute') ->> 'status',
  'miss', 'a member of a shared scope misses first');
select is((select scope from public.google_ai_response_cache where flight_holder = '00000000-0000-0000-0000-0000000000c1'),
  'shared:festival', 'and its entry is the shared scope''s');
select ok(public.google_ai_cache_store((select id from public.google_ai_response_cache where key = pg_temp.k('shared')),
            '00000000-0000-0000-0000-0000000000c1', '{"text": "shared"}', 'gemma-3-27b-it', 'google', 'stop', 60,
            '00000000-0000-0000-0000-0000000000f1'),
  'it stores its answer there');
select is(public.google_ai_cache_lookup(null, pg_temp.k('checker token'), 'gemma-3-27b-it', pg_temp.k('shared'), 'on',
            60, '00000000-0000-0000-0000-0000000000c2', now() + interval '1 minute') ->> 'status',
  'hit', 'another client of the shared scope is served it');
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('shared'), 'on', 60,
            '00000000-0000-0000-0000-0000000000c3', now() + interval '1 minute') ->> 'status',
  'hit', 'so is the service key, named a member');
select results_eq($$ select scope, caller from public.google_ai_response_cache_hits
                     where scope = 'shared:festival' order by id $$,
  $$ values ('shared:festival'::text, 'client:checker'::text), ('shared:festival', 'bot') $$,
  'the hit rows name the shared scope and each member that was served');
select is(public.google_ai_cache_lookup(null, pg_temp.k('loner token'), 'gemma-3-27b-it', pg_temp.k('shared'), 'on',
            60, '00000000-0000-0000-0000-0000000000c4', now() + interval '1 minute') ->> 'status',
  'miss', 'a client outside it is never served the shared scope''s entry');
select is((select scope from public.google_ai_response_cache where flight_holder = '00000000-0000-0000-0000-0000000000c4'),
  'client:loner', 'it keeps its own scope');
select throws_ok($$ insert into public.google_ai_response_cache_shared_scopes values ('client:loner', 'client:parser') $$,
  '23514', null, 'a shared scope is named shared:<name>: it cannot be another member''s own scope');
delete from public.google_ai_response_cache_shared_scopes;

-- An answer stored by another request after the lookup read its clock (created_at later than it) is a hit
-- of age 0, never a negative age (x-eve-cache-age is a count of seconds).
insert into public.google_ai_response_cache (scope, key, model, answer, bytes, created_at, expires_at, flight_until)
values ('service', pg_temp.k('just stored'), 'gemma-3-27b-it', '{"text": "fresh"}', 10,
        clock_timestamp() + interval '1 second', clock_timestamp() + interval '1 hour', null);
select is(public.google_ai_cache_lookup('bot', null, 'gemma-3-27b-it', pg_temp.k('just stored'), 'on', 60,
            '00000000-0000-0000-0000-0000000000d1', now() + interval '1 minute') ->> 'age_ms',
  '0', 'an answer younger than the lookup''s clock is a hit of age 0');

-- Housekeeping -----------------------------------------------------------------------------------
delete from public.google_ai_response_cache;
delete from public.google_ai_response_cache_hits;
insert into public.google_ai_response_cache_settings (max_bytes_per_scope, hits_retention) values (250, '30 days');
insert into public.google_ai_response_cache (scope, key, model, answer, bytes, created_at, expires_at, flight_until) values
  ('client:parser', pg_temp.k('expired'), 'gemma-3-27b-it', '{}', 10, pg_temp.now() - interval '2 hours',
   pg_temp.now() - interval '1 second', null),
  ('client:parser', pg_temp.k('dead flight'), 'gemma-3-27b-it', null, 0, pg_temp.now() - interval '5 minutes',
   null, pg_temp.now() - interval '1 minute'),
  ('client:parser', pg_temp.k('live flight'), 'gemma-3-27b-it', null, 0, pg_temp.now(), null,
   pg_temp.now() + interval '1 minute'),
  -- 100 bytes each, newest last: 250 keep the two newest.
  ('client:parser', pg_temp.k('old'), 'gemma-3-27b-it', '{}', 100, pg_temp.now() - interval '30 minutes',
   pg_temp.now() + interval '1 hour', null),
  ('client:parser', pg_temp.k('middle'), 'gemma-3-27b-it', '{}', 100, pg_temp.now() - interval '20 minutes',
   pg_temp.now() + interval '1 hour', null),
  ('client:parser', pg_temp.k('new'), 'gemma-3-27b-it', '{}', 100, pg_temp.now() - interval '10 minutes',
   pg_temp.now() + interval '1 hour', null),
  ('service', pg_temp.k('other scope'), 'gemini-2.5-flash', '{}', 200, pg_temp.now() - interval '40 minutes',
   pg_temp.now() + interval '1 hour', null);
insert into public.google_ai_response_cache_hits (created_at, entry_id, scope, caller, model, age_ms) values
  (pg_temp.now() - interval '31 days', 1, 'service', 'bot', 'gemma-3-27b-it', 5),
  (pg_temp.now() - interval '29 days', 1, 'service', 'bot', 'gemma-3-27b-it', 5);

create temp table run as select public.google_ai_housekeeping_at(pg_temp.now()) as r;
select is((select r -> 'steps' -> 'response_cache' ->> 'status' from run), 'succeeded', 'housekeeping runs its cache step');
select is((select (r -> 'steps' -> 'response_cache' ->> 'expired')::int from run), 2,
  'an expired answer and a dead flight go');
select is((select (r -> 'steps' -> 'response_cache' ->> 'over_size')::int from run), 1,
  'a scope over its size loses its oldest answer');
select set_eq($$ select key from public.google_ai_response_cache $$,
  $$ values (pg_temp.k('live flight')), (pg_temp.k('middle')), (pg_temp.k('new')), (pg_temp.k('other scope')) $$,
  'what is left: a live flight, the scope''s newest answers within its size, another scope''s');
select is((select count(*)::int from public.google_ai_response_cache_hits), 1, 'hit rows past their retention go');

-- Purge ------------------------------------------------------------------------------------------
select is(public.google_ai_cache_purge(p_model => 'gemini-2.5-flash'), 1, 'a purge by model, every scope');
select is(public.google_ai_cache_purge(p_scope => 'client:parser'), 3, 'a purge by scope');
select is((select count(*)::int from public.google_ai_response_cache), 0, 'nothing is left');

select ok(not has_function_privilege('eve_gateway', 'public.google_ai_cache_purge(text, text)', 'execute')
          and not has_table_privilege('eve_gateway', 'public.google_ai_response_cache', 'select')
          and not has_table_privilege('anon', 'public.google_ai_response_cache_hits', 'select'),
  'the functions only call their RPCs; anon reads nothing');

select * from finish();
rollback;
