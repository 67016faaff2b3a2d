-- The call llm-invoke writes successes with (one, or a batch of one counter row's: store/pg-store.ts),
-- before the answer leaves where the provider's room is near its end (llm-invoke/attempt/room.ts), else
-- after it: google_ai_finalize_calls (below) in its own transaction, committed without
-- waiting for the disk, then a second transaction that waits for a flush covering it, as the
-- reservation does (85_reserve_call.sql). The finalize locks its quota group's counter row last and
-- holds it until its transaction ends; with a synchronous commit that is until the flush, and the
-- group's admissions would wait for this write's disk. Here the lock goes at the first commit; an
-- answer that waits for the finalize leaves once it (and the rest it wrote) is on disk.
set check_function_bodies = off;

-- The admissions of finalizes written together (google_ai_finalize_calls) settled: p_atts their attempt rows
-- as written, in their counter rows' order, p_outcomes theirs. Each is settled as google_ai_settle_call
-- settles one, but the calls of one counter row are settled in hand (google_ai_call_counted,
-- google_ai_admission_settled) and the row written once (google_ai_write_settled), as one settle after
-- another would leave it: each settle's lookup and write of the row was most of its time (measured at 16
-- callers). A call whose settle writes more of the row (a bucket's word, the limits it states) writes what
-- is in hand first and settles alone.
CREATE OR REPLACE FUNCTION public.google_ai_settle_calls(p_atts public.google_ai_attempts[],
    p_outcomes public.google_ai_attempt_outcome[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_att public.google_ai_attempts;
  v_tokens integer;
  v_model public.google_ai_model_limits;
  v_held public.google_ai_usage_counters;  -- the counter row in hand (locked), settled so far
begin
  for i in 1 .. coalesce(cardinality(p_atts), 0) loop
    v_att := p_atts[i];
    if (p_outcomes[i]).room_until is not null or (p_outcomes[i]).stated_limits is not null then
      if v_held.id is not null then
        perform public.google_ai_write_settled(v_held);
        v_held := null;
      end if;
      perform public.google_ai_settle_call(v_att, p_outcomes[i]);
      continue;
    end if;
    v_tokens := public.google_ai_call_counted(v_att, p_outcomes[i]);
    v_model := (select l from public.google_ai_model_limits l where l.model = v_att.model);
    if v_held.id is null or (v_held.quota_group, v_held.model)
                           is distinct from (v_att.quota_group, coalesce(v_model.limit_pool, v_att.model)) then
      if v_held.id is not null then
        perform public.google_ai_write_settled(v_held);
      end if;
      v_held := (select u from public.google_ai_usage_counters u
                 where u.quota_group = v_att.quota_group and u.model = coalesce(v_model.limit_pool, v_att.model)
                 for update);
    end if;
    if v_held.id is not null then
      v_held := public.google_ai_admission_settled(v_held, v_model, v_att, v_tokens, false);
    end if;
  end loop;
  if v_held.id is not null then
    perform public.google_ai_write_settled(v_held);
  end if;
end
$$;

-- The outcomes of a batch (google_ai_finalize_calls: p_ids its calls, p_outcomes theirs, p_open their open attempt
-- rows, p_order the calls in their counter rows' order) that carry the provider's room (a success's, a cut's),
-- weighed in that order before any counter row is locked: where the room is near its end the rest it asks is
-- written (google_ai_room_rest) and the outcome's room_until cleared, so that its settle does not weigh it again.
-- The answer is p_outcomes with those cleared.
CREATE OR REPLACE FUNCTION public.google_ai_rooms_weighed(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[],
    p_open public.google_ai_attempts[], p_order integer[]) RETURNS public.google_ai_attempt_outcome[]
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_outcome public.google_ai_attempt_outcome;
  c record;
begin
  for c in
    select a, t.n from unnest(p_order) with ordinality t(n, k)
    join unnest(p_open) a on a.reservation_id = p_ids[t.n]
    where (p_outcomes[t.n]).room_until is not null
    order by t.k
  loop
    v_outcome := p_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_outcome.room_until := null;
      p_outcomes[c.n] := v_outcome;
    end if;
  end loop;
  return p_outcomes;
end
$$;

-- The finalizes that met in one worker while its last ones were being written (p_calls: a JSON array of
-- {reservation_id, outcome}, each outcome read as google_ai_finalize reads it), written in one transaction: one
-- commit, one wait for the disk, where each alone would hold its group's counter row through a wait of its own. Each
-- call is written as google_ai_finalize writes it; the answer is its answers, in the calls' order. A call that fails
-- fails them all (the caller then sends them one by one). Rows are locked in the one global order
-- (docs/architecture.md, §2): the calls' open attempt rows, their tokens, their clients, service callers' budgets
-- (each sorted), then the counter rows, last, the calls taken in their counter rows' order (quota group, then the
-- model's pool or the model: models of one pool share a row); so neither a reservation nor another batch nor a
-- single finalize waits in a ring with this one. (Riding in a reservation CALL, after its bookings,
-- 87_calls_together.sql, none of its waits lasts more than 5 ms.) A success that carries the provider's remaining
-- counts has its margin read and its rest written (google_ai_room_rest) before the first counter row is locked, the
-- calls in their counter rows' order; the calls' rows but the counter rows are then written
-- (google_ai_write_outcome's steps, each one statement for all the calls: google_ai_write_attempts,
-- google_ai_record_successes), and only then their admissions settled (google_ai_settle_calls), so a counter row is
-- held for its settles alone, not through the other calls' writes (a bucket's word stays with its call:
-- google_ai_settle_call moves the bucket on the counter row). The calls' open attempt rows are found by their key,
-- whatever the log held when the connection planned the statement: the plan is kept for the connection's life, and
-- one made on a small log (a new project, a fresh database) scans the whole log on every call as it grows (measured
-- at 16 callers with 3,500 rows: 480 µs a call of six finalizes, 75 µs by the index); planned with sequential scans
-- off, it reads the unique index. What the calls hold is read with them, so that a statement that would lock or
-- weigh nothing is not run (a plan started and stopped each).
CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_ids uuid[];
  v_outcomes public.google_ai_attempt_outcome[];
  v_open public.google_ai_attempts[];
  v_answers jsonb[];
  v_order integer[];  -- the calls in their counter rows' order, each step's
  v_written public.google_ai_attempts[];  -- each call's attempt row as written (google_ai_write_attempts)
  -- Those written, with their outcomes, in the counter rows' order: to record, then to settle.
  v_atts public.google_ai_attempts[] := '{}'::public.google_ai_attempts[];
  v_outs public.google_ai_attempt_outcome[] := '{}'::public.google_ai_attempt_outcome[];
  v_until timestamptz;
  i integer;
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
  -- What the calls hold (above): an outcome with the provider's room, a token's call, a client's, a service's.
  v_room boolean;
  v_tokens boolean;
  v_clients boolean;
  v_service boolean;
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(e.o order by e.n), '{}'), coalesce(bool_or((e.o).room_until is not null), false)
  into v_ids, v_outcomes, v_room
  from (select e.call, e.n,
          pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome, e.call -> 'outcome') o
        from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n)) e;
  perform pg_catalog.set_config('enable_seqscan', 'off', true);  -- (by their key: above)
  select coalesce(array_agg(o.a order by (o.a).id), '{}'), coalesce(bool_or((o.a).token_id is not null), false),
    coalesce(bool_or((o.a).client_id is not null), false), coalesce(bool_or((o.a).client_id is null), false)
  into v_open, v_tokens, v_clients, v_service
  from (select a from public.google_ai_attempts a
        where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update) o;
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  v_answers := pg_catalog.array_fill(null::jsonb, array[cardinality(v_ids)]);
  if v_tokens then
    perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  end if;
  if v_clients then
    perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id
    for update;
  end if;
  if v_service then
    perform from public.google_ai_caller_budgets b
    where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  end if;
  if cardinality(v_ids) = 1 then
    v_order := '{1}';
  else
    v_order := array(select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
      left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
      left join public.google_ai_model_limits l on l.model = a.model
      order by a.quota_group, coalesce(l.limit_pool, a.model), g.n);
  end if;
  if v_room then
    v_outcomes := public.google_ai_rooms_weighed(v_ids, v_outcomes, v_open, v_order);
  end if;
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
$$;

-- A procedure, so that it can COMMIT: invoker, with no SET clause and every name schema-qualified (a
-- SET clause or SECURITY DEFINER forbids a COMMIT), called alone (`call …` as its own statement, never
-- inside a transaction block: a CALL there cannot COMMIT and fails). p_calls is
-- google_ai_finalize_calls' (each call {reservation_id, outcome}; llm-invoke sends one, or a batch);
-- o_answers its answer (google_ai_finalize's answers, in the calls' order).
CREATE OR REPLACE PROCEDURE public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb)
    LANGUAGE plpgsql
    AS $$
begin
  -- The finalize: its commit does not wait for the disk, so the counter row's lock goes with it.
  perform pg_catalog.set_config('synchronous_commit', 'off', true);
  o_answers := public.google_ai_finalize_calls(p_calls => p_calls);
  commit;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the finalize's commit written before it.
  perform pg_catalog.set_config('synchronous_commit', 'on', true);
  perform pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;
