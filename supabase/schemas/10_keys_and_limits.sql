-- Keys and limits: the providers' API keys (the secret's name only, never the key) and their quota
-- groups (google_ai_quota_group: keys of one Cloud project, or of one OpenAI organization, share a
-- group), a model's row (limits, capabilities, aliases, life cycle columns), the per-group counters and
-- the cooldowns; how a name becomes a model row and what limit applies to a group.
set check_function_bodies = off;

-- The one reading of a provider's name: a key row's provider is the owner's own text, kept as written,
-- so case, spaces, '_' and '-' do not count, and Google also goes by its product's name (gemini,
-- Google AI). (A row that names none takes its column's default, the one default provider.) Pure
-- normalisation, so immutable: a key row keeps its reading in the generated serves_provider, and the key
-- selection compares two columns (reading a table there cost a reservation about 20k instructions).
CREATE OR REPLACE FUNCTION public.google_ai_provider(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case pg_catalog.translate(pg_catalog.lower(p_name), ' _-', '')
           when 'googleai' then 'google' when 'gemini' then 'google'
           else pg_catalog.translate(pg_catalog.lower(p_name), ' _-', '') end
$$;

-- The providers, a row each (the rows migration seeds google and openai): a key row or a model row names
-- one (foreign keys). dialect: the wire format, a module of the functions' registry; they refuse a row
-- whose dialect they do not know, naming it, so a new dialect needs no change here. key_env_pattern: the
-- secrets its key rows may name (a regular expression; GATEWAY_<NAME>_KEY_ENV_PATTERN replaces it). A
-- dialect's own row may leave base_url and key_env_pattern null: its variable's, else its default.
-- display_name: the provider's name in every message and log line. day_zone: the zone its day turns
-- in (its per-day quotas reset and its spend is billed per that day): an IANA name Postgres knows (a
-- name it does not know is refused by the check, which cannot convert a time to it).
CREATE TABLE public.google_ai_providers (
    name text NOT NULL PRIMARY KEY,
    dialect text NOT NULL,
    display_name text NOT NULL,
    base_url text,
    key_env_pattern text,
    day_zone text DEFAULT 'UTC'::text NOT NULL,
    CONSTRAINT google_ai_providers_day_zone_check
        CHECK ((day_zone ~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$'
               AND pg_catalog.timezone(day_zone, '2000-01-01 00:00:00+00'::timestamp with time zone) IS NOT NULL)),
    CONSTRAINT google_ai_providers_name_check
        CHECK ((name ~ '^[a-z][a-z0-9]{0,39}$' AND name = public.google_ai_provider(name))),
    CONSTRAINT google_ai_providers_base_url_check
        CHECK ((base_url ~ '^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[^?#[:space:]]*)?$')),
    CONSTRAINT google_ai_providers_own_check
        CHECK ((name = dialect OR (base_url IS NOT NULL AND key_env_pattern IS NOT NULL))),
    has_responses_api boolean DEFAULT false NOT NULL
);

COMMENT ON COLUMN public.google_ai_providers.has_responses_api IS
    'The provider serves OpenAI''s Responses API (POST /v1/responses) as OpenAI does: the gateway''s Responses '
    'route sends its models the caller''s body as it came. False: the body is translated (chat completions for '
    'dialect openai), and what only OpenAI''s Responses API honours (built-in tools, include, background) is '
    'refused by name. True for OpenAI''s own row; a compatible service''s row says so itself.';

-- The providers llm-invoke and maintenance build their clients, model lists and key readers from.
CREATE OR REPLACE FUNCTION public.google_ai_provider_list() RETURNS SETOF public.google_ai_providers
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select * from public.google_ai_providers p order by p.name
$$;

CREATE TABLE public.google_ai_api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    key_alias text NOT NULL,
    provider text DEFAULT 'google'::text NOT NULL,
    env_var_name text NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    priority integer DEFAULT 100 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    notes text,
    project_id text,
    models text[],
    disabled_reason text,
    disabled_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now(),
    serves_provider text GENERATED ALWAYS AS (public.google_ai_provider(provider)) STORED
);

COMMENT ON COLUMN public.google_ai_api_keys.env_var_name IS
    'Name of the Edge Function secret that holds the key (supabase '
    'secrets set NAME=...). The key itself never enters the database.';

COMMENT ON COLUMN public.google_ai_api_keys.priority IS
    'Lower is preferred. Among equal priorities the group with the most headroom is chosen.';

COMMENT ON COLUMN public.google_ai_api_keys.provider IS
    'Whose key this is, as the owner writes it: a provider''s name in any case, with or without spaces, _ or - '
    '(gemini and Google AI are google; null is google). Kept as written; serves_provider holds the gateway''s reading.';

COMMENT ON COLUMN public.google_ai_api_keys.serves_provider IS
    'The provider (google_ai_providers) whose model rows the key serves: google_ai_provider(provider), kept by '
    'PostgreSQL.';

-- The owner's key rows all read as a seeded provider (the adoption migration stopped on any other, naming it).
ALTER TABLE public.google_ai_api_keys
    ADD CONSTRAINT google_ai_api_keys_provider_fkey
        FOREIGN KEY (serves_provider) REFERENCES public.google_ai_providers(name);

COMMENT ON COLUMN public.google_ai_api_keys.project_id IS
    'Google Cloud project, or OpenAI organization, of the key: keys of one project or organization share one '
    'quota group. Null: the key is its own group.';

CREATE TABLE public.google_ai_model_limits (
    id serial NOT NULL,
    model text NOT NULL,
    rpm integer,
    tpm integer,
    rpd integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    safety_margin numeric(4,3) DEFAULT 0 NOT NULL,
    notes text,
    aliases text[] DEFAULT '{}'::text[] NOT NULL,
    supports_system_instruction boolean DEFAULT true NOT NULL,
    supports_json_mode boolean DEFAULT true NOT NULL,
    fallback_models text[] DEFAULT '{}'::text[] NOT NULL,
    supports_tools boolean,
    shutdown_date date,
    successor text,
    withdrawn_at timestamp with time zone,
    withdrawn_message text,
    limits_source text,
    supports_images boolean,
    spread_burst integer,
    google_successor text,
    provider text DEFAULT 'google'::text NOT NULL,
    booked_output_tokens integer,
    max_thinking_tokens integer,
    bucket_share numeric(4,3),
    itpm integer,
    itpm_counts_cache_reads boolean DEFAULT false NOT NULL,
    limit_pool text,
    otpm integer,
    refuses_thinking_budget boolean DEFAULT false NOT NULL,
    refuses_sampling boolean DEFAULT false NOT NULL,
    follow_ceiling_rpd integer,
    follow_ceiling_rpm integer,
    follow_ceiling_tpm integer,
    provider_limits text DEFAULT 'keep'::text NOT NULL,
    CONSTRAINT google_ai_model_limits_provider_limits_check
      CHECK ((provider_limits = 'keep'::text OR (provider_limits = 'follow'::text
              AND provider = ANY (ARRAY['openai'::text, 'anthropic'::text])))),
    CONSTRAINT google_ai_model_limits_booked_output_tokens_check CHECK ((booked_output_tokens >= 1)),
    CONSTRAINT google_ai_model_limits_itpm_check CHECK ((itpm >= 1)),
    CONSTRAINT google_ai_model_limits_otpm_check CHECK ((otpm >= 1)),
    CONSTRAINT google_ai_model_limits_bucket_share_check
      CHECK (((bucket_share > (0)::numeric) AND (bucket_share <= (1)::numeric))),
    CONSTRAINT google_ai_model_limits_spread_burst_check CHECK ((spread_burst >= 1)),
    CONSTRAINT google_ai_model_limits_provider_fkey FOREIGN KEY (provider) REFERENCES public.google_ai_providers(name)
);

COMMENT ON COLUMN public.google_ai_model_limits.provider IS
    'Who serves the model (google_ai_providers). Only keys of this provider serve it.';

COMMENT ON COLUMN public.google_ai_model_limits.spread_burst IS
    'Admissions spread over the window while requests wait for the model: at most this many of a quota group at once, '
    'then one per window / RPM (the TPM analogue for large requests), so that capacity comes back a request at a time '
    'and a waiting person gets the next one. While nobody waits, a burst that fits the window goes at once; the first '
    'class and requests a share of their own still covers are never held back. Null: not spread.';

COMMENT ON COLUMN public.google_ai_model_limits.rpm IS 'Requests per minute per quota group (null: no limit).';

COMMENT ON COLUMN public.google_ai_model_limits.tpm IS
    'Tokens per minute per quota group (null: no limit): input tokens, and output tokens too where '
    'booked_output_tokens is set.';

COMMENT ON COLUMN public.google_ai_model_limits.booked_output_tokens IS
    'Null: TPM counts input tokens only (Google). Set: TPM counts input and output (OpenAI): a request books its '
    'input plus its max_tokens, or this many when it names none, and is settled at input + output.';

COMMENT ON COLUMN public.google_ai_model_limits.max_thinking_tokens IS
    'The most a call may think beyond its maxOutputTokens (Gemini''s thinkingBudget ceiling; thinking bills as '
    'output): a budget in money books it (google_ai_worst_call_cost). Null: the model''s thinking is within its '
    'answer''s limit (OpenAI''s reasoning, within max_completion_tokens) or it does not think. Where the figure came '
    'from: limits_source.';

COMMENT ON COLUMN public.google_ai_model_limits.itpm IS
    'Input tokens per minute per quota group, apart from output (Anthropic''s ITPM; null: none): a bucket of them '
    '(google_ai_bucket_take) that a request''s input is taken from on admission and settled at the answer''s input '
    '(cache reads left out unless itpm_counts_cache_reads).';

COMMENT ON COLUMN public.google_ai_model_limits.otpm IS
    'Output tokens per minute per quota group (Anthropic''s OTPM; null: none): a bucket that a request''s answer '
    '(its max_tokens, or booked_output_tokens) is taken from on admission, the unused part given back at the answer.';

COMMENT ON COLUMN public.google_ai_model_limits.itpm_counts_cache_reads IS
    'True: cache reads count toward itpm (Anthropic''s older models); false: they do not (its current ones).';

COMMENT ON COLUMN public.google_ai_model_limits.bucket_share IS
    'The limits'' shape. Null: RPM is a sliding minute only (Google, OpenAI), and itpm/otpm buckets hold a minute''s '
    'worth. Set: every limit is also a bucket holding this share of its minute''s limit, refilled continuously '
    '(Anthropic, whose capacity is not published: lower it when its 429s show a burst the minute allowed): RPM '
    'through the schedule of spread_until (then always kept, spread_burst not read), itpm and otpm through theirs.';

COMMENT ON COLUMN public.google_ai_model_limits.limit_pool IS
    'Rows that name one pool share one set of counts per quota group (one counter row, keyed by the pool''s name): '
    'Anthropic''s limits are a family''s (the Sonnet 4.x versions draw on one pool). Each request is held to its '
    'own row''s limits against the pool''s counts, so give the pool''s rows the same limits. Null: the model''s own.';

COMMENT ON COLUMN public.google_ai_model_limits.provider_limits IS
    'keep (the default): the group counts against this row''s limits; the limits its provider states are recorded '
    '(google_ai_usage_counters.stated_limits) and their difference shown. follow: a quota group''s effective limits '
    'are the ones its provider last stated for it (google_ai_followed_limits: a lowering at once, a raise when two '
    'answers agree), after safety_margin (the share kept back for callers outside the gateway) and never above a '
    'follow_ceiling_*; this row''s figures count until the provider has stated one. Only for providers whose every '
    'answer states its limits: OpenAI and Anthropic.';

COMMENT ON COLUMN public.google_ai_model_limits.follow_ceiling_rpm IS
    'A row that follows its provider (provider_limits follow): the most RPM the gateway counts against whatever the '
    'provider states (null: no ceiling). The same for follow_ceiling_tpm and follow_ceiling_rpd.';

COMMENT ON COLUMN public.google_ai_model_limits.rpd IS
    'Requests per day of the provider (its row''s day_zone) per quota group (null: no limit).';

COMMENT ON COLUMN public.google_ai_model_limits.aliases IS
    'Other names callers may use for this model (gemma-3-27b for gemma-3-27b-it).';

COMMENT ON COLUMN public.google_ai_model_limits.fallback_models IS
    'Models tried in this order when this one cannot serve a request within its wait (its day used up, cooling down, '
    'retired, no active key), for requests that name no fallback_models '
    'of their own. Names or aliases of other rows; at most 3.';

COMMENT ON COLUMN public.google_ai_model_limits.supports_tools IS
    'False: the model has no function calling (tools/toolConfig are '
    'refused with unsupported_feature). Null: as supports_json_mode.';

COMMENT ON COLUMN public.google_ai_model_limits.refuses_thinking_budget IS
    'True: the model decides how long it thinks and refuses a thinking budget (Anthropic''s thinking: {type: '
    '"enabled", budget_tokens} on Claude 5.x, whose thinking is adaptive): a request that sets one is refused '
    'with unsupported_feature before any call. False: a budget is passed on.';

COMMENT ON COLUMN public.google_ai_model_limits.refuses_sampling IS
    'True: the model refuses temperature, top_p and top_k other than their defaults (temperature 1, top_p 1, no '
    'top_k; Claude 5.x): a request that sets one is refused with unsupported_feature before any call. False: '
    'they are passed on.';

COMMENT ON COLUMN public.google_ai_model_limits.shutdown_date IS
    'The day its provider stops serving this model (its deprecations page); null: none announced. From that day '
    '(UTC, on the reservation''s clock) requests pass it over to its successor without a call.';

COMMENT ON COLUMN public.google_ai_model_limits.successor IS
    'The model its provider names as this one''s replacement (a name or alias of another row, or a model no row '
    'serves yet); it serves this model''s requests from its shutdown date on.';

COMMENT ON COLUMN public.google_ai_model_limits.withdrawn_at IS
    'When Google answered 404 NOT_FOUND for this model: requests pass over it without calling Google until the '
    'maintenance function finds it in models.list again or the operator clears it. Null: served.';

COMMENT ON COLUMN public.google_ai_model_limits.withdrawn_message IS
    'Google''s (sanitized) message of the 404 that withdrew the model.';

COMMENT ON COLUMN public.google_ai_model_limits.google_successor IS
    'The model the provider''s withdrawal answer names as the replacement (read by its dialect: Google''s ".. use '
    'models/X"), kept when the model is marked withdrawn: a suggestion for the operator. Requests go to it only '
    'through successor or fallback_models, which the operator sets (docs/models.md).';

COMMENT ON COLUMN public.google_ai_model_limits.limits_source IS
    'Where this row''s RPM/TPM/RPD come from (a page and the day it was read, or the project''s own quota page).';

COMMENT ON COLUMN public.google_ai_model_limits.supports_images IS
    'The model takes images as input. Null: not known (images are passed to Google, which decides).';

-- What one share's owner (google_ai_quota_shares) used of a quota group: the window as a ring of
-- seconds (google_ai_ring_at; window_requests its sum) and the provider's day's counts of day_bucket
-- (google_ai_day_counts). A counter row carries its model's shares' use (share_use), so a booking
-- writes one row.
CREATE TYPE public.google_ai_share_use AS (
    share_id bigint,
    window_requests integer,
    day_bucket date,
    day_used integer,
    day_next_used integer,
    day_prev_used integer,
    ring_low bigint,
    ring integer[]
);

CREATE TABLE public.google_ai_usage_counters (
    id bigserial NOT NULL,
    api_key_id uuid,
    model text,
    minute_bucket timestamp with time zone,
    day_bucket date,
    rpm_used integer DEFAULT 0 NOT NULL,
    tpm_used integer DEFAULT 0 NOT NULL,
    rpd_used integer DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    quota_group text,
    window_requests integer DEFAULT 0 NOT NULL,
    window_tokens bigint DEFAULT 0 NOT NULL,
    window_at timestamp with time zone,
    rpd_next_used integer DEFAULT 0 NOT NULL,
    rpd_prev_used integer DEFAULT 0 NOT NULL,
    spread_until timestamp with time zone,
    ring_low bigint,
    ring integer[],
    share_use public.google_ai_share_use[],
    input_until timestamp with time zone,
    output_until timestamp with time zone,
    stated_at timestamp with time zone,
    stated_heard integer[],
    stated_limits integer[],
    stated_since timestamp with time zone
)
WITH (fillfactor='70', autovacuum_vacuum_scale_factor='0.01', toast_tuple_target='8160');

COMMENT ON COLUMN public.google_ai_usage_counters.rpd_used IS
    'Requests booked in day_bucket (the provider''s day, in its row''s day_zone), carried across minute rollovers.';

COMMENT ON COLUMN public.google_ai_usage_counters.quota_group IS
    'Google Cloud project (or key:<id>) the row counts for. Null on rows written before the gateway.';

COMMENT ON COLUMN public.google_ai_usage_counters.window_requests IS
    'Requests in the sliding window (the last 60 s + minute guard): the sum of the ring''s counts.';

COMMENT ON COLUMN public.google_ai_usage_counters.rpd_next_used IS
    'Requests admitted within the day guard before midnight, counted for the provider''s next day too.';

COMMENT ON COLUMN public.google_ai_usage_counters.rpd_prev_used IS
    'Requests of the provider''s previous day, plus those admitted within the day guard after midnight.';

COMMENT ON COLUMN public.google_ai_usage_counters.spread_until IS
    'The schedule on which the window is handed out when the model is spread (google_ai_model_limits.spread_burst): '
    'every booking moves it one step (google_ai_spread_step); while requests wait (google_ai_spread_holds), a request '
    'may be booked once this is at most spread_burst - 1 steps ahead of now. Null: not spread, or nothing booked yet.';

-- (toast_tuple_target: a row with its rings and its shares' is about 1-4 kB; kept whole, a booking
-- neither compresses it when writing nor decompresses it when reading. Above the target, toasting
-- goes on as usual.)
COMMENT ON COLUMN public.google_ai_usage_counters.share_use IS
    'What the owners of the model''s shares used of this group, one element per share that booked here, in share id '
    'order: written with the row under its lock (a share removed leaves its element unread until the next booking).';

COMMENT ON COLUMN public.google_ai_usage_counters.input_until IS
    'The itpm bucket (google_ai_model_limits.itpm): when it is full again (google_ai_bucket_take). Null: full.';

COMMENT ON COLUMN public.google_ai_usage_counters.output_until IS
    'The otpm bucket (google_ai_model_limits.otpm): when it is full again (google_ai_bucket_take). Null: full.';

COMMENT ON COLUMN public.google_ai_usage_counters.stated_limits IS
    'The limits the provider states for this group (rpm, tpm, rpd, itpm, otpm; null: never stated), as applied '
    '(google_ai_note_stated: a lowering at once, a raise once two answers agree). A row that follows its provider '
    'books against them (google_ai_followed_limits); one that keeps its own shows them beside its own.';

COMMENT ON COLUMN public.google_ai_usage_counters.stated_heard IS
    'The figures the provider''s last answer stated (null: not stated): a raise is applied when the next agrees.';

COMMENT ON COLUMN public.google_ai_usage_counters.stated_at IS
    'When the provider last stated its limits for this group (refreshed at most once a minute when nothing changed).';

COMMENT ON COLUMN public.google_ai_usage_counters.stated_since IS
    'Since when stated_limits hold their figures (the last change applied).';

COMMENT ON COLUMN public.google_ai_usage_counters.ring IS
    'The sliding window as a ring of seconds from ring_low on (google_ai_ring_at): per second its admissions, their '
    'tokens, the first and the last one''s microsecond; window_requests and window_tokens are their sums.';

-- Why Google answered 429, as llm-invoke reads it from the answer's structure (QUOTA_CAUSES and
-- GROUP_CAUSES in functions/_shared/vocabulary.ts; tests/db/vocabulary.test.ts keeps this function and
-- both checks equal to them). The database's one list: finalize, the metrics and the rows' checks
-- (google_ai_is_quota_cause) read it here. p_rests_group: only the causes that rest every model of
-- the quota group (the spend-based rate limit, and money), not only the model asked. A new cause is an
-- edit of QUOTA_CAUSES and of this function. STABLE, so it is inlined where it is read.
CREATE OR REPLACE FUNCTION public.google_ai_quota_causes(p_rests_group boolean DEFAULT false) RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case when p_rests_group then array['spend_cap', 'monthly_cap', 'billing_cap', 'credits_depleted']
              else array['minute', 'day', 'limit_zero', 'spend_cap', 'monthly_cap', 'billing_cap', 'credits_depleted',
                         'unknown'] end
$$;

-- Whether p_cause is one of google_ai_quota_causes(): the rows' checks, a PL/pgSQL function as
-- google_ai_is_attempt_status is (15_request_log.sql says why; the list's function is inlined into its
-- plan, planned once per session). STRICT: a null cause passes unread.
CREATE OR REPLACE FUNCTION public.google_ai_is_quota_cause(p_cause text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
begin
  return p_cause = any (public.google_ai_quota_causes());
end
$$;

-- A quota group rests for one model until a time, e.g. after Google's own 429 named a retry delay,
-- or until the provider's midnight (its row's day_zone) after a per-day quota violation.
CREATE TABLE public.google_ai_cooldowns (
    quota_group text NOT NULL,
    model text NOT NULL,
    cooldown_until timestamp with time zone NOT NULL,
    reason text,
    quota_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    cause text,
    PRIMARY KEY (quota_group, model),
    CONSTRAINT google_ai_cooldowns_cause_check CHECK (public.google_ai_is_quota_cause(cause))
);

COMMENT ON COLUMN public.google_ai_cooldowns.cause IS
    'Why the group rests: a Google 429''s quota_cause (a spend cap or money - monthly_cap, billing_cap, '
    'credits_depleted - rests every model of the group: one row each).';

ALTER TABLE ONLY public.google_ai_api_keys
    ADD CONSTRAINT google_ai_api_keys_pkey PRIMARY KEY (id);

ALTER TABLE public.google_ai_model_limits
    ADD CONSTRAINT google_ai_model_limits_fallback_models_check CHECK ((cardinality(fallback_models) <= 3)) NOT VALID;

ALTER TABLE ONLY public.google_ai_model_limits
    ADD CONSTRAINT google_ai_model_limits_pkey PRIMARY KEY (id);

ALTER TABLE public.google_ai_model_limits
    ADD CONSTRAINT google_ai_model_limits_safety_margin_check CHECK (((safety_margin
      >= (0)::numeric) AND (safety_margin < (1)::numeric))) NOT VALID;

ALTER TABLE ONLY public.google_ai_usage_counters
    ADD CONSTRAINT google_ai_usage_counters_pkey PRIMARY KEY (id);

CREATE INDEX IF NOT EXISTS google_ai_api_keys_active_idx ON
    public.google_ai_api_keys USING btree (priority) WHERE is_active;

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_api_keys_key_alias_key ON public.google_ai_api_keys USING btree (key_alias);

CREATE INDEX IF NOT EXISTS google_ai_cooldowns_until_idx ON public.google_ai_cooldowns USING btree (cooldown_until);

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_model_limits_model_key ON public.google_ai_model_limits USING btree (model);

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_usage_counters_group_model_key ON public.google_ai_usage_counters USING
    btree (quota_group, model) WHERE (quota_group IS NOT NULL);

-- A limit after the model's safety margin; null means "no limit", 0 (or less) means "closed".
-- A positive limit never drops below 1, so a margin cannot silently close a model.
CREATE OR REPLACE FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when p_limit is null then null
                  when p_limit operator(pg_catalog.<=) 0 then 0
                  else greatest(1, pg_catalog.floor(p_limit operator(pg_catalog.*)
                         (1 operator(pg_catalog.-) coalesce(p_margin, 0))))::integer end $$;

-- A model row's limits in one quota group when it follows its provider (provider_limits 'follow'): each
-- limit the provider stated for the group (p_stated: the counter row's stated_limits, rpm, tpm, rpd, itpm,
-- otpm) in place of the row's, never above the row's ceiling (follow_ceiling_*), after the row's margin (the
-- share kept back for callers outside the gateway); a limit not stated stays as p_model has it (the row's,
-- after the margin: google_ai_request_limits; a ceiling alone changes nothing). Called by the booking under
-- the counter row's lock only for a row that follows, so a row that keeps its own pays one comparison.
CREATE OR REPLACE FUNCTION public.google_ai_followed_limits(p_model public.google_ai_model_limits,
    p_stated integer[]) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
  if p_stated is null then
    return p_model;
  end if;
  p_model.rpm := coalesce(public.google_ai_effective_limit(
    least(p_stated[1], coalesce(p_model.follow_ceiling_rpm, p_stated[1])), p_model.safety_margin), p_model.rpm);
  p_model.tpm := coalesce(public.google_ai_effective_limit(
    least(p_stated[2], coalesce(p_model.follow_ceiling_tpm, p_stated[2])), p_model.safety_margin), p_model.tpm);
  p_model.rpd := coalesce(public.google_ai_effective_limit(
    least(p_stated[3], coalesce(p_model.follow_ceiling_rpd, p_stated[3])), p_model.safety_margin), p_model.rpd);
  p_model.itpm := coalesce(public.google_ai_effective_limit(p_stated[4], p_model.safety_margin), p_model.itpm);
  p_model.otpm := coalesce(public.google_ai_effective_limit(p_stated[5], p_model.safety_margin), p_model.otpm);
  return p_model;
end
$$;

-- A model row by name or alias, active or not (an inactive row is a retired model that may still
-- name its fallbacks). An active row wins, then the row named exactly. (The active row named exactly,
-- when there is one, wins over any other: read first by its unique index, where the search of every
-- row's aliases and its sort cost about 25k instructions a model.)
CREATE OR REPLACE FUNCTION public.google_ai_model_by_name(p_model text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits;
begin
  v_row := (select l from public.google_ai_model_limits l where l.model = p_model and l.is_active);
  if v_row.id is not null then
    return v_row;
  end if;
  select l.* into v_row from public.google_ai_model_limits l
  where l.model = p_model or p_model = any (l.aliases)
  order by l.is_active desc, (l.model = p_model) desc, l.id
  limit 1;
  return v_row;
end
$$;

-- The quota group of a key: its project, else the key alone. The one definition every query uses.
-- Inlined by the planner into the queries that call it (plain SQL, immutable, no SET clause), so
-- it costs the reservation nothing; with no SET search_path, the body names everything by schema.
CREATE OR REPLACE FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select coalesce(p_project_id, 'key:' operator(pg_catalog.||) p_key_id::pg_catalog.text) $$;

-- The active model row a caller's name resolves to (by name, else by alias): google_ai_model_by_name's
-- row when it is active (an active row wins there).
CREATE OR REPLACE FUNCTION public.google_ai_resolve_model(p_model text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits := public.google_ai_model_by_name(p_model);
begin
  return case when v_row.is_active then v_row end;
end
$$;
