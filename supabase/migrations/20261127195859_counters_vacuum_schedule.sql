-- What it changes: pg_cron vacuums the counter rows every 10 seconds (job 'eve-gateway-counters-vacuum'),
--   so their table stays the size of a few seconds' updates however long the load lasts.
--
-- Written by hand: a pg_cron schedule is not schema (db:diff cannot see it). Why: every reservation and
-- finalize of a quota group updates its one counter row (about 2 kB with its rings). An update stays on
-- its page (heap-only, no new index entries) only while the page has room, and the dead versions on it
-- can be pruned only once no statement that began before them is still running; with a dozen callers
-- queued on the row, a page of three versions is full, so about a third of the updates move the row to a
-- new page and the table grows until a vacuum lists the free space again. Autovacuum looks at most once
-- a minute (autovacuum_naptime, a server setting): under a burst at concurrency 16 the table grew from
-- 12.6 MB after 3,000 requests to 54 MB after 30,000 with it alone; with this job it was 6.1 MB, then
-- 3.6 MB (npm run bench, part log-scale).
-- A vacuum of this table reads a few hundred kB and takes a few milliseconds; SKIP_LOCKED makes a run
-- that would wait for a lock skip instead.
--
-- Applying this file again overwrites the job by name. Without pg_cron (or outside cron.database_name)
-- it changes nothing and says so (NOTICE); autovacuum still bounds the table, by a minute's updates.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise notice using message =
      'pg_cron is not available in database ' || pg_catalog.current_database()
      || ': the counter rows are not vacuumed every 10 seconds (autovacuum still vacuums them). On Supabase: enable '
      || 'pg_cron, then run: select cron.schedule(''eve-gateway-counters-vacuum'', ''10 seconds'', '
      || '''vacuum (skip_locked) public.google_ai_usage_counters'');';
    return;
  end if;
  perform cron.schedule('eve-gateway-counters-vacuum', '10 seconds',
    'vacuum (skip_locked) public.google_ai_usage_counters');
end
$$;
