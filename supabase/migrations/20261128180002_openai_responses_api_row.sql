-- Written by hand: a row, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: OpenAI's own provider row serves OpenAI's Responses API (has_responses_api): its models
--   are sent a Responses call's body as it came. Every other row keeps the column's default, false (a
--   compatible service's owner sets it where the service has one). Applied twice, nothing changes.
update public.google_ai_providers set has_responses_api = true
where name = 'openai' and dialect = 'openai' and not has_responses_api;
