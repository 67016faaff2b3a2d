-- Written by hand: a row, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: seeds the built-in provider row of the anthropic dialect (Anthropic's Messages API),
--   reached at the dialect's base URL (ANTHROPIC_BASE_URL overrides it) and read by its key pattern
--   (ANTHROPIC_…) unless the operator's row says otherwise. Applied twice, nothing changes.
insert into public.google_ai_providers (name, dialect, display_name) values
  ('anthropic', 'anthropic', 'Anthropic')
on conflict (name) do nothing;
