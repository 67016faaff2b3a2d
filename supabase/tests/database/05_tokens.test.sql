-- Kaggle clients and scoped tokens: secrets shown once and stored hashed, narrowing only, mint rate
-- limit, token checks and budgets booked with the reservation, revocation.
begin;
create extension if not exists pgtap with schema extensions;
select plan(30);

delete from public.google_ai_api_keys;
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('k1', 'KEY_1', 'proj-1');
-- Budgets are counted here, not the window's spread: the requests below go at once.
update public.google_ai_model_limits set spread_burst = null where model = 'gemma-3-27b-it';

create temp table c as
select public.google_ai_create_client('festival-parser-kaggle', array['gemma-3-27b'], interval '6 hours',
  p_token_max_requests => 5, p_daily_max_requests => 100, p_mint_per_hour => 3) as r;

select matches((select r ->> 'secret' from c), '^evegw_cs_[A-Za-z0-9_-]{43}$',
  'a client secret is prefixed and carries 256 random bits (43 base64url characters)');
select is((select models from public.google_ai_clients where name = 'festival-parser-kaggle'), array['gemma-3-27b-it'],
  'model aliases are stored as canonical names');
select is((select secret_hash from public.google_ai_clients where name = 'festival-parser-kaggle'),
  encode(sha256(convert_to((select r ->> 'secret' from c), 'UTF8')), 'hex'), 'only the SHA-256 of the secret is stored');
select is((select count(*)::int from public.google_ai_clients c2, c
           where position((c.r ->> 'secret') in row_to_json(c2)::text) > 0), 0, 'the secret itself is stored nowhere in the row');
select throws_ok($$ select public.google_ai_create_client('x', array['no-such-model']) $$, '22023', 'unknown model(s): no-such-model',
  'a client for an unknown model is refused');

create function pg_temp.h(t text) returns text language sql as $$ select encode(sha256(convert_to(t, 'UTF8')), 'hex') $$;
create function pg_temp.secret() returns text language sql as $$ select pg_temp.h((select r ->> 'secret' from c)) $$;

select is(public.google_ai_mint_token(pg_temp.h('evegw_cs_wrong'), pg_temp.h('t0')) ->> 'error', 'invalid_secret', 'a wrong secret is refused');
create temp table t1 as select public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-1')) as r;
select ok((select (r ->> 'ok')::boolean from t1), 'the right secret mints a token');
select is((select r -> 'budget' ->> 'max_requests' from t1), '5', 'the token inherits the client''s per-token budget');
select ok((select (r ->> 'expires_at')::timestamptz - now() = interval '1 hour' from t1), 'default lifetime is one hour');
select is(public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-x'), p_ttl_seconds => 7 * 3600) -> 'allowed' ->> 'max_ttl_seconds',
  '21600', 'asking for more lifetime than allowed is refused, naming what is allowed');
select is(public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-x'), array['gemini-2.5-flash']) ->> 'error', 'scope_exceeded',
  'asking for a model the client may not use is refused');
select is(public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-x'), p_max_requests => 6) ->> 'error', 'scope_exceeded',
  'asking for a larger budget is refused');
create temp table t2 as select public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-2'), array['gemma-3-27b'], 600, 2) as r;
select is((select r -> 'budget' ->> 'max_requests' from t2), '2', 'a narrower budget is granted');
select ok(public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-3')) ->> 'ok' = 'true', 'third token this hour');
select is(public.google_ai_mint_token(pg_temp.secret(), pg_temp.h('tok-4')) ->> 'error', 'mint_rate_limited',
  'the fourth token within an hour is refused (mint_per_hour = 3)');

-- Using tokens.
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('forged'), 'r') ->> 'limit', 'token_invalid',
  'an unknown token is refused');
select is(public.google_ai_reserve_models(array['gemini-2.5-flash'], 10, null, pg_temp.h('tok-2'), 'r') ->> 'limit', 'model_not_allowed',
  'a model outside the token''s scope is refused');
create temp table res as select public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-2'), 'r1') as r;
select is((select r ->> 'key_alias' from res), 'k1', 'a valid token reserves a key');
select is((select caller || ' ' || (client_id is not null) || ' ' || (token_id = (select (r ->> 'token_id')::uuid from t2))
           from public.google_ai_attempts where reservation_id = (select (r ->> 'reservation_id')::uuid from res)),
  'client:festival-parser-kaggle true true', 'the attempt log names the client and the token (by id)');
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-2'), 'r2', p_attempt => 2) ->> 'ok', 'true',
  'a retry (attempt 2) does not count as another request');
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-2'), 'r3') ->> 'ok', 'true', 'second request');
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-2'), 'r4') ->> 'limit', 'token_budget',
  'the third request exceeds the token''s budget of 2');
select lives_ok($$ select public.google_ai_release((select (r ->> 'reservation_id')::uuid from res)) $$, 'release a request');
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-2'), 'r5') ->> 'ok', 'true',
  'a released request gives its budget back');

update public.google_ai_tokens set expires_at = now() - interval '1 second' where token_hash = pg_temp.h('tok-3');
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-3'), 'r') ->> 'limit', 'token_expired',
  'an expired token is refused');
select lives_ok($$ select public.google_ai_revoke_client('festival-parser-kaggle', 'leaked') $$, 'revoke the client');
select is(public.google_ai_reserve_models(array['gemma-3-27b'], 10, null, pg_temp.h('tok-1'), 'r') ->> 'limit', 'token_revoked',
  'revoking a client revokes its tokens');

-- A check made for no request (llm-invoke's background refresh, p_refusals => 0) counts nothing; a
-- request's check counts itself and the refusals its cache answered since.
delete from public.google_ai_credential_refusals;
select is(public.google_ai_check_token(pg_temp.h('tok-1'), 0) ->> 'status', 'token_revoked',
  'a background check still tells the status');
select is((select count(*)::int from public.google_ai_credential_refusals), 0,
  'a check with p_refusals => 0 counts no refusal');
select public.google_ai_check_token(pg_temp.h('tok-1'));
select public.google_ai_check_token(pg_temp.h('tok-1'), 3);
select is((select sum(refusals)::int from public.google_ai_credential_refusals where reason = 'token_revoked'), 4,
  'a request''s check counts 1 by default, and the cached refusals it is given');

select * from finish();
rollback;
