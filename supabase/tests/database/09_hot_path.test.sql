-- The reservation's hot path: the arithmetic helpers are inlined into their callers' plans (no
-- call left to parse and plan again), the look-ups keep their answers, and none of them carries
-- more privilege than before.
begin;
create extension if not exists pgtap with schema extensions;
select plan(12);

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
select unalike(pg_temp.plan_of('select public.google_ai_ms_until(now(), now()), public.google_ai_budget_left(5, 2)'),
  '%google_ai_%', 'the answer''s arithmetic is inlined');
select unalike(pg_temp.plan_of($q$select * from public.google_ai_candidate_groups('m', '{}', 1, 1, 1, now())$q$),
  '%Function Scan%', 'the candidate groups are inlined where they are read');

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
                   'public.google_ai_budget_left(bigint, bigint)'::regprocedure)
     and (p.prosecdef or has_function_privilege('anon', p.oid, 'execute')
          or has_function_privilege('authenticated', p.oid, 'execute'))),
  '{}'::text[], 'the inlined helpers run with their caller''s rights and are closed to anon and authenticated');

select * from finish();
rollback;
