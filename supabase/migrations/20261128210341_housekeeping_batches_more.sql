-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: housekeeping's batched steps loop while their budget lasts and say more when their last
--   batch was full
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text, p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone, p_order text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_sql text;
  v_n bigint := p_batch;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  v_sql := format(
    'delete from %s t where t.%I in (select s.%I from %s s where %s %s limit %s for update skip locked)',
    p_table, p_key, p_key, p_table, p_condition,
    coalesce('order by ' || p_order, ''), p_batch);
  while v_batches < p_max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    execute v_sql using p_cutoff;
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_batch;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_n >= p_batch);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_abandon(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_cutoff timestamptz := p_now - p_settings.stale_reservation_after;
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_done timestamptz;
  v_from timestamptz;
  v_last timestamptz;
  v_start timestamptz;
  v_n bigint := p_settings.batch_size;
  v_total bigint := 0;
  v_batches integer := 0;
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

  -- (As google_ai_delete_batched: 'more' when the last batch was full, or none was taken.)
  while v_batches < p_settings.max_batches and pg_catalog.clock_timestamp() < p_deadline loop
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
  return jsonb_build_object('abandoned', v_total, 'batches', v_batches, 'more', v_n >= p_settings.batch_size,
    'older_than', v_cutoff, 'from', v_start);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_attempts(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_cutoff timestamptz := p_now - p_settings.attempts_retention;
  -- The fold goes by the database clock even when the run is given another (tests): whether a row
  -- can still change is a matter of real time.
  v_mark bigint := public.google_ai_metrics_fold(null, true);
  v_ids bigint[];
  v_above bigint[];
  v_n bigint := p_settings.batch_size;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  while v_batches < p_settings.max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    -- An open reservation is never deleted here (the abandon step closes it first).
    select coalesce(array_agg(s.id), '{}') into v_ids
    from (select s.id from public.google_ai_attempts s
          where s.created_at < v_cutoff and s.status <> 'reserved'
          order by s.created_at limit p_settings.batch_size for update skip locked) s;
    v_n := cardinality(v_ids);
    if v_n > 0 then
      -- Rows the fold has not reached (an open reservation held it back): into the totals as they go.
      select coalesce(array_agg(i), '{}') into v_above from unnest(v_ids) i where i > v_mark;
      if cardinality(v_above) > 0 then
        insert into public.google_ai_metric_totals as m (family, suffix, labels, le, value)
        select s.family, s.suffix, s.labels, s.le, s.value
        from public.google_ai_metric_samples(
          (select min(i) - 1 from unnest(v_above) i), (select max(i) from unnest(v_above) i), v_above) s
        on conflict (family, suffix, labels, le) do update set value = m.value + excluded.value;
      end if;
      delete from public.google_ai_attempts a where a.id = any (v_ids);
    end if;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_n >= p_settings.batch_size,
    'older_than', v_cutoff);
end
$function$
;
