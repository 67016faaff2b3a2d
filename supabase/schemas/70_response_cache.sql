-- The response cache: whole answers kept by what the provider would be sent (llm-invoke/cache/key.ts
-- hashes it), per scope (a client's tokens share their client's; the service key is one scope unless
-- the settings split it by caller label), served again without calling a provider or booking anything
-- of its limits. The same row is the single flight: a request that finds no answer claims the row (its
-- holder and until when), and an identical one in flight meanwhile waits for that answer instead of
-- calling (llm-invoke/cache/response-cache.ts polls google_ai_cache_lookup). Housekeeping expires entries by
-- their lifetime and by each scope's size limit; every hit leaves an audit row of what it saved.
-- Not the providers' prompt caching (cached_input_tokens and cache writes): that is another thing.
set check_function_bodies = off;

CREATE TABLE public.google_ai_response_cache_settings (
    id boolean DEFAULT true PRIMARY KEY,
    max_bytes_per_scope bigint DEFAULT 67108864 NOT NULL,
    max_ttl interval DEFAULT '7 days'::interval NOT NULL,
    default_ttl interval DEFAULT '01:00:00'::interval NOT NULL,
    split_service_by_label boolean DEFAULT false NOT NULL,
    hits_retention interval DEFAULT '30 days'::interval NOT NULL,
    CONSTRAINT google_ai_response_cache_settings_one_row CHECK (id),
    CONSTRAINT google_ai_response_cache_settings_bytes_check CHECK ((max_bytes_per_scope >= 0)),
    CONSTRAINT google_ai_response_cache_settings_ttl_check CHECK (((default_ttl > '00:00:00'::interval) AND
      (max_ttl >= default_ttl)))
);

COMMENT ON TABLE public.google_ai_response_cache_settings IS
    'The response cache''s one row of settings: the bytes of answers a scope may hold (housekeeping drops the '
    'oldest beyond it), the longest lifetime a request may ask for and the one it gets when it names none, '
    'whether service callers get a scope per caller label (else one for all), how long hit rows are kept. '
    'No row: the columns'' defaults (google_ai_response_cache_config).';

CREATE TABLE public.google_ai_response_cache_defaults (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id uuid REFERENCES public.google_ai_clients(id) ON DELETE CASCADE,
    model text,
    ttl interval NOT NULL,
    CONSTRAINT google_ai_response_cache_defaults_ttl_check CHECK ((ttl > '00:00:00'::interval))
);

COMMENT ON TABLE public.google_ai_response_cache_defaults IS
    'The owner''s default: requests that say nothing of the cache use it for this client (null: every caller) '
    'and this model (canonical; null: every model), with this lifetime; the most specific row wins (client and '
    'model, then client, then model). A request''s x-eve-cache header always overrides it.';

CREATE TABLE public.google_ai_response_cache_shared_scopes (
    member text PRIMARY KEY,
    shared_scope text NOT NULL,
    CONSTRAINT google_ai_response_cache_shared_scopes_member_check
      CHECK ((member ~ '^(client:.+|service(:.+)?)$'::text)),
    CONSTRAINT google_ai_response_cache_shared_scopes_name_check
      CHECK ((shared_scope ~ '^shared:[A-Za-z0-9._-]{1,64}$'::text))
);

COMMENT ON TABLE public.google_ai_response_cache_shared_scopes IS
    'Scopes the owner shares: a member (a client''s scope ''client:<name>'', the service key''s ''service'', or '
    '''service:<label>'' where the settings split it) reads and writes the entries of its shared scope '
    '(''shared:<name>'') instead of its own; every member of one shared scope is served the others'' answers. '
    'No row: a member keeps its own scope.';

CREATE TABLE public.google_ai_response_cache (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope text NOT NULL,
    key text NOT NULL,
    model text NOT NULL,
    served_model text,
    provider text,
    answer jsonb,
    bytes integer DEFAULT 0 NOT NULL,
    finish text,
    input_tokens integer,
    output_tokens integer,
    cost_usd numeric,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    flight_holder uuid,
    flight_until timestamp with time zone,
    CONSTRAINT google_ai_response_cache_key_check CHECK ((key ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT google_ai_response_cache_scope_key UNIQUE (scope, key)
);

COMMENT ON TABLE public.google_ai_response_cache IS
    'Response cache entries: per (scope, key), the whole answer (the InvokeResult every route writes its '
    'caller''s answer from; null while its first request is in flight), the model asked (after its alias) and '
    'the one that served, its finish reason, what it cost, until when it is served; flight_holder and '
    'flight_until: the request calling the provider for it now (single flight).';

COMMENT ON COLUMN public.google_ai_response_cache.key IS
    'SHA-256 hex of what the provider would be sent (its provider, model and wire body, the stream flag and the '
    'gateway''s service tier left out): two routes share an entry when that is the same.';

CREATE TABLE public.google_ai_response_cache_hits (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    entry_id bigint NOT NULL,
    scope text NOT NULL,
    caller text NOT NULL,
    request_id text,
    model text NOT NULL,
    saved_input_tokens integer,
    saved_output_tokens integer,
    saved_usd numeric,
    age_ms bigint NOT NULL
);

COMMENT ON TABLE public.google_ai_response_cache_hits IS
    'Audit of the response cache: one row per answer served from it (no provider called, nothing booked): '
    'which entry, whose, and what the call it spared would have cost (the entry''s tokens and cost_usd).';

CREATE TABLE public.google_ai_response_cache_misses (
    scope text PRIMARY KEY,
    misses bigint DEFAULT 0 NOT NULL
);

COMMENT ON TABLE public.google_ai_response_cache_misses IS
    'The response cache''s misses per scope since the row was written: each request that took an entry''s flight '
    'to call the provider (a counter for the metrics; hits are counted from their rows).';

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_response_cache_defaults_one ON public.google_ai_response_cache_defaults
    USING btree (coalesce(client_id, '00000000-0000-0000-0000-000000000000'::uuid), coalesce(model, ''::text));

CREATE INDEX IF NOT EXISTS google_ai_response_cache_expires_at_idx ON public.google_ai_response_cache
    USING btree (expires_at);

CREATE INDEX IF NOT EXISTS google_ai_response_cache_hits_created_at_idx ON public.google_ai_response_cache_hits
    USING btree (created_at);

-- The settings in force: the row where the operator wrote one, else its columns' defaults.
CREATE OR REPLACE FUNCTION public.google_ai_response_cache_config() RETURNS public.google_ai_response_cache_settings
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce((select s from public.google_ai_response_cache_settings s limit 1),
    row(true, 67108864, interval '7 days', interval '1 hour', false, interval '30 days')
      ::public.google_ai_response_cache_settings)
$$;

-- Whose entries a caller reads and writes (p_caller: a service caller's label; null for a token). Its
-- member: 'client:<name>' for a scoped token (null: the token is not valid now, or may not ask for this
-- model: the reservation refuses it as usual), 'service' for the service key, or 'service:<label>'
-- where the settings split it. Its scope: the shared scope the owner put that member in
-- (google_ai_response_cache_shared_scopes), else the member itself. Also the token's client, whose
-- default lifetime for the model (google_ai_response_cache_defaults) is read in the same look-up.
CREATE OR REPLACE FUNCTION public.google_ai_cache_scope(p_caller text, p_token_hash text, p_model text,
    OUT scope text, OUT member text, OUT client_id uuid)
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if p_token_hash is null then
    member := case when coalesce((public.google_ai_response_cache_config()).split_service_by_label, false)
                   then 'service:' || p_caller else 'service' end;
  else
    select 'client:' || c.name, c.id into member, client_id
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash and t.revoked_at is null and c.revoked_at is null
      and t.expires_at > pg_catalog.clock_timestamp() and p_model = any (t.models);
    if member is null then
      return;
    end if;
  end if;
  scope := coalesce((select s.shared_scope from public.google_ai_response_cache_shared_scopes s
                     where s.member = google_ai_cache_scope.member), member);
end
$$;

-- Whether any default exists: a worker asks the database about a request that says nothing of the
-- cache only then (llm-invoke/cache/response-cache.ts caches the answer as it does model rows).
CREATE OR REPLACE FUNCTION public.google_ai_cache_defaults_exist() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select exists (select from public.google_ai_response_cache_defaults) $$;

-- One round trip before a cacheable request is admitted. p_mode: 'on' (read, else claim the flight),
-- 'refresh' (claim without reading), 'default' (as 'on' where the owner's default covers the request,
-- else bypass). Answers {status: 'hit', entry, answer, age_ms, cost_usd} (and writes the hit's audit row),
-- {status: 'miss', entry, ttl_s} (this holder now calls for the entry), {status: 'wait', until} (another
-- request is calling for it), or {status: 'bypass'}.
CREATE OR REPLACE FUNCTION public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text,
    p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone,
    p_request_id text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_scope record;
  v_settings public.google_ai_response_cache_settings;
  v_ttl interval;
  v_entry public.google_ai_response_cache;
  v_age_ms bigint;
  v_claimed bigint;
begin
  if p_mode not in ('on', 'refresh', 'default') or p_key !~ '^[0-9a-f]{64}$' then
    raise exception 'google_ai_cache_lookup: bad mode or key' using errcode = '22023';
  end if;
  v_scope := public.google_ai_cache_scope(p_caller, p_token_hash, p_model);
  if v_scope.scope is null then
    return jsonb_build_object('status', 'bypass');
  end if;
  v_settings := public.google_ai_response_cache_config();
  if p_mode = 'default' then
    -- The owner's default for the client and model, the most specific first (none: the cache is off for it).
    select d.ttl into v_ttl from public.google_ai_response_cache_defaults d
    where (d.client_id = v_scope.client_id or d.client_id is null) and (d.model = p_model or d.model is null)
    order by d.client_id is null, d.model is null
    limit 1;
    if v_ttl is null then
      return jsonb_build_object('status', 'bypass');
    end if;
  else
    v_ttl := coalesce(pg_catalog.make_interval(secs => p_ttl_s), v_settings.default_ttl);
  end if;
  v_ttl := least(v_ttl, v_settings.max_ttl);

  for attempt in 1 .. 2 loop
    if p_mode <> 'refresh' then
      select * into v_entry from public.google_ai_response_cache e
      where e.scope = v_scope.scope and e.key = p_key;
      if found and v_entry.answer is not null and v_entry.expires_at > v_now then
        -- (An answer another request stored after v_now was read is younger than this clock: age 0.)
        v_age_ms := greatest(0, (extract(epoch from (v_now - v_entry.created_at)) * 1000)::bigint);
        -- The hit's commit does not wait for its WAL flush: a crash of the database in the next moments
        -- could lose this audit row, never an answer or a booking (a hit books nothing).
        perform pg_catalog.set_config('synchronous_commit', 'off', true);
        insert into public.google_ai_response_cache_hits (created_at, entry_id, scope, caller, request_id, model,
          saved_input_tokens, saved_output_tokens, saved_usd, age_ms)
        values (v_now, v_entry.id, v_scope.scope, coalesce(p_caller, v_scope.member), p_request_id, v_entry.model,
          v_entry.input_tokens, v_entry.output_tokens, v_entry.cost_usd, v_age_ms);
        return jsonb_build_object('status', 'hit', 'entry', v_entry.id, 'answer', v_entry.answer,
          'age_ms', v_age_ms, 'cost_usd', v_entry.cost_usd);
      end if;
    end if;
    -- No answer to serve: take the flight unless another request holds it, or an answer landed since
    -- the read above (then it is read again: a hit). An answer stays in the row, still served to
    -- others, until a refresh's new one replaces it.
    insert into public.google_ai_response_cache as e (scope, key, model, flight_holder, flight_until)
    values (v_scope.scope, p_key, p_model, p_holder, p_flight_until)
    on conflict (scope, key) do update set flight_holder = excluded.flight_holder, flight_until = excluded.flight_until
    where (e.flight_until is null or e.flight_until <= v_now or e.flight_holder = excluded.flight_holder)
      and (p_mode = 'refresh' or e.answer is null or e.expires_at <= v_now)
    returning e.id into v_claimed;
    if v_claimed is not null then
      insert into public.google_ai_response_cache_misses as m (scope, misses) values (v_scope.scope, 1)
      on conflict (scope) do update set misses = m.misses + 1;
      return jsonb_build_object('status', 'miss', 'entry', v_claimed, 'ttl_s', extract(epoch from v_ttl)::integer);
    end if;
    -- Held by another: its answer may have landed meanwhile (read it once more), else wait for it.
    select * into v_entry from public.google_ai_response_cache e
    where e.scope = v_scope.scope and e.key = p_key;
    if not (found and v_entry.answer is not null and v_entry.expires_at > v_now and p_mode <> 'refresh') then
      return jsonb_build_object('status', 'wait', 'until', v_entry.flight_until);
    end if;
  end loop;
  return jsonb_build_object('status', 'wait', 'until', v_entry.flight_until);
end
$$;

-- The flight's answer, stored: what it served (the model, its provider, its finish) and what it cost
-- (read from the attempt row of p_reservation_id, finalized before). Ends the flight either way. Only
-- the holder stores: a flight taken over since (its holder too late) is left to its new holder.
CREATE OR REPLACE FUNCTION public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb,
    p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_attempt record;
  v_n integer;
begin
  select a.input_tokens, a.output_tokens, a.cost_usd into v_attempt
  from public.google_ai_attempts a where a.reservation_id = p_reservation_id;
  update public.google_ai_response_cache e set
    answer = p_answer, bytes = pg_catalog.octet_length(p_answer::text),
    served_model = p_served_model, provider = p_provider, finish = p_finish,
    input_tokens = v_attempt.input_tokens, output_tokens = v_attempt.output_tokens, cost_usd = v_attempt.cost_usd,
    created_at = v_now, expires_at = v_now + pg_catalog.make_interval(secs => p_ttl_s),
    flight_holder = null, flight_until = null
  where e.id = p_entry and e.flight_holder = p_holder;
  get diagnostics v_n = row_count;
  return v_n = 1;
end
$$;

-- The flight ended without an answer to keep (the call failed, the answer is not whole): the next
-- waiter to look takes it over. An entry that never had an answer goes.
CREATE OR REPLACE FUNCTION public.google_ai_cache_abandon(p_entry bigint, p_holder uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  delete from public.google_ai_response_cache e
  where e.id = p_entry and e.flight_holder = p_holder and e.answer is null;
  update public.google_ai_response_cache e set flight_holder = null, flight_until = null
  where e.id = p_entry and e.flight_holder = p_holder;
end
$$;

-- The owner's purge: a scope's entries ('client:<name>', 'service', 'service:<label>', 'shared:<name>'; null: every
-- scope), of one model (as asked, after its alias, or as served; null: every model). Returns how many went.
CREATE OR REPLACE FUNCTION public.google_ai_cache_purge(p_scope text DEFAULT NULL::text,
    p_model text DEFAULT NULL::text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
  v_n integer;
begin
  delete from public.google_ai_response_cache e
  where (p_scope is null or e.scope = p_scope)
    and (v_model is null or e.model = v_model or e.served_model = v_model);
  get diagnostics v_n = row_count;
  return v_n;
end
$$;

-- Housekeeping's step (google_ai_housekeeping_steps): expired entries and dead flights go, then each
-- scope over its size limit loses its oldest entries until it fits, then hit rows past their retention.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_response_cache(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_settings and p_deadline are every housekeeping step's parameters, unused here by
-- design: the cache's limits are its own settings row, and its three deletes take no batches.)
declare
  v_cache public.google_ai_response_cache_settings;
  v_expired bigint;
  v_over bigint;
  v_hits bigint;
begin
  v_cache := public.google_ai_response_cache_config();
  delete from public.google_ai_response_cache e
  where (e.answer is not null and e.expires_at <= p_now)
     or (e.answer is null and (e.flight_until is null or e.flight_until <= p_now));
  get diagnostics v_expired = row_count;
  with sized as (
    select e.id, sum(e.bytes) over (partition by e.scope order by e.created_at desc, e.id desc) as held
    from public.google_ai_response_cache e
    where e.answer is not null)
  delete from public.google_ai_response_cache e
  using sized s where s.id = e.id and s.held > v_cache.max_bytes_per_scope;
  get diagnostics v_over = row_count;
  delete from public.google_ai_response_cache_hits h where h.created_at < p_now - v_cache.hits_retention;
  get diagnostics v_hits = row_count;
  return jsonb_build_object('expired', v_expired, 'over_size', v_over, 'hit_rows', v_hits);
end
$$;

-- The cache's samples in a scrape (google_ai_metrics), per scope: misses (calls made for an entry,
-- counted as they take their flight), hits and the money they saved (in the hit rows kept:
-- hits_retention), entries and bytes held now.
CREATE OR REPLACE FUNCTION public.google_ai_metric_response_cache() RETURNS TABLE(family text, sample text,
    labels text, value numeric)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  with held as (
    select e.scope, count(*) as entries, sum(e.bytes) as bytes
    from public.google_ai_response_cache e where e.answer is not null group by e.scope),
  served as (
    select h.scope, count(*) as hits, sum(coalesce(h.saved_usd, 0)) as saved_usd
    from public.google_ai_response_cache_hits h group by h.scope),
  missed as (select m.scope, m.misses from public.google_ai_response_cache_misses m),
  scopes as (select held.scope from held union select served.scope from served union select missed.scope from missed)
  -- (The label written as google_ai_metric_label writes one, which 91_metrics.sql defines after this file.)
  select x.family, x.family,
         'scope="' || replace(replace(replace(sc.scope, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"', x.v
  from scopes sc
  left join held on held.scope = sc.scope
  left join served on served.scope = sc.scope
  left join missed on missed.scope = sc.scope
  cross join lateral (values
    ('eve_gateway_response_cache_hits', coalesce(served.hits, 0)::numeric),
    ('eve_gateway_response_cache_saved_usd', coalesce(served.saved_usd, 0)),
    ('eve_gateway_response_cache_misses_total', coalesce(missed.misses, 0)::numeric),
    ('eve_gateway_response_cache_entries', coalesce(held.entries, 0)::numeric),
    ('eve_gateway_response_cache_bytes', coalesce(held.bytes, 0)::numeric)) x(family, v)
$$;

-- The response cache over the last 24 hours, per scope and model (the operator's view, beside
-- google_ai_usage_by_caller_24h, whose attempt rows a hit does not write): answers served from it,
-- what they spared (tokens and money), and what is held now.
CREATE OR REPLACE VIEW public.google_ai_response_cache_24h WITH (security_invoker='true') AS
 WITH served AS (
   SELECT h.scope,
     h.model,
     count(*)::integer AS hits,
     coalesce(sum(h.saved_input_tokens), 0) AS saved_input_tokens,
     coalesce(sum(h.saved_output_tokens), 0) AS saved_output_tokens,
     coalesce(sum(h.saved_usd), 0) AS saved_usd
   FROM public.google_ai_response_cache_hits h
   WHERE h.created_at > now() - interval '24 hours'
   GROUP BY h.scope, h.model
 ), held AS (
   SELECT e.scope, e.model, count(*)::integer AS entries, coalesce(sum(e.bytes), 0) AS bytes
   FROM public.google_ai_response_cache e
   WHERE e.answer IS NOT NULL
   GROUP BY e.scope, e.model
 )
 SELECT coalesce(served.scope, held.scope) AS scope,
    coalesce(served.model, held.model) AS model,
    coalesce(served.hits, 0) AS hits,
    coalesce(served.saved_input_tokens, 0) AS saved_input_tokens,
    coalesce(served.saved_output_tokens, 0) AS saved_output_tokens,
    coalesce(served.saved_usd, 0) AS saved_usd,
    coalesce(held.entries, 0) AS entries,
    coalesce(held.bytes, 0) AS bytes
 FROM served
 FULL JOIN held ON held.scope = served.scope AND held.model = served.model;

COMMENT ON VIEW public.google_ai_response_cache_24h IS
    'The response cache over the last 24 hours, per scope and model: hits, the tokens and US dollars they spared, '
    'entries and bytes held now (docs/response-cache.md).';
