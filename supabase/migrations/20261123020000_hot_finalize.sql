-- Finalize as a heap-only (HOT) update. Every request's attempt row is written twice: inserted
-- 'reserved' by the reservation, then given its outcome by finalize (or release). The second write
-- was never HOT: 'status' appears in the predicate of google_ai_attempts_open_idx, so each outcome
-- wrote a whole new row version plus a new entry in every one of the table's seven indexes. Now no
-- index names a column an outcome changes, and pages keep room for the new version, so an outcome
-- rewrites the row within its page and touches no index.
--
-- The only reader of that index was housekeeping's abandon step (reservations with no outcome after
-- stale_reservation_after). It reads the created_at index instead, from where the last complete
-- pass stopped: every row older than that was given an outcome or abandoned then.

drop index if exists public.google_ai_attempts_open_idx;

-- Room in each page for the outcome of the rows inserted into it (new pages only; nothing is rewritten).
alter table public.google_ai_attempts set (fillfactor = 80);

create or replace function public.google_ai_housekeeping_abandon(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_cutoff timestamptz := p_now - p_settings.stale_reservation_after;
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_done timestamptz;
  v_from timestamptz;
  v_last timestamptz;
  v_start timestamptz;
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
begin
  -- Where the last complete pass stopped (its cutoff), less an hour for the rows of transactions
  -- that were open then; never later than a day before this cutoff (a clock set back, a log row of
  -- an injected time). No complete pass logged: from the beginning.
  select (l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'older_than')::timestamptz into v_done
  from public.google_ai_maintenance_log l
  where l.operation = 'housekeeping'
    and l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'status' = 'succeeded'
    and l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'more' = 'false'
  order by l.id desc
  limit 1;
  v_from := least(coalesce(v_done, '-infinity') - interval '1 hour', v_cutoff - interval '1 day');
  v_start := v_from;

  loop
    if v_batches >= p_settings.max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
    with picked as (
      select s.id from public.google_ai_attempts s
      where s.created_at >= v_from and s.created_at < v_cutoff and s.status = 'reserved'
        and coalesce(s.minute_bucket, s.created_at) < v_minute
      order by s.created_at
      limit p_settings.batch_size
      for update skip locked),
    closed as (
      update public.google_ai_attempts a set
        status = 'abandoned',
        finished_at = p_now,
        error_message = coalesce(a.error_message,
          'abandoned by housekeeping: no outcome within ' || p_settings.stale_reservation_after::text)
      where a.id in (select p.id from picked p) and a.status = 'reserved'
      returning a.created_at)
    select count(*), max(c.created_at) into v_n, v_last from closed c;
    -- The next batch starts where this one ended, not at the rows it just closed.
    v_from := coalesce(v_last, v_from);
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('abandoned', v_total, 'batches', v_batches, 'more', v_more, 'older_than', v_cutoff,
    'from', v_start);
end
$$;
