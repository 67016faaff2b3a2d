-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: a model's thinking ceiling (max_thinking_tokens) and google_ai_worst_call_cost: a budget
--   in money books the thinking a call may do and the dearest tier it may be asked at
set check_function_bodies = off;

alter table "public"."google_ai_model_limits" add column if not exists "max_thinking_tokens" integer;

CREATE OR REPLACE FUNCTION public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (
    select case when bool_and(c.cost is not null) then max(c.cost) end
    from public.google_ai_model_limits l
    cross join lateral (select null::text as tier
                        union select s.service_tier from public.google_ai_service_tiers s where s.model = l.model) t
    cross join lateral (select public.google_ai_call_cost(l.model, t.tier, null, 'succeeded', p_input, 0,
                          p_output + coalesce(l.max_thinking_tokens, 0), coalesce(l.max_thinking_tokens, 0)) as cost) c
    where l.model = p_model);
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
comment on column public.google_ai_clients."daily_max_usd" is 'The most the client''s calls may cost in US dollars per Pacific day (null: no limit), beside its token and request budgets: a reservation books its worst case (its input, max_output_tokens and the model''s thinking at the dearest price it may be served at, google_ai_worst_call_cost) in spent_today_usd and spent_month_usd, finalize settles them on the call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';
comment on column public.google_ai_model_limits."max_thinking_tokens" is 'The most a call may think beyond its maxOutputTokens (Gemini''s thinkingBudget ceiling; thinking bills as output): a budget in money books it (google_ai_worst_call_cost). Null: the model''s thinking is within its answer''s limit (OpenAI''s reasoning, within max_completion_tokens) or it does not think. Where the figure came from: limits_source.';
revoke all on function public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer) from public, anon, authenticated, service_role;
