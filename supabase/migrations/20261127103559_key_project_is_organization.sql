-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
set check_function_bodies = off;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_api_keys."project_id" is 'Google Cloud project, or OpenAI organization, of the key: keys of one project or organization share one quota group. Null: the key is its own group.';
