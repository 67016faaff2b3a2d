-- Reservation life cycle: finalize reconciles tokens in the booked window, release gives the
-- booking back, a 429 cools the group down, and closed reservations stay closed.
begin;
create extension if not exists pgtap with schema extensions;
select plan(37);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('test-model', 10, 1000, 100);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('a1', 'KEY_A1', 'proj-a');

create function pg_temp.r(p_at text, p_tokens int) returns uuid language sql as $$
  select (pg_temp.reserve_at(p_at::timestamptz, array['test-model'], p_tokens, 'pgtap', null, 'req-' || p_at) ->> 'reservation_id')::uuid
$$;
create function pg_temp.counter() returns record language sql as $$
  select (rpm_used, tpm_used, rpd_used) from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'test-model'
$$;
create temp table ids (name text primary key, id uuid);

insert into ids values ('up', pg_temp.r('2026-11-21 10:00:05+00', 100));
select is((select tpm_used from public.google_ai_usage_counters where quota_group = 'proj-a'), 100, 'the estimate is booked');
select ok((public.google_ai_finalize((select id from ids where name = 'up'),
  '{"kind": "succeeded", "input_tokens": 150, "output_tokens": 40, "http_status": 200}'::jsonb) ->> 'ok')::boolean,
  'finalize succeeds');
select is((select tpm_used from public.google_ai_usage_counters where quota_group = 'proj-a'), 150,
  'finalize with more tokens than estimated raises TPM by the difference');
select is((select status from public.google_ai_attempts where reservation_id = (select id from ids where name = 'up')), 'succeeded',
  'the attempt row carries the outcome');
select is((select (prompt_tokens, completion_tokens, total_tokens, request_id)::text from public.token_usage
           where meta ->> 'reservation_id' = (select id::text from ids where name = 'up')),
  '(150,40,190,"req-2026-11-21 10:00:05+00")', 'a success lands in token_usage with prompt, completion and total tokens');
select is(public.google_ai_finalize((select id from ids where name = 'up'),
  '{"kind": "succeeded", "input_tokens": 1, "output_tokens": 1, "http_status": 200}'::jsonb) ->> 'error', 'not_open',
  'a second finalize is refused and changes nothing');
select is((select tpm_used from public.google_ai_usage_counters where quota_group = 'proj-a'), 150, 'TPM unchanged by the second finalize');

insert into ids values ('down', pg_temp.r('2026-11-21 10:00:10+00', 300));
select lives_ok($$ select public.google_ai_finalize((select id from ids where name = 'down'),
  '{"kind": "succeeded", "input_tokens": 20, "output_tokens": 5, "http_status": 200}'::jsonb) $$,
  'finalize with fewer tokens');
select is((select tpm_used from public.google_ai_usage_counters where quota_group = 'proj-a'), 170,
  'finalize with fewer tokens lowers TPM by the difference (150 + 300 - 280)');

-- Release gives back one request, its estimate, and the day's request.
insert into ids values ('rel', pg_temp.r('2026-11-21 10:00:20+00', 200));
select is(pg_temp.counter()::text, '(3,370,3)', 'three bookings counted');
select is(public.google_ai_release((select id from ids where name = 'rel'), 'network error before send') ->> 'status', 'released',
  'release succeeds');
select is(pg_temp.counter()::text, '(2,170,2)', 'release gives back the request, its tokens and its day count');
select is(public.google_ai_release((select id from ids where name = 'rel')) ->> 'error', 'not_open', 'a second release does nothing');

-- A reservation from an earlier minute: only the day count comes back, the old minute is history.
insert into ids values ('old', pg_temp.r('2026-11-21 10:00:30+00', 50));
insert into ids values ('new', pg_temp.r('2026-11-21 10:01:05+00', 70));
select lives_ok($$ select public.google_ai_release((select id from ids where name = 'old')) $$, 'release of an older minute');
select is(pg_temp.counter()::text, '(1,70,3)', 'the current minute is untouched; the day count drops by one');

-- Finalize can cool the group down in the same call (Google's 429 with a retry delay).
select is(public.google_ai_finalize((select id from ids where name = 'new'), jsonb_build_object('kind', 'upstream_error',
  'http_status', 429, 'error_code', 'RESOURCE_EXHAUSTED', 'quota_id', 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
  'error_message', 'quota', 'latency_ms', 12, 'cooldown_until', '2030-01-01 00:00:00+00'::timestamptz))
  ->> 'cooldown_until', '2030-01-01T00:00:00+00:00', 'finalize records the cooldown');
select is(pg_temp.reserve_at('2026-11-21 10:01:10+00', array['test-model'], 1, 'pgtap', null, null) ->> 'limit', 'cooldown',
  'the cooled group is not used');

-- Idempotency (the caller named the request): a completed request id is answered from its stored
-- response; one whose earlier call still holds its lease is refused; a failed one can be repeated.
delete from public.google_ai_cooldowns;
create function pg_temp.ri(p_at text, p_caller text, p_req text) returns jsonb language sql as $$
  select pg_temp.reserve_at(p_at::timestamptz, array['test-model'], 5, p_caller, null, p_req, p_idempotent => true)
$$;
insert into ids values ('idem', (pg_temp.ri('2026-11-21 10:02:00+00', 'bot', 'idem-1') ->> 'reservation_id')::uuid);
select is(pg_temp.ri('2026-11-21 10:02:01+00', 'bot', 'idem-1') ->> 'limit', 'in_progress',
  'the same request id while its first call holds its lease is refused as in_progress');
select lives_ok($$ select public.google_ai_finalize((select id from ids where name = 'idem'), '{"kind": "succeeded",
  "input_tokens": 5, "output_tokens": 2, "http_status": 200, "response": {"text": "stored answer"}}'::jsonb) $$,
  'finalize stores the response');
-- finalize stamps the answer with the real clock; put it on this test's injected timeline.
update public.google_ai_responses set created_at = '2026-11-21 10:02:01+00' where caller = 'bot' and request_id = 'idem-1';
select is(pg_temp.ri('2026-11-21 10:02:02+00', 'bot', 'idem-1') -> 'response' ->> 'text', 'stored answer',
  'the same caller and request id get the stored response back');
select is((select count(*)::int from public.google_ai_attempts where request_id = 'idem-1'), 1,
  'a replay books nothing and calls nothing');
select is(pg_temp.ri('2026-11-21 10:02:03+00', 'someone-else', 'idem-1') ->> 'ok', 'true',
  'another caller''s request id is its own');
select is(pg_temp.ri('2026-11-22 10:02:04+00', 'bot', 'idem-1') ->> 'ok', 'true',
  'after 24 hours the stored response is no longer replayed: the id is a new request');
insert into ids values ('idem-f', (pg_temp.ri('2026-11-21 10:03:00+00', 'bot', 'idem-2') ->> 'reservation_id')::uuid);
select lives_ok($$ select public.google_ai_finalize((select id from ids where name = 'idem-f'),
  '{"kind": "upstream_error", "http_status": 500}'::jsonb) $$,
  'a failed attempt');
select is(pg_temp.ri('2026-11-21 10:03:01+00', 'bot', 'idem-2') ->> 'limit', 'in_progress',
  'between attempts the request still holds its lease');
select is(public.google_ai_end_request((select id from ids where name = 'idem-f')) ->> 'ended', 'true',
  'the function ends a request it gave up on');
select is(pg_temp.ri('2026-11-21 10:03:02+00', 'bot', 'idem-2') ->> 'ok', 'true', 'then the id may be repeated at once');
select is(pg_temp.ri('2026-11-21 10:11:00+00', 'bot', 'idem-2') ->> 'ok', 'true',
  'a lease that ran out (a crashed caller) does not block the id');
select is(pg_temp.reserve_at('2026-11-21 10:12:00+00', array['test-model'], 5, 'bot', null, 'idem-1') ->> 'ok', 'true',
  'a request that is not idempotent is never refused for its id');

-- Google rejects a key as invalid: it leaves rotation at once, with the reason.
insert into ids values ('badkey', pg_temp.r('2026-11-21 10:13:00+00', 5));
select lives_ok($$ select public.google_ai_finalize((select id from ids where name = 'badkey'),
  '{"kind": "upstream_error", "http_status": 400, "error_code": "API_KEY_INVALID"}'::jsonb) $$, 'finalize with API_KEY_INVALID');
select is((select (is_active, disabled_reason is not null)::text from public.google_ai_api_keys where key_alias = 'a1'), '(f,t)',
  'the key is deactivated with a reason, not deleted');

-- The attempt log's checks hold whatever statement writes a row: an outcome or a 429's cause outside
-- their lists is refused.
select throws_ok($$ update public.google_ai_attempts set status = 'finished' where reservation_id = (select id from ids where name = 'up') $$,
  '23514', null, 'an attempt row takes no status outside its list');
select throws_ok($$ update public.google_ai_attempts set quota_cause = 'rpm' where reservation_id = (select id from ids where name = 'up') $$,
  '23514', null, 'nor a quota cause outside google_ai_quota_causes()');

-- The provider's room (x-ratelimit-remaining-*): the rest counts the calls out at any moment since the
-- answered one was admitted, twice (a caller whose answer is back may be admitting its next call, unseen
-- by the count), and the admissions since it, which the provider may have counted after its answer; not
-- the answered call's own caller (llm-invoke takes its next call out of the room when the answer leaves
-- first). Five calls a second apart; the last three are answered first, then the first two, whose
-- finalizes lag.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('room-model', 100, 100000, null);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('r1', 'KEY_R1', 'proj-room');
create function pg_temp.room(p_ago int) returns uuid language sql as $$
  select (pg_temp.reserve_at(pg_catalog.clock_timestamp() - make_interval(secs => p_ago),
    array['room-model'], 10, 'pgtap', null, null) ->> 'reservation_id')::uuid
$$;
create function pg_temp.room_left(p_name text, p_left int) returns void language sql as $$
  select public.google_ai_finalize((select id from ids where name = p_name), jsonb_build_object('kind', 'succeeded',
    'input_tokens', 5, 'output_tokens', 5, 'http_status', 200, 'room_requests', p_left,
    'room_until', pg_catalog.clock_timestamp() + interval '30 seconds'))
$$;
insert into ids values ('room-1', pg_temp.room(5)), ('room-2', pg_temp.room(4)), ('room-3', pg_temp.room(3)),
  ('room-4', pg_temp.room(2)), ('room-5', pg_temp.room(1));
select public.google_ai_finalize((select id from ids where name = n),
  '{"kind": "succeeded", "input_tokens": 5, "output_tokens": 5, "http_status": 200}'::jsonb)
from unnest(array['room-3', 'room-4', 'room-5']) n;
select pg_temp.room_left('room-1', 13);
select is((select count(*)::int from public.google_ai_cooldowns where model = 'room-model'), 0,
  'more left (13) than twice the others out since (4: one on its way, three back) and those admitted since (4): no rest');
select pg_temp.room_left('room-2', 11);
select is((select reason from public.google_ai_cooldowns where model = 'room-model'), 'provider_room',
  'no more left (11) than twice the others out since (4, none on its way) and those admitted since (3): the model rests');

-- A lone caller uses every request left: its own answered call is not counted (its next call is not
-- made before this lands, or is taken out of the room by llm-invoke).
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('lone-model', 3, 100000, null);
create function pg_temp.lone(p_left int) returns void language sql as $$
  select public.google_ai_finalize((pg_temp.reserve_at(pg_catalog.clock_timestamp(), array['lone-model'], 10,
    'pgtap', null, null) ->> 'reservation_id')::uuid, jsonb_build_object('kind', 'succeeded', 'input_tokens', 5,
    'output_tokens', 5, 'http_status', 200, 'room_requests', p_left,
    'room_until', pg_catalog.clock_timestamp() + interval '30 seconds'))
$$;
select pg_temp.lone(1);
select is((select count(*)::int from public.google_ai_cooldowns where model = 'lone-model'), 0,
  'a lone caller with one request left: no rest');
select pg_temp.lone(0);
select is((select reason from public.google_ai_cooldowns where model = 'lone-model'), 'provider_room',
  'a lone caller with none left: the model rests');

select * from finish();
rollback;
