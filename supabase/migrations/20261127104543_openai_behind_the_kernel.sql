-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: OpenAI behind the same kernel: finalize settles at input + output where the model's TPM
--   counts answers and rests a model whose provider says no more is left than twice what is on its way
--   (google_ai_settle_call; google_ai_finalize gains p_room_*, dropped and created with its grants);
--   google_ai_model_provider gives a model's provider and output booking beside its traits; the operator
--   views pair a quota group with its provider's models only; project_id is a Google Cloud project or an
--   OpenAI organization; the provider answers' metrics and the cooldown gauge carry a provider label; a
--   client's secret hashed inline (google_ai_sha256_hex dropped)
set check_function_bodies = off;

drop function if exists "public"."google_ai_finalize"(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer);

drop function if exists "public"."google_ai_sha256_hex"(p_text text);

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if p_outcome not in ('succeeded', 'google_error', 'network_error', 'timeout') then
    raise exception 'p_outcome must be succeeded, google_error, network_error or timeout' using errcode = '22023';
  end if;
  if not (p_quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'p_quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = p_outcome,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_input_tokens,
    output_tokens = p_output_tokens,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    quota_id = left(p_quota_id, 200),
    error_message = left(p_error_message, 1000),
    latency_ms = p_latency_ms,
    quota_cause = p_quota_cause,
    service_tier = left(p_service_tier, 20),
    served_tier = left(p_served_tier, 20),
    -- (greatest() ignores a null: a time not known stays null)
    added_ms = case when p_added_ms is not null then greatest(0, p_added_ms) end,
    first_byte_ms = case when p_first_byte_ms is not null then greatest(0, p_first_byte_ms) end
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if p_outcome = 'succeeded' then
    perform public.google_ai_record_success(v_att, p_input_tokens, p_output_tokens, p_response);
  end if;

  -- Google says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = 'Google rejected the key (' || coalesce(left(p_error_code, 100),
        'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = v_att.api_key_id and k.is_active;
  end if;

  if p_cooldown_until_pacific_midnight then
    v_until := public.google_ai_pacific_midnight_after(pg_catalog.clock_timestamp());
  else
    v_until := p_cooldown_until;
  end if;
  if v_until is not null and v_att.quota_group is not null then
    perform public.google_ai_cooldown_for_cause(v_att.quota_group, v_att.model, v_until, p_quota_cause,
      coalesce(p_error_code, p_outcome), p_quota_id);
  end if;
  perform public.google_ai_settle_call(v_att, p_input_tokens, p_output_tokens, p_room_requests, p_room_tokens,
    p_room_until);

  return jsonb_build_object('ok', true, 'status', p_outcome, 'cooldown_until', v_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_model_provider(p_model text)
 RETURNS TABLE(provider text, booked_output_tokens integer)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select l.provider, l.booked_output_tokens from public.google_ai_model_limits l where l.model = p_model
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_flying integer;
  v_flying_tokens bigint;
  v_counted integer;
begin
  if p_room_until > pg_catalog.clock_timestamp() and p_att.quota_group is not null then
    select count(*), coalesce(sum(a.estimated_tokens), 0) into v_flying, v_flying_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > pg_catalog.clock_timestamp() - interval '5 minutes' and a.status = 'reserved';
    if p_room_requests <= 2 * v_flying or p_room_tokens <= 2 * v_flying_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  if v_counted is not null and v_counted <> p_att.estimated_tokens then
    perform public.google_ai_adjust_token_budget(p_att, 0, v_counted - p_att.estimated_tokens);
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval DEFAULT '12:00:00'::interval, p_token_max_requests integer DEFAULT NULL::integer, p_token_max_tokens integer DEFAULT NULL::integer, p_daily_max_requests integer DEFAULT NULL::integer, p_daily_max_tokens integer DEFAULT NULL::integer, p_mint_per_hour integer DEFAULT 60, p_notes text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_secret text;
  v_models text[];
  v_unknown text[];
  v_id uuid;
begin
  if p_name is null or p_name !~ '^[a-z0-9][a-z0-9._-]{0,62}$' then
    raise exception
      'client name must be 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit'
      using errcode = '22023';
  end if;
  select array_agg(coalesce((public.google_ai_resolve_model(m)).model, m) order by m),
         array_agg(m) filter (where (public.google_ai_resolve_model(m)).model is null)
    into v_models, v_unknown
  from unnest(p_models) m;
  if v_models is null or cardinality(v_models) = 0 then
    raise exception 'a client needs at least one model' using errcode = '22023';
  end if;
  if v_unknown is not null then
    raise exception 'unknown model(s): %', array_to_string(v_unknown, ', ') using errcode = '22023';
  end if;
  v_secret := 'evegw_cs_' || rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=');
  insert into public.google_ai_clients (name, secret_hash, models, max_token_ttl, token_max_requests, token_max_tokens,
    daily_max_requests, daily_max_tokens, mint_per_hour, notes)
  values (p_name, encode(pg_catalog.sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_models,
    p_max_token_ttl, p_token_max_requests, p_token_max_tokens,
    p_daily_max_requests, p_daily_max_tokens, p_mint_per_hour, p_notes)
  returning id into v_id;
  return jsonb_build_object('client_id', v_id, 'name', p_name, 'models', v_models, 'secret', v_secret);
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
               (select v.provider from public.google_ai_model_provider(p.model) v)),
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
  ), summed as (
    select c.family, c.suffix, c.labels, c.le, sum(c.value) as value from counted c group by 1, 2, 3, 4
  ), histograms as (
    -- Every bucket of each histogram series, cumulative.
    select h.family, h.labels, b.le,
           sum(coalesce(s.value, 0)) over (partition by h.family collate "C", h.labels collate "C" order by b.le)
             as value
    from (select distinct s.family, s.labels from summed s where s.suffix = '_bucket') h
    cross join unnest(public.google_ai_metric_bounds_s()) b(le)
    left join summed s on s.family = h.family and s.labels = h.labels and s.suffix = '_bucket' and s.le = b.le
  )
  select s.family, s.family || s.suffix, s.labels, s.value from summed s where s.suffix <> '_bucket'
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
               (select v.provider from public.google_ai_model_provider(cd.model) v)),
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
           extract(epoch from public.google_ai_pacific_start(l.shutdown_date))
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
             public.google_ai_metric_label('unit', x.unit)), greatest(x.lim - x.used, 0)
    from (select 'client:' || c.name as caller, c.daily_max_requests as max_requests,
                 c.daily_max_tokens::bigint as max_tokens, c.day_bucket, c.requests_today,
                 c.tokens_today::bigint as tokens_today
          from public.google_ai_clients c where c.revoked_at is null
          union all
          select s.caller, s.daily_max_requests, s.daily_max_tokens::bigint, s.day_bucket, s.requests_today,
                 s.tokens_today
          from public.google_ai_caller_budgets s) b
    cross join lateral public.google_ai_daily_use(b.day_bucket, b.requests_today, b.tokens_today,
      public.google_ai_pacific_day(p_at), 0, 0, null, null) u
    cross join lateral (values ('requests', b.max_requests::numeric, u.requests::numeric),
                               ('tokens', b.max_tokens::numeric, u.tokens::numeric)) x(unit, lim, used)
    where x.lim is not null
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

CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint, p_only bigint[] DEFAULT NULL::bigint[], p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(family text, suffix text, labels text, le numeric, value numeric)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as google_429,
           coalesce(d.service_tier, 'standard') as service_tier, d.served_tier,
           count(*)::numeric as n, sum(d.input_tokens)::numeric as tokens_in,
             sum(d.output_tokens)::numeric as tokens_out
    from decided d
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  ), counters as (
    select x.family, x.labels, sum(x.value) as value
    from (select g.*, public.google_ai_metric_label('model', g.model) as m,
                 public.google_ai_metric_label('quota_group', g.quota_group) as qg,
                 public.google_ai_metric_label('priority_class', g.priority_class) as pc,
                 public.google_ai_metric_label('caller', g.caller) as who,
                 public.google_ai_metric_label('provider',
                   (select v.provider from public.google_ai_model_provider(g.model) v)) as pv
          from groups g) g
    cross join lateral (values
      ('eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc,
        g.who, public.google_ai_metric_label('status', g.status)), g.n),
      ('eve_gateway_refusals_total', concat_ws(',', g.m, g.pc,
        g.who, public.google_ai_metric_label('limit', g.limit_hit),
          public.google_ai_metric_label('cause', g.refusal_cause)),
        case when g.status = 'refused' then g.n end),
      ('eve_gateway_google_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.google_429 then g.n end),
      ('eve_gateway_google_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'google_error', 'network_error', 'timeout',
          'withdrawn') then g.n end),
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      ('eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end),
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      ('eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end),
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
      -- The wait before an admission: rows from a reservation only (a refusal's wait ended in no
      -- admission; a queue lapse's is its time in line).
      ('eve_gateway_wait_seconds', 'priority_class', d.priority_class,
        case when d.quota_group is not null then d.wait_ms end)
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
$function$
;

create or replace view "public"."google_ai_shares_today" as  WITH clock AS (
         SELECT now() AS at,
            public.google_ai_pacific_day(now()) AS day,
            public.google_ai_window_length(COALESCE(( SELECT st.minute_guard_ms
                   FROM public.google_ai_admission_settings st
                  WHERE st.id), 1000)) AS window_length
        ), groups AS (
         SELECT DISTINCT s_1.id AS share_id,
            public.google_ai_quota_group(k.project_id, k.id) AS quota_group
           FROM ((public.google_ai_quota_shares s_1
             JOIN public.google_ai_model_limits m_1 ON ((m_1.model = s_1.model)))
             JOIN public.google_ai_api_keys k ON ((k.is_active AND (k.serves_provider = m_1.provider) AND ((k.models IS NULL) OR (s_1.model = ANY (k.models))))))
        ), kept AS (
         SELECT s_1.model,
            (sum(COALESCE(s_1.reserved_rpd, 0)))::integer AS reserved_rpd
           FROM public.google_ai_quota_shares s_1
          GROUP BY s_1.model
        )
 SELECT s.model,
    COALESCE(s.priority_class, s.caller) AS owner,
        CASE
            WHEN (s.priority_class IS NOT NULL) THEN 'class'::text
            ELSE 'caller'::text
        END AS owner_kind,
    g.quota_group,
    s.reserved_rpm,
    s.reserved_rpd,
    s.pace_burst,
    w.used_in_window,
    d.used_today,
        CASE
            WHEN (s.reserved_rpm IS NOT NULL) THEN GREATEST(0, (s.reserved_rpm - w.used_in_window))
            ELSE NULL::integer
        END AS rpm_kept_now,
        CASE
            WHEN (s.reserved_rpd IS NOT NULL) THEN GREATEST(0, (s.reserved_rpd - d.used_today))
            ELSE NULL::integer
        END AS rpd_kept_today,
        CASE
            WHEN ((s.pace_burst IS NOT NULL) AND (l.rpd IS NOT NULL)) THEN public.google_ai_pace_allowance(c.at, c.day, s.pace_burst, (l.rpd - (kept.reserved_rpd - COALESCE(s.reserved_rpd, 0))))
            ELSE NULL::integer
        END AS pace_allows_today
   FROM (((((((public.google_ai_quota_shares s
     JOIN groups g ON ((g.share_id = s.id)))
     JOIN kept ON ((kept.model = s.model)))
     CROSS JOIN clock c)
     LEFT JOIN LATERAL ( SELECT e.window_requests,
            e.day_bucket,
            e.day_used,
            e.day_next_used,
            e.day_prev_used,
            e.ring_low,
            e.ring
           FROM public.google_ai_usage_counters uc,
            LATERAL unnest(uc.share_use) e(share_id, window_requests, day_bucket, day_used, day_next_used, day_prev_used, ring_low, ring)
          WHERE ((uc.quota_group = g.quota_group) AND (uc.model = s.model) AND (e.share_id = s.id))) u ON (true))
     LEFT JOIN LATERAL ( SELECT public.google_ai_effective_limit(m.rpd, m.safety_margin) AS rpd
           FROM public.google_ai_model_limits m
          WHERE (m.model = s.model)) l ON (true))
     CROSS JOIN LATERAL ( SELECT r.sum_requests AS used_in_window
           FROM public.google_ai_ring_at(c.at, c.window_length, u.ring_low, u.ring, u.window_requests, NULL::bigint) r(ring_low, ring, sum_requests, sum_tokens)) w)
     CROSS JOIN LATERAL ( SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, c.day))[1] AS used_today) d);

create or replace view "public"."google_ai_usage_now" as  WITH clock AS (
         SELECT now() AS at,
            date_trunc('minute'::text, now(), 'UTC'::text) AS minute,
            public.google_ai_pacific_day(now()) AS day
        ), serving AS (
         SELECT public.google_ai_quota_group(k.project_id, k.id) AS quota_group,
            l.model,
            (count(*))::integer AS active_keys,
            array_agg(k.key_alias ORDER BY k.priority, k.key_alias) AS key_aliases
           FROM (public.google_ai_api_keys k
             JOIN public.google_ai_model_limits l ON ((l.is_active AND (k.serves_provider = l.provider) AND ((k.models IS NULL) OR (l.model = ANY (k.models))))))
          WHERE k.is_active
          GROUP BY (public.google_ai_quota_group(k.project_id, k.id)), l.model
        ), pairs AS (
         SELECT s.quota_group,
            s.model
           FROM serving s
        UNION
         SELECT c.quota_group,
            c.model
           FROM public.google_ai_usage_counters c
          WHERE (c.quota_group IS NOT NULL)
        ), usage AS (
         SELECT p.quota_group,
            p.model,
            clock.at,
            clock.minute,
            clock.day,
            COALESCE(s.active_keys, 0) AS active_keys,
            COALESCE(s.key_aliases, '{}'::text[]) AS key_aliases,
                CASE
                    WHEN (c.minute_bucket = clock.minute) THEN c.rpm_used
                    ELSE 0
                END AS rpm_used,
                CASE
                    WHEN (c.minute_bucket = clock.minute) THEN c.tpm_used
                    ELSE 0
                END AS tpm_used,
                CASE
                    WHEN (c.day_bucket = clock.day) THEN c.rpd_used
                    ELSE 0
                END AS rpd_used,
            public.google_ai_effective_limit(l.rpm, l.safety_margin) AS rpm_limit,
            public.google_ai_effective_limit(l.tpm, l.safety_margin) AS tpm_limit,
            public.google_ai_effective_limit(l.rpd, l.safety_margin) AS rpd_limit,
            cd.cooldown_until,
            cd.reason AS cooldown_reason
           FROM (((((pairs p
             CROSS JOIN clock)
             LEFT JOIN serving s ON (((s.quota_group = p.quota_group) AND (s.model = p.model))))
             LEFT JOIN public.google_ai_usage_counters c ON (((c.quota_group = p.quota_group) AND (c.model = p.model))))
             LEFT JOIN public.google_ai_model_limits l ON ((l.model = p.model)))
             LEFT JOIN public.google_ai_cooldowns cd ON (((cd.quota_group = p.quota_group) AND (cd.model = p.model) AND (cd.cooldown_until > clock.at))))
        )
 SELECT quota_group,
    model,
    active_keys,
    key_aliases,
    minute AS minute_window,
    rpm_used,
    rpm_limit,
    (rpm_limit - rpm_used) AS rpm_left,
    tpm_used,
    tpm_limit,
    (tpm_limit - tpm_used) AS tpm_left,
    day AS pacific_day,
    rpd_used,
    rpd_limit,
    (rpd_limit - rpd_used) AS rpd_left,
    cooldown_until,
    cooldown_reason,
        CASE
            WHEN (active_keys = 0) THEN 'no_active_key'::text
            WHEN (cooldown_until IS NOT NULL) THEN 'cooldown'::text
            WHEN (rpd_used >= rpd_limit) THEN 'rpd'::text
            WHEN (rpm_used >= rpm_limit) THEN 'rpm'::text
            WHEN (tpm_used >= tpm_limit) THEN 'tpm'::text
            ELSE 'open'::text
        END AS state,
    (minute + '00:01:00'::interval) AS minute_resets_at,
    public.google_ai_pacific_start((day + 1)) AS day_resets_at
   FROM usage u;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
comment on column public.google_ai_api_keys."project_id" is 'Google Cloud project, or OpenAI organization, of the key: keys of one project or organization share one quota group. Null: the key is its own group.';
revoke all on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone) to service_role;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone) to eve_gateway;
revoke all on function public.google_ai_model_provider(p_model text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_model_provider(p_model text) to service_role;
grant execute on function public.google_ai_model_provider(p_model text) to eve_gateway;
revoke all on function public.google_ai_settle_call(p_att google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone) from public, anon, authenticated, service_role;
alter view public.google_ai_shares_today set (security_invoker='true');
alter view public.google_ai_usage_now set (security_invoker='true');
