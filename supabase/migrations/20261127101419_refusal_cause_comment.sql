-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_attempts.refusal_cause's comment points at the list of admission causes
--   (vocabulary.ts, docs/llm-invoke.md) instead of writing it out
set check_function_bodies = off;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_attempts."refusal_cause" is 'For a refusal: why, one meaning each (google_ai_refusal_cause): an admission cause (the list: ADMISSION_CAUSES in functions/_shared/vocabulary.ts; docs/llm-invoke.md#errors says what each means), or the request''s own reason, its limit_hit.';
