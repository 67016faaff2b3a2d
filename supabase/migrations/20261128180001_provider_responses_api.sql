-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a provider row says whether it serves OpenAI's Responses API
--   (google_ai_providers.has_responses_api, false unless set): the gateway's Responses route sends the
--   caller's body as it came only to such a provider's models
set check_function_bodies = off;

alter table "public"."google_ai_providers" add column if not exists "has_responses_api" boolean not null default false;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_providers."has_responses_api" is 'The provider serves OpenAI''s Responses API (POST /v1/responses) as OpenAI does: the gateway''s Responses route sends its models the caller''s body as it came. False: the body is translated (chat completions for dialect openai), and what only OpenAI''s Responses API honours (built-in tools, include, background) is refused by name. True for OpenAI''s own row; a compatible service''s row says so itself.';
