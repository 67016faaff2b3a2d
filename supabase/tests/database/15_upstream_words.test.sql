-- The words for any provider's failures: a call the provider answered with an error is upstream_error,
-- a stream it broke off is cut by upstream; the former names (kind google_error, cut_by google) are refused
-- since 1.0 (22023), writing nothing, and the attempt log takes no row with status google_error. A key a
-- call finds rejected is taken out naming its provider row's display name.
begin;
create extension if not exists pgtap with schema extensions;
select plan(11);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases) values ('words-model', 10, 1000, 100, '{}');
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('w1', 'KEY_W1', 'proj-w');

create temp table ids (name text primary key, id uuid);
insert into ids select n, (pg_temp.reserve_at(now(), array['words-model'], 10, 'pgtap-words', null,
  'req-words-' || n) ->> 'reservation_id')::uuid from unnest(array['new', 'former', 'cut', 'cut-former']) n;

select is(public.google_ai_finalize((select id from ids where name = 'new'),
  '{"kind": "upstream_error", "http_status": 500}'::jsonb) ->> 'status', 'upstream_error', 'finalize takes upstream_error');
select throws_ok($$ select public.google_ai_finalize((select id from ids where name = 'former'),
  '{"kind": "google_error", "http_status": 500}'::jsonb) $$, '22023', null,
  'google_error, its former name, is refused since 1.0');
select is(public.google_ai_finalize((select id from ids where name = 'cut'),
  '{"kind": "cut", "cut_by": "upstream", "input_tokens": 5, "output_tokens": 1}'::jsonb) ->> 'status', 'cut',
  'a stream the provider broke off is cut by upstream');
select is((select error_code from public.google_ai_attempts where request_id = 'req-words-cut'), 'stream_cut_by_upstream',
  'and its row says so');
select throws_ok($$ select public.google_ai_finalize((select id from ids where name = 'cut-former'),
  '{"kind": "cut", "cut_by": "google", "input_tokens": 5, "output_tokens": 1}'::jsonb) $$, '22023', null,
  'cut_by google, its former name, is refused since 1.0');
select throws_ok($$ select public.google_ai_finalize(gen_random_uuid(), '{"kind": "cut", "cut_by": "provider"}'::jsonb) $$,
  '22023', null, 'any other word is refused');
select is((select array_agg((status, http_status, error_code, input_tokens)::text order by request_id)
           from public.google_ai_attempts where request_id in ('req-words-former', 'req-words-cut-former')),
  array['(reserved,,,)', '(reserved,,,)'], 'a finalize refused for a former word writes nothing: its reservation stays open');

-- A key a call finds rejected is taken out naming the provider that rejected it.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases, provider) values ('words-gpt', 10, 1000, 100, '{}', 'openai');
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, provider) values ('o1', 'OPENAI_W1', 'org-w', 'openai');
insert into ids values ('gpt', (pg_temp.reserve_at(now(), array['words-gpt'], 10, 'pgtap-gpt', null,
  'req-words-gpt') ->> 'reservation_id')::uuid);
select public.google_ai_finalize((select id from ids where name = 'gpt'), '{"kind": "upstream_error", "http_status": 401,
  "error_code": "invalid_api_key", "key_rejected": true}'::jsonb);
select is((select disabled_reason from public.google_ai_api_keys where key_alias = 'o1'),
  'OpenAI rejected the key (invalid_api_key) on a call', 'an OpenAI key rejected on a call is said to be OpenAI''s');

-- Any provider's: its row's display name.
insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
  values ('deepseek', 'openai', 'DeepSeek', 'https://api.deepseek.com', 'DEEPSEEK_[A-Z0-9_]+');
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases, provider) values ('words-ds', 10, 1000, 100, '{}', 'deepseek');
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, provider) values ('d1', 'DEEPSEEK_W1', 'ds-w', 'Deep Seek');
insert into ids values ('ds', (pg_temp.reserve_at(now(), array['words-ds'], 10, 'pgtap-ds', null,
  'req-words-ds') ->> 'reservation_id')::uuid);
select public.google_ai_finalize((select id from ids where name = 'ds'), '{"kind": "upstream_error", "http_status": 401,
  "error_code": "invalid_api_key", "key_rejected": true}'::jsonb);
select is((select disabled_reason from public.google_ai_api_keys where key_alias = 'd1'),
  'DeepSeek rejected the key (invalid_api_key) on a call', 'a key of an added provider is said to be its display name''s');

-- The attempt log takes no row under the former status (the rows written before 1.0 were renamed by its
-- migration); the 24 h view counts upstream_error rows as failed.
select throws_ok($$ insert into public.google_ai_attempts (status, caller, model, request_id)
  values ('google_error', 'pgtap-words', 'words-model', 'req-old') $$, '23514', null,
  'an attempt row takes no status google_error, upstream_error''s former name');
insert into public.google_ai_attempts (status, caller, model, request_id) values ('upstream_error', 'pgtap-words', 'words-model', 'req-old');
select is((select failed from public.google_ai_usage_by_caller_24h where caller = 'pgtap-words'), 2,
  'the 24 h view counts upstream_error rows as failed (the two open reservations are not)');

select * from finish();
rollback;
