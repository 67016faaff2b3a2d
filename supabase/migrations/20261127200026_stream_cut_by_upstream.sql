-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_finalize_cut takes p_cut_by 'upstream' for a stream the provider broke off
--   (error_code stream_cut_by_upstream); 'google', its former name, is still taken for one release
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_latency_ms integer DEFAULT NULL::integer, p_error_message text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_answer jsonb;
begin
  if p_cut_by not in ('client', 'upstream', 'google') then
    raise exception 'p_cut_by must be client or upstream' using errcode = '22023';
  end if;
  v_answer := public.google_ai_finalize(
    p_reservation_id => p_reservation_id, p_outcome => 'succeeded', p_input_tokens => p_input_tokens,
    p_output_tokens => p_output_tokens, p_http_status => 200, p_latency_ms => p_latency_ms,
    p_service_tier => p_service_tier, p_served_tier => p_served_tier, p_added_ms => p_added_ms,
    p_first_byte_ms => p_first_byte_ms);
  if not coalesce((v_answer ->> 'ok')::boolean, false) then
    return v_answer;
  end if;
  update public.google_ai_attempts a set
    status = 'cut',
    error_code = 'stream_cut_by_' || p_cut_by,
    error_message = left(p_error_message, 1000)
  where a.reservation_id = p_reservation_id;
  return jsonb_build_object('ok', true, 'status', 'cut');
end
$function$
;
