-- The reservation's hot path: the arithmetic helpers are inlined into their callers' plans (no
-- call left to parse and plan again), the look-ups keep their answers, and none of them carries
-- more privilege than before.
begin;
create extension if not exists pgtap with schema extensions;
select plan(38);
-- The clock seam with the entry's arguments by name (it takes them as one google_ai_reservation).
create function pg_temp.reserve_at(p_now timestamptz, p_models text[], p_estimated_tokens integer,
    p_caller text default null, p_token_hash text default null, p_request_id text default null,
    p_exclude_key_ids uuid[] default '{}', p_attempt integer default 1, p_idempotent boolean default false,
    p_priority text default null, p_wait_left_ms integer default null) returns jsonb language sql as $$
  select public.google_ai_reserve_models_at(p_now, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, 0, '{}', p_idempotent, p_priority, null, p_wait_left_ms, null, null,
    null, null, null)::public.google_ai_reservation) $$;

-- The fast booking as it is for a model no share is kept of: without the default share of `interactive`.
update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null;

-- A function inlined by the planner leaves no call of itself in the plan.
create function pg_temp.plan_of(p_query text) returns text language plpgsql as $$
declare
  v_line text;
  v_plan text := '';
begin
  for v_line in execute 'explain (verbose) ' || p_query loop
    v_plan := v_plan || v_line || E'\n';
  end loop;
  return v_plan;
end
$$;

select unalike(pg_temp.plan_of('select public.google_ai_minute_window(now())'), '%google_ai_minute_window%',
  'the minute window is inlined (stable, as date_trunc with a time zone is)');
select unalike(pg_temp.plan_of('select public.google_ai_pacific_day(now()), public.google_ai_pacific_midnight_after(now())'),
  '%google_ai_pacific%', 'the Pacific day and its next midnight are inlined');
select unalike(pg_temp.plan_of('select public.google_ai_effective_limit(100, 0.1)'), '%google_ai_effective_limit%',
  'the effective limit is inlined');
select unalike(pg_temp.plan_of('select public.google_ai_ms_until(now(), now()), public.google_ai_request_counts(2)'),
  '%google_ai_%', 'the answer''s arithmetic is inlined');
select unalike(pg_temp.plan_of($q$select * from public.google_ai_candidate_groups('m', '{}', 1, 1, 1, now())$q$),
  '%Function Scan%', 'the candidate groups are inlined where they are read');
select unalike(pg_temp.plan_of($q$select public.google_ai_booked_quota('g', m, a, 1, null, null)
    from (select (null::public.google_ai_model_limits) as m, (null::public.google_ai_counter_at) as a) x$q$),
  '%google_ai_booked_quota%', 'the quota a booking leaves is inlined into the booking''s answer');

-- Same answers as the definitions they replace.
select is(public.google_ai_pacific_day('2026-03-08 09:59:59+00'), date '2026-03-08',
  'the Pacific day across the spring change');
select is(public.google_ai_pacific_midnight_after('2026-11-01 12:00:00+00'), timestamptz '2026-11-02 08:00:00+00',
  'the next Pacific midnight after the autumn change');
select is(public.google_ai_effective_limit(10, 0.95), 1, 'a margin never closes a model');
select is(public.google_ai_ms_until(timestamptz '2026-01-01 00:00:01.0004+00', timestamptz '2026-01-01 00:00:00+00'),
  1001::bigint, 'milliseconds until a time round up');

insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases) values ('hot-model', 10, 1000, 100, '{hot}');
select is((public.google_ai_resolve_model('hot')).model, 'hot-model', 'a model resolves by alias');
select is((public.google_ai_admission_guard()).minute_guard_ms, 1000, 'the guard reads its settings');

select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}') from pg_proc p
   where p.oid in ('public.google_ai_minute_window(timestamptz)'::regprocedure,
                   'public.google_ai_pacific_day(timestamptz)'::regprocedure,
                   'public.google_ai_pacific_midnight_after(timestamptz)'::regprocedure,
                   'public.google_ai_effective_limit(integer, numeric)'::regprocedure,
                   'public.google_ai_candidate_groups(text, uuid[], integer, integer, integer, timestamptz)'::regprocedure,
                   'public.google_ai_ms_until(timestamptz, timestamptz)'::regprocedure,
                   'public.google_ai_request_counts(integer)'::regprocedure)
     and (p.prosecdef or has_function_privilege('anon', p.oid, 'execute')
          or has_function_privilege('authenticated', p.oid, 'execute'))),
  '{}'::text[], 'the inlined helpers run with their caller''s rights and are closed to anon and authenticated');

-- One booking for every request: each answer carries the quota its booking leaves, read from the
-- window the booking just wrote, whatever else was in the way (a new counter row, shares, a pace, a
-- caller's budget, the day guard).
delete from public.google_ai_api_keys;
insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('fast-model', 3, 1000, 100);
insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('f1', 'KEY_F1', 'proj-f');
create function pg_temp.r(p_at text, p_caller text default 'pgtap') returns jsonb
language sql as $$ select pg_temp.reserve_at(p_at::timestamptz, array['fast-model'], 10, p_caller, null, null) $$;

create temp table answers (n int, a jsonb);
insert into answers values (1, pg_temp.r('2026-06-10 18:00:00+00')), (2, pg_temp.r('2026-06-10 18:00:01+00'));
select is((select (a -> 'quota' ->> 'requests_left')::int from answers where n = 1), 2,
  'the first booking of a group (no counter row yet) carries its quota');
select ok((select a from answers where n = 2) ? 'quota', 'and so does the next');
select is((select a -> 'quota' from answers where n = 2),
  public.google_ai_answer_quota_at('2026-06-10 18:00:01+00', (select a - 'quota' from answers where n = 2), 'fast-model'),
  'the quota it carries is what google_ai_answer_quota reads of the same booking');
select is((select (a -> 'quota' ->> 'requests_left')::int from answers where n = 2), 1,
  'two of three requests of the window used');

select ok((pg_temp.r('2026-06-10 18:00:02+00') ->> 'ok')::boolean, 'the third fits');
select is(pg_temp.r('2026-06-10 18:00:03+00') ->> 'limit', 'rpm', 'the fourth is refused');
select is((select row(window_requests, window_tokens, rpm_used, rpd_used)::text from public.google_ai_usage_counters
           where quota_group = 'proj-f' and model = 'fast-model'),
  row(3, 30, 3, 3)::text, 'the counter row counts the three admissions, whichever booking made them');
select is((select count(*)::int from public.google_ai_attempts where model = 'fast-model' and status = 'reserved'), 3,
  'one attempt row per admission');

-- A window whose admissions left it since its last booking: the only group's row is looked at under
-- its lock, where the booking takes them off and books.
select is((pg_temp.r('2026-06-10 18:05:00+00') -> 'quota' ->> 'requests_left')::int, 2,
  'a window whose admissions all left it is booked, the three that left taken off first');
-- With room in the window each time: a share kept for a class, a caller's budget, a share that paces
-- its owner's day, the day guard.
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd) values ('fast-model', 'interactive', 1);
select is((pg_temp.r('2026-06-10 18:05:01+00') -> 'quota' -> 'kept' ->> 'rpd_for_you')::int, 1,
  'a model with a share kept for a class: the quota says what the share keeps for the admitted class');
select is((select u.day_used from public.google_ai_usage_counters c cross join lateral unnest(c.share_use) u
           join public.google_ai_quota_shares s on s.id = u.share_id
           where s.model = 'fast-model' and c.quota_group = 'proj-f'), 1,
  'and the booking counts the owner''s use of its share');
delete from public.google_ai_quota_shares where model = 'fast-model';
insert into public.google_ai_caller_budgets (caller, daily_max_requests) values ('budgeted', 50);
select ok(pg_temp.r('2026-06-10 18:05:02+00', 'budgeted') ? 'quota', 'so does a caller''s with a daily budget');
select is((select requests_today from public.google_ai_caller_budgets where caller = 'budgeted'), 1, 'which the booking counts');
select is((select (ring_low, window_requests)::text from public.google_ai_usage_counters
           where quota_group = 'proj-f' and model = 'fast-model'),
  format('(%s,3)', extract(epoch from timestamptz '2026-06-10 18:05:00+00')::bigint),
  'each booking moves the ring on past the seconds that left: the window starts at the first second still in it');
select is((select count(*)::int from public.google_ai_attempts
           where model = 'fast-model' and admitted_at >= '2026-06-10 18:05:00+00'), 3,
  'and the attempt rows record when each of the three in it was admitted');

insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('fast-paced', 100, 100000, 1000);
select ok(pg_temp.reserve_at('2026-06-10 18:10:00+00', array['fast-paced'], 10, 'pgtap', null, null) ->> 'ok' = 'true'
          and pg_temp.reserve_at('2026-06-10 18:10:01+00', array['fast-paced'], 10, 'pgtap', null, null) ? 'quota',
  'a second model books with its quota');
insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd, pace_burst) values ('fast-paced', 'interactive', 10, 5);
select is((pg_temp.reserve_at('2026-06-10 18:10:02+00', array['fast-paced'], 10, 'pgtap', null, null)
           -> 'quota' ->> 'requests_left')::int, 97,
  'a share that paces its owner''s day: booked within its burst, with its quota');

insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('fast-day', 100, 100000, 1000);
create function pg_temp.d(p_at text) returns jsonb
language sql as $$ select pg_temp.reserve_at(p_at::timestamptz, array['fast-day'], 10, 'pgtap', null, null) $$;
select ok(pg_temp.d('2026-06-11 06:59:50+00') ->> 'ok' = 'true' and pg_temp.d('2026-06-11 06:59:54+00') ? 'quota',
  'six seconds before Pacific midnight it books');
select is((pg_temp.d('2026-06-11 06:59:56+00') -> 'quota' ->> 'day_left')::int, 997,
  'within the day guard (5 s) it books, counting the request in both days, and says what is left of the day');
select is((select (rpd_used, rpd_next_used)::text from public.google_ai_usage_counters where model = 'fast-day'),
  '(3,1)', 'as the counter row records');

-- An outcome is a heap-only update of the attempt row: no index names a column it changes.
create temp table hot_before as
  select pg_stat_get_xact_tuples_updated('public.google_ai_attempts'::regclass) as upd,
         pg_stat_get_xact_tuples_hot_updated('public.google_ai_attempts'::regclass) as hot;
select is(public.google_ai_finalize((select (a ->> 'reservation_id')::uuid from answers where n = 2),
          '{"kind": "succeeded", "input_tokens": 8, "output_tokens": 2}'::jsonb) ->> 'status', 'succeeded',
          'an admission is finalized');
select is((select row(pg_stat_get_xact_tuples_updated('public.google_ai_attempts'::regclass) - upd,
                      pg_stat_get_xact_tuples_hot_updated('public.google_ai_attempts'::regclass) - hot)::text
           from hot_before), row(1, 1)::text, 'its attempt row was updated once, in place (HOT)');
select is((select coalesce(array_agg(i.indexrelid::regclass::text order by 1), '{}')
           from pg_index i where i.indrelid = 'public.google_ai_attempts'::regclass
             and (pg_get_expr(i.indpred, i.indrelid) like '%status%'
                  or exists (select 1 from pg_attribute a where a.attrelid = i.indrelid and a.attnum = any (i.indkey)
                             and a.attname in ('status', 'finished_at', 'input_tokens', 'output_tokens', 'http_status',
                                               'error_code', 'error_message', 'latency_ms')))),
  '{}'::text[], 'no index of the attempt log names a column an outcome writes');

-- Without that index, housekeeping finds reservations left without an outcome by created_at, from
-- where its last complete pass stopped (less an hour), and never from later than a day back.
create temp table passes (n int, r jsonb);
insert into passes values (1, public.google_ai_housekeeping_at('2026-06-12 12:00:00+00'));
insert into passes values (2, public.google_ai_housekeeping_at('2026-06-15 12:00:00+00'));
insert into passes values (3, public.google_ai_housekeeping_at('2026-06-15 13:00:00+00'));
select is((select (r -> 'steps' -> 'abandon_stale_reservations' ->> 'from')::timestamptz from passes where n = 2),
  timestamptz '2026-06-12 10:45:00+00', 'three days later the abandon step reads from the last pass''s cutoff, less an hour');
select is((select (r -> 'steps' -> 'abandon_stale_reservations' ->> 'from')::timestamptz from passes where n = 3),
  timestamptz '2026-06-14 12:45:00+00', 'an hour later, from a day before its own cutoff');

select * from finish();
rollback;
