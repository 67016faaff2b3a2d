-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: google_ai_model_limits.booked_output_tokens: where set, TPM counts an answer's tokens too
--   (OpenAI's rule), booking this many when a request names no max_tokens
set check_function_bodies = off;

alter table "public"."google_ai_model_limits" add column if not exists "booked_output_tokens" integer;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_limits"'::regclass
                 and conname = 'google_ai_model_limits_booked_output_tokens_check') then
    alter table "public"."google_ai_model_limits" add constraint "google_ai_model_limits_booked_output_tokens_check" CHECK ((booked_output_tokens >= 1)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_limits" validate constraint "google_ai_model_limits_booked_output_tokens_check";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_model_limits."tpm" is 'Tokens per minute per quota group (null: no limit): input tokens, and output tokens too where booked_output_tokens is set.';
comment on column public.google_ai_model_limits."booked_output_tokens" is 'Null: TPM counts input tokens only (Google). Set: TPM counts input and output (OpenAI): a request books its input plus its max_tokens, or this many when it names none, and is settled at input + output.';
