-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The quota report's withdrawn models and a model's cooldowns as records (to_jsonb), the
--   same keys
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_model_cooldowns(p_model text, p_now timestamp with time zone, p_show_groups boolean)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(c) - case when p_show_groups then '' else 'quota_group' end
                   order by c.cooldown_until, c.quota_group), '[]')
  from (select cd.quota_group, cd.cause, cd.cooldown_until,
               public.google_ai_ms_until(cd.cooldown_until, p_now) as retry_after_ms
        from public.google_ai_cooldowns cd
        where cd.model = p_model and cd.cooldown_until > p_now) c
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_withdrawn(p_models text[])
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
  from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
               l.shutdown_date
        from public.google_ai_model_limits l
        where l.withdrawn_at is not null and (p_models is null or l.model = any (p_models))) w
$function$
;
