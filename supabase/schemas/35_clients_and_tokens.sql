-- Kaggle clients and their scoped tokens: creation, minting, revocation, the credential check (with
-- refusals counted per minute) and token budgets.
set check_function_bodies = off;

CREATE TABLE public.google_ai_clients (
    id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    secret_hash text NOT NULL UNIQUE,
    models text[] NOT NULL,
    max_token_ttl interval DEFAULT '12:00:00'::interval NOT NULL,
    token_max_requests integer,
    token_max_tokens integer,
    daily_max_requests integer,
    daily_max_tokens integer,
    mint_per_hour integer DEFAULT 60 NOT NULL,
    day_bucket date,
    requests_today integer DEFAULT 0 NOT NULL,
    tokens_today integer DEFAULT 0 NOT NULL,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    revoked_reason text,
    max_output_tokens integer DEFAULT 8192 NOT NULL CHECK (max_output_tokens BETWEEN 1 AND 1000000),
    priority_class text DEFAULT 'batch' NOT NULL REFERENCES public.google_ai_priority_classes(name),
    daily_max_usd numeric,
    month_bucket date,
    monthly_max_usd numeric,
    spent_month_usd numeric DEFAULT 0 NOT NULL,
    spent_today_usd numeric DEFAULT 0 NOT NULL,
    token_max_usd numeric,
    CONSTRAINT google_ai_clients_ttl_check CHECK (max_token_ttl > '00:00:00' AND max_token_ttl <= '12:00:00')
);

COMMENT ON COLUMN public.google_ai_clients.secret_hash IS
    'SHA-256 hex of the client secret; the secret itself is shown once at creation.';

COMMENT ON COLUMN public.google_ai_clients.max_output_tokens IS
    'Most output tokens one request of this client may ask for; the gateway sends it when a request names none.';

COMMENT ON COLUMN public.google_ai_clients.daily_max_usd IS
    'The most the client''s calls may cost in US dollars per Pacific day (null: no limit): a reservation books its '
    'worst case (google_ai_worst_call_cost) in spent_today_usd and spent_month_usd, finalize settles it on the '
    'call''s cost (cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';

COMMENT ON COLUMN public.google_ai_clients.monthly_max_usd IS
    'As daily_max_usd, per Pacific calendar month (month_bucket, spent_month_usd); refused until the month''s end.';

COMMENT ON COLUMN public.google_ai_clients.token_max_usd IS
    'The budget in money each token minted from now on gets (google_ai_tokens.max_usd; null: none).';

COMMENT ON COLUMN public.google_ai_clients.priority_class IS
    'The highest class this client''s requests are queued in (a request may ask for a lower one).';

CREATE TABLE public.google_ai_tokens (
    id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
    client_id uuid NOT NULL REFERENCES public.google_ai_clients(id),
    token_hash text NOT NULL UNIQUE,
    models text[] NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    max_requests integer,
    max_tokens integer,
    requests_used integer DEFAULT 0 NOT NULL,
    tokens_used integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    max_usd numeric,
    spent_usd numeric DEFAULT 0 NOT NULL
);

COMMENT ON COLUMN public.google_ai_tokens.max_usd IS
    'The most the token''s calls may cost in US dollars over its life (null: no limit), booked and settled as its '
    'client''s are (spent_usd); refused with limit token_budget, cause spend_budget, never reopening.';

COMMENT ON COLUMN public.google_ai_tokens.token_hash IS
    'SHA-256 hex of the token; the token itself never reaches the database.';

-- Who a request books for, passed whole down the booking (google_ai_admit_at to google_ai_booking_rules)
-- beside the model's row and the class's: a field added here, set once in google_ai_admit_at, reaches
-- every rule without a signature changed on the way.
CREATE TYPE public.google_ai_caller AS (
    name text,
    client_id uuid,
    token_id uuid
);

COMMENT ON TYPE public.google_ai_caller IS
    'Who a request books for: the caller''s label (a service caller''s, or client:<name> for a token''s client), '
    'the client it acts for and the token it came with (null for a service caller).';

-- One request as the entry received it, passed whole from the entry (google_ai_reserve_models_at)
-- through fall-back, admit, a token's verdict, refuse, record and queue: a field added here reaches
-- every step without a signature changed on the way. model and output_tokens are the model being tried
-- (as asked) and the answer it is sent with (google_ai_fall_back_at sets both for each model of a
-- chain); caller, client_id and token_id are a token's client once its verdict has passed; requests: how
-- many requests it is at its provider (1, or an embedding batch's inputs), booked and given back at once.
-- reply_by, hold_until, holder: the holder's deadlines and id (55_claims.sql; llm-invoke's store/holder.ts),
-- which every attempt row and queue ticket of the request carries (none without a reply_by).
CREATE TYPE public.google_ai_request AS (
    model text,
    caller text,
    client_id uuid,
    token_id uuid,
    token_hash text,
    request_id text,
    attempt integer,
    estimated_tokens integer,
    output_tokens integer,
    wait_ms integer,
    wait_left_ms integer,
    metadata jsonb,
    priority text,
    exclude_key_ids uuid[],
    queue_ticket uuid,
    idempotent boolean,
    requests integer,
    reply_by timestamp with time zone,
    hold_until timestamp with time zone,
    holder uuid
);

COMMENT ON TYPE public.google_ai_request IS
    'One reservation request as its entry received it, handed whole through fall-back, admit, refuse, '
    'record and queue (google_ai_reserve_models_at builds it).';

-- One model's verdict on a request, as each step of the admission answers it to the one above it (a
-- token's verdict, the stored answer of a named request, refuse, record, admit, to fall-back and the
-- entry): admitted (ok) or not, the limit and its cause, when to ask again, the model, the successor of
-- a model past its shutdown date, the reservation or queue ticket it holds, and the answer built for
-- the caller (JSON by nature: what the entry answers), which no step reads back.
CREATE TYPE public.google_ai_admission_verdict AS (
    ok boolean,
    limit_hit text,
    cause text,
    retry_after_ms bigint,
    retry_at timestamp with time zone,
    model text,
    successor text,
    reservation_id uuid,
    ticket uuid,
    answer jsonb
);

COMMENT ON TYPE public.google_ai_admission_verdict IS
    'One model''s verdict on a request (admitted, queued or refused: limit, cause, times, model, successor, '
    'reservation or ticket) and the answer built for the caller, handed up from step to step of the admission.';

CREATE TABLE public.google_ai_credential_refusals (
    minute timestamp with time zone NOT NULL,
    reason text NOT NULL,
    token_id uuid REFERENCES public.google_ai_tokens(id) ON DELETE CASCADE,
    client_id uuid REFERENCES public.google_ai_clients(id) ON DELETE CASCADE,
    refusals integer DEFAULT 0 NOT NULL CHECK (refusals >= 0),
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_credential_refusals_reason_check
      CHECK (reason IN ('token_invalid', 'token_expired', 'token_revoked'))
);

COMMENT ON TABLE public.google_ai_credential_refusals IS
    'Requests refused before any attempt row because their token can never be admitted: how many, per minute, reason '
    'and token (unknown tokens together). Trimmed after a day.';

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_credential_refusals_key ON public.google_ai_credential_refusals USING btree
    (minute, reason, COALESCE(token_id, '00000000-0000-0000-0000-000000000000'::uuid));

CREATE INDEX IF NOT EXISTS google_ai_tokens_client_created_idx ON
    public.google_ai_tokens USING btree (client_id, created_at);

CREATE INDEX IF NOT EXISTS google_ai_tokens_expires_idx ON public.google_ai_tokens USING btree (expires_at);

-- A token's budget (google_ai_tokens, for its life), as every budget reads (google_ai_budget); a client's
-- is its day's (google_ai_budget_of in 32_budgets.sql).
CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row public.google_ai_tokens) RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
  return row('life', p_row.max_requests, p_row.max_tokens, p_row.max_usd, null, p_row.requests_used,
    p_row.tokens_used, p_row.spent_usd, null, null, null)::public.google_ai_budget;
end
$$;

-- A call counted in its budgets (google_ai_budget_counted) when it is booked (p_book, under the rows'
-- locks its verdict took: google_ai_token_verdict_at, google_ai_caller_budget_at) and again when its
-- attempt ends (finalize settles it on what it used and cost, release gives it back), by p_requests,
-- p_tokens and p_usd, in the budgets of who the call is for (p_caller): a token's (token_id: for its
-- life, and its client's day and month) or a service caller's (its name, when it acts for no client:
-- google_ai_caller_budgets). The day is p_at's Pacific day; a service caller's, once its attempt has
-- one, the day its booking counted in (p_day: the Pacific day of the attempt's admission; its day_bucket
-- is its provider's day, which may differ). A booking is the token's last use.
CREATE OR REPLACE FUNCTION public.google_ai_count_budgets(p_caller public.google_ai_caller,
    p_at timestamp with time zone, p_day date, p_requests integer, p_tokens integer, p_usd numeric,
    p_book boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_token_id uuid := p_caller.token_id;
  v_client_id uuid := p_caller.client_id;
  v_day date := coalesce(case when v_client_id is null then p_day end, public.google_ai_pacific_day(p_at));
  v_month date := pg_catalog.date_trunc('month', v_day)::date;
  v_usd numeric := coalesce(p_usd, 0);
begin
  if p_requests = 0 and p_tokens = 0 and v_usd = 0 and not p_book then
    return;
  end if;
  if v_token_id is not null then
    update public.google_ai_tokens t set (requests_used, tokens_used, spent_usd) = (select n.requests, n.tokens,
        n.spent_usd from public.google_ai_budget_counted(public.google_ai_budget_of(t), v_day, p_requests, p_tokens,
        v_usd, p_book) n), last_used_at = case when p_book then p_at else t.last_used_at end
    where t.id = v_token_id;
    update public.google_ai_clients c set (day_bucket, requests_today, tokens_today, spent_today_usd, month_bucket,
        spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket, n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(c), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where c.id = v_client_id and (p_book or c.day_bucket = v_day or c.month_bucket = v_month);
  elsif v_client_id is null then
    update public.google_ai_caller_budgets b set (day_bucket, requests_today, tokens_today, spent_today_usd,
        month_bucket, spent_month_usd) = (select n.bucket, n.requests, n.tokens, n.spent_usd, n.month_bucket,
        n.spent_month_usd
      from public.google_ai_budget_counted(public.google_ai_budget_of(b), v_day, p_requests, p_tokens, v_usd, p_book) n)
    where b.caller = p_caller.name and (p_book or b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
end
$$;

-- Why a token (p_token, with its client p_client, as read) can never be admitted at p_at: unknown
-- (token_invalid), revoked with its client or alone (token_revoked), expired (token_expired); null: it can.
CREATE OR REPLACE FUNCTION public.google_ai_token_refusal(p_token public.google_ai_tokens,
    p_client public.google_ai_clients, p_at timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_token.id is null then 'token_invalid'
              when p_token.revoked_at is not null or p_client.revoked_at is not null then 'token_revoked'
              when p_token.expires_at <= p_at then 'token_expired' end
$$;

-- Checks a token by its SHA-256 hex. Returns {status: 'ok', token_id, client, models, expires_at,
-- max_output_tokens} or
-- {status: <refusal>} after counting p_refusals refused requests (the one being checked plus those the
-- caller's cache refused since its last check) in the minute's aggregate row.
CREATE OR REPLACE FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer DEFAULT 1) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_reason text;
  v_minute timestamptz := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
  v_reason := public.google_ai_token_refusal(v_token, v_client, pg_catalog.clock_timestamp());

  if v_reason is null then
    return jsonb_build_object('status', 'ok', 'token_id', v_token.id, 'client', v_client.name,
      'models', public.google_ai_token_models(v_token, v_client), 'expires_at', v_token.expires_at,
      'max_output_tokens', v_client.max_output_tokens);
  end if;

  if p_refusals is distinct from 0 then
    insert into public.google_ai_credential_refusals as r (minute, reason, token_id, client_id, refusals)
    values (v_minute, v_reason, v_token.id, v_token.client_id, greatest(1, coalesce(p_refusals, 1)))
    on conflict (minute, reason, coalesce(token_id, '00000000-0000-0000-0000-000000000000'::uuid)) do update set
      refusals = r.refusals + excluded.refusals,
      last_seen = pg_catalog.clock_timestamp();
  end if;
  -- Self-trimming, a bounded batch at a time (the unique index leads with minute): rows older than
  -- a day go, so the table holds at most a day of minutes whoever calls.
  delete from public.google_ai_credential_refusals r
  where r.ctid in (select r2.ctid from public.google_ai_credential_refusals r2
                   where r2.minute < v_minute - interval '1 day' limit 100);
  return jsonb_build_object('status', v_reason);
end
$$;

-- Creates a client and returns its secret: the only time the secret is ever shown.
CREATE OR REPLACE FUNCTION public.google_ai_create_client(p_name text, p_models text[],
    p_max_token_ttl interval DEFAULT '12:00:00'::interval, p_token_max_requests integer DEFAULT NULL::integer,
    p_token_max_tokens integer DEFAULT NULL::integer, p_daily_max_requests integer DEFAULT NULL::integer,
    p_daily_max_tokens integer DEFAULT NULL::integer, p_mint_per_hour integer DEFAULT 60,
    p_notes text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
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
  values (p_name, encode(pg_catalog.sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_models, p_max_token_ttl,
    p_token_max_requests, p_token_max_tokens, p_daily_max_requests, p_daily_max_tokens, p_mint_per_hour, p_notes)
  returning id into v_id;
  return jsonb_build_object('client_id', v_id, 'name', p_name, 'models', v_models, 'secret', v_secret);
end
$_$;

-- Trades a client secret (its SHA-256) for a token (its SHA-256, minted by the caller). The request
-- may narrow the client's scope, never widen it. Minting is rate limited per client (mint_per_hour,
-- sliding hour) so a leaked secret cannot flood the table.
CREATE OR REPLACE FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text,
    p_models text[] DEFAULT NULL::text[], p_ttl_seconds integer DEFAULT NULL::integer,
    p_max_requests integer DEFAULT NULL::integer, p_max_tokens integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
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
  v_left record;
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
  v_models := case when p_models is null then v_client.models else (
    select array_agg(distinct coalesce((public.google_ai_resolve_model(m)).model, m)) from unnest(p_models) m) end;
  if v_models is null or cardinality(v_models) = 0 or not (v_models <@ v_client.models)
     or (p_ttl_seconds is not null and (p_ttl_seconds < 60 or v_ttl > v_client.max_token_ttl))
     or (p_max_requests is not null and (p_max_requests < 1
       or p_max_requests > coalesce(v_client.token_max_requests, p_max_requests)))
     or (p_max_tokens is not null and (p_max_tokens < 1
       or p_max_tokens > coalesce(v_client.token_max_tokens, p_max_tokens))) then
    return jsonb_build_object('ok', false, 'error', 'scope_exceeded', 'allowed', jsonb_build_object(
      'models', v_client.models, 'max_ttl_seconds', extract(epoch from v_client.max_token_ttl)::integer,
      'max_requests', v_client.token_max_requests, 'max_tokens', v_client.token_max_tokens));
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
  v_left := public.google_ai_budget_left(public.google_ai_budget_of(v_client),
    public.google_ai_pacific_day(pg_catalog.clock_timestamp()));
  insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, max_tokens, max_usd)
  values (v_client.id, p_token_hash, v_models, v_expires, v_max_requests, v_max_tokens, v_client.token_max_usd)
  returning id into v_token_id;

  return jsonb_build_object('ok', true, 'token_id', v_token_id, 'client', v_client.name, 'expires_at', v_expires,
    'models', to_jsonb(v_models),
    'budget', jsonb_build_object('max_requests', v_max_requests, 'max_tokens', v_max_tokens,
      -- The budgets in money that apply to the token's calls: its own for its life, its client's left of
      -- the Pacific day and month (null: none).
      'max_usd', v_client.token_max_usd, 'daily_usd_left', v_left.usd, 'monthly_usd_left', v_left.month_usd));
end
$_$;

-- Revoking a client revokes every token it holds.
CREATE OR REPLACE FUNCTION public.google_ai_revoke_client(p_name text, p_reason text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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
  return jsonb_build_object('ok', true, 'client_id', v_client.id,
    'revoked_at', v_client.revoked_at, 'tokens_revoked', v_tokens);
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_revoke_token(p_token_id uuid) RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  with t as (
    update public.google_ai_tokens t set revoked_at = coalesce(t.revoked_at, now())
    where t.id = p_token_id returning t.id
  )
  select jsonb_build_object('ok', exists (select 1 from t))
$$;

-- The class a request runs in, its row: the one it asks for (p_priority), never above its credential's
-- (the client's class, or the top class for a service caller); a name no class has leaves the
-- credential's. The booking takes the row whole, as it takes the model's.
-- (PL/pgSQL, like the limits: a service caller that asks for no class costs one lookup.)
CREATE OR REPLACE FUNCTION public.google_ai_request_class(p_priority text, p_client_id uuid)
    RETURNS public.google_ai_priority_classes
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_class public.google_ai_priority_classes;
begin
  if p_client_id is not null then
    select pc.* into v_class
    from public.google_ai_clients c join public.google_ai_priority_classes pc on pc.name = c.priority_class
    where c.id = p_client_id;
  end if;
  if v_class.rank is null then
    select pc.* into v_class from public.google_ai_priority_classes pc order by pc.rank limit 1;
  end if;
  if p_priority is not null then
    -- (A larger rank is a lower class.)
    select pc.* into v_class from public.google_ai_priority_classes pc
    where pc.rank = greatest(v_class.rank,
      (select a.rank from public.google_ai_priority_classes a where a.name = p_priority));
  end if;
  return v_class;
end
$$;

-- The one writer of a refused attempt row: p_request's (its caller, client and token as the step that
-- refused knows them; requested_model its model as asked), refused on model p_model with limit p_limit,
-- cause p_cause and the time to ask again (p_retry_ms), with the holder's deadlines and id the request
-- carries (the claims' trigger renews the holder's claim: 55_claims.sql).
CREATE OR REPLACE FUNCTION public.google_ai_log_refusal(p_request public.google_ai_request, p_model text,
    p_limit text, p_cause text, p_retry_ms bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata, requests, reply_by,
    hold_until, holder)
  values ('refused', p_request.request_id, p_request.caller, p_request.client_id, p_request.token_id, p_model,
    p_request.model, coalesce(p_request.attempt, 1), p_request.estimated_tokens, p_limit, p_cause, p_retry_ms,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), coalesce(p_request.requests, 1), p_request.reply_by,
    p_request.hold_until, p_request.holder);
end
$$;

-- A scoped token's verdict (google_ai_token_verdict_at). (A named type, not OUT parameters: a function's
-- OUT parameters are read from its catalog row again on every call, and they are variables named like
-- columns: a bare `caller` in a query of the function would be ambiguous with a table's, an error met
-- only when the query runs. The function's own variables are v_ names.)
CREATE TYPE public.google_ai_token_verdict AS (
    refusal public.google_ai_admission_verdict,
    request public.google_ai_request,
    worst numeric
);

-- The models a token may use: its own list (the narrowing it was minted with; a token minted without one
-- holds its client's list as it was then) within its client's list as it is now, so a client's list
-- narrowed reaches the tokens already out (one widened does not: a token keeps what it was minted for).
-- In the token's order; an empty list is no model (never "every model"). (PL/pgSQL: a SQL function
-- holding a query is not inlined, and would be planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_token_models(p_token public.google_ai_tokens,
    p_client public.google_ai_clients) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
  return array(select t.m from unnest(p_token.models) with ordinality t(m, i)
               where t.m = any (p_client.models) order by t.i);
end
$$;

-- A scoped token's verdict on one request, under the token's and its client's row locks (held until
-- the reservation commits, so two requests of one token are counted one after the other): refusal is
-- null when the token may send it, else the refusal's verdict, its refused attempt row written
-- (google_ai_log_refusal), naming the budget's period (life: the token's; day or month: its client's:
-- google_ai_budget_verdict). request: p_request as its token's client's (its caller, client_id and
-- token_id), for the admission to go on with. worst: what the call may cost where the token or its client has
-- a budget in money (google_ai_worst_call_cost: output_tokens, the answer the request is sent with, at
-- the tiers of the class it runs in), which the admission books. The model must be one of the token's
-- (google_ai_token_models: its list within its client's).
CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone,
    p_request public.google_ai_request) RETURNS public.google_ai_token_verdict
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_worst numeric;
  v_model text;
  v_limit text;
  v_cause text;
  v_period text;       -- whose period refused: the token's life, the client's day or month
  v_retry_at timestamptz;
  v_retry_ms bigint;
  v_count_request integer := public.google_ai_request_counts(p_request.attempt) * coalesce(p_request.requests, 1);
begin
  select * into v_token from public.google_ai_tokens t where t.token_hash = p_request.token_hash for update;
  if not found then
    return row(row(false, 'token_invalid', 'token_invalid', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'token_invalid', 'cause', 'token_invalid', 'retry_after_ms', null)
      )::public.google_ai_admission_verdict, null, null)::public.google_ai_token_verdict;
  end if;
  select * into v_client from public.google_ai_clients c where c.id = v_token.client_id for update;
  -- The token's client is the caller from here on.
  p_request.caller := 'client:' || v_client.name;
  p_request.client_id := v_client.id;
  p_request.token_id := v_token.id;
  v_limit := public.google_ai_token_refusal(v_token, v_client, p_now);
  v_model := coalesce((public.google_ai_resolve_model(p_request.model)).model, p_request.model);
  if num_nonnulls(v_client.daily_max_usd, v_client.monthly_max_usd, v_token.max_usd) > 0 then
    v_worst := public.google_ai_worst_call_cost(v_model, p_request.estimated_tokens, p_request.output_tokens,
      (public.google_ai_request_class(p_request.priority, v_client.id)).name);
  end if;

  -- (google_ai_token_models' rule, as two tests: a call of it would cost more than the check.)
  if v_limit is null and not (v_model = any (v_token.models) and v_model = any (v_client.models)) then
    v_limit := 'model_not_allowed';
  elsif v_limit is null then
    -- The token's budget first, then its client's.
    select b.lim, v.cause, v.period, v.reopens_at into v_limit, v_cause, v_period, v_retry_at
    from (values (1, 'token_budget', public.google_ai_budget_of(v_token)),
                 (2, 'client_budget', public.google_ai_budget_of(v_client))) b(n, lim, budget)
    cross join lateral public.google_ai_budget_verdict(b.budget, p_now, v_count_request, p_request.estimated_tokens,
      v_worst) v
    where v.cause is not null
    order by b.n limit 1;
  end if;
  if v_limit is null then
    return row(null, p_request, v_worst)::public.google_ai_token_verdict;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_retry_at, p_now);
  v_cause := coalesce(v_cause, public.google_ai_refusal_cause(v_limit));

  perform public.google_ai_log_refusal(p_request, v_model, v_limit, v_cause, v_retry_ms);
  return row(row(false, v_limit, v_cause, v_retry_ms, v_retry_at, null, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', v_cause,
      'retry_after_ms', v_retry_ms, 'retry_at', v_retry_at, 'client_id', v_client.id, 'token_id', v_token.id)
    || case when v_period is not null then jsonb_build_object('period', v_period) else '{}' end
    )::public.google_ai_admission_verdict, p_request, v_worst)::public.google_ai_token_verdict;
end
$$;
