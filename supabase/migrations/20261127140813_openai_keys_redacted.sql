-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The log's error sanitizer also redacts OpenAI API keys (sk-...), as the functions'
--   sanitizer does; the life-cycle view's comment speaks of each model's provider.
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_sanitize_error(p_message text, p_max_length integer DEFAULT 500)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO ''
AS $function$
begin
  return (
    select left(
      regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        coalesce(p_message, ''),
        'AIza[0-9A-Za-z_-]{10,}', '[redacted]', 'g'),
        '\msk-[0-9A-Za-z_-]{8,}', '[redacted]', 'g'),
        '(sb_secret_|evegw_tok_|evegw_cs_)[0-9A-Za-z_-]+', '[redacted]', 'g'),
        'eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*', '[redacted]', 'g'),
        '([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@', '\1[redacted]@', 'gi'),
        '\m(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
        '[[:cntrl:]]+', ' ', 'g'),
      greatest(p_max_length, 1)));
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on view public.google_ai_model_lifecycle is 'Each model row in its life cycle: withdrawn (when, its provider''s message and the replacement it names), shutdown date, successor, chain, limits and where they come from, and what its provider''s model list last said of it.';
