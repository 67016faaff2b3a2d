-- Models: key health and the model catalogue the maintenance function keeps, the profile, traits,
-- features and list llm-invoke reads, aliases owned by one row, the life cycle review, service tiers.
set check_function_bodies = off;

-- The last check of each key against its provider's model list (Google's models.list, OpenAI's GET
-- /v1/models): ok (the list answered), invalid (the provider refused the key; the key was taken out of
-- rotation), missing_secret (no Edge secret under env_var_name; reported only), error (anything else:
-- 429, 5xx, network; nothing concluded).
CREATE TABLE public.google_ai_key_health (
    api_key_id uuid NOT NULL PRIMARY KEY REFERENCES public.google_ai_api_keys(id) ON DELETE CASCADE,
    key_alias text NOT NULL,
    status text NOT NULL CHECK (status IN ('ok', 'invalid', 'missing_secret', 'error')),
    checked_at timestamp with time zone DEFAULT now() NOT NULL,
    http_status integer,
    reason text,
    message text,
    models_listed integer
);

COMMENT ON TABLE public.google_ai_key_health IS
    'The last check of each key against its provider''s model list, by the maintenance function.';

CREATE TABLE public.google_ai_model_catalogue (
    api_key_id uuid NOT NULL REFERENCES public.google_ai_api_keys(id) ON DELETE CASCADE,
    model text NOT NULL,
    key_alias text NOT NULL,
    quota_group text NOT NULL,
    display_name text,
    version text,
    input_token_limit integer,
    output_token_limit integer,
    supported_methods text[] DEFAULT '{}'::text[] NOT NULL,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    refreshed_at timestamp with time zone DEFAULT now() NOT NULL,
    PRIMARY KEY (api_key_id, model)
);

COMMENT ON TABLE public.google_ai_model_catalogue IS
    'Models each key can reach (its provider''s model list), with token limits and methods where the '
    'provider gives them (Google does, OpenAI does not); refreshed by the maintenance function.';

-- The operator's rows: which tier llm-invoke asks Google for (the request body's serviceTier) when a
-- request of that class is served by that model. No row: standard (nothing is sent). flex is half
-- price and may be shed under load; priority (Google's Tier 2/3) may be served at standard when over
-- its own limit. standard_on_shed: a flex call Google sheds (its 503) is retried like any 503, and at
-- standard when this is true (else at flex again). Not seeded: the owner's projects are on the free
-- tier, where flex saves nothing and only adds shed calls (docs/google-429s.md, "Service tiers").
-- The OpenAI surface's `service_tier` may ask for any tier up to its class's (flex < standard < priority).
CREATE TABLE public.google_ai_service_tiers (
    model text NOT NULL,
    priority_class text NOT NULL,
    service_tier text NOT NULL,
    standard_on_shed boolean DEFAULT false NOT NULL,
    notes text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    PRIMARY KEY (model, priority_class),
    CONSTRAINT google_ai_service_tiers_tier_check CHECK (service_tier IN ('flex', 'standard', 'priority'))
);

COMMENT ON TABLE public.google_ai_service_tiers IS
    'The service tier llm-invoke asks Google for, per canonical model id and priority class; no row: standard.';

-- What a model's call costs, per service tier, in US dollars per million tokens: input, input the
-- provider read from its cache (null: not known, so a call with cached input costs null), input it
-- wrote to its cache for an hour and for 5 minutes (Anthropic's cache writes; null: not known, so a
-- call with such writes costs null), output, and thinking (null: billed as output, Google's and
-- OpenAI's rule; output_tokens already holds it). A 'free' row: a call that asks for no tier is on
-- the provider's free tier (Google's free projects), priced there (0); a call at a tier with no row,
-- or a model with none, costs null (unknown), never 0.
-- Each row says where its figures came from and the day they were read (google_ai_call_cost).
CREATE TABLE public.google_ai_model_prices (
    model text NOT NULL REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE,
    service_tier text NOT NULL,
    input_per_mtok numeric NOT NULL,
    cached_input_per_mtok numeric,
    output_per_mtok numeric NOT NULL,
    thinking_per_mtok numeric,
    source text NOT NULL,
    read_on date NOT NULL,
    cache_write_1h_per_mtok numeric,
    cache_write_5m_per_mtok numeric,
    PRIMARY KEY (model, service_tier),
    CONSTRAINT google_ai_model_prices_tier_check CHECK (service_tier = ANY ('{free,flex,standard,priority}')),
    CONSTRAINT google_ai_model_prices_not_negative CHECK (((LEAST(input_per_mtok, cached_input_per_mtok,
      output_per_mtok, thinking_per_mtok) >= (0)::numeric))),
    CONSTRAINT google_ai_model_prices_cache_writes_not_negative CHECK (((LEAST(cache_write_5m_per_mtok,
      cache_write_1h_per_mtok) >= (0)::numeric)))
);

COMMENT ON TABLE public.google_ai_model_prices IS
    'US dollars per million tokens per model and service tier (free: a call asking no tier), with the source and '
    'the day it was read; no row: the call''s cost is unknown (null).';

CREATE INDEX IF NOT EXISTS google_ai_model_catalogue_model_idx ON public.google_ai_model_catalogue USING btree (model);

-- What one call cost in US dollars (p_call, as finalize takes it: google_ai_attempt_outcome,
-- 15_request_log.sql): the provider's counts at its model's price
-- (google_ai_model_prices) for the tier that served it (served_tier; OpenAI's default is standard; no
-- tier said: the one asked for, service_tier, else standard), or the free tier's where a call that asked
-- for none has one. Of the input, what was read from the cache and what was written to it for 5 minutes
-- or an hour at their own prices, the rest at the input's; thinking (part of the output) at its own or
-- the output's. Null: no price row, a cached or written count without its price, or no counts from a
-- call the provider may have billed (a refusal it answered, upstream_error, bills nothing: 0).
CREATE OR REPLACE FUNCTION public.google_ai_call_cost(p_model text, p_call public.google_ai_attempt_outcome)
    RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_input integer := p_call.input_tokens;
  v_cached integer := coalesce(p_call.cached_input_tokens, 0);
  v_write_5m integer := coalesce(p_call.cache_write_5m_tokens, 0);
  v_write_1h integer := coalesce(p_call.cache_write_1h_tokens, 0);
  v_output integer := p_call.output_tokens;
  v_thinking integer := coalesce(p_call.thinking_tokens, 0);
begin
  return (
    select case when v_input is null and v_output is null then case when p_call.kind = 'upstream_error' then 0 end
                else ((coalesce(v_input, 0) - v_cached - v_write_5m - v_write_1h) * p.input_per_mtok
                      + case when v_cached = 0 then 0 else v_cached * p.cached_input_per_mtok end
                      + case when v_write_5m = 0 then 0 else v_write_5m * p.cache_write_5m_per_mtok end
                      + case when v_write_1h = 0 then 0 else v_write_1h * p.cache_write_1h_per_mtok end
                      + (coalesce(v_output, 0) - v_thinking) * p.output_per_mtok
                      + v_thinking * coalesce(p.thinking_per_mtok, p.output_per_mtok)) * 0.000001 end
    from (select coalesce(nullif(lower(coalesce(p_call.served_tier, p_call.service_tier)), 'default'), 'standard')
            as tier) t
    join public.google_ai_model_prices p on p.model = p_model
      and p.service_tier in (t.tier, case when t.tier = 'standard' and p_call.service_tier is null then 'free' end)
    order by p.service_tier = 'free' desc
    limit 1);
end
$$;

-- The most one call may cost, as a budget in money books it: p_input tokens at the input price, p_output
-- of answer (the largest the request is sent with: llm-invoke decides it, attempt/answer-size.ts) and
-- the most the model may think beside it (max_thinking_tokens: Gemini's thinking is not capped by
-- maxOutputTokens) at the output's and the thinking's, at the dearest tier the call may be asked at in
-- class p_class (no tier, or the class's google_ai_service_tiers row of the model). Null when p_output
-- is not known or one of them has no price: a call that may cost what nobody knows has no worst case.
CREATE OR REPLACE FUNCTION public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer,
    p_class text)
    RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_call public.google_ai_attempt_outcome;
  v_thinking integer;
  v_tier text;
  v_cost numeric;
  v_worst numeric;
begin
  select coalesce(l.max_thinking_tokens, 0) into v_thinking from public.google_ai_model_limits l
  where l.model = p_model;
  if not found or p_output is null then
    return null;
  end if;
  v_call.kind := 'succeeded';
  v_call.input_tokens := p_input;
  v_call.cached_input_tokens := 0;
  v_call.output_tokens := p_output + v_thinking;
  v_call.thinking_tokens := v_thinking;
  for v_tier in select null::text union select s.service_tier from public.google_ai_service_tiers s
               where s.model = p_model and s.priority_class = p_class loop
    v_call.service_tier := v_tier;
    v_cost := public.google_ai_call_cost(p_model, v_call);
    if v_cost is null then
      return null;
    end if;
    v_worst := greatest(v_worst, v_cost);
  end loop;
  return v_worst;
end
$$;

-- Before: a name in two rows' aliases resolved to the older row, so giving it to a new row changed
-- nothing until it was also taken from the old one. Now the row that gains an alias takes it.
CREATE OR REPLACE FUNCTION public.google_ai_model_alias_moves() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_gained text[];
begin
  select coalesce(array_agg(a), '{}') into v_gained
  from unnest(new.aliases) a
  where tg_op = 'INSERT' or not (a = any (coalesce(old.aliases, '{}')));
  if cardinality(v_gained) > 0 then
    update public.google_ai_model_limits l
    set aliases = (select coalesce(array_agg(a order by i), '{}') from unnest(l.aliases) with ordinality x(a, i)
                   where not (a = any (v_gained)))
    where l.id <> new.id and l.aliases && v_gained;
  end if;
  return null;
end
$$;

-- Called after every key was checked (its catalogue rows are fresh). Per provider: a provider's models
-- are compared with the lists of that provider's active keys whose last check succeeded, and with no
-- other's (Google's keys list Google's models, OpenAI's keys OpenAI's). A withdrawn model that a key of
-- its provider lists again (seen after it was withdrawn) is brought back. The answer:
--   checked        some provider has a key whose last check succeeded
--   restored       models brought back now
--   withdrawn      models still marked: {model, withdrawn_at, message, successor, provider}
--   missing        active rows no checked key of their provider lists (retired or renamed)
--   shutting_down  rows whose shutdown date is within p_within_days (or past): {model, shutdown_date,
--                  days_left, successor}
--   unserved       models a provider lists that no row serves (nobody can name them yet)
-- Without a key of its provider whose last check succeeded, nothing is concluded about a model.
CREATE OR REPLACE FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer DEFAULT 14) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_checked text[]; -- providers with an active key whose last check succeeded
  v_listed jsonb;   -- {provider: {model: when a checked active key of that provider last listed it}}
  v_restored text[];
begin
  select coalesce(jsonb_object_agg(x.provider, x.models), '{}') into v_listed
  from (select y.provider, jsonb_object_agg(y.model, y.listed_at) as models
        from (select k.serves_provider as provider, c.model, max(c.refreshed_at) as listed_at
              from public.google_ai_model_catalogue c
              join public.google_ai_key_health h on h.api_key_id = c.api_key_id and h.status = 'ok'
              join public.google_ai_api_keys k on k.id = c.api_key_id and k.is_active
              group by k.serves_provider, c.model) y
        group by y.provider) x;
  select coalesce(array_agg(distinct k.serves_provider), '{}') into v_checked
  from public.google_ai_key_health h join public.google_ai_api_keys k on k.id = h.api_key_id
  where h.status = 'ok' and k.is_active;

  with back as (
    update public.google_ai_model_limits l set withdrawn_at = null, withdrawn_message = null, google_successor = null
    where l.provider = any (v_checked) and l.withdrawn_at is not null and v_listed -> l.provider ? l.model
      and (v_listed -> l.provider ->> l.model)::timestamptz > l.withdrawn_at
    returning l.model)
  select coalesce(array_agg(b.model order by b.model), '{}') into v_restored from back b;

  return jsonb_build_object('checked', cardinality(v_checked) > 0, 'restored', to_jsonb(v_restored),
    'withdrawn', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'withdrawn_at', l.withdrawn_at,
                             'message', l.withdrawn_message, 'successor', l.successor,
                             'google_successor', l.google_successor, 'provider', l.provider) order by l.model)
                           from public.google_ai_model_limits l where l.withdrawn_at is not null), '[]'),
    'missing', coalesce((select jsonb_agg(l.model order by l.model) from public.google_ai_model_limits l
                         where l.provider = any (v_checked) and l.is_active
                           and not coalesce(v_listed -> l.provider, '{}') ? l.model), '[]'),
    'shutting_down', coalesce((select jsonb_agg(jsonb_build_object('model', l.model, 'shutdown_date', l.shutdown_date,
                                 'days_left', l.shutdown_date - current_date, 'successor', l.successor)
                                 order by l.shutdown_date, l.model)
                               from public.google_ai_model_limits l
                               where l.is_active and l.shutdown_date <= current_date + coalesce(p_within_days, 14)),
                                 '[]'),
    'unserved', coalesce((select jsonb_agg(distinct g order by g)
                          from jsonb_each(v_listed) p cross join lateral jsonb_object_keys(p.value) g
                          where not exists (select 1 from public.google_ai_model_limits l where l.model = g)), '[]'));
end
$$;

-- Active rows with what Google's models.list told the maintenance run about them (token limits,
-- display name), the largest over the keys that list the model. A row withdrawn, or past its shutdown
-- date (the day in UTC, as the reservation reads it), is offered no more: a request naming it is passed
-- to its successor or refused.
CREATE OR REPLACE FUNCTION public.google_ai_model_list() RETURNS TABLE(model text, aliases text[], display_name text,
    input_token_limit integer, output_token_limit integer, rpm integer, tpm integer, rpd integer,
    supports_system_instruction boolean, supports_json_mode boolean, supports_tools boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select l.model, l.aliases,
         (select max(c.display_name) from public.google_ai_model_catalogue c where c.model = l.model),
         (select max(c.input_token_limit) from public.google_ai_model_catalogue c where c.model = l.model),
         (select max(c.output_token_limit) from public.google_ai_model_catalogue c where c.model = l.model),
         l.rpm, l.tpm, l.rpd, l.supports_system_instruction, l.supports_json_mode,
         coalesce(l.supports_tools, l.supports_json_mode)
  from public.google_ai_model_limits l
  where l.is_active and l.withdrawn_at is null
    and not coalesce(l.shutdown_date <= (pg_catalog.now() at time zone 'UTC')::date, false)
  order by l.model
$$;

-- What llm-invoke needs to build a request's chain: the model a name resolves to (inactive rows
-- included, flagged), what it can do (function calling where the row does not say: as JSON mode;
-- images: null when not known), whether it is withdrawn or past its shutdown date (the day in UTC, as
-- the reservation reads it) and its successor (the count-tokens routes, which book nothing, answer such
-- a model as a generation would be: passed to its successor, or refused), its row's chain resolved to
-- canonical names (names no row knows are left out), and what it refuses to be set (a thinking budget,
-- sampling other than the defaults: Claude 5.x).
CREATE OR REPLACE FUNCTION public.google_ai_model_traits(p_model text) RETURNS TABLE(model text, is_active boolean,
    supports_system_instruction boolean, supports_json_mode boolean, supports_tools boolean, supports_images boolean,
    fallback_models text[], withdrawn boolean, successor text, shut_down boolean, refuses_thinking_budget boolean,
    refuses_sampling boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select l.model, l.is_active, l.supports_system_instruction, l.supports_json_mode,
         coalesce(l.supports_tools, l.supports_json_mode), l.supports_images,
         coalesce((select array_agg(f.model order by f.i)
                   from (select r.model, min(c.i) as i
                         from unnest(l.fallback_models) with ordinality c(name, i)
                         cross join lateral public.google_ai_model_by_name(c.name) r
                         where r.model is not null and r.model <> l.model
                         group by r.model) f), '{}'),
         l.withdrawn_at is not null, l.successor,
         coalesce(l.shutdown_date <= (pg_catalog.now() at time zone 'UTC')::date, false),
         l.refuses_thinking_budget, l.refuses_sampling
  from public.google_ai_model_by_name(p_model) l
  where l.id is not null
$$;

-- Who serves a model (its canonical name) and how its TPM counts: the provider whose client and keys
-- the gateway uses, and the output a request books where TPM counts answers too (OpenAI); and the
-- answer a request that names no largest one is sent with where a budget in money books it
-- (answer_tokens: booked_output_tokens, else the model's output limit as its catalogue says; null:
-- not known). Read beside google_ai_model_traits in the same statement.
CREATE OR REPLACE FUNCTION public.google_ai_model_provider(p_model text) RETURNS TABLE(provider text,
    booked_output_tokens integer, answer_tokens integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select l.provider, l.booked_output_tokens,
         coalesce(l.booked_output_tokens,
                  (select max(c.output_token_limit) from public.google_ai_model_catalogue c where c.model = l.model))
  from public.google_ai_model_limits l where l.model = p_model
$$;

-- Records one key's check in one transaction: its health row; for 'ok' the end of its quota group's
-- limit_zero rests, the catalogue rows of the models listed (upserted, first_seen_at kept) and the removal
-- of those no longer listed; for 'invalid' the removal of its catalogue rows and, when p_disable, the key
-- taken out of rotation (is_active = false, disabled_reason naming the provider that refused it,
-- disabled_at; never deleted). p_models: a JSON array of
-- {model, display_name, version, input_token_limit, output_token_limit, supported_methods}.
CREATE OR REPLACE FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text,
    p_http_status integer DEFAULT NULL::integer, p_reason text DEFAULT NULL::text, p_message text DEFAULT NULL::text,
    p_models jsonb DEFAULT '[]'::jsonb, p_disable boolean DEFAULT true) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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
    -- An 'ok' check ends the limit_zero rests of the key's quota group: the project may have been given quota
    -- for the model since (the next request tries the provider once more, and a new limit: 0 rests again).
    -- Locked in model order first, as finalize writes a spend cap's rows: no deadlock between them.
    delete from public.google_ai_cooldowns c
    where c.ctid in (select l.ctid from public.google_ai_cooldowns l
                     where l.quota_group = public.google_ai_quota_group(v_key.project_id, v_key.id)
                       and l.cause = 'limit_zero'
                     order by l.model
                     for update of l);
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
$$;

CREATE OR REPLACE FUNCTION public.google_ai_service_tier_list() RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'model', t.model, 'priority_class', t.priority_class, 'service_tier', t.service_tier,
           'standard_on_shed', t.standard_on_shed) order by t.model, t.priority_class), '[]')
  from public.google_ai_service_tiers t
$$;

COMMENT ON FUNCTION public.google_ai_service_tier_list() IS
    'The service tier rows, for llm-invoke (cached per worker like the model rows).';

CREATE OR REPLACE TRIGGER google_ai_model_alias_moves AFTER INSERT OR UPDATE OF aliases ON public.google_ai_model_limits
    FOR EACH ROW EXECUTE FUNCTION public.google_ai_model_alias_moves();
