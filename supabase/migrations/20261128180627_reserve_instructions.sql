-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The attempt log's and the cooldowns' checks ask PL/pgSQL functions that hold their lists,
--   instead of list constants PostgreSQL reads again byte by byte in every write
set check_function_bodies = off;

alter table "public"."google_ai_attempts" drop constraint if exists "google_ai_attempts_quota_cause_check";

alter table "public"."google_ai_attempts" drop constraint if exists "google_ai_attempts_status_check";

alter table "public"."google_ai_cooldowns" drop constraint if exists "google_ai_cooldowns_cause_check";

CREATE OR REPLACE FUNCTION public.google_ai_is_attempt_status(p_status text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_status = any ('{reserved,refused,succeeded,upstream_error,network_error,timeout,cut,withdrawn,google_error,
    released,abandoned}'::text[]);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_is_quota_cause(p_cause text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_cause = any ('{minute,day,limit_zero,spend_cap,monthly_cap,billing_cap,credits_depleted,unknown}'::text[]);
end
$function$
;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_attempts"'::regclass
                 and conname = 'google_ai_attempts_quota_cause_check') then
    alter table "public"."google_ai_attempts" add constraint "google_ai_attempts_quota_cause_check" CHECK (public.google_ai_is_quota_cause(quota_cause)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_attempts" validate constraint "google_ai_attempts_quota_cause_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_attempts"'::regclass
                 and conname = 'google_ai_attempts_status_check') then
    alter table "public"."google_ai_attempts" add constraint "google_ai_attempts_status_check" CHECK (public.google_ai_is_attempt_status(status)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_attempts" validate constraint "google_ai_attempts_status_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_cooldowns"'::regclass
                 and conname = 'google_ai_cooldowns_cause_check') then
    alter table "public"."google_ai_cooldowns" add constraint "google_ai_cooldowns_cause_check" CHECK (public.google_ai_is_quota_cause(cause)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_cooldowns" validate constraint "google_ai_cooldowns_cause_check";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_is_attempt_status(p_status text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_is_quota_cause(p_cause text) from public, anon, authenticated, service_role;
