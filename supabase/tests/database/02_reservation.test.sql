-- The reservation RPC: limits, windows, quota groups, priority, headroom, cooldowns, refusals.
begin;
create extension if not exists pgtap with schema extensions;
select plan(44);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

-- Fixture: one model with small limits; group proj-a has two keys (priority 1), key b1 has no
-- project (its own group, priority 2).
delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases)
values ('test-model', 3, 1000, 5, array['test-alias']);
insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, priority) values
  ('00000000-0000-0000-0000-0000000000a1', 'a1', 'KEY_A1', 'proj-a', 1),
  ('00000000-0000-0000-0000-0000000000a2', 'a2', 'KEY_A2', 'proj-a', 1),
  ('00000000-0000-0000-0000-0000000000b1', 'b1', 'KEY_B1', null, 2);

create function pg_temp.r(p_at text, p_tokens int default 10, p_exclude uuid[] default '{}') returns jsonb
language sql as $$
  select pg_temp.reserve_at(p_at::timestamptz, array['test-model'], p_tokens, 'pgtap', null, null, p_exclude)
$$;

-- Priority first: the priority-1 group serves while it has room, through its first key.
select is(pg_temp.r('2026-11-21 10:15:10+00') ->> 'key_alias', 'a1', 'the preferred group serves first, by its first key');
select is(pg_temp.r('2026-11-21 10:15:11+00') ->> 'quota_group', 'proj-a', 'keys of one project share one quota group');
select is(pg_temp.r('2026-11-21 10:15:12+00', 10, array['00000000-0000-0000-0000-0000000000a1'::uuid]) ->> 'key_alias', 'a2',
  'an excluded key is replaced by another key of the same group');
-- proj-a used its 3 RPM: the next request goes to the lower priority group.
select is(pg_temp.r('2026-11-21 10:15:13+00') ->> 'key_alias', 'b1', 'a full group hands over to the next priority');
select is((select rpm_used from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'test-model'), 3,
  'the shared group counted 3 requests from two keys');
select is(pg_temp.r('2026-11-21 10:15:14+00') ->> 'key_alias', 'b1', 'b1 has room for a second request');
select is(pg_temp.r('2026-11-21 10:15:15+00') ->> 'key_alias', 'b1', 'b1 has room for a third request');

-- Both groups full: refused with the exact wait until the earliest window has room: its oldest
-- admission (10:15:10) leaves the 61 s window (60 s + the 1 s guard) at 10:16:11.
select is(pg_temp.r('2026-11-21 10:15:42.5+00'),
  jsonb_build_object('ok', false, 'limit', 'rpm', 'cause', 'window_full', 'retry_after_ms', 28500,
    'retry_at', '2026-11-21T10:16:11+00:00', 'model', 'test-model', 'max_tokens', null, 'recheck_after_ms', null),
  'over RPM everywhere: refused with limit rpm and the exact wait until a window has room');
select is((select count(*)::int from public.google_ai_attempts where status = 'refused' and limit_hit = 'rpm'), 1,
  'the refusal is in the attempt log');

-- The window slides (60 s + the 1 s guard): at :00 the last 61 s still hold 3 admissions of each
-- group; the preferred group's oldest one (10:15:10) leaves it at 10:16:11.
select is(pg_temp.r('2026-11-21 10:16:00+00') - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'rpm', 'cause', 'window_full', 'retry_after_ms', 11000,
    'retry_at', '2026-11-21T10:16:11+00:00'),
  'at the next :00 the sliding window is still full: refused until its oldest admission leaves');
select is(pg_temp.r('2026-11-21 10:16:11+00') ->> 'key_alias', 'a1', 'the oldest admission left the window: the preferred group serves again');
select is((select rpm_used from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'test-model'), 1,
  'RPM restarts at the minute boundary');
select is((select rpd_used from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'test-model'), 4,
  'RPD carries across the minute boundary');
select is(pg_temp.r('2026-11-21 10:17:00+00') ->> 'key_alias', 'a1', 'fifth request of the day in proj-a');

-- RPD: proj-a has used 5 of 5 today. b1 has used 3 (RPD 5).
select is(pg_temp.r('2026-11-21 10:18:00+00') ->> 'key_alias', 'b1', 'a group out of RPD hands over to the next');
select is(pg_temp.r('2026-11-21 10:19:00+00') ->> 'key_alias', 'b1', 'b1 fifth request of the day');
select is(pg_temp.r('2026-11-21 10:20:00+00') - 'retry_at' - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'rpd', 'cause', 'day_exhausted', 'retry_after_ms', 78005000),  -- 10:20 to 08:00:05 next day
  'out of RPD everywhere: refused until Pacific midnight (08:00 UTC in winter) plus the 5 s day guard');
select is((pg_temp.r('2026-11-22 07:59:59+00') ->> 'limit'), 'rpd', 'still the same Pacific day one second before midnight');
select is(pg_temp.r('2026-11-22 08:00:00+00') ->> 'limit', 'rpd',
  'at midnight the day guard still counts the day before (a lagging clock could land the call in it)');
select is(pg_temp.r('2026-11-22 08:00:05+00') ->> 'key_alias', 'a1', 'Pacific midnight plus the guard opens a new day');

-- TPM: input tokens per minute, all-or-nothing with RPM.
select is(pg_temp.r('2026-11-22 09:00:01+00', 600) ->> 'key_alias', 'a1', '600 of 1000 tokens fit');
select is(pg_temp.r('2026-11-22 09:00:02+00', 600) ->> 'key_alias', 'b1', '600 more do not fit proj-a: b1 takes them');
select is(pg_temp.r('2026-11-22 09:00:03+00', 500) ->> 'limit', 'tpm', '500 more fit nowhere this minute: refused with tpm');
select is((select rpm_used from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'test-model'), 1,
  'a refusal books nothing (all-or-nothing across RPM, TPM, RPD)');
select is(pg_temp.r('2026-11-22 09:00:04+00', 400) ->> 'key_alias', 'a1', '400 still fit proj-a exactly to its TPM');
select is(pg_temp.r('2026-11-22 09:00:05+00', 1001) - 'model',
  jsonb_build_object('ok', false, 'limit', 'too_large', 'cause', 'too_large', 'retry_after_ms', null, 'retry_at', null,
    'max_tokens', 1000,
    'recheck_after_ms', null),
  'a request larger than TPM can never fit: too_large, no retry time');

-- Headroom: among equal priorities the group with the most room goes first.
update public.google_ai_api_keys set priority = 1 where key_alias = 'b1';
-- Today proj-a has used 3 of 5 RPD (headroom 0.4), b1 1 of 5 (0.8).
select is(pg_temp.r('2026-11-22 09:01:00+00') ->> 'key_alias', 'b1', 'equal priority: the group with more headroom goes first');
select is(pg_temp.r('2026-11-22 09:01:01+00') ->> 'key_alias', 'b1', 'b1 still has more (min of 2/3 RPM, 3/5 RPD left)');
select is(pg_temp.r('2026-11-22 09:01:02+00') ->> 'key_alias', 'a1', 'now proj-a has more (2/5 RPD left vs 1/3 RPM)');

-- Cooldown: a resting group is skipped; all resting: refused until the earliest end.
select ok((public.google_ai_cooldown('proj-a', 'test-alias', '2026-11-22 09:02:30+00') ->> 'ok')::boolean, 'cooldown accepted (by alias)');
select is(pg_temp.r('2026-11-22 09:02:00+00') ->> 'key_alias', 'b1', 'a cooling group is skipped');
select ok((public.google_ai_cooldown('key:00000000-0000-0000-0000-0000000000b1', 'test-model', '2026-11-22 09:02:20+00') ->> 'ok')::boolean,
  'second cooldown accepted');
select is(pg_temp.r('2026-11-22 09:02:10+00') - 'retry_at' - 'model' - 'max_tokens' - 'recheck_after_ms',
  jsonb_build_object('ok', false, 'limit', 'cooldown', 'cause', 'upstream_cooldown', 'retry_after_ms', 10000),
  'every group cooling: refused until the earliest cooldown ends');

-- A counter row that is missing when the lock is taken (first use, or deleted by housekeeping
-- between the candidate read and the lock) is created and counted, never booked uncounted: with one
-- group (the booking waits for the row's lock) and with two (it tries each with SKIP LOCKED first).
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('ghost-model', 3, 1000, 5),
  ('ghost-model-2', 3, 1000, 5);
insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, priority, models) values
  ('00000000-0000-0000-0000-0000000000c1', 'c1', 'KEY_C1', 'ghost', 1, '{ghost-model}'),
  ('00000000-0000-0000-0000-0000000000c2', 'c2', 'KEY_C2', 'ghost-2a', 1, '{ghost-model-2}'),
  ('00000000-0000-0000-0000-0000000000c3', 'c3', 'KEY_C3', 'ghost-2b', 1, '{ghost-model-2}');
select is(pg_temp.reserve_at('2026-11-22 09:03:00+00', array['ghost-model'], 7, 'pgtap', null, null)
            ->> 'quota_group', 'ghost', 'the only group books on a missing row');
select is((select (rpm_used, tpm_used, rpd_used)::text from public.google_ai_usage_counters where quota_group = 'ghost'),
  '(1,7,1)', 'and the booking is counted in a new row');
select ok((pg_temp.reserve_at('2026-11-22 09:03:00+00', array['ghost-model-2'], 7, 'pgtap', null, null)
            ->> 'ok')::boolean, 'one of two groups books on a missing row too');
select is((select sum(rpm_used)::int from public.google_ai_usage_counters where model = 'ghost-model-2'), 1, 'and is counted');

-- A limit of 0 closes the model: nothing is admitted, whatever the margin.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd, safety_margin) values ('closed-model', 10, 1000, 0, 0.5);
select is(pg_temp.reserve_at('2026-11-22 09:04:00+00', array['closed-model'], 1, 'pgtap', null, null) ->> 'limit', 'rpd',
  'RPD 0 admits nothing');
select is(public.google_ai_effective_limit(1, 0.5), 1, 'a positive limit never drops to 0 through the margin');

-- No key, unknown model.
update public.google_ai_api_keys set is_active = false;
select is(pg_temp.r('2026-11-22 09:05:00+00') ->> 'limit', 'no_active_key', 'no active key: no_active_key');
select is(pg_temp.reserve_at('2026-11-22 09:05:00+00', array['no-such-model'], 1, 'pgtap', null, null) ->> 'limit', 'unknown_model',
  'an unknown model is refused as unknown_model');

-- Headroom is the smallest remaining fraction, 1 - used / limit: at RPM 2 and RPD 1000, a group that
-- used 1 of the minute has 0.5 left, one that used 400 of the day 0.6.
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('rank-model', 2, null, 1000);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, models) values
  ('ra', 'KEY_RA', 'proj-ra', array['rank-model']), ('rb', 'KEY_RB', 'proj-rb', array['rank-model']);
insert into public.google_ai_usage_counters (quota_group, model, minute_bucket, rpm_used, tpm_used, day_bucket, rpd_used)
values ('proj-ra', 'rank-model', '2026-11-22 09:06:00+00', 1, 0, '2026-11-22', 1),
       ('proj-rb', 'rank-model', '2026-11-22 09:05:00+00', 0, 0, '2026-11-22', 400);
select is((select quota_group from public.google_ai_candidate_groups('rank-model', '{}', 2, null, 1000,
           '2026-11-22 09:06:10+00') order by headroom desc limit 1), 'proj-rb',
  'the group with the larger fraction left goes first (1 - 1/2 against 1 - 400/1000)');

-- A refusal after every group was tried under its lock, none passed over: each group is tried once
-- (the second pass waits only for groups the first passed over).
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('tpm-full', null, 100, null);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, models) values
  ('t1', 'KEY_T1', 'proj-t1', array['tpm-full']), ('t2', 'KEY_T2', 'proj-t2', array['tpm-full']);
select pg_temp.reserve_at('2026-11-22 09:07:00+00', array['tpm-full'], 100, 'pgtap', null, null)
from generate_series(1, 2);
set local track_functions = 'all';
create temp table booking_calls as
select pg_stat_get_xact_function_calls('public.google_ai_book_group'::regproc) as before;
select is(pg_temp.reserve_at('2026-11-22 09:07:10+00', array['tpm-full'], 50, 'pgtap', null, null)
            ->> 'limit', 'tpm', 'both groups full of tokens: refused tpm');
select is(pg_stat_get_xact_function_calls('public.google_ai_book_group'::regproc) - coalesce(b.before, 0), 2::bigint,
  'each of the two groups was tried once')
from booking_calls b;

select * from finish();
rollback;
