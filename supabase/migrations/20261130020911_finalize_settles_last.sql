-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A batch of finalizes writes every call's rows before it settles any admission, so its
--   counter row is held for the settles alone
set check_function_bodies = off;

do $migration$ begin
  if pg_catalog.to_regtype('"public"."google_ai_outcome_written"') is null then
    create type "public"."google_ai_outcome_written" as ("att" public.google_ai_attempts, "answer" jsonb);
  end if;
end $migration$;

CREATE OR REPLACE FUNCTION public.google_ai_write_outcome(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome)
 RETURNS public.google_ai_outcome_written
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
  -- google_error: upstream_error's former name, taken until the next release (a finalize logged
  -- before it replays) and written as upstream_error.
  v_kind text := case p_outcome.kind when 'google_error' then 'upstream_error' else p_outcome.kind end;
begin
  if v_kind = 'withdrawn' then
    return row(null, public.google_ai_withdraw_attempt(p_reservation_id, p_outcome))::public.google_ai_outcome_written;
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

  update public.google_ai_attempts a set
    status = v_kind,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_outcome.input_tokens,
    output_tokens = p_outcome.output_tokens,
    http_status = case when v_kind = 'cut' then coalesce(p_outcome.http_status, 200) else p_outcome.http_status end,
    error_code = case when v_kind = 'cut' then 'stream_cut_by_' || p_outcome.cut_by
                      else left(p_outcome.error_code, 200) end,
    quota_id = left(p_outcome.quota_id, 200),
    error_message = left(p_outcome.error_message, 1000),
    latency_ms = p_outcome.latency_ms,
    quota_cause = p_outcome.quota_cause,
    service_tier = left(p_outcome.service_tier, 20),
    served_tier = left(p_outcome.served_tier, 20),
    -- (greatest() ignores a null: a time not known stays null)
    added_ms = case when p_outcome.added_ms is not null then greatest(0, p_outcome.added_ms) end,
    first_byte_ms = case when p_outcome.first_byte_ms is not null then greatest(0, p_outcome.first_byte_ms) end,
    cached_input_tokens = p_outcome.cached_input_tokens,
    thinking_tokens = p_outcome.thinking_tokens,
    cache_write_1h_tokens = p_outcome.cache_write_1h_tokens, cache_write_5m_tokens = p_outcome.cache_write_5m_tokens,
    cost_usd = public.google_ai_call_cost(a.model, p_outcome)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return row(null, public.google_ai_not_open(p_reservation_id))::public.google_ai_outcome_written;
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if v_kind in ('succeeded', 'cut') then
    perform public.google_ai_record_success(v_att, p_outcome);
  end if;
  -- What the outcome asks for beyond its row, when it asks (most successes do not): a key out of
  -- rotation, a rest.
  if p_outcome.cooldown_until is not null or p_outcome.cooldown_until_provider_midnight
     or coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID') then
    v_until := public.google_ai_rest_asked(v_att, p_outcome);
  end if;
  return row(v_att, jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until))
    ::public.google_ai_outcome_written;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_attempt(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_written public.google_ai_outcome_written := public.google_ai_write_outcome(p_reservation_id, p_outcome);
begin
  if (v_written.att).id is not null then
    perform public.google_ai_settle_call(v_written.att, p_outcome);
  end if;
  return v_written.answer;
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
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome,
      case when pg_catalog.jsonb_typeof(e.call -> 'outcome') = 'object' then e.call -> 'outcome'
           else public.google_ai_former_outcome(e.call) end) order by e.n), '{}')
  into v_ids, v_outcomes
  from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n);
  v_open := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update);
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

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on type public.google_ai_outcome_written is 'Finalize''s first half: the attempt row written, its admission still to settle (null where none is), and finalize''s answer.';
revoke all on function public.google_ai_write_outcome(p_reservation_id uuid, p_outcome public.google_ai_attempt_outcome) from public, anon, authenticated, service_role;
