-- Admission that holds on Google's clock: the sliding minute window (60 s + guard), the guarded
-- Pacific day, and capacity given back at once.
begin;
create extension if not exists pgtap with schema extensions;
select plan(19);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('win-model', 3, 1000, 100);
insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, priority) values
  ('00000000-0000-0000-0000-00000000000a', 'w1', 'KEY_W1', 'proj-w', 1);

create function pg_temp.r(p_at text, p_tokens int default 10) returns jsonb
language sql as $$ select pg_temp.reserve_at(p_at::timestamptz, array['win-model'], p_tokens, 'pgtap', null, null) $$;

-- The boundary straddle: three booked in the last 300 ms of a minute ...
select ok((pg_temp.r('2026-11-23 10:00:59.7+00') ->> 'ok')::boolean, 'booked at :59.7');
select ok((pg_temp.r('2026-11-23 10:00:59.8+00') ->> 'ok')::boolean, 'booked at :59.8');
select ok((pg_temp.r('2026-11-23 10:00:59.9+00') ->> 'ok')::boolean, 'booked at :59.9');
-- ... and nothing more at :00.5, though a new calendar minute began: Google may count all of them in it.
select is(pg_temp.r('2026-11-23 10:01:00.5+00') - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'rpm', 'cause', 'window_full', 'retry_after_ms', 60200,
    'retry_at', '2026-11-23T10:02:00.7+00:00'),
  'a new calendar minute does not reopen a full window: the first admission leaves it at :59.7 + 61 s');
select ok((pg_temp.r('2026-11-23 10:02:00.7+00') ->> 'ok')::boolean, 'when the oldest admission left the window, one more fits');
select is(pg_temp.r('2026-11-23 10:02:00.8+00') - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'rpm', 'cause', 'window_full', 'retry_after_ms', 100,
    'retry_at', '2026-11-23T10:02:00.9+00:00'),
  'the second''s other admissions leave with its last (:59.9 + 61 s): at most a second late, never early');
select is((select (window_requests, ring_low)::text from public.google_ai_usage_counters
           where quota_group = 'proj-w' and model = 'win-model'),
  format('(3,%s)', extract(epoch from timestamptz '2026-11-23 10:00:59+00')::bigint),
  'the window holds the two admissions of :59 still in it and the new one');

-- Capacity given back: a TPM refusal while tokens of the window are in flight asks to re-check soon,
-- and finalize's real count frees the tokens at once, within the same minute.
delete from public.google_ai_usage_counters; delete from public.google_ai_attempts;
select ok((pg_temp.r('2026-11-23 11:00:01+00', 700) ->> 'ok')::boolean, '700 of 1000 tokens booked on the estimate');
select is((pg_temp.r('2026-11-23 11:00:02+00', 600) ->> 'recheck_after_ms')::int, 2000,
  'a TPM refusal with tokens of the window still in flight asks to re-check in recheck_ms');
select ok((public.google_ai_finalize((select reservation_id from public.google_ai_attempts where status = 'reserved'),
  '{"kind": "succeeded", "input_tokens": 350, "output_tokens": 10}'::jsonb) ->> 'ok')::boolean,
  'finalize: Google counted 350 input tokens');
select ok((pg_temp.r('2026-11-23 11:00:03+00', 600) ->> 'ok')::boolean,
  'the tokens given back are reused at once: 350 + 600 fit in the same minute');

-- Release gives the request back to the window.
select ok((public.google_ai_release((select reservation_id from public.google_ai_attempts
  where status = 'reserved' order by created_at desc limit 1), 'test') ->> 'ok')::boolean, 'released');
select is((select (window_requests, window_tokens)::text from public.google_ai_usage_counters where quota_group = 'proj-w'),
  '(1,350)', 'the released admission left the window sums');

-- The Pacific day: an admission in the guard before midnight (08:00 UTC in winter) counts for both days.
select ok((pg_temp.r('2026-11-24 07:59:58+00') ->> 'ok')::boolean, 'booked 2 s before Pacific midnight');
select is((select (rpd_used, rpd_next_used)::text from public.google_ai_usage_counters where quota_group = 'proj-w'), '(2,1)',
  'an admission within the day guard before midnight is counted for the next day too');
select ok((pg_temp.r('2026-11-24 08:00:06+00') ->> 'ok')::boolean, 'the next day, after the guard');
select is((select (day_bucket, rpd_used, rpd_prev_used)::text from public.google_ai_usage_counters where quota_group = 'proj-w'),
  '(2026-11-24,2,2)', 'the new day starts with the admission counted ahead, the day before stays in view');
-- Within the guard after midnight yesterday's count still binds: a day full yesterday refuses, and
-- reopens when the guard ends, not a day later.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('day-full', 100, 100000, 2);
create function pg_temp.d(p_at text) returns jsonb language sql as $$
  select pg_temp.reserve_at(p_at::timestamptz, array['day-full'], 10, 'pgtap', null, null) $$;
select ok(pg_temp.d('2026-11-25 07:59:40+00') ->> 'ok' = 'true' and pg_temp.d('2026-11-25 07:59:41+00') ->> 'ok' = 'true',
  'two of a day of 2 booked 20 s before Pacific midnight');
select is(pg_temp.d('2026-11-25 08:00:02+00') - 'model' - 'max_tokens' - 'recheck_after_ms' - 'retry_after_ms',
  jsonb_build_object('ok', false, 'limit', 'rpd', 'cause', 'day_exhausted', 'retry_at', '2026-11-25T08:00:05+00:00'),
  'a day full yesterday refuses 2 s after midnight until the 5 s guard ends');

select * from finish();
rollback;
