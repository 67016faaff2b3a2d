-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Kernel cuts (79): holder_id said in the attempt row's trigger, its one caller
set check_function_bodies = off;

drop function if exists "public"."google_ai_holder_id"(p_holder jsonb);

CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_holder jsonb := new.metadata -> '$holder';
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  new.metadata := new.metadata - '$holder';
  if pg_catalog.jsonb_typeof(v_holder) is distinct from 'object' then
    return new;
  end if;
  new.reply_by := public.google_ai_holder_time(v_holder, 'reply_by');
  -- The invocation it names (null when absent); anything but a uuid is a clear 22023.
  if v_holder -> 'holder' is not null and not (pg_catalog.jsonb_typeof(v_holder -> 'holder') = 'string'
     and (v_holder ->> 'holder') ~ '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$') then
    raise exception 'metadata key $holder is the gateway''s own: its holder must be a uuid' using errcode = '22023';
  end if;
  new.holder := (v_holder ->> 'holder')::uuid;
  -- Never before reply_by; none when the statement names none (then the claim keeps its lease).
  new.hold_until := case when v_holder ? 'hold_until'
                         then greatest(public.google_ai_holder_time(v_holder, 'hold_until'), new.reply_by) end;
  if new.request_id is not null and new.hold_until is not null and new.holder is not null then
    update public.google_ai_responses r set
      expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
      holder = new.holder
    where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
      and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
      and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, v_now) is not null;
  end if;
  return new;
end
$function$
;
