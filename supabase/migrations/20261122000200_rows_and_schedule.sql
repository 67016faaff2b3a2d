-- What declarative schemas cannot hold (supabase/schemas has no DML): the rows the gateway needs
-- to run and the pg_cron schedule. Every statement keeps what is there: applied twice, nothing changes.

-- The built-in providers, each its dialect's own row, reached at its dialect's base URL and read by its
-- dialect's key pattern unless the operator's row says otherwise. The owner's key rows all read as
-- google or openai (the adoption migration stopped on any other, naming the rows), and every model row's
-- provider is google unless it says otherwise: the foreign keys the baseline added to the owner's two
-- tables NOT VALID (a check it cannot make before these rows exist) are validated here.
insert into public.google_ai_providers (name, dialect, display_name) values
  ('google', 'google', 'Google'),
  ('openai', 'openai', 'OpenAI')
on conflict (name) do nothing;

alter table public.google_ai_api_keys validate constraint google_ai_api_keys_provider_fkey;

alter table public.google_ai_model_limits validate constraint google_ai_model_limits_provider_fkey;

-- The settings singletons (one row each, id = true): the defaults are the columns' defaults.
insert into public.google_ai_maintenance_settings (id) values (true) on conflict (id) do nothing;

insert into public.google_ai_admission_settings (id) values (true) on conflict (id) do nothing;

-- The two priority classes every credential names.
insert into public.google_ai_priority_classes (name, rank, description) values
  ('interactive', 0, 'A person waits for the answer (the bot). Default for service-key callers.'),
  ('batch', 10, 'Many calls, nobody waiting on each (Kaggle parsers). Default for Kaggle clients.')
on conflict (name) do nothing;

insert into public.google_ai_queue_settings (id) values (true) on conflict (id) do nothing;

-- The models the owner already has are spread (google_ai_model_limits.spread_burst, docs/architecture.md
-- "Spreading the window"), once: only while no row says anything of the spread yet, so an operator's
-- choice stays.
update public.google_ai_model_limits set spread_burst = 1
where not exists (select 1 from public.google_ai_model_limits l where l.spread_burst is not null);

-- A share for people by default: the interactive class keeps 20% of every model's RPM and 10% of its
-- RPD (the seed writes the same on a fresh project), only while the class's percents were never set, so
-- an operator's change or removal is never undone. Its triggers derive the share rows per model.
update public.google_ai_priority_classes set kept_rpm_percent = 20, kept_rpd_percent = 10
where name = 'interactive' and kept_changed_at is null;

-- The metrics fold's mark and fence start at the attempts already there, which are then folded once.
insert into public.google_ai_metric_fold (id, fence_id, fence_at)
values (true, coalesce(pg_catalog.pg_sequence_last_value(
          pg_catalog.pg_get_serial_sequence('public.google_ai_attempts', 'id')::regclass), 0),
        pg_catalog.now())
on conflict (id) do nothing;

-- Counting what was there before the gateway: the rows that can no longer change, once. A log has
-- gaps (rolled-back inserts); a fence taken now would hold them (and every row after the first) live
-- for up to twice stale_reservation_after. The log itself dates the old ones: a row's created_at is
-- its transaction's start, and no transaction stays open longer than stale_reservation_after, so
-- every id up to a row created more than twice that long ago was handed out more than that long ago.
with lag as (
  select coalesce((select s.stale_reservation_after from public.google_ai_maintenance_settings s where s.id),
                  interval '15 minutes') as lag
), old as (
  select (select max(a.id) from public.google_ai_attempts a where a.created_at < pg_catalog.now() - 2 * lag.lag) as id,
         lag.lag
  from lag
)
update public.google_ai_metric_fold f set fence_id = old.id, fence_at = pg_catalog.now() - old.lag
from old
where f.id and old.id is not null and (f.fence_at is null or f.fence_at > pg_catalog.now() - old.lag);
select public.google_ai_metrics_fold(null, true);

-- The schedule: pg_cron runs the housekeeping hourly, vacuums the counter rows every 10 seconds and,
-- where pg_net and Vault exist, calls the `maintenance` Edge Function (key health, model catalogue) every
-- six hours. Applying this file again
-- overwrites the jobs by name, never duplicates them. Without pg_cron it changes nothing and says
-- (NOTICE) how to enable it; re-apply it, or run the cron.schedule statements below, afterwards. A
-- role that may not read cron.database_name (it needs pg_read_all_settings) where pg_cron is not
-- created yet gets the same: the jobs are left unscheduled, not the push stopped. `supabase db push`
-- prints no NOTICE: a job missing shows in the maintenance function's answer (`schedule.missing`) and
-- the metric eve_gateway_cron_job_missing (google_ai_cron_jobs).
--
--   job 'eve-gateway-housekeeping'   '17 * * * *'    select public.google_ai_housekeeping()
--   job 'eve-gateway-counters-vacuum' '10 seconds'   vacuum (skip_locked) public.google_ai_usage_counters
--   job 'eve-gateway-maintenance'    '47 */6 * * *'  select public.google_ai_invoke_maintenance_function()
--
-- The second job reads two Vault secrets (names are part of the API, see docs/maintenance.md):
--   eve_gateway_functions_url   https://<project-ref>.supabase.co/functions/v1
--   eve_gateway_service_key     the project's secret (sb_secret_...) or legacy service_role key
do $$
declare
  v_cron_db text;
  v_unreadable boolean := false;
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    begin
      v_cron_db := pg_catalog.current_setting('cron.database_name', true);
    exception when insufficient_privilege then -- (permission denied to examine "cron.database_name")
      v_unreadable := true;
    end;
    if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
       and v_cron_db is not null and v_cron_db = pg_catalog.current_database() then
      create extension if not exists pg_cron with schema pg_catalog;
    else
      raise notice using message =
        'pg_cron is not available in database ' || pg_catalog.current_database()
        || case when v_unreadable then ' (role ' || current_user || ' may not read cron.database_name: '
                                     || 'it needs pg_read_all_settings)'
                when v_cron_db is null then ' (pg_cron is not preloaded on this server)'
                else ' (cron.database_name is ' || v_cron_db || ')' end
        || ': the gateway housekeeping is not scheduled. On Supabase: Dashboard > Database > Extensions > '
        || 'enable pg_cron, then run: select cron.schedule(''eve-gateway-housekeeping'', ''17 * * * *'', '
        || '''select public.google_ai_housekeeping()''); (or re-apply migration 20261122000200_rows_and_schedule). '
        || 'Until then, run select public.google_ai_housekeeping(); yourself or call the maintenance function.';
      return;
    end if;
  end if;

  perform cron.schedule('eve-gateway-housekeeping', '17 * * * *', 'select public.google_ai_housekeeping()');

  -- Every reservation and finalize of a quota group updates its one counter row (about 2 kB with its
  -- rings). An update stays on its page (heap-only) only while the page has room, and its dead versions
  -- can be pruned only once no statement older than them runs; with a dozen callers queued on the row a
  -- page of three versions is full, so about a third of the updates move the row and the table grows
  -- until a vacuum lists the free space again, which autovacuum does at most once a minute. Under a burst
  -- at concurrency 16 it grew from 12.6 MB after 3,000 requests to 54 MB after 30,000 without this job,
  -- 6.1 MB then 3.6 MB with it (npm run bench, part log-scale). A run reads a few hundred kB in a few
  -- milliseconds; SKIP_LOCKED skips rather than waits.
  perform cron.schedule('eve-gateway-counters-vacuum', '10 seconds', 'vacuum (skip_locked) public.google_ai_usage_counters');

  if pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null
     and pg_catalog.to_regclass('vault.decrypted_secrets') is not null then
    perform cron.schedule('eve-gateway-maintenance', '47 */6 * * *',
      'select public.google_ai_invoke_maintenance_function()');
  else
    raise notice using message =
      'pg_net or Vault is not available: the maintenance function (key health, model catalogue) is not scheduled. '
      || 'On Supabase: enable pg_net (Dashboard > Database > Extensions), store the two Vault secrets '
      || 'eve_gateway_functions_url and eve_gateway_service_key (docs/maintenance.md), then re-apply this migration.';
  end if;
end
$$;
