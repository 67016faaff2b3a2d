-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: Release 1.0 drops the former names: finalize's former signatures and flat batch shape, the
--   google_error status and cut_by google, and the provider metrics counted under eve_gateway_upstream_*
--   names
set check_function_bodies = off;

drop function if exists "public"."google_ai_finalize"(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer, p_stated_limits integer[]);

drop function if exists "public"."google_ai_finalize_cut"(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer, p_cache_write_5m_tokens integer, p_cache_write_1h_tokens integer);

drop function if exists "public"."google_ai_finalize_withdrawn"(p_reservation_id uuid, p_http_status integer, p_error_code text, p_error_message text, p_latency_ms integer, p_successor text);

drop function if exists "public"."google_ai_former_outcome"(p_call jsonb);

CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_ids uuid[];
  v_outcomes public.google_ai_attempt_outcome[];
  v_open public.google_ai_attempts[];
  v_answers jsonb[];
  v_outcome public.google_ai_attempt_outcome;
  v_order integer[];  -- the calls in their counter rows' order, each step's
  v_written public.google_ai_attempts[];  -- each call's attempt row as written (google_ai_write_attempts)
  -- Those written, with their outcomes, in the counter rows' order: to record, then to settle.
  v_atts public.google_ai_attempts[] := '{}'::public.google_ai_attempts[];
  v_outs public.google_ai_attempt_outcome[] := '{}'::public.google_ai_attempt_outcome[];
  v_until timestamptz;
  c record;
  i integer;
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome, e.call -> 'outcome')
      order by e.n), '{}')
  into v_ids, v_outcomes
  from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n);
  -- Found by their key, whatever the log held when this connection planned the statement: the plan is
  -- kept for the connection's life, and one made on a small log (a new project, a fresh database) scans
  -- the whole log on every call as it grows (measured at 16 callers with 3,500 rows: 480 µs a call of
  -- six finalizes, 75 µs by the index). Planned with sequential scans off, it reads the unique index.
  perform pg_catalog.set_config('enable_seqscan', 'off', true);
  v_open := array(select a from public.google_ai_attempts a
    where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update);
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  v_answers := pg_catalog.array_fill(null::jsonb, array[cardinality(v_ids)]);
  perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id for update;
  perform from public.google_ai_caller_budgets b
  where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  v_order := array(select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
    left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
    left join public.google_ai_model_limits l on l.model = a.model
    order by a.quota_group, coalesce(l.limit_pool, a.model), g.n);
  for c in
    select a, t.n from unnest(v_order) with ordinality t(n, k)
    join unnest(v_open) a on a.reservation_id = v_ids[t.n]
    where (v_outcomes[t.n]).room_until is not null
    order by t.k
  loop
    v_outcome := v_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_outcome.room_until := null;  -- (weighed: its settle does not weigh it again)
      v_outcomes[c.n] := v_outcome;
    end if;
  end loop;
  -- Each row but the counter row, a step at a time for all the calls (google_ai_write_outcome's steps): the
  -- attempt rows, the successes' rows, then the rest outcomes ask and withdrawn models, in order.
  v_written := public.google_ai_write_attempts(v_ids, v_outcomes);
  foreach i in array v_order loop
    continue when (v_written[i]).id is null;
    v_atts[cardinality(v_atts) + 1] := v_written[i];
    v_outs[cardinality(v_outs) + 1] := v_outcomes[i];
  end loop;
  perform public.google_ai_record_successes(v_atts, v_outs);
  foreach i in array v_order loop
    if (v_written[i]).id is not null then
      v_until := case when public.google_ai_outcome_asks_rest(v_outcomes[i])
                      then public.google_ai_rest_asked(v_written[i], v_outcomes[i]) end;
      v_answers[i] := jsonb_build_object('ok', true, 'status', (v_written[i]).status, 'cooldown_until', v_until);
    elsif public.google_ai_outcome_kind(v_outcomes[i]) = 'withdrawn' then
      v_answers[i] := public.google_ai_withdraw_attempt(v_ids[i], v_outcomes[i]);
    else
      v_answers[i] := public.google_ai_not_open(v_ids[i]);
    end if;
  end loop;
  -- Then the counter rows, each held from its first settle to the commit: for the settles alone.
  perform public.google_ai_settle_calls(v_atts, v_outs);
  return pg_catalog.to_jsonb(v_answers);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_is_attempt_status(p_status text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
  return p_status = any ('{reserved,refused,succeeded,upstream_error,network_error,timeout,cut,withdrawn,released,
    abandoned}'::text[]);
end
$function$
;

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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_outcome_kind(p_outcome public.google_ai_attempt_outcome)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_kind text := p_outcome.kind;
begin
  if v_kind = 'withdrawn' then
    return v_kind;  -- (its own step reads the rest: google_ai_withdraw_attempt)
  elsif v_kind is null or v_kind not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'cut') then
    raise exception 'an outcome''s kind must be succeeded, upstream_error, network_error, timeout, cut or withdrawn'
      using errcode = '22023';
  elsif v_kind = 'cut' and (p_outcome.cut_by is null or p_outcome.cut_by not in ('client', 'upstream')) then
    raise exception 'a cut''s cut_by must be client or upstream' using errcode = '22023';
  end if;
  if not (p_outcome.quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;
  return v_kind;
end
$function$
;

create or replace view "public"."google_ai_spend_daily" as  SELECT ((a.admitted_at AT TIME ZONE COALESCE(p.day_zone, 'UTC'::text)))::date AS day,
    l.provider,
    a.model,
    a.caller,
    (count(*))::integer AS calls,
    (count(*) FILTER (WHERE (a.cost_usd IS NULL)))::integer AS calls_unpriced,
    COALESCE(sum(a.cost_usd), (0)::numeric) AS spend_usd
   FROM ((public.google_ai_attempts a
     LEFT JOIN public.google_ai_model_limits l ON ((l.model = a.model)))
     LEFT JOIN public.google_ai_providers p ON ((p.name = l.provider)))
  WHERE ((a.admitted_at IS NOT NULL) AND (a.status = ANY ('{succeeded,cut,upstream_error,network_error,timeout}'::text[])))
  GROUP BY (((a.admitted_at AT TIME ZONE COALESCE(p.day_zone, 'UTC'::text)))::date), l.provider, a.model, a.caller;

create or replace view "public"."google_ai_usage_by_caller_24h" as  SELECT caller,
    (count(DISTINCT COALESCE(request_id, (reservation_id)::text)))::integer AS requests,
    (count(*))::integer AS attempts,
    (count(*) FILTER (WHERE (status = 'succeeded'::text)))::integer AS succeeded,
    (count(*) FILTER (WHERE (status = ANY (ARRAY['upstream_error'::text, 'network_error'::text, 'timeout'::text]))))::integer AS failed,
    (count(*) FILTER (WHERE (status = 'refused'::text)))::integer AS refused,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'rpm'::text))))::integer AS refused_rpm,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'tpm'::text))))::integer AS refused_tpm,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'rpd'::text))))::integer AS refused_rpd,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit = 'cooldown'::text))))::integer AS refused_cooldown,
    (count(*) FILTER (WHERE ((status = 'refused'::text) AND (limit_hit <> ALL (ARRAY['rpm'::text, 'tpm'::text, 'rpd'::text, 'cooldown'::text])))))::integer AS refused_other,
    (count(*) FILTER (WHERE (status = 'reserved'::text)))::integer AS in_flight,
    (count(*) FILTER (WHERE (status = 'released'::text)))::integer AS released,
    (count(*) FILTER (WHERE (status = 'abandoned'::text)))::integer AS abandoned,
    COALESCE(sum(input_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint) AS input_tokens,
    COALESCE(sum(output_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint) AS output_tokens,
    (COALESCE(sum(input_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint) + COALESCE(sum(output_tokens) FILTER (WHERE (status = ANY (ARRAY['succeeded'::text, 'cut'::text]))), (0)::bigint)) AS total_tokens,
    array_agg(DISTINCT model ORDER BY model) AS models,
    min(created_at) AS first_at,
    max(created_at) AS last_at
   FROM public.google_ai_attempts a
  WHERE (created_at > (now() - '24:00:00'::interval))
  GROUP BY caller;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
alter view public.google_ai_spend_daily set (security_invoker='true');
alter view public.google_ai_usage_by_caller_24h set (security_invoker='true');
