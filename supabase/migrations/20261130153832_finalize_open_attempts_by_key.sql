-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: finalize_calls finds its open attempt rows by their unique index whatever the log held
--   when the connection planned it
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_ids uuid[];
  v_outcomes public.google_ai_attempt_outcome[];
  v_open public.google_ai_attempts[];
  v_answers jsonb[];
  -- The calls whose room google_ai_room_rest has weighed already.
  v_weighed boolean[];
  v_outcome public.google_ai_attempt_outcome;
  -- Each call's attempt row as written (google_ai_write_outcome), its admission still to settle, and
  -- the calls to settle in the order they were written (their counter rows').
  v_written public.google_ai_attempts[];
  v_write public.google_ai_outcome_written;
  v_to_settle integer[] := '{}'::integer[];
  v_n integer;
  c record;
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome,
      case when pg_catalog.jsonb_typeof(e.call -> 'outcome') = 'object' then e.call -> 'outcome'
           else public.google_ai_former_outcome(e.call) end) order by e.n), '{}')
  into v_ids, v_outcomes
  from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n);
  -- Found by their key, whatever the log held when this connection planned the statement: the plan is
  -- kept for the connection's life, and one made on a small log (a new project, a fresh database) scans
  -- the whole log on every call as it grows (measured at 16 callers with 3,500 rows: 480 µs a call of
  -- six finalizes, 75 µs by the index). Planned with sequential scans off, it reads the unique index.
  perform pg_catalog.set_config('enable_seqscan', 'off', true);
  v_open := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update);
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  v_answers := pg_catalog.array_fill(null::jsonb, array[cardinality(v_ids)]);
  v_weighed := pg_catalog.array_fill(false, array[cardinality(v_ids)]);
  v_written := pg_catalog.array_fill(null::public.google_ai_attempts, array[cardinality(v_ids)]);
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  for c in
    select a, g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    where (v_outcomes[g.n]).room_until is not null
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n
  loop
    v_outcome := v_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_weighed[c.n] := true;
    end if;
  end loop;
  for c in
    select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n
  loop
    v_write := public.google_ai_write_outcome(v_ids[c.n], v_outcomes[c.n]);
    v_written[c.n] := v_write.att;
    v_answers[c.n] := v_write.answer;
    if (v_write.att).id is not null then
      v_to_settle := v_to_settle || c.n::integer;
    end if;
  end loop;
  -- Then the counter rows, each held from its first settle to the commit: for the settles alone.
  foreach v_n in array v_to_settle loop
    v_outcome := v_outcomes[v_n];
    if v_weighed[v_n] then
      v_outcome.room_until := null;
    end if;
    perform public.google_ai_settle_call(v_written[v_n], v_outcome);
  end loop;
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;
