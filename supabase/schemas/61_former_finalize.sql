-- Finalize's former signatures, kept while functions and database are deployed one after the other
-- (`db push` runs first: the functions still running call these until theirs are deployed) and so that a
-- `finalize_lost` line logged by the former code replays. Each only builds the outcome record
-- (google_ai_attempt_outcome) and hands it to the entry, google_ai_finalize(p_reservation_id,
-- p_outcome). They go at the next release, with this file.
set check_function_bodies = off;

-- A call of google_ai_finalize_calls in the former flat shape (google_ai_finalize's former arguments
-- named without their p_, `outcome` the kind as text, a cut's `cut_by` beside them) as the new one's
-- outcome: the reservation left out, the kind and the provider's midnight under their new names.
-- (STABLE, as jsonb_build_object is: so it is inlined into the batch's statement.)
CREATE OR REPLACE FUNCTION public.google_ai_former_outcome(p_call jsonb) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select p_call - 'reservation_id' - 'outcome' - 'cooldown_until_pacific_midnight'
    || pg_catalog.jsonb_build_object('kind', p_call -> 'outcome',
         'cooldown_until_provider_midnight', p_call -> 'cooldown_until_pacific_midnight')
$$;

-- google_ai_finalize as it took the outcome before: one parameter each.
CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text,
    p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer,
    p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text,
    p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text,
    p_latency_ms integer DEFAULT NULL::integer,
    p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb,
    p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text,
    p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text,
    p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer,
    p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer,
    p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_settled_tokens integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer,
    p_thinking_tokens integer DEFAULT NULL::integer, p_cache_write_5m_tokens integer DEFAULT NULL::integer,
    p_cache_write_1h_tokens integer DEFAULT NULL::integer, p_stated_limits integer[] DEFAULT NULL::integer[])
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_finalize(p_reservation_id, pg_catalog.jsonb_build_object(
    'kind', p_outcome, 'input_tokens', p_input_tokens, 'output_tokens', p_output_tokens,
    'http_status', p_http_status, 'error_code', p_error_code, 'quota_id', p_quota_id,
    'error_message', p_error_message, 'latency_ms', p_latency_ms, 'cooldown_until', p_cooldown_until,
    'cooldown_until_provider_midnight', coalesce(p_cooldown_until_pacific_midnight, false),
    'response', p_response, 'key_rejected', p_key_rejected, 'quota_cause', p_quota_cause,
    'service_tier', p_service_tier, 'served_tier', p_served_tier, 'added_ms', p_added_ms,
    'first_byte_ms', p_first_byte_ms, 'room_requests', p_room_requests, 'room_tokens', p_room_tokens,
    'room_until', p_room_until, 'settled_tokens', p_settled_tokens, 'cached_input_tokens', p_cached_input_tokens,
    'thinking_tokens', p_thinking_tokens, 'cache_write_5m_tokens', p_cache_write_5m_tokens,
    'cache_write_1h_tokens', p_cache_write_1h_tokens, 'stated_limits', p_stated_limits));
end
$$;

-- A cut stream as it was written before (now the outcome's kind 'cut').
CREATE OR REPLACE FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text,
    p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer,
    p_latency_ms integer DEFAULT NULL::integer, p_error_message text DEFAULT NULL::text,
    p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text,
    p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer,
    p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer,
    p_cache_write_5m_tokens integer DEFAULT NULL::integer, p_cache_write_1h_tokens integer DEFAULT NULL::integer)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return public.google_ai_finalize(p_reservation_id, pg_catalog.jsonb_build_object(
    'kind', 'cut', 'cut_by', p_cut_by, 'input_tokens', p_input_tokens, 'output_tokens', p_output_tokens,
    'latency_ms', p_latency_ms, 'error_message', p_error_message, 'service_tier', p_service_tier,
    'served_tier', p_served_tier, 'added_ms', p_added_ms, 'first_byte_ms', p_first_byte_ms,
    'cached_input_tokens', p_cached_input_tokens, 'thinking_tokens', p_thinking_tokens,
    'cache_write_5m_tokens', p_cache_write_5m_tokens, 'cache_write_1h_tokens', p_cache_write_1h_tokens));
end
$$;

-- A withdrawn model as it was written before (now the outcome's kind 'withdrawn').
CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404,
    p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text,
    p_latency_ms integer DEFAULT NULL::integer, p_successor text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return public.google_ai_finalize(p_reservation_id, pg_catalog.jsonb_build_object(
    'kind', 'withdrawn', 'http_status', p_http_status, 'error_code', p_error_code,
    'error_message', p_error_message, 'latency_ms', p_latency_ms, 'successor', p_successor));
end
$$;
