-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_model_limits.refuses_thinking_budget and refuses_sampling (what a model refuses
--   to be set: Claude 5.x), read by google_ai_model_traits
set check_function_bodies = off;

-- Its result gains two columns: a function's result type cannot be replaced in place.
drop function if exists "public"."google_ai_model_traits"(p_model text);

alter table "public"."google_ai_model_limits" add column if not exists "refuses_thinking_budget" boolean not null default false;

alter table "public"."google_ai_model_limits" add column if not exists "refuses_sampling" boolean not null default false;

CREATE OR REPLACE FUNCTION public.google_ai_model_traits(p_model text)
 RETURNS TABLE(model text, is_active boolean, supports_system_instruction boolean, supports_json_mode boolean, supports_tools boolean, supports_images boolean, fallback_models text[], withdrawn boolean, successor text, refuses_thinking_budget boolean, refuses_sampling boolean)
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
         l.withdrawn_at is not null, l.successor, l.refuses_thinking_budget, l.refuses_sampling
  from public.google_ai_model_by_name(p_model) l
  where l.id is not null
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_model_limits."refuses_thinking_budget" is 'True: the model decides how long it thinks and refuses a thinking budget (Anthropic''s thinking: {type: "enabled", budget_tokens} on Claude 5.x, whose thinking is adaptive): a request that sets one is refused with unsupported_feature before any call. False: a budget is passed on.';
comment on column public.google_ai_model_limits."refuses_sampling" is 'True: the model refuses temperature, top_p and top_k other than their defaults (temperature 1, top_p 1, no top_k; Claude 5.x): a request that sets one is refused with unsupported_feature before any call. False: they are passed on.';
revoke all on function public.google_ai_model_traits(p_model text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_model_traits(p_model text) to service_role;
grant execute on function public.google_ai_model_traits(p_model text) to eve_gateway;
