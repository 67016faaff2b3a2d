-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a provider's cooldown refuses with the cause upstream_cooldown (google_cooldown on rows
--   written before, read until the next release)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_cause(p_limit text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case when p_limit in ('rpm', 'tpm') then 'window_full'
              when p_limit = 'rpd' then 'day_exhausted'
              when p_limit = 'cooldown' then 'upstream_cooldown'
              when p_limit in ('token_budget', 'client_budget', 'caller_budget') then 'budget'
              else p_limit end
$function$
;
