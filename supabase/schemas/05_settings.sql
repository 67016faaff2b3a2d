-- The operator's settings, one row each, in one place so that every later file may read any of them
-- (a file names only what it or an earlier file defines): admission (how far it allows for Google's
-- clock), the queue (a turn's grace), maintenance (retention, when an open reservation counts as
-- abandoned). Each reads its defaults when its row is missing.
-- Every file sets check_function_bodies off, so a body may name a function of a later file; the
-- bodies are checked once the whole schema is loaded (shared/db/function-bodies.ts).
set check_function_bodies = off;

CREATE TABLE public.google_ai_admission_settings (
    id boolean DEFAULT true NOT NULL PRIMARY KEY,
    minute_guard_ms integer DEFAULT 1000 NOT NULL CHECK (minute_guard_ms BETWEEN 0 AND 30000),
    day_guard_ms integer DEFAULT 5000 NOT NULL CHECK (day_guard_ms BETWEEN 0 AND 600000),
    recheck_ms integer DEFAULT 2000 NOT NULL CHECK (recheck_ms BETWEEN 100 AND 60000),
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_admission_settings_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_admission_settings IS
    'How far admission allows for Google''s clock: minute_guard_ms (>= the spread of network delays; the minute window '
    'is 60 s plus this), day_guard_ms (>= clock offset + delay at Pacific midnight), recheck_ms (how soon a TPM waiter '
    'asks again while tokens of its window may still be given back).';

CREATE OR REPLACE FUNCTION public.google_ai_admission_guard() RETURNS public.google_ai_admission_settings
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_settings public.google_ai_admission_settings;
begin
  select s.* into v_settings from public.google_ai_admission_settings s where s.id;
  if not found then
    v_settings := row(true, 1000, 5000, 2000, now())::public.google_ai_admission_settings;
  end if;
  return v_settings;
end
$$;

CREATE TABLE public.google_ai_queue_settings (
    id boolean DEFAULT true NOT NULL PRIMARY KEY,
    grace_ms integer DEFAULT 3000 NOT NULL CHECK (grace_ms BETWEEN 100 AND 60000),
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_queue_settings_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_queue_settings IS
    'The admission queue: grace_ms, how long a turn is kept for '
    'a waiter that has not called yet before its ticket lapses.';

-- One row (id = true). Edit it to tune retention; the function falls back to these defaults if the
-- row is missing.
CREATE TABLE public.google_ai_maintenance_settings (
    id boolean DEFAULT true NOT NULL PRIMARY KEY,
    attempts_retention interval DEFAULT '30 days' NOT NULL CHECK (attempts_retention >= '1 day'),
    stale_reservation_after interval DEFAULT '00:15:00' NOT NULL,
    token_grace interval DEFAULT '7 days' NOT NULL,
    cron_history_retention interval DEFAULT '7 days' NOT NULL,
    batch_size integer DEFAULT 5000 NOT NULL CHECK (batch_size BETWEEN 1 AND 100000),
    max_batches integer DEFAULT 100 NOT NULL,
    time_budget interval DEFAULT '00:02:00' NOT NULL,
    lock_timeout_ms integer DEFAULT 5000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    stored_response_lifetime interval DEFAULT '1 day' NOT NULL
      CHECK (stored_response_lifetime BETWEEN '00:01:00' AND '30 days'),
    CONSTRAINT google_ai_maintenance_settings_cron_history_check CHECK (cron_history_retention >= '01:00:00'),
    CONSTRAINT google_ai_maintenance_settings_lock_timeout_check CHECK (lock_timeout_ms BETWEEN 1 AND 600000),
    CONSTRAINT google_ai_maintenance_settings_max_batches_check CHECK (max_batches BETWEEN 1 AND 100000),
    CONSTRAINT google_ai_maintenance_settings_singleton CHECK (id),
    CONSTRAINT google_ai_maintenance_settings_stale_reservation_check CHECK (stale_reservation_after >= '00:07:00'),
    CONSTRAINT google_ai_maintenance_settings_time_budget_check CHECK (time_budget > '00:00:00'),
    CONSTRAINT google_ai_maintenance_settings_token_grace_check CHECK (token_grace >= '01:00:00')
);

COMMENT ON TABLE public.google_ai_maintenance_settings IS
    'Housekeeping settings (one row). attempts_retention: how long attempt rows are kept; stale_reservation_after: '
    'when an open reservation counts as abandoned; token_grace: how long expired/revoked tokens are kept; '
    'cron_history_retention: cron.job_run_details kept; batch_size/max_batches/time_budget: work per run; '
    'lock_timeout_ms: longest wait for a table lock; stored_response_lifetime: how long a Responses API conversation '
    'kept for previous_response_id lives (1 minute to 30 days, OpenAI''s own keeping).';
