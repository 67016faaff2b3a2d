-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: Google's row's day turns in Pacific time, as Google resets its per-day quotas (the
--   column's default, UTC, is every other seeded provider's). Applied twice, nothing changes.
update public.google_ai_providers set day_zone = 'America/Los_Angeles' where name = 'google' and day_zone = 'UTC';
