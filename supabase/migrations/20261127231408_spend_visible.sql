-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: spend you can read: google_ai_spend_daily (per provider's day, provider, model, caller),
--   google_ai_spend_yesterday for the maintenance summary, eve_gateway_spend_usd_total in the metrics
--   (google_ai_metric_decided carries cost_usd), a client's running spend settled on every call's cost, and
--   the quota report's spend and budgets in money left for a token
set check_function_bodies = off;

drop function if exists public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone);

drop function if exists "public"."google_ai_metric_decided"(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone);

create or replace view "public"."google_ai_spend_daily" as  SELECT
        CASE
            WHEN (l.provider = 'openai'::text) THEN ((a.admitted_at AT TIME ZONE 'UTC'::text))::date
            ELSE public.google_ai_pacific_day(a.admitted_at)
        END AS day,
    COALESCE(l.provider, 'google'::text) AS provider,
    a.model,
    a.caller,
    (count(*))::integer AS calls,
    (count(*) FILTER (WHERE (a.cost_usd IS NULL)))::integer AS calls_unpriced,
    COALESCE(sum(a.cost_usd), (0)::numeric) AS spend_usd
   FROM (public.google_ai_attempts a
     LEFT JOIN public.google_ai_model_limits l ON ((l.model = a.model)))
  WHERE ((a.admitted_at IS NOT NULL) AND (a.status = ANY ('{succeeded,cut,upstream_error,network_error,timeout,google_error}'::text[])))
  GROUP BY
        CASE
            WHEN (l.provider = 'openai'::text) THEN ((a.admitted_at AT TIME ZONE 'UTC'::text))::date
            ELSE public.google_ai_pacific_day(a.admitted_at)
        END, COALESCE(l.provider, 'google'::text), a.model, a.caller;

CREATE OR REPLACE FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object('provider', s.provider, 'day', s.day, 'spend_usd', s.spend,
           'calls', s.calls, 'calls_unpriced', s.unpriced) order by s.provider), '[]')
  from (select d.provider, d.day, sum(d.spend_usd) as spend, sum(d.calls)::integer as calls,
               sum(d.calls_unpriced)::integer as unpriced
        from public.google_ai_spend_daily d
        where d.day = case d.provider when 'openai' then (coalesce(p_now, now()) at time zone 'UTC')::date
                                      else public.google_ai_pacific_day(coalesce(p_now, now())) end - 1
        group by 1, 2) s
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer, p_usd numeric DEFAULT 0)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_attempt.created_at);
  v_month date := pg_catalog.date_trunc('month', public.google_ai_pacific_day(p_attempt.created_at))::date;
begin
  if p_requests = 0 and p_tokens = 0 and coalesce(p_usd, 0) = 0 then
    return;
  end if;
  if p_attempt.token_id is not null then
    update public.google_ai_tokens t set
      requests_used = greatest(0, t.requests_used + p_requests),
      tokens_used = greatest(0, t.tokens_used + p_tokens)
    where t.id = p_attempt.token_id;
    update public.google_ai_clients c set
      requests_today = case when c.day_bucket = v_day then greatest(0, c.requests_today + p_requests)
                            else c.requests_today end,
      tokens_today = case when c.day_bucket = v_day then greatest(0, c.tokens_today + p_tokens) else c.tokens_today end,
      spent_today_usd = case when c.day_bucket = v_day then greatest(0, c.spent_today_usd + coalesce(p_usd, 0))
                             else c.spent_today_usd end,
      spent_month_usd = case when c.month_bucket = v_month then greatest(0, c.spent_month_usd + coalesce(p_usd, 0))
                             else c.spent_month_usd end
    where c.id = p_attempt.client_id and (c.day_bucket = v_day or c.month_bucket = v_month);
  elsif p_attempt.client_id is null and (p_requests <> 0 or p_tokens <> 0) then
    update public.google_ai_caller_budgets b set
      requests_today = greatest(0, b.requests_today + p_requests),
      tokens_today = greatest(0, b.tokens_today + p_tokens)
    where b.caller = p_attempt.caller
      and b.day_bucket = coalesce(p_attempt.day_bucket, public.google_ai_pacific_day(p_attempt.created_at));
  end if;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone)
 RETURNS TABLE(model text, quota_group text, priority_class text, status text, limit_hit text, refusal_cause text, quota_cause text, http_status integer, service_tier text, served_tier text, input_tokens integer, output_tokens integer, latency_ms integer, first_byte_ms integer, added_ms integer, wait_ms integer, caller text, cost_usd numeric)
 LANGUAGE sql
 STABLE
AS $function$
  select a.model, a.quota_group, a.priority_class, a.status,
         a.limit_hit, a.refusal_cause, a.quota_cause, a.http_status,
         a.service_tier, a.served_tier, a.input_tokens, a.output_tokens,
         a.latency_ms, a.first_byte_ms, a.added_ms, a.wait_ms,
         case when a.client_id is not null then a.caller else 'service' end as caller, a.cost_usd
  from public.google_ai_attempts a
  where a.id > p_after and a.id <= p_through and a.status <> 'reserved'
    and (p_only is null or a.id = any (p_only))
    and (p_settled_before is null or a.status <> 'refused' or a.created_at < p_settled_before)
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
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn', 'google_error') then g.n end),
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      ('eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end),
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      ('eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'), g.tokens_in),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'), g.tokens_out),
      -- What the calls cost (cost_usd; a call of unknown cost adds nothing).
      ('eve_gateway_spend_usd_total', concat_ws(',', g.m, g.pv, g.who), g.spend)
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

CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text, p_caller text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_caller_budget public.google_ai_caller_budgets;
  v_models text[];
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_max_requests integer;
  v_max_tokens bigint;
  v_requests_today integer;
  v_tokens_today bigint;
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    if not found then
      return jsonb_build_object('ok', false, 'status', 'token_invalid');
    end if;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    if v_token.revoked_at is not null or v_client.revoked_at is not null then
      return jsonb_build_object('ok', false, 'status', 'token_revoked');
    elsif v_token.expires_at <= v_now then
      return jsonb_build_object('ok', false, 'status', 'token_expired');
    end if;
    v_models := v_token.models;
    v_max_requests := v_client.daily_max_requests;
    v_max_tokens := v_client.daily_max_tokens;
    select u.requests, u.tokens into v_requests_today, v_tokens_today
    from public.google_ai_daily_use(v_client.day_bucket, v_client.requests_today, v_client.tokens_today, v_day, 0, 0,
      null, null) u;
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: every field of v_caller_budget stays null.
    select * into v_caller_budget from public.google_ai_caller_budgets b where b.caller = p_caller;
    v_max_requests := v_caller_budget.daily_max_requests;
    v_max_tokens := v_caller_budget.daily_max_tokens;
    select u.requests, u.tokens into v_requests_today, v_tokens_today
    from public.google_ai_daily_use(v_caller_budget.day_bucket, v_caller_budget.requests_today,
      v_caller_budget.tokens_today, v_day, 0, 0, null, null) u;
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    -- (A service caller has no token: its token fields are null.)
    'budget', jsonb_build_object(
      'token_requests_left', public.google_ai_budget_left(v_token.max_requests, v_token.requests_used),
      'token_tokens_left', public.google_ai_budget_left(v_token.max_tokens, v_token.tokens_used),
      'token_expires_at', v_token.expires_at,
      'daily_requests_left', public.google_ai_budget_left(v_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_max_requests is not null or v_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end,
      -- A client's budgets in money: what is left of its day's and month's (booked worst cases included).
      -- (greatest() ignores a null: a budget not set stays null only outside it)
      'daily_usd_left', v_client.daily_max_usd - least(v_client.daily_max_usd, case when v_client.day_bucket = v_day
                                                                   then v_client.spent_today_usd else 0 end),
      'monthly_usd_left', v_client.monthly_max_usd - least(v_client.monthly_max_usd, case when v_client.month_bucket
        = pg_catalog.date_trunc('month', v_day)::date then v_client.spent_month_usd else 0 end)),
    -- A token's client's spend of the Pacific day and month, from its running totals (calls in flight at
    -- their worst case where it has a budget in money); a service caller's is read in google_ai_spend_daily.
    'spend', case when p_token_hash is not null then jsonb_build_object(
               'today_usd', case when v_client.day_bucket = v_day then v_client.spent_today_usd else 0 end,
               'month_usd', case when v_client.month_bucket = pg_catalog.date_trunc('month', v_day)::date
                                 then v_client.spent_month_usd else 0 end) end,
    'models', public.google_ai_quota_report_models(v_now, v_models, p_token_hash is null, v_owner_class,
      v_owner_caller),
    'withdrawn', public.google_ai_quota_report_withdrawn(v_models));
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer, p_output_tokens integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_flying integer;
  v_flying_tokens bigint;
  v_counted integer;
begin
  if p_room_until > v_now and p_att.quota_group is not null then
    select count(*), coalesce(sum(a.estimated_tokens), 0) into v_flying, v_flying_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.status = 'reserved';
    if p_room_requests <= 2 * v_flying or p_room_tokens <= 2 * v_flying_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    perform public.google_ai_adjust_token_budget(p_att, 0, coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0));
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$function$
;

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone) from public, anon, authenticated, service_role;
revoke all on table public.google_ai_spend_daily from public, anon, authenticated, service_role;
grant select on table public.google_ai_spend_daily to service_role;
alter view public.google_ai_spend_daily set (security_invoker='true');
comment on view public.google_ai_spend_daily is 'Spend in US dollars per provider''s day (Pacific for Google, UTC for OpenAI), provider, model and caller; calls_unpriced: calls whose cost is not known (not in spend_usd).';
revoke all on function public.google_ai_spend_yesterday(p_now timestamp with time zone) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_spend_yesterday(p_now timestamp with time zone) to service_role;
grant execute on function public.google_ai_spend_yesterday(p_now timestamp with time zone) to eve_gateway;
