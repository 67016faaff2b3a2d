-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a batch's counter-row order is computed once, for the room loop and the writes; a batch's
--   successes' rows in one statement
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
  v_outcome public.google_ai_attempt_outcome;
  v_order integer[];  -- the calls in their counter rows' order, each step's
  v_written public.google_ai_attempts[];  -- each call's attempt row as written (google_ai_write_attempts)
  -- Those written, with their outcomes, in the counter rows' order: to record, then to settle.
  v_atts public.google_ai_attempts[] := '{}'::public.google_ai_attempts[];
  v_outs public.google_ai_attempt_outcome[] := '{}'::public.google_ai_attempt_outcome[];
  v_until timestamptz;
  c record;
  i integer;
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
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  v_order := array(select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n);
  for c in
    select a, t.n from unnest(v_order) with ordinality t(n, k)
    join unnest(v_open) a on a.reservation_id = v_ids[t.n]
    where (v_outcomes[t.n]).room_until is not null
    order by t.k
  loop
    v_outcome := v_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_outcome.room_until := null;  -- (weighed: its settle does not weigh it again)
      v_outcomes[c.n] := v_outcome;
    end if;
  end loop;
  -- Each row but the counter row, a step at a time for all the calls (google_ai_write_outcome's steps): the
  -- attempt rows, the successes' rows, then the rest outcomes ask and withdrawn models, in order.
  v_written := public.google_ai_write_attempts(v_ids, v_outcomes);
  foreach i in array v_order loop
    continue when (v_written[i]).id is null;
    v_atts[cardinality(v_atts) + 1] := v_written[i];
    v_outs[cardinality(v_outs) + 1] := v_outcomes[i];
  end loop;
  perform public.google_ai_record_successes(v_atts, v_outs);
  foreach i in array v_order loop
    if (v_written[i]).id is not null then
      v_until := case when public.google_ai_outcome_asks_rest(v_outcomes[i])
                      then public.google_ai_rest_asked(v_written[i], v_outcomes[i]) end;
      v_answers[i] := jsonb_build_object('ok', true, 'status', (v_written[i]).status, 'cooldown_until', v_until);
    elsif public.google_ai_outcome_kind(v_outcomes[i]) = 'withdrawn' then
      v_answers[i] := public.google_ai_withdraw_attempt(v_ids[i], v_outcomes[i]);
    else
      v_answers[i] := public.google_ai_not_open(v_ids[i]);
    end if;
  end loop;
  -- Then the counter rows, each held from its first settle to the commit: for the settles alone.
  perform public.google_ai_settle_calls(v_atts, v_outs);
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_successes(p_atts public.google_ai_attempts[], p_outcomes public.google_ai_attempt_outcome[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  with x as materialized (
    select p_atts[g.n] as a, p_outcomes[g.n] as o, g.n from pg_catalog.generate_subscripts(p_atts, 1) g(n)
  ), kept as (
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    select distinct on ((x.a).caller, (x.a).request_id)
      (x.a).caller, (x.a).request_id, 'done', (x.a).model, (x.o).response, now(), null::timestamptz
    from x
    where (x.o).response is not null and (x.a).request_id is not null and (x.a).status = 'succeeded'
    order by (x.a).caller, (x.a).request_id, x.n desc
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null)
  insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
  select (x.a).model, (x.o).input_tokens, (x.o).output_tokens,
    coalesce((x.o).input_tokens, 0) + coalesce((x.o).output_tokens, 0),
    coalesce((x.a).request_id, (x.a).reservation_id::text),
    jsonb_build_object('source', 'eve-llm-gateway', 'caller', (x.a).caller, 'key_alias', (x.a).key_alias,
      'attempt', (x.a).attempt, 'reservation_id', (x.a).reservation_id)
      || case when (x.a).status = 'cut' then jsonb_build_object('cut_by', (x.o).cut_by) else '{}' end
  from x
  where (x.a).status in ('succeeded', 'cut')
  order by x.n;
end
$function$
;
