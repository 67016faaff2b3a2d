-- Written by hand: rows, which `npm run db:diff` does not write (supabase/schemas has no DML).
-- What it changes: release 1.0 names the provider's side `upstream` everywhere. The gateway's own
--   attempt rows written under the former words take the new ones, in one pass over the log: the
--   status google_error (upstream_error), a cut stream's error_code stream_cut_by_google
--   (stream_cut_by_upstream), a refusal's cause google_cooldown (upstream_cooldown). It runs before
--   the migration that stops the status check and the metrics from reading google_error, so no row
--   is ever out of the check and none is counted under a word the metrics no longer know. The owner's
--   token_usage rows are left as they are (a cut row's meta may say cut_by "google"). Applied twice,
--   nothing changes.
update public.google_ai_attempts
set status = case when status = 'google_error' then 'upstream_error' else status end,
    error_code = case when error_code = 'stream_cut_by_google' then 'stream_cut_by_upstream' else error_code end,
    refusal_cause = case when refusal_cause = 'google_cooldown' then 'upstream_cooldown' else refusal_cause end
where status = 'google_error' or error_code = 'stream_cut_by_google' or refusal_cause = 'google_cooldown';
