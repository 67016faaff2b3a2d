-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: A /metrics scrape's PostgreSQL CPU: samples inlined (no SET clause), provider read from
--   its row, cumulative buckets in one grouped pass, unions of selects instead of lateral VALUES
set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.google_ai_metric_counts(p_at timestamp with time zone, p_mark bigint)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with serving as (
    select p.quota_group, p.model from public.google_ai_metric_serving() p
  ), known (family, kind, labels) as (
    -- Series known before their first row, exported at zero from the start: a series that first
    -- appears already holding its first observations starts at that value for Prometheus, and rate()
    -- and increase() never count a series' starting value (a model's first requests would show in no
    -- latency panel, a group's first Google 429 or lost finalize no increase() alert). The labels as
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
    cross join (values ('eve_gateway_google_latency_seconds', 'histogram'),
                       ('eve_gateway_finalizes_lost_total', 'counter')) x(family, kind)
    union all
    -- (Every cause a row may name: google_ai_quota_causes.)
    select 'eve_gateway_google_429_total', 'counter',
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_gauges(p_at timestamp with time zone, p_mark bigint)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
 RETURNS TABLE(family text, sample text, labels text, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider', l.provider)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_day_in(p_at, public.google_ai_day_zone(p.model))
                then c.rpd_used else 0 end as day_requests,
           public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
           public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
           public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[] DEFAULT NULL::bigint[], p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(family text, suffix text, labels text, le numeric, value numeric)
 LANGUAGE sql
 STABLE
AS $function$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as google_429,
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
      union all select 'eve_gateway_google_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.google_429 then g.n end
      union all select 'eve_gateway_google_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn', 'google_error') then g.n end
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
      select 'eve_gateway_google_latency_seconds', 'quota_group', d.quota_group, d.latency_ms
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
$function$
;
