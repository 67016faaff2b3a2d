-- What maintenance did (the owner's google_ai_maintenance_log), read by the metrics and written by
-- housekeeping; what it is set to do is google_ai_maintenance_settings (05_settings.sql).
set check_function_bodies = off;

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

CREATE INDEX IF NOT EXISTS google_ai_maintenance_log_started_at_idx
    ON public.google_ai_maintenance_log USING btree (started_at);
