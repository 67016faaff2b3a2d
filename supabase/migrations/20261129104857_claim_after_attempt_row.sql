-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: an admitted request's claim is written after its attempt row, with the holder the row's
--   trigger read, where the trigger wrote the claim just written a second time
set check_function_bodies = off;

drop function if exists "public"."google_ai_hold_request"(p_caller text, p_request_id text, p_model text, p_now timestamp with time zone);

CREATE OR REPLACE FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamp with time zone, p_holder uuid DEFAULT NULL::uuid, p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_lease timestamptz := p_now + interval '7 minutes';
begin
  if p_holder is null or p_hold_until is null
     or public.google_ai_claim_held_until(p_caller, p_request_id, v_lease, pg_catalog.clock_timestamp()) is null then
    p_holder := null;
  else
    v_lease := p_hold_until;
  end if;
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at, holder)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, v_lease, p_holder)
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at, holder = excluded.holder;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid, p_booked_usd numeric, p_booked_output integer)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
  v_answer jsonb;
  v_holder uuid;             -- the attempt row's holder and hold_until (google_ai_attempt_holder)
  v_hold_until timestamptz;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(p_request.token_id, p_request.client_id, null, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[], a.holder, a.hold_until
  into v_answer, v_holder, v_hold_until;
  -- The claim after the attempt row, with the holder its trigger read (google_ai_hold_request).
  if p_request.idempotent and p_request.request_id is not null then
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, v_holder,
      v_hold_until);
  end if;
  return v_answer;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_hold_request(p_caller text, p_request_id text, p_model text, p_now timestamp with time zone, p_holder uuid, p_hold_until timestamp with time zone) from public, anon, authenticated, service_role;
