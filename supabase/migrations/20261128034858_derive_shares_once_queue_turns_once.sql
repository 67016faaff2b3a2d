-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: one trigger function keeps the derived shares for a model and for a class, the class's
--   kept_changed_at stamp with them; the queue's turns name each limit once
set check_function_bodies = off;

drop trigger if exists "google_ai_model_derives_shares" on "public"."google_ai_model_limits";

drop trigger if exists "google_ai_class_derives_shares" on "public"."google_ai_priority_classes";

drop trigger if exists "google_ai_class_kept_changed" on "public"."google_ai_priority_classes";

drop function if exists "public"."google_ai_class_derives_shares"();

drop function if exists "public"."google_ai_class_kept_changed"();

drop function if exists "public"."google_ai_model_derives_shares"();

CREATE OR REPLACE FUNCTION public.google_ai_derives_shares()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  if tg_when = 'BEFORE' then
    if tg_op = 'INSERT' and (new.kept_rpm_percent is not null or new.kept_rpd_percent is not null)
       or tg_op = 'UPDATE' and (new.kept_rpm_percent, new.kept_rpd_percent)
                               is distinct from (old.kept_rpm_percent, old.kept_rpd_percent) then
      new.kept_changed_at := pg_catalog.now();
    end if;
    return new;
  elsif tg_table_name = 'google_ai_model_limits' then
    perform public.google_ai_derive_class_shares(new.model, null);
  else
    perform public.google_ai_derive_class_shares(null, new.name);
  end if;
  return null;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_queue_turns(p_limit text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case when p_limit operator(pg_catalog.=) any ('{rpm,tpm,rpd,cooldown,pace}'::text[]) then 'slots'
              when p_limit operator(pg_catalog.=) any ('{}'::text[]) then 'head' end
$function$
;

drop trigger if exists google_ai_model_derives_shares on public.google_ai_model_limits;
CREATE TRIGGER google_ai_model_derives_shares AFTER INSERT OR UPDATE OF rpm, rpd, safety_margin ON public.google_ai_model_limits FOR EACH ROW EXECUTE FUNCTION public.google_ai_derives_shares();

drop trigger if exists google_ai_class_derives_shares on public.google_ai_priority_classes;
CREATE TRIGGER google_ai_class_derives_shares AFTER INSERT OR UPDATE OF kept_rpm_percent, kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION public.google_ai_derives_shares();

drop trigger if exists google_ai_class_kept_changed on public.google_ai_priority_classes;
CREATE TRIGGER google_ai_class_kept_changed BEFORE INSERT OR UPDATE OF kept_rpm_percent, kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION public.google_ai_derives_shares();

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_derives_shares() from public, anon, authenticated, service_role;
