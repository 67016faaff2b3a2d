-- Metrics from the database's truth: running totals folded from attempt rows that can no longer
-- change (with a fence against ids not committed yet) and one scrape's Prometheus text.
set check_function_bodies = off;

CREATE TABLE public.google_ai_metric_fold (
    id boolean DEFAULT true NOT NULL,
    folded_through bigint DEFAULT 0 NOT NULL,
    folded_at timestamp with time zone,
    rows_folded bigint DEFAULT 0 NOT NULL,
    fence_id bigint,
    fence_at timestamp with time zone,
    CONSTRAINT google_ai_metric_fold_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_metric_fold IS
    'Metrics: the attempt rows (id <= folded_through) whose counts are in google_ai_metric_totals, and the fence '
    '(fence_id handed out by fence_at) that tells an id never to be visible from one not committed yet.';

CREATE TABLE public.google_ai_metric_totals (
    family text NOT NULL,
    suffix text DEFAULT ''::text NOT NULL,
    labels text NOT NULL,
    le numeric DEFAULT 'NaN'::numeric NOT NULL,
    value numeric DEFAULT 0 NOT NULL
);

COMMENT ON TABLE public.google_ai_metric_totals IS
    'Metrics: running totals of the attempt rows already folded (google_ai_metric_fold), per series. A scrape adds the '
    'rows above the fold''s mark; housekeeping folds what it deletes. Never holds a key or a secret.';

ALTER TABLE ONLY public.google_ai_metric_fold
    ADD CONSTRAINT google_ai_metric_fold_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.google_ai_metric_totals
    ADD CONSTRAINT google_ai_metric_totals_pkey PRIMARY KEY (family, suffix, labels, le);

-- The histograms' bucket bounds in seconds, +Inf last (the columns hold milliseconds).
CREATE OR REPLACE FUNCTION public.google_ai_metric_bounds_s() RETURNS numeric[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,120,300,Infinity}'::numeric[] $$;

-- A label pair with its value escaped as the text format wants (backslash, quote, newline).
CREATE OR REPLACE FUNCTION public.google_ai_metric_label(p_name text, p_value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select p_name operator(pg_catalog.||) '="' operator(pg_catalog.||)
    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(coalesce(p_value, ''), E'\\', E'\\\\'), '"', E'\\"'),
      E'\n', E'\\n') operator(pg_catalog.||) '"'
$$;

-- The (non-cumulative) bucket of a duration in ms: the smallest bound >= it (le is inclusive).
CREATE OR REPLACE FUNCTION public.google_ai_metric_le(p_us integer) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select (public.google_ai_metric_bounds_s())[
    pg_catalog.width_bucket(p_us::double precision operator(pg_catalog.-) 0.5,
      '{5,10,25,50,100,250,500,1000,2500,5000,10000,30000,60000,120000,300000}'::double precision[])
    operator(pg_catalog.+) 1]
$$;

-- How long a refusal may still change: a waiting caller asking again updates its refusal row while
-- it is younger than its wait plus a minute (google_ai_refusal_at). The longest wait is bounded
-- by llm-invoke's budget, which Supabase's Edge Function wall clock (400 s at most) bounds; 8 minutes
-- covers it. Keep it below stale_reservation_after (the fold's lag, 15 minutes by default).
CREATE OR REPLACE FUNCTION public.google_ai_metric_refusal_settled() RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select interval '8 minutes' $$;

-- Which attempt rows the metrics count, with the columns their labels and values come from: the
-- decided rows with p_after < id <= p_through (and, given p_only, among those ids). A step of its own
-- so that google_ai_metric_samples reads them once for its counters and its histograms.
-- p_settled_before (the scrape's live part): a refusal created at or after it may still change, and
-- is left out until it cannot (the fold never reaches such a row; housekeeping's rows are old).
-- Every label is read from columns fixed when the row was written or decided, never from another
-- table: the caller is a Kaggle client's caller (client_id set at insert), else 'service'.
-- (SQL, STABLE, no SET clause: PostgreSQL inlines it into the query that reads it.)
CREATE OR REPLACE FUNCTION public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[],
    p_settled_before timestamp with time zone) RETURNS TABLE(model text, quota_group text, priority_class text,
    status text, limit_hit text, refusal_cause text, quota_cause text, http_status integer, service_tier text,
    served_tier text, input_tokens integer, output_tokens integer, latency_ms integer, first_byte_ms integer,
    added_ms integer, wait_ms integer, caller text, cost_usd numeric)
    LANGUAGE sql STABLE
    AS $$
  select a.model, a.quota_group, a.priority_class, a.status, a.limit_hit, a.refusal_cause, a.quota_cause,
         a.http_status, a.service_tier, a.served_tier, a.input_tokens, a.output_tokens, a.latency_ms,
         a.first_byte_ms, a.added_ms, a.wait_ms,
         case when a.client_id is not null then a.caller else 'service' end as caller, a.cost_usd
  from public.google_ai_attempts a
  where a.id > p_after and a.id <= p_through and a.status <> 'reserved'
    and (p_only is null or a.id = any (p_only))
    and (p_settled_before is null or a.status <> 'refused' or a.created_at < p_settled_before)
$$;

-- The samples the decided attempt rows (google_ai_metric_decided, read once) add to the counters and
-- histograms, summed per series. One definition for the fold, the scrape's live part and
-- housekeeping's fold-on-delete, so the three always agree. Set-based: rows are grouped by their
-- labels first, and labels are rendered per group, not per row. A row from a reservation has a
-- quota group; a queue lapse (google_ai_queue_lapse) has none. No SET clause, so the scrape's statement
-- inlines it and keeps its plan; a row's samples are a union of selects, not a lateral VALUES list,
-- whose expressions PostgreSQL compiles again for every row it is joined to.
CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint,
    p_only bigint[] DEFAULT NULL::bigint[],
    p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(family text,
    suffix text, labels text, le numeric, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as upstream_429,
           coalesce(d.service_tier, 'standard') as service_tier, d.served_tier,
           count(*)::numeric as n, sum(d.input_tokens)::numeric as tokens_in,
             sum(d.output_tokens)::numeric as tokens_out, sum(d.cost_usd) as spend
    from decided d
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  ), counters as (
    select x.family, x.labels, sum(x.value) as value
    from (select g.*, public.google_ai_metric_label('model', g.model) as m,
                 public.google_ai_metric_label('quota_group', g.quota_group) as qg,
                 public.google_ai_metric_label('priority_class', g.priority_class) as pc,
                 public.google_ai_metric_label('caller', g.caller) as who,
                 public.google_ai_metric_label('provider',
                   (select l.provider from public.google_ai_model_limits l where l.model = g.model)) as pv
          from groups g) g
    cross join lateral (
      select 'eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc,
        g.who, public.google_ai_metric_label('status', g.status)), g.n
      union all select 'eve_gateway_refusals_total', concat_ws(',', g.m, g.pc,
        g.who, public.google_ai_metric_label('limit', g.limit_hit),
          public.google_ai_metric_label('cause', g.refusal_cause)),
        case when g.status = 'refused' then g.n end
      union all select 'eve_gateway_upstream_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.upstream_429 then g.n end
      union all select 'eve_gateway_upstream_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn') then g.n end
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      union all select 'eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      union all select 'eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end
      union all select 'eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'),
        g.tokens_in
      union all select 'eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'),
        g.tokens_out
      -- What the calls cost (cost_usd; a call of unknown cost adds nothing).
      union all select 'eve_gateway_spend_usd_total', concat_ws(',', g.m, g.pv, g.who), g.spend
    ) x(family, labels, value)
    where x.value is not null
    group by 1, 2
  ), durations as (
    -- One row per measured duration: its histogram, its two labels (model and quota group or class), its ms.
    select h.family, d.model, h.second_name, h.second_value, h.ms
    from decided d
    cross join lateral (
      select 'eve_gateway_upstream_latency_seconds', 'quota_group', d.quota_group, d.latency_ms
      union all select 'eve_gateway_time_to_first_byte_seconds', 'priority_class', d.priority_class, d.first_byte_ms
      union all select 'eve_gateway_added_latency_seconds', 'priority_class', d.priority_class, d.added_ms
      -- The wait before an admission: rows from a reservation only (a refusal's wait ended in no
      -- admission; a queue lapse's is its time in line).
      union all select 'eve_gateway_wait_seconds', 'priority_class', d.priority_class,
        case when d.quota_group is not null then d.wait_ms end
    ) h(family, second_name, second_value, ms)
    where h.ms is not null
  ), buckets as (
    select u.family, concat_ws(',', public.google_ai_metric_label('model', u.model),
             public.google_ai_metric_label(u.second_name, u.second_value)) as labels,
           public.google_ai_metric_le(u.ms) as le, count(*)::numeric as n, sum(u.ms)::numeric as ms
    from durations u
    group by u.family, u.model, u.second_name, u.second_value, 3
  )
  select c.family, '', c.labels, 'NaN'::numeric, c.value from counters c
  union all
  select b.family, '_bucket', b.labels, b.le, sum(b.n) from buckets b group by 1, 3, 4
  union all
  select b.family, '_sum', b.labels, 'NaN'::numeric, sum(b.ms) / 1000 from buckets b group by 1, 3
$$;

-- Adds the attempt rows that can no longer change to the totals and moves the mark past them: rows
-- above the mark, up to (not including) the first one still open ('reserved'), younger than
-- stale_reservation_after (no function runs that long, so none writes it again), or a refusal a
-- waiting caller may still update; and never past an id that is not visible, unless the fence says
-- it never will be. An id is handed out when its insert starts and is visible only once its
-- transaction commits, so a committed higher id says nothing of a lower one: passing an id whose
-- insert commits later would leave its row counted by neither the live part nor a later fold. Ids
-- also have permanent gaps (an insert rolled back: a reservation whose caller stopped waiting, a
-- model tried in a subtransaction; a row housekeeping deleted above the mark); a gap is permanent
-- once the fence (fence_id handed out by fence_at) is older than any transaction can stay open,
-- taken here as stale_reservation_after (the reservation's statements time out in seconds; a late
-- one is rolled back at commit). The fence is renewed once it is that old, so a gap holds the mark
-- back for at most twice stale_reservation_after; the rows after it stay live (counted) meanwhile.
-- p_wait: wait for a fold in progress (housekeeping) or give up at once (a scrape: the other fold
-- does the work). Returns the mark after the call.
CREATE OR REPLACE FUNCTION public.google_ai_metrics_fold(
    p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_wait boolean DEFAULT false) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_fold public.google_ai_metric_fold;
  v_mark bigint;
  v_through bigint;
  v_permanent_through bigint;
  v_lag interval;
begin
  if p_wait then
    select * into v_fold from public.google_ai_metric_fold f where f.id for update;
  else
    select * into v_fold from public.google_ai_metric_fold f where f.id for update skip locked;
    if not found then
      return (select f.folded_through from public.google_ai_metric_fold f where f.id);
    end if;
  end if;
  if v_fold.id is null then
    insert into public.google_ai_metric_fold (id) values (true) on conflict (id) do nothing;
    return 0;
  end if;
  v_mark := v_fold.folded_through;
  select coalesce((select s.stale_reservation_after from public.google_ai_maintenance_settings s where s.id),
                  interval '15 minutes') into v_lag;
  -- Ids up to this one that are not visible never will be.
  v_permanent_through := case when v_fold.fence_at <= v_now - v_lag then v_fold.fence_id else v_mark end;

  -- One statement, one snapshot: the first row that may still change (read along the primary key
  -- from the mark), the largest visible id below it, and the last visible row before the first gap
  -- not known to be permanent. (A row that commits later into an id this passes is in a permanent
  -- gap, so none does; a later snapshot, the totals' below, sees every row this one saw.)
  with stop as (
    select a.id from public.google_ai_attempts a
    where a.id > v_mark
      and (a.status = 'reserved' or a.created_at >= v_now - v_lag
           or (a.status = 'refused' and a.created_at >= v_now - public.google_ai_metric_refusal_settled()))
    order by a.id limit 1
  ), below as (
    select a.id, coalesce(lag(a.id) over (order by a.id), v_mark) as prev
    from public.google_ai_attempts a
    where a.id > v_mark and a.id < coalesce((select stop.id from stop), 9223372036854775807)
  )
  select coalesce((select min(b.prev) from below b where b.id > b.prev + 1 and b.id - 1 > v_permanent_through),
                  (select max(b.id) from below b), v_mark)
  into v_through;

  -- Renew an old fence: the ids handed out by now. (The identity's sequence has cache 1, so its
  -- last value is the last id handed to any session; a cache would hand out lower ids later.)
  if v_fold.fence_at is null or v_fold.fence_at <= v_now - v_lag then
    update public.google_ai_metric_fold f set
      fence_id = coalesce(pg_catalog.pg_sequence_last_value(
        pg_catalog.pg_get_serial_sequence('public.google_ai_attempts', 'id')::regclass), 0),
      fence_at = pg_catalog.clock_timestamp()
    where f.id;
  end if;
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
    rows_folded = f.rows_folded + (select count(*)
      from public.google_ai_attempts a where a.id > v_mark and a.id <= v_through)
  where f.id;
  return v_through;
end
$$;

-- The quota groups serving each active model now, and those that have counted for one: the series
-- the scrape knows before their first row, and the quota gauges.
CREATE OR REPLACE FUNCTION public.google_ai_metric_serving() RETURNS TABLE(quota_group text, model text)
    LANGUAGE sql STABLE
    AS $$
  select s.quota_group, l.model
  from public.google_ai_model_limits l
  cross join lateral public.google_ai_serving_keys(l.model, null) s
  where l.is_active
  union
  select c.quota_group, c.model from public.google_ai_usage_counters c where c.quota_group is not null
$$;

-- The counters and histograms of one scrape at p_at: the folded totals, the live rows above the mark
-- p_mark (a refusal once settled) and the series known before their first row at zero; buckets
-- cumulative, +Inf last, _count equal to it. Samples as the text format names them.
CREATE OR REPLACE FUNCTION public.google_ai_metric_counts(p_at timestamp with time zone, p_mark bigint)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with serving as (
    select p.quota_group, p.model from public.google_ai_metric_serving() p
  ), known (family, kind, labels) as (
    -- Series known before their first row, exported at zero from the start: a series that first
    -- appears already holding its first observations starts at that value for Prometheus, and rate()
    -- and increase() never count a series' starting value (a model's first requests would show in no
    -- latency panel, a group's first provider 429 or lost finalize no increase() alert). The labels as
    -- google_ai_metric_samples renders them; active models by class, and the quota groups serving each.
    select h.family, 'histogram', concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('priority_class', c.name))
    from public.google_ai_model_limits l cross join public.google_ai_priority_classes c
    cross join (values ('eve_gateway_time_to_first_byte_seconds'), ('eve_gateway_added_latency_seconds'),
                       ('eve_gateway_wait_seconds')) h(family)
    where l.is_active
    union all
    select x.family, x.kind, concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group))
    from serving p
    cross join (values ('eve_gateway_upstream_latency_seconds', 'histogram'),
                       ('eve_gateway_finalizes_lost_total', 'counter')) x(family, kind)
    union all
    -- (Every cause a row may name: google_ai_quota_causes.)
    select 'eve_gateway_upstream_429_total', 'counter',
           concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider',
               (select l.provider from public.google_ai_model_limits l where l.model = p.model)),
             public.google_ai_metric_label('cause', c.cause))
    from serving p
    cross join unnest(public.google_ai_quota_causes()) c(cause)
  ), counted as (
    select t.family, t.suffix, t.labels, t.le, t.value from public.google_ai_metric_totals t
    union all
    select s.family, s.suffix, s.labels, s.le, s.value
    from public.google_ai_metric_samples(p_mark, 9223372036854775807, null,
      p_at - public.google_ai_metric_refusal_settled()) s
    union all
    -- (A histogram's +Inf bucket brings all its buckets and _count; its _sum is a sample of its own.)
    select k.family, x.suffix, k.labels, x.le, 0 from known k
    cross join lateral (values ('histogram', '_bucket', 'Infinity'::numeric), ('histogram', '_sum', 'NaN'::numeric),
                               ('counter', '', 'NaN'::numeric)) x(kind, suffix, le)
    where x.kind = k.kind
  ), histograms as (
    -- Every bucket of each histogram series, cumulative: a bucket counts in each bound at or above its own.
    select c.family, c.labels, b.le, coalesce(sum(c.value) filter (where c.le <= b.le), 0) as value
    from counted c cross join unnest(public.google_ai_metric_bounds_s()) b(le)
    where c.suffix = '_bucket' group by 1, 2, 3
  )
  -- (Only a bucket has a bound: any other sample is one per family, suffix and labels.)
  select c.family, c.family || c.suffix, c.labels, sum(c.value) from counted c where c.suffix <> '_bucket'
  group by c.family, c.suffix, c.labels
  union all
  select h.family, h.family || '_bucket',
         concat_ws(',', nullif(h.labels, ''),
           'le="' || case when h.le = 'Infinity' then '+Inf' else h.le::text end || '"'),
         h.value
  from histograms h
  union all
  select h.family, h.family || '_count', h.labels, h.value from histograms h where h.le = 'Infinity'
$$;

-- The quota gauges at p_at, per quota group serving a model (google_ai_metric_serving): admissions in
-- the sliding minute (moved on to p_at by google_ai_ring_at) and the provider's day, and their limits (a
-- row that follows its provider: those it stated for the group);
-- and when each provider's day ends (its row's day_zone), when its models' day counts reopen. The
-- model's provider is a label of its gauges, so that a rule matches them with their provider's day end.
CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider', l.provider)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_day_in(p_at, public.google_ai_day_zone(p.model))
                then c.rpd_used else 0 end as day_requests,
           coalesce(case when c.stated_limits[1] is not null then (f.f).rpm end,
             public.google_ai_effective_limit(l.rpm, l.safety_margin)) as rpm,
           coalesce(case when c.stated_limits[2] is not null then (f.f).tpm end,
             public.google_ai_effective_limit(l.tpm, l.safety_margin)) as tpm,
           coalesce(case when c.stated_limits[3] is not null then (f.f).rpd end,
             public.google_ai_effective_limit(l.rpd, l.safety_margin)) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
    -- (A row that follows its provider: the group's limits as the provider stated them, where it did.)
    left join lateral (select case when l.provider_limits = 'follow'
                                   then public.google_ai_followed_limits(l, c.stated_limits) end as f) f on true
  )
  select x.family, x.family, concat_ws(',', q.labels, x.w), x.v
  from quota q cross join lateral (
    select 'eve_gateway_quota_used', 'window="minute",unit="requests"', q.minute_requests::numeric
    union all select 'eve_gateway_quota_used', 'window="minute",unit="tokens"', q.minute_tokens::numeric
    union all select 'eve_gateway_quota_used', 'window="day",unit="requests"', q.day_requests::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="requests"', q.rpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="tokens"', q.tpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="day",unit="requests"', q.rpd::numeric) x(family, w, v)
  -- (A limit that is not set has no gauge.)
  where x.family = 'eve_gateway_quota_used' or x.v is not null
  union all
  select 'eve_gateway_provider_day_end_timestamp_seconds', 'eve_gateway_provider_day_end_timestamp_seconds',
         public.google_ai_metric_label('provider', v.name),
         extract(epoch from public.google_ai_midnight_after_in(p_at, v.day_zone))
  from public.google_ai_providers v
$$;

-- The other gauges at p_at: reservations in flight and the live rows (above the mark p_mark), the
-- Pacific day's end (when the callers' budgets reset; each provider's own is google_ai_metric_quota's),
-- the queue, cooldowns, models, keys, callers' budgets and the last housekeeping.
CREATE OR REPLACE FUNCTION public.google_ai_metric_gauges(p_at timestamp with time zone, p_mark bigint)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with live as (
    select a.status, a.model, a.quota_group from public.google_ai_attempts a where a.id > p_mark
  ), last_run as (
    select m.completed_at, m.status from public.google_ai_maintenance_log m
    where m.operation = 'housekeeping' and m.status <> 'skipped'
    order by m.started_at desc limit 1
  ), gauges (family, labels, value) as (
    select 'eve_gateway_attempts_in_flight', concat_ws(',', public.google_ai_metric_label('model', a.model),
             public.google_ai_metric_label('quota_group', a.quota_group)), count(*)::numeric
    from live a where a.status = 'reserved' group by a.model, a.quota_group
    union all
    select 'eve_gateway_metrics_live_rows', '', count(*)::numeric from live
    union all
    select 'eve_gateway_pacific_day_end_timestamp_seconds', '',
           extract(epoch from public.google_ai_pacific_midnight_after(p_at))
    union all
    select 'eve_gateway_queue_depth', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)), count(*)::numeric
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_queue_oldest_wait_seconds', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)),
           round(extract(epoch from (p_at - min(q.enqueued_at))), 3)
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_cooldown_seconds_left', concat_ws(',', public.google_ai_metric_label('model', cd.model),
             public.google_ai_metric_label('quota_group', cd.quota_group),
             public.google_ai_metric_label('provider',
               (select l.provider from public.google_ai_model_limits l where l.model = cd.model)),
             public.google_ai_metric_label('cause', coalesce(cd.cause, 'unknown'))),
           round(extract(epoch from (cd.cooldown_until - p_at)), 3)
    from public.google_ai_cooldowns cd where cd.cooldown_until > p_at
    union all
    select 'eve_gateway_model_withdrawn', public.google_ai_metric_label('model', l.model),
           case when l.withdrawn_at is not null then 1 else 0 end
    from public.google_ai_model_limits l where l.is_active
    union all
    select 'eve_gateway_model_shutdown_timestamp_seconds',
           concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('successor', l.successor)),
           extract(epoch from l.shutdown_date::timestamp at time zone 'UTC')
    from public.google_ai_model_limits l where l.is_active and l.shutdown_date is not null

    union all
    select 'eve_gateway_keys', concat_ws(',', public.google_ai_metric_label('provider', k.serves_provider),
             public.google_ai_metric_label('quota_group', public.google_ai_quota_group(k.project_id, k.id)),
             public.google_ai_metric_label('health', coalesce(h.status, 'unchecked')),
             public.google_ai_metric_label('active', k.is_active::text)), count(*)::numeric
    from public.google_ai_api_keys k left join public.google_ai_key_health h on h.api_key_id = k.id
    group by 2
    union all
    select 'eve_gateway_caller_budget_remaining', concat_ws(',', public.google_ai_metric_label('caller', b.caller),
             public.google_ai_metric_label('unit', x.unit)), x.left_today
    from (select 'client:' || c.name as caller, public.google_ai_budget_of(c) as budget
          from public.google_ai_clients c where c.revoked_at is null
          union all
          select s.caller, public.google_ai_budget_of(s) from public.google_ai_caller_budgets s) b
    cross join lateral public.google_ai_budget_left(b.budget, public.google_ai_pacific_day(p_at)) l
    cross join lateral (values ('requests', l.requests::numeric), ('tokens', l.tokens::numeric)) x(unit, left_today)
    where x.left_today is not null
    union all
    select 'eve_gateway_housekeeping_last_run_timestamp_seconds', '', extract(epoch from r.completed_at)
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_run_failed', '', case when r.status = 'failed' then 1 else 0 end
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_success_timestamp_seconds', '', extract(epoch from m.completed_at)
    from (select m.completed_at from public.google_ai_maintenance_log m
          where m.operation = 'housekeeping' and m.status = 'succeeded' order by m.started_at desc limit 1) m
  )
  select g.family, g.family, g.labels, g.value from gauges g
$$;

-- The limits providers state (google_ai_stated_limits, as applied) per quota group, model and limit, with the
-- row's mode; and 1 where the row disagrees with one (above, below, ceiling).
CREATE OR REPLACE FUNCTION public.google_ai_metric_stated()
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  select x.family, x.family, concat_ws(',', public.google_ai_metric_label('model', d.model),
           public.google_ai_metric_label('quota_group', d.quota_group),
           public.google_ai_metric_label('limit', d.limit_name), x.label), x.value
  from public.google_ai_stated_limits() d
  cross join lateral (values
    ('eve_gateway_provider_limit', public.google_ai_metric_label('mode', d.provider_limits),
       d.provider_limit::numeric),
    ('eve_gateway_provider_limit_disagreement', public.google_ai_metric_label('disagreement', d.disagreement),
       case when d.disagreement is not null then 1 end)) x(family, label, value)
  where x.value is not null
$$;

-- What the metrics route calls, once per scrape: the fold (skipped when another one is running), then
-- every sample, each as the text format names it (maintenance/metrics-text.ts writes the text, with
-- each family's HELP and TYPE). One statement, so one snapshot: a fold or a housekeeping run that
-- commits meanwhile is seen entirely or not at all.
CREATE OR REPLACE FUNCTION public.google_ai_metrics() RETURNS TABLE(family text, sample text, labels text,
    value numeric)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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
      union all
      select r.* from public.google_ai_metric_response_cache() r
      union all
      select d.* from public.google_ai_metric_stated() d
    ) s
    where s.value is not null;
end
$$;

COMMENT ON FUNCTION public.google_ai_metrics() IS
    'One scrape''s samples (family, sample name, labels, value) of the gateway''s counters, histograms and gauges, '
    'for Prometheus'' text format (version 0.0.4): one call per scrape.';
