-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a rate's cooldown for a model of a pool (limit_pool) rests every active model of the pool
--   in the quota group
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id, cause)
  select p_quota_group, m.model, p_until, left(p_reason, 500), left(p_quota_id, 200), p_cause
  from (select p_model as model
        union
        select l.model from public.google_ai_model_limits l
        where l.is_active and l.limit_pool = (select p.limit_pool from public.google_ai_model_limits p
                                              where p.model = p_model)
        union
        select l.model from public.google_ai_model_limits l
        where p_cause = any (public.google_ai_quota_causes(true)) and l.is_active
          and exists (select 1 from public.google_ai_api_keys k
                      where public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
                        and k.serves_provider = l.provider
                        and (k.models is null or l.model = any (k.models)))) m
  order by m.model
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = case when excluded.cooldown_until >= c.cooldown_until then excluded.reason else c.reason end,
    quota_id = case when excluded.cooldown_until >= c.cooldown_until then excluded.quota_id else c.quota_id end,
    cause = case when excluded.cooldown_until >= c.cooldown_until then excluded.cause else c.cause end,
    updated_at = now();
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on function public.google_ai_cooldown_for_cause(p_quota_group text, p_model text, p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) is 'Finalize''s cooldown: one model and the active rows of its pool (limit_pool), or for a spend cap or money (google_ai_quota_causes(true)) every active model the quota group''s keys serve.';
