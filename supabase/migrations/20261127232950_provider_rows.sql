-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: seeds the built-in provider rows (google, openai), before the next migration's foreign keys
--   make every key row's and model row's provider one of them.
-- The built-in providers, each its dialect's own row, reached at its
-- dialect's base URL and read by its dialect's key pattern unless the operator's row says otherwise. The
-- next migration makes every key row's and model row's provider one of these rows: the owner's key rows
-- all read as google or openai (the baseline's check stopped on any other, naming the rows). Applied
-- twice, nothing changes.
insert into public.google_ai_providers (name, dialect, display_name) values
  ('google', 'google', 'Google'),
  ('openai', 'openai', 'OpenAI')
on conflict (name) do nothing;
