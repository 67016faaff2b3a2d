-- What maintenance is set to do (google_ai_maintenance_settings) and what it did (the owner's
-- google_ai_maintenance_log), read by the metrics and written by housekeeping.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- One row (id = true). Edit it to tune retention; the function falls back to these defaults if the
-- row is missing.
CREATE TABLE public.google_ai_maintenance_settings (
    id boolean DEFAULT true NOT NULL,
    attempts_retention interval DEFAULT '30 days'::interval NOT NULL,
    stale_reservation_after interval DEFAULT '00:15:00'::interval NOT NULL,
    token_grace interval DEFAULT '7 days'::interval NOT NULL,
    cron_history_retention interval DEFAULT '7 days'::interval NOT NULL,
    batch_size integer DEFAULT 5000 NOT NULL,
    max_batches integer DEFAULT 100 NOT NULL,
    time_budget interval DEFAULT '00:02:00'::interval NOT NULL,
    lock_timeout_ms integer DEFAULT 5000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_maintenance_settings_attempts_retention_check CHECK ((attempts_retention >=
      '1 day'::interval)),
    CONSTRAINT google_ai_maintenance_settings_batch_size_check CHECK (((batch_size >= 1) AND (batch_size <= 100000))),
    CONSTRAINT google_ai_maintenance_settings_cron_history_check CHECK ((cron_history_retention >=
      '01:00:00'::interval)),
    CONSTRAINT google_ai_maintenance_settings_lock_timeout_check CHECK
      (((lock_timeout_ms >= 1) AND (lock_timeout_ms <= 600000))),
    CONSTRAINT google_ai_maintenance_settings_max_batches_check
      CHECK (((max_batches >= 1) AND (max_batches <= 100000))),
    CONSTRAINT google_ai_maintenance_settings_singleton CHECK (id),
    CONSTRAINT google_ai_maintenance_settings_stale_reservation_check CHECK ((stale_reservation_after >=
      '00:07:00'::interval)),
    CONSTRAINT google_ai_maintenance_settings_time_budget_check CHECK ((time_budget > '00:00:00'::interval)),
    CONSTRAINT google_ai_maintenance_settings_token_grace_check CHECK ((token_grace >= '01:00:00'::interval))
);

COMMENT ON TABLE public.google_ai_maintenance_settings IS
    'Housekeeping settings (one row). attempts_retention: how long attempt rows are kept; stale_reservation_after: '
    'when an open reservation counts as abandoned; token_grace: how long expired/revoked tokens are kept; '
    'cron_history_retention: cron.job_run_details kept; batch_size/max_batches/time_budget: work per run; '
    'lock_timeout_ms: longest wait for a table lock.';

CREATE TABLE public.google_ai_maintenance_log (
    id serial NOT NULL,
    operation text NOT NULL,
    tables_affected text[],
    deleted_count integer,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    status text,
    details jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.google_ai_maintenance_log
    ADD CONSTRAINT google_ai_maintenance_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.google_ai_maintenance_settings
    ADD CONSTRAINT google_ai_maintenance_settings_pkey PRIMARY KEY (id);

CREATE INDEX IF NOT EXISTS google_ai_maintenance_log_started_at_idx
    ON public.google_ai_maintenance_log USING btree (started_at);
