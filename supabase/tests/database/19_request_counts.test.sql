-- A reservation of several requests at once (p_requests: an embedding batch whose provider counts each
-- input): booked whole in the window, the day and a token's request budget, or not at all; more than the
-- minute or what is left of the day refused at once by name; given back whole by a release; a waiter of
-- several keeps its place until as many slots are free.
begin;
create extension if not exists pgtap with schema extensions;
select plan(20);
create function pg_temp.reserve_n(p_now timestamptz, p_requests integer, p_request_id text,
    p_wait_left_ms integer default null, p_queue_ticket uuid default null, p_token_hash text default null)
    returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(array['batch-model'], 10,
    case when p_token_hash is null then 'pgtap' end, p_token_hash, p_request_id, '{}', 1, 0, '{}', false, null,
    p_queue_ticket, p_wait_left_ms, null, null, null, null, p_requests)::public.google_ai_reservation) $$;
create function pg_temp.counter() returns text language sql as $$
  select (window_requests, rpm_used, rpd_used)::text from public.google_ai_usage_counters
  where quota_group = 'proj-b' and model = 'batch-model' $$;

delete from public.google_ai_api_keys;
delete from public.google_ai_quota_shares;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, safety_margin)
  values ('batch-model', 50, 1000000, 120, 0);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('b1', 'KEY_B1', 'proj-b');

-- More than the minute: refused at once, by name, nothing booked.
select is((pg_temp.reserve_n('2026-11-21 10:00:01+00', 51, 'over') - 'retry_at' - 'retry_after_ms' - 'recheck_after_ms')::text,
  '{"ok": false, "per": "minute", "cause": "over_rpm", "limit": "too_large", "model": "batch-model", "requests": 51, '
  || '"max_requests": 50}', '51 requests at a 50 RPM model: too_large, over_rpm, naming 51 and 50 a minute');
select is((select (status, limit_hit, refusal_cause, requests)::text from public.google_ai_attempts
           where request_id = 'over'), '(refused,too_large,over_rpm,51)', 'logged as one refused row of 51 requests');
select is(pg_temp.counter(), null, 'nothing booked: no counter row');

-- 40 fit: booked whole, one attempt row of 40 requests.
select ok((pg_temp.reserve_n('2026-11-21 10:00:02+00', 40, 'forty') ->> 'ok')::boolean, '40 of 50 are booked at once');
select is(pg_temp.counter(), '(40,40,40)', 'the window, the minute and the day count 40');
select is((select (status, requests)::text from public.google_ai_attempts where request_id = 'forty'), '(reserved,40)',
  'one attempt row carries the 40 requests');

-- 20 more do not fit (10 left): refused whole, its cause and time, nothing counted.
select is(pg_temp.reserve_n('2026-11-21 10:00:03+00', 20, 'twenty') ->> 'cause', 'window_full',
  '20 with room for 10: refused whole (NO_WAIT), window_full');
select ok((pg_temp.reserve_n('2026-11-21 10:00:03+00', 20, 'twenty-again') ->> 'retry_after_ms')::bigint > 58000,
  'with the time all 20 fit: when the 40 leave the window, a minute after 10:00:02 (not when one would fit)');
select is(pg_temp.counter(), '(40,40,40)', 'none of the 20 counted');
select ok((pg_temp.reserve_n('2026-11-21 10:00:04+00', 10, 'ten') ->> 'ok')::boolean, 'the 10 left fit exactly');
select is(pg_temp.counter(), '(50,50,50)', 'the window is full at 50');
select is(pg_temp.reserve_n('2026-11-21 10:00:05+00', 2, 'two') ->> 'limit', 'rpm', 'not one more');

-- A release gives back all of its requests.
select is(public.google_ai_release((select reservation_id from public.google_ai_attempts where request_id = 'forty'),
  'never sent') ->> 'status', 'released', 'the 40 are released');
select is(pg_temp.counter(), '(10,10,10)', 'the window, the minute and the day get the 40 back');

-- A waiter of 45 queues, and keeps its place: a single request behind it does not take the freed slots.
select ok(pg_temp.reserve_n('2026-11-21 10:00:06+00', 45, 'waiter', 120000) ? 'queue', '45 with room for 40: queued');
select is((select requests from public.google_ai_queue where request_id = 'waiter'), 45, 'its ticket needs 45 slots');
select is(pg_temp.reserve_n('2026-11-21 10:00:07+00', 1, 'behind', 0) ->> 'cause', 'queue_turn',
  'one request behind it: the free slots are the waiter''s turn');
select ok((pg_temp.reserve_n('2026-11-21 10:01:06+00', 45, 'waiter', 120000,
  (select ticket_id from public.google_ai_queue where request_id = 'waiter')) ->> 'ok')::boolean,
  'once the minute frees the slots, the 45 are booked at once with its ticket');
select is(pg_temp.counter(), '(45,45,55)', 'the new window counts 45, the day 55');

-- The day: more than is left of it, refused at once (over_rpd), with the day's turn.
update public.google_ai_usage_counters set rpd_used = 100 where quota_group = 'proj-b' and model = 'batch-model';
select is((pg_temp.reserve_n('2026-11-21 10:03:01+00', 30, 'day') - 'retry_at' - 'retry_after_ms' - 'recheck_after_ms'
           - 'model' - 'limit')::text,
  '{"ok": false, "per": "day", "cause": "over_rpd", "requests": 30, "max_requests": 20}',
  '30 with 20 left of the day: over_rpd, naming 30 and 20');

select * from finish();
rollback;
