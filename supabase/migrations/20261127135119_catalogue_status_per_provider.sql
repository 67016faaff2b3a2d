-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: The model catalogue's status view reads each model row against its own provider's checked
--   keys, so OpenAI's models are listed, unlisted or unknown by OpenAI's lists (the view's columns are
--   unchanged).
set check_function_bodies = off;

create or replace view "public"."google_ai_model_catalogue_status" as  WITH ok_keys AS (
         SELECT h.api_key_id,
            h.checked_at,
            k.serves_provider AS provider
           FROM (public.google_ai_key_health h
             JOIN public.google_ai_api_keys k ON ((k.id = h.api_key_id)))
          WHERE ((h.status = 'ok'::text) AND k.is_active)
        )
 SELECT l.model,
    l.is_active,
    (( SELECT count(*) AS count
           FROM ok_keys o
          WHERE (o.provider = l.provider)))::integer AS keys_checked,
    (count(c.api_key_id))::integer AS keys_listing,
    COALESCE(array_agg(DISTINCT c.quota_group) FILTER (WHERE (c.api_key_id IS NOT NULL)), '{}'::text[]) AS quota_groups,
    max(c.input_token_limit) AS input_token_limit,
    max(c.output_token_limit) AS output_token_limit,
    max(c.refreshed_at) AS last_listed_at,
    ( SELECT max(o.checked_at) AS max
           FROM ok_keys o
          WHERE (o.provider = l.provider)) AS last_checked_at,
        CASE
            WHEN (( SELECT count(*) AS count
               FROM ok_keys o
              WHERE (o.provider = l.provider)) = 0) THEN 'unknown'::text
            WHEN (count(c.api_key_id) > 0) THEN 'listed'::text
            ELSE 'unlisted'::text
        END AS catalogue_status
   FROM (public.google_ai_model_limits l
     LEFT JOIN public.google_ai_model_catalogue c ON (((c.model = l.model) AND (c.api_key_id IN ( SELECT o.api_key_id
           FROM ok_keys o
          WHERE (o.provider = l.provider))))))
  GROUP BY l.model, l.is_active, l.provider;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
alter view public.google_ai_model_catalogue_status set (security_invoker='true');
comment on view public.google_ai_model_catalogue_status is 'Each model row (google_ai_model_limits) against its provider''s catalogue: listed, unlisted (no checked active key of its provider lists it any more) or unknown (no successful check of its provider''s keys yet).';
