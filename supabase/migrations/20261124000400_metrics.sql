-- Metrics: what the gateway does, in Prometheus' text format, read from the database in one call
-- (`select public.google_ai_metrics()`, served by the maintenance function's GET /metrics route).
--
-- Counters must never go down (Prometheus reads a drop as a restart of the counter), yet the rows
-- they count are trimmed by housekeeping. So every counter is the sum of two parts:
--   folded  google_ai_metric_totals: the running totals of attempt rows already counted, per series;
--   live    the attempt rows above the fold's mark (google_ai_metric_fold.folded_through), counted
--           at each scrape.
-- The fold moves rows from live to folded in one transaction (their sum unchanged): a scrape folds
-- the rows that can no longer change (decided, and older than stale_reservation_after: no running
-- function writes them again), up to the first row that still can, so each scrape reads only the
-- last minutes of rows however many the table holds. Housekeeping deletes only what the totals
-- already hold, or folds a row as it deletes it (google_ai_housekeeping_attempts below), so a trim
-- changes no counter; the totals are a table, so a database restart changes none either.
-- A row is counted once it is decided: an open reservation ('reserved') is a gauge (in flight).
--
-- Labels: model, quota_group (never a key alias or id), priority_class, and caller where it helps,
-- bounded: a Kaggle client's name (google_ai_clients rows), a service caller's label when the
-- operator named it in google_ai_caller_budgets, otherwise 'service'.
-- Nothing here runs on the reservation or finalize: the cost is the scrape's and housekeeping's.

-- Running totals ----------------------------------------------------------------------------------
create table if not exists public.google_ai_metric_totals (
  -- The metric family (its # TYPE name) and the sample's suffix ('', '_bucket', '_sum').
  family  text not null,
  suffix  text not null default '',
  -- Rendered label pairs without `le` (model="…",quota_group="…"), in the family's fixed order.
  labels  text not null,
  -- A histogram bucket's upper bound in seconds (this bucket alone, not cumulative); NaN otherwise.
  le      numeric not null default 'NaN',
  value   numeric not null default 0,
  primary key (family, suffix, labels, le)
);
comment on table public.google_ai_metric_totals is
  'Metrics: running totals of the attempt rows already folded (google_ai_metric_fold), per series. A scrape '
  'adds the rows above the fold''s mark; housekeeping folds what it deletes. Never holds a key or a secret.';

create table if not exists public.google_ai_metric_fold (
  id             boolean primary key default true constraint google_ai_metric_fold_one_row check (id),
  -- Every attempt row with id <= folded_through is in the totals (or was deleted after it was).
  folded_through bigint not null default 0,
  folded_at      timestamptz,
  rows_folded    bigint not null default 0
);
insert into public.google_ai_metric_fold (id) values (true) on conflict (id) do nothing;
comment on table public.google_ai_metric_fold is
  'Metrics: the attempt rows (id <= folded_through) whose counts are in google_ai_metric_totals.';

-- Rendering helpers ---------------------------------------------------------------------------------
-- A label pair with its value escaped as the text format wants (backslash, quote, newline).
create or replace function public.google_ai_metric_label(p_name text, p_value text)
returns text language sql immutable parallel safe
as $$
  select p_name operator(pg_catalog.||) '="' operator(pg_catalog.||)
    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(coalesce(p_value, ''), E'\\', E'\\\\'), '"', E'\\"'),
      E'\n', E'\\n') operator(pg_catalog.||) '"'
$$;

-- The histograms' bucket bounds in seconds, +Inf last (the columns hold milliseconds).
create or replace function public.google_ai_metric_bounds_s()
returns numeric[] language sql immutable parallel safe
as $$ select '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,120,300,Infinity}'::numeric[] $$;

-- The (non-cumulative) bucket of a duration in ms: the smallest bound >= it (le is inclusive).
create or replace function public.google_ai_metric_le(p_ms integer)
returns numeric language sql immutable parallel safe
as $$
  select (public.google_ai_metric_bounds_s())[
    pg_catalog.width_bucket(p_ms::double precision operator(pg_catalog.-) 0.5,
      '{5,10,25,50,100,250,500,1000,2500,5000,10000,30000,60000,120000,300000}'::double precision[])
    operator(pg_catalog.+) 1]
$$;

-- The samples the decided attempt rows with p_after < id <= p_through (and, given p_only, among
-- those ids) add to the counters and histograms, summed per series. One definition for the fold, the
-- scrape's live part and housekeeping's fold-on-delete, so the three always agree. Set-based: rows
-- are grouped by their labels first, and labels are rendered per group, not per row.
-- The caller label is bounded: a Kaggle client's (client_id set), a service caller the operator
-- named in google_ai_caller_budgets, else 'service'.
create or replace function public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[] default null)
returns table (family text, suffix text, labels text, le numeric, value numeric)
language sql stable set search_path = ''
as $$
  with decided as materialized (
    select a.model, a.quota_group, a.priority_class, a.status, a.limit_hit, a.quota_cause, a.http_status,
           a.service_tier, a.served_tier, a.input_tokens, a.output_tokens, a.latency_ms, a.first_byte_ms, a.added_ms, a.wait_ms,
           case when a.client_id is not null or b.caller is not null then a.caller else 'service' end as caller
    from public.google_ai_attempts a
    left join public.google_ai_caller_budgets b on b.caller = a.caller
    where a.id > p_after and a.id <= p_through and a.status <> 'reserved'
      and (p_only is null or a.id = any (p_only))
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as google_429,
           coalesce(d.service_tier, 'standard') as service_tier, d.served_tier,
           count(*)::numeric as n, sum(d.input_tokens)::numeric as tokens_in, sum(d.output_tokens)::numeric as tokens_out
    from decided d
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
  ), counters as (
    select x.family, x.labels, sum(x.value) as value
    from (select g.*, public.google_ai_metric_label('model', g.model) as m,
                 public.google_ai_metric_label('quota_group', g.quota_group) as qg,
                 public.google_ai_metric_label('priority_class', g.priority_class) as pc,
                 public.google_ai_metric_label('caller', g.caller) as who
          from groups g) g
    cross join lateral (values
      ('eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc, g.who, public.google_ai_metric_label('status', g.status)), g.n),
      ('eve_gateway_refusals_total', concat_ws(',', g.m, g.pc, g.who, public.google_ai_metric_label('limit', g.limit_hit)),
        case when g.status = 'refused' then g.n end),
      ('eve_gateway_google_429_total', concat_ws(',', g.m, g.qg, public.google_ai_metric_label('cause', g.cause)),
        case when g.google_429 then g.n end),
      ('eve_gateway_google_calls_total', concat_ws(',', g.m, g.qg, public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier), public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'google_error', 'network_error', 'timeout', 'withdrawn') then g.n end),
      ('eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg), case when g.status = 'abandoned' then g.n end),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'), g.tokens_in),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'), g.tokens_out)
    ) x(family, labels, value)
    where x.value is not null
    group by 1, 2
  ), durations as (
    -- One row per measured duration: its histogram, its two labels (model and quota group or class), its ms.
    select h.family, d.model, h.second_name, h.second_value, h.ms
    from decided d
    cross join lateral (values
      ('eve_gateway_google_latency_seconds', 'quota_group', d.quota_group, d.latency_ms),
      ('eve_gateway_time_to_first_byte_seconds', 'priority_class', d.priority_class, d.first_byte_ms),
      ('eve_gateway_added_latency_seconds', 'priority_class', d.priority_class, d.added_ms),
      -- The wait before an admission (a refused row is a wait still going on: its row is updated).
      ('eve_gateway_wait_seconds', 'priority_class', d.priority_class, case when d.status <> 'refused' then d.wait_ms end)
    ) h(family, second_name, second_value, ms)
    where h.ms is not null
  ), buckets as (
    select u.family, u.model, u.second_name, u.second_value, public.google_ai_metric_le(u.ms) as le,
           count(*)::numeric as n, sum(u.ms)::numeric as ms
    from durations u
    group by 1, 2, 3, 4, 5
  ), histogram_rows as (
    select b.family, concat_ws(',', public.google_ai_metric_label('model', b.model),
                               public.google_ai_metric_label(b.second_name, b.second_value)) as labels,
           b.le, b.n, b.ms
    from buckets b
  )
  select c.family, '', c.labels, 'NaN'::numeric, c.value from counters c
  union all
  select h.family, '_bucket', h.labels, h.le, sum(h.n) from histogram_rows h group by 1, 3, 4
  union all
  select h.family, '_sum', h.labels, 'NaN'::numeric, sum(h.ms) / 1000 from histogram_rows h group by 1, 3
$$;

-- The fold -----------------------------------------------------------------------------------------
-- Adds the attempt rows that can no longer change to the totals and moves the mark past them: rows
-- above the mark, up to (not including) the first one still open ('reserved') or younger than
-- stale_reservation_after (a waiting caller's refusal row is updated while it waits; no function
-- runs that long). p_wait: wait for a fold in progress (housekeeping) or give up at once (a scrape:
-- the other fold does the work). Returns the mark after the call.
create or replace function public.google_ai_metrics_fold(p_now timestamptz default null, p_wait boolean default false)
returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_mark bigint;
  v_stop bigint;
  v_through bigint;
  v_lag interval;
begin
  if p_wait then
    select f.folded_through into v_mark from public.google_ai_metric_fold f where f.id for update;
  else
    select f.folded_through into v_mark from public.google_ai_metric_fold f where f.id for update skip locked;
    if not found then
      return (select f.folded_through from public.google_ai_metric_fold f where f.id);
    end if;
  end if;
  if v_mark is null then
    insert into public.google_ai_metric_fold (id) values (true) on conflict (id) do nothing;
    return 0;
  end if;
  select coalesce((select s.stale_reservation_after from public.google_ai_maintenance_settings s where s.id),
                  interval '15 minutes') into v_lag;

  -- The first row that may still change, read along the primary key from the mark.
  select a.id into v_stop from public.google_ai_attempts a
  where a.id > v_mark and (a.status = 'reserved' or a.created_at >= v_now - v_lag)
  order by a.id limit 1;
  v_through := coalesce(v_stop - 1, (select max(a.id) from public.google_ai_attempts a), v_mark);
  if v_through <= v_mark then
    return v_mark;
  end if;

  insert into public.google_ai_metric_totals as t (family, suffix, labels, le, value)
  select s.family, s.suffix, s.labels, s.le, s.value
  from public.google_ai_metric_samples(v_mark, v_through) s
  on conflict (family, suffix, labels, le) do update set value = t.value + excluded.value;

  update public.google_ai_metric_fold f set
    folded_through = v_through,
    folded_at = pg_catalog.clock_timestamp(),
    rows_folded = f.rows_folded + (select count(*) from public.google_ai_attempts a where a.id > v_mark and a.id <= v_through)
  where f.id;
  return v_through;
end
$$;

-- The scrape ---------------------------------------------------------------------------------------
-- The text of one scrape: the folded totals plus the live rows, and the gauges read now. One
-- statement, so it reads one snapshot: a fold or a housekeeping run that commits meanwhile is seen
-- entirely or not at all.
create or replace function public.google_ai_metrics_text()
returns text
language sql stable security definer set search_path = ''
as $$
with clock as (
  select now() as at,
         (select f.folded_through from public.google_ai_metric_fold f where f.id) as mark,
         (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id) as guard_ms
), families (family, kind, help) as (values
  ('eve_gateway_attempts_total', 'counter', 'Attempt rows decided (one per reservation decision and its outcome), by status.'),
  ('eve_gateway_refusals_total', 'counter', 'Requests the gateway refused or made wait, by the limit that refused them.'),
  ('eve_gateway_google_calls_total', 'counter', 'Calls that reached Google, by outcome, the service tier asked for (standard, flex, priority) and the one Google says served.'),
  ('eve_gateway_google_429_total', 'counter', 'Google''s own 429 answers, by cause (minute, day, limit_zero, spend_cap, unknown).'),
  ('eve_gateway_finalizes_lost_total', 'counter', 'Reservations no outcome ever reached (abandoned by housekeeping).'),
  ('eve_gateway_tokens_total', 'counter', 'Tokens Google counted (gen_ai.client.token.usage), by gen_ai_token_type.'),
  ('eve_gateway_google_latency_seconds', 'histogram', 'Google''s own time per call (gen_ai.server.request.duration).'),
  ('eve_gateway_time_to_first_byte_seconds', 'histogram', 'From a request''s arrival to its answer''s first byte (gen_ai.server.time_to_first_token for streams).'),
  ('eve_gateway_added_latency_seconds', 'histogram', 'Time the gateway added to a request: Server-Timing''s total less Google and the wait.'),
  ('eve_gateway_wait_seconds', 'histogram', 'How long an admitted request waited for capacity, by priority class.'),
  ('eve_gateway_attempts_in_flight', 'gauge', 'Reservations open now (Google called, no outcome yet).'),
  ('eve_gateway_quota_used', 'gauge', 'Admissions in the current window per quota group and model: window="minute" (the sliding 60 s + guard), "day" (the Pacific day).'),
  ('eve_gateway_quota_limit', 'gauge', 'The limit of that window after the model''s safety margin (absent: no limit).'),
  ('eve_gateway_pacific_day_end_timestamp_seconds', 'gauge', 'When the current Pacific day ends (Google''s daily quotas reset).'),
  ('eve_gateway_queue_depth', 'gauge', 'Requests waiting in the admission queue, by model and priority class.'),
  ('eve_gateway_queue_oldest_wait_seconds', 'gauge', 'How long the oldest request in the queue has waited.'),
  ('eve_gateway_cooldown_seconds_left', 'gauge', 'A quota group resting for a model, by cause: seconds until it may book again.'),
  ('eve_gateway_model_withdrawn', 'gauge', '1 when Google answered 404 for the model and requests pass over it.'),
  ('eve_gateway_model_shutdown_timestamp_seconds', 'gauge', 'The day Google stops serving the model, with its successor.'),
  ('eve_gateway_keys', 'gauge', 'Keys by quota group, last health check (ok, invalid, missing_secret, error, unchecked) and rotation.'),
  ('eve_gateway_caller_budget_remaining', 'gauge', 'What a Kaggle client (or a named service caller) may still use today.'),
  ('eve_gateway_housekeeping_last_run_timestamp_seconds', 'gauge', 'When the last housekeeping run (not skipped) ended.'),
  ('eve_gateway_housekeeping_last_success_timestamp_seconds', 'gauge', 'When the last successful housekeeping run ended.'),
  ('eve_gateway_housekeeping_last_run_failed', 'gauge', '1 when the last housekeeping run failed.'),
  ('eve_gateway_metrics_live_rows', 'gauge', 'Attempt rows this scrape counted itself (above the fold''s mark).')
), live as (
  select a.status, a.model, a.quota_group from public.google_ai_attempts a, clock where a.id > clock.mark
), counted as (
  select t.family, t.suffix, t.labels, t.le, t.value from public.google_ai_metric_totals t
  union all
  select s.family, s.suffix, s.labels, s.le, s.value
  from clock cross join lateral public.google_ai_metric_samples(clock.mark, 9223372036854775807) s
), summed as (
  select c.family, c.suffix, c.labels, c.le, sum(c.value) as value from counted c group by 1, 2, 3, 4
), histograms as (
  -- Every bucket of each histogram series, cumulative, +Inf last; _count is the +Inf bucket.
  select h.family, h.labels, b.le,
         sum(coalesce(s.value, 0)) over (partition by h.family, h.labels order by b.le) as value
  from (select distinct s.family, s.labels from summed s where s.suffix = '_bucket') h
  cross join unnest(public.google_ai_metric_bounds_s()) b(le)
  left join summed s on s.family = h.family and s.labels = h.labels and s.suffix = '_bucket' and s.le = b.le
), serving as (
  select public.google_ai_quota_group(k.project_id, k.id) as quota_group, l.model
  from public.google_ai_api_keys k
  join public.google_ai_model_limits l on l.is_active and (k.models is null or l.model = any (k.models))
  where k.is_active
  union
  select c.quota_group, c.model from public.google_ai_usage_counters c where c.quota_group is not null
), quota as (
  select p.quota_group, p.model,
         (select count(*) from public.google_ai_admissions w
          where w.quota_group = p.quota_group and w.model = p.model
            and w.admitted_at > clock.at - (60000 + coalesce(clock.guard_ms, 1000)) * interval '1 millisecond') as minute_requests,
         (select coalesce(sum(w.tokens), 0) from public.google_ai_admissions w
          where w.quota_group = p.quota_group and w.model = p.model
            and w.admitted_at > clock.at - (60000 + coalesce(clock.guard_ms, 1000)) * interval '1 millisecond') as minute_tokens,
         coalesce((select case when c.day_bucket = public.google_ai_pacific_day(clock.at) then c.rpd_used else 0 end
                   from public.google_ai_usage_counters c where c.quota_group = p.quota_group and c.model = p.model), 0)
           as day_requests,
         public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
  from serving p cross join clock
  left join public.google_ai_model_limits l on l.model = p.model
), last_run as (
  select m.completed_at, m.status from public.google_ai_maintenance_log m
  where m.operation = 'housekeeping' and m.status <> 'skipped'
  order by m.started_at desc limit 1
), gauges (family, labels, value) as (
  select 'eve_gateway_attempts_in_flight', concat_ws(',', public.google_ai_metric_label('model', a.model),
           public.google_ai_metric_label('quota_group', a.quota_group)), count(*)::numeric
  from live a where a.status = 'reserved' group by a.model, a.quota_group
  union all
  select 'eve_gateway_quota_used', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('quota_group', q.quota_group), x.w), x.v
  from quota q cross join lateral (values
    ('window="minute",unit="requests"', q.minute_requests::numeric, q.rpm::numeric),
    ('window="minute",unit="tokens"', q.minute_tokens::numeric, q.tpm::numeric),
    ('window="day",unit="requests"', q.day_requests::numeric, q.rpd::numeric)) x(w, v, lim)
  union all
  select 'eve_gateway_quota_limit', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('quota_group', q.quota_group), x.w), x.lim
  from quota q cross join lateral (values
    ('window="minute",unit="requests"', q.rpm::numeric),
    ('window="minute",unit="tokens"', q.tpm::numeric),
    ('window="day",unit="requests"', q.rpd::numeric)) x(w, lim)
  where x.lim is not null
  union all
  select 'eve_gateway_pacific_day_end_timestamp_seconds', '',
         extract(epoch from public.google_ai_pacific_midnight_after(clock.at)) from clock
  union all
  select 'eve_gateway_queue_depth', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('priority_class', q.priority_class)), count(*)::numeric
  from public.google_ai_queue q, clock where q.lease_until > clock.at group by q.model, q.priority_class
  union all
  select 'eve_gateway_queue_oldest_wait_seconds', concat_ws(',', public.google_ai_metric_label('model', q.model),
           public.google_ai_metric_label('priority_class', q.priority_class)),
         round(extract(epoch from (clock.at - min(q.enqueued_at))), 3)
  from public.google_ai_queue q, clock where q.lease_until > clock.at group by q.model, q.priority_class, clock.at
  union all
  select 'eve_gateway_cooldown_seconds_left', concat_ws(',', public.google_ai_metric_label('model', cd.model),
           public.google_ai_metric_label('quota_group', cd.quota_group),
           public.google_ai_metric_label('cause', coalesce(cd.cause, 'unknown'))),
         round(extract(epoch from (cd.cooldown_until - clock.at)), 3)
  from public.google_ai_cooldowns cd, clock where cd.cooldown_until > clock.at
  union all
  select 'eve_gateway_model_withdrawn', public.google_ai_metric_label('model', l.model),
         case when l.withdrawn_at is not null then 1 else 0 end
  from public.google_ai_model_limits l where l.is_active
  union all
  select 'eve_gateway_model_shutdown_timestamp_seconds', concat_ws(',', public.google_ai_metric_label('model', l.model),
           public.google_ai_metric_label('successor', l.successor)),
         extract(epoch from (l.shutdown_date::timestamp at time zone 'America/Los_Angeles'))
  from public.google_ai_model_limits l where l.is_active and l.shutdown_date is not null
  union all
  select 'eve_gateway_keys', concat_ws(',', public.google_ai_metric_label('quota_group', public.google_ai_quota_group(k.project_id, k.id)),
           public.google_ai_metric_label('health', coalesce(h.status, 'unchecked')),
           public.google_ai_metric_label('active', k.is_active::text)), count(*)::numeric
  from public.google_ai_api_keys k left join public.google_ai_key_health h on h.api_key_id = k.id
  group by 2
  union all
  select 'eve_gateway_caller_budget_remaining', concat_ws(',', public.google_ai_metric_label('caller', b.caller),
           public.google_ai_metric_label('unit', x.unit)), greatest(x.lim - x.used, 0)
  from (select 'client:' || c.name as caller, c.daily_max_requests as max_requests, c.daily_max_tokens::bigint as max_tokens,
               case when c.day_bucket = public.google_ai_pacific_day(clock.at) then c.requests_today else 0 end as requests,
               case when c.day_bucket = public.google_ai_pacific_day(clock.at) then c.tokens_today::bigint else 0 end as tokens
        from public.google_ai_clients c, clock where c.revoked_at is null
        union all
        select s.caller, s.daily_max_requests, s.daily_max_tokens::bigint,
               case when s.day_bucket = public.google_ai_pacific_day(clock.at) then s.requests_today else 0 end,
               case when s.day_bucket = public.google_ai_pacific_day(clock.at) then s.tokens_today else 0 end
        from public.google_ai_caller_budgets s, clock) b
  cross join lateral (values ('requests', b.max_requests::numeric, b.requests::numeric),
                             ('tokens', b.max_tokens::numeric, b.tokens::numeric)) x(unit, lim, used)
  where x.lim is not null
  union all
  select 'eve_gateway_housekeeping_last_run_timestamp_seconds', '', extract(epoch from r.completed_at) from last_run r
  union all
  select 'eve_gateway_housekeeping_last_run_failed', '', case when r.status = 'failed' then 1 else 0 end from last_run r
  union all
  select 'eve_gateway_housekeeping_last_success_timestamp_seconds', '', extract(epoch from m.completed_at)
  from (select m.completed_at from public.google_ai_maintenance_log m
        where m.operation = 'housekeeping' and m.status = 'succeeded' order by m.started_at desc limit 1) m
  union all
  select 'eve_gateway_metrics_live_rows', '', count(*)::numeric from live
), samples (family, name, labels, value) as (
  select s.family, s.family || s.suffix, s.labels, s.value from summed s where s.suffix = ''
  union all
  select s.family, s.family || '_sum', s.labels, s.value from summed s where s.suffix = '_sum'
  union all
  select h.family, h.family || '_bucket',
         concat_ws(',', nullif(h.labels, ''), 'le="' || case when h.le = 'Infinity' then '+Inf' else h.le::text end || '"'),
         h.value
  from histograms h
  union all
  select h.family, h.family || '_count', h.labels, h.value from histograms h where h.le = 'Infinity'
  union all
  select g.family, g.family, g.labels, g.value from gauges g
)
-- Every family's HELP and TYPE, even before it has a sample, so a scraper knows each from the start.
select string_agg(block, '' order by family)
from (
  select f.family,
         '# HELP ' || f.family || ' ' || f.help || E'\n# TYPE ' || f.family || ' ' || f.kind || E'\n' ||
         coalesce(string_agg(s.name || case when s.labels = '' then '' else '{' || s.labels || '}' end || ' ' ||
                             case when s.value = 'Infinity' then '+Inf' else trim_scale(s.value)::text end || E'\n',
                             '' order by s.name, s.labels), '') as block
  from families f left join samples s on s.family = f.family
  group by f.family, f.kind, f.help
) blocks
$$;

-- What the metrics route calls: the fold (skipped when another one is running), then the text.
create or replace function public.google_ai_metrics()
returns text
language plpgsql security definer set search_path = ''
as $$
begin
  perform public.google_ai_metrics_fold(null, false);
  return public.google_ai_metrics_text();
end
$$;

comment on function public.google_ai_metrics() is
  'Prometheus text format (version 0.0.4) of the gateway''s counters, histograms and gauges: one call per scrape.';

-- Housekeeping: a trim changes no counter ---------------------------------------------------------------
-- google_ai_housekeeping_attempts (20261122000600_housekeeping.sql), with the same batches and answer:
-- it folds first (waiting for a scrape's fold to end) and holds the fold's row lock while it deletes,
-- so the mark cannot move; a row above the mark is added to the totals in the statement that deletes it.
create or replace function public.google_ai_housekeeping_attempts(
  p_now timestamptz, p_settings public.google_ai_maintenance_settings, p_deadline timestamptz)
returns jsonb
language plpgsql set search_path = ''
as $$
declare
  v_cutoff timestamptz := p_now - p_settings.attempts_retention;
  -- The fold goes by the database clock even when the run is given another (tests): whether a row
  -- can still change is a matter of real time.
  v_mark bigint := public.google_ai_metrics_fold(null, true);
  v_ids bigint[];
  v_above bigint[];
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
begin
  loop
    if v_batches >= p_settings.max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
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
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_more, 'older_than', v_cutoff);
end
$$;

-- Counting what was there before this file: the rows that can no longer change, once.
select public.google_ai_metrics_fold(null, true);

-- Access (as in the access file) --------------------------------------------------------------------------
alter table public.google_ai_metric_totals enable row level security;
alter table public.google_ai_metric_fold enable row level security;
revoke all on table public.google_ai_metric_totals, public.google_ai_metric_fold from public, anon, authenticated, service_role;
grant select on public.google_ai_metric_totals, public.google_ai_metric_fold to service_role;

revoke all on function
  public.google_ai_metric_label(text, text),
  public.google_ai_metric_bounds_s(),
  public.google_ai_metric_le(integer),
  public.google_ai_metric_samples(bigint, bigint, bigint[]),
  public.google_ai_metrics_fold(timestamptz, boolean),
  public.google_ai_metrics_text(),
  public.google_ai_metrics(),
  public.google_ai_housekeeping_attempts(timestamptz, public.google_ai_maintenance_settings, timestamptz)
from public, anon, authenticated, service_role;
revoke all on function public.google_ai_metrics() from eve_gateway;
-- The maintenance function's metrics route and the operator's tools read the scrape.
grant execute on function public.google_ai_metrics() to service_role, eve_gateway;
