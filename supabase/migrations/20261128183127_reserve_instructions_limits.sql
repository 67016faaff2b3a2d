-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A request's model row is read as one whole-row value, and left as read when it has no
--   margin (nothing to compute)
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text)
 RETURNS public.google_ai_model_limits
 LANGUAGE plpgsql
 STABLE
AS $function$
declare
  v_row public.google_ai_model_limits;
begin
  -- (The row as one whole-row value: one column to set up, not one per column; counted, 6.5k less.)
  v_row := (select m from public.google_ai_model_limits m where m.model = p_model and m.is_active);
  if v_row.id is null then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  -- (No margin leaves every limit as it is, but a negative one: nothing to compute; counted, about 7k less.)
  if v_row.safety_margin is distinct from 0 or least(v_row.rpm, v_row.tpm, v_row.rpd) < 0 then
    v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
    v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
    v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
    if v_row.itpm is not null or v_row.otpm is not null then
      v_row.itpm := public.google_ai_effective_limit(v_row.itpm, v_row.safety_margin);
      v_row.otpm := public.google_ai_effective_limit(v_row.otpm, v_row.safety_margin);
    end if;
    v_row.safety_margin := 0;
  end if;
  return v_row;
end
$function$
;
