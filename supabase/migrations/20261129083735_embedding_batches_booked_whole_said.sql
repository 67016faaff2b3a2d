-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_embedding_models' comment says a batch of N is booked as N requests, no longer
--   sent one input per call
set check_function_bodies = off;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on table public.google_ai_embedding_models is 'Embedding models (a row of google_ai_model_limits each): dimensions (shortenable: a smaller one may be asked), max_batch (inputs per provider request), max_input_tokens (per input), counts_each_input (the provider counts each input of a batch as one request: a batch of N is booked as N requests), source (where the facts were read).';
