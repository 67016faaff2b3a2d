-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_step_causes: each fallback_from step passed over for a rest names that rest's
--   own cause, read in the reservation's statement
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_step_causes(p_steps jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select coalesce(jsonb_agg(case when s.step ->> 'limit' = 'cooldown'
                                   then s.step || jsonb_build_object('cause', coalesce(
                                     public.google_ai_cooldown_cause(p_model => s.step ->> 'model'),
                                     s.step ->> 'cause'))
                                   else s.step end order by s.i), '[]'::jsonb)
    from jsonb_array_elements(p_steps) with ordinality s(step, i));
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_step_causes(p_steps jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_step_causes(p_steps jsonb) to service_role;
grant execute on function public.google_ai_step_causes(p_steps jsonb) to eve_gateway;
comment on function public.google_ai_step_causes(p_steps jsonb) is 'A refusal''s or answer''s fallback_from steps, each cooldown step naming its own rest''s cause: read in the reservation''s statement.';
