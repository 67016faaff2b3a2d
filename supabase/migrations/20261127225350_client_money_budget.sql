-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a client's budget in money per Pacific day and month: the reservation books the call's
--   worst case (google_ai_count_token_use, the attempt's booked_usd), finalize settles it on cost_usd,
--   release gives it back; refusal client_budget with cause spend_budget and the time it reopens;
--   google_ai_call_cost moves to the prices' file, in PL/pgSQL (its plans kept for the session)
set check_function_bodies = off;

drop function if exists "public"."google_ai_adjust_token_budget"(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer);

drop function if exists "public"."google_ai_count_token_use"(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer);

alter table "public"."google_ai_attempts" add column if not exists "booked_usd" numeric;

alter table "public"."google_ai_clients" add column if not exists "daily_max_usd" numeric;

alter table "public"."google_ai_clients" add column if not exists "month_bucket" date;

alter table "public"."google_ai_clients" add column if not exists "monthly_max_usd" numeric;

alter table "public"."google_ai_clients" add column if not exists "spent_month_usd" numeric not null default 0;

alter table "public"."google_ai_clients" add column if not exists "spent_today_usd" numeric not null default 0;

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
  elsif p_attempt.client_id is null then
    update public.google_ai_caller_budgets b set
      requests_today = greatest(0, b.requests_today + p_requests),
      tokens_today = greatest(0, b.tokens_today + p_tokens)
    where b.caller = p_attempt.caller
      and b.day_bucket = coalesce(p_attempt.day_bucket, public.google_ai_pacific_day(p_attempt.created_at));
  end if;
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
  -- A budget in money settles on the call's cost (an unknown one keeps its worst case).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null then
    perform public.google_ai_adjust_token_budget(p_att, 0, coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd - p_att.booked_usd, 0));
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

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer, p_usd numeric) from public, anon, authenticated, service_role;
comment on column public.google_ai_attempts."booked_usd" is 'The worst case the reservation booked in its client''s budget in money (google_ai_count_token_use), settled on cost_usd when the call ends; null: no budget in money.';
comment on column public.google_ai_clients."daily_max_usd" is 'The most the client''s calls may cost in US dollars per Pacific day (null: no limit), beside its token and request budgets: a reservation books its worst case (its input and max_output_tokens at the price google_ai_call_cost reads) in spent_today_usd and spent_month_usd, finalize settles them on the call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';
comment on column public.google_ai_clients."monthly_max_usd" is 'As daily_max_usd, per Pacific calendar month (month_bucket, spent_month_usd); refused until the month''s end.';
revoke all on function public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid, p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_model text) from public, anon, authenticated, service_role;
