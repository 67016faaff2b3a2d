-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: admit and fall back are reached only through the reservation entry: not security definer,
--   no search_path of their own (the entry's holds), plan_cache_mode kept
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_request public.google_ai_request)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_who jsonb := '{}'::jsonb;       -- a token's client and token, named in every answer
  v_credential record;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking record;          -- the booking (google_ai_book_best_group): its group and key, or when to ask again
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_request.caller := v_credential.caller;
    p_request.client_id := v_credential.client_id;
    p_request.token_id := v_credential.token_id;
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_answer is not null then
      return v_answer || v_who;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_request.estimated_tokens
                         or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens
                                            - case when v_limits.booked_output_tokens is not null
                                                   then coalesce(p_request.output_tokens, 0) else 0 end
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request.estimated_tokens, p_request.exclude_key_ids, p_now, v_now, p_request.attempt, p_request.output_tokens);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal) || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
    v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
    case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_request.token_hash is null then v_answer else v_answer || v_who end;
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
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]'::jsonb;   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, p_now);
  for i in v_chain.first .. cardinality(v_chain.models) loop
    if v_chain.retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
        'model', v_chain.models[i]);
    else
      begin
        p_request.model := v_chain.names[i];
        p_request.output_tokens := p_output_tokens[v_chain.answer_of[i]];
        v_try := public.google_ai_admit_at(p_now, p_request);
        if not (v_try ->> 'ok')::boolean and not (v_try ? 'queue')
           and ((v_try ->> 'limit') = any (c_model_limits)
                or public.google_ai_queue_turns(v_try ->> 'limit') is not null) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_answer := v_try; -- admitted, queued, or a refusal no other model can change
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_answer is not null;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_request.queue_ticket is not null then
      delete from public.google_ai_queue q
      where q.ticket_id = p_request.queue_ticket and q.model = v_chain.models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.models[i], 'limit', v_try ->> 'limit',
      'cause', v_try ->> 'cause', 'retry_after_ms', v_try -> 'retry_after_ms'));
    -- (A model without a key once the request's own exclusions are set aside is no attempt either:
    -- google_ai_refusal_at.)
    continue when v_try ->> 'limit' = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0;
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request.request_id, coalesce(v_chain.caller, p_request.caller, 'token'), v_chain.client_id,
      v_chain.token_id, v_chain.models[i], p_models[1], p_request.attempt, p_request.estimated_tokens,
      v_try ->> 'limit', v_try ->> 'cause', (v_try ->> 'retry_after_ms')::bigint, p_request.wait_ms,
      coalesce(p_request.metadata, '{}'));
  end loop;

  if v_answer is not null then
    if (v_answer ->> 'model') is distinct from v_chain.models[1] then
      -- The rows of a fallback name the model the request asked for.
      if (v_answer ->> 'ok')::boolean then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = (v_answer ->> 'reservation_id')::uuid;
      elsif v_answer ? 'queue' then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = (v_answer -> 'queue' ->> 'ticket')::uuid;
      end if;
    end if;
    return v_answer || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.value into v_best from jsonb_array_elements(v_refusals) with ordinality r(value, i)
  order by (r.value ->> 'retry_at')::timestamptz nulls last, (r.value ->> 'limit' = 'retired'), r.i
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
end
$function$
;
