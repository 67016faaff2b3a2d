-- What the Gemini-native and OpenAI-compatible routes need: function calling per model, the list of
-- models a caller can name, and a streamed answer that broke off, finalized as 'cut' with Google's
-- count (settled in the window, billed in token_usage, never left 'reserved').
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases, supports_tools)
values ('tool-less', 10, 1000, 100, '{tl}', false), ('tool-full', 10, 1000, 100, '{}', true);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('a1', 'KEY_A1', 'proj-a');

select is((select supports_tools from public.google_ai_model_traits('tl')), false, 'the profile says a model has no function calling (by alias too)');
select is((select supports_tools from public.google_ai_model_traits('tool-full')), true, 'and that another has');
select is((select supports_tools from public.google_ai_model_traits('gemma-3-27b')), false,
  'seeded Gemma has no function calling (the flag unset follows its missing JSON mode)');

select ok(exists (select 1 from public.google_ai_model_list() where model = 'tool-less' and aliases = '{tl}'),
  'the model list names active rows with their aliases');
update public.google_ai_model_limits set is_active = false where model = 'tool-full';
select ok(not exists (select 1 from public.google_ai_model_list() where model = 'tool-full'), 'a retired row is not listed');

create temp table ids (name text primary key, id uuid);
insert into ids values ('s', (pg_temp.reserve_at(now(), array['tool-less'], 100, 'pgtap', null, 'req-cut') ->> 'reservation_id')::uuid);
select is((select tpm_used from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'tool-less'), 100,
  'the stream booked its estimate');
select is(public.google_ai_finalize((select id from ids where name = 's'), '{"kind": "cut", "cut_by": "client",
  "input_tokens": 60, "output_tokens": 12, "latency_ms": 900, "error_message": "the caller went away"}'::jsonb) ->> 'status',
  'cut', 'a cut stream is finalized');
select is((select (status, error_code, input_tokens, output_tokens)::text from public.google_ai_attempts
           where reservation_id = (select id from ids where name = 's')),
  '(cut,stream_cut_by_client,60,12)', 'the row says it was cut, by whom, and the tokens so far');
select is((select tpm_used from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'tool-less'), 60,
  'the window settles at Google''s count of the input');
select is((select window_tokens::int from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'tool-less'),
  60, 'the guarded window holds the same count');
select is((select (prompt_tokens, completion_tokens)::text from public.token_usage where request_id = 'req-cut'), '(60,12)',
  'what Google streamed is billed in token_usage');
select is((select (input_tokens, output_tokens)::text from public.google_ai_usage_by_caller_24h where caller = 'pgtap'), '(60,12)',
  'the per-caller view counts the billed tokens of a cut stream');
select is(public.google_ai_finalize((select id from ids where name = 's'), '{"kind": "cut", "cut_by": "upstream"}'::jsonb)
  ->> 'error', 'not_open', 'a second finalize changes nothing');
select throws_ok($$ select public.google_ai_finalize(gen_random_uuid(), '{"kind": "cut", "cut_by": "somebody"}'::jsonb) $$,
  '22023', null, 'who cut it is client or upstream');

select ok(not has_function_privilege('anon', 'public.google_ai_finalize(uuid, jsonb)', 'execute')
  and not has_function_privilege('authenticated', 'public.google_ai_model_list()', 'execute'),
  'nothing for the Data API roles');
select ok(has_function_privilege('eve_gateway', 'public.google_ai_finalize(uuid, jsonb)', 'execute')
  and has_function_privilege('eve_gateway', 'public.google_ai_model_list()', 'execute')
  and has_function_privilege('eve_gateway', 'public.google_ai_model_traits(text)', 'execute'),
  'the functions'' role may call them');

select * from finish();
rollback;
