-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a key row's and a model row's provider is a google_ai_providers row (foreign keys in place
--   of the checks against a fixed list)
set check_function_bodies = off;

alter table "public"."google_ai_api_keys" drop constraint if exists "google_ai_api_keys_provider_check";

alter table "public"."google_ai_model_limits" drop constraint if exists "google_ai_model_limits_provider_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_api_keys"'::regclass
                 and conname = 'google_ai_api_keys_provider_fkey') then
    alter table "public"."google_ai_api_keys" add constraint "google_ai_api_keys_provider_fkey" FOREIGN KEY (serves_provider) REFERENCES public.google_ai_providers(name) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_api_keys" validate constraint "google_ai_api_keys_provider_fkey";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_limits"'::regclass
                 and conname = 'google_ai_model_limits_provider_fkey') then
    alter table "public"."google_ai_model_limits" add constraint "google_ai_model_limits_provider_fkey" FOREIGN KEY (provider) REFERENCES public.google_ai_providers(name) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_limits" validate constraint "google_ai_model_limits_provider_fkey";
