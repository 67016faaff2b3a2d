-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a batch of finalizes writes each table in one statement: the attempt rows, the kept
--   answers, token_usage
set check_function_bodies = off;

drop function if exists "public"."google_ai_record_success"(p_att public.google_ai_attempts, p_outcome public.google_ai_attempt_outcome);

CREATE OR REPLACE FUNCTION public.google_ai_outcome_asks_rest(p_outcome public.google_ai_attempt_outcome)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE
AS $function$
  select coalesce(p_outcome.cooldown_until is not null or p_outcome.cooldown_until_provider_midnight
    or coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID'), false)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_outcome_kind(p_outcome public.google_ai_attempt_outcome)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_kind text := case p_outcome.kind when 'google_error' then 'upstream_error' else p_outcome.kind end;
begin
  if v_kind = 'withdrawn' then
    return v_kind;  -- (its own step reads the rest: google_ai_withdraw_attempt)
  elsif v_kind is null or v_kind not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'cut') then
    raise exception 'an outcome''s kind must be succeeded, upstream_error, network_error, timeout, cut or withdrawn'
      using errcode = '22023';
  elsif v_kind = 'cut' and (p_outcome.cut_by is null or p_outcome.cut_by not in ('client', 'upstream', 'google')) then
    raise exception 'a cut''s cut_by must be client or upstream' using errcode = '22023';
  end if;
  if not (p_outcome.quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;
  return v_kind;
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
  insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
  select distinct on ((x.a).caller, (x.a).request_id)
    (x.a).caller, (x.a).request_id, 'done', (x.a).model, (x.o).response, now(), null::timestamptz
  from (select p_atts[g.n] as a, p_outcomes[g.n] as o, g.n from pg_catalog.generate_subscripts(p_atts, 1) g(n)
        offset 0) x
  where (x.o).response is not null and (x.a).request_id is not null and (x.a).status = 'succeeded'
  order by (x.a).caller, (x.a).request_id, x.n desc
  on conflict (caller, request_id) do update set
    status = 'done', model = excluded.model, response = excluded.response,
    created_at = excluded.created_at, expires_at = null;

  insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
  select (x.a).model, (x.o).input_tokens, (x.o).output_tokens,
    coalesce((x.o).input_tokens, 0) + coalesce((x.o).output_tokens, 0),
    coalesce((x.a).request_id, (x.a).reservation_id::text),
    jsonb_build_object('source', 'eve-llm-gateway', 'caller', (x.a).caller, 'key_alias', (x.a).key_alias,
      'attempt', (x.a).attempt, 'reservation_id', (x.a).reservation_id)
      || case when (x.a).status = 'cut' then jsonb_build_object('cut_by', (x.o).cut_by) else '{}' end
  from (select p_atts[g.n] as a, p_outcomes[g.n] as o, g.n from pg_catalog.generate_subscripts(p_atts, 1) g(n)
        offset 0) x
  where (x.a).status in ('succeeded', 'cut')
  order by x.n;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_write_attempts(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[])
 RETURNS public.google_ai_attempts[]
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_atts public.google_ai_attempts[];
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
begin
  perform pg_catalog.set_config('enable_seqscan', 'off', true);
  with w as (
    update public.google_ai_attempts a set
      status = x.kind,
      finished_at = pg_catalog.clock_timestamp(),
      input_tokens = (x.o).input_tokens,
      output_tokens = (x.o).output_tokens,
      http_status = case when x.kind = 'cut' then coalesce((x.o).http_status, 200) else (x.o).http_status end,
      error_code = case when x.kind = 'cut' then 'stream_cut_by_' || (x.o).cut_by
                        else left((x.o).error_code, 200) end,
      quota_id = left((x.o).quota_id, 200),
      error_message = left((x.o).error_message, 1000),
      latency_ms = (x.o).latency_ms,
      quota_cause = (x.o).quota_cause,
      service_tier = left((x.o).service_tier, 20),
      served_tier = left((x.o).served_tier, 20),
      -- (greatest() ignores a null: a time not known stays null)
      added_ms = case when (x.o).added_ms is not null then greatest(0, (x.o).added_ms) end,
      first_byte_ms = case when (x.o).first_byte_ms is not null then greatest(0, (x.o).first_byte_ms) end,
      cached_input_tokens = (x.o).cached_input_tokens,
      thinking_tokens = (x.o).thinking_tokens,
      cache_write_1h_tokens = (x.o).cache_write_1h_tokens, cache_write_5m_tokens = (x.o).cache_write_5m_tokens,
      cost_usd = public.google_ai_call_cost(a.model, x.o)
    from (select distinct on (g.id) g.n, g.id, p_outcomes[g.n] as o,
            public.google_ai_outcome_kind(p_outcomes[g.n]) as kind
          from unnest(p_ids) with ordinality g(id, n) order by g.id, g.n) x
    -- (= any: the key read by index whatever join the plan makes)
    where a.reservation_id = any (p_ids) and a.reservation_id = x.id and a.status = 'reserved'
      and x.kind <> 'withdrawn'
    returning x.n, a)
  select array(select w.a from unnest(p_ids) with ordinality g(id, n) left join w on w.n = g.n order by g.n)
  into v_atts;
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  return v_atts;
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
  v_outcome public.google_ai_attempt_outcome;
  v_order integer[];  -- the calls in their counter rows' order, each step's
  -- Each call's attempt row as written (google_ai_write_attempts), its admission still to settle.
  v_written public.google_ai_attempts[];
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
      v_outcome.room_until := null;  -- (weighed: its settle does not weigh it again)
      v_outcomes[c.n] := v_outcome;
    end if;
  end loop;
  v_order := array(select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n);
  -- Each row but the counter row, a step at a time for all the calls (google_ai_write_outcome's steps, one
  -- statement a table): the attempt rows (every outcome checked first), the successes' rows, then what an
  -- outcome asks beyond them, and a withdrawn model's own step, in the counter rows' order.
  v_written := public.google_ai_write_attempts(v_ids, v_outcomes);
  perform public.google_ai_record_successes(array(select v_written[t.n] from unnest(v_order) t(n)),
    array(select v_outcomes[t.n] from unnest(v_order) t(n)));
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
  perform public.google_ai_settle_calls(
    array(select v_written[t.n] from unnest(v_order) t(n) where (v_written[t.n]).id is not null),
    array(select v_outcomes[t.n] from unnest(v_order) t(n) where (v_written[t.n]).id is not null));
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_write_outcome(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome)
 RETURNS public.google_ai_outcome_written
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if public.google_ai_outcome_kind(p_outcome) = 'withdrawn' then
    return row(null, public.google_ai_withdraw_attempt(p_reservation_id, p_outcome))::public.google_ai_outcome_written;
  end if;
  v_att := (public.google_ai_write_attempts(array[p_reservation_id], array[p_outcome]))[1];
  if v_att.id is null then
    return row(null, public.google_ai_not_open(p_reservation_id))::public.google_ai_outcome_written;
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if v_att.status in ('succeeded', 'cut') then
    perform public.google_ai_record_successes(array[v_att], array[p_outcome]);
  end if;
  if public.google_ai_outcome_asks_rest(p_outcome) then
    v_until := public.google_ai_rest_asked(v_att, p_outcome);
  end if;
  return row(v_att, jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until))
    ::public.google_ai_outcome_written;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_outcome_asks_rest(p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_outcome_kind(p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_record_successes(p_atts public.google_ai_attempts[], p_outcomes public.google_ai_attempt_outcome[]) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_write_attempts(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[]) from public, anon, authenticated, service_role;
