-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Kernel cuts (79): bucket_give said in buckets_settled; not_open and finalize_withdrawn a
--   statement shorter
set check_function_bodies = off;

drop function if exists "public"."google_ai_bucket_give"(p_until timestamp with time zone, p_window interval, p_limit integer, p_back integer);

CREATE OR REPLACE FUNCTION public.google_ai_buckets_settled(p_att public.google_ai_attempts, p_tokens integer, p_released boolean, p_input_until timestamp with time zone, p_output_until timestamp with time zone, p_window interval, OUT input_until timestamp with time zone, OUT output_until timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_model public.google_ai_model_limits;
  v_output integer := p_att.booked_output_tokens;
  v_input integer;
  v_used_input integer;
  v_used_output integer := v_output;
  v_window_us numeric := extract(epoch from p_window) * 1000000;
  v_itpm integer; v_otpm integer;
begin
  select m.* into v_model from public.google_ai_model_limits m where m.model = p_att.model;
  v_input := p_att.estimated_tokens - case when v_model.booked_output_tokens is not null then v_output else 0 end;
  v_used_input := v_input;
  if p_released then
    select 0, 0 into v_used_input, v_used_output;
  elsif p_att.input_tokens is not null then
    v_used_input := p_att.input_tokens
      - case when v_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end;
    v_used_output := coalesce(p_att.output_tokens, 0);
  elsif p_tokens < p_att.estimated_tokens then
    v_used_output := 0;
  end if;
  -- What goes back moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was
  -- taken. No limit, or nothing to give back: as it was. (The limits after the margin, as the booking took
  -- them: google_ai_request_limits.)
  v_itpm := public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin);
  v_otpm := public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin);
  input_until := case when v_itpm is null or coalesce(v_input - v_used_input, 0) <= 0 then p_input_until
    else p_input_until - floor(v_window_us * (v_input - v_used_input) / v_itpm) * interval '1 microsecond' end;
  output_until := case when v_otpm is null or coalesce(v_output - v_used_output, 0) <= 0 then p_output_until
    else p_output_until - floor(v_window_us * (v_output - v_used_output) / v_otpm) * interval '1 microsecond' end;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404, p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_successor text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    error_message = v_message,
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(v_att.token_id, v_att.client_id, v_att.caller, v_att.created_at,
    public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)), 0, -v_att.estimated_tokens,
    -v_att.booked_usd, false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = case when pg_catalog.lower(p_successor) <> pg_catalog.lower(v_att.model)
                            then left(p_successor, 100) end
  where l.model = v_att.model and l.withdrawn_at is null;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', found,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_not_open(p_reservation_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return jsonb_build_object('ok', false, 'error', 'not_open',
    'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
end
$function$
;
