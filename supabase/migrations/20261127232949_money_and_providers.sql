-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: what a call costs, and a provider as a row: prices as rows (google_ai_model_prices) and a
--   cost on every settled call (the attempt row's cached and thinking tokens and cost_usd, computed by
--   finalize through google_ai_call_cost); a client's budget in money per Pacific day and month (the
--   reservation books the call's worst case, booked_usd; finalize settles it on cost_usd, a release gives it
--   back; refusal client_budget with cause spend_budget and the time it reopens); spend you can read
--   (google_ai_spend_daily, google_ai_spend_yesterday, eve_gateway_spend_usd_total, a client's running spend,
--   the quota report's spend and money left); google_ai_providers (name, dialect, display name, base URL,
--   key-secret pattern) with google_ai_provider_list(), google_ai_provider() as pure normalisation,
--   key-disabling messages naming the provider's display name; a provider's cooldown refuses with the cause
--   upstream_cooldown (google_cooldown on rows written before, read until the next release)
set check_function_bodies = off;

drop function if exists public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone);

drop function if exists "public"."google_ai_adjust_token_budget"(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer);

drop function if exists "public"."google_ai_count_token_use"(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer);

drop function if exists "public"."google_ai_finalize"(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer);

drop function if exists "public"."google_ai_finalize_cut"(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer);

drop function if exists "public"."google_ai_metric_decided"(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone);

create table if not exists "public"."google_ai_model_prices" (
    "model" text not null,
    "service_tier" text not null,
    "input_per_mtok" numeric not null,
    "cached_input_per_mtok" numeric,
    "output_per_mtok" numeric not null,
    "thinking_per_mtok" numeric,
    "source" text not null,
    "read_on" date not null
      );

alter table "public"."google_ai_model_prices" enable row level security;

create table if not exists "public"."google_ai_providers" (
    "name" text not null,
    "dialect" text not null,
    "display_name" text not null,
    "base_url" text,
    "key_env_pattern" text
      );

alter table "public"."google_ai_providers" enable row level security;

alter table "public"."google_ai_attempts" add column if not exists "booked_usd" numeric;

alter table "public"."google_ai_attempts" add column if not exists "cached_input_tokens" integer;

alter table "public"."google_ai_attempts" add column if not exists "cost_usd" numeric;

alter table "public"."google_ai_attempts" add column if not exists "thinking_tokens" integer;

alter table "public"."google_ai_clients" add column if not exists "daily_max_usd" numeric;

alter table "public"."google_ai_clients" add column if not exists "month_bucket" date;

alter table "public"."google_ai_clients" add column if not exists "monthly_max_usd" numeric;

alter table "public"."google_ai_clients" add column if not exists "spent_month_usd" numeric not null default 0;

alter table "public"."google_ai_clients" add column if not exists "spent_today_usd" numeric not null default 0;

create UNIQUE index if not exists google_ai_model_prices_pkey ON public.google_ai_model_prices USING btree (model, service_tier);

create UNIQUE index if not exists google_ai_providers_pkey ON public.google_ai_providers USING btree (name);

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_prices"'::regclass
                 and conname = 'google_ai_model_prices_pkey') then
    alter table "public"."google_ai_model_prices" add constraint "google_ai_model_prices_pkey" PRIMARY KEY using index "google_ai_model_prices_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_pkey') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_pkey" PRIMARY KEY using index "google_ai_providers_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_prices"'::regclass
                 and conname = 'google_ai_model_prices_model_fkey') then
    alter table "public"."google_ai_model_prices" add constraint "google_ai_model_prices_model_fkey" FOREIGN KEY (model) REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_prices" validate constraint "google_ai_model_prices_model_fkey";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_prices"'::regclass
                 and conname = 'google_ai_model_prices_not_negative') then
    alter table "public"."google_ai_model_prices" add constraint "google_ai_model_prices_not_negative" CHECK ((LEAST(input_per_mtok, cached_input_per_mtok, output_per_mtok, thinking_per_mtok) >= (0)::numeric)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_prices" validate constraint "google_ai_model_prices_not_negative";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_model_prices"'::regclass
                 and conname = 'google_ai_model_prices_tier_check') then
    alter table "public"."google_ai_model_prices" add constraint "google_ai_model_prices_tier_check" CHECK ((service_tier = ANY ('{free,flex,standard,priority}'::text[]))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_model_prices" validate constraint "google_ai_model_prices_tier_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_base_url_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_base_url_check" CHECK ((base_url ~ '^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[^?#[:space:]]*)?$'::text)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_base_url_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_name_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_name_check" CHECK (((name ~ '^[a-z][a-z0-9]{0,39}$'::text) AND (name = public.google_ai_provider(name)))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_name_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_providers"'::regclass
                 and conname = 'google_ai_providers_own_check') then
    alter table "public"."google_ai_providers" add constraint "google_ai_providers_own_check" CHECK (((name = dialect) OR ((base_url IS NOT NULL) AND (key_env_pattern IS NOT NULL)))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_providers" validate constraint "google_ai_providers_own_check";

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

CREATE OR REPLACE FUNCTION public.google_ai_call_cost(p_model text, p_asked_tier text, p_served_tier text, p_outcome text, p_input integer, p_cached integer, p_output integer, p_thinking integer)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select case when p_input is null and p_output is null then case when p_outcome = 'upstream_error' then 0 end
                else ((coalesce(p_input, 0) - coalesce(p_cached, 0)) * p.input_per_mtok
                      + case when coalesce(p_cached, 0) = 0 then 0 else p_cached * p.cached_input_per_mtok end
                      + (coalesce(p_output, 0) - coalesce(p_thinking, 0)) * p.output_per_mtok
                      + coalesce(p_thinking, 0) * coalesce(p.thinking_per_mtok, p.output_per_mtok)) * 0.000001 end
    from (select case lower(coalesce(p_served_tier, p_asked_tier)) when 'default' then 'standard'
                   else coalesce(lower(coalesce(p_served_tier, p_asked_tier)), 'standard') end as tier) t
    join public.google_ai_model_prices p on p.model = p_model
      and p.service_tier in (t.tier, case when t.tier = 'standard' and p_asked_tier is null then 'free' end)
    order by p.service_tier = 'free' desc
    limit 1);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_model text)
 RETURNS numeric
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_now);
  v_month date := pg_catalog.date_trunc('month', public.google_ai_pacific_day(p_now))::date;
  v_count_request integer := public.google_ai_request_counts(p_attempt);
  v_worst numeric;
begin
  select public.google_ai_call_cost(p_model, null, null, 'succeeded', p_estimated_tokens, 0, c.max_output_tokens, 0)
    into v_worst
  from public.google_ai_clients c
  where c.id = p_client_id and (c.daily_max_usd is not null or c.monthly_max_usd is not null);
  update public.google_ai_tokens t set
    requests_used = t.requests_used + v_count_request,
    tokens_used = t.tokens_used + p_estimated_tokens,
    last_used_at = p_now
  where t.id = p_token_id;
  update public.google_ai_clients c set
    day_bucket = v_day,
    (requests_today, tokens_today) = (select u.requests, u.tokens
      from public.google_ai_daily_use(c.day_bucket, c.requests_today, c.tokens_today, v_day, v_count_request,
        p_estimated_tokens, null, null) u),
    spent_today_usd = case when c.day_bucket = v_day then c.spent_today_usd else 0 end + coalesce(v_worst, 0),
    month_bucket = v_month,
    spent_month_usd = case when c.month_bucket = v_month then c.spent_month_usd else 0 end + coalesce(v_worst, 0)
  where c.id = p_client_id;
  return v_worst;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer, p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb, p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer, p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_settled_tokens integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer)
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
  -- google_error: upstream_error's former name, taken until the next release (a finalize logged
  -- before it replays) and written as upstream_error.
  if p_outcome not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'google_error') then
    raise exception 'p_outcome must be succeeded, upstream_error, network_error or timeout' using errcode = '22023';
  end if;
  if not (p_quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'p_quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = case p_outcome when 'google_error' then 'upstream_error' else p_outcome end,
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
    first_byte_ms = case when p_first_byte_ms is not null then greatest(0, p_first_byte_ms) end,
    cached_input_tokens = p_cached_input_tokens,
    thinking_tokens = p_thinking_tokens,
    cost_usd = public.google_ai_call_cost(a.model, p_service_tier, p_served_tier, p_outcome, p_input_tokens,
      p_cached_input_tokens, p_output_tokens, p_thinking_tokens)
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

  -- The provider says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
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
    p_room_until, p_settled_tokens);

  return jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer, p_latency_ms integer DEFAULT NULL::integer, p_error_message text DEFAULT NULL::text, p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text, p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_answer jsonb;
begin
  if p_cut_by not in ('client', 'upstream', 'google') then
    raise exception 'p_cut_by must be client or upstream' using errcode = '22023';
  end if;
  v_answer := public.google_ai_finalize(
    p_reservation_id => p_reservation_id, p_outcome => 'succeeded', p_input_tokens => p_input_tokens,
    p_output_tokens => p_output_tokens, p_http_status => 200, p_latency_ms => p_latency_ms,
    p_service_tier => p_service_tier, p_served_tier => p_served_tier, p_added_ms => p_added_ms,
    p_first_byte_ms => p_first_byte_ms, p_cached_input_tokens => p_cached_input_tokens,
    p_thinking_tokens => p_thinking_tokens);
  if not coalesce((v_answer ->> 'ok')::boolean, false) then
    return v_answer;
  end if;
  update public.google_ai_attempts a set
    status = 'cut',
    error_code = 'stream_cut_by_' || p_cut_by,
    error_message = left(p_error_message, 1000)
  where a.reservation_id = p_reservation_id;
  return jsonb_build_object('ok', true, 'status', 'cut');
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_provider_list()
 RETURNS SETOF public.google_ai_providers
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select * from public.google_ai_providers p order by p.name
$function$
;

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

CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404, p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text, p_latency_ms integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_marked boolean;
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    error_message = v_message,
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_adjust_token_budget(v_att, 0, -v_att.estimated_tokens, -v_att.booked_usd);
  perform public.google_ai_settle_admission(v_att, 0, true);

  -- Google's message may name a replacement ("… use models/X"): the first other model it names is kept
  -- as its suggestion. The only sentence read here, and only for the operator to see.
  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = (select pg_catalog.lower(pg_catalog.rtrim(m[1], '.'))
                        from pg_catalog.regexp_matches(v_message, 'models/([A-Za-z0-9][A-Za-z0-9._-]{0,99})', 'g') m
                        where pg_catalog.lower(pg_catalog.rtrim(m[1], '.')) <> pg_catalog.lower(v_att.model)
                        limit 1)
  where l.model = v_att.model and l.withdrawn_at is null;
  v_marked := found;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', v_marked,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
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

CREATE OR REPLACE FUNCTION public.google_ai_provider(p_name text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case pg_catalog.translate(pg_catalog.lower(coalesce(p_name, 'google')), ' _-', '')
           when 'googleai' then 'google' when 'gemini' then 'google'
           else pg_catalog.translate(pg_catalog.lower(coalesce(p_name, 'google')), ' _-', '') end
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

CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_caller text, p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer, p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text, p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone, p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean, p_count_token boolean)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_answer jsonb;
  v_booked_usd numeric;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_count_token then
    v_booked_usd := public.google_ai_count_token_use(p_token_id, p_client_id, p_now, p_attempt, p_estimated_tokens,
      p_model);
  end if;
  if p_hold then
    perform public.google_ai_hold_request(p_caller, p_request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd)
  values (gen_random_uuid(), 'reserved', p_request_id, p_caller, p_client_id, p_token_id, p_model,
    p_requested_model, p_attempt, p_key_id, p_key_alias, p_quota_group, p_minute_bucket, p_day_bucket,
    p_estimated_tokens, p_wait_ms, coalesce(p_metadata, '{}'), p_class, p_admitted_at, v_booked_usd)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class, 'quota', p_quota)
  into v_answer;
  if p_quota is null then
    v_answer := v_answer - 'quota';
  end if;
  return v_answer;
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer DEFAULT NULL::integer, p_reason text DEFAULT NULL::text, p_message text DEFAULT NULL::text, p_models jsonb DEFAULT '[]'::jsonb, p_disable boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_key public.google_ai_api_keys;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_message text := public.google_ai_sanitize_error(p_message);
  v_listed integer;
  v_upserted integer := 0;
  v_removed integer := 0;
  v_disabled boolean := false;
  v_disabled_reason text;
begin
  if p_status is null or p_status not in ('ok', 'invalid', 'missing_secret', 'error') then
    raise exception 'p_status must be ok, invalid, missing_secret or error' using errcode = '22023';
  end if;
  if p_models is null or jsonb_typeof(p_models) <> 'array' then
    raise exception 'p_models must be a JSON array' using errcode = '22023';
  end if;

  select * into v_key from public.google_ai_api_keys k where k.id = p_key_id for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'unknown_key');
  end if;
  v_listed := case when p_status = 'ok' then jsonb_array_length(p_models) end;

  insert into public.google_ai_key_health as h (api_key_id, key_alias,
    status, checked_at, http_status, reason, message, models_listed)
  values (p_key_id, v_key.key_alias, p_status, v_now, p_http_status, left(p_reason, 200), v_message, v_listed)
  on conflict (api_key_id) do update set
    key_alias = excluded.key_alias, status = excluded.status, checked_at = excluded.checked_at,
    http_status = excluded.http_status, reason = excluded.reason, message = excluded.message,
    models_listed = excluded.models_listed;

  if p_status = 'ok' then
    insert into public.google_ai_model_catalogue as c (api_key_id, model, key_alias, quota_group, display_name, version,
      input_token_limit, output_token_limit, supported_methods, first_seen_at, refreshed_at)
    select distinct on (m.model) p_key_id, m.model, v_key.key_alias,
           public.google_ai_quota_group(v_key.project_id, v_key.id),
           left(m.display_name, 200), left(m.version, 100), m.input_token_limit, m.output_token_limit,
           coalesce(m.supported_methods, '{}'), v_now, v_now
    from jsonb_to_recordset(p_models) as m(model text, display_name text, version text,
           input_token_limit integer, output_token_limit integer, supported_methods text[])
    where m.model is not null and m.model <> ''
    on conflict (api_key_id, model) do update set
      key_alias = excluded.key_alias, quota_group = excluded.quota_group, display_name = excluded.display_name,
      version = excluded.version, input_token_limit = excluded.input_token_limit,
      output_token_limit = excluded.output_token_limit, supported_methods = excluded.supported_methods,
      refreshed_at = excluded.refreshed_at;
    get diagnostics v_upserted = row_count;
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id and c.refreshed_at < v_now;
    get diagnostics v_removed = row_count;
  elsif p_status = 'invalid' then
    delete from public.google_ai_model_catalogue c where c.api_key_id = p_key_id;
    get diagnostics v_removed = row_count;
    if p_disable and v_key.is_active then
      v_disabled_reason := left(format('maintenance: %s rejected the key (its model list: HTTP %s%s): %s',
        (select p.display_name from public.google_ai_providers p where p.name = v_key.serves_provider),
        coalesce(p_http_status::text, '?'), coalesce(' ' || p_reason, ''), v_message), 500);
      update public.google_ai_api_keys k set
        is_active = false, disabled_reason = v_disabled_reason, disabled_at = v_now, updated_at = v_now
      where k.id = p_key_id;
      v_disabled := true;
    end if;
  end if;

  return jsonb_build_object('ok', true, 'key_alias', v_key.key_alias, 'status', p_status, 'disabled', v_disabled,
    'disabled_reason', v_disabled_reason, 'models', v_upserted, 'removed', v_removed, 'checked_at', v_now);
end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_refusal_cause(p_limit text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  select case when p_limit in ('rpm', 'tpm') then 'window_full'
              when p_limit = 'rpd' then 'day_exhausted'
              when p_limit = 'cooldown' then 'upstream_cooldown'
              when p_limit in ('token_budget', 'client_budget', 'caller_budget') then 'budget'
              else p_limit end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_att public.google_ai_attempts;
begin
  update public.google_ai_attempts a set
    status = 'released',
    finished_at = pg_catalog.clock_timestamp(),
    error_message = left(p_reason, 1000)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_adjust_token_budget(v_att, case when v_att.attempt = 1 then -1 else 0 end,
    -v_att.estimated_tokens, -v_att.booked_usd);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
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

CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text, p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer, p_metadata jsonb, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_day date := public.google_ai_pacific_day(p_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_model text;
  v_limit text;
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_attempt);
  v_day_over boolean;
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_worst numeric;     -- the most the call may cost, where the client has a budget in money
  v_cause text;
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash for update;
  if not found then
    refusal := jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid',
      'retry_after_ms', null);
    return;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  caller := 'client:' || v_client.name;
  client_id := v_client.id;
  token_id := v_token.id;
  v_model := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  select u.over into v_day_over
  from public.google_ai_daily_use(v_client.day_bucket, v_client.requests_today, v_client.tokens_today, v_day,
    v_count_request, p_estimated_tokens, v_client.daily_max_requests, v_client.daily_max_tokens) u;
  if v_client.daily_max_usd is not null or v_client.monthly_max_usd is not null then
    v_worst := public.google_ai_call_cost(v_model, null, null, 'succeeded', p_estimated_tokens, 0,
      v_client.max_output_tokens, 0);
  end if;

  if v_token.revoked_at is not null or v_client.revoked_at is not null then
    v_limit := 'token_revoked';
  elsif v_token.expires_at <= p_now then
    v_limit := 'token_expired';
  elsif not (v_model = any (v_token.models)) then
    v_limit := 'model_not_allowed';
  elsif (v_token.max_requests is not null and v_token.requests_used + v_count_request > v_token.max_requests)
     or (v_token.max_tokens is not null and v_token.tokens_used + p_estimated_tokens > v_token.max_tokens) then
    v_limit := 'token_budget';
  elsif v_day_over then
    v_limit := 'client_budget';
    v_retry_at := public.google_ai_pacific_midnight_after(p_now);
  -- A budget in money: the day's (then the month's) spend with this call's worst case over it, or a
  -- price not known (no reopening: only a price row admits it).
  elsif v_client.daily_max_usd is not null and (v_worst is null or v_worst + case when v_client.day_bucket = v_day
        then v_client.spent_today_usd else 0 end > v_client.daily_max_usd) then
    select 'client_budget', 'spend_budget', case when v_worst is not null
      then public.google_ai_pacific_midnight_after(p_now) end into v_limit, v_cause, v_retry_at;
  elsif v_client.monthly_max_usd is not null and (v_worst is null or v_worst + case when v_client.month_bucket = v_month
        then v_client.spent_month_usd else 0 end > v_client.monthly_max_usd) then
    select 'client_budget', 'spend_budget', case when v_worst is not null
      then public.google_ai_pacific_start((v_month + interval '1 month')::date) end into v_limit, v_cause, v_retry_at;
  end if;
  if v_limit is null then
    return;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);

  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
  values ('refused', p_request_id, caller, client_id, token_id, v_model, p_model, coalesce(p_attempt, 1),
    p_estimated_tokens, v_limit, coalesce(v_cause, public.google_ai_refusal_cause(v_limit)), v_retry_ms, p_wait_ms,
    coalesce(p_metadata, '{}'));
  refusal := jsonb_build_object('ok', false, 'limit', v_limit, 'cause', coalesce(v_cause,
    public.google_ai_refusal_cause(v_limit)),
    'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', client_id, 'token_id', token_id);
end
$function$
;

grant delete on table "public"."google_ai_model_prices" to "service_role";

grant insert on table "public"."google_ai_model_prices" to "service_role";

grant select on table "public"."google_ai_model_prices" to "service_role";

grant update on table "public"."google_ai_model_prices" to "service_role";

grant delete on table "public"."google_ai_providers" to "service_role";

grant insert on table "public"."google_ai_providers" to "service_role";

grant select on table "public"."google_ai_providers" to "service_role";

grant update on table "public"."google_ai_providers" to "service_role";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer, p_usd numeric) from public, anon, authenticated, service_role;
comment on column public.google_ai_api_keys."provider" is 'Whose key this is, as the owner writes it: a provider''s name in any case, with or without spaces, _ or - (gemini and Google AI are google; null is google). Kept as written; serves_provider holds the gateway''s reading.';
comment on column public.google_ai_api_keys."serves_provider" is 'The provider (google_ai_providers) whose model rows the key serves: google_ai_provider(provider), kept by PostgreSQL.';
comment on column public.google_ai_attempts."booked_usd" is 'The worst case the reservation booked in its client''s budget in money (google_ai_count_token_use), settled on cost_usd when the call ends; null: no budget in money.';
comment on column public.google_ai_attempts."cached_input_tokens" is 'Of input_tokens, those the provider read from its cache (Google''s cachedContentTokenCount, OpenAI''s cached_tokens); null: not said.';
comment on column public.google_ai_attempts."cost_usd" is 'What the call cost in US dollars, set when it settles (google_ai_call_cost): the provider''s counts at its model''s price; null: not known (no price, or a call that may have been billed without counts).';
comment on column public.google_ai_attempts."thinking_tokens" is 'Of output_tokens, the model''s thinking (Google''s thoughtsTokenCount, OpenAI''s reasoning_tokens); null: not said.';
revoke all on function public.google_ai_call_cost(p_model text, p_asked_tier text, p_served_tier text, p_outcome text, p_input integer, p_cached integer, p_output integer, p_thinking integer) from public, anon, authenticated, service_role;
comment on column public.google_ai_clients."daily_max_usd" is 'The most the client''s calls may cost in US dollars per Pacific day (null: no limit), beside its token and request budgets: a reservation books its worst case (its input and max_output_tokens at the price google_ai_call_cost reads) in spent_today_usd and spent_month_usd, finalize settles them on the call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';
comment on column public.google_ai_clients."monthly_max_usd" is 'As daily_max_usd, per Pacific calendar month (month_bucket, spent_month_usd); refused until the month''s end.';
revoke all on function public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_model text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer) to service_role;
grant execute on function public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer, p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer, p_thinking_tokens integer) to eve_gateway;
revoke all on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer) to service_role;
grant execute on function public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer, p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text, p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean, p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text, p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer, p_thinking_tokens integer) to eve_gateway;
revoke all on function public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[], p_settled_before timestamp with time zone) from public, anon, authenticated, service_role;
comment on column public.google_ai_model_limits."provider" is 'Who serves the model (google_ai_providers). Only keys of this provider serve it.';
revoke all on table public.google_ai_model_prices from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_model_prices to service_role;
comment on table public.google_ai_model_prices is 'US dollars per million tokens per model and service tier (free: a call asking no tier), with the source and the day it was read; no row: the call''s cost is unknown (null).';
revoke all on function public.google_ai_provider_list() from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_provider_list() to service_role;
grant execute on function public.google_ai_provider_list() to eve_gateway;
revoke all on table public.google_ai_providers from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_providers to service_role;
revoke all on table public.google_ai_spend_daily from public, anon, authenticated, service_role;
grant select on table public.google_ai_spend_daily to service_role;
alter view public.google_ai_spend_daily set (security_invoker='true');
comment on view public.google_ai_spend_daily is 'Spend in US dollars per provider''s day (Pacific for Google, UTC for OpenAI), provider, model and caller; calls_unpriced: calls whose cost is not known (not in spend_usd).';
revoke all on function public.google_ai_spend_yesterday(p_now timestamp with time zone) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_spend_yesterday(p_now timestamp with time zone) to service_role;
grant execute on function public.google_ai_spend_yesterday(p_now timestamp with time zone) to eve_gateway;
