-- Google's 429s by cause (docs/google-429s.md). llm-invoke reads the cause from Google's body
-- (minute, day, limit_zero, spend_cap, unknown) and finalize records it on the attempt row and on the
-- cooldown it starts; each cause rests for its own time:
--   minute, unknown  Google's delay (or llm-invoke's default), one model of the quota group
--   day              until Pacific midnight, one model
--   limit_zero       the project has no quota for the model: until Pacific midnight, or sooner, when
--                    a key check of the group succeeds (the trigger below clears it)
--   spend_cap        the billing account's spend cap: every model of the quota group (one cooldown
--                    row each), for Google's delay but at least the rolling window (llm-invoke sends
--                    the later of the two)
-- A refusal that comes from a cooldown names its cause (google_ai_cooldown_cause, read in the
-- reservation's own statement), and the quota route shows each model's cooldowns with their causes
-- and the models Google withdrew.
-- finalize also records the service tier asked for and the one Google says served, and the time the
-- gateway added and the time to the first byte (of a request's final attempt), for the metrics.
-- Applying this file twice changes nothing.

-- Finalize, with the cause, the tiers and the times ---------------------------------------------
-- The signature grows: the old one is dropped, or a call naming the old parameters would be ambiguous.
drop function if exists public.google_ai_finalize(
  uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean);

-- As in 20261122010000_guarded_windows.sql, plus: p_quota_cause (on the attempt; the cooldown row's
-- cause; spend_cap rests every model of the group), p_service_tier, p_served_tier, p_added_ms,
-- p_first_byte_ms (on the attempt).
create or replace function public.google_ai_finalize(
  p_reservation_id uuid,
  p_outcome text,
  p_input_tokens integer default null,
  p_output_tokens integer default null,
  p_http_status integer default null,
  p_error_code text default null,
  p_quota_id text default null,
  p_error_message text default null,
  p_latency_ms integer default null,
  p_cooldown_until timestamptz default null,
  p_cooldown_until_pacific_midnight boolean default false,
  p_response jsonb default null,
  -- The caller's verdict that Google refused the key itself (the function classifies Google's
  -- reasons: API_KEY_INVALID, API_KEY_EXPIRED, ...). Null: not given, decided here by the code.
  p_key_rejected boolean default null,
  p_quota_cause text default null,
  p_service_tier text default null,
  p_served_tier text default null,
  p_added_ms integer default null,
  p_first_byte_ms integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if p_outcome not in ('succeeded', 'google_error', 'network_error', 'timeout') then
    raise exception 'p_outcome must be succeeded, google_error, network_error or timeout' using errcode = '22023';
  end if;
  if p_quota_cause is not null and p_quota_cause not in ('minute', 'day', 'limit_zero', 'spend_cap', 'unknown') then
    raise exception 'p_quota_cause must be minute, day, limit_zero, spend_cap or unknown' using errcode = '22023';
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
  if p_outcome = 'succeeded' and p_response is not null and v_att.request_id is not null then
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    values (v_att.caller, v_att.request_id, 'done', v_att.model, p_response, now(), null)
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null;
  end if;

  if p_outcome = 'succeeded' then
    insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
    values (v_att.model, p_input_tokens, p_output_tokens,
      coalesce(p_input_tokens, 0) + coalesce(p_output_tokens, 0),
      coalesce(v_att.request_id, v_att.reservation_id::text),
      jsonb_build_object('source', 'eve-llm-gateway', 'caller', v_att.caller, 'key_alias', v_att.key_alias,
        'attempt', v_att.attempt, 'reservation_id', v_att.reservation_id));
  end if;

  -- Google says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = 'Google rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
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

  if p_input_tokens is not null and p_input_tokens <> v_att.estimated_tokens then
    perform public.google_ai_adjust_token_budget(v_att, 0, p_input_tokens - v_att.estimated_tokens);
  end if;
  -- The window learns Google's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(v_att, greatest(0, coalesce(p_input_tokens, v_att.estimated_tokens)), false);

  return jsonb_build_object('ok', true, 'status', p_outcome, 'cooldown_until', v_until);
end
$$;

-- A quota group rests until p_until (never shortened by a later 429), with the 429's cause: one
-- model, or for a spend cap every model row (and the attempt's own model, a row or not). A row keeps
-- the cause of whichever rest ends later.
create or replace function public.google_ai_cooldown_for_cause(
  p_quota_group text, p_model text, p_until timestamptz, p_cause text, p_reason text, p_quota_id text)
returns void
language sql set search_path = ''
as $$
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id, cause)
  select p_quota_group, m.model, p_until, left(p_reason, 500), left(p_quota_id, 200), p_cause
  from (select p_model as model
        union
        select l.model from public.google_ai_model_limits l where p_cause = 'spend_cap') m
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = case when excluded.cooldown_until >= c.cooldown_until then excluded.reason else c.reason end,
    quota_id = case when excluded.cooldown_until >= c.cooldown_until then excluded.quota_id else c.quota_id end,
    cause = case when excluded.cooldown_until >= c.cooldown_until then excluded.cause else c.cause end,
    updated_at = now();
$$;

comment on function public.google_ai_cooldown_for_cause(text, text, timestamptz, text, text, text) is
  'Finalize''s cooldown: one model, or for a spend cap (cause spend_cap) every model of the quota group.';

-- A limit: 0 lasts until the next key check ------------------------------------------------------
-- The maintenance function's key check (google_ai_record_key_check) writes the key's health row; an
-- 'ok' check ends the limit_zero rests of the key's quota group: the project may have been given
-- quota for the model since (the next request tries Google once more, and a new limit: 0 rests again).
create or replace function public.google_ai_key_check_clears_limit_zero()
returns trigger
language plpgsql set search_path = ''
as $$
begin
  if new.status = 'ok' then
    delete from public.google_ai_cooldowns c
    using public.google_ai_api_keys k
    where k.id = new.api_key_id
      and c.quota_group = public.google_ai_quota_group(k.project_id, k.id)
      and c.cause = 'limit_zero';
  end if;
  return null;
end
$$;

drop trigger if exists google_ai_key_check_clears_limit_zero on public.google_ai_key_health;
create trigger google_ai_key_check_clears_limit_zero
  after insert or update of checked_at, status on public.google_ai_key_health
  for each row execute function public.google_ai_key_check_clears_limit_zero();

-- What a cooldown refusal names ------------------------------------------------------------------
-- The cause of the model's cooldown that ends first among the quota groups resting for it (the one
-- a refusal's retry_after_ms is about); null: none rests, or its rest has no cause recorded.
create or replace function public.google_ai_cooldown_cause(p_model text)
returns text
language sql stable security definer set search_path = ''
as $$
  select c.cause
  from public.google_ai_cooldowns c
  where c.model = coalesce((public.google_ai_resolve_model(p_model)).model, p_model)
    and c.cooldown_until > pg_catalog.clock_timestamp()
  order by c.cooldown_until, c.quota_group
  limit 1
$$;

comment on function public.google_ai_cooldown_cause(text) is
  'Why a model''s first-ending cooldown rests (minute, day, limit_zero, spend_cap, unknown): read in the reservation''s statement when it refuses with limit cooldown.';

-- The quota route: cooldowns with their causes, withdrawn models --------------------------------
create or replace function public.google_ai_model_cooldowns(p_model text, p_now timestamptz)
returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'quota_group', c.quota_group,
           'cause', c.cause,
           'cooldown_until', c.cooldown_until,
           'retry_after_ms', public.google_ai_ms_until(c.cooldown_until, p_now))
         order by c.cooldown_until, c.quota_group), '[]')
  from public.google_ai_cooldowns c
  where c.model = p_model and c.cooldown_until > p_now
$$;

-- As in 20261122050000_quota_visibility.sql, plus: each model's `cooldowns` (with their cause) and
-- the models Google withdrew (`withdrawn`: when, Google's message, the successor, the shutdown date).
create or replace function public.google_ai_quota_report_at(
  p_now timestamptz, p_token_hash text, p_caller text default null)
returns jsonb
language plpgsql stable set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_caller_budget public.google_ai_caller_budgets;
  v_models text[];
  v_caller jsonb;
  v_budget jsonb;
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
    v_requests_today := case when v_client.day_bucket = v_day then v_client.requests_today else 0 end;
    v_tokens_today := case when v_client.day_bucket = v_day then v_client.tokens_today else 0 end;
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_budget := jsonb_build_object(
      'token_requests_left', public.google_ai_budget_left(v_token.max_requests, v_token.requests_used),
      'token_tokens_left', public.google_ai_budget_left(v_token.max_tokens, v_token.tokens_used),
      'token_expires_at', v_token.expires_at,
      'daily_requests_left', public.google_ai_budget_left(v_client.daily_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_client.daily_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_client.daily_max_requests is not null or v_client.daily_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end);
  else
    -- A label without a row has no budget: every field of v_caller_budget stays null.
    select * into v_caller_budget from public.google_ai_caller_budgets b where b.caller = p_caller;
    v_requests_today := case when v_caller_budget.day_bucket = v_day then v_caller_budget.requests_today else 0 end;
    v_tokens_today := case when v_caller_budget.day_bucket = v_day then v_caller_budget.tokens_today else 0 end;
    v_caller := jsonb_build_object('kind', 'service', 'client', null,
      'priority_class', (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1));
    v_budget := jsonb_build_object('token_requests_left', null, 'token_tokens_left', null, 'token_expires_at', null,
      'daily_requests_left', public.google_ai_budget_left(v_caller_budget.daily_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_caller_budget.daily_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_caller_budget.daily_max_requests is not null
                                   or v_caller_budget.daily_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end);
  end if;

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    'budget', v_budget,
    'models', coalesce((
      select jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('cooldowns', public.google_ai_model_cooldowns(l.model, v_now))
                       order by l.model)
      from public.google_ai_model_limits l
      where l.is_active and (v_models is null or l.model = any (v_models))), '[]'),
    'withdrawn', coalesce((
      select jsonb_agg(jsonb_build_object(
               'model', l.model,
               'withdrawn_at', l.withdrawn_at,
               'withdrawn_message', l.withdrawn_message,
               'successor', l.successor,
               'shutdown_date', l.shutdown_date)
             order by l.model)
      from public.google_ai_model_limits l
      where l.withdrawn_at is not null and (v_models is null or l.model = any (v_models))), '[]'));
end
$$;

-- Access (as in the access file) -----------------------------------------------------------------
do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'public.google_ai_cooldown_for_cause(text, text, timestamptz, text, text, text)',
    'public.google_ai_key_check_clears_limit_zero()',
    'public.google_ai_model_cooldowns(text, timestamptz)',
    'public.google_ai_quota_report_at(timestamptz, text, text)',
    'public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean, text, text, text, integer, integer)',
    'public.google_ai_cooldown_cause(text)'
  ]::regprocedure[] loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
  end loop;
end
$$;
revoke all on function
  public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean, text, text, text, integer, integer),
  public.google_ai_cooldown_cause(text)
from eve_gateway;
grant execute on function
  public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean, text, text, text, integer, integer),
  public.google_ai_cooldown_cause(text)
to service_role, eve_gateway;

-- Service tiers per (model, priority class) -------------------------------------------------------
-- The operator's rows: which tier llm-invoke asks Google for (the request body's serviceTier) when a
-- request of that class is served by that model. No row: standard (nothing is sent). flex is half
-- price and may be shed under load; priority (Google's Tier 2/3) may be served at standard when over
-- its own limit. standard_on_shed: a flex call Google sheds (its 503) is retried like any 503, and at
-- standard when this is true (else at flex again). Not seeded: the owner's projects are on the free
-- tier, where flex saves nothing and only adds shed calls (docs/google-429s.md, "Service tiers").
-- The OpenAI surface's `service_tier` may ask for any tier up to its class's (flex < standard < priority).
create table if not exists public.google_ai_service_tiers (
  model            text not null,
  priority_class   text not null,
  service_tier     text not null constraint google_ai_service_tiers_tier_check
                     check (service_tier in ('flex', 'standard', 'priority')),
  standard_on_shed boolean not null default false,
  notes            text,
  updated_at       timestamptz not null default now(),
  primary key (model, priority_class)
);
comment on table public.google_ai_service_tiers is
  'The service tier llm-invoke asks Google for, per canonical model id and priority class; no row: standard.';

create or replace function public.google_ai_service_tier_list()
returns jsonb
language sql stable security definer set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'model', t.model, 'priority_class', t.priority_class, 'service_tier', t.service_tier,
           'standard_on_shed', t.standard_on_shed) order by t.model, t.priority_class), '[]')
  from public.google_ai_service_tiers t
$$;
comment on function public.google_ai_service_tier_list() is
  'The service tier rows, for llm-invoke (cached per worker like the model rows).';

alter table public.google_ai_service_tiers enable row level security;
revoke all on table public.google_ai_service_tiers from anon, authenticated, service_role;
grant select, insert, update, delete on public.google_ai_service_tiers to service_role;
revoke all on function public.google_ai_service_tier_list() from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_service_tier_list() to service_role, eve_gateway;
