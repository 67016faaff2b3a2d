-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A chain's later models are read only once its first model is passed over; a passed-over
--   model's bookkeeping is google_ai_pass_over
set check_function_bodies = off;

drop function if exists "public"."google_ai_fallback_chain"(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone, OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer, OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid);

CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_first_only boolean DEFAULT false, OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer, OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid, OUT o_complete boolean)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1,
         not (p_first_only and p_queue_ticket is null and cardinality(p_models) > 1)
    into o_names, o_models, o_retired, o_answer_of, o_first, o_complete;
  if p_token_hash is not null then
    select public.google_ai_token_models(t, c), t.id, c.id, 'client:' || c.name
      into v_allowed, o_token_id, o_client_id, o_caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    -- (Read in part, the chain ends after its first model's links, unless one of them is retired.)
    if v_at = 2 and not o_complete then
      exit when not (true = any (o_retired));
      o_complete := true;
    end if;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (o_models);
      exit when cardinality(o_models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      o_names := o_names || v_name;
      o_models := o_models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      o_retired := o_retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      o_answer_of := o_answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
  end loop;
  if o_complete and not (false = any (o_retired)) then
    o_retired := array_fill(false, array[cardinality(o_models)]);
  end if;
  if p_queue_ticket is not null then
    o_first := coalesce(array_position(o_models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_pass_over(p_request public.google_ai_request, p_asked text, p_model text, p_try public.google_ai_admission_verdict, p_caller text, p_client_id uuid, p_token_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
begin
  if p_request.queue_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_request.queue_ticket and q.model = p_model;
  end if;
  if not coalesce(p_try.limit_hit = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0, false) then
    p_request.model := p_asked;
    p_request.caller := coalesce(p_caller, p_request.caller, 'token');
    p_request.client_id := p_client_id;
    p_request.token_id := p_token_id;
    perform public.google_ai_log_refusal(p_request, p_model, p_try.limit_hit, p_try.cause, p_try.retry_after_ms);
  end if;
  return jsonb_build_object('model', p_model, 'limit', p_try.limit_hit, 'cause', p_try.cause,
    'retry_after_ms', p_try.retry_after_ms);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try public.google_ai_admission_verdict;
  v_served boolean := false;  -- v_try is the answer: admitted, queued, or a refusal no other model can change
  v_best jsonb;
  v_refusals public.google_ai_admission_verdict[];   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, cause, retry_after_ms} of each model passed over
  v_passed text[] := '{}'::text[];   -- the models passed over
  v_chain_at timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());  -- both reads of the chain on one day
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  -- The first model's links; once they are passed over, the whole chain read again, less the models passed
  -- over (a row may have changed between the two reads).
  v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at, true);
  <<reads>>
  for v_read in 1 .. 2 loop
    for i in v_chain.o_first .. cardinality(v_chain.o_models) loop
      continue when v_chain.o_models[i] = any (v_passed);
      if v_chain.o_retired[i] then
        v_try := row(false, 'retired', 'retired', null, null, v_chain.o_models[i], null, null, null,
          jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
            'model', v_chain.o_models[i]))::public.google_ai_admission_verdict;
      else
        begin
          p_request.model := v_chain.o_names[i];
          p_request.output_tokens := p_output_tokens[v_chain.o_answer_of[i]];
          v_try := public.google_ai_admit_at(p_now, p_request);
          if not v_try.ok and v_try.ticket is null and (v_try.limit_hit = any (c_model_limits)
                                                        or public.google_ai_queue_turns(v_try.limit_hit) is not null)
          then
            raise exception using errcode = 'EF001', message = 'model refused: try the next';
          end if;
          v_served := true;
        exception when sqlstate 'EF001' then
          null; -- rolled back: no lock, row or ticket change of this model's try is left
        end;
      end if;
      exit reads when v_served;
      v_passed := v_passed || v_chain.o_models[i];
      v_refusals := v_refusals || v_try;
      v_steps := v_steps || jsonb_build_array(public.google_ai_pass_over(p_request, p_models[1],
        v_chain.o_models[i], v_try, v_chain.o_caller, v_chain.o_client_id, v_chain.o_token_id));
    end loop;
    exit when v_chain.o_complete;
    v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at);
  end loop;

  if v_served then
    if v_try.model is distinct from v_chain.o_models[1] then
      -- The rows of a fallback name the model the request asked for.
      if v_try.ok then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = v_try.reservation_id;
      elsif v_try.ticket is not null then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = v_try.ticket;
      end if;
    end if;
    return v_try.answer || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.answer into v_best from unnest(v_refusals) with ordinality r
  order by r.retry_at nulls last, (r.limit_hit = 'retired'), r.ordinality
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_request public.google_ai_request, p_limits public.google_ai_model_limits, p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := public.google_ai_refusal_figures(p_now, p_limits, p_refusal, p_request.requests,
    p_request.exclude_key_ids);
begin
  p_refusal.cause := coalesce(v_said ->> 'cause', p_refusal.cause);
  v_reopens_at := coalesce((v_said ->> 'retry_at')::timestamptz, v_reopens_at);
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_pass_over logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return row(false, 'withdrawn', 'shut_down', null, null, p_limits.model, p_limits.successor, null, null,
        jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
          'model', p_limits.model) || v_said)::public.google_ai_admission_verdict;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return row(false, v_limit, p_refusal.cause, public.google_ai_ms_until(v_wait.expected, p_now), v_wait.expected,
      p_limits.model, null, null, coalesce(p_refusal.ticket, p_refusal.new_ticket),
      v_wait.answer || v_said)::public.google_ai_admission_verdict;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_refusal.ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_refusal.ticket;
  end if;
  if v_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_request.wait_left_ms, 0) > 0 then v_wait.turn_at else p_refusal.turn_at end,
               v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if v_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_refusal.booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_request.wait_ms, 0) > 0 and p_request.request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = v_limit, refusal_cause = p_refusal.cause, retry_after_ms = v_retry_ms, wait_ms = p_request.wait_ms,
      estimated_tokens = p_request.estimated_tokens
    where a.request_id = p_request.request_id and a.caller = p_request.caller and a.attempt = p_request.attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_request.wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (v_limit = 'no_active_key' and coalesce(cardinality(p_request.exclude_key_ids), 0) > 0)
     and (coalesce(p_request.wait_ms, 0) = 0 or p_request.request_id is null or not found) then
    perform public.google_ai_log_refusal(p_request, coalesce(p_limits.model, p_request.model), v_limit,
      p_refusal.cause, v_retry_ms);
  end if;
  return row(false, v_limit, p_refusal.cause, v_retry_ms, v_reopens_at, p_limits.model, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at, 'model', p_limits.model,
      'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said
    )::public.google_ai_admission_verdict;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid, p_now timestamp with time zone, p_first_only boolean, OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer, OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid, OUT o_complete boolean) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_pass_over(p_request public.google_ai_request, p_asked text, p_model text, p_try public.google_ai_admission_verdict, p_caller text, p_client_id uuid, p_token_id uuid) from public, anon, authenticated, service_role;
