-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a scoped token's budget in money over its life (google_ai_tokens.max_usd, spent_usd; the
--   client's token_max_usd at mint), booked and settled beside its client's
set check_function_bodies = off;

alter table "public"."google_ai_clients" add column if not exists "token_max_usd" numeric;

alter table "public"."google_ai_tokens" add column if not exists "max_usd" numeric;

alter table "public"."google_ai_tokens" add column if not exists "spent_usd" numeric not null default 0;

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
      tokens_used = greatest(0, t.tokens_used + p_tokens),
      spent_usd = greatest(0, t.spent_usd + coalesce(p_usd, 0))
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
  select public.google_ai_worst_call_cost(p_model, p_estimated_tokens, c.max_output_tokens) into v_worst
  from public.google_ai_clients c join public.google_ai_tokens t on t.id = p_token_id
  where c.id = p_client_id and num_nonnulls(c.daily_max_usd, c.monthly_max_usd, t.max_usd) > 0;
  update public.google_ai_tokens t set
    requests_used = t.requests_used + v_count_request,
    tokens_used = t.tokens_used + p_estimated_tokens,
    spent_usd = t.spent_usd + coalesce(v_worst, 0),
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

CREATE OR REPLACE FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[] DEFAULT NULL::text[], p_ttl_seconds integer DEFAULT NULL::integer, p_max_requests integer DEFAULT NULL::integer, p_max_tokens integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_client public.google_ai_clients;
  v_models text[];
  v_ttl interval;
  v_max_requests integer;
  v_max_tokens integer;
  v_recent integer;
  v_oldest timestamptz;
  v_token_id uuid;
  v_expires timestamptz;
  v_allowed jsonb;
begin
  if p_token_hash is null or p_token_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'p_token_hash must be a SHA-256 hex digest' using errcode = '22023';
  end if;

  select * into v_client from public.google_ai_clients c where c.secret_hash = p_secret_hash for update;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'invalid_secret');
  end if;
  if v_client.revoked_at is not null then
    return jsonb_build_object('ok', false, 'error', 'client_revoked');
  end if;

  -- Default lifetime: one hour, or the client's maximum if that is shorter.
  v_ttl := coalesce(make_interval(secs => p_ttl_seconds), least(interval '1 hour', v_client.max_token_ttl));
  v_allowed := jsonb_build_object('models', v_client.models,
    'max_ttl_seconds', extract(epoch from v_client.max_token_ttl)::integer,
    'max_requests', v_client.token_max_requests, 'max_tokens', v_client.token_max_tokens);

  if p_models is null then
    v_models := v_client.models;
  else
    select array_agg(distinct coalesce((public.google_ai_resolve_model(m)).model,
      m)) into v_models from unnest(p_models) m;
  end if;
  if v_models is null or cardinality(v_models) = 0 or not (v_models <@ v_client.models)
     or (p_ttl_seconds is not null and (p_ttl_seconds < 60 or v_ttl > v_client.max_token_ttl))
     or (p_max_requests is not null and (p_max_requests < 1
       or p_max_requests > coalesce(v_client.token_max_requests, p_max_requests)))
     or (p_max_tokens is not null and (p_max_tokens < 1
       or p_max_tokens > coalesce(v_client.token_max_tokens, p_max_tokens))) then
    return jsonb_build_object('ok', false, 'error', 'scope_exceeded', 'allowed', v_allowed);
  end if;
  v_max_requests := coalesce(p_max_requests, v_client.token_max_requests);
  v_max_tokens := coalesce(p_max_tokens, v_client.token_max_tokens);

  select count(*), min(t.created_at) into v_recent, v_oldest
  from public.google_ai_tokens t
  where t.client_id = v_client.id and t.created_at > now() - interval '1 hour';
  if v_recent >= v_client.mint_per_hour then
    return jsonb_build_object('ok', false, 'error', 'mint_rate_limited',
      'retry_after_ms', public.google_ai_ms_until(v_oldest + interval '1 hour', now()));
  end if;

  v_expires := now() + v_ttl;
  insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, max_tokens, max_usd)
  values (v_client.id, p_token_hash, v_models, v_expires, v_max_requests, v_max_tokens, v_client.token_max_usd)
  returning id into v_token_id;

  return jsonb_build_object('ok', true, 'token_id', v_token_id, 'client', v_client.name, 'expires_at', v_expires,
    'models', to_jsonb(v_models), 'budget', jsonb_build_object('max_requests',
      v_max_requests, 'max_tokens', v_max_tokens));
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
  v_worst numeric;     -- the most the call may cost, where the token or its client has a budget in money
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
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    v_worst := public.google_ai_worst_call_cost(v_model, p_estimated_tokens, v_client.max_output_tokens);
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
  elsif v_token.max_usd is not null and (v_worst is null or v_token.spent_usd + v_worst > v_token.max_usd) then
    select 'token_budget', 'spend_budget' into v_limit, v_cause; -- (never reopens: the token's whole life)
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
comment on column public.google_ai_clients."token_max_usd" is 'The budget in money each token minted from now on gets (google_ai_tokens.max_usd; null: none).';
comment on column public.google_ai_tokens."max_usd" is 'The most the token''s calls may cost in US dollars over its life (at most 12 hours, so no day or month of its own; null: no limit), beside its client''s budgets: booked and settled as the client''s are (spent_usd); refused with limit token_budget, cause spend_budget, never reopening (a new token has its own).';
