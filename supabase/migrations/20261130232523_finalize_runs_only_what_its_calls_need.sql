-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A batch of finalizes runs no statement that would lock or weigh nothing: the tokens',
--   clients' and service callers' locks only for calls that have them, the order of one call without a query,
--   the provider's room only where an outcome carries it (google_ai_rooms_weighed)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_rooms_weighed(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[], p_open public.google_ai_attempts[], p_order integer[])
 RETURNS public.google_ai_attempt_outcome[]
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$
;

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
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_rooms_weighed(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[], p_open public.google_ai_attempts[], p_order integer[]) from public, anon, authenticated, service_role;
