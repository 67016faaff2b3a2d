-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: an admitted attempt row whose claim record_admission writes right after it no longer has
--   its trigger renew that claim first (eve.claim_follows): the same claim, one write
set check_function_bodies = off;

drop trigger if exists "google_ai_attempts_holder" on "public"."google_ai_attempts";

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS public.google_ai_admission_verdict
 LANGUAGE plpgsql
AS $function$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting is assigned and never read by design: a perform costs a statement.)
declare
  v_answer jsonb;
  v_reservation uuid;
  v_claims boolean := p_request.idempotent and p_request.request_id is not null;  -- the claim is written here
  v_setting text;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(row(p_request.caller, p_request.client_id,
      p_request.token_id)::public.google_ai_caller, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- A claim written below, after the row, with the row's holder: the row's trigger need not renew it first
  -- (google_ai_attempt_holder: its write would be written over; counted, 84k instructions a reservation).
  if v_claims then
    v_setting := pg_catalog.set_config('eve.claim_follows', 'on', true);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests, reply_by, hold_until,
    holder)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests, p_request.reply_by, p_request.hold_until, p_request.holder)
  returning a.reservation_id, jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_reservation, v_answer;
  -- The claim after the attempt row, with the request's holder (google_ai_hold_request).
  if v_claims then
    v_setting := pg_catalog.set_config('eve.claim_follows', 'off', true);
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, p_request.holder,
      p_request.hold_until);
  end if;
  return row(true, null, null, null, null, p_model, null, v_reservation, null,
    v_answer)::public.google_ai_admission_verdict;
end
$function$
;

drop trigger if exists google_ai_attempts_holder on public.google_ai_attempts;
CREATE TRIGGER google_ai_attempts_holder BEFORE INSERT ON public.google_ai_attempts FOR EACH ROW WHEN (((new.hold_until IS NOT NULL) AND (current_setting('eve.claim_follows'::text, true) IS DISTINCT FROM 'on'::text))) EXECUTE FUNCTION public.google_ai_attempt_holder();
