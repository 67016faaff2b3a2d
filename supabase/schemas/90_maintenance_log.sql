-- What maintenance did (the owner's google_ai_maintenance_log), read by the metrics and written by
-- housekeeping; what it is set to do is google_ai_maintenance_settings (05_settings.sql); whether its
-- pg_cron jobs are scheduled (google_ai_cron_jobs, read by the metrics and the maintenance run).
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

-- The pg_cron jobs the gateway runs on (20261122000200_rows_and_schedule.sql schedules them; its header
-- lists them with their commands, and docs/maintenance.md the statements that schedule each again),
-- each with its schedule, and whether it is scheduled: present, active, in this database. The
-- maintenance function's job is expected only where it can run (pg_net and Vault).
-- A migration cannot say a job is missing (`supabase db push` prints no NOTICE): this is where it shows,
-- in the maintenance run's answer and the metric eve_gateway_cron_job_missing. pg_cron's table is found
-- by name, so without pg_cron every expected job is missing and the function still compiles. Security
-- definer: cron.job shows each role only its own jobs, and they are the migrations' role's, this
-- function's owner.
CREATE OR REPLACE FUNCTION public.google_ai_cron_jobs() RETURNS TABLE(job text, schedule text, present boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_cron_jobs regclass := pg_catalog.to_regclass('cron.job');
  v_scheduled text[] := '{}'::text[];
begin
  if v_cron_jobs is not null then
    execute pg_catalog.format('select coalesce(pg_catalog.array_agg(j.jobname), ''{}'') from %s j '
                              || 'where j.active and j.database = pg_catalog.current_database()', v_cron_jobs)
      into v_scheduled;
  end if;
  return query
    select e.job, e.schedule, e.job = any (v_scheduled)
    from (values
      ('eve-gateway-housekeeping', '17 * * * *', true),
      ('eve-gateway-counters-vacuum', '10 seconds', true),
      ('eve-gateway-maintenance', '47 */6 * * *',
       pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null
       and pg_catalog.to_regclass('vault.decrypted_secrets') is not null)
    ) e(job, schedule, expected)
    where e.expected
    order by 1;
end
$$;

COMMENT ON FUNCTION public.google_ai_cron_jobs() IS
    'The pg_cron jobs the gateway expects here (the maintenance function''s only where pg_net and Vault exist), '
    'with its schedule, and whether each is scheduled (active, in this database).';
