-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the bodies merged today pass supabase db lint: google_ai_record_admission names its
--   booking record's fields for plpgsql_check, and the response cache's housekeeping step says why its step
--   parameters are unused
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_response_cache(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_settings and p_deadline are every housekeeping step's parameters, unused here by
-- design: the cache's limits are its own settings row, and its three deletes take no batches.)
declare
  v_cache public.google_ai_response_cache_settings;
  v_expired bigint;
  v_over bigint;
  v_hits bigint;
begin
  v_cache := public.google_ai_response_cache_config();
  delete from public.google_ai_response_cache e
  where (e.answer is not null and e.expires_at <= p_now)
     or (e.answer is null and (e.flight_until is null or e.flight_until <= p_now));
  get diagnostics v_expired = row_count;
  with sized as (
    select e.id, sum(e.bytes) over (partition by e.scope order by e.created_at desc, e.id desc) as held
    from public.google_ai_response_cache e
    where e.answer is not null)
  delete from public.google_ai_response_cache e
  using sized s where s.id = e.id and s.held > v_cache.max_bytes_per_scope;
  get diagnostics v_over = row_count;
  delete from public.google_ai_response_cache_hits h where h.created_at < p_now - v_cache.hits_retention;
  get diagnostics v_hits = row_count;
  return jsonb_build_object('expired', v_expired, 'over_size', v_over, 'hit_rows', v_hits);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking record, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
begin
  -- p_booking's fields as google_ai_book_best_group answers them, for `supabase db lint` (plpgsql_check
  -- cannot see a record parameter's shape); at run time a constant, evaluated on the fast path.
  perform 'PRAGMA:TYPE:p_booking (key_id uuid, key_alias text, booked_group text, minute_bucket timestamptz, '
    'day_bucket date, admitted_at timestamptz, env_var_name text, quota jsonb)';
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt), p_request.estimated_tokens, p_booked_usd, true);
  end if;
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
  into v_answer;
  if p_booking.quota is null then
    v_answer := v_answer - 'quota';
  end if;
  return v_answer;
end
$function$
;
