-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a pg_cron job the gateway expects and does not find scheduled is seen:
--   google_ai_cron_jobs() lists each expected job (the maintenance function's only where pg_net and Vault
--   exist) with its schedule and whether it is present, read by the maintenance run (schedule.missing) and by
--   google_ai_metrics() as eve_gateway_cron_job_missing{job}
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_cron_jobs()
 RETURNS TABLE(job text, schedule text, present boolean)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metrics()
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_at timestamptz := pg_catalog.now();
begin
  perform public.google_ai_metrics_fold(null, false);
  -- (PL/pgSQL, not SQL: a SQL function with SET clauses is planned again on every call, about half a
  -- scrape's CPU; this keeps its plan for the connection.)
  -- (A sample without a value has none to say: an owner's older log row may lack its times.)
  return query
    with fold as (select (select f.folded_through from public.google_ai_metric_fold f where f.id) as mark)
    select s.* from (
      select c.* from fold, public.google_ai_metric_counts(v_at, fold.mark) c
      union all
      select q.* from public.google_ai_metric_quota(v_at) q
      union all
      select g.* from fold, public.google_ai_metric_gauges(v_at, fold.mark) g
      union all -- (the pg_cron jobs: 1 where one is missing)
      select 'eve_gateway_cron_job_missing', 'eve_gateway_cron_job_missing',
             public.google_ai_metric_label('job', j.job), case when j.present then 0 else 1 end
      from public.google_ai_cron_jobs() j
    ) s
    where s.value is not null;
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_cron_jobs() from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_cron_jobs() to service_role;
grant execute on function public.google_ai_cron_jobs() to eve_gateway;
comment on function public.google_ai_cron_jobs() is 'The pg_cron jobs the gateway expects here (the maintenance function''s only where pg_net and Vault exist), with its schedule, and whether each is scheduled (active, in this database).';
