-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_model_traits answers both whether a model is past its shutdown date and what it
--   refuses to be set (the two changes of this stop met in one function)
set check_function_bodies = off;

drop function if exists public.google_ai_model_traits(p_model text);

drop function if exists "public"."google_ai_model_traits"(p_model text);

CREATE OR REPLACE FUNCTION public.google_ai_model_traits(p_model text)
 RETURNS TABLE(model text, is_active boolean, supports_system_instruction boolean, supports_json_mode boolean, supports_tools boolean, supports_images boolean, fallback_models text[], withdrawn boolean, successor text, shut_down boolean, refuses_thinking_budget boolean, refuses_sampling boolean)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select l.model, l.is_active, l.supports_system_instruction, l.supports_json_mode,
         coalesce(l.supports_tools, l.supports_json_mode), l.supports_images,
         coalesce((select array_agg(f.model order by f.i)
                   from (select r.model, min(c.i) as i
                         from unnest(l.fallback_models) with ordinality c(name, i)
                         cross join lateral public.google_ai_model_by_name(c.name) r
                         where r.model is not null and r.model <> l.model
                         group by r.model) f), '{}'),
         l.withdrawn_at is not null, l.successor,
         coalesce(l.shutdown_date <= (pg_catalog.now() at time zone 'UTC')::date, false),
         l.refuses_thinking_budget, l.refuses_sampling
  from public.google_ai_model_by_name(p_model) l
  where l.id is not null
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_model_traits(p_model text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_model_traits(p_model text) to service_role;
grant execute on function public.google_ai_model_traits(p_model text) to eve_gateway;
