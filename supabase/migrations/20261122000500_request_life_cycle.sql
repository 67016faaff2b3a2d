-- The life cycle of a request after its reservation, and before it: the credential check that
-- refuses a token which can never be admitted, the cooldown of a quota group, finalize (the outcome
-- of the call to Google), release (the call never happened) and the end of an idempotent request.
-- Each is one call, one round trip, one transaction; the lock order is the reservation's (attempt
-- row -> token row -> client row -> counter row).

-- Credential checks ------------------------------------------------------------------------------
-- Credentials that can never be admitted cost almost nothing and leave no per-request row.
--
-- llm-invoke checks a scoped token by its hash before it reads the request body
-- (google_ai_check_token, one indexed look-up), and keeps the answer in a short per-worker cache. A
-- token that is unknown, revoked or expired is refused there: no attempt row is written for it, only
-- one aggregate row per minute, reason and token (all unknown tokens share one row per minute, so a
-- caller inventing tokens cannot grow the table by more than a row a minute). The reservation still
-- validates the token in its own transaction, so a revocation takes effect at once there.

create table if not exists public.google_ai_credential_refusals (
  minute      timestamptz not null,
  reason      text not null check (reason in ('token_invalid', 'token_expired', 'token_revoked')),
  -- The refused token's row; null for unknown tokens (nothing to name, and never the token itself).
  token_id    uuid references public.google_ai_tokens (id) on delete cascade,
  client_id   uuid references public.google_ai_clients (id) on delete cascade,
  refusals    integer not null default 0 check (refusals >= 0),
  first_seen  timestamptz not null default now(),
  last_seen   timestamptz not null default now()
);
create unique index if not exists google_ai_credential_refusals_key
  on public.google_ai_credential_refusals (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid));

comment on table public.google_ai_credential_refusals is
  'Requests refused before any attempt row because their token can never be admitted: how many, per minute, reason and token (unknown tokens together). Trimmed after a day.';

-- Checks a token by its SHA-256 hex. Returns {status: 'ok', token_id, client, models, expires_at,
-- max_output_tokens} or
-- {status: <refusal>} after counting p_refusals refused requests (the one being checked plus those the
-- caller's cache refused since its last check) in the minute's aggregate row.
create or replace function public.google_ai_check_token(p_token_hash text, p_refusals integer default 1)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_reason text;
  v_minute timestamptz := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
  if not found then
    v_reason := 'token_invalid';
  else
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    if v_token.revoked_at is not null or v_client.revoked_at is not null then
      v_reason := 'token_revoked';
    elsif v_token.expires_at <= pg_catalog.clock_timestamp() then
      v_reason := 'token_expired';
    end if;
  end if;

  if v_reason is null then
    return jsonb_build_object('status', 'ok', 'token_id', v_token.id, 'client', v_client.name,
      'models', v_token.models, 'expires_at', v_token.expires_at, 'max_output_tokens', v_client.max_output_tokens);
  end if;

  insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
  values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
  on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
    refusals = r.refusals + excluded.refusals,
    last_seen = pg_catalog.clock_timestamp();
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$$;

-- Cooldowns --------------------------------------------------------------------------------------
-- Cooldown: a quota group rests for one model until p_until (never shortened by a later call).
create or replace function public.google_ai_cooldown(
  p_quota_group text, p_model text, p_until timestamptz, p_reason text default null, p_quota_id text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  v_until timestamptz;
begin
  if p_quota_group is null or p_until is null then
    raise exception 'p_quota_group and p_until are required' using errcode = '22023';
  end if;
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id)
  values (p_quota_group, v_model, p_until, left(p_reason, 500), left(p_quota_id, 200))
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = excluded.reason,
    quota_id = excluded.quota_id,
    updated_at = now()
  returning c.cooldown_until into v_until;
  return jsonb_build_object('ok', true, 'quota_group', p_quota_group, 'model', v_model, 'cooldown_until', v_until);
end
$$;

-- Outcomes ---------------------------------------------------------------------------------------
-- Finalize: record the outcome of the call to Google and reconcile the booked window's tokens by
-- (actual input tokens - estimate), clamped at 0. Only the minute the reservation was booked in is
-- adjusted: once the row has rolled over, that window is history. A success also lands in
-- token_usage, and its response (when given: the caller sent its own request_id) is kept for replay.
-- Optionally cools the group down (Google's 429) in the same round trip.
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
  p_key_rejected boolean default null)
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

  update public.google_ai_attempts a set
    status = p_outcome,
    finished_at = pg_catalog.clock_timestamp(),
    input_tokens = p_input_tokens,
    output_tokens = p_output_tokens,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    quota_id = left(p_quota_id, 200),
    error_message = left(p_error_message, 1000),
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return jsonb_build_object('ok', false, 'error', 'not_open',
      'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
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
  if v_until is not null then
    perform public.google_ai_cooldown(v_att.quota_group, v_att.model, v_until,
      coalesce(p_error_code, p_outcome), p_quota_id);
  end if;

  if p_input_tokens is not null and p_input_tokens <> v_att.estimated_tokens then
    perform public.google_ai_adjust_token_budget(v_att, 0, p_input_tokens - v_att.estimated_tokens);
    update public.google_ai_usage_counters c
    set tpm_used = greatest(0, c.tpm_used + (p_input_tokens - v_att.estimated_tokens))
    where c.quota_group = v_att.quota_group and c.model = v_att.model
      and c.minute_bucket = v_att.minute_bucket;
  end if;

  return jsonb_build_object('ok', true, 'status', p_outcome, 'cooldown_until', v_until);
end
$$;

-- Release: the call never reached Google, so the booking is given back: the request and its
-- estimated tokens in the booked minute (if still current) and the request in the booked day.
create or replace function public.google_ai_release(p_reservation_id uuid, p_reason text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
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
    return jsonb_build_object('ok', false, 'error', 'not_open',
      'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
  end if;

  perform public.google_ai_adjust_token_budget(v_att, case when v_att.attempt = 1 then -1 else 0 end,
    -v_att.estimated_tokens);
  update public.google_ai_usage_counters c set
    rpm_used = case when c.minute_bucket = v_att.minute_bucket then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = v_att.minute_bucket
                    then greatest(0, c.tpm_used - v_att.estimated_tokens) else c.tpm_used end,
    rpd_used = case when c.day_bucket = v_att.day_bucket then greatest(0, c.rpd_used - 1) else c.rpd_used end
  where c.quota_group = v_att.quota_group and c.model = v_att.model
    and (c.minute_bucket = v_att.minute_bucket or c.day_bucket = v_att.day_bucket);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$$;

-- The end of an idempotent request that failed: its in-flight marker goes, so the caller may repeat
-- the request id at once (a success replaces the marker with the answer in finalize instead).
-- Any reservation of the request identifies it.
create or replace function public.google_ai_end_request(p_reservation_id uuid)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_deleted integer;
begin
  delete from public.google_ai_responses r
  using public.google_ai_attempts a
  where a.reservation_id = p_reservation_id
    and r.caller = a.caller and r.request_id = a.request_id and r.status = 'in_progress';
  get diagnostics v_deleted = row_count;
  return jsonb_build_object('ok', true, 'ended', v_deleted > 0);
end
$$;
