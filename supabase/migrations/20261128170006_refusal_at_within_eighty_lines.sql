-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_refusal_at's no-row case for a no_active_key met through the request's own
--   exclusions folded into the insert's condition (the body within 80 lines again; behaviour unchanged)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_limits public.google_ai_model_limits, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint, p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean, p_new_ticket uuid, p_period text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_wait record;
  v_reopens_at timestamptz := p_reopens_at;
  v_recheck_at timestamptz := p_recheck_at;
  v_retry_ms bigint;
  v_said jsonb := jsonb_build_object('max_tokens', case when p_limit = 'too_large'
                                                       then coalesce(p_limits.tpm, p_limits.itpm) end)
    || case when p_limit = 'too_large' and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when p_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_period is not null then jsonb_build_object('period', p_period)
            else '{}' end;
begin
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_fall_back_at logs the model it passes over.
  if p_limit = 'shut_down' then
    if p_limits.successor is not null then
      return jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
        'model', p_limits.model) || v_said;
    end if;
    p_limit := 'withdrawn';
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now => p_now, p_model => p_limits.model,
    p_requested_model => p_requested_model, p_rpm => p_limits.rpm, p_rpd => p_limits.rpd,
    p_exclude_key_ids => p_exclude_key_ids,
    p_caller => p_caller, p_client_id => p_client_id, p_token_id => p_token_id, p_request_id => p_request_id,
    p_tokens => p_estimated_tokens, p_class => p_class, p_rank => p_rank, p_ticket => p_ticket, p_turn => p_turn,
    p_since => p_since, p_new_ticket => p_new_ticket, p_limit => p_limit, p_cause => p_cause,
    p_booking_tried => p_booking_tried, p_reopens_at => p_reopens_at, p_recheck_at => p_recheck_at,
    p_wait_left_ms => p_wait_left_ms) w
  where public.google_ai_queue_turns(p_limit) is not null and coalesce(p_wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer || v_said;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_wait_left_ms, 0) > 0 then v_wait.turn_at else p_turn_at end, v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if p_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = p_limit, refusal_cause = p_cause, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
      estimated_tokens = p_estimated_tokens
    where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (p_limit = 'no_active_key' and coalesce(cardinality(p_exclude_key_ids), 0) > 0)
     and (coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found) then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, p_caller, p_client_id, p_token_id, coalesce(p_limits.model, p_requested_model),
      p_requested_model, p_attempt, p_estimated_tokens, p_limit, p_cause, v_retry_ms, p_wait_ms,
      coalesce(p_metadata, '{}'));
  end if;
  return jsonb_build_object('ok', false, 'limit', p_limit, 'cause', p_cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_limits.model,
    'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said;
end
$function$
;
