-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a batch's reservations of one chain read it once: google_ai_reserve_many passes the
--   chain's first read down through google_ai_reserve_models_at to google_ai_fall_back_at (p_chain)
set check_function_bodies = off;

drop function if exists "public"."google_ai_fall_back_at"(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[]);

drop function if exists "public"."google_ai_reserve_models_at"(p_now timestamp with time zone, p_call public.google_ai_reservation);

CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[], p_chain record DEFAULT NULL::record)
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
  if p_chain is null then
    v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at,
      true);
  else
    v_chain := p_chain;
  end if;
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

CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation, p_chain record DEFAULT NULL::record)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_request public.google_ai_request;
  v_verdict public.google_ai_admission_verdict;
begin
  if p_call.models is null or cardinality(p_call.models) = 0 or cardinality(p_call.models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_call.caller is null) = (p_call.token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_call.caller = '' or array_position(p_call.models, null) is not null
     or array_position(p_call.models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_call.estimated_tokens is null or p_call.estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_call.output_tokens is not null and (cardinality(p_call.output_tokens) <> cardinality(p_call.models)
                                      or 0 > any (p_call.output_tokens)) then
    raise exception 'p_output_tokens must name one non-negative integer (or null) per model' using errcode = '22023';
  end if;
  if p_call.requests < 1 then
    raise exception 'p_requests must be a positive integer' using errcode = '22023';
  end if;
  v_request := row(p_call.models[1], p_call.caller, null, null, p_call.token_hash, p_call.request_id,
    coalesce(p_call.attempt, 1), p_call.estimated_tokens, p_call.output_tokens[1], coalesce(p_call.wait_ms, 0),
    p_call.wait_left_ms, coalesce(p_call.metadata, '{}'::jsonb), p_call.priority,
    coalesce(p_call.exclude_key_ids, '{}'), p_call.queue_ticket, coalesce(p_call.idempotent, false),
    coalesce(p_call.requests, 1), p_call.reply_by,
    -- (hold_until: the later of the two when both are named, else none)
    case when p_call.hold_until >= p_call.reply_by then p_call.hold_until
         when p_call.hold_until is not null then p_call.reply_by end,
    case when p_call.reply_by is not null then p_call.holder end);
  if cardinality(p_call.models) > 1 then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens, p_chain);
  end if;
  v_verdict := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if v_verdict.successor is not null then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  return v_verdict.answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_reserve_many(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_call public.google_ai_reservation;
  v_answers jsonb[] := '{}'::jsonb[];
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_chain record;          -- the first read of the chain of v_chain_of (google_ai_fallback_chain)
  v_chain_of text[];
begin
  perform pg_catalog.set_config('eve.batch_member', 'off', true); -- the first call waits as one alone does
  if pg_catalog.jsonb_typeof(p_calls) is distinct from 'array' or pg_catalog.jsonb_array_length(p_calls) > 16 then
    raise exception 'p_calls must be an array of at most 16 reservations' using errcode = '22023';
  end if;
  if exists (select from pg_catalog.jsonb_array_elements(p_calls) c
             where (c ->> 'caller', c ->> 'token_hash')
                   is distinct from (p_calls -> 0 ->> 'caller', p_calls -> 0 ->> 'token_hash')) then
    raise exception 'the reservations of p_calls must share one caller' using errcode = '22023';
  end if;
  for v_call in select c.* from pg_catalog.jsonb_populate_recordset(null::public.google_ai_reservation, p_calls) c loop
    -- A chain is read once for the calls that name it without a ticket (its rows do not change under
    -- the batch; counted, 220k instructions less a call in a batch of 8, of 3.54M).
    if v_call.queue_ticket is null and cardinality(v_call.models) between 2 and 4
       and array_position(v_call.models, null) is null and v_call.models is distinct from v_chain_of then
      v_chain := public.google_ai_fallback_chain(v_call.models, v_call.token_hash, null,
        pg_catalog.clock_timestamp(), true);
      v_chain_of := v_call.models;
    end if;
    begin
      v_answers := v_answers || case when v_call.queue_ticket is null and v_call.models = v_chain_of
        then public.google_ai_reserve_models_at(null, v_call, v_chain)
        else public.google_ai_reserve_models_at(null, v_call) end;
    exception when lock_not_available then
      v_answers := v_answers || '{"alone": true}'::jsonb;
    end;
    if cardinality(v_answers) = 1 then
      perform pg_catalog.set_config('lock_timeout', '50ms', true),
        pg_catalog.set_config('eve.batch_member', 'on', true);
    end if;
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true),
    pg_catalog.set_config('eve.batch_member', 'off', true);
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[], p_request public.google_ai_request, p_output_tokens integer[], p_chain record) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_reserve_models_at(p_now timestamp with time zone, p_call public.google_ai_reservation, p_chain record) from public, anon, authenticated, service_role;
