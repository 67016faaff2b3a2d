-- Kaggle clients and scoped tokens.
--
-- A client (e.g. festival-parser-kaggle) holds one long-lived secret; it trades it at
-- issue-kaggle-token for a short-lived token limited to some models, a lifetime and a budget, and
-- calls llm-invoke with the token. Google keys never leave Supabase.
--
-- Secrets are random (256 bits), prefixed so secret scanners can recognise them
-- (client secrets `evegw_cs_`, tokens `evegw_tok_`), and stored only as SHA-256 hex digests: a fast
-- hash is enough for high-entropy secrets. Tokens are minted by the Edge Function, which sends only
-- the digest here, so a token's plaintext never reaches the database.
--
-- Lock order, extending the reservation RPC's: token row -> client row -> counter row -> (attempt
-- row inserted). finalize/release: attempt row -> token row -> client row -> counter row.
-- The reservation with a token is in the reservation file; access (RLS, grants) in the last file.

create table if not exists public.google_ai_clients (
  id                   uuid primary key default gen_random_uuid(),
  name                 text not null unique,
  secret_hash          text not null unique,
  models               text[] not null,
  max_token_ttl        interval not null default interval '12 hours',
  token_max_requests   integer,
  token_max_tokens     integer,
  daily_max_requests   integer,
  daily_max_tokens     integer,
  mint_per_hour        integer not null default 60,
  day_bucket           date,
  requests_today       integer not null default 0,
  tokens_today         integer not null default 0,
  notes                text,
  created_at           timestamptz not null default now(),
  revoked_at           timestamptz,
  revoked_reason       text,
  -- A client's scope caps output tokens too: budgets count input tokens (as Google's TPM does), so
  -- without a cap one request could ask for a million output tokens. Requests above it are refused,
  -- requests without maxOutputTokens are sent with it.
  max_output_tokens    integer not null default 8192,
  constraint google_ai_clients_max_output_tokens_check check (max_output_tokens between 1 and 1000000),
  constraint google_ai_clients_ttl_check check (max_token_ttl > interval '0' and max_token_ttl <= interval '12 hours'),
  constraint google_ai_clients_name_check check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$')
);

create table if not exists public.google_ai_tokens (
  id              uuid primary key default gen_random_uuid(),
  client_id       uuid not null references public.google_ai_clients (id),
  token_hash      text not null unique,
  models          text[] not null,
  expires_at      timestamptz not null,
  max_requests    integer,
  max_tokens      integer,
  requests_used   integer not null default 0,
  tokens_used     integer not null default 0,
  created_at      timestamptz not null default now(),
  last_used_at    timestamptz,
  revoked_at      timestamptz
);
create index if not exists google_ai_tokens_client_created_idx on public.google_ai_tokens (client_id, created_at);
create index if not exists google_ai_tokens_expires_idx on public.google_ai_tokens (expires_at);

comment on column public.google_ai_clients.secret_hash is 'SHA-256 hex of the client secret; the secret itself is shown once at creation.';
comment on column public.google_ai_tokens.token_hash is 'SHA-256 hex of the token; the token itself never reaches the database.';
comment on column public.google_ai_clients.max_output_tokens is
  'Most output tokens one request of this client may ask for; the gateway sends it when a request names none.';

-- Creating, listing, revoking clients ------------------------------------------------------------

create or replace function public.google_ai_sha256_hex(p_text text)
returns text language sql immutable strict parallel safe set search_path = ''
as $$ select encode(pg_catalog.sha256(convert_to(p_text, 'UTF8')), 'hex') $$;

-- Creates a client and returns its secret: the only time the secret is ever shown.
create or replace function public.google_ai_create_client(
  p_name text,
  p_models text[],
  p_max_token_ttl interval default interval '12 hours',
  p_token_max_requests integer default null,
  p_token_max_tokens integer default null,
  p_daily_max_requests integer default null,
  p_daily_max_tokens integer default null,
  p_mint_per_hour integer default 60,
  p_notes text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_secret text;
  v_models text[];
  v_unknown text[];
  v_id uuid;
begin
  if p_name is null or p_name !~ '^[a-z0-9][a-z0-9._-]{0,62}$' then
    raise exception 'client name must be 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit'
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
  values (p_name, public.google_ai_sha256_hex(v_secret), v_models, p_max_token_ttl, p_token_max_requests, p_token_max_tokens,
    p_daily_max_requests, p_daily_max_tokens, p_mint_per_hour, p_notes)
  returning id into v_id;
  return jsonb_build_object('client_id', v_id, 'name', p_name, 'models', v_models, 'secret', v_secret);
end
$$;

-- Revoking a client revokes every token it holds.
create or replace function public.google_ai_revoke_client(p_name text, p_reason text default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
declare
  v_client public.google_ai_clients;
  v_tokens integer;
begin
  -- Tokens before their client: the lock order every reservation uses (token -> client).
  perform 1 from public.google_ai_tokens t
  where t.client_id = (select c.id from public.google_ai_clients c where c.name = p_name)
  order by t.id
  for update;
  update public.google_ai_clients c
  set revoked_at = coalesce(c.revoked_at, now()), revoked_reason = coalesce(p_reason, c.revoked_reason)
  where c.name = p_name
  returning * into v_client;
  if not found then
    return jsonb_build_object('ok', false, 'error', 'unknown_client');
  end if;
  update public.google_ai_tokens t set revoked_at = now()
  where t.client_id = v_client.id and t.revoked_at is null and t.expires_at > now();
  get diagnostics v_tokens = row_count;
  return jsonb_build_object('ok', true, 'client_id', v_client.id, 'revoked_at', v_client.revoked_at, 'tokens_revoked', v_tokens);
end
$$;

create or replace function public.google_ai_revoke_token(p_token_id uuid)
returns jsonb
language sql security definer set search_path = ''
as $$
  with t as (
    update public.google_ai_tokens t set revoked_at = coalesce(t.revoked_at, now())
    where t.id = p_token_id returning t.id
  )
  select jsonb_build_object('ok', exists (select 1 from t))
$$;

-- Minting ----------------------------------------------------------------------------------------

-- Trades a client secret (its SHA-256) for a token (its SHA-256, minted by the caller). The request
-- may narrow the client's scope, never widen it. Minting is rate limited per client (mint_per_hour,
-- sliding hour) so a leaked secret cannot flood the table.
create or replace function public.google_ai_mint_token(
  p_secret_hash text,
  p_token_hash text,
  p_models text[] default null,
  p_ttl_seconds integer default null,
  p_max_requests integer default null,
  p_max_tokens integer default null)
returns jsonb
language plpgsql security definer set search_path = ''
as $$
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
    select array_agg(distinct coalesce((public.google_ai_resolve_model(m)).model, m)) into v_models from unnest(p_models) m;
  end if;
  if v_models is null or cardinality(v_models) = 0 or not (v_models <@ v_client.models)
     or (p_ttl_seconds is not null and (p_ttl_seconds < 60 or v_ttl > v_client.max_token_ttl))
     or (p_max_requests is not null and (p_max_requests < 1 or p_max_requests > coalesce(v_client.token_max_requests, p_max_requests)))
     or (p_max_tokens is not null and (p_max_tokens < 1 or p_max_tokens > coalesce(v_client.token_max_tokens, p_max_tokens))) then
    return jsonb_build_object('ok', false, 'error', 'scope_exceeded', 'allowed', v_allowed);
  end if;
  v_max_requests := coalesce(p_max_requests, v_client.token_max_requests);
  v_max_tokens := coalesce(p_max_tokens, v_client.token_max_tokens);

  select count(*), min(t.created_at) into v_recent, v_oldest
  from public.google_ai_tokens t
  where t.client_id = v_client.id and t.created_at > now() - interval '1 hour';
  if v_recent >= v_client.mint_per_hour then
    return jsonb_build_object('ok', false, 'error', 'mint_rate_limited',
      'retry_after_ms', greatest(0, ceil(extract(epoch from (v_oldest + interval '1 hour' - now())) * 1000))::bigint);
  end if;

  v_expires := now() + v_ttl;
  insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, max_tokens)
  values (v_client.id, p_token_hash, v_models, v_expires, v_max_requests, v_max_tokens)
  returning id into v_token_id;

  return jsonb_build_object('ok', true, 'token_id', v_token_id, 'client', v_client.name, 'expires_at', v_expires,
    'models', to_jsonb(v_models), 'budget', jsonb_build_object('max_requests', v_max_requests, 'max_tokens', v_max_tokens));
end
$$;

-- Token budgets follow the reservation's life cycle: finalize and release (request life cycle) call
-- this with an attempt's request and token deltas. finalize reconciles the token's (and the client's
-- same-day) tokens by actual - estimate; release gives back what the reservation booked.
create or replace function public.google_ai_adjust_token_budget(
  p_attempt public.google_ai_attempts, p_requests integer, p_tokens integer)
returns void
language plpgsql set search_path = ''
as $$
begin
  if p_attempt.token_id is null or (p_requests = 0 and p_tokens = 0) then
    return;
  end if;
  update public.google_ai_tokens t set
    requests_used = greatest(0, t.requests_used + p_requests),
    tokens_used = greatest(0, t.tokens_used + p_tokens)
  where t.id = p_attempt.token_id;
  update public.google_ai_clients c set
    requests_today = greatest(0, c.requests_today + p_requests),
    tokens_today = greatest(0, c.tokens_today + p_tokens)
  where c.id = p_attempt.client_id and c.day_bucket = public.google_ai_pacific_day(p_attempt.created_at);
end
$$;
