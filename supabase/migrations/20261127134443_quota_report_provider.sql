-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The quota report names each model's provider, in models and in withdrawn.
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_models(p_now timestamp with time zone, p_models text[], p_show_groups boolean, p_class text, p_caller text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, p_now)
                   || jsonb_build_object('provider', l.provider,
                        'cooldowns', public.google_ai_model_cooldowns(l.model, p_now, p_show_groups),
                        'kept', public.google_ai_quota_kept(l.model,
                          public.google_ai_effective_limit(l.rpm, l.safety_margin),
                          public.google_ai_effective_limit(l.rpd, l.safety_margin), p_class, p_caller))
                   order by l.model), '[]')
  from public.google_ai_model_limits l
  where l.is_active and (p_models is null or l.model = any (p_models))
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_withdrawn(p_models text[])
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object(
           'model', l.model,
           'provider', l.provider,
           'withdrawn_at', l.withdrawn_at,
           'withdrawn_message', l.withdrawn_message,
           'successor', l.successor,
           'google_successor', l.google_successor,
           'shutdown_date', l.shutdown_date)
         order by l.model), '[]')
  from public.google_ai_model_limits l
  where l.withdrawn_at is not null and (p_models is null or l.model = any (p_models))
$function$
;
