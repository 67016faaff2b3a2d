-- google_ai_finalize_calls: the finalizes that met in one worker, written in one statement, each call
-- {reservation_id, outcome: {...}} (the outcome as google_ai_finalize takes it). Each call is written as
-- google_ai_finalize writes it (twin setups, one finalized call by call, its twin in one batch), the answers
-- come back in the calls' order, and one bad call fails them all (a call in the former flat shape too).
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);

-- One key of proj-f for every model but fin-e, which proj-e's key alone serves.
delete from public.google_ai_api_keys;
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, models) values
  ('f1', 'KEY_F1', 'proj-f', '{fin-one,fin-all,fin-b,fin-c}'), ('e1', 'KEY_E1', 'proj-e', '{fin-e}');
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, limit_pool) values
  ('fin-one', 100, 100000, 1000, null), ('fin-all', 100, 100000, 1000, null), ('fin-b', 100, 100000, 1000, null),
  ('fin-c', 100, 100000, 1000, 'fin-a-pool'), ('fin-e', 100, 100000, 1000, null);
insert into public.google_ai_model_prices (model, service_tier, input_per_mtok, output_per_mtok, source, read_on)
select m, 'standard', 1.25, 10, 'pgtap', '2026-11-01' from unnest('{fin-one,fin-all}'::text[]) m;
-- Twins: per model, a client with budgets and two scoped tokens, and a service caller with budgets.
insert into public.google_ai_clients (name, secret_hash, models, daily_max_requests, daily_max_tokens, daily_max_usd,
  monthly_max_usd)
select 'client-' || t, 'secret-' || t, array['fin-' || t], 100, 100000, 10, 100 from unnest('{one,all}'::text[]) t;
insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_tokens, max_usd)
select c.id, 'tok-' || n || '-' || t, array['fin-' || t], now() + interval '1 hour', 100000, 5
from unnest('{one,all}'::text[]) t cross join unnest('{1,2}'::int[]) n join public.google_ai_clients c on c.name = 'client-' || t;
insert into public.google_ai_caller_budgets (caller, daily_max_requests, daily_max_tokens, monthly_max_usd)
select 'svc-' || t, 100, 100000, 50 from unnest('{one,all}'::text[]) t;

create function pg_temp.reserve(p_at interval, p_model text, p_caller text, p_token_hash text) returns uuid
language sql as $$
  -- (At seconds into the next minute: every reservation of the file in one calendar minute, whatever now() is.)
  select (public.google_ai_reserve_models_at(date_trunc('minute', now()) + interval '1 minute' + p_at, row(array[p_model], 100, p_caller, p_token_hash,
    'req-' || gen_random_uuid(), '{}', 1, 0, '{}', false, null, null, null, null, null, null,
    array[200], null)::public.google_ai_reservation) ->> 'reservation_id')::uuid $$;
create temp table ids (twin text, role text, id uuid, primary key (twin, role));
insert into ids
select t, r.role, pg_temp.reserve(r.at, 'fin-' || t, r.caller || t, r.tok || t)
from unnest('{one,all}'::text[]) t,
  (values ('t1', interval '1 second', null, 'tok-1-'), ('svc', interval '2 seconds', 'svc-', null),
          ('t2', interval '3 seconds', null, 'tok-2-')) r(role, at, caller, tok);
select is((select count(*)::int from ids i join public.google_ai_attempts a on a.reservation_id = i.id
           where a.status = 'reserved' and a.quota_group = 'proj-f'), 6,
  'six reservations: per twin two scoped tokens of a client and a service caller, one group and model');

-- The calls: a success, a success with fewer tokens, a 429 that rests the model and keeps what was settled.
create function pg_temp.call(p_twin text, p_role text) returns jsonb language sql as $$
  select jsonb_build_object('reservation_id', (select id from ids where twin = p_twin and role = p_role), 'outcome',
    case p_role when 't1' then '{"kind": "succeeded", "input_tokens": 120, "output_tokens": 30, "http_status": 200,
                                "latency_ms": 900, "first_byte_ms": 300}'::jsonb
                when 'svc' then '{"kind": "succeeded", "input_tokens": 40, "output_tokens": 10, "http_status": 200,
                                 "response": {"text": "kept"}}'::jsonb
                else '{"kind": "upstream_error", "http_status": 429, "error_code": "RESOURCE_EXHAUSTED",
                       "quota_id": "PerMinute", "error_message": "quota", "cooldown_until": "2030-01-01T00:00:00Z",
                       "settled_tokens": 50}'::jsonb end) $$;
-- One by one, as google_ai_finalize is called with the same outcome.
create temp table one_by_one as
select r.role, public.google_ai_finalize(p_reservation_id => (c ->> 'reservation_id')::uuid,
  p_outcome => c -> 'outcome') as answer
from (values ('t1', 1), ('svc', 2), ('t2', 3)) r(role, n), pg_temp.call('one', r.role) c order by r.n;
-- Its twin in one statement, the calls in another order.
create temp table batched as
select public.google_ai_finalize_calls(jsonb_build_array(pg_temp.call('all', 't2'), pg_temp.call('all', 't1'),
  pg_temp.call('all', 'svc'))) as answers;

-- What a twin's calls left: attempt rows, token_usage rows, the counter row, budgets, the rest.
create function pg_temp.left_by(p_twin text) returns text language sql as $$
  select concat_ws(E'\n',
    (select string_agg(row(i.role, a.status, a.input_tokens, a.output_tokens, a.http_status, a.error_code, a.quota_id,
       a.error_message, a.latency_ms, a.first_byte_ms, a.cost_usd, a.estimated_tokens)::text, ' ' order by i.role)
     from ids i join public.google_ai_attempts a on a.reservation_id = i.id where i.twin = p_twin),
    (select string_agg(row(i.role, u.prompt_tokens, u.completion_tokens, u.total_tokens)::text, ' ' order by i.role)
     from ids i join public.token_usage u on u.meta ->> 'reservation_id' = i.id::text where i.twin = p_twin),
    (select row(c.rpm_used, c.tpm_used, c.rpd_used, c.window_requests, c.window_tokens, c.ring_low, c.ring)::text
     from public.google_ai_usage_counters c where c.quota_group = 'proj-f' and c.model = 'fin-' || p_twin),
    (select string_agg(row(t.requests_used, t.tokens_used, t.spent_usd)::text, ' ' order by t.token_hash)
     from public.google_ai_tokens t where t.token_hash like 'tok-_-' || p_twin),
    (select row(c.requests_today, c.tokens_today, c.spent_today_usd, c.spent_month_usd)::text
     from public.google_ai_clients c where c.name = 'client-' || p_twin),
    (select row(b.requests_today, b.tokens_today, b.spent_today_usd, b.spent_month_usd)::text
     from public.google_ai_caller_budgets b where b.caller = 'svc-' || p_twin),
    (select row(d.cooldown_until, d.reason, d.quota_id)::text
     from public.google_ai_cooldowns d where d.quota_group = 'proj-f' and d.model = 'fin-' || p_twin),
    (select r.response::text from public.google_ai_responses r where r.caller = 'svc-' || p_twin)) $$;

select is(pg_temp.left_by('all'), pg_temp.left_by('one'),
  'one batch leaves what the same calls finalized one by one leave: attempts, token_usage, counter, budgets, rest');
select is((select answers from batched),
  jsonb_build_array((select answer from one_by_one where role = 't2'), (select answer from one_by_one where role = 't1'),
                    (select answer from one_by_one where role = 'svc')),
  'each answer is google_ai_finalize''s for the same call, in the calls'' order');
-- The figures themselves, so that the twins agreeing is not two wrongs alike.
select is((select row(c.tpm_used, c.window_tokens)::text from public.google_ai_usage_counters c
           where c.quota_group = 'proj-f' and c.model = 'fin-all'), '(210,210)',
  'the counter holds the settled counts: 120 and 40 counted, 50 kept of the 429''s 100');
select is((select string_agg(a.status || ':' || trim_scale(a.cost_usd), ' ' order by i.role)
           from ids i join public.google_ai_attempts a on a.reservation_id = i.id where i.twin = 'all'),
  'succeeded:0.00015 succeeded:0.00045 upstream_error:0', 'each attempt carries its outcome and its cost');
select is((select row(c.tokens_today, b.tokens_today)::text from public.google_ai_clients c, public.google_ai_caller_budgets b
           where c.name = 'client-all' and b.caller = 'svc-all'), '(170,40)',
  'the budgets count what was settled: the client''s two tokens (120 + 50), the service caller''s 40');

-- The answers in the calls' order, whatever order the calls are written in: a call in another group
-- (proj-e sorts first), one of a model in a pool (its counter row, fin-a-pool, before fin-b's), one not
-- open any more and one unknown get their own answers in their places.
insert into ids values ('b', 'b', pg_temp.reserve(interval '4 seconds', 'fin-b', 'bot', null)),
  ('b', 'c', pg_temp.reserve(interval '4 seconds', 'fin-c', 'bot', null)),
  ('b', 'e', pg_temp.reserve(interval '4 seconds', 'fin-e', 'bot', null));
create temp table mixed as
select jsonb_build_array(
  jsonb_build_object('reservation_id', (select id from ids where role = 'b'),
                     'outcome', '{"kind": "timeout", "latency_ms": 60000}'::jsonb),
  pg_temp.call('one', 't1'),
  jsonb_build_object('reservation_id', (select id from ids where role = 'c'), 'outcome', '{"kind": "network_error"}'::jsonb),
  jsonb_build_object('reservation_id', gen_random_uuid(), 'outcome', '{"kind": "succeeded"}'::jsonb),
  jsonb_build_object('reservation_id', (select id from ids where role = 'e'),
                     'outcome', '{"kind": "succeeded", "input_tokens": 7, "output_tokens": 1}'::jsonb)) as calls;
create temp table mixed_answers as select public.google_ai_finalize_calls(calls) as answers from mixed;
select is((select answers from mixed_answers),
  jsonb_build_array('{"ok": true, "status": "timeout", "cooldown_until": null}'::jsonb,
    public.google_ai_finalize((select id from ids where twin = 'one' and role = 't1'), '{"kind": "succeeded"}'::jsonb),
    '{"ok": true, "status": "network_error", "cooldown_until": null}'::jsonb,
    public.google_ai_finalize((select (calls -> 3 ->> 'reservation_id')::uuid from mixed), '{"kind": "succeeded"}'::jsonb),
    '{"ok": true, "status": "succeeded", "cooldown_until": null}'::jsonb),
  'the answers come back in the calls'' order: a closed reservation and an unknown one answered as finalize answers them');
select is((select string_agg(c.model || ':' || c.tpm_used, ' ' order by c.model) from public.google_ai_usage_counters c
           where c.model in ('fin-a-pool', 'fin-b', 'fin-e')), 'fin-a-pool:100 fin-b:100 fin-e:7',
  'a pool''s model settles on its pool''s row');

-- A reservation named twice in one batch is written by its first call; the second is answered as a
-- finalize of a closed reservation is.
insert into ids values ('d', 'd', pg_temp.reserve(interval '4 seconds', 'fin-b', 'bot', null));
select is(public.google_ai_finalize_calls(jsonb_build_array(
    jsonb_build_object('reservation_id', (select id from ids where role = 'd'),
                       'outcome', '{"kind": "succeeded", "input_tokens": 9}'::jsonb),
    jsonb_build_object('reservation_id', (select id from ids where role = 'd'), 'outcome', '{"kind": "timeout"}'::jsonb))),
  jsonb_build_array('{"ok": true, "status": "succeeded", "cooldown_until": null}'::jsonb,
    '{"ok": false, "error": "not_open", "status": "succeeded"}'::jsonb),
  'a reservation named twice in a batch is written once, by its first call');

-- One bad call fails the statement: nothing of the others stays.
insert into ids values ('x', 'x1', pg_temp.reserve(interval '5 seconds', 'fin-b', 'bot', null)),
  ('x', 'x2', pg_temp.reserve(interval '5 seconds', 'fin-b', 'bot', null));
create temp table before as
select row(c.rpm_used, c.tpm_used, c.window_requests, c.window_tokens, c.ring)::text as counter
from public.google_ai_usage_counters c where c.quota_group = 'proj-f' and c.model = 'fin-b';
select throws_ok(format($$ select public.google_ai_finalize_calls(jsonb_build_array(
    jsonb_build_object('reservation_id', %L::uuid, 'outcome', '{"kind": "succeeded", "input_tokens": 500}'::jsonb),
    jsonb_build_object('reservation_id', %L::uuid, 'outcome', '{"kind": "bogus"}'::jsonb))) $$,
  (select id from ids where role = 'x1'), (select id from ids where role = 'x2')),
  '22023', null, 'a call outside finalize''s outcomes fails the whole statement');
select is((select string_agg(a.status, ' ') from ids i join public.google_ai_attempts a on a.reservation_id = i.id
           where i.twin = 'x'), 'reserved reserved', 'every attempt of the batch is still reserved');
select is((select row(c.rpm_used, c.tpm_used, c.window_requests, c.window_tokens, c.ring)::text
           from public.google_ai_usage_counters c where c.quota_group = 'proj-f' and c.model = 'fin-b'),
  (select counter from before), 'and the counter is as it was (the valid call''s 500 tokens are not in it)');
select throws_ok(format($$ select public.google_ai_finalize_calls(jsonb_build_array(
    jsonb_build_object('reservation_id', %L::uuid,
                       'outcome', '{"kind": "upstream_error", "quota_cause": "no-such-cause"}'::jsonb))) $$,
  (select id from ids where role = 'x1')), '22023', null, 'so does a quota cause outside google_ai_quota_causes()');
select throws_ok(format($$ select public.google_ai_finalize_calls(jsonb_build_array(
    jsonb_build_object('reservation_id', %L::uuid, 'outcome', '{"kind": "succeeded", "input_tokens": 500}'::jsonb),
    jsonb_build_object('reservation_id', %L::uuid, 'outcome', 'succeeded', 'input_tokens', 9))) $$,
  (select id from ids where role = 'x1'), (select id from ids where role = 'x2')),
  '22023', null, 'and so does a call in the former flat shape (its outcome the kind), refused since 1.0');

-- The functions' role calls it; the Data API's roles do not.
select ok(has_function_privilege('eve_gateway', 'public.google_ai_finalize_calls(jsonb)', 'execute'),
  'eve_gateway may execute google_ai_finalize_calls');
select ok(not has_function_privilege('anon', 'public.google_ai_finalize_calls(jsonb)', 'execute')
          and not has_function_privilege('authenticated', 'public.google_ai_finalize_calls(jsonb)', 'execute'),
  'anon and authenticated may not');

select * from finish();
rollback;
