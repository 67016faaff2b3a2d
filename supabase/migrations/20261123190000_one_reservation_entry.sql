-- One reservation entry (supabase/schemas/30_reservation.sql): google_ai_reserve_models takes the
-- models as an array (one model: an array of one) and either a caller or a token hash, and the
-- holder's deadlines as parameters; google_ai_reserve_models_at is its clock-injected test seam.
-- llm-invoke calls only this entry. The dead clock variant google_ai_reserve_with_token_at goes.
-- Only what changed; applying it twice changes nothing.

drop function if exists public.google_ai_reserve_with_token_at(timestamp with time zone, text, text, integer, text, uuid[], integer, integer, jsonb, boolean);

-- The one reservation entry: the models as an array (a single model is an array of one, a chain
-- its models in order) and either a caller (a service caller's label) or a token hash. One model
-- is admitted by google_ai_admit_at / google_ai_admit_with_token_at, a chain by
-- google_ai_admit_chain_at; the answer is theirs, unchanged. The holder's deadlines (reply_by,
-- hold_until: llm-invoke's store/holder.ts) reach the attempt row's trigger
-- (google_ai_attempt_holder) under the metadata key '$holder', which they overwrite.
-- The clock is injected (p_now; null: the transaction's own clock): the test seam. Owner only.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}');
begin
  if p_models is null or cardinality(p_models) = 0 or cardinality(p_models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_caller is null) = (p_token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_reply_by, 'hold_until', p_hold_until)));
  end if;
  if cardinality(p_models) > 1 then
    return public.google_ai_admit_chain_at(p_now => p_now, p_models => p_models,
      p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_token_hash => p_token_hash,
      p_request_id => p_request_id, p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt,
      p_wait_ms => p_wait_ms, p_metadata => v_metadata, p_idempotent => p_idempotent,
      p_priority => p_priority, p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  elsif p_token_hash is null then
    return public.google_ai_admit_at(p_now => p_now, p_model => p_models[1],
      p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
      p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
      p_metadata => v_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
      p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  else
    return public.google_ai_admit_with_token_at(p_now => p_now, p_token_hash => p_token_hash,
      p_model => p_models[1], p_estimated_tokens => p_estimated_tokens, p_request_id => p_request_id,
      p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
      p_metadata => v_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
      p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  end if;
end
$_$;

-- What llm-invoke calls: google_ai_reserve_models_at on the transaction's own clock.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer, p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select public.google_ai_reserve_models_at(null, p_models, p_estimated_tokens, p_caller, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms,
    p_reply_by, p_hold_until)
$$;

REVOKE ALL ON FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone) FROM anon, authenticated, service_role, eve_gateway;
REVOKE ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone) TO service_role;
GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer, p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer, p_reply_by timestamp with time zone, p_hold_until timestamp with time zone) TO eve_gateway;
