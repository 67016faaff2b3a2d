-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_model_by_name reads the active row named exactly by its unique index before
--   searching every row's aliases
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_model_by_name(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_row public.google_ai_model_limits;
begin
  v_row := (select l from public.google_ai_model_limits l where l.model = p_model and l.is_active);
  if v_row.id is not null then
    return v_row;
  end if;
  select l.* into v_row from public.google_ai_model_limits l
  where l.model = p_model or p_model = any (l.aliases)
  order by l.is_active desc, (l.model = p_model) desc, l.id
  limit 1;
  return v_row;
end
$function$
;
