-- GENERATED from supabase/schemas by `npx tsx scripts/schemas-baseline.ts` when a release
-- squashed the migrations: never edit it. A change is an edit of supabase/schemas plus a later migration
-- holding only that change (supabase/MIGRATIONS.md).
-- The baseline: every schema file in name order, made safe for a project that already has the
-- owner's production tables (20261122000000_adopt_production_tables.sql ran first) and safe to
-- apply twice.
-- sha256 of what follows: 7cfa2918813c316e31fc41cd2745f799609743ee03599bc2ac2ff9d0cd7d7faf
CREATE OR REPLACE FUNCTION pg_temp.add_constraint_once(p_table regclass, p_name text, p_statement text)
RETURNS void LANGUAGE plpgsql AS $baseline$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = p_table AND conname = p_name) THEN
    EXECUTE p_statement;
  END IF;
END
$baseline$;

-- ================================================================================================
-- supabase/schemas/00_roles.sql
-- ================================================================================================

-- The Edge Functions' own role: it may call the gateway's RPCs and nothing else (grants in
-- 99_access.sql). Roles belong to the cluster, not to a schema: created once, never dropped.
-- On Supabase the operator gives it a password and login once (docs/deployment.md):
--   alter role eve_gateway with login password '<a long random password>';
do $$
begin
  create role eve_gateway nologin;
exception
  when duplicate_object then null;
end
$$;
-- ================================================================================================
-- supabase/schemas/05_settings.sql
-- ================================================================================================

-- The operator's settings, one row each, in one place so that every later file may read any of them
-- (a file names only what it or an earlier file defines): admission (how far it allows for Google's
-- clock), the queue (a turn's grace), maintenance (retention, when an open reservation counts as
-- abandoned). Each reads its defaults when its row is missing.
-- Every file sets check_function_bodies off, so a body may name a function of a later file; the
-- bodies are checked once the whole schema is loaded (shared/db/function-bodies.ts).
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_admission_settings (
    id boolean DEFAULT true NOT NULL PRIMARY KEY,
    minute_guard_ms integer DEFAULT 1000 NOT NULL CHECK (minute_guard_ms BETWEEN 0 AND 30000),
    day_guard_ms integer DEFAULT 5000 NOT NULL CHECK (day_guard_ms BETWEEN 0 AND 600000),
    recheck_ms integer DEFAULT 2000 NOT NULL CHECK (recheck_ms BETWEEN 100 AND 60000),
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_admission_settings_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_admission_settings IS
    'How far admission allows for Google''s clock: minute_guard_ms (>= the spread of network delays; the minute window '
    'is 60 s plus this), day_guard_ms (>= clock offset + delay at Pacific midnight), recheck_ms (how soon a TPM waiter '
    'asks again while tokens of its window may still be given back).';

CREATE OR REPLACE FUNCTION public.google_ai_admission_guard() RETURNS public.google_ai_admission_settings
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_settings public.google_ai_admission_settings;
begin
  select s.* into v_settings from public.google_ai_admission_settings s where s.id;
  if not found then
    v_settings := row(true, 1000, 5000, 2000, now())::public.google_ai_admission_settings;
  end if;
  return v_settings;
end
$$;

CREATE TABLE IF NOT EXISTS public.google_ai_queue_settings (
    id boolean DEFAULT true NOT NULL PRIMARY KEY,
    grace_ms integer DEFAULT 3000 NOT NULL CHECK (grace_ms BETWEEN 100 AND 60000),
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_queue_settings_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_queue_settings IS
    'The admission queue: grace_ms, how long a turn is kept for '
    'a waiter that has not called yet before its ticket lapses.';

-- One row (id = true). Edit it to tune retention; the function falls back to these defaults if the
-- row is missing.
CREATE TABLE IF NOT EXISTS public.google_ai_maintenance_settings (
    id boolean DEFAULT true NOT NULL PRIMARY KEY,
    attempts_retention interval DEFAULT '30 days' NOT NULL CHECK (attempts_retention >= '1 day'),
    stale_reservation_after interval DEFAULT '00:15:00' NOT NULL,
    token_grace interval DEFAULT '7 days' NOT NULL,
    cron_history_retention interval DEFAULT '7 days' NOT NULL,
    batch_size integer DEFAULT 5000 NOT NULL CHECK (batch_size BETWEEN 1 AND 100000),
    max_batches integer DEFAULT 100 NOT NULL,
    time_budget interval DEFAULT '00:02:00' NOT NULL,
    lock_timeout_ms integer DEFAULT 5000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    stored_response_lifetime interval DEFAULT '1 day' NOT NULL
      CHECK (stored_response_lifetime BETWEEN '00:01:00' AND '30 days'),
    CONSTRAINT google_ai_maintenance_settings_cron_history_check CHECK (cron_history_retention >= '01:00:00'),
    CONSTRAINT google_ai_maintenance_settings_lock_timeout_check CHECK (lock_timeout_ms BETWEEN 1 AND 600000),
    CONSTRAINT google_ai_maintenance_settings_max_batches_check CHECK (max_batches BETWEEN 1 AND 100000),
    CONSTRAINT google_ai_maintenance_settings_singleton CHECK (id),
    CONSTRAINT google_ai_maintenance_settings_stale_reservation_check CHECK (stale_reservation_after >= '00:07:00'),
    CONSTRAINT google_ai_maintenance_settings_time_budget_check CHECK (time_budget > '00:00:00'),
    CONSTRAINT google_ai_maintenance_settings_token_grace_check CHECK (token_grace >= '01:00:00')
);

COMMENT ON TABLE public.google_ai_maintenance_settings IS
    'Housekeeping settings (one row). attempts_retention: how long attempt rows are kept; stale_reservation_after: '
    'when an open reservation counts as abandoned; token_grace: how long expired/revoked tokens are kept; '
    'cron_history_retention: cron.job_run_details kept; batch_size/max_batches/time_budget: work per run; '
    'lock_timeout_ms: longest wait for a table lock; stored_response_lifetime: how long a Responses API conversation '
    'kept for previous_response_id lives (1 minute to 30 days, OpenAI''s own keeping).';
-- ================================================================================================
-- supabase/schemas/10_keys_and_limits.sql
-- ================================================================================================

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
CREATE TABLE IF NOT EXISTS public.google_ai_providers (
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

CREATE TABLE IF NOT EXISTS public.google_ai_api_keys (
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
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS id uuid DEFAULT gen_random_uuid() NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS key_alias text NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS provider text DEFAULT 'google'::text NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS env_var_name text NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS is_active boolean DEFAULT true NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS priority integer DEFAULT 100 NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS created_at timestamp with time zone DEFAULT now() NOT NULL;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS notes text;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS project_id text;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS models text[];
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS disabled_reason text;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS disabled_at timestamp with time zone;
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS updated_at timestamp with time zone DEFAULT now();
ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS serves_provider text GENERATED ALWAYS AS (public.google_ai_provider(provider)) STORED;

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

SELECT pg_temp.add_constraint_once('public.google_ai_api_keys', 'google_ai_api_keys_provider_fkey',
  $constraint$ALTER TABLE public.google_ai_api_keys
    ADD CONSTRAINT google_ai_api_keys_provider_fkey
        FOREIGN KEY (serves_provider) REFERENCES public.google_ai_providers(name) NOT VALID;$constraint$);

COMMENT ON COLUMN public.google_ai_api_keys.project_id IS
    'Google Cloud project, or OpenAI organization, of the key: keys of one project or organization share one '
    'quota group. Null: the key is its own group.';

CREATE TABLE IF NOT EXISTS public.google_ai_model_limits (
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
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS id serial NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS model text NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS rpm integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS tpm integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS rpd integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS created_at timestamp with time zone DEFAULT now() NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS updated_at timestamp with time zone DEFAULT now() NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS is_active boolean DEFAULT true NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS safety_margin numeric(4,3) DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS notes text;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS aliases text[] DEFAULT '{}'::text[] NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS supports_system_instruction boolean DEFAULT true NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS supports_json_mode boolean DEFAULT true NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS fallback_models text[] DEFAULT '{}'::text[] NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS supports_tools boolean;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS shutdown_date date;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS successor text;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS withdrawn_at timestamp with time zone;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS withdrawn_message text;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS limits_source text;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS supports_images boolean;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS spread_burst integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS google_successor text;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS provider text DEFAULT 'google'::text NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS booked_output_tokens integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS max_thinking_tokens integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS bucket_share numeric(4,3);
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS itpm integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS itpm_counts_cache_reads boolean DEFAULT false NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS limit_pool text;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS otpm integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS refuses_thinking_budget boolean DEFAULT false NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS refuses_sampling boolean DEFAULT false NOT NULL;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS follow_ceiling_rpd integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS follow_ceiling_rpm integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS follow_ceiling_tpm integer;
ALTER TABLE public.google_ai_model_limits ADD COLUMN IF NOT EXISTS provider_limits text DEFAULT 'keep'::text NOT NULL;
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_provider_limits_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_provider_limits_check
      CHECK ((provider_limits = 'keep'::text OR (provider_limits = 'follow'::text
              AND provider = ANY (ARRAY['openai'::text, 'anthropic'::text]))));$constraint$);
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_booked_output_tokens_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_booked_output_tokens_check CHECK ((booked_output_tokens >= 1));$constraint$);
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_itpm_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_itpm_check CHECK ((itpm >= 1));$constraint$);
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_otpm_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_otpm_check CHECK ((otpm >= 1));$constraint$);
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_bucket_share_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_bucket_share_check
      CHECK (((bucket_share > (0)::numeric) AND (bucket_share <= (1)::numeric)));$constraint$);
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_spread_burst_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_spread_burst_check CHECK ((spread_burst >= 1));$constraint$);
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_provider_fkey',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_provider_fkey FOREIGN KEY (provider) REFERENCES public.google_ai_providers(name) NOT VALID;$constraint$);

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
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_share_use') IS NULL THEN
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
  END IF;
END
$type$;

CREATE TABLE IF NOT EXISTS public.google_ai_usage_counters (
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
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS id bigserial NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS api_key_id uuid;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS model text;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS minute_bucket timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS day_bucket date;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS rpm_used integer DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS tpm_used integer DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS rpd_used integer DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS updated_at timestamp with time zone DEFAULT now() NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS quota_group text;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS window_requests integer DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS window_tokens bigint DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS window_at timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS rpd_next_used integer DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS rpd_prev_used integer DEFAULT 0 NOT NULL;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS spread_until timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS ring_low bigint;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS ring integer[];
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS share_use public.google_ai_share_use[];
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS input_until timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS output_until timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS stated_at timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS stated_heard integer[];
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS stated_limits integer[];
ALTER TABLE public.google_ai_usage_counters ADD COLUMN IF NOT EXISTS stated_since timestamp with time zone;
ALTER TABLE public.google_ai_usage_counters SET (fillfactor='70', autovacuum_vacuum_scale_factor='0.01', toast_tuple_target='8160');

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
CREATE TABLE IF NOT EXISTS public.google_ai_cooldowns (
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

SELECT pg_temp.add_constraint_once('public.google_ai_api_keys', 'google_ai_api_keys_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_api_keys
    ADD CONSTRAINT google_ai_api_keys_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_fallback_models_check',
  $constraint$ALTER TABLE public.google_ai_model_limits
    ADD CONSTRAINT google_ai_model_limits_fallback_models_check CHECK ((cardinality(fallback_models) <= 3)) NOT VALID;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_model_limits
    ADD CONSTRAINT google_ai_model_limits_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_safety_margin_check',
  $constraint$ALTER TABLE public.google_ai_model_limits
    ADD CONSTRAINT google_ai_model_limits_safety_margin_check CHECK (((safety_margin
      >= (0)::numeric) AND (safety_margin < (1)::numeric))) NOT VALID;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_usage_counters', 'google_ai_usage_counters_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_usage_counters
    ADD CONSTRAINT google_ai_usage_counters_pkey PRIMARY KEY (id);$constraint$);

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
-- ================================================================================================
-- supabase/schemas/15_request_log.sql
-- ================================================================================================

-- The request log: one attempt row per reservation (google_ai_attempts: who, which model and key,
-- outcome, tokens, tiers and times, the holder's deadlines) and the idempotency records of a
-- (caller, request id) (google_ai_responses); a refusal's cause, and an error made fit for a row.
set check_function_bodies = off;

-- Whether p_status is an attempt row's status (ATTEMPT_STATUSES in functions/_shared/vocabulary.ts):
-- the check of google_ai_attempts.status (why a function: below).
CREATE OR REPLACE FUNCTION public.google_ai_is_attempt_status(p_status text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
begin
  return p_status = any ('{reserved,refused,succeeded,upstream_error,network_error,timeout,cut,withdrawn,released,
    abandoned}'::text[]);
end
$$;

-- One row per reservation decision: a refusal, or a reservation that later becomes the outcome of
-- one call to the model's provider (succeeded, upstream_error, network_error, timeout, cut, withdrawn)
-- or is released.
-- Never holds a key, a token or a secret: keys are named by alias, callers by label.
-- (Its checks ask PL/pgSQL functions that hold the lists, or inline the list's own SQL function,
-- google_ai_quota_causes(), into their plan: PostgreSQL reads a table's checks again from
-- their stored text in every statement that writes a row, a list constant byte by byte, and parses a SQL
-- function's body again, where a PL/pgSQL body is planned once per session. Counted: about 60k
-- instructions less an attempt row written than the two lists written out in the checks.)
CREATE TABLE IF NOT EXISTS public.google_ai_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL PRIMARY KEY,
    reservation_id uuid DEFAULT gen_random_uuid() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    status text NOT NULL,
    request_id text,
    caller text NOT NULL,
    client_id uuid,
    token_id uuid,
    model text NOT NULL,
    requested_model text,
    attempt smallint DEFAULT 1 NOT NULL,
    api_key_id uuid,
    key_alias text,
    quota_group text,
    minute_bucket timestamp with time zone,
    day_bucket date,
    estimated_tokens integer,
    input_tokens integer,
    output_tokens integer,
    limit_hit text,
    retry_after_ms bigint,
    http_status integer,
    error_code text,
    quota_id text,
    error_message text,
    latency_ms integer,
    wait_ms integer,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    priority_class text,
    quota_cause text,
    service_tier text,
    served_tier text,
    added_ms integer,
    first_byte_ms integer,
    reply_by timestamp with time zone,
    hold_until timestamp with time zone,
    holder uuid,
    refusal_cause text,
    admitted_at timestamp with time zone,
    booked_usd numeric,
    cached_input_tokens integer,
    cost_usd numeric,
    thinking_tokens integer,
    booked_output_tokens integer,
    cache_write_1h_tokens integer,
    cache_write_5m_tokens integer,
    requests integer DEFAULT 1 NOT NULL,
    CONSTRAINT google_ai_attempts_requests_check CHECK ((requests >= 1)),
    CONSTRAINT google_ai_attempts_quota_cause_check CHECK (public.google_ai_is_quota_cause(quota_cause)),
    CONSTRAINT google_ai_attempts_status_check CHECK (public.google_ai_is_attempt_status(status))
)
WITH (fillfactor='80');

COMMENT ON TABLE public.google_ai_attempts IS
    'Audit log: one row per reservation decision and its outcome. Secrets never appear here.';

COMMENT ON COLUMN public.google_ai_attempts.admitted_at IS
    'When the booking counted the request in its quota group''s window (the second of its ring slot, '
    'google_ai_ring_at); null for a refusal.';

COMMENT ON COLUMN public.google_ai_attempts.cached_input_tokens IS
    'Of input_tokens, those the provider read from its cache (Google''s cachedContentTokenCount, OpenAI''s '
    'cached_tokens); null: not said.';

COMMENT ON COLUMN public.google_ai_attempts.booked_output_tokens IS
    'Of estimated_tokens, the answer an admission took from the model''s otpm bucket (its max_tokens), the rest '
    'from its itpm bucket (google_ai_token_buckets); settled at the answer (google_ai_settle_admission). Null: '
    'the model has no such bucket.';

COMMENT ON COLUMN public.google_ai_attempts.cache_write_1h_tokens IS
    'Of input_tokens, those the provider wrote to its cache to live an hour (Anthropic''s '
    'cache_creation.ephemeral_1h_input_tokens), priced apart; null: none said.';

COMMENT ON COLUMN public.google_ai_attempts.requests IS
    'The requests this attempt is at its provider, booked at once in every count of requests (window, day, shares, '
    'budgets) and given back together: 1, or an embedding batch''s inputs where the model''s row counts each input '
    '(google_ai_embedding_models.counts_each_input).';

COMMENT ON COLUMN public.google_ai_attempts.cache_write_5m_tokens IS
    'Of input_tokens, those the provider wrote to its cache to live 5 minutes (Anthropic''s '
    'cache_creation.ephemeral_5m_input_tokens), priced apart; null: none said.';

COMMENT ON COLUMN public.google_ai_attempts.thinking_tokens IS
    'Of output_tokens, the model''s thinking (Google''s thoughtsTokenCount, OpenAI''s reasoning_tokens); '
    'null: not said.';

COMMENT ON COLUMN public.google_ai_attempts.cost_usd IS
    'What the call cost in US dollars, set when it settles (google_ai_call_cost): the provider''s counts at its '
    'model''s price; null: not known (no price, or a call that may have been billed without counts).';

COMMENT ON COLUMN public.google_ai_attempts.booked_usd IS
    'The worst case the reservation booked in its client''s budget in money (google_ai_count_budgets), settled on '
    'cost_usd when the call ends; null: no budget in money.';

COMMENT ON COLUMN public.google_ai_attempts.priority_class IS 'The class the request was queued and admitted in.';

COMMENT ON COLUMN public.google_ai_attempts.quota_cause IS
    'For a Google 429: why, read from Google''s body; one of google_ai_quota_causes() (docs/google-429s.md says '
    'what each means).';

COMMENT ON COLUMN public.google_ai_attempts.refusal_cause IS
    'For a refusal: why, one meaning each (google_ai_refusal_cause): an admission cause (the list: ADMISSION_CAUSES '
    'in functions/_shared/vocabulary.ts; docs/llm-invoke.md#errors says what each means), or the request''s own '
    'reason, its limit_hit.';

COMMENT ON COLUMN public.google_ai_attempts.service_tier IS
    'The service tier the gateway asked Google for (flex, priority); null: standard.';

COMMENT ON COLUMN public.google_ai_attempts.served_tier IS
    'The service tier Google says served the call (its x-gemini-service-tier header); null: not said.';

COMMENT ON COLUMN public.google_ai_attempts.added_ms IS
    'Of a request''s final attempt: the time llm-invoke spent outside Google''s call and the wait for capacity '
    '(Server-Timing total less google and wait).';

COMMENT ON COLUMN public.google_ai_attempts.first_byte_ms IS
    'Of a request''s final attempt: from the request''s arrival '
    'to the first byte of its answer (a stream''s first chunk).';

COMMENT ON COLUMN public.google_ai_attempts.reply_by IS
    'When the statement that made this row stopped waiting for '
    'its answer; a reservation not committed by then is rolled back.';

COMMENT ON COLUMN public.google_ai_attempts.hold_until IS
    'When the holder of this row''s request will have made its next statement about it, or be gone; the request''s '
    'in-flight claim lasts until then.';

COMMENT ON COLUMN public.google_ai_attempts.holder IS
    'The invocation whose statement made this row (its request''s holder), when it named one.';

-- What came of one attempt at the provider, as finalize takes it (google_ai_finalize, 60_life_cycle.sql):
-- one record from the caller's JSON (jsonb_populate_record: a key it does not know is ignored, one it
-- lacks is null) to every step of finalize, and what google_ai_call_cost prices. kind: succeeded,
-- upstream_error, network_error, timeout; cut (a stream broken off, cut_by client or upstream: settled as
-- a success, marked cut); withdrawn (the provider no longer serves the model: the booking given back, the
-- model row marked, successor its suggestion). A usage field is one attribute here and one line of
-- llm-invoke's mapper (store/attempt-outcome.ts), beside the column it is written to.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_attempt_outcome') IS NULL THEN
    CREATE TYPE public.google_ai_attempt_outcome AS (
    kind text,
    input_tokens integer,
    output_tokens integer,
    cached_input_tokens integer,
    thinking_tokens integer,
    cache_write_5m_tokens integer,
    cache_write_1h_tokens integer,
    settled_tokens integer,
    http_status integer,
    error_code text,
    error_message text,
    quota_id text,
    quota_cause text,
    latency_ms integer,
    added_ms integer,
    first_byte_ms integer,
    cooldown_until timestamp with time zone,
    cooldown_until_provider_midnight boolean,
    response jsonb,
    key_rejected boolean,
    service_tier text,
    served_tier text,
    room_requests integer,
    room_tokens integer,
    room_until timestamp with time zone,
    stated_limits integer[],
    cut_by text,
    successor text
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_attempt_outcome IS
    'What came of one attempt at the provider, as finalize takes it: its kind (succeeded, upstream_error, '
    'network_error, timeout, cut, withdrawn), the provider''s counts and answer, the rest it asks for '
    '(cooldown_until, or until the provider''s midnight), its room and the limits it states.';

-- Finalize's first half, as its second takes it (google_ai_write_outcome, 60_life_cycle.sql): att, the
-- attempt row written, whose admission is still to settle (null where none is); answer, finalize's answer.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_outcome_written') IS NULL THEN
    CREATE TYPE public.google_ai_outcome_written AS (
    att public.google_ai_attempts,
    answer jsonb
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_outcome_written IS
    'Finalize''s first half: the attempt row written, its admission still to settle (null where none is), '
    'and finalize''s answer.';

-- A caller that names its request (its own request_id) may repeat it safely: while the first call
-- is in flight the row is 'in_progress' with a lease (expires_at), and a repeat is refused; once it
-- succeeded the row is 'done' with the answer, replayed for 24 hours (housekeeping deletes older
-- rows). Holds model output, never a key or a token.
CREATE TABLE IF NOT EXISTS public.google_ai_responses (
    caller text NOT NULL,
    request_id text NOT NULL,
    status text DEFAULT 'done' NOT NULL CHECK (status IN ('in_progress', 'done')),
    model text,
    response jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    holder uuid,
    PRIMARY KEY (caller, request_id)
);

COMMENT ON TABLE public.google_ai_responses IS
    'Idempotency records of requests that carried the caller''s own '
    'request_id: in flight (with a lease) or done (answer replayed for 24 h).';

COMMENT ON COLUMN public.google_ai_responses.holder IS
    'The invocation holding this in-flight claim (its request''s holder); '
    'null until its first reservation, or for a claim made without one.';

CREATE INDEX IF NOT EXISTS google_ai_attempts_caller_idx ON public.google_ai_attempts USING btree (caller, created_at);

CREATE INDEX IF NOT EXISTS google_ai_attempts_client_idx ON public.google_ai_attempts USING btree (client_id,
    created_at) WHERE (client_id IS NOT NULL);

CREATE INDEX IF NOT EXISTS google_ai_attempts_created_at_idx ON public.google_ai_attempts USING btree (created_at);

-- The admissions of a quota group's window, for what the ring of counts cannot say: which class made
-- them (the queue's likely turn), which are still in flight (a TPM waiter's recheck, finalize's count
-- against the provider's room).
-- Those statements run under the entry functions' generic plans (58_admission.sql), planned without
-- their values: on the owner's log one quota group and one model are nearly every row, so the group and
-- the model select the whole table, and a window open at one end (admitted_at > $now - $window) is
-- guessed at a third of it, which a sequential scan beats. Each therefore reads its window as a range
-- closed on both sides (admitted_at > $from and admitted_at < 'infinity', the same rows), which a generic
-- plan guesses at half a percent: the index's range, whatever the spread of groups and models.
-- (An index on the statements' status = 'reserved' would end finalize's heap-only updates: finalize
-- changes status, and a partial index's predicate counts as one of its columns.)
CREATE INDEX IF NOT EXISTS google_ai_attempts_window_idx ON public.google_ai_attempts USING btree (quota_group, model,
    admitted_at) WHERE (admitted_at IS NOT NULL);

CREATE INDEX IF NOT EXISTS google_ai_attempts_request_id_idx ON
    public.google_ai_attempts USING btree (request_id) WHERE (request_id IS NOT NULL);

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_attempts_reservation_id_key
    ON public.google_ai_attempts USING btree (reservation_id);

CREATE INDEX IF NOT EXISTS google_ai_responses_created_at_idx ON public.google_ai_responses USING btree (created_at);

-- Why a refusal was made, from its limit when nothing finer is known (the booking names window_full,
-- share_kept or spread for rpm and tpm, queue_turn for a turn kept for earlier tickets): a full window
-- (rpm, tpm), the provider's day (rpd), a paced share (pace), a provider's cooldown (upstream_cooldown), a
-- budget (token, client or caller); any other limit is the request's own reason and is its own cause. The
-- limits and causes are listed once, in functions/_shared/vocabulary.ts (refusalCauseOf); tests/db/vocabulary.test.ts
-- asks this function about each.
CREATE OR REPLACE FUNCTION public.google_ai_refusal_cause(p_limit text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_limit in ('rpm', 'tpm') then 'window_full'
              when p_limit = 'rpd' then 'day_exhausted'
              when p_limit = 'cooldown' then 'upstream_cooldown'
              when p_limit in ('token_budget', 'client_budget', 'caller_budget') then 'budget'
              else p_limit end
$$;

-- An error message fit for the log: known secret shapes redacted (the same shapes as the functions'
-- sanitize.ts), control characters flattened, length capped.
CREATE OR REPLACE FUNCTION public.google_ai_sanitize_error(p_message text,
    p_max_length integer DEFAULT 500) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
begin
  return left(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
      coalesce(p_message, ''),
      'AIza[0-9A-Za-z_-]{10,}', '[redacted]', 'g'),
      '\msk-[0-9A-Za-z_-]{8,}', '[redacted]', 'g'),
      '(sb_secret_|evegw_tok_|evegw_cs_)[0-9A-Za-z_-]+', '[redacted]', 'g'),
      'eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*', '[redacted]', 'g'),
      '([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@', '\1[redacted]@', 'gi'),
      '\m(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
      '[[:cntrl:]]+', ' ', 'g'),
    greatest(p_max_length, 1));
end
$$;
-- ================================================================================================
-- supabase/schemas/20_windows.sql
-- ================================================================================================

-- Windows on the providers' clocks: a provider's day (midnight to midnight in its row's day_zone), the
-- owner's Pacific day, the sliding minute window (60 s plus a guard) as a ring of seconds, and the
-- spread's schedule.
set check_function_bodies = off;

-- date_trunc with a time zone is STABLE, so the minute is too (an IMMUTABLE declaration over it kept
-- the planner from inlining it).
CREATE OR REPLACE FUNCTION public.google_ai_minute_window(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ select pg_catalog.date_trunc('minute', p_at, 'UTC') $$;

-- The answer of finalize and release for a reservation that is not open (any more).
CREATE OR REPLACE FUNCTION public.google_ai_not_open(p_reservation_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return jsonb_build_object('ok', false, 'error', 'not_open',
    'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id));
end
$$;

-- The owner's day: Pacific time, midnight to midnight (23, 24 or 25 hours), the day and month of every
-- budget (a caller's or client's requests, tokens and money). The zone is named here only. A quota
-- group's day (RPD, its shares' day and pace) is its provider's (google_ai_day_in and the two below).
CREATE OR REPLACE FUNCTION public.google_ai_pacific_zone() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select 'America/Los_Angeles'::text $$;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_at at time zone public.google_ai_pacific_zone())::pg_catalog.date $$;

-- The moment the Pacific day after p_at's begins.
CREATE OR REPLACE FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select ((public.google_ai_pacific_day(p_at) operator(pg_catalog.+) 1)::pg_catalog.timestamp
                  at time zone public.google_ai_pacific_zone()) $$;

-- A provider's day: midnight to midnight in its zone (google_ai_providers.day_zone, which
-- google_ai_day_zone reads), 23, 24 or 25 hours where the zone keeps summer time.
CREATE OR REPLACE FUNCTION public.google_ai_day_in(p_at timestamp with time zone, p_zone text) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_at at time zone p_zone)::pg_catalog.date $$;

-- The moment day p_day begins in zone p_zone.
CREATE OR REPLACE FUNCTION public.google_ai_day_start_in(p_day date, p_zone text) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_day::pg_catalog.timestamp at time zone p_zone) $$;

CREATE OR REPLACE FUNCTION public.google_ai_midnight_after_in(p_at timestamp with time zone, p_zone text)
    RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select public.google_ai_day_start_in(public.google_ai_day_in(p_at, p_zone) operator(pg_catalog.+) 1,
                                               p_zone) $$;

-- The zone the day of p_model's provider turns in (its provider row's day_zone; UTC, the column's
-- default, for a model no row names). PL/pgSQL, so its one lookup keeps its plan (a SQL function
-- that is not inlined is planned on every call), and a call to it leaves an expression simple.
CREATE OR REPLACE FUNCTION public.google_ai_day_zone(p_model text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
begin
  return coalesce((select p.day_zone from public.google_ai_model_limits m
                   join public.google_ai_providers p on p.name = m.provider
                   where m.model = p_model), 'UTC');
end
$$;

-- The guarded sliding window: Google's minute plus the guard (google_ai_admission_settings.minute_guard_ms)
-- that holds whatever Google's window, clock or delay is.
CREATE OR REPLACE FUNCTION public.google_ai_window_length(p_minute_guard_ms integer) RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select ((60000 operator(pg_catalog.+) p_minute_guard_ms) operator(pg_catalog.*) interval '1 millisecond') $$;

-- A row's day counts as of Pacific day p_day, as {today's, counted ahead for tomorrow, yesterday's}.
-- The row keeps the counts of its day_bucket: used, counted ahead for the next day (the guard before
-- midnight), and the day before's (the guard after it). A row of yesterday carries today's guard
-- count; an older row counts nothing.
CREATE OR REPLACE FUNCTION public.google_ai_day_counts(p_bucket date, p_used integer, p_next integer, p_prev integer,
    p_day date) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_bucket operator(pg_catalog.=) p_day
              then array[coalesce(p_used, 0), coalesce(p_next, 0), coalesce(p_prev, 0)]
              when p_bucket operator(pg_catalog.=) (p_day operator(pg_catalog.-) 1)
              then array[coalesce(p_next, 0), 0, coalesce(p_used, 0)]
              else array[0, 0, 0] end
$$;

-- The spread of a model's window (p_burst: google_ai_model_limits.spread_burst): each quota group hands its
-- window out on a schedule (google_ai_usage_counters.spread_until, a GCRA "theoretical arrival
-- time"), one step per request: p_window / RPM, or the request's tokens' part of p_window / TPM when
-- that is longer (limit_name says which). Every booking moves it one step on (google_ai_spread_next);
-- while the spread holds (google_ai_spread_holds: requests wait), a request may be booked when the
-- schedule is at most tolerance = (spread_burst - 1) RPM steps ahead of now.
-- So under a flood at most spread_burst requests go at once, then one per step, and capacity comes
-- back to the window a request at a time instead of all at once a window later. Microseconds are
-- rounded up: the schedule never runs faster than the limit. All null: the model is not spread (asked
-- first, before any arithmetic: most rows are not). (PL/pgSQL: a SQL function that is not inlined is
-- planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_spread_step(p_burst integer, p_window interval, p_rpm integer,
    p_tpm integer, p_tokens integer, OUT step interval, OUT tolerance interval, OUT limit_name text) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_window_us numeric;
  v_request_us numeric;
  v_token_us numeric;
begin
  if p_burst is null or (p_rpm is null and p_tpm is null) then
    return;
  end if;
  v_window_us := extract(epoch from p_window) * 1000000;
  v_request_us := case when p_rpm > 0 then ceil(v_window_us / p_rpm) end;
  v_token_us := case when p_tpm > 0 then ceil(v_window_us * greatest(p_tokens, 0) / p_tpm) end;
  limit_name := case when coalesce(v_token_us, 0) > coalesce(v_request_us, 0) then 'tpm' else 'rpm' end;
  step := greatest(v_request_us, v_token_us, 0) * interval '1 microsecond';
  tolerance := (p_burst - 1) * coalesce(v_request_us, greatest(v_token_us, 0)) * interval '1 microsecond';
end
$$;

-- The schedule a quota group's slots keep for a waiter in the queue, as the booking keeps it at the
-- group's RPM (p_rpm: the model row's, or the one its provider stated for the group): the spread's step
-- and tolerance (a request bucket, bucket_share, for every class), and whether it holds the waiter's slots
-- back (spaced: a bucket always, a spread only for a waiter some class ranks before, p_ranked). Null
-- step: not spread.
CREATE OR REPLACE FUNCTION public.google_ai_queue_spread(p_model public.google_ai_model_limits, p_rpm integer,
    p_window interval, p_ranked boolean, OUT step interval, OUT tolerance interval, OUT spaced boolean)
    RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_spread record;
begin
  v_spread := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_rpm * p_model.bucket_share))::integer end, p_window, p_rpm, null, 0);
  step := v_spread.step;
  tolerance := v_spread.tolerance;
  spaced := step is not null and (p_model.bucket_share is not null or p_ranked);
end
$$;

-- The schedule after a booking at p_now: one step after the booking's place. A sliding window's spread
-- (p_grid) keeps its grid for a booking at most half a step after its place (its waiter woke a little
-- late), so waking up late does not cost the window capacity under sustained demand; one later than
-- that (the schedule fell behind: nobody asked) starts it again from now. A bucket (not p_grid) refills
-- from its last taking, however late that came: a step after the later of its place and now, so no two
-- bookings of a bucket of one are closer than its step. Null step: not spread (null). STABLE, as
-- timestamptz minus an interval is: so it is inlined into the booking's statement, not called.
CREATE OR REPLACE FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone,
    p_now timestamp with time zone, p_step interval, p_grid boolean) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case
    when p_spread_until operator(pg_catalog.>=) (p_now operator(pg_catalog.-)
           case when p_grid then p_step operator(pg_catalog./) 2 else interval '0' end)
              then p_spread_until else p_now end operator(pg_catalog.+) p_step
$$;

-- A bucket: a limit of p_limit a window (p_window, the guarded minute) refilled continuously, never
-- reset, as Anthropic counts (its capacity unpublished: p_share of the limit, null all of it). Its
-- state is one time, p_until: when it is full again (null or past: full now), a GCRA's "theoretical
-- arrival time" per token, as spread_until is per request. A request of p_cost fits when the bucket
-- holds that much, or when it is full (a request larger than the bucket empties a full one, rather
-- than waiting for ever). until: the state after taking it (p_until when it does not fit); opens_at:
-- null when it fits, else when it will. Microseconds are rounded up: it never refills faster than the
-- limit. No limit: nothing taken. (PL/pgSQL: a SQL function that is not inlined is planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_bucket_take(p_until timestamp with time zone,
    p_now timestamp with time zone, p_window interval, p_limit integer, p_share numeric, p_cost integer,
    OUT until timestamp with time zone, OUT opens_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_token_us numeric := extract(epoch from p_window) * 1000000 / p_limit;
  v_holds numeric := greatest(floor(p_limit * coalesce(p_share, 1)), 1, p_cost);
begin
  until := p_until;
  if p_limit is null then
    return;
  end if;
  until := greatest(p_until, p_now) + ceil(greatest(p_cost, 0) * v_token_us) * interval '1 microsecond';
  if until - ceil(v_holds * v_token_us) * interval '1 microsecond' > p_now then
    opens_at := until - ceil(v_holds * v_token_us) * interval '1 microsecond';
    until := p_until;
  end if;
end
$$;

-- A ring of seconds with its sums, as google_ai_ring_at answers it (its four parameters of the same names,
-- moved) and google_ai_ring_counted takes it. (A named type: a function with OUT parameters builds its
-- result's shape again on every call.)
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_ring') IS NULL THEN
    CREATE TYPE public.google_ai_ring AS (
    ring_low bigint,
    ring integer[],
    sum_requests integer,
    sum_tokens bigint
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_ring IS 'A sliding window''s ring of seconds and its sums (google_ai_ring_at).';

-- A ring started again at p_at, p_span seconds long (google_ai_ring_at, when it counts nothing, the
-- guard changed its span, or it last moved a span or more ago): the seconds of the old ring still in
-- the window are kept, the others let go. (A longer guard cannot bring back the seconds let go.)
CREATE OR REPLACE FUNCTION public.google_ai_ring_restarted(p_at timestamp with time zone, p_window interval,
    p_span integer, INOUT ring_low bigint, INOUT ring integer[], INOUT sum_requests integer,
    INOUT sum_tokens bigint) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_old integer[] := case when coalesce(sum_requests, 0) > 0 and ring_low is not null then ring end;
  v_old_span integer := coalesce(cardinality(v_old) / 4, 0);
  v_from bigint := greatest(coalesce(ring_low, v_now), v_now - v_old_span + 1);
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
  v_i integer;
begin
  ring := pg_catalog.array_fill(0, array[4 * p_span]);
  sum_requests := 0;
  sum_tokens := case when sum_tokens is not null then 0 end;
  for k in 0 .. least(v_now, coalesce(ring_low, v_now) + v_old_span - 1) - v_from loop
    v_s := v_from + k;
    v_i := (v_s % v_old_span)::integer * 4;
    continue when v_old[v_i + 1] = 0 or v_s <= v_now - p_span
               or public.google_ai_ring_time(v_s, v_old[v_i + 4]) + p_window <= p_at;
    ring[(v_s % p_span)::integer * 4 + 1 : (v_s % p_span)::integer * 4 + 4] := v_old[v_i + 1 : v_i + 4];
    sum_requests := sum_requests + v_old[v_i + 1];
    sum_tokens := sum_tokens + v_old[v_i + 2];
  end loop;
  ring_low := case when v_old is null then v_now else v_now - p_span + 1 end;
end
$$;

-- The sliding window as a ring of seconds, kept on the row it limits (google_ai_usage_counters,
-- google_ai_share_use): one integer array, four entries per second of admissions - their count,
-- their tokens, the first and the last of their times (microseconds into the second) - for the
-- span = 1 + the guarded window in whole seconds (second s at (s % span) * 4 + 1), and the sums of
-- the counts beside it. A second's first admission leaves the window on time (first + p_window), the
-- others with its last (their tokens too): exact for up to two admissions a second, never early, at
-- most one second late. ring_low: every second below it has left.
-- This moves the ring (its four parameters of google_ai_ring's names) to p_at (null: where it is),
-- letting go what left the window, then counts p_requests and p_tokens at p_at (a booking now here,
-- anything else google_ai_ring_counted). Tokens are kept when sum_tokens is not null. (The ring's
-- fields loose, not the ring whole: on the reserve's path a ring built to be passed cost 6.6k
-- instructions a call more, counted.)
CREATE OR REPLACE FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval,
    ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint,
    p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0) RETURNS public.google_ai_ring
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  -- (date_part: a double is exact to the microsecond here, and far cheaper than extract's numeric.)
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_us integer;
  v_i integer;
begin
  if v_now is not null and (ring is null or ring_low is null or coalesce(sum_requests, 0) = 0
                            or cardinality(ring) <> 4 * v_span or v_now - ring_low >= v_span) then
    -- Nothing counted, the guard changed, or a span or more passed since it moved (the seconds up to
    -- now - span have left whatever their times: their last admission was at most the guarded window
    -- ago): the ring starts again at p_at.
    select r.ring_low, r.ring, r.sum_requests, r.sum_tokens into ring_low, ring, sum_requests, sum_tokens
    from public.google_ai_ring_restarted(p_at, p_window, v_span, ring_low, ring, sum_requests, sum_tokens) r;
  end if;
  if ring is null then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  -- Up to the current second: empty seconds are passed, full ones let go as their admissions leave.
  while ring_low < v_now loop
    v_i := (ring_low % v_span)::integer * 4;
    if ring[v_i + 1] > 0 then
      if public.google_ai_ring_time(ring_low, ring[v_i + 4]) + p_window <= p_at then
        sum_requests := sum_requests - ring[v_i + 1];
        sum_tokens := sum_tokens - ring[v_i + 2];
        ring[v_i + 1 : v_i + 4] := '{0,0,0,0}';
      else
        if ring[v_i + 3] < ring[v_i + 4] and public.google_ai_ring_time(ring_low, ring[v_i + 3]) + p_window <= p_at then
          sum_requests := sum_requests - 1;
          ring[v_i + 1] := ring[v_i + 1] - 1;
          ring[v_i + 3] := ring[v_i + 4];
        end if;
        exit; -- (every later second's admissions are later than this one's last)
      end if;
    end if;
    ring_low := ring_low + 1;
  end loop;
  if p_requests = 0 and p_tokens = 0 then
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  if p_requests > 0 and p_tokens >= 0 and v_now is not null then
    -- A booking now (nearly every call): the lines below in smaller expressions (they cost by size: 90k less).
    v_i := (v_now % v_span)::integer * 4;
    v_us := round((date_part('epoch', p_at) - v_now) * 1000000)::integer;
    ring[v_i + 1 : v_i + 4] := array[ring[v_i + 1] + p_requests,
      ring[v_i + 2] + case when sum_tokens is not null then p_tokens else 0 end,
      case when ring[v_i + 1] = 0 then v_us else least(ring[v_i + 3], v_us) end, greatest(ring[v_i + 4], v_us)];
    sum_requests := sum_requests + p_requests;
    sum_tokens := sum_tokens + p_tokens;
    return row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring;
  end if;
  return public.google_ai_ring_counted(row(ring_low, ring, sum_requests, sum_tokens)::public.google_ai_ring,
    p_window, p_at, p_requests, p_tokens, false);
end
$$;

-- The ring p_ring of window p_window (google_ai_ring_at), not moved, with p_requests and p_tokens
-- counted in the second of p_at while that second is in the ring: a correction (p_correction: a request
-- given back, the provider's count of its tokens, in the second of its admission: none for a second
-- that left), or a booking google_ai_ring_at does not count as one now. Negative: never below nothing; a
-- request given back leaves the others of its second with the last (which of them it was is not
-- known), and one from before the second's first left already, with it.
CREATE OR REPLACE FUNCTION public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval,
    p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean)
    RETURNS public.google_ai_ring
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_second bigint := floor(date_part('epoch', p_at))::bigint;
  v_us integer := round((date_part('epoch', p_at) - v_second) * 1000000)::integer;
  v_i integer := (v_second % v_span)::integer * 4;
  ring integer[];
  v_count integer; v_tokens integer;  -- the second's count and tokens after this
begin
  if p_ring.ring is null or (p_requests = 0 and p_tokens = 0) or v_second < p_ring.ring_low
     or v_second >= p_ring.ring_low + v_span or (p_correction and p_ring.ring[v_i + 1] = 0) then
    return p_ring;
  end if;
  ring := p_ring.ring;
  v_count := case when p_requests > 0 or v_us >= ring[v_i + 3] then greatest(0, ring[v_i + 1] + p_requests)
                  else ring[v_i + 1] end;
  v_tokens := case when p_ring.sum_tokens is not null then greatest(0, ring[v_i + 2] + p_tokens)
                   else ring[v_i + 2] end;
  p_ring.sum_requests := p_ring.sum_requests + v_count - ring[v_i + 1];
  p_ring.sum_tokens := p_ring.sum_tokens + v_tokens - ring[v_i + 2];
  -- The second written as one slice: element by element, PL/pgSQL unpacks the whole array and packs it
  -- again (counted: about 40k instructions more a booking). Its first and last times: a booking's when it
  -- is the second's first, else the earliest and latest; a request given back leaves the last.
  ring[v_i + 1 : v_i + 4] := case
    when v_count = 0 then '{0,0,0,0}'::integer[]
    when p_requests > 0 and v_count = p_requests then array[v_count, v_tokens, v_us, v_us]
    when p_requests > 0 then array[v_count, v_tokens, least(ring[v_i + 3], v_us), greatest(ring[v_i + 4], v_us)]
    when p_requests < 0 then array[v_count, v_tokens, ring[v_i + 4], ring[v_i + 4]]
    else array[v_count, v_tokens, ring[v_i + 3], ring[v_i + 4]] end;
  return row(p_ring.ring_low, ring, p_ring.sum_requests, p_ring.sum_tokens)::public.google_ai_ring;
end
$$;

-- The moment p_us microseconds into second p_second of the epoch (to_timestamp rounds to the
-- microsecond, far coarser than a double's error here).
CREATE OR REPLACE FUNCTION public.google_ai_ring_time(p_second bigint, p_us integer) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select pg_catalog.to_timestamp(p_second::double precision operator(pg_catalog.+)
                                         (p_us::double precision operator(pg_catalog./) 1000000)) $$;

-- When the oldest second of a ring that counts anything next lets something go (google_ai_ring_at):
-- a request when its first admission leaves, tokens (p_tokens) when its last does; null when it
-- counts nothing.
CREATE OR REPLACE FUNCTION public.google_ai_ring_frees_at(p_ring_low bigint, p_ring integer[], p_window interval,
    p_tokens boolean DEFAULT false) RETURNS timestamp with time zone
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_span integer := cardinality(p_ring) / 4;
  v_i integer;
begin
  -- (Offsets from p_ring_low: a FOR variable is an integer, and epoch seconds pass 2^31 in 2038.)
  for k in 0 .. coalesce(v_span, 0) - 1 loop
    v_i := ((p_ring_low + k) % v_span)::integer * 4;
    if p_ring[v_i + case when p_tokens then 2 else 1 end] > 0 then
      return public.google_ai_ring_time(p_ring_low + k, p_ring[v_i + case when p_tokens then 4 else 3 end]) + p_window;
    end if;
  end loop;
  return null;
end
$$;

-- When each admission a ring counts leaves the window (google_ai_ring_at: a second's first admission on
-- time, the others with its last), oldest first.
CREATE OR REPLACE FUNCTION public.google_ai_ring_expiries(p_ring_low bigint, p_ring integer[], p_window interval)
    RETURNS timestamp with time zone[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
  -- Each second r.s (an offset from p_ring_low: epoch seconds pass 2^31 in 2038) at r.i, its n-th admission.
  return coalesce((
    select array_agg(public.google_ai_ring_time(r.s, p_ring[r.i + case when n = 1 then 3 else 4 end]) + p_window
                     order by r.s, n)
    from generate_series(0, cardinality(p_ring) / 4 - 1) k
    cross join lateral (select p_ring_low + k as s, ((p_ring_low + k) % (cardinality(p_ring) / 4))::integer * 4 as i) r
    cross join lateral generate_series(1, p_ring[r.i + 1]) n), '{}');
end
$$;

-- Milliseconds from p_now until p_at, rounded up (a caller that waits that long is not early); 0 if past,
-- null if there is no such time. (int8larger, not greatest: it keeps a null, and p_at is named once, so
-- the function is inlined even when p_at is a call.)
CREATE OR REPLACE FUNCTION public.google_ai_ms_until(p_at timestamp with time zone,
    p_now timestamp with time zone) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select pg_catalog.int8larger(0, pg_catalog.ceil(extract(epoch from (p_at operator(pg_catalog.-) p_now))
                                                         operator(pg_catalog.*) 1000)::bigint) $$;

-- A quota group's counter row as of an instant, the one setup that booking (google_ai_book_group), the
-- quota read (google_ai_group_quota) and settling (google_ai_settle_admission) share, and the rules take
-- whole: at, the instant; minute, the guarded window (google_ai_window_length), and day_guard; the
-- provider's day at it (zone), its counts (google_ai_day_counts: today's, ahead for tomorrow,
-- yesterday's), the next midnight and the day's start, and whether at is within the guard of either
-- (near_end, near_start: the other day's count binds too); the ring (google_ai_ring_at) moved on to at.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_counter_at') IS NULL THEN
    CREATE TYPE public.google_ai_counter_at AS (
    at timestamp with time zone,
    minute interval,
    day_guard interval,
    zone text,
    day date,
    counts integer[],
    midnight timestamp with time zone,
    day_start timestamp with time zone,
    near_end boolean,
    near_start boolean,
    ring_low bigint,
    ring integer[],
    sum_requests integer,
    sum_tokens bigint
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_counter_at IS
    'A quota group''s counter row as of an instant (google_ai_counter_at): the guards, the provider''s day, its '
    'counts, midnight, near-end, near-start and the ring moved on, as booking, the quota read and settling read them.';

-- The counter row p_row as of p_at in zone p_zone (google_ai_counter_at, the type): the ring with p_requests and
-- p_tokens more counted at p_at. Under the row's lock (p_locked) neither the clock nor the day goes back
-- past the row's; a settle (p_settled) counts them in p_at's second without moving the ring on.
-- (One return of one row: a field assigned at a time costs more.)
CREATE OR REPLACE FUNCTION public.google_ai_counter_at(p_row public.google_ai_usage_counters, p_zone text,
    p_at timestamp with time zone, p_locked boolean, p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0,
    p_settled boolean DEFAULT false) RETURNS public.google_ai_counter_at
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_at timestamptz := case when p_locked then greatest(p_at, p_row.window_at) else p_at end;
  v_minute interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_day date := greatest(public.google_ai_day_in(v_at, p_zone), case when p_locked then p_row.day_bucket end);
  v_midnight timestamptz := public.google_ai_midnight_after_in(v_at, p_zone);
  v_start timestamptz := public.google_ai_day_start_in(v_day, p_zone);
  v_ring record := case when p_settled
    then public.google_ai_ring_counted(row(p_row.ring_low, p_row.ring, p_row.window_requests,
           coalesce(p_row.window_tokens, 0))::public.google_ai_ring, v_minute, v_at, p_requests, p_tokens, true)
    else public.google_ai_ring_at(v_at, v_minute, p_row.ring_low, p_row.ring, p_row.window_requests,
           coalesce(p_row.window_tokens, 0), p_requests, p_tokens) end;
begin
  return row(v_at, v_minute, v_day_guard, p_zone, v_day, public.google_ai_day_counts(p_row.day_bucket, p_row.rpd_used,
    p_row.rpd_next_used, p_row.rpd_prev_used, v_day), v_midnight, v_start, v_at >= v_midnight - v_day_guard,
    v_at < v_start + v_day_guard, v_ring.ring_low, v_ring.ring, v_ring.sum_requests,
    v_ring.sum_tokens)::public.google_ai_counter_at;
end
$$;
-- ================================================================================================
-- supabase/schemas/22_priority_classes.sql
-- ================================================================================================

-- Priority classes: who goes first when requests wait (interactive before batch), and what part of a
-- model's window and day each class keeps for itself by default.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_priority_classes (
    name text NOT NULL PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    rank smallint NOT NULL UNIQUE,
    description text,
    kept_rpm_percent numeric(5,2),
    kept_rpd_percent numeric(5,2),
    kept_changed_at timestamp with time zone,
    CONSTRAINT google_ai_priority_classes_kept_rpm_check CHECK (kept_rpm_percent > 0 AND kept_rpm_percent <= 100),
    CONSTRAINT google_ai_priority_classes_kept_rpd_check CHECK (kept_rpd_percent > 0 AND kept_rpd_percent <= 100)
);

COMMENT ON TABLE public.google_ai_priority_classes IS
    'Admission order between waiting requests: lower rank first. A credential allows its class and the lower ones.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_rpm_percent IS
    'Percent of every model''s RPM kept for this class, as a derived row of google_ai_quota_shares per model (rounded '
    'down, at least 1 request, below 100% never the whole limit). Null: none.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_rpd_percent IS
    'Percent of every model''s RPD kept for this class, as kept_rpm_percent. Null: none.';

COMMENT ON COLUMN public.google_ai_priority_classes.kept_changed_at IS
    'When a kept percent was last set or cleared; null: never (the seed writes its default percents only then).';
-- ================================================================================================
-- supabase/schemas/25_models.sql
-- ================================================================================================

-- Models: key health and the model catalogue the maintenance function keeps, the profile, traits,
-- features and list llm-invoke reads, aliases owned by one row, the life cycle review, service tiers.
set check_function_bodies = off;

-- The last check of each key against its provider's model list (Google's models.list, OpenAI's GET
-- /v1/models): ok (the list answered), invalid (the provider refused the key; the key was taken out of
-- rotation), missing_secret (no Edge secret under env_var_name; reported only), error (anything else:
-- 429, 5xx, network; nothing concluded).
CREATE TABLE IF NOT EXISTS public.google_ai_key_health (
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

CREATE TABLE IF NOT EXISTS public.google_ai_model_catalogue (
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
CREATE TABLE IF NOT EXISTS public.google_ai_service_tiers (
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
CREATE TABLE IF NOT EXISTS public.google_ai_model_prices (
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
-- ================================================================================================
-- supabase/schemas/30_shares_and_budgets.sql
-- ================================================================================================

-- Reserved shares: part of a model's RPM/RPD kept for a class or a caller, an owner's day paced, the
-- owners' use counted under the counter-row lock; and an admission settled when its attempt ends
-- (capacity given back at once, the shares' too). Budgets: 32_budgets.sql.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_quota_shares (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL PRIMARY KEY,
    model text NOT NULL REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE,
    priority_class text REFERENCES public.google_ai_priority_classes(name) ON UPDATE CASCADE ON DELETE CASCADE,
    caller text CHECK (caller ~ '^[A-Za-z0-9._:@-]{1,80}$'),
    reserved_rpm integer,
    reserved_rpd integer,
    pace_burst integer,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    derived_from_class boolean DEFAULT false NOT NULL,
    CONSTRAINT google_ai_quota_shares_owner_key UNIQUE NULLS NOT DISTINCT (model, priority_class, caller),
    CONSTRAINT google_ai_quota_shares_one_owner CHECK ((num_nonnulls(priority_class, caller) = 1)),
    CONSTRAINT google_ai_quota_shares_pace_check CHECK ((pace_burst >= 0)),
    CONSTRAINT google_ai_quota_shares_rpd_check CHECK ((reserved_rpd >= 0)),
    CONSTRAINT google_ai_quota_shares_rpm_check CHECK ((reserved_rpm >= 0)),
    CONSTRAINT google_ai_quota_shares_something CHECK ((num_nonnulls(reserved_rpm, reserved_rpd, pace_burst) >= 1))
);

COMMENT ON TABLE public.google_ai_quota_shares IS
    'Per model, the requests of each quota group''s RPM/RPD kept for one owner (a priority class or a caller), and the '
    'optional pacing of the owner''s day (pace_burst; only for a model with an RPD). Others may book only what the '
    'owners'' unused shares leave over; an owner may use the whole limit.';

COMMENT ON COLUMN public.google_ai_quota_shares.derived_from_class IS
    'True: the row is the class''s kept percents applied to the model (google_ai_priority_classes.kept_rpm_percent, '
    'kept_rpd_percent), kept in step by triggers. An operator''s edit of the row makes it the operator''s (false); '
    'setting it back to true re-derives it.';

-- What a model's shares keep, as an answer's quota names it: of the RPM and of the RPD, the sizes of
-- the shares kept for other owners and of those kept for the requester, each at most the limit; null
-- for a limit the model does not have.
CREATE OR REPLACE FUNCTION public.google_ai_kept_object(p_rpm integer, p_rpd integer, p_rpm_for_others bigint,
    p_rpm_for_you bigint, p_rpd_for_others bigint, p_rpd_for_you bigint) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select jsonb_build_object(
    'rpm_for_others', case when p_rpm is not null then least(p_rpm, coalesce(p_rpm_for_others, 0)) end,
    'rpm_for_you', case when p_rpm is not null then least(p_rpm, coalesce(p_rpm_for_you, 0)) end,
    'rpd_for_others', case when p_rpd is not null then least(p_rpd, coalesce(p_rpd_for_others, 0)) end,
    'rpd_for_you', case when p_rpd is not null then least(p_rpd, coalesce(p_rpd_for_you, 0)) end)
$$;

-- What a paced owner may have used of day p_day (its provider's, in zone p_zone) at p_at: the burst,
-- plus the part of the usable requests that the elapsed part of the day (23, 24 or 25 hours) earns.
CREATE OR REPLACE FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer,
    p_usable integer, p_zone text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select p_burst + floor(greatest(0, p_usable)::numeric
             * least(greatest(extract(epoch from p_at - d.s), 0), extract(epoch from d.e - d.s))
             / extract(epoch from d.e - d.s))::integer
    from (select public.google_ai_day_start_in(p_day, p_zone) as s,
                 public.google_ai_day_start_in(p_day + 1, p_zone) as e) d);
end
$$;

-- A class's default share: its kept percents (google_ai_priority_classes.kept_rpm_percent,
-- kept_rpd_percent) applied to every model, held as ordinary share rows marked derived_from_class,
-- so the booking reads them like any other share. Triggers keep them in step: a model inserted or
-- its limits changed re-derives its rows, a percent changed re-derives the class's rows on every
-- model, and an operator's edit of a derived row makes it the operator's.

-- The requests a percent keeps of an effective limit: rounded down, but at least 1 request (10% of
-- 5 RPM keeps 1, not 0), and below 100% never the whole limit, so that others keep at least 1 (a
-- limit of 1 keeps nothing); null without a percent or without a limit.
CREATE OR REPLACE FUNCTION public.google_ai_kept_requests(p_limit integer, p_percent numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
  select case when p_limit is null or p_percent is null then null
              when p_percent >= 100 then greatest(p_limit, 0)
              when p_limit <= 1 then 0
              else least(p_limit - 1, greatest(1, floor(p_limit * p_percent / 100)))::integer end
$$;

-- The derived share rows the kept percents call for: per model (p_model, or every model when null)
-- and class (p_class, or every class when null), what the class keeps of the model's effective
-- RPM and RPD (null: nothing of that limit). A pair keeping nothing of either has no row.
CREATE OR REPLACE FUNCTION public.google_ai_derived_shares(p_model text, p_class text) RETURNS TABLE(model text,
    priority_class text, reserved_rpm integer, reserved_rpd integer)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd
  from (select l.model, c.name as priority_class,
               public.google_ai_kept_requests(public.google_ai_effective_limit(l.rpm, l.safety_margin),
                                              c.kept_rpm_percent) as reserved_rpm,
               public.google_ai_kept_requests(public.google_ai_effective_limit(l.rpd, l.safety_margin),
                                              c.kept_rpd_percent) as reserved_rpd
        from public.google_ai_model_limits l
        cross join public.google_ai_priority_classes c
        where (p_model is null or l.model = p_model) and (p_class is null or c.name = p_class)) d
  where d.reserved_rpm is not null or d.reserved_rpd is not null
$$;

-- The derived shares follow what they derive from. Before a class's kept percents are written (set or
-- cleared): when, for the seed (kept_changed_at). After the write, the derived rows of the model
-- (inserted, or its limits or safety margin changed: v_model), or of the class on every model (v_class),
-- are brought in step: a derived row is updated, or removed when the class keeps nothing of the model any
-- more, and a missing one is inserted; a row the operator owns for the same model and class
-- (derived_from_class false) is left as it is, and none is derived beside it. A share's owner counts
-- (google_ai_usage_counters.share_use) stay with its row; a removed row's are no longer read.
CREATE OR REPLACE FUNCTION public.google_ai_derives_shares() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text;
  v_class text;
begin
  if tg_when = 'BEFORE' then
    if tg_op = 'INSERT' and (new.kept_rpm_percent is not null or new.kept_rpd_percent is not null)
       or tg_op = 'UPDATE' and (new.kept_rpm_percent, new.kept_rpd_percent)
                               is distinct from (old.kept_rpm_percent, old.kept_rpd_percent) then
      new.kept_changed_at := pg_catalog.now();
    end if;
    return new;
  elsif tg_table_name = 'google_ai_model_limits' then
    v_model := new.model;
  else
    v_class := new.name;
  end if;
  -- Tells the shares' trigger that these writes are the derivation's, not an operator's edit.
  perform pg_catalog.set_config('google_ai.deriving_shares', 'on', true);
  delete from public.google_ai_quota_shares s
  where s.derived_from_class
    and (v_model is null or s.model = v_model) and (v_class is null or s.priority_class = v_class)
    and not exists (select 1 from public.google_ai_derived_shares(s.model, s.priority_class));
  update public.google_ai_quota_shares s set reserved_rpm = d.reserved_rpm, reserved_rpd = d.reserved_rpd
  from public.google_ai_derived_shares(v_model, v_class) d
  where s.derived_from_class and s.model = d.model and s.priority_class = d.priority_class and s.caller is null
    and (s.reserved_rpm, s.reserved_rpd) is distinct from (d.reserved_rpm, d.reserved_rpd);
  insert into public.google_ai_quota_shares (model, priority_class,
    reserved_rpm, reserved_rpd, derived_from_class, notes)
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd, true,
         'Derived from the class''s kept percents (google_ai_priority_classes); an edit makes the row the operator''s.'
  from public.google_ai_derived_shares(v_model, v_class) d
  on conflict on constraint google_ai_quota_shares_owner_key do nothing;
  perform pg_catalog.set_config('google_ai.deriving_shares', '', true);
  return null;
end
$$;

-- A write to a share row that is not the derivation's: an edit of a derived row's numbers makes the
-- row the operator's (derived_from_class false: no later derivation touches it); a model or class
-- renamed (the foreign keys' cascade) leaves it derived. A row marked derived by the operator
-- (inserted so, or set back to true) takes the class's numbers now.
CREATE OR REPLACE FUNCTION public.google_ai_share_edited() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_derived record;
begin
  if coalesce(pg_catalog.current_setting('google_ai.deriving_shares', true), '') = 'on' then
    return new;
  end if;
  if tg_op = 'UPDATE' and old.derived_from_class and new.derived_from_class then
    if (new.reserved_rpm, new.reserved_rpd, new.pace_burst)
       is distinct from (old.reserved_rpm, old.reserved_rpd, old.pace_burst) then
      new.derived_from_class := false;
    end if;
    return new;
  end if;
  if new.derived_from_class then
    select * into v_derived from public.google_ai_derived_shares(new.model, new.priority_class) d
    where new.caller is null;
    if not found then
      raise exception using errcode = '23514', message = 'a derived share belongs to a class that keeps part of the '
        || 'model (google_ai_priority_classes.kept_rpm_percent, kept_rpd_percent); this one keeps nothing of '
        || new.model;
    end if;
    new.reserved_rpm := v_derived.reserved_rpm;
    new.reserved_rpd := v_derived.reserved_rpd;
    new.pace_burst := null;
  end if;
  return new;
end
$$;

CREATE OR REPLACE TRIGGER google_ai_model_derives_shares AFTER INSERT OR UPDATE OF rpm, rpd,
    safety_margin ON public.google_ai_model_limits FOR EACH ROW EXECUTE FUNCTION public.google_ai_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_class_kept_changed BEFORE INSERT OR UPDATE OF kept_rpm_percent,
    kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION
    public.google_ai_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_class_derives_shares AFTER INSERT OR UPDATE OF kept_rpm_percent,
    kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW
    EXECUTE FUNCTION public.google_ai_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_share_edited BEFORE INSERT OR UPDATE ON public.google_ai_quota_shares FOR EACH ROW
    WHEN (new.derived_from_class) EXECUTE FUNCTION public.google_ai_share_edited();

-- The shares' use (google_ai_usage_counters.share_use) with a request more or less counted for the
-- shares of p_owned, in their window (google_ai_ring_at) and in their group's day. p_at: the counter as
-- of the booking or the admission (google_ai_counter_at): its instant (at), window (minute), day (day;
-- the other day's counts too within a guard of midnight: near_end, near_start). A booking (p_requests: 1,
-- or a request's several at its provider, google_ai_attempts.requests) at p_at.at moves each owner's day
-- on to p_at.day; p_live: the model's shares in id order, whose elements the result keeps (a removed
-- share's go). A release (p_live null: every element is kept) gives back p_requests (-its requests, or 0
-- for an admission the window does not look for) in the second of its admission p_at.at, and as many of
-- a day still counted (p_at.day: its day_bucket; one when the window does not look for it).
CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[],
    p_owned bigint[], p_at public.google_ai_counter_at, p_requests integer) RETURNS public.google_ai_share_use[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_use public.google_ai_share_use[] := '{}'::public.google_ai_share_use[];
  v_ids bigint[] := p_live;
  v_day_requests integer := p_requests;
  v_at timestamptz := p_at.at;  -- a booking's: the ring moves on to it
  v_admitted_at timestamptz;  -- a release's
  v_id bigint;
  v_old public.google_ai_share_use;
  v_new public.google_ai_share_use;
  v_days integer[];
  v_ring record;
begin
  if v_ids is null then
    -- A release. (The ids apart, so that the loop's expression stays a simple one, not a query.)
    v_ids := array(select u.share_id from unnest(p_use) u);
    v_day_requests := case when p_requests < 0 then p_requests else -1 end;
    v_admitted_at := v_at;
    v_at := null;
  end if;
  foreach v_id in array v_ids loop
    v_old := null;
    for i in 1 .. coalesce(cardinality(p_use), 0) loop
      if (p_use[i]).share_id = v_id then
        v_old := p_use[i];
        exit;
      end if;
    end loop;
    if not coalesce(v_id = any(p_owned), false) or (v_day_requests < 0 and v_old.share_id is null) then
      if v_old.share_id is not null then
        v_use := v_use || v_old;
      end if;
      continue;
    end if;
    -- (A booking moves the ring on, keeping its fields loose; a release corrects its admission's second.)
    v_ring := case when v_admitted_at is null
                   then public.google_ai_ring_at(v_at, p_at.minute, v_old.ring_low, v_old.ring, v_old.window_requests,
                          null, p_requests, 0)
                   else public.google_ai_ring_counted(row(v_old.ring_low, v_old.ring, v_old.window_requests,
                          null)::public.google_ai_ring, p_at.minute, v_admitted_at, p_requests, 0, true) end;
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if v_day_requests > 0 or v_old.day_bucket = p_at.day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_at.day);
      v_new.day_bucket := p_at.day;
      v_new.day_used := greatest(0, v_days[1] + v_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_at.near_end then v_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_at.near_start then v_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$$;

-- Settles an admission on its counter row: finalize sets its tokens to Google's count (p_tokens),
-- release gives back the request (its requests: google_ai_attempts.requests) in its minute, day and window
-- (and in its owners' shares), and a
-- model's token buckets get back what the call did not use (google_ai_admission_settled), on the row of its
-- pool when it names one (google_ai_model_limits.limit_pool). The window is corrected in the second the
-- admission counts in (google_ai_attempts.admitted_at) while that second is still in the ring; one that left
-- it changes only the calendar counters. The row is locked, settled in hand and written
-- (google_ai_write_settled); several finalizes written together settle theirs in hand and write each row once
-- (google_ai_finalize_calls).
CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer,
    p_released boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model)
  for update;
  if not found then
    return;
  end if;
  perform public.google_ai_write_settled(public.google_ai_admission_settled(v_row, v_model, p_att, p_tokens,
    p_released));
end
$$;

-- The counter row p_row (p_att's, locked) with p_att settled at p_tokens (released: given back whole), as
-- google_ai_settle_admission says, computed on the row in hand and not written. p_model: p_att's model row.
CREATE OR REPLACE FUNCTION public.google_ai_admission_settled(p_row public.google_ai_usage_counters,
    p_model public.google_ai_model_limits, p_att public.google_ai_attempts, p_tokens integer, p_released boolean)
    RETURNS public.google_ai_usage_counters
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_at public.google_ai_counter_at;  -- the row as of the admission, corrected in its second
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and p_att.admitted_at is not null then -p_att.requests else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  v_window_us numeric;
  -- The tokens a bucket gets back: what was booked less what was used.
  v_input_back integer;
  v_output_back integer;
  v_new public.google_ai_usage_counters := p_row;
begin
  -- Counted for the other day too when admitted within the day guard of a midnight of the provider's day
  -- (near_end, near_start: only a release gives those counts back; a finalize reads no zone).
  v_at := public.google_ai_counter_at(p_row, case when p_released then public.google_ai_day_zone(p_att.model) end,
    p_att.admitted_at, false, v_requests, case when p_att.admitted_at is not null then v_delta else 0 end, true);
  v_at.day := p_att.day_bucket;  -- (the day it counted in, which its owners' shares give back: its row's)
  -- The token buckets (itpm, otpm: google_ai_schedule_place) get back what the admission booked (its answer,
  -- booked_output_tokens, and its input, the rest of estimated_tokens where the row books answers in its
  -- tokens) less what the call used, as Anthropic corrects its estimates at the end: the answer's input (its
  -- cache reads left out unless the row counts them) and output. Released: all of it. No count from the
  -- provider: the input stays, the answer goes back when the settled count (p_tokens) gave it back (a call
  -- refused before generating). A call that used more than it booked takes nothing more. What goes back
  -- moves a bucket's time back (google_ai_bucket_take), rounded down: never more than was taken; no limit
  -- (after the margin, as the booking took it: google_ai_request_limits), or nothing back: as it was.
  if p_att.booked_output_tokens is not null then
    v_input_back := p_att.estimated_tokens - case when p_model.booked_output_tokens is not null
                                                  then p_att.booked_output_tokens else 0 end;
    v_output_back := p_att.booked_output_tokens;
    if not p_released and p_att.input_tokens is not null then
      v_input_back := v_input_back - (p_att.input_tokens
        - case when p_model.itpm_counts_cache_reads then 0 else coalesce(p_att.cached_input_tokens, 0) end);
      v_output_back := v_output_back - coalesce(p_att.output_tokens, 0);
    elsif not p_released then
      v_input_back := 0;
      v_output_back := case when p_tokens < p_att.estimated_tokens then v_output_back else 0 end;
    end if;
    p_model.itpm := public.google_ai_effective_limit(p_model.itpm, p_model.safety_margin);
    p_model.otpm := public.google_ai_effective_limit(p_model.otpm, p_model.safety_margin);
    v_window_us := extract(epoch from v_at.minute) * 1000000;
    if p_model.itpm is not null and coalesce(v_input_back, 0) > 0 then
      v_new.input_until := p_row.input_until
        - floor(v_window_us * v_input_back / p_model.itpm) * interval '1 microsecond';
    end if;
    if p_model.otpm is not null and coalesce(v_output_back, 0) > 0 then
      v_new.output_until := p_row.output_until
        - floor(v_window_us * v_output_back / p_model.otpm) * interval '1 microsecond';
    end if;
  end if;

  if p_released and p_row.minute_bucket = p_att.minute_bucket then
    v_new.rpm_used := greatest(0, p_row.rpm_used - p_att.requests);
  end if;
  if p_row.minute_bucket = p_att.minute_bucket then
    v_new.tpm_used := greatest(0, p_row.tpm_used + v_delta);
  end if;
  if p_released and p_row.day_bucket = p_att.day_bucket then
    v_new.rpd_used := greatest(0, p_row.rpd_used - p_att.requests);
    if v_at.near_end then
      v_new.rpd_next_used := greatest(0, p_row.rpd_next_used - p_att.requests);
    end if;
    if v_at.near_start then
      v_new.rpd_prev_used := greatest(0, p_row.rpd_prev_used - p_att.requests);
    end if;
  end if;
  v_new.ring := v_at.ring;
  v_new.window_requests := v_at.sum_requests;
  v_new.window_tokens := v_at.sum_tokens;
  if p_released and p_row.share_use is not null then
    v_new.share_use := public.google_ai_share_use_counted(p_row.share_use, null,
      array(select s.id from public.google_ai_quota_shares s
            where s.model = p_att.model and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
      v_at, v_requests);
  end if;
  return v_new;
end
$$;

-- Writes what settling changed on a counter row (google_ai_admission_settled), locked by the transaction.
CREATE OR REPLACE FUNCTION public.google_ai_write_settled(p_row public.google_ai_usage_counters) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  update public.google_ai_usage_counters c set
    rpm_used = p_row.rpm_used, tpm_used = p_row.tpm_used, rpd_used = p_row.rpd_used,
    rpd_next_used = p_row.rpd_next_used, rpd_prev_used = p_row.rpd_prev_used,
    ring = p_row.ring, window_requests = p_row.window_requests, window_tokens = p_row.window_tokens,
    input_until = p_row.input_until, output_until = p_row.output_until, share_use = p_row.share_use
  where c.id = p_row.id;
end
$$;
-- ================================================================================================
-- supabase/schemas/32_budgets.sql
-- ================================================================================================

-- Budgets: what a scoped token may spend over its life, and a Kaggle client or a service caller per
-- Pacific day and month, in one shape (google_ai_budget) over the owners' own columns; a service
-- caller's budgets (google_ai_caller_budgets), which the booking checks under their lock
-- (google_ai_caller_budget_at, 50_booking.sql, where the request it takes is known).
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_caller_budgets (
    caller text NOT NULL PRIMARY KEY,
    daily_max_requests integer,
    daily_max_tokens integer,
    day_bucket date,
    requests_today integer DEFAULT 0 NOT NULL,
    tokens_today bigint DEFAULT 0 NOT NULL,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    daily_max_usd numeric,
    month_bucket date,
    monthly_max_usd numeric,
    spent_month_usd numeric DEFAULT 0 NOT NULL,
    spent_today_usd numeric DEFAULT 0 NOT NULL,
    CONSTRAINT google_ai_caller_budgets_caller_check CHECK (((caller ~ '^[A-Za-z0-9._:@-]{1,80}$'::text) AND (caller !~*
      '^client:'::text))),
    CONSTRAINT google_ai_caller_budgets_requests_check CHECK ((daily_max_requests >= 0)),
    CONSTRAINT google_ai_caller_budgets_tokens_check CHECK ((daily_max_tokens >= 0))
);

COMMENT ON TABLE public.google_ai_caller_budgets IS
    'Requests and input tokens a service caller may book per Pacific day (null: no limit); requests_today and '
    'tokens_today are booked with each reservation. Refusal caller_budget until Pacific midnight.';

COMMENT ON COLUMN public.google_ai_caller_budgets.daily_max_usd IS
    'The most the caller''s calls may cost in US dollars per Pacific day (monthly_max_usd: per Pacific month; null: '
    'no limit), booked and settled as a client''s (google_ai_clients.daily_max_usd). Refusal caller_budget.';

-- A budget, whoever keeps it: a scoped token for its life (period life), a client or a service caller per
-- Pacific day and month (period day). Read from the owner's row by google_ai_budget_of, judged by
-- google_ai_budget_verdict, counted by google_ai_budget_counted; the owner's columns are not renamed.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_budget') IS NULL THEN
    CREATE TYPE public.google_ai_budget AS (
    period text,
    max_requests integer,
    max_tokens bigint,
    max_usd numeric,
    bucket date,
    requests integer,
    tokens bigint,
    spent_usd numeric,
    monthly_max_usd numeric,
    month_bucket date,
    spent_month_usd numeric
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_budget IS
    'A budget and its use: requests, tokens and money (US dollars) per period (life: a token''s; day: a Pacific '
    'day, bucket), money per Pacific month (month_bucket); null: no limit.';

-- A day's budget, as every budget reads: a service caller's (google_ai_caller_budgets) or a client's
-- (google_ai_clients), whose rows name its columns alike; a token's is the overload for its row (35).
-- (PL/pgSQL, as every helper here that returns a budget: PostgreSQL plans a SQL one on every call. The
-- linter checks its body as for a client's row; a caller budget's names the same columns.)
CREATE OR REPLACE FUNCTION public.google_ai_budget_of(p_row anyelement) RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
-- @plpgsql_check_options: anyelementtype = public.google_ai_clients
begin
  return row('day', p_row.daily_max_requests, p_row.daily_max_tokens, p_row.daily_max_usd, p_row.day_bucket,
    p_row.requests_today, p_row.tokens_today, p_row.spent_today_usd, p_row.monthly_max_usd, p_row.month_bucket,
    p_row.spent_month_usd)::public.google_ai_budget;
end
$$;

-- A request counts against a budget once, on its first attempt; a retry spends tokens only.
CREATE OR REPLACE FUNCTION public.google_ai_request_counts(p_attempt integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when coalesce(p_attempt, 1) operator(pg_catalog.=) 1 then 1 else 0 end $$;

-- A budget as of Pacific day p_day: a day's counts and spend are those of its bucket's day, none on
-- another day; the month's spend is its month's; a life's counts are always its own. The one place a
-- budget rolls over.
CREATE OR REPLACE FUNCTION public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date)
    RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_current boolean := p_budget.period = 'life' or p_budget.bucket = p_day;
  v_month date := pg_catalog.date_trunc('month', p_day)::date;
begin
  return row(p_budget.period, p_budget.max_requests, p_budget.max_tokens, p_budget.max_usd,
    case when p_budget.period = 'day' then p_day end, case when v_current then p_budget.requests else 0 end,
    case when v_current then p_budget.tokens else 0 end, case when v_current then p_budget.spent_usd else 0 end,
    p_budget.monthly_max_usd, v_month,
    case when p_budget.month_bucket = v_month then p_budget.spent_month_usd else 0 end)::public.google_ai_budget;
end
$$;

-- What is left of a budget on Pacific day p_day, never below 0 (null: no such limit): requests, tokens
-- and money of its period, money of its month.
CREATE OR REPLACE FUNCTION public.google_ai_budget_left(p_budget public.google_ai_budget, p_day date,
    OUT requests integer, OUT tokens bigint, OUT usd numeric, OUT month_usd numeric) RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, p_day);
begin
  requests := v_b.max_requests - least(v_b.max_requests, v_b.requests);
  tokens := v_b.max_tokens - least(v_b.max_tokens, v_b.tokens);
  usd := v_b.max_usd - least(v_b.max_usd, v_b.spent_usd);
  month_usd := v_b.monthly_max_usd - least(v_b.monthly_max_usd, v_b.spent_month_usd);
end
$$;

-- A budget's verdict on a call at p_at of p_requests requests and p_tokens tokens that may cost p_worst
-- (null: not known). cause: budget (a count over its limit: over, not "nothing left", so a retry or a
-- request of no tokens is still refused once the operator lowered the budget below the use), or
-- spend_budget (money, or a price not known); period: whose (life, day or month); reopens_at: the
-- period's end (a life never reopens, nor does an unknown price). All null: the budget lets it in.
CREATE OR REPLACE FUNCTION public.google_ai_budget_verdict(p_budget public.google_ai_budget,
    p_at timestamp with time zone, p_requests integer, p_tokens integer, p_worst numeric, OUT cause text,
    OUT period text, OUT reopens_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_b public.google_ai_budget := public.google_ai_budget_on(p_budget, public.google_ai_pacific_day(p_at));
begin
  if v_b.requests + p_requests > v_b.max_requests or v_b.tokens + p_tokens > v_b.max_tokens then
    cause := 'budget';
  elsif v_b.max_usd is not null and (p_worst is null or p_worst + v_b.spent_usd > v_b.max_usd) then
    cause := 'spend_budget';
  elsif v_b.monthly_max_usd is not null
        and (p_worst is null or p_worst + v_b.spent_month_usd > v_b.monthly_max_usd) then
    cause := 'spend_budget';
    period := 'month';
    reopens_at := (v_b.month_bucket + interval '1 month') at time zone public.google_ai_pacific_zone();
  else
    return;
  end if;
  period := coalesce(period, v_b.period);
  reopens_at := case when cause = 'spend_budget' and p_worst is null then null
                     when period = 'day' then public.google_ai_pacific_midnight_after(p_at) else reopens_at end;
end
$$;

-- A budget with a call counted in it on Pacific day p_day, by p_requests, p_tokens and p_usd, never
-- below 0: a booking (p_book) rolls the day and month over to p_day's (google_ai_budget_on) and counts
-- in them; the end of a call (finalize settles, release gives back) moves only a day and a month still
-- counted. A life always counts.
CREATE OR REPLACE FUNCTION public.google_ai_budget_counted(p_budget public.google_ai_budget, p_day date,
    p_requests integer, p_tokens integer, p_usd numeric, p_book boolean) RETURNS public.google_ai_budget
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_b public.google_ai_budget := case when p_book then public.google_ai_budget_on(p_budget, p_day) else p_budget end;
begin
  if p_book or p_budget.period = 'life' or p_budget.bucket = p_day then
    v_b.requests := greatest(0, v_b.requests + p_requests);
    v_b.tokens := greatest(0, v_b.tokens + p_tokens);
    v_b.spent_usd := greatest(0, v_b.spent_usd + p_usd);
  end if;
  if p_book or p_budget.month_bucket = pg_catalog.date_trunc('month', p_day)::date then
    v_b.spent_month_usd := greatest(0, v_b.spent_month_usd + p_usd);
  end if;
  return v_b;
end
$$;
-- ================================================================================================
-- supabase/schemas/35_clients_and_tokens.sql
-- ================================================================================================

-- Kaggle clients and their scoped tokens: creation, minting, revocation, the credential check (with
-- refusals counted per minute) and token budgets.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_clients (
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

CREATE TABLE IF NOT EXISTS public.google_ai_tokens (
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
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_caller') IS NULL THEN
    CREATE TYPE public.google_ai_caller AS (
    name text,
    client_id uuid,
    token_id uuid
);
  END IF;
END
$type$;

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
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_request') IS NULL THEN
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
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_request IS
    'One reservation request as its entry received it, handed whole through fall-back, admit, refuse, '
    'record and queue (google_ai_reserve_models_at builds it).';

-- One model's verdict on a request, as each step of the admission answers it to the one above it (a
-- token's verdict, the stored answer of a named request, refuse, record, admit, to fall-back and the
-- entry): admitted (ok) or not, the limit and its cause, when to ask again, the model, the successor of
-- a model past its shutdown date, the reservation or queue ticket it holds, and the answer built for
-- the caller (JSON by nature: what the entry answers), which no step reads back.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_admission_verdict') IS NULL THEN
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
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_admission_verdict IS
    'One model''s verdict on a request (admitted, queued or refused: limit, cause, times, model, successor, '
    'reservation or ticket) and the answer built for the caller, handed up from step to step of the admission.';

CREATE TABLE IF NOT EXISTS public.google_ai_credential_refusals (
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
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_token_verdict') IS NULL THEN
    CREATE TYPE public.google_ai_token_verdict AS (
    refusal public.google_ai_admission_verdict,
    request public.google_ai_request,
    worst numeric
);
  END IF;
END
$type$;

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
-- ================================================================================================
-- supabase/schemas/37_lock_waits.sql
-- ================================================================================================

-- Waits for a lock, and the one place none is allowed: a later reservation of a batch
-- (google_ai_reserve_many, 85_reserve_call.sql, sets eve.batch_member for them). Its transaction already holds
-- an earlier reservation's counter row; a wait for another transaction's lock there would break the global
-- lock order (docs/architecture.md, §2) and could close a ring with it. So such a reservation takes a counter
-- row (google_ai_counter_locked) or an advisory lock (below) only if it is free, else raises lock_not_available
-- (55P03): the batch undoes that reservation alone and the worker makes it again by itself.
set check_function_bodies = off;

-- A transaction's advisory lock on p_key, as pg_advisory_xact_lock takes it; in a batch's later
-- reservation, only if it is free (above).
CREATE OR REPLACE FUNCTION public.google_ai_advisory_lock(p_key bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
  if pg_catalog.current_setting('eve.batch_member', true) is distinct from 'on' then
    perform pg_catalog.pg_advisory_xact_lock(p_key);
  elsif not pg_catalog.pg_try_advisory_xact_lock(p_key) then
    raise exception 'an advisory lock another transaction holds' using errcode = '55P03';
  end if;
end
$$;
-- ================================================================================================
-- supabase/schemas/38_candidates.sql
-- ================================================================================================

-- A request's candidates: the limits of the model it names (google_ai_request_limits), the class it
-- runs in (google_ai_request_class) and the quota groups that may serve it (google_ai_candidate_groups),
-- with what ranks them and the key a group serves it on, and when a full one's window has room again for
-- it (google_ai_window_reopens_for).
set check_function_bodies = off;

-- The keys that may serve p_model, each with its quota group and its provider: active, of the model's
-- provider (a model no row names has none), for the model (a key's models; null: every model of its provider) and
-- not excluded by the caller. The booking's candidates, a booking that waited
-- for a row, the quota reads and the metrics ask here (the operators' views keep their own reading).
-- A SQL table function, so it is inlined into the statement that reads it.
CREATE OR REPLACE FUNCTION public.google_ai_serving_keys(p_model text, p_exclude_key_ids uuid[])
    RETURNS TABLE(quota_group text, key_id uuid, priority integer, key_alias text, env_var_name text,
    provider text)
    LANGUAGE sql STABLE
    AS $$
  select public.google_ai_quota_group(k.project_id, k.id), k.id, k.priority, k.key_alias, k.env_var_name,
         k.serves_provider
  from public.google_ai_api_keys k
  where k.is_active
    and k.serves_provider operator(pg_catalog.=)
        (select m.provider from public.google_ai_model_limits m where m.model operator(pg_catalog.=) p_model)
    and (k.models is null or p_model operator(pg_catalog.=) any (k.models))
    and not (k.id operator(pg_catalog.=) any (coalesce(p_exclude_key_ids, '{}'::uuid[])))
$$;

-- The quota groups that may serve p_model (through a key google_ai_serving_keys names), one
-- row each: the priority of its best key, the cooldown in force at p_now, what it used in the
-- current minute and its provider's day (an unlocked read) and its headroom (the smallest remaining
-- fraction of RPM, TPM and RPD) and what those counts already show full for everyone (full_by: a
-- cooldown, the day, the window). The reservation tries them by priority (lower first, none last),
-- then headroom (largest first), then name: the order the caller sorts them in (no row_number():
-- starting its window aggregate cost about 1% of a reservation's CPU). Each row names the key that serves its group
-- (the best active key for the model, by priority, then alias), so a booking needs no second look at
-- the keys, and the zone of the provider's day (day_zone), which the booking counts the group's day in
-- (read here, with the keys: a statement of its own for the provider's row cost about 40k instructions).
-- (The cooldown is a lateral subquery kept apart, offset 0: so it is read by its key, the group and
-- the model, where a join scanned the model's cooldowns into a bitmap for every group; counted, 2.6k less.
-- usage is kept apart too, offset 0: pulled up, each count's case was copied into headroom and full_by,
-- every copy set up again on each reservation; counted, about 18k less.)
CREATE OR REPLACE FUNCTION public.google_ai_candidate_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer,
    p_tpm integer, p_rpd integer, p_now timestamp with time zone) RETURNS TABLE(quota_group text, priority integer,
    cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, headroom numeric,
    key_id uuid, key_alias text, env_var_name text, full_by text, day_zone text)
    LANGUAGE sql STABLE
    AS $$
  with keys as (
    select distinct on (s.quota_group) s.quota_group, s.priority, s.key_id, s.key_alias, s.env_var_name, s.provider
    from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
    order by s.quota_group, s.priority nulls last, s.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until, p.day_zone,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_day_in(p_now, p.day_zone)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_providers p on p.name operator(pg_catalog.=) g.provider
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join lateral (select cd.cooldown_until from public.google_ai_cooldowns cd
                       where cd.quota_group operator(pg_catalog.=) g.quota_group
                         and cd.model operator(pg_catalog.=) p_model and cd.cooldown_until operator(pg_catalog.>) p_now
                       offset 0) cd on true
    offset 0
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         least(coalesce(1 operator(pg_catalog.-) (u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0)), 1)),
         u.key_id, u.key_alias, u.env_var_name,
         case when u.cooldown_until is not null then 'cooldown'
              when p_rpd is not null and u.rpd_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpd then 'rpd'
              when p_rpm is not null and u.rpm_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpm then 'rpm'
         end, coalesce(u.day_zone, 'UTC')
  from usage u
$$;

-- The model a request names, as the request is held to it: its row (google_ai_model_limits), the
-- active one named exactly (its unique index), else the first active row with the name as an alias,
-- with rpm, tpm, rpd, itpm and otpm after the safety margin (safety_margin then 0, but on a row that follows its
-- provider: google_ai_followed_limits applies it to the provider's figures); all null when none is
-- (google_ai_admit_at then refuses unknown_model, as it refuses a withdrawn model or a request too
-- large for a minute before any lock). The booking takes this row whole (google_ai_admit_at to
-- google_ai_booking_rules and google_ai_booking_outcome), so a rule reads a new column of the model where
-- it decides.
-- (PL/pgSQL called as an expression: only the lookup a request needs runs, where one inlined statement
-- set up both lookups and the class's for every request; counted, about 350k instructions less.)
CREATE OR REPLACE FUNCTION public.google_ai_request_limits(p_model text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_row public.google_ai_model_limits;
begin
  -- (The row as one whole-row value: one column to set up, not one per column; counted, 6.5k less.)
  v_row := (select m from public.google_ai_model_limits m where m.model = p_model and m.is_active);
  if v_row.id is null then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  -- (No margin leaves every limit as it is, but a negative one: the row then goes on as read. A row with a
  -- field set is formed again at every call it is handed to: counted, about 60k less a reservation.)
  if v_row.safety_margin is distinct from 0 or least(v_row.rpm, v_row.tpm, v_row.rpd) < 0 then
    v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
    v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
    v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
    if v_row.itpm is not null or v_row.otpm is not null then
      v_row.itpm := public.google_ai_effective_limit(v_row.itpm, v_row.safety_margin);
      v_row.otpm := public.google_ai_effective_limit(v_row.otpm, v_row.safety_margin);
    end if;
    -- (A row that follows its provider keeps its margin: the booking takes it from the provider's figures.)
    v_row.safety_margin := case when v_row.provider_limits = 'follow' then v_row.safety_margin else 0 end;
  end if;
  return v_row;
end
$$;

-- When the sliding window of quota group p_quota_group has room again for p_requests more requests (1,
-- or a request's several at its provider, booked at once) of p_tokens, for a requester that
-- does not own the RPM shares it holds back: walking the window's seconds oldest first (a second's
-- first admission leaves on time, the others with its last: google_ai_ring_at), the first moment the
-- admissions left, plus what the other owners may still claim of their shares, leave a request over
-- (an owner's admission leaving gives its owner room, not the others). Null: never within the window
-- (the shares kept from this requester cover the limit, or the tokens the TPM). The request's model row
-- (p_model: its limits after the margin, its counter row its pool's when it names one), class row and
-- caller, whole, as the rules take them (google_ai_booking_rules): its shares are its class's or its caller's.
CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text,
    p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes,
    p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer,
    p_requests integer DEFAULT 1) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_ring record;
  -- The others' RPM shares: what each keeps, what its owner used of the window, its ring (a row each).
  v_kept integer[];
  v_used integer[];
  v_rings integer[];
  v_span integer;
  v_left_requests integer;
  v_left_tokens bigint;
  v_i integer;
  v_us integer;
  v_gone integer;
  v_held integer;
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_model.limit_pool, p_model.model);
  v_ring := public.google_ai_ring_at(p_now, p_window, v_row.ring_low, v_row.ring, v_row.window_requests,
    v_row.window_tokens);
  if v_ring.ring_low is null then
    return null;
  end if;
  v_span := cardinality(v_ring.ring) / 4;
  select coalesce(array_agg(s.reserved_rpm), '{}'), coalesce(array_agg(r.sum_requests), '{}'),
         coalesce(array_agg(r.ring), '{}')
    into v_kept, v_used, v_rings
  from public.google_ai_quota_shares s
  left join unnest(v_row.share_use) u on u.share_id = s.id
  cross join lateral public.google_ai_ring_at(p_now, p_window, u.ring_low, u.ring, u.window_requests, null) r
  where s.model = p_model.model and s.reserved_rpm is not null and p_model.rpm is not null
    and not (coalesce(s.priority_class = p_class.name, false) or coalesce(s.caller = p_caller.name, false));

  v_left_requests := v_ring.sum_requests;
  v_left_tokens := v_ring.sum_tokens;
  for k in 0 .. v_span - 1 loop
    v_s := v_ring.ring_low + k;
    v_i := (v_s % v_span)::integer * 4;
    continue when v_ring.ring[v_i + 1] = 0;
    -- Two moments a second: its first admission leaves, then the others (and the tokens) with its last.
    foreach v_us in array v_ring.ring[v_i + 3 : v_i + 4] loop
      v_gone := case when v_us < v_ring.ring[v_i + 4] then 1 else v_ring.ring[v_i + 1] end;
      v_held := 0;
      for j in 1 .. cardinality(v_kept) loop
        -- What of the owner's admissions of this second have left by then, the same way.
        v_held := v_held + greatest(0, v_kept[j] - (v_used[j]
          - case when v_rings[j][v_i + 1] = 0 or v_rings[j][v_i + 3] > v_us then 0
                 when v_rings[j][v_i + 4] <= v_us then v_rings[j][v_i + 1] else 1 end));
      end loop;
      if (p_model.rpm is null or v_left_requests - v_gone + p_requests + v_held <= p_model.rpm)
         and (p_model.tpm is null
              or v_left_tokens - case when v_gone = v_ring.ring[v_i + 1] then v_ring.ring[v_i + 2] else 0 end
                 + p_tokens <= p_model.tpm) then
        return public.google_ai_ring_time(v_s, v_us) + p_window;
      end if;
    end loop;
    v_left_requests := v_left_requests - v_ring.ring[v_i + 1];
    v_left_tokens := v_left_tokens - v_ring.ring[v_i + 2];
    for j in 1 .. cardinality(v_kept) loop
      v_used[j] := v_used[j] - v_rings[j][v_i + 1];
    end loop;
  end loop;
  return null;
end
$$;
-- ================================================================================================
-- supabase/schemas/40_queue.sql
-- ================================================================================================

-- The fair admission queue: tickets taken by a refusal, turns by class then fair between callers,
-- lapsed tickets, and whether the spread holds a class back (only while requests wait).
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_queue (
    ticket_id uuid DEFAULT gen_random_uuid() PRIMARY KEY,
    model text NOT NULL,
    priority_class text NOT NULL REFERENCES public.google_ai_priority_classes(name),
    class_rank smallint NOT NULL,
    caller text NOT NULL,
    client_id uuid,
    token_id uuid,
    request_id text,
    requested_model text,
    turn bigint NOT NULL,
    enqueued_at timestamp with time zone NOT NULL,
    tokens integer NOT NULL,
    limit_hit text NOT NULL,
    expected_at timestamp with time zone NOT NULL,
    lease_until timestamp with time zone NOT NULL,
    "position" integer NOT NULL,
    requests integer DEFAULT 1 NOT NULL,
    waits_for text DEFAULT 'window' NOT NULL,
    reply_by timestamp with time zone,
    CONSTRAINT google_ai_queue_waits_for_check CHECK (waits_for IN ('window', 'class_allowance', 'caller_allowance'))
);

COMMENT ON TABLE public.google_ai_queue IS
    'Requests waiting for capacity, in admission order (class_rank, turn, enqueued_at). A ticket ends when its request '
    'is admitted, gives up, or stops calling (lease_until): then an abandoned attempt row records it. requests: the '
    'slots its turn needs at once (google_ai_attempts.requests).';

COMMENT ON COLUMN public.google_ai_queue.reply_by IS
    'When the caller of the statement that took or renewed the ticket stopped waiting for its answer (its '
    'request''s reply_by; google_ai_reply_check rolls back a ticket committed later). Null: none named.';

COMMENT ON COLUMN public.google_ai_queue.waits_for IS
    'What the ticket waits for (google_ai_waits_for; QUEUE_WAIT_TARGETS in _shared/vocabulary.ts): window, the '
    'model''s capacity every caller shares; class_allowance or caller_allowance, a paced share of its class or its '
    'caller, which only requests of that class or caller wait for. The spread and the queue''s places count a ticket '
    'only for the requests that wait for the same (google_ai_waits_alike).';

CREATE INDEX IF NOT EXISTS google_ai_queue_caller_idx ON public.google_ai_queue USING btree (model, caller, class_rank);

CREATE INDEX IF NOT EXISTS google_ai_queue_lease_idx ON public.google_ai_queue USING btree (model, lease_until);

CREATE INDEX IF NOT EXISTS google_ai_queue_order_idx ON
    public.google_ai_queue USING btree (model, class_rank, turn, enqueued_at);

-- The limits a WAIT caller waits for in the model's queue, one entry each (WAITABLE_LIMITS in
-- supabase/functions/_shared/vocabulary.ts; tests/db/vocabulary.test.ts holds its answers to it), and
-- how their turns go. A refusal for one of them takes a ticket (google_ai_refusal_at); its turn follows:
-- 'slots' for what google_ai_queue_turn_at counts (each group's window, its day, its cooldowns), where a
-- request behind the due tickets may book a slot they leave over; 'head' for any other waited limit (its
-- capacity is not the window's, so the queue cannot count it; none today): a due ticket waiting for it
-- holds every request behind it until its own turn is served (google_ai_queue_place). Null: not waited
-- for, answered at once. Inlined into the statement that reads it.
CREATE OR REPLACE FUNCTION public.google_ai_queue_turns(p_limit text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_limit operator(pg_catalog.=) any ('{rpm,tpm,rpd,cooldown,pace}'::text[]) then 'slots'
              when p_limit operator(pg_catalog.=) any ('{}'::text[]) then 'head' end
$$;

-- What a refused request waits for once it holds a ticket (google_ai_queue.waits_for), by its limit
-- (p_limit): a pace, the paced share of its owner, the class p_class when the class owns one of the model
-- p_model, else its caller (the ticket's); any other waitable limit the window (its groups' windows, days,
-- cooldowns, the spread's schedule and buckets: the model's capacity, which every caller waits for).
-- A new waitable limit that only its owner waits for (a client's cap, a budget) says so here, or one
-- capped caller's ticket turns the spread on and takes a place ahead of every other caller.
-- (PL/pgSQL, as the queue's other helpers: a SQL function with a query is planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_waits_for(p_limit text, p_model text, p_class text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
begin
  return case when p_limit is distinct from 'pace' then 'window'
              when exists (select 1 from public.google_ai_quota_shares s where s.model = p_model
                             and s.priority_class = p_class and s.pace_burst is not null) then 'class_allowance'
              else 'caller_allowance' end;
end
$$;

-- Whether a request of class p_class and caller p_caller waits for what a ticket waits for (p_waits_for,
-- of a ticket of class p_ticket_class and caller p_ticket_caller): the window, every request; an
-- allowance, only its owner's. The spread and the queue's places count only such tickets. Inlined.
CREATE OR REPLACE FUNCTION public.google_ai_waits_alike(p_waits_for text, p_ticket_class text, p_ticket_caller text,
    p_class text, p_caller text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select p_waits_for = 'window' or (p_waits_for = 'class_allowance' and p_ticket_class = p_class)
         or (p_waits_for = 'caller_allowance' and p_ticket_caller = p_caller)
$$;

-- Tickets whose waiter stopped calling: removed, each leaving an abandoned attempt row (nothing lost).
CREATE OR REPLACE FUNCTION public.google_ai_queue_lapse(p_model text, p_now timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_lapsed integer;
begin
  with gone as (
    delete from public.google_ai_queue q
    where q.model = p_model and q.lease_until < p_now
    returning q.*)
  insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
    attempt, estimated_tokens, limit_hit, wait_ms, priority_class, error_message, finished_at, requests)
  select 'abandoned', g.request_id, g.caller, g.client_id, g.token_id, g.model, g.requested_model, 1, g.tokens,
    g.limit_hit, greatest(0, extract(epoch from (g.expected_at - g.enqueued_at)) * 1000)::integer, g.priority_class,
    'left the queue: no call within the grace after its turn', p_now, g.requests
  from gone g;
  get diagnostics v_lapsed = row_count;
  return v_lapsed;
end
$$;

-- A group's next p_needed slots for waiters: its openings (free now, then as admissions leave),
-- each again a window later, and on a spread model (p_step) none before its schedule allows
-- (p_schedule: the group's spread_until, p_tolerance: what the schedule forgives; p_grid: a sliding
-- window's spread, not a bucket: google_ai_spread_next).
CREATE OR REPLACE FUNCTION public.google_ai_group_slots(p_openings timestamp with time zone[], p_needed integer,
    p_window interval, p_schedule timestamp with time zone, p_step interval, p_tolerance interval, p_grid boolean)
    RETURNS timestamp with time zone[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_n integer := cardinality(p_openings);
  v_schedule timestamptz := p_schedule;
  v_slot timestamptz;
  v_slots timestamptz[] := '{}'::timestamptz[];
begin
  for j in 1 .. p_needed loop
    v_slot := p_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * p_window;
    if p_step is not null then
      v_slot := greatest(v_slot, v_schedule - p_tolerance);
      v_schedule := public.google_ai_spread_next(v_schedule, v_slot, p_step, p_grid);
    end if;
    v_slots := v_slots || v_slot;
  end loop;
  return v_slots;
end
$$;

-- What the higher classes than rank p_rank took of a group's window for the model (a request that
-- waited longer than a window says nothing of what its class asks for now). The window is read as a
-- range closed on both sides, so a generic plan walks the window's index (15_request_log.sql says why).
-- (This helper and the next are PL/pgSQL: a query in a SQL function cannot be inlined, and PL/pgSQL
-- keeps its plans for the session.)
CREATE OR REPLACE FUNCTION public.google_ai_higher_taken(p_group text, p_model text, p_now timestamp with time zone,
    p_window interval, p_rank smallint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (select coalesce(sum(a.requests), 0) from public.google_ai_attempts a
          join public.google_ai_priority_classes pc on pc.name = a.priority_class
          where a.quota_group = p_group and a.model = p_model
            and a.admitted_at > p_now - p_window and a.admitted_at < 'infinity'
            and a.status not in ('released', 'withdrawn') and pc.rank < p_rank
            and coalesce(a.wait_ms, 0) < extract(epoch from p_window) * 1000);
end
$$;

-- What the model's RPM shares that a waiter of class p_class and caller p_caller does not own still
-- keep of a group's window: each share's reserve less what its owner used of the window (p_use, the
-- counter row's share_use).
CREATE OR REPLACE FUNCTION public.google_ai_kept_from(p_model text, p_use public.google_ai_share_use[],
    p_now timestamp with time zone, p_window interval, p_class text, p_caller text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (select coalesce(sum(greatest(0, s.reserved_rpm - coalesce((public.google_ai_ring_at(p_now, p_window,
                   e.ring_low, e.ring, e.window_requests, null)).sum_requests, 0))), 0)
          from public.google_ai_quota_shares s
          left join unnest(p_use) e on e.share_id = s.id
          where s.model = p_model and s.reserved_rpm is not null
            and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false)));
end
$$;

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the quota
-- groups that may serve the model today: each group offers its free slots now, then one slot as each
-- admission of its window leaves it (admitted_at + window), then the same again a window later; a
-- spread model's group offers each of those slots no sooner than its schedule allows
-- (google_ai_spread_step, google_ai_spread_next; a bucket-shaped model's request bucket, bucket_share,
-- whose window holds no slot back: google_ai_booking_outcome counts it only while others' shares keep
-- part of it, so its openings are all now and its schedule alone places them).
-- A group's window holds, for a waiter of class p_class and caller p_caller, what the RPM shares it
-- does not own leave it (google_ai_booking_rules' rule: the limit less what their owners have not used
-- of the window), so a slot a share keeps from it is not counted as its turn. free_now counts the slots
-- of each group's first p_slots that are free now. likely_at: the same for a request of class rank
-- p_rank, counting, on a spread model, on the part of each group's slots that the higher classes left
-- in the last window (they will ask again, and go first; at least a tenth): its p_slots-th slot is a
-- group's p_slots / part-th. spread_bound: some group's window has a slot now that only its schedule
-- holds back; kept_bound: some group's window has room now that only the shares keep from this waiter.
-- Each group counts against the model's effective limits there: the row's, or for a row that follows its
-- provider (provider_limits 'follow') those its provider stated for the group (google_ai_followed_limits,
-- on the counter row the booking locks: the row's pool's, limit_pool, or its own), its schedule at that RPM.
-- Null turn_at: no group can serve today (day used up or cooling down everywhere), or the shares it
-- does not own keep every group's window.
CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model public.google_ai_model_limits,
    p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text,
    p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone,
    OUT spread_bound boolean, OUT kept_bound boolean) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  -- (A spread holds a waiter's slots back only for a class some class ranks before: google_ai_queue_spread.)
  v_ranked bool := p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank);
  v_group record;
  v_ring record;
  v_expiries timestamptz[];
  v_count integer;
  v_room integer;
  v_part numeric;
  v_needed integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}'::timestamptz[];
  v_likely timestamptz[] := '{}'::timestamptz[];
  v_day_left bigint := 0;
begin
  free_now := 0;
  spread_bound := false;
  kept_bound := false;
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model.model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model.model, u.share_use, p_now, v_window, p_class, p_caller) as held,
           (f.l).rpm as rpm, (f.l).rpd as rpd, s.step, s.tolerance, s.spaced
    from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, null, p_model.rpd, p_now) c
    left join public.google_ai_usage_counters u
      on u.quota_group = c.quota_group and u.model = coalesce(p_model.limit_pool, p_model.model)
    cross join lateral (select case when p_model.provider_limits = 'follow'
                          then public.google_ai_followed_limits(p_model, u.stated_limits) else p_model end as l) f
    cross join lateral public.google_ai_queue_spread(p_model, (f.l).rpm, v_window, v_ranked) s
  loop
    continue when v_group.cooldown_until is not null or (v_group.rpd is not null and v_group.rpd_used >= v_group.rpd);
    v_day_left := v_day_left + coalesce(v_group.rpd - v_group.rpd_used, 1000000);
    if v_group.rpm is null then
      free_now := 1000000;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := case when p_model.bucket_share is null or v_group.held > 0
                       then public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window) else '{}' end;
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave with their seconds (google_ai_ring_at).
    v_room := v_group.rpm - v_group.held;
    kept_bound := kept_bound or (v_count < v_group.rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_group.spaced and v_openings[1] <= p_now and v_group.spread_until - v_group.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_group.spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(v_group.rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_group.spaced then v_group.step end, v_group.tolerance, p_model.bucket_share is null);
    for k in 1 .. p_slots loop
      v_slots := v_slots || v_group_slots[k];
      free_now := free_now + case when v_group_slots[k] <= p_now then 1 else 0 end;
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now;
  -- never before now). None when there are fewer: the shares this waiter does not own keep every
  -- group's window from it, and the booking names when, if ever, one has room for it.
  select case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.t order by o.t))[p_slots]) end,
         case when free_now >= p_slots then p_now
              when count(*) >= p_slots then greatest(p_now, (array_agg(o.l order by o.l))[p_slots]) end
  into turn_at, likely_at from unnest(v_slots, v_likely) o(t, l);
end
$$;

-- At commit: a row written by a statement whose caller stopped waiting (its reply_by passed) is rolled
-- back with everything the statement did. Each such row carries its request's reply_by: an attempt row
-- (an admission, or a refusal: it renews its holder's claim, 55_claims.sql), a queue ticket taken or
-- renewed (it would hold the request's claim and a place ahead of live waiters for nobody; a write that
-- sets no reply_by, such as a fallback naming its requested model, is not checked again). 57014
-- (query_canceled) is what a statement timeout raises: the function answers it 503.
CREATE OR REPLACE FUNCTION public.google_ai_reply_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception 'the % row of request % reached its commit after its caller stopped waiting (%); rolled back',
      tg_table_name, new.request_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

DROP TRIGGER IF EXISTS google_ai_queue_reply_check ON public.google_ai_queue;
CREATE CONSTRAINT TRIGGER google_ai_queue_reply_check AFTER INSERT OR UPDATE OF reply_by ON public.google_ai_queue
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL))
    EXECUTE FUNCTION public.google_ai_reply_check();

-- Whether the spread holds a request of class rank p_rank back (its place in the schedule still
-- ahead): only while requests wait for the model's window (a ticket waiting for an allowance, its
-- class's or caller's pace, is not helped by the schedule: a request its owner sends is paced by the
-- booking first), and only for a class that some class ranks before (the schedule keeps the next slots
-- coming for that class; the first class has nobody to keep them for). While nobody waits, a burst that
-- fits the window goes at once. Null rank: held.
CREATE OR REPLACE FUNCTION public.google_ai_spread_holds(p_model text, p_rank smallint,
    p_at timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select exists (select 1 from public.google_ai_queue q
                   where q.model = p_model and q.lease_until >= p_at and q.waits_for = 'window')
       and (p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank)));
end
$$;

-- A ticket's turn in its class (start-time fair queueing). A new ticket whose caller has none waiting
-- takes the turn of the class's head, behind it (ties go to the earlier arrival); a caller's next one
-- the turn after its last. So within a class callers take turns: a caller with 100 waiting delays
-- another's first request by one turn, and its second by one more (A, B, A, B).
-- A ticket already in line (p_ticket) moves up to follow its caller's previous live ticket, or the
-- head: one turn after it, never beside it. Its caller's earlier tickets are gone, and a ticket cannot
-- tell whether they were admitted (their turns were its caller's, and the head's turn is another
-- caller's) or given up; tying the head would put it, the earlier arrival, before a newer caller's
-- ticket that it just had its turn before.
-- p_live_at: only tickets whose lease runs then count (null: every ticket; the queue was just lapsed).
-- p_ticket, the caller's own ticket, is left out; p_below: only the caller's tickets before that turn
-- count (a ticket moves up, never back).
CREATE OR REPLACE FUNCTION public.google_ai_next_turn(p_model text, p_rank smallint, p_caller text,
    p_live_at timestamp with time zone, p_ticket uuid, p_below bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_head bigint;
  v_last bigint;
begin
  select min(q.turn) into v_head from public.google_ai_queue q
  where q.model = p_model and q.class_rank = p_rank
    and (p_live_at is null or q.lease_until >= p_live_at)
    and q.ticket_id is distinct from p_ticket;
  select max(q.turn) into v_last from public.google_ai_queue q
  where q.model = p_model and q.caller = p_caller and q.class_rank = p_rank
    and (p_live_at is null or q.lease_until >= p_live_at)
    and q.ticket_id is distinct from p_ticket and (p_below is null or q.turn < p_below);
  if p_ticket is null then
    return greatest(coalesce(v_head, 1), coalesce(v_last, 0) + 1);
  end if;
  return 1 + greatest(coalesce(v_head, 0), coalesce(v_last, 0));
end
$$;

-- A request's place in the model's queue, among the tickets that wait for what it would (google_ai_waits_alike):
-- none when none does and the request holds no ticket (p_ticket: the ticket it names; only a live one of its
-- caller for the model counts), nor for a null model (the request is blocked already). p_model, p_class and
-- p_caller are the request's model row (limits after the margin: google_ai_request_limits), class row and
-- caller, each whole, as the booking takes them. Answers the class and turn it stands in (its ticket's, the turn
-- moved up as google_ai_next_turn allows; else where a ticket taken now, p_new_ticket, would stand, in
-- p_class), and whether it may ask for a booking now (may_book). It may when nobody else waits, when its
-- p_requests slots (1, or a request's several at its provider, booked at once) are free beyond those of the
-- due tickets ahead (and of every ticket of several requests ahead), or when its own RPM share still has
-- room in a group (the share keeps that slot for it, the spread does not hold it back, and the booking
-- decides exactly); never while a due ticket ahead waits for a limit whose turns go head first
-- (google_ai_queue_turns: 'head').
-- When it may not, blocked_by and cause say why: the limit the window counts (rpm, else tpm), or the
-- one the head-first ticket waits for, and queue_turn when the free slots (or the head's turn) are the
-- turns of the tickets ahead, spread when only the schedule holds one, share_kept when only others'
-- shares keep the window's room from it, else window_full.
CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[],
    p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, p_requests integer, OUT ticket uuid,
    OUT rank smallint,
    OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text,
    OUT cause text, OUT turn_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
#variable_conflict use_variable
declare
  v_held public.google_ai_queue;
  v_ahead integer;
  v_due_ahead integer;
  v_head_limit text;   -- the limit a due ticket ahead waits for head first (google_ai_queue_turns)
  v_free_now integer;
  v_spread_bound boolean;
  v_kept_bound boolean;
begin
  rank := p_class.rank;
  class := p_class.name;
  may_book := true;
  if p_model.model is null then
    return;
  end if;
  if p_ticket is not null then
    select * into v_held from public.google_ai_queue q
    where q.ticket_id = p_ticket and q.caller = p_caller.name and q.model = p_model.model and q.lease_until >= p_now;
    if v_held.ticket_id is not null then
      select v_held.ticket_id, v_held.class_rank, v_held.priority_class, v_held.enqueued_at
        into ticket, rank, class, since;
      -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
      -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
      turn := least(v_held.turn,
        public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, ticket, v_held.turn));
    end if;
  end if;
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket) then
    return; -- (nobody waits for the model, the common case: read without google_ai_waits_alike, 15k less)
  end if;
  -- (Only tickets that wait for what this request would: google_ai_waits_alike.)
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
                   and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, class, p_caller.name)) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(p_model.model, rank, p_caller.name, p_now, null, null);
    since := p_now;
  end if;

  -- (A ticket of several requests holds the slots free now toward its turn: it waits because fewer are free
  -- than it needs, and a request behind it that took one would put its turn off.)
  select coalesce(sum(q.requests), 0),
         coalesce(sum(q.requests) filter (where q.expected_at <= p_now or q.requests > 1), 0),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = p_model.model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, class, p_caller.name);
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(p_model, p_exclude_key_ids, p_now, v_ahead + p_requests, rank, class,
    p_caller.name) t;
  -- Slots go to the due tickets ahead first; those nobody due claims go to whoever asks, when they are
  -- as many as its requests. (No turn, none today anywhere or every window kept from it by shares: the
  -- booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead + p_requests <= v_free_now
    or exists (select 1 from public.google_ai_quota_shares s
               left join (select e.* from public.google_ai_usage_counters c, unnest(c.share_use) e
                          where c.model = p_model.model) u on u.share_id = s.id
               where s.model = p_model.model and s.reserved_rpm is not null
                 and (s.priority_class = class or s.caller = p_caller.name)
                 and coalesce((public.google_ai_ring_at(p_now,
                       public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                       u.ring_low, u.ring, u.window_requests, null)).sum_requests, 0) < s.reserved_rpm));
  if not may_book then
    blocked_by := coalesce(v_head_limit, case when p_model.rpm is not null then 'rpm' else 'tpm' end);
    cause := case when v_head_limit is not null or v_free_now > 0 then 'queue_turn' when v_spread_bound then 'spread'
                  when v_kept_bound then 'share_kept' else 'window_full' end;
  end if;
end
$$;

-- Why a request was not booked, and its place in line, handed whole from google_ai_admit_at to
-- google_ai_refusal_at and google_ai_queue_wait: the limit and its cause; reopens_at and recheck_at, the
-- booking's answer when booking_tried (it was asked); ticket, turn, since and turn_at, its place
-- (google_ai_queue_place; no ticket: a new one would be new_ticket); period, a budget's when a budget refused.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_refusal') IS NULL THEN
    CREATE TYPE public.google_ai_refusal AS (
    limit_hit text,
    cause text,
    reopens_at timestamp with time zone,
    recheck_at timestamp with time zone,
    booking_tried boolean,
    ticket uuid,
    turn bigint,
    since timestamp with time zone,
    turn_at timestamp with time zone,
    new_ticket uuid,
    period text
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_refusal IS
    'Why a request was not booked (limit, cause, the booking''s times) and its place in the queue, '
    'handed whole to google_ai_refusal_at and google_ai_queue_wait.';

-- The answer of a request that waits in line, from its ticket as written (p_ticket): its limit, its
-- cause (p_cause), the time of its turn and its place (the ticket, its position, when, its class).
CREATE OR REPLACE FUNCTION public.google_ai_queued_answer(p_ticket public.google_ai_queue, p_cause text,
    p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select jsonb_build_object(
    'ok', false,
    'limit', p_ticket.limit_hit,
    'cause', p_cause,
    'retry_after_ms', public.google_ai_ms_until(p_ticket.expected_at, p_now),
    'retry_at', p_ticket.expected_at,
    'model', p_ticket.model,
    'queue', jsonb_build_object('ticket', p_ticket.ticket_id, 'position', p_ticket."position",
                                'expected_at', p_ticket.expected_at, 'priority', p_ticket.priority_class))
$$;

-- A refused request waits in line (google_ai_admit_at asks when its limit is one a turn can bring and
-- it has wait left): its ticket is taken, or renewed, when its turn is likely within the wait, and
-- answer names it (the queued refusal, without the credential's ids). Otherwise no ticket and a null
-- answer; turn_at, expected and likely_at say when its turn would have been, for the refusal's time.
-- p_limits: the model's row, limits after the margin; p_class: the class the request waits in (its rank
-- the ticket's); p_refusal: why, and its live ticket (none: a new ticket, new_ticket).
CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone,
    p_request public.google_ai_request, p_limits public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal, OUT answer jsonb,
    OUT turn_at timestamp with time zone, OUT expected timestamp with time zone,
    OUT likely_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_wait_until timestamptz := p_now + p_request.wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_refusal.turn;
  v_since timestamptz := p_refusal.since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform public.google_ai_advisory_lock(pg_catalog.hashtext('google_ai_queue:' || p_limits.model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_limits.model, p_now);
  if p_refusal.ticket is null then
    v_turn := public.google_ai_next_turn(p_limits.model, p_class.rank, p_request.caller, null, null, null);
    v_since := p_now;
  end if;
  select coalesce(sum(q.requests), 0), min(q.lease_until) filter (where q.expected_at <= p_now)
    into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_limits.model and q.ticket_id is distinct from p_refusal.ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_class.rank, v_turn, v_since, coalesce(p_refusal.ticket, p_refusal.new_ticket))
    and public.google_ai_waits_alike(q.waits_for, q.priority_class, q.caller, p_class.name, p_request.caller);
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_limits, p_request.exclude_key_ids, p_now, v_ahead + p_request.requests,
    p_class.rank, p_class.name, p_request.caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- No group offers a turn and the booking was not asked: a rest began after the request's place was
  -- read (a statement of its own). Its turn is when the first rest ends.
  if turn_at is null and not p_refusal.booking_tried then
    turn_at := (select min(cd.cooldown_until) from public.google_ai_cooldowns cd
                where cd.model = p_limits.model and cd.cooldown_until > p_now);
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_refusal.booking_tried and p_refusal.reopens_at is null and p_refusal.recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_refusal.reopens_at, p_refusal.recheck_at), p_now + interval '50 ms');
  if turn_at is null and p_refusal.reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position,
      requests, waits_for, reply_by)
    values (coalesce(p_refusal.ticket, p_refusal.new_ticket), p_limits.model, p_class.name, p_class.rank,
      p_request.caller, p_request.client_id, p_request.token_id, p_request.request_id, p_request.model, v_turn,
      v_since, p_request.estimated_tokens, p_refusal.limit_hit, expected, expected + v_grace, v_ahead + 1,
      p_request.requests, public.google_ai_waits_for(p_refusal.limit_hit, p_limits.model, p_class.name),
      p_request.reply_by)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit,
      requests = excluded.requests, waits_for = excluded.waits_for, reply_by = excluded.reply_by
    returning * into v_ticket;
    answer := public.google_ai_queued_answer(v_ticket, p_refusal.cause, p_now);
  end if;
end
$$;
-- ================================================================================================
-- supabase/schemas/45_group_booking.sql
-- ================================================================================================

-- Booking in one quota group: google_ai_book_group counts a request in the group's windows under its
-- counter row's lock (window, day, spread, shares, pace), or says when it may go and why.
set check_function_bodies = off;

-- Pacing: each paced share the requester owns must allow the request's requests more of the day
-- (usable: the model's day, p_model.rpd, less what the other owners' day shares keep: all owners',
-- p_reserved_rpd, less its own). Null: none holds it back; else when the last one allows it: today,
-- else tomorrow (counting what the guard before midnight booked ahead), else later; the days are the
-- provider's, as the counter as of the booking has them (p_at: its instant, day and zone). The
-- requester's paced shares side by side: p_burst, its day share (p_kept), today's and tomorrow's
-- counts (p_used, p_next).
CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_model public.google_ai_model_limits,
    p_at public.google_ai_counter_at, p_request public.google_ai_request, p_reserved_rpd bigint, p_burst integer[],
    p_kept integer[], p_used integer[], p_next integer[]) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_day date := p_at.day;
  v_zone text := p_at.zone;
  v_rpd integer := p_model.rpd;
  v_requests integer := p_request.requests;
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when v_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := v_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + v_requests > public.google_ai_pace_allowance(p_at.at, v_day, p_burst[i], v_usable, v_zone) then
      -- The first moment of the day (s to e, L long) at which the allowance, burst + floor(usable x (t - s) / L),
      -- reaches need = used + requests - burst (to the microsecond): s + ceil(need x L / usable), within the day
      -- exactly when need < usable. Today's if any, else tomorrow's, else the day after begins.
      v_at := greatest(v_at, coalesce((
        select min(case when x.need <= 0 then d.s when x.need < v_usable
                        then d.s + ceil(x.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / v_usable)
                                   * interval '1 microsecond' end)
        from (values (v_day, p_used[i] + v_requests - p_burst[i]), (v_day + 1, p_next[i] + v_requests - p_burst[i]))
               x(day, need),
             lateral (select public.google_ai_day_start_in(x.day, v_zone) as s,
                             public.google_ai_day_start_in(x.day + 1, v_zone) as e) d),
        public.google_ai_day_start_in(v_day + 2, v_zone)));
    end if;
  end loop;
  return v_at;
end
$$;

-- The limits' verdict on one booking (google_ai_booking_outcome): booked, or the limit that blocks first,
-- its cause, and whether the window is full; google_ai_booking_rules hands it on in its own verdict
-- (google_ai_booking_verdict). (A named type, not OUT parameters: a function's OUT parameters are read
-- from its catalog row again on every call.)
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_limit_verdict') IS NULL THEN
    CREATE TYPE public.google_ai_limit_verdict AS (
    outcome text,
    cause text,
    window_full boolean
);
  END IF;
END
$type$;

-- What the rules say of a booking (google_ai_booking_rules): the verdict (outcome, cause, window_full:
-- google_ai_booking_outcome's) and what the rules found on the way to it, which the verdict reads (the
-- pace, paced_until; the place in the schedules, spread_at, and the limit whose schedule it is,
-- spread_limit) and a booking writes or answers. (A named type, not OUT parameters: a function's OUT
-- parameters are read from its catalog row again on every call.)
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_booking_verdict') IS NULL THEN
    CREATE TYPE public.google_ai_booking_verdict AS (
    outcome text,
    cause text,
    window_full boolean,
    paced_until timestamp with time zone,
    spread_at timestamp with time zone,
    spread_step interval,
    held_rpd bigint,
    live bigint[],
    owned bigint[],
    kept jsonb,
    input_until timestamp with time zone,
    output_until timestamp with time zone,
    spread_limit text
);
  END IF;
END
$type$;

-- The booking's verdict, each rule in one place, on the counter as of the booking (p_at:
-- google_ai_counter_at): the day (today's count, and within a guard of midnight the other day's; counts with
-- this request not yet counted, p_held the same of what the others' day shares keep), the pace, the window
-- (with this request counted; p_held_rpm what the others' RPM shares keep), the spread's schedule (named
-- after the limit whose part of the window its step is). outcome: 'booked' or the first that blocks; cause,
-- one meaning each: the day spent or kept by others' shares, a pace, the window full or kept by others'
-- shares, or the request's place in the spread's schedule; window_full: no room in the window for this
-- requester, whatever blocked first. p_rules: the rules' verdict as far as they came
-- (google_ai_booking_rules: the pace, paced_until; the place in the schedules, spread_at, and its limit,
-- spread_limit), which this one completes. p_model, p_class, p_request: the request's model row (its limits
-- after the margin: google_ai_request_limits), class row and the request itself (its requests: what the day
-- must have room for; its caller, client and token: who it books for), whole, so a rule here reads a new
-- column of theirs with no signature changed on the way. (PL/pgSQL returning a record: the rules call it as
-- an expression, where a SQL table function is a statement of its own.)
CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_request public.google_ai_request, p_at public.google_ai_counter_at,
    p_held_rpm bigint, p_held bigint[], p_rules public.google_ai_booking_verdict) RETURNS public.google_ai_limit_verdict
    LANGUAGE plpgsql IMMUTABLE
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: p_class is unused by design, handed down whole for the rule that reads it next,
-- as said above; extra_warnings says nothing else in a body this short.)
declare
  v_requests integer := p_request.requests;
  -- The day has no room for this requester's requests (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_at.counts[1] + v_requests > p_model.rpd - p_held[1]
    or (p_at.near_end and p_at.counts[2] + v_requests > p_model.rpd - p_held[2])
    or (p_at.near_start and p_at.counts[3] + v_requests > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_at.counts[1] + v_requests > p_model.rpd
    or (p_at.near_end and p_at.counts[2] + v_requests > p_model.rpd)
    or (p_at.near_start and p_at.counts[3] + v_requests > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens. A bucket (bucket_share: Anthropic's)
  -- is not a sliding minute: its requests are held to their bucket alone (the schedule's place), the
  -- window counting only while others' shares keep part of it.
  v_rpm_full boolean := p_model.rpm is not null and p_at.sum_requests > p_model.rpm - p_held_rpm
    and (p_model.bucket_share is null or p_held_rpm > 0);
  v_tpm_full boolean := p_model.tpm is not null and p_at.sum_tokens > p_model.tpm;
begin
  if v_day_full then
    return row('rpd', case when v_day_spent then 'day_exhausted' else 'share_kept' end,
      v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif p_rules.paced_until is not null then
    return row('pace', 'pace', v_rpm_full or v_tpm_full)::public.google_ai_limit_verdict;
  elsif v_rpm_full or v_tpm_full then
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    return row(case when v_rpm_full then 'rpm' else 'tpm' end,
      case when (p_model.rpm is not null and p_at.sum_requests > p_model.rpm) or v_tpm_full then 'window_full'
           else 'share_kept' end, true)::public.google_ai_limit_verdict;
  elsif p_rules.spread_at is not null then
    return row(p_rules.spread_limit, 'spread', false)::public.google_ai_limit_verdict;
  end if;
  return row('booked', null, false)::public.google_ai_limit_verdict;
end
$$;

-- The request's place in its group's schedules: one mechanism, a GCRA "theoretical arrival time" on the
-- counter row per schedule, behind both shapes a limit has. The spread of a sliding window
-- (spread_until, google_ai_spread_step: while requests wait, unless the request's own share covers it,
-- p_in_share) is, for a model whose limits are buckets (bucket_share: Anthropic), the request bucket,
-- kept always with its bucket's size as the burst; and such a model's token buckets (itpm, otpm:
-- google_ai_bucket_take) take the request's input (its estimated tokens, less its answer where the row
-- books answers in its tokens) and its answer (output_tokens), all or nothing. place: when the request
-- may go (null: now); limit_name: the limit whose schedule holds it ('tpm' for a token bucket); step:
-- the spread's step after a booking; input_until, output_until: the token buckets as a booking leaves
-- them. p_counter: the group's counter row as locked (its schedules: spread_until, input_until,
-- output_until); p_at: the counter as of the booking (its instant and window); p_class: the request's
-- class (its rank, as the spread holds it).
CREATE OR REPLACE FUNCTION public.google_ai_schedule_place(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_counter public.google_ai_usage_counters,
    p_at public.google_ai_counter_at, p_request public.google_ai_request, p_in_share boolean,
    OUT step interval, OUT place timestamp with time zone, OUT limit_name text,
    OUT input_until timestamp with time zone, OUT output_until timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_now timestamptz := p_at.at;
  v_window interval := p_at.minute;
  v_tokens integer := p_request.estimated_tokens;
  v_output integer := coalesce(p_request.output_tokens, 0);
  v_step record;
  v_in record;
  v_out record;
begin
  v_step := public.google_ai_spread_step(case when p_model.bucket_share is null then p_model.spread_burst
    else greatest(1, floor(p_model.rpm * p_model.bucket_share))::integer end, v_window, p_model.rpm, p_model.tpm,
    v_tokens);
  step := v_step.step;
  limit_name := v_step.limit_name;
  if v_step.step is not null and p_counter.spread_until - v_step.tolerance > v_now
     and (p_model.bucket_share is not null
          or (not p_in_share and public.google_ai_spread_holds(p_model.model, p_class.rank, v_now))) then
    place := p_counter.spread_until - v_step.tolerance;
  end if;
  if p_model.itpm is null and p_model.otpm is null then
    return;
  end if;
  v_in := public.google_ai_bucket_take(p_counter.input_until, v_now, v_window, p_model.itpm, p_model.bucket_share,
    v_tokens - case when p_model.booked_output_tokens is not null then v_output else 0 end);
  v_out := public.google_ai_bucket_take(p_counter.output_until, v_now, v_window, p_model.otpm, p_model.bucket_share,
    v_output);
  if greatest(v_in.opens_at, v_out.opens_at) > coalesce(place, '-infinity') then
    place := greatest(v_in.opens_at, v_out.opens_at);
    limit_name := 'tpm';
  end if;
  -- (Written only when the request is booked: a refused booking writes nothing.)
  input_until := v_in.until;
  output_until := v_out.until;
end
$$;

-- The rules a booking in one group meets. The model's shares as the requester sees them at p_now, in
-- one pass: what the others' shares still keep from it, of the window and of each day
-- google_ai_day_counts names; its own (its class's or its caller's), which a booking counts, and
-- whether one of them still has room in its RPM share (the spread does not hold it then); a share's
-- window is read only where it matters, an owner's only to the spread. Then its pace (paced_until:
-- google_ai_paced_until, when it owns a paced share: usable is the group's day less what the other
-- owners' shares keep), its place in its schedules (spread_at: google_ai_schedule_place, the spread's
-- and a model's buckets; spread_step: the spread's step after a booking; input_until, output_until:
-- the token buckets after it; spread_limit: the limit whose schedule holds it; for a row with no bucket,
-- Google's and OpenAI's, the spread alone as google_ai_schedule_place has it, one call less) and the
-- verdict (google_ai_booking_outcome, on what the rules found so far: the answer's fields but the verdict).
-- p_at: the counter as of the booking (google_ai_counter_at: the window with this request counted, the
-- day's counts before it). What a booking writes
-- and answers comes with it: the others' day shares (held_rpd), the model's shares in id order and the
-- requester's own (live, owned: what the counter row's share_use keeps), what the shares keep for its
-- class and for the others (kept, as google_ai_quota_kept reads it). p_model, p_class, p_caller,
-- p_request: the request's model row (limits after the margin, spread_burst: google_ai_request_limits),
-- class row, caller and the request itself (its tokens, its answer, its requests); p_counter: the group's
-- counter row as locked (its share_use, its spread_until). Each whole, so a rule reads a new column of
-- theirs with no signature changed on the way.
-- (PL/pgSQL, called as an expression: one statement reads the shares, the rest are expressions.)
CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request,
    p_counter public.google_ai_usage_counters, p_at public.google_ai_counter_at)
    RETURNS public.google_ai_booking_verdict
    LANGUAGE plpgsql STABLE
    AS $$
declare
  paced_until timestamptz; spread_at timestamptz; live bigint[]; owned bigint[]; kept jsonb;
  input_until timestamptz; output_until timestamptz;  -- its answer's fields
  v_share record;
  v_win integer;                    -- a share's window
  v_reserved_rpd bigint := 0;       -- the day shares of all owners
  v_held_rpm bigint := 0;           -- what the others' shares keep: of the window, and of each day
  v_held bigint[] := '{0,0,0}'::bigint[];
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[]; v_pace_used integer[]; v_pace_next integer[];
  v_kept bigint[] := '{0,0,0,0}'::bigint[];   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict public.google_ai_limit_verdict;
  v_rules public.google_ai_booking_verdict;  -- what the rules found, then their verdict
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = p_class.name, false) as for_class,
           coalesce(s.priority_class = p_class.name, false) or coalesce(s.caller = p_caller.name, false) as is_owned,
           public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_at.day) as day
    from public.google_ai_quota_shares s
    left join unnest(p_counter.share_use) u on u.share_id = s.id
    where s.model = p_model.model
    order by s.id
  loop
    v_win := case when v_share.reserved_rpm is null or (v_share.is_owned and p_model.spread_burst is null) then 0
                  else (public.google_ai_ring_at(p_at.at, p_at.minute, v_share.ring_low, v_share.ring,
                          v_share.window_requests, null)).sum_requests end;
    live := live || v_share.id;
    v_reserved_rpd := v_reserved_rpd + v_share.rpd_share;
    if v_share.is_owned then
      owned := owned || v_share.id;
      v_in_share := v_in_share or coalesce(v_win < v_share.reserved_rpm, false);
      if v_share.pace_burst is not null then
        v_pace_burst := v_pace_burst || v_share.pace_burst;
        v_pace_kept := v_pace_kept || v_share.rpd_share;
        v_pace_used := v_pace_used || v_share.day[1];
        v_pace_next := v_pace_next || v_share.day[2];
      end if;
    else
      v_held_rpm := v_held_rpm + greatest(0, coalesce(v_share.reserved_rpm, 0) - v_win);
      v_held := array[v_held[1] + greatest(0, v_share.rpd_share - v_share.day[1]),
                      v_held[2] + greatest(0, v_share.rpd_share - v_share.day[2]),
                      v_held[3] + greatest(0, v_share.rpd_share - v_share.day[3])];
    end if;
    v_kept := case when v_share.for_class
                   then array[v_kept[1], v_kept[2] + coalesce(v_share.reserved_rpm, 0), v_kept[3],
                              v_kept[4] + v_share.rpd_share]
                   else array[v_kept[1] + coalesce(v_share.reserved_rpm, 0), v_kept[2],
                              v_kept[3] + v_share.rpd_share, v_kept[4]] end;
  end loop;

  if p_class.name is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_model, p_at, p_request, v_reserved_rpd, v_pace_burst, v_pace_kept,
      v_pace_used, v_pace_next);
  end if;
  if num_nonnulls(p_model.bucket_share, p_model.itpm, p_model.otpm) = 0 then
    v_step := public.google_ai_spread_step(p_model.spread_burst, p_at.minute, p_model.rpm, p_model.tpm,
      p_request.estimated_tokens);
    if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_at.at
       and public.google_ai_spread_holds(p_model.model, p_class.rank, p_at.at) then
      spread_at := p_counter.spread_until - v_step.tolerance;
    end if;
  else
    v_step := public.google_ai_schedule_place(p_model, p_class, p_counter, p_at, p_request, v_in_share);
    spread_at := v_step.place; input_until := v_step.input_until; output_until := v_step.output_until;
  end if;
  v_rules := row(null, null, null, paced_until, spread_at, v_step.step, v_held[1], live, owned, kept, input_until,
    output_until, v_step.limit_name)::public.google_ai_booking_verdict;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_request, p_at, v_held_rpm, v_held, v_rules);
  v_rules.outcome := v_verdict.outcome;
  v_rules.cause := v_verdict.cause;
  v_rules.window_full := v_verdict.window_full;
  return v_rules;
end
$$;

-- When a refused request may go (reopens_at) and when asking again may help sooner (recheck_at), from
-- what the rules said (p_rules: google_ai_booking_rules) on the counter as of the booking (p_at):
-- the day at midnight plus its guard; a request today's count has room for (beside what the others'
-- day shares keep, held_rpd) was refused
-- by the other day's count within a guard: within the guard before midnight it waits past the next
-- midnight's guard (tomorrow is full too), within the guard after midnight only until that guard ends
-- (yesterday's count stops binding then); the window
-- when it has room for this requester (google_ai_window_reopens_for), sooner if tokens of admissions
-- still in flight come back (after the guard's recheck_ms); a pace or the schedule's place, and the
-- window must have room by then. p_model, p_class, p_caller: whole, as the rules take them.
CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_rules public.google_ai_booking_verdict, p_quota_group text,
    p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes,
    p_caller public.google_ai_caller, p_at public.google_ai_counter_at, p_tokens integer, p_requests integer DEFAULT 1,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
begin
  if p_rules.outcome = 'rpd' then
    reopens_at := case when p_model.rpd - p_rules.held_rpd <= p_at.counts[1] then p_at.midnight
                       when p_at.near_end then public.google_ai_midnight_after_in(p_at.midnight, p_at.zone)
                       else p_at.day_start end + p_at.day_guard;
    return;
  end if;
  if p_rules.window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model, p_class, p_caller, p_at.at,
      p_at.minute, p_tokens, p_requests);
    if p_rules.outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                           where a.quota_group = p_quota_group and a.model = p_model.model
                                             and a.status = 'reserved' and a.admitted_at > p_at.at - p_at.minute
                                             and a.admitted_at < 'infinity') then
      recheck_at := p_at.at + (public.google_ai_admission_guard()).recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_rules.outcome = 'pace' then
    reopens_at := greatest(p_rules.paced_until, reopens_at);
    recheck_at := null;
  elsif p_rules.spread_at is not null then
    reopens_at := greatest(p_rules.spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$$;

-- A booking in one group, as google_ai_book_group answers it. (A named type, as
-- google_ai_booking_verdict is.)
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_group_booking') IS NULL THEN
    CREATE TYPE public.google_ai_group_booking AS (
    outcome text,
    minute_bucket timestamp with time zone,
    day_bucket date,
    reopens_at timestamp with time zone,
    recheck_at timestamp with time zone,
    cause text,
    admitted_at timestamp with time zone,
    quota jsonb
);
  END IF;
END
$type$;

-- The quota a booking leaves, its answer's (as google_ai_group_quota reads it, this request counted: the
-- window's figures reset as their oldest seconds leave the ring, now at the latest), so the answer needs no
-- second reading of the window; p_kept: what the model's shares keep for the admitted class (as
-- google_ai_answer_quota_at adds it), added only when they keep something (a concatenation of an empty object
-- is the object as it is, where taking a key out encoded the whole object again); p_followed: a row that follows its
-- provider, the limits it stated for the group as applied (null: the row keeps its own). p_model: limits
-- after the margin (and followed); p_at: the counter as of the booking. (SQL without a SET clause, one
-- expression: PostgreSQL inlines it into google_ai_book_group's, which then costs what it did written there.)
CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_quota_group text, p_model public.google_ai_model_limits,
    p_at public.google_ai_counter_at, p_requests integer, p_kept jsonb, p_followed jsonb) RETURNS jsonb
    LANGUAGE sql
    AS $$
  select jsonb_build_object(
        'model', p_model.model,
        'quota_group', p_quota_group,
        'rpm', p_model.rpm,
        'requests_left', case when p_model.rpm is not null then greatest(0, p_model.rpm - p_at.sum_requests) end,
        'requests_reset_ms', case when p_model.rpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute), p_at.at), p_at.at) end,
        'tpm', p_model.tpm,
        'tokens_left', case when p_model.tpm is not null then greatest(0, p_model.tpm - p_at.sum_tokens) end,
        'tokens_reset_ms', case when p_model.tpm is not null then public.google_ai_ms_until(
          coalesce(public.google_ai_ring_frees_at(p_at.ring_low, p_at.ring, p_at.minute, true), p_at.at), p_at.at) end,
        'rpd', p_model.rpd,
        'day_left', case when p_model.rpd is not null then greatest(0, p_model.rpd - (greatest(p_at.counts[1],
          case when p_at.near_end then p_at.counts[2] end, case when p_at.near_start then p_at.counts[3] end)
          + p_requests)) end,
        'day_reset_ms', case when p_model.rpd is not null then public.google_ai_ms_until(
          case when p_at.near_start and p_at.counts[3] > p_at.counts[1] then p_at.day_start else p_at.midnight end
          + p_at.day_guard, p_at.at) end)
      || case when p_kept is null then '{}' else jsonb_build_object('kept', p_kept) end
      || case when p_followed is null then '{}' else jsonb_build_object('followed', p_followed) end
$$;

-- A quota group's counter row for p_model, locked (created on the group's first use of the model); with
-- p_skip_locked, a row another reservation holds is passed over: all fields null. (A new row, or one
-- housekeeping removed when idle, starts its owners' use again: share_use is on the row.) (The row as one
-- whole-row value: one column to set up, not one per column of the row; counted, about 30k less.)
CREATE OR REPLACE FUNCTION public.google_ai_counter_locked(p_quota_group text, p_model text, p_skip_locked boolean)
    RETURNS public.google_ai_usage_counters
    LANGUAGE plpgsql
    AS $$
declare
  v_row public.google_ai_usage_counters;
begin
  for i in 1 .. 2 loop
    if p_skip_locked then
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update skip locked);
    elsif pg_catalog.current_setting('eve.batch_member', true) = 'on' then
      -- (A batch's later reservation never waits: 37_lock_waits.sql.)
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update nowait);
    else
      v_row := (select c from public.google_ai_usage_counters c
                where c.quota_group = p_quota_group and c.model = p_model for update);
    end if;
    exit when v_row.id is not null;
    if p_skip_locked and exists (select 1 from public.google_ai_usage_counters c
                                 where c.quota_group = p_quota_group and c.model = p_model) then
      return v_row;
    end if;
    insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
    values (p_quota_group, p_model, 0, 0, 0)
    on conflict (quota_group, model) where quota_group is not null do nothing;
  end loop;
  if v_row.id is null then
    raise exception 'no counter row for quota group % and model %', p_quota_group, p_model;
  end if;
  return v_row;
end
$$;

-- Books one request (p_request: its requests at its provider, all counted at once) on a quota group's counter
-- row (its pool's, when the model names one: limit_pool), or says why not. outcome: 'booked', 'skipped' (the
-- row is locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd', 'pace', 'rpm',
-- 'tpm'; cause names why (google_ai_refusal_cause's list), reopens_at when it may go, recheck_at when asking
-- again may help sooner (tokens of admissions in flight may come back). p_model, p_class, p_caller,
-- p_request: the request's model row (limits after the margin), class row, caller and the request itself (its
-- tokens; output_tokens, the answer it is sent with, what a model's otpm bucket takes), whole, handed to the
-- rules (google_ai_booking_rules). A booking answers with the quota it leaves (google_ai_booked_quota). The
-- subtransaction (begin ... exception) gives the row lock back when the row is full, so the caller can move
-- on to the next group without holding it. p_zone: the zone the provider's day turns in, the group's day
-- (google_ai_candidate_groups reads it with the candidates). The answer's day_left: the day is the largest of
-- today's count and, within a guard of midnight, the other day's, before this request; reset at midnight plus
-- the guard, or after midnight at that guard's end when yesterday's is larger (google_ai_booked_quota). A row
-- that follows its provider (provider_limits 'follow') is held to the limits the provider stated for the
-- group (google_ai_followed_limits, on the counter row as locked), its answer's quota saying them (followed).
-- (Its answers are assigned, not selected into: a select ... into is a statement of its own, counted about
-- 15k instructions.)
CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request,
    p_now timestamp with time zone, p_skip_locked boolean, p_zone text) RETURNS public.google_ai_group_booking
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of the booking, this request in its window
  v_rules public.google_ai_booking_verdict;  -- what the rules say (google_ai_booking_rules)
  v_minute timestamptz;  -- the calendar minute it counts in
  v_times record;      -- a refusal's (google_ai_refusal_times)
  v_followed jsonb;    -- a row that follows its provider: the limits the provider stated, as applied
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, coalesce(p_model.limit_pool, p_model.model), p_skip_locked);
    if v_row.id is null then
      return row('skipped', null, null, null, null, null, null, null)::public.google_ai_group_booking;
    end if;
    -- (A raise applies to what is booked, the window holds it; a lowering refuses nothing admitted, it counts it.)
    if p_model.provider_limits = 'follow' then
      p_model := public.google_ai_followed_limits(p_model, v_row.stated_limits);
      v_followed := coalesce(to_jsonb(v_row.stated_limits), '[]'::jsonb);
    end if;

    -- Decided under the lock, on a clock that never goes back; the ring moved on with this request counted.
    v_at := public.google_ai_counter_at(v_row, p_zone, coalesce(p_now, pg_catalog.clock_timestamp()), true,
      p_request.requests, p_request.estimated_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, p_request, v_row, v_at);
    v_minute := greatest(public.google_ai_minute_window(v_at.at), v_row.minute_bucket);
    if v_rules.outcome <> 'booked' then
      v_times := public.google_ai_refusal_times(v_rules, p_quota_group, p_model, p_class, p_caller, v_at,
        p_request.estimated_tokens, p_request.requests);
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = v_minute,
      day_bucket      = v_at.day,
      rpm_used        = case when c.minute_bucket = v_minute then c.rpm_used else 0 end
                        + p_request.requests,
      tpm_used        = case when c.minute_bucket = v_minute then c.tpm_used else 0 end
                        + p_request.estimated_tokens,
      rpd_used        = v_at.counts[1] + p_request.requests,
      rpd_next_used   = v_at.counts[2] + case when v_at.near_end then p_request.requests else 0 end,
      rpd_prev_used   = v_at.counts[3] + case when v_at.near_start then p_request.requests else 0 end,
      ring_low        = v_at.ring_low,
      ring            = v_at.ring,
      window_requests = v_at.sum_requests,
      window_tokens   = v_at.sum_tokens,
      window_at       = v_at.at,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_at.at, v_rules.spread_step,
                                                         p_model.bucket_share is null),
      input_until     = v_rules.input_until, output_until = v_rules.output_until,
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned,
                                    v_at, p_request.requests) end,
      updated_at      = v_at.at
    where c.id = v_row.id;
    return row('booked', v_minute, v_at.day, null, null, null, v_at.at, public.google_ai_booked_quota(p_quota_group,
      p_model, v_at, p_request.requests, v_rules.kept, v_followed))::public.google_ai_group_booking;
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
  end;
  -- Refused (the lock given back): the rules' outcome and cause, and the times set above.
  return row(v_rules.outcome, v_minute, v_at.day, v_times.reopens_at, v_times.recheck_at, v_rules.cause, null,
    null)::public.google_ai_group_booking;
end
$$;
-- ================================================================================================
-- supabase/schemas/47_stated_limits.sql
-- ================================================================================================

-- The limits a provider states: recorded per quota group and model (or pool) on the counter row finalize
-- settles (google_ai_note_stated), read by the booking of a row that follows them
-- (google_ai_followed_limits, 10_keys_and_limits.sql), and listed where a row and its provider disagree
-- (google_ai_stated_limits, google_ai_limit_disagreements: the quota route, the metrics, the maintenance run).
set check_function_bodies = off;

-- The stated limits as applied after one more answer (p_stated: its figures, rpm, tpm, rpd, itpm, otpm;
-- null: not stated), from those applied before (p_applied), the last answer's (p_heard) and the model
-- row's (p_row, before any statement). A figure below the one applied (or the row's, before any) is
-- applied at once: the provider refuses above it now. One above it is applied when the answer before
-- stated it too (two answers agree): one answer's word does not raise what the gateway admits. A
-- figure not stated keeps the one applied. Null: nothing applied. (PL/pgSQL: read by finalize only.)
CREATE OR REPLACE FUNCTION public.google_ai_stated_applied(p_applied integer[], p_heard integer[],
    p_stated integer[], p_row integer[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_applied integer[] := array_fill(null::integer, array[5]);
  v_before integer;
begin
  for i in 1 .. 5 loop
    v_before := coalesce(p_applied[i], p_row[i]);
    v_applied[i] := case when p_stated[i] is null then p_applied[i]
                         when v_before is null or p_stated[i] <= v_before or p_heard[i] = p_stated[i] then p_stated[i]
                         else p_applied[i] end;
  end loop;
  return case when num_nonnulls(variadic v_applied) > 0 then v_applied end;
end
$$;

-- A schedule's time (a counter row's spread_until, input_until or output_until: when its GCRA is level
-- again, p_until) at p_now, carried from a limit of p_before to one of p_after a window: what it already
-- owes, in requests or tokens, is owed at the new rate, so what is booked counts against the new limit
-- (booked + new <= the limit after a raise; a lowering refuses nothing booked, the next wait longer).
-- Unchanged when either limit is not known or the schedule is level. SQL, inlined where it is read.
CREATE OR REPLACE FUNCTION public.google_ai_until_rescaled(p_until timestamp with time zone,
    p_now timestamp with time zone, p_before integer, p_after integer) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case when p_until operator(pg_catalog.>) p_now and p_before operator(pg_catalog.>) 0
                   and p_after operator(pg_catalog.>) 0 and p_before operator(pg_catalog.<>) p_after
              then p_now operator(pg_catalog.+) ((p_until operator(pg_catalog.-) p_now)
                   operator(pg_catalog.*) (p_before::double precision operator(pg_catalog./) p_after))
              else p_until end
$$;

-- What an answer states of its group's limits (p_stated, as google_ai_stated_applied takes it), written on
-- the counter row the call's finalize has just settled and holds locked (google_ai_settle_call: no other
-- row, no other lock): only when a figure applied or heard changes, else at most once a minute to say
-- when the provider last said them (stated_at). A row that follows its provider carries its schedules
-- (the spread's and the buckets') to the limits now applied (google_ai_until_rescaled), so a raise applies
-- to what is already booked. A row whose group has no counter row yet: nothing.
CREATE OR REPLACE FUNCTION public.google_ai_note_stated(p_att public.google_ai_attempts, p_stated integer[])
    RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_model public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
  v_applied integer[];
  v_before public.google_ai_model_limits;  -- a following row's limits, as booked until now and from now
  v_after public.google_ai_model_limits;
begin
  if p_stated is null or p_att.quota_group is null then
    return;
  end if;
  select l.* into v_model from public.google_ai_model_limits l where l.model = p_att.model;
  select c.* into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, p_att.model);
  if v_row.id is null then
    return;
  end if;
  v_applied := public.google_ai_stated_applied(v_row.stated_limits, v_row.stated_heard, p_stated,
    array[v_model.rpm, v_model.tpm, v_model.rpd, v_model.itpm, v_model.otpm]);
  if v_applied is not distinct from v_row.stated_limits and p_stated is not distinct from v_row.stated_heard
     and v_row.stated_at > v_now - interval '1 minute' then
    return;
  end if;
  if v_model.provider_limits = 'follow' and v_applied is distinct from v_row.stated_limits then
    -- (The row's own limits after its margin, as the booking counts them before any statement.)
    v_before := v_model;
    v_before.rpm := public.google_ai_effective_limit(v_model.rpm, v_model.safety_margin);
    v_before.itpm := public.google_ai_effective_limit(v_model.itpm, v_model.safety_margin);
    v_before.otpm := public.google_ai_effective_limit(v_model.otpm, v_model.safety_margin);
    v_after := public.google_ai_followed_limits(v_before, v_applied);
    v_before := public.google_ai_followed_limits(v_before, v_row.stated_limits);
  end if;
  update public.google_ai_usage_counters c set
    stated_limits = v_applied, stated_heard = p_stated, stated_at = v_now,
    stated_since = case when v_applied is distinct from c.stated_limits then v_now else c.stated_since end,
    spread_until = public.google_ai_until_rescaled(c.spread_until, v_now, v_before.rpm, v_after.rpm),
    input_until = public.google_ai_until_rescaled(c.input_until, v_now, v_before.itpm, v_after.itpm),
    output_until = public.google_ai_until_rescaled(c.output_until, v_now, v_before.otpm, v_after.otpm)
  where c.id = v_row.id;
end
$$;

-- A model row's effective limits in one quota group (p_limits: after the margin, google_ai_request_limits):
-- for a row that follows its provider, the limits the provider stated for the group as its booking counts
-- them (google_ai_followed_limits, on the group's counter row: its pool's or its own); else p_limits. What
-- the quota route and a refusal's quota say; the booking reads the counter row it has locked instead.
CREATE OR REPLACE FUNCTION public.google_ai_group_limits(p_limits public.google_ai_model_limits, p_quota_group text)
    RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if p_limits.provider_limits is distinct from 'follow' then
    return p_limits;
  end if;
  return public.google_ai_followed_limits(p_limits, (select c.stated_limits from public.google_ai_usage_counters c
    where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model)));
end
$$;

-- What a request to a row that follows its provider is judged too large by before any lock (p_limits:
-- google_ai_request_limits', the margin still to apply to the provider's figures; p_exclude_key_ids: the
-- request's): each limit the largest of those the quota groups serving it follow (google_ai_followed_limits,
-- on each group's counter row: its pool's or its own; a group the provider has stated nothing for counts
-- the row's), none where a group has none. So a request larger than every group's window is refused at
-- once, and one a group could take is left to the booking. No group serving it: p_limits, unchanged.
CREATE OR REPLACE FUNCTION public.google_ai_followed_widest(p_limits public.google_ai_model_limits,
    p_exclude_key_ids uuid[]) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_widest record;
begin
  select count(*) as groups,
         case when bool_and((f.l).rpm is not null) then max((f.l).rpm) end as rpm,
         case when bool_and((f.l).tpm is not null) then max((f.l).tpm) end as tpm,
         case when bool_and((f.l).rpd is not null) then max((f.l).rpd) end as rpd,
         case when bool_and((f.l).itpm is not null) then max((f.l).itpm) end as itpm,
         case when bool_and((f.l).otpm is not null) then max((f.l).otpm) end as otpm
    into v_widest
  from (select distinct s.quota_group from public.google_ai_serving_keys(p_limits.model, p_exclude_key_ids) s) g
  left join public.google_ai_usage_counters c
    on c.quota_group = g.quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model)
  cross join lateral (select public.google_ai_followed_limits(p_limits, c.stated_limits) as l) f;
  if v_widest.groups > 0 then
    select v_widest.rpm, v_widest.tpm, v_widest.rpd, v_widest.itpm, v_widest.otpm
      into p_limits.rpm, p_limits.tpm, p_limits.rpd, p_limits.itpm, p_limits.otpm;
  end if;
  return p_limits;
end
$$;

-- A model row's effective limits in one quota group, from the row as stored (p_model, before its margin):
-- its figures after its margin, and for a row that follows its provider those the provider stated for
-- the group (google_ai_group_limits). What the usage view (google_ai_usage_now) and google_ai_group_room
-- count against, as the booking does. Security definer, as google_ai_group_room is: the view runs with
-- its reader's rights (service_role), which may call this and nothing under it.
CREATE OR REPLACE FUNCTION public.google_ai_stored_group_limits(p_model public.google_ai_model_limits,
    p_quota_group text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  p_model.rpm := public.google_ai_effective_limit(p_model.rpm, p_model.safety_margin);
  p_model.tpm := public.google_ai_effective_limit(p_model.tpm, p_model.safety_margin);
  p_model.rpd := public.google_ai_effective_limit(p_model.rpd, p_model.safety_margin);
  p_model.itpm := public.google_ai_effective_limit(p_model.itpm, p_model.safety_margin);
  p_model.otpm := public.google_ai_effective_limit(p_model.otpm, p_model.safety_margin);
  return public.google_ai_group_limits(p_model, p_quota_group);
end
$$;

-- The RPM a quota group's booking counts against, for a model row as stored (p_model: the table's row,
-- before its margin): the row's after its margin, and for a row that follows its provider the one the
-- provider stated for the group (google_ai_group_limits). The rest a bucket's word asks for
-- (google_ai_settle_call) is placed on the schedule the booking keeps.
CREATE OR REPLACE FUNCTION public.google_ai_group_rpm(p_model public.google_ai_model_limits, p_quota_group text)
    RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  p_model.rpm := public.google_ai_effective_limit(p_model.rpm, p_model.safety_margin);
  if p_model.provider_limits is distinct from 'follow' then
    return p_model.rpm;
  end if;
  return (public.google_ai_group_limits(p_model, p_quota_group)).rpm;
end
$$;

-- Each limit of an active model row beside what its provider stated for a quota group (the counter row
-- of the row's pool or its own), where the provider stated one: the row's own figure (before its margin),
-- the provider's as applied, the effective one the gateway counts against (after the margin; a row that
-- follows: google_ai_followed_limits), when the provider last said it and since when it holds. disagreement:
-- 'above' (a row that keeps its own limits above the provider's: the gateway admits what the provider
-- refuses), 'below' (one that keeps its own below it: room left unused), 'ceiling' (a row that follows,
-- held below the provider by its ceiling), else null.
CREATE OR REPLACE FUNCTION public.google_ai_stated_limits() RETURNS TABLE(quota_group text, model text,
    provider_limits text, limit_name text, row_limit integer, provider_limit integer, effective_limit integer,
    said_at timestamp with time zone, since timestamp with time zone, disagreement text)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select c.quota_group, l.model, l.provider_limits, n.name, n.own, n.said,
         case when l.provider_limits = 'follow' then n.followed else n.kept end, c.stated_at, c.stated_since,
         case when l.provider_limits = 'keep' and n.own is distinct from n.said
                then case when n.own is null or n.own > n.said then 'above' else 'below' end
              when l.provider_limits = 'follow' and n.ceiling < n.said then 'ceiling' end
  from public.google_ai_model_limits l
  join public.google_ai_usage_counters c on c.model = coalesce(l.limit_pool, l.model) and c.quota_group is not null
  cross join lateral (select public.google_ai_followed_limits(l, c.stated_limits) as f) f
  cross join lateral (values
    ('rpm', l.rpm, c.stated_limits[1], l.follow_ceiling_rpm, (f.f).rpm,
       public.google_ai_effective_limit(l.rpm, l.safety_margin)),
    ('tpm', l.tpm, c.stated_limits[2], l.follow_ceiling_tpm, (f.f).tpm,
       public.google_ai_effective_limit(l.tpm, l.safety_margin)),
    ('rpd', l.rpd, c.stated_limits[3], l.follow_ceiling_rpd, (f.f).rpd,
       public.google_ai_effective_limit(l.rpd, l.safety_margin)),
    ('itpm', l.itpm, c.stated_limits[4], null::integer, (f.f).itpm,
       public.google_ai_effective_limit(l.itpm, l.safety_margin)),
    ('otpm', l.otpm, c.stated_limits[5], null::integer, (f.f).otpm,
       public.google_ai_effective_limit(l.otpm, l.safety_margin)))
    n(name, own, said, ceiling, followed, kept)
  where l.is_active and n.said is not null
$$;

-- The disagreements (google_ai_stated_limits' rows that name one), as the maintenance run lists them among
-- its problems and housekeeping logs them: model, quota group, limit, mode, the row's and the provider's
-- figures, when it was said and the disagreement.
CREATE OR REPLACE FUNCTION public.google_ai_limit_disagreements() RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object('model', d.model, 'quota_group', d.quota_group,
           'limit', d.limit_name, 'mode', d.provider_limits, 'row', d.row_limit, 'provider', d.provider_limit,
           'said_at', d.said_at, 'disagreement', d.disagreement)
           order by d.model, d.quota_group, d.limit_name), '[]'::jsonb)
  from public.google_ai_stated_limits() d
  where d.disagreement is not null
$$;
-- ================================================================================================
-- supabase/schemas/50_booking.sql
-- ================================================================================================

-- Booking a request: google_ai_book_best_group tries the groups that may serve the model in rank order,
-- each through google_ai_book_group (45_group_booking.sql) under its counter row's lock.
set check_function_bodies = off;

-- A request's booking, as google_ai_book_best_group answers it. (A named type, not OUT parameters: a
-- function's OUT parameters are read from its catalog row again on every call.)
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_booking') IS NULL THEN
    CREATE TYPE public.google_ai_booking AS (
    booked_group text,
    minute_bucket timestamp with time zone,
    day_bucket date,
    blocked_by text,
    reopens_at timestamp with time zone,
    recheck_at timestamp with time zone,
    cause text,
    admitted_at timestamp with time zone,
    quota jsonb,
    key_id uuid,
    key_alias text,
    env_var_name text,
    booked_usd numeric,
    budget_period text
);
  END IF;
END
$type$;

-- A service caller's budget (google_ai_caller_budgets, 32_budgets.sql) as a booking at p_at sees it, its
-- row locked until the booking counts the request in it (google_ai_count_budgets): day, the owner's Pacific day
-- (every budget's, whichever provider's day the model's RPD counts in), null when the request's caller
-- has no budget or is a client's (its client_id: its token carries its budgets); worst, what the call may
-- cost where the caller has a budget in money (google_ai_worst_call_cost: the request's output_tokens,
-- the answer it is sent with, at the tiers of its class p_class); cause, period and reopens_at: the
-- budget's verdict (google_ai_budget_verdict) on the request (p_request: its caller, client, tokens,
-- attempt and requests) to the model p_model (its canonical name, which its price is read by). (The
-- name, not the model's row: a row passed is copied at the call, counted, and only its name is read.)
CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_request public.google_ai_request,
    p_model text, p_class text, p_at timestamp with time zone, OUT day date,
    OUT worst numeric, OUT cause text, OUT reopens_at timestamp with time zone, OUT period text) RETURNS record
    LANGUAGE plpgsql
    AS $$
declare
  v_row public.google_ai_caller_budgets;
begin
  if p_request.client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that judges a budget costs more
  -- to start than this one. The row as one whole-row value: one column to set up, not one per column of
  -- the row; counted, about 16k less.)
  v_row := (select b from public.google_ai_caller_budgets b where b.caller = p_request.caller for update);
  if v_row.caller is null then
    return;
  end if;
  day := public.google_ai_pacific_day(p_at);
  if num_nonnulls(v_row.daily_max_usd, v_row.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model, p_request.estimated_tokens, p_request.output_tokens,
      p_class);
  end if;
  select v.cause, v.period, v.reopens_at into cause, period, reopens_at
  from public.google_ai_budget_verdict(public.google_ai_budget_of(v_row), p_at,
    public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens, worst) v;
end
$$;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time), with the quota it leaves and the key
-- that serves the group (read with the candidates, before the row's lock). A group the unlocked counts of
-- google_ai_candidate_groups already show full (full_by: a cooldown, the day, or the minute's window, for
-- everyone) is refused without its lock: it reopens at the cooldown's end, after the provider's midnight plus
-- the day guard (the first moments of a day still count for the day before, on a clock that may lag ours), or
-- when the window lets its tokens in for this requester (google_ai_window_reopens_for: later for a requester that
-- others' shares keep slots from). Within a priority tier a group whose row another reservation holds is
-- passed over (SKIP LOCKED) so concurrent callers spread across groups; before moving to a lower tier the
-- passed-over groups are tried again in a second pass, waiting for their locks, so a busy row is never
-- mistaken for a full one. The only group is waited for at once.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model; a service caller's budget (google_ai_caller_budgets) spent: caller_budget (its cause
-- budget, or spend_budget for money, and budget_period: day or month); booked_usd: the worst case booked
-- in its budget in money, for the request's output_tokens of answer (the answer it is sent with).
-- A service caller's budgets are locked first, until the booking counts the request in them. After waiting for
-- a group's row, the key read before the wait must still serve the group (two exits in the loop: a condition
-- that holds a query is run by the executor even when it need not be).
-- A null model (an earlier step blocked the request) books nothing and answers nulls. p_model, p_class,
-- p_caller, p_request: the request's model row (limits after the margin: google_ai_request_limits), class
-- row, caller and the request itself (its tokens, answer, requests, attempt and the keys it excludes),
-- each whole and handed down whole to the rules (google_ai_book_group). A group is passed over for
-- its counts before its lock by the row's RPM and RPD, but by no RPM where it is a bucket (bucket_share: its
-- schedule decides under the lock) and by neither where the row follows its provider (provider_limits 'follow':
-- each group's are the ones the provider stated for it, read under the lock, google_ai_followed_limits).
-- (Computed once, v_rpm and v_rpd: a SQL helper taking the row whole, inlined into the candidates' statement,
-- cost about 30k instructions more.) (A booking's answer is assigned, not selected into: a select ... into is a
-- statement of its own, counted about 15k instructions.)
CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_request public.google_ai_request,
    p_now timestamp with time zone, p_at timestamp with time zone) RETURNS public.google_ai_booking
    LANGUAGE plpgsql
    AS $$
declare
  blocked_by text;   -- the earliest reopening so far, and why
  reopens_at timestamptz;
  recheck_at timestamptz;
  cause text;
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}'::text[];  -- the groups passed over in a first pass so far
  v_try public.google_ai_group_booking;  -- a candidate's answer: google_ai_book_group's, or a refusal in its shape
  v_rpm integer := case when p_model.bucket_share is null and p_model.provider_limits is distinct from 'follow'
                        then p_model.rpm end;  -- the limits its groups are passed over by before their locks
  v_rpd integer := case when p_model.provider_limits is distinct from 'follow' then p_model.rpd end;
begin
  if p_model.model is null then
    return null; -- (an earlier step blocked the request)
  end if;
  v_budget := public.google_ai_caller_budget_at(p_request, p_model.model, p_class.name, p_at);
  if v_budget.cause is not null then
    return row(null, null, null, 'caller_budget', v_budget.reopens_at, null, v_budget.cause, null, null, null, null,
      null, null, v_budget.period)::public.google_ai_booking;
  end if;

  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_request.exclude_key_ids,
                 v_rpm, p_model.tpm, v_rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_request, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting, v_candidate.day_zone);
      if v_try.outcome = 'booked' then
        exit when not v_candidate.waiting;
        exit when (v_candidate.key_id, v_candidate.quota_group) in (select s.key_id, s.quota_group
          from public.google_ai_serving_keys(p_model.model, p_request.exclude_key_ids) s);
        raise exception 'the keys of quota group % changed during the reservation; retry', v_candidate.quota_group
          using errcode = '40001';
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      v_try := row(v_candidate.full_by, null, null, case v_candidate.full_by
          when 'cooldown' then v_candidate.cooldown_until
          when 'rpd' then public.google_ai_midnight_after_in(p_at, public.google_ai_day_zone(p_model.model))
                          + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
          else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model, p_class, p_caller, p_at,
            public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
            p_request.estimated_tokens, p_request.requests) end, null,
        public.google_ai_refusal_cause(v_candidate.full_by), null, null)::public.google_ai_group_booking;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif v_try.outcome = 'booked' then -- (the loop's last candidate, and its answer; a refusal before it is dropped)
    if v_budget.day is not null then
      perform public.google_ai_count_budgets(p_caller, p_at, null, public.google_ai_request_counts(p_request.attempt)
        * p_request.requests, p_request.estimated_tokens, v_budget.worst, true);
    end if;
    return row(v_candidate.quota_group, v_try.minute_bucket, v_try.day_bucket, null, null, null, null,
      v_try.admitted_at, v_try.quota, v_candidate.key_id, v_candidate.key_alias, v_candidate.env_var_name,
      v_budget.worst, null)::public.google_ai_booking;
  end if;
  -- Asking again only helps before the reopening itself.
  return row(null, null, null, blocked_by, reopens_at,
    case when recheck_at >= reopens_at then null else recheck_at end,
    coalesce(cause, public.google_ai_refusal_cause(blocked_by)), null, null, null, null, null, null,
    null)::public.google_ai_booking;
end
$$;

-- A request of several requests at its provider (p_requests: an embedding batch whose provider counts
-- each input) that no wait can admit whole, so it is refused at once, before any lock (google_ai_admit_at
-- as too_large; google_ai_refusal_at answers this), naming the limit it passes: more than the model's
-- requests a minute (p_limits: its RPM after the margin, as the booking holds it), cause over_rpm, never
-- to be asked again as it is; or more than any group that may serve it has left of its provider's day,
-- cause over_rpd, to be asked again when the day turns (its midnight plus the day guard). Answers cause,
-- requests, max_requests, per (minute or day) and retry_at; null when neither holds and the booking decides
-- (it counts all of them at once, or none).
CREATE OR REPLACE FUNCTION public.google_ai_requests_over(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_day_left integer;
begin
  if coalesce(p_requests, 1) <= 1 or p_limits.model is null then
    return null;
  end if;
  if p_limits.rpm is not null and p_requests > p_limits.rpm then
    return jsonb_build_object('cause', 'over_rpm', 'requests', p_requests, 'max_requests', p_limits.rpm,
      'per', 'minute');
  end if;
  if p_limits.rpd is not null then
    v_day_left := (select max(greatest(0, p_limits.rpd - c.rpd_used))
                   from public.google_ai_candidate_groups(p_limits.model, p_exclude_key_ids, null, null, p_limits.rpd,
                          p_now) c);
    if p_requests > v_day_left then
      return jsonb_build_object('cause', 'over_rpd', 'requests', p_requests, 'max_requests', v_day_left, 'per', 'day',
        'retry_at', public.google_ai_midnight_after_in(p_now, public.google_ai_day_zone(p_limits.model))
                    + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond');
    end if;
  end if;
  return null;
end
$$;

COMMENT ON FUNCTION public.google_ai_requests_over(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_requests integer, p_exclude_key_ids uuid[]) IS
    'A request of more requests than the model''s minute or any group''s day has left (over_rpm, over_rpd): its '
    'figures, refused at once as too_large; null when the booking decides.';

-- 'too_large' when a request (p_request) to a row that follows its provider (p_limits: google_ai_request_limits')
-- is larger than the widest window the groups serving it follow (google_ai_followed_widest), by the tests
-- google_ai_admit_at runs on a row that keeps its own (its tokens above the TPM, its output above the OTPM,
-- its input above the ITPM, its requests above what the minute or any group's day holds); else null.
-- Called by the admission only for a row that follows, so a row that keeps its own pays one comparison.
CREATE OR REPLACE FUNCTION public.google_ai_followed_too_large(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_request public.google_ai_request) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_limits public.google_ai_model_limits := public.google_ai_followed_widest(p_limits, p_request.exclude_key_ids);
begin
  return case when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                     is not null then coalesce(p_request.output_tokens, 0) else 0 end
                or (p_request.requests > 1 and public.google_ai_requests_over(p_now, v_limits, p_request.requests,
                      p_request.exclude_key_ids) is not null)
              then 'too_large' end;
end
$$;
-- ================================================================================================
-- supabase/schemas/55_claims.sql
-- ================================================================================================

-- Claims: a request id is held by its caller while it is served (the holder's deadlines reply_by and
-- hold_until, fields of the request record), and answered again from its stored answer (idempotency).
set check_function_bodies = off;

-- An attempt row of a holder (the request's holder and hold_until, which a row has only with a
-- reply_by: google_ai_log_refusal, google_ai_record_admission) renews its claim: a claim just taken (no
-- holder yet) becomes the admitted invocation's, with its hold_until; a claim its holder still holds is
-- renewed by its holder's statements only, never shortened. A claim nobody holds any more is not
-- revived: a repeat may take it over.
CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if new.request_id is null or new.holder is null then
    return new;
  end if;
  update public.google_ai_responses r set
    expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
    holder = new.holder
  where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
    and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
    and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, pg_catalog.clock_timestamp())
        is not null;
  return new;
end
$$;

-- Until when a request's in-flight claim is held at p_now: its lease, or a live ticket of the request
-- in the admission queue (its holder is waiting for its turn). Null: nobody holds it.
CREATE OR REPLACE FUNCTION public.google_ai_claim_held_until(p_caller text, p_request_id text,
    p_expires_at timestamp with time zone, p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_ticket timestamptz;
begin
  if p_expires_at > p_now then
    return p_expires_at;
  end if;
  select max(q.lease_until) into v_ticket from public.google_ai_queue q
  where q.caller = p_caller and q.request_id = p_request_id and q.lease_until > p_now;
  return v_ticket;
end
$$;

-- A claim turns 'done' only by its holder's success: a former holder's late finalize (its claim was
-- taken over meanwhile) leaves the new holder's claim in place. Its own answer still counts and its
-- token_usage is written; only the stored answer of the request is the new holder's to write.
CREATE OR REPLACE FUNCTION public.google_ai_response_holder_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if exists (select 1 from public.google_ai_attempts a
             where a.request_id = old.request_id and a.caller = old.caller
               and a.holder = old.holder and a.status = 'succeeded') then
    return new;
  end if;
  return null;
end
$$;

-- The request's idempotency marker: in flight until finalize stores the answer, with a lease a
-- little longer than an Edge Function's wall clock, so a crashed caller cannot block its id. A claim
-- taken (or taken over) is its taker's: p_holder with its hold_until (the request's, as its admitted
-- attempt row carries them), the lease then being hold_until, when both are named and the
-- claim is held at all (google_ai_claim_held_until: the fixed lease has not ended at the clock, as with
-- an injected clock it may have); else it names no holder. (The attempt row is written first and this
-- claim after it, with its holder: the attempt's trigger then finds no claim of this taker to update, or
-- one this upsert writes over, where a claim written first was written again by it; counted, about 110k
-- instructions less a reservation.)
CREATE OR REPLACE FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text,
    p_now timestamp with time zone, p_holder uuid DEFAULT NULL::uuid,
    p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_lease timestamptz := p_now + interval '7 minutes';
begin
  if p_holder is null or p_hold_until is null
     or public.google_ai_claim_held_until(p_caller, p_request_id, v_lease, pg_catalog.clock_timestamp()) is null then
    p_holder := null;
  else
    v_lease := p_hold_until;
  end if;
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at, holder)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, v_lease, p_holder)
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at, holder = excluded.holder;
end
$$;

-- For a request the caller named with its own request_id: the answer to give instead of reserving,
-- or null to go on. A request id this caller completed within 24 hours is answered from the stored
-- response; one whose earlier call still holds its lease (in flight, or between attempts) is refused
-- as in_progress. The advisory lock serialises concurrent duplicates until the first one's marker
-- (google_ai_hold_request, in the same transaction) is committed. The answer is a refusal's verdict.
CREATE OR REPLACE FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text,
    p_now timestamp with time zone) RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
  v_retry_ms bigint;
begin
  perform public.google_ai_advisory_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return row(false, 'duplicate', 'duplicate', null, null, null, null, null, null,
      jsonb_build_object('ok', false, 'limit', 'duplicate', 'cause', 'duplicate', 'response', v_prior.response,
        'retry_after_ms', null, 'retry_at', null))::public.google_ai_admission_verdict;
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      v_retry_ms := greatest(1000, public.google_ai_ms_until(v_held_until, p_now));
      return row(false, 'in_progress', 'in_progress', v_retry_ms, v_held_until, null, null, null, null,
        jsonb_build_object('ok', false, 'limit', 'in_progress', 'cause', 'in_progress',
          'retry_after_ms', v_retry_ms, 'retry_at', v_held_until))::public.google_ai_admission_verdict;
    end if;
  end if;
  return null;
end
$$;

-- (Not for a row whose claim its writer writes right after it, with its holder: eve.claim_follows,
-- google_ai_record_admission.)
CREATE OR REPLACE TRIGGER google_ai_attempts_holder BEFORE INSERT ON public.google_ai_attempts FOR EACH ROW WHEN
    ((new.hold_until IS NOT NULL) AND (current_setting('eve.claim_follows', true) IS DISTINCT FROM 'on'))
    EXECUTE FUNCTION public.google_ai_attempt_holder();

DROP TRIGGER IF EXISTS google_ai_attempts_reply_check ON public.google_ai_attempts;
CREATE CONSTRAINT TRIGGER google_ai_attempts_reply_check AFTER INSERT ON public.google_ai_attempts DEFERRABLE INITIALLY
    DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_reply_check();

CREATE OR REPLACE TRIGGER google_ai_responses_holder_check BEFORE UPDATE ON public.google_ai_responses FOR EACH ROW WHEN
    (((old.status = 'in_progress'::text) AND (new.status = 'done'::text) AND (old.holder IS NOT NULL))) EXECUTE FUNCTION
    public.google_ai_response_holder_check();
-- ================================================================================================
-- supabase/schemas/56_fallback_chain.sql
-- ================================================================================================

-- A request's chain of models (google_ai_fall_back_at, 58_admission.sql): the models it tries, in order,
-- with their successors and whether each is retired (google_ai_fallback_chain), and what a model passed
-- over leaves (google_ai_pass_over).
set check_function_bodies = off;

-- The chain a request tries (google_ai_fall_back_at): its models as asked (o_names) and canonical
-- (o_models), each once, and whether each is retired (an inactive row, or unlisted by every checked key
-- of its provider); when every one is, none is (the catalogue may be the one that is wrong).
-- A model past its row's shutdown date at p_now (null: the clock; the day in UTC) is followed by its
-- row's successor where that is a row (and its successor's, at most three), which takes its place:
-- o_answer_of names the position in p_models whose answer each link is sent with (a successor's is its
-- predecessor's). With p_token_hash, the fallbacks the token may not use (google_ai_token_models) are left
-- out (the first model is always asked; a successor is a fallback) and the token's client is the caller
-- (o_caller, o_client_id, o_token_id). o_first: where the chain starts, the model of p_queue_ticket when the
-- request holds one. With p_first_only (and no ticket), the chain ends after its first model's links when none
-- of them is retired (no later model can then change that), and o_complete says whether it is whole:
-- google_ai_fall_back_at reads it whole only once its first model is passed over (counted: the second
-- model's links were 3.4% of a reservation its first model serves).
-- (Its results are o_ names: a bare name like a column's, caller or models, in one of
-- its queries would be ambiguous with the table's, an error met only when the query runs.)
CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid,
    p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_first_only boolean DEFAULT false,
    OUT o_names text[], OUT o_models text[], OUT o_retired boolean[], OUT o_answer_of integer[], OUT o_first integer,
    OUT o_caller text, OUT o_client_id uuid, OUT o_token_id uuid, OUT o_complete boolean) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
  v_today date := (coalesce(p_now, pg_catalog.clock_timestamp()) at time zone 'UTC')::date;
  v_at integer := 0;         -- the position in p_models of the name being read
  v_hops integer;            -- successors followed from it
begin
  select '{}'::text[], '{}'::text[], '{}'::boolean[], '{}'::integer[], 1,
         not (p_first_only and p_queue_ticket is null and cardinality(p_models) > 1)
    into o_names, o_models, o_retired, o_answer_of, o_first, o_complete;
  if p_token_hash is not null then
    select public.google_ai_token_models(t, c), t.id, c.id, 'client:' || c.name
      into v_allowed, o_token_id, o_client_id, o_caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_at := v_at + 1;
    -- (Read in part, the chain ends after its first model's links, unless one of them is retired.)
    if v_at = 2 and not o_complete then
      exit when not (true = any (o_retired));
      o_complete := true;
    end if;
    v_hops := 0;
    loop
      v_row := public.google_ai_model_by_name(v_name);
      exit when v_hops > 0 and v_row.id is null;
      exit when coalesce(v_row.model, v_name) = any (o_models);
      exit when cardinality(o_models) > 0 and p_token_hash is not null
                and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
      o_names := o_names || v_name;
      o_models := o_models || coalesce(v_row.model, v_name);
      -- Unlisted: active keys of its provider were checked (their model lists answered) and none lists it,
      -- the same reading as google_ai_model_catalogue_status's 'unlisted'.
      o_retired := o_retired || (v_row.id is not null and (not v_row.is_active or (
        with ok_keys as (
          select h.api_key_id from public.google_ai_key_health h
          join public.google_ai_api_keys k on k.id = h.api_key_id
          where h.status = 'ok' and k.is_active and k.serves_provider = v_row.provider)
        select exists (select from ok_keys)
           and not exists (select from public.google_ai_model_catalogue c
                           where c.model = v_row.model and c.api_key_id in (select o.api_key_id from ok_keys o)))));
      o_answer_of := o_answer_of || v_at;
      exit when v_hops = 3 or v_row.successor is null or not coalesce(v_row.shutdown_date <= v_today, false);
      v_name := v_row.successor;
      v_hops := v_hops + 1;
    end loop;
  end loop;
  if o_complete and not (false = any (o_retired)) then
    o_retired := array_fill(false, array[cardinality(o_models)]);
  end if;
  if p_queue_ticket is not null then
    o_first := coalesce(array_position(o_models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$$;

-- A chain's model passed over (google_ai_fall_back_at; p_try: its refusal): a ticket the request held for
-- it is given up (its turn lay beyond the wait after all, or the model retired meanwhile) and its refusal is
-- logged, the row naming the chain's caller (p_caller, p_client_id, p_token_id: a token's client) and the
-- model the request asked for (p_asked); a model without a key once the request's own exclusions are set
-- aside is no attempt (as in google_ai_refusal_at) and is not logged. The answer is its step of the
-- answer's fallback_from: {model, limit, cause, retry_after_ms}.
CREATE OR REPLACE FUNCTION public.google_ai_pass_over(p_request public.google_ai_request, p_asked text,
    p_model text, p_try public.google_ai_admission_verdict, p_caller text, p_client_id uuid, p_token_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
begin
  if p_request.queue_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_request.queue_ticket and q.model = p_model;
  end if;
  if not coalesce(p_try.limit_hit = 'no_active_key' and cardinality(p_request.exclude_key_ids) > 0, false) then
    p_request.model := p_asked;
    p_request.caller := coalesce(p_caller, p_request.caller, 'token');
    p_request.client_id := p_client_id;
    p_request.token_id := p_token_id;
    perform public.google_ai_log_refusal(p_request, p_model, p_try.limit_hit, p_try.cause, p_try.retry_after_ms);
  end if;
  return jsonb_build_object('model', p_model, 'limit', p_try.limit_hit, 'cause', p_try.cause,
    'retry_after_ms', p_try.retry_after_ms);
end
$$;
-- ================================================================================================
-- supabase/schemas/58_admission.sql
-- ================================================================================================

-- The reservation: one round trip that answers "may this request go to its provider now, on which key?".
-- One verb per layer, outermost first:
--   reserve    the entry: google_ai_reserve_models (models as an array, a caller or a token hash,
--              the holder's deadlines and id), its clock seam google_ai_reserve_models_at, which
--              llm-invoke, the tests and the bench all call;
--   fall back  a chain's models in order until one serves (google_ai_fall_back_at);
--   admit      the queue-aware decision for one request (idempotency, credential, queue turn:
--              google_ai_admit_at), answered by one of two steps: google_ai_refusal_at (wait in
--              line, or refuse with the time to ask again) or google_ai_record_admission (the
--              attempt row and the answer);
--   book       pick a quota group and count the request in its windows (google_ai_book_best_group:
--              50_booking.sql), one group under its counter row's lock (google_ai_book_group:
--              45_group_booking.sql);
--   settle     give back what an ended attempt did not use (30_shares_and_budgets.sql).
-- The claim of a request id and its holder's deadlines (reply_by, hold_until) are 55_claims.sql.
--
-- The functions a request enters through (reserve, admit, and finalize and release in 60_life_cycle.sql)
-- set plan_cache_mode = force_generic_plan for everything they run. Their statements take the clock
-- and the model as parameters; PostgreSQL's default would plan them again on every call (a custom
-- plan for the window's time range looks cheaper than the generic one), which was a quarter of the
-- reservation's CPU. Every statement here finds its rows by key (counter row, model, quota group,
-- ticket), so the generic plan is the one a custom plan would choose; those that read a time range of
-- the log close it on both sides, so the generic plan still walks the range's index (15_request_log.sql).
-- The steps every booking runs under them (admit and fall back, which set only plan_cache_mode and are
-- not security definer: only the entry reaches them; google_ai_queue_place, google_ai_book_best_group and
-- its google_ai_caller_budget_at, google_ai_admission_guard, google_ai_record_admission) set no search_path
-- of their own, as the rules under them do not: they run inside an entry, security definer with an
-- empty search_path, and name everything by schema; a SET clause makes every call save and restore the
-- setting (counted, about 6k instructions a call). google_ai_book_group keeps its own, so a call to it
-- is counted by track_functions turned on within a transaction (02_reservation.test.sql counts them).
set check_function_bodies = off;

-- What a refusal's answer names beside its limit, cause and time: how many tokens a minute allows (too
-- large: TPM, else ITPM, and OTPM as max_output_tokens where the row has it), a withdrawn model's when and
-- successor (if a row says), or a budget's period; for a request of more requests than the model's minute
-- or its day holds (too large: google_ai_requests_over), requests, max_requests and per, with the cause
-- and retry_at that google_ai_refusal_at answers with. p_limits, p_refusal: as google_ai_refusal_at takes
-- them; p_requests, p_exclude_key_ids: the request's.
CREATE OR REPLACE FUNCTION public.google_ai_refusal_figures(p_now timestamp with time zone,
    p_limits public.google_ai_model_limits, p_refusal public.google_ai_refusal, p_requests integer,
    p_exclude_key_ids uuid[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_limit text := p_refusal.limit_hit;
  v_over jsonb;
begin
  -- (A row that follows its provider is too large by the widest window its groups follow.)
  if v_limit = 'too_large' and p_limits.provider_limits = 'follow' then
    p_limits := public.google_ai_followed_widest(p_limits, p_exclude_key_ids);
  end if;
  v_over := case when v_limit = 'too_large' then public.google_ai_requests_over(p_now, p_limits, p_requests,
    p_exclude_key_ids) end;
  return coalesce(v_over, jsonb_build_object('max_tokens',
      case when v_limit = 'too_large' then coalesce(p_limits.tpm, p_limits.itpm) end))
    || case when v_limit = 'too_large' and v_over is null and p_limits.otpm is not null
            then jsonb_build_object('max_output_tokens', p_limits.otpm)
            when v_limit in ('withdrawn', 'shut_down')
            then jsonb_build_object('withdrawn_at', p_limits.withdrawn_at, 'successor', p_limits.successor)
            when p_refusal.period is not null then jsonb_build_object('period', p_refusal.period)
            else '{}' end;
end
$$;

-- refuse: a request no group takes now waits in line when its turn is likely within its wait
-- (google_ai_queue_wait, for a refusal a wait can end: google_ai_queue_turns names them; its answer is
-- the ticket), else it is answered with its limit, its cause and when to ask again, and logged: one
-- refused row per request and attempt, not one per poll (a WAIT caller asking again, wait_ms > 0,
-- updates the row its first refusal wrote during this wait). A ticket it held is given up. Behind a
-- queue, capacity for this caller comes with its turn: the queue's estimate (the likely one, for a
-- lower class), else its turn (the queue's when it was asked, which may be none; else the one its place
-- showed, turn_at) or the group's own time, whichever is later.
-- p_limits is the model's row, limits after the margin (all null when the name is unknown; the row then
-- names the model as asked); p_class the class it asked in (its rank its place's); p_refusal why, and its
-- place (google_ai_queue_place). Every answer names its figures (google_ai_refusal_figures); a request
-- of more requests than the minute or the day holds is refused with their cause and time. The answer is
-- the refusal's verdict (google_ai_admission_verdict).
CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone,
    p_request public.google_ai_request, p_limits public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_refusal public.google_ai_refusal)
    RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_wait record;
  v_limit text := p_refusal.limit_hit;
  v_reopens_at timestamptz := p_refusal.reopens_at;
  v_recheck_at timestamptz := p_refusal.recheck_at;
  v_retry_ms bigint;
  v_said jsonb := public.google_ai_refusal_figures(p_now, p_limits, p_refusal, p_request.requests,
    p_request.exclude_key_ids);
begin
  p_refusal.cause := coalesce(v_said ->> 'cause', p_refusal.cause);
  v_reopens_at := coalesce((v_said ->> 'retry_at')::timestamptz, v_reopens_at);
  -- Past its row's shutdown date (google_ai_admit_at): refused as withdrawn, cause shut_down. With a
  -- successor, not logged here: google_ai_reserve_models_at asks the model's chain with its successor
  -- (google_ai_fallback_chain) on this answer, and google_ai_pass_over logs the model it passes over.
  if v_limit = 'shut_down' then
    if p_limits.successor is not null then
      return row(false, 'withdrawn', 'shut_down', null, null, p_limits.model, p_limits.successor, null, null,
        jsonb_build_object('ok', false, 'limit', 'withdrawn', 'cause', 'shut_down', 'retry_after_ms', null,
          'model', p_limits.model) || v_said)::public.google_ai_admission_verdict;
    end if;
    v_limit := 'withdrawn';
    p_refusal.limit_hit := v_limit;
  end if;

  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now, p_request, p_limits, p_class, p_refusal) w
  where public.google_ai_queue_turns(v_limit) is not null and coalesce(p_request.wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return row(false, v_limit, p_refusal.cause, public.google_ai_ms_until(v_wait.expected, p_now), v_wait.expected,
      p_limits.model, null, null, coalesce(p_refusal.ticket, p_refusal.new_ticket),
      v_wait.answer || v_said)::public.google_ai_admission_verdict;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_refusal.ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_refusal.ticket;
  end if;
  if v_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_request.wait_left_ms, 0) > 0 then v_wait.turn_at else p_refusal.turn_at end,
               v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  -- A limit of the window the booking was not asked about always says when to ask again: where nothing
  -- names a time (no group offered a turn: a rest began after its place was read), in a second, when
  -- the booking will name it. (A booking that names no time, a share keeping every window, names none.)
  if v_limit in ('rpm', 'tpm') and v_reopens_at is null and not p_refusal.booking_tried then
    v_reopens_at := p_now + interval '1 second';
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_request.wait_ms, 0) > 0 and p_request.request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = v_limit, refusal_cause = p_refusal.cause, retry_after_ms = v_retry_ms, wait_ms = p_request.wait_ms,
      estimated_tokens = p_request.estimated_tokens
    where a.request_id = p_request.request_id and a.caller = p_request.caller and a.attempt = p_request.attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_request.wait_ms + 60000) * interval '1 millisecond';
  end if;
  -- No key left once the request's own exclusions are set aside (the keys its earlier calls failed on)
  -- is no attempt: llm-invoke asks again without them, or answers from the calls it made. No row.
  if not (v_limit = 'no_active_key' and coalesce(cardinality(p_request.exclude_key_ids), 0) > 0)
     and (coalesce(p_request.wait_ms, 0) = 0 or p_request.request_id is null or not found) then
    perform public.google_ai_log_refusal(p_request, coalesce(p_limits.model, p_request.model), v_limit,
      p_refusal.cause, v_retry_ms);
  end if;
  return row(false, v_limit, p_refusal.cause, v_retry_ms, v_reopens_at, p_limits.model, null, null, null,
    jsonb_build_object('ok', false, 'limit', v_limit, 'cause', p_refusal.cause, 'retry_after_ms', v_retry_ms,
      'retry_at', v_reopens_at, 'model', p_limits.model,
      'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now)) || v_said
    )::public.google_ai_admission_verdict;
end
$$;

-- record the admission: a booked request's attempt row, and the answer from what it holds (the key, its
-- group, the buckets, the class, and the quota the booking leaves when it has one: p_booking,
-- google_ai_book_best_group's answer). The ticket it held (p_ticket) is done with; an idempotent
-- request's id is held (google_ai_hold_request); a token's budgets count the request
-- (google_ai_count_budgets). p_booked_usd: the worst case booked in a budget in money (a token's, its
-- client's or a service caller's; null: none), which the answer names (booked_usd: llm-invoke then sends
-- the answer it booked as the call's cap where the request names none); p_booked_output: the answer a
-- model's token buckets booked (google_ai_schedule_place), settled at the answer. The row carries the
-- request's holder and deadlines (its trigger renews the holder's claim: 55_claims.sql). The answer is
-- the admission's verdict (google_ai_admission_verdict).
CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone,
    p_request public.google_ai_request, p_model text, p_class text, p_booking public.google_ai_booking, p_ticket uuid,
    p_booked_usd numeric, p_booked_output integer) RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting is assigned and never read by design: a perform costs a statement.)
declare
  v_answer jsonb;
  v_reservation uuid;
  v_claims boolean := p_request.idempotent and p_request.request_id is not null;  -- the claim is written here
  v_setting text;
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_request.token_hash is not null then
    perform public.google_ai_count_budgets(row(p_request.caller, p_request.client_id,
      p_request.token_id)::public.google_ai_caller, p_now, null,
      public.google_ai_request_counts(p_request.attempt) * p_request.requests, p_request.estimated_tokens,
      p_booked_usd, true);
  end if;
  -- A claim written below, after the row, with the row's holder: the row's trigger need not renew it first
  -- (google_ai_attempt_holder: its write would be written over; counted, 84k instructions a reservation).
  if v_claims then
    v_setting := pg_catalog.set_config('eve.claim_follows', 'on', true);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again; minus an empty array is the object as it is.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd, booked_output_tokens, requests, reply_by, hold_until,
    holder)
  values (gen_random_uuid(), 'reserved', p_request.request_id, p_request.caller, p_request.client_id,
    p_request.token_id, p_model, p_request.model, p_request.attempt, p_booking.key_id, p_booking.key_alias,
    p_booking.booked_group, p_booking.minute_bucket, p_booking.day_bucket, p_request.estimated_tokens,
    p_request.wait_ms, coalesce(p_request.metadata, '{}'), p_class, p_booking.admitted_at, p_booked_usd,
    p_booked_output, p_request.requests, p_request.reply_by, p_request.hold_until, p_request.holder)
  returning a.reservation_id, jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_booking.env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class,
    'quota', p_booking.quota, 'booked_usd', a.booked_usd)
    - case when p_booking.quota is null then '{quota}' else '{}' end::text[]
  into v_reservation, v_answer;
  -- The claim after the attempt row, with the request's holder (google_ai_hold_request).
  if v_claims then
    v_setting := pg_catalog.set_config('eve.claim_follows', 'off', true);
    perform public.google_ai_hold_request(p_request.caller, p_request.request_id, p_model, p_now, p_request.holder,
      p_request.hold_until);
  end if;
  return row(true, null, null, null, null, p_model, null, v_reservation, null,
    v_answer)::public.google_ai_admission_verdict;
end
$$;

-- admit: one request for one model (p_request.model), as a service caller (caller; client_id when it
-- acts for a client) or with a scoped token (token_hash: checked and its budgets booked with the quota,
-- all or nothing, by google_ai_token_verdict_at and google_ai_count_budgets; the client's class bounds
-- the request's; a queued refusal books no budget). The answer of a token's request names its client_id
-- and token_id. output_tokens: the answer the request is sent with to this model (its largest, as
-- llm-invoke decided it), which a budget in money books (null: not known, so a budget in money refuses
-- it); a budget's refusal names its period (day, month, or a token's life). Too large, refused before
-- any lock: more than a minute of TPM, or of ITPM for its input (the estimate less its answer where the
-- row books answers in it) or of OTPM for its answer. A model past its row's shutdown date (the day of
-- v_now in UTC) is refused before any lock too, as withdrawn with cause shut_down (google_ai_refusal_at).
-- The answer is the model's verdict (google_ai_admission_verdict), its answer built for the caller.
CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone,
    p_request public.google_ai_request) RETURNS public.google_ai_admission_verdict
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_verdict public.google_ai_admission_verdict;
  v_who jsonb;               -- a token's client and token, named in every answer of a token's request
  v_credential public.google_ai_token_verdict;
  v_worst numeric;           -- a token's worst case, booked in its (or its client's) budget in money
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking public.google_ai_booking;  -- the booking (google_ai_book_best_group): its group and key, or when to retry
  v_new_ticket uuid := gen_random_uuid();  -- a ticket taken now (tickets of one instant are ordered by it)
begin
  if p_request.token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_request);
    if (v_credential.refusal).ok is not null then
      return v_credential.refusal;
    end if;
    p_request := v_credential.request;  -- the token's client is the caller from here on
    v_worst := v_credential.worst;
    v_who := jsonb_build_object('client_id', p_request.client_id, 'token_id', p_request.token_id);
  end if;

  if p_request.idempotent and p_request.request_id is not null and p_request.attempt = 1 then
    v_verdict := public.google_ai_idempotent_answer(p_request.caller, p_request.request_id, v_now);
    if v_verdict.answer is not null then
      v_verdict.answer := v_verdict.answer || coalesce(v_who, '{}');
      return v_verdict;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, shut down, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_request.model);
  v_class := public.google_ai_request_class(p_request.priority, p_request.client_id);
  v_caller := row(p_request.caller, p_request.client_id, p_request.token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.shutdown_date <= (v_now
                         at time zone 'UTC')::date then 'shut_down' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.provider_limits = 'follow'
                       then public.google_ai_followed_too_large(v_now, v_limits, p_request)
                       when v_limits.tpm < p_request.estimated_tokens or v_limits.otpm < p_request.output_tokens
                         or v_limits.itpm < p_request.estimated_tokens - case when v_limits.booked_output_tokens
                              is not null then coalesce(p_request.output_tokens, 0) else 0 end
                         or (p_request.requests > 1 and public.google_ai_requests_over(v_now, v_limits,
                               p_request.requests, p_request.exclude_key_ids) is not null)
                       then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_request.exclude_key_ids, v_now, p_request.queue_ticket, v_new_ticket, p_request.requests);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_request, p_now, v_now);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    v_verdict := public.google_ai_refusal_at(v_now, p_request, v_limits, v_class, row(v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)), v_booking.reopens_at,
      v_booking.recheck_at, coalesce(v_place.may_book, true), v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, v_new_ticket, v_booking.budget_period)::public.google_ai_refusal);
  else
    v_verdict := public.google_ai_record_admission(v_now, p_request, v_limits.model, v_class.name, v_booking,
      v_place.ticket, coalesce(v_booking.booked_usd, v_worst),
      case when num_nonnulls(v_limits.itpm, v_limits.otpm) > 0 then coalesce(p_request.output_tokens, 0) end);
  end if;
  if v_who is not null then  -- (a service caller's answer is not encoded again for an empty object)
    v_verdict.answer := v_verdict.answer || v_who;
  end if;
  return v_verdict;
end
$$;

-- Fallback: the request's models in order, each admitted (google_ai_admit_at) until one serves.
-- p_models: the request's model as the caller named it, then its fallbacks (2 to 4). A service caller's
-- request names its caller; a scoped token's its token_hash instead (checked for each model under the
-- token's lock, as for one model). Fallbacks the token may not use are left out; the first model is
-- always asked, so a token that may not use it is refused model_not_allowed.
--
-- With a queue_ticket, the chain starts at the ticket's model: the models before it could not serve
-- within the wait when the ticket was taken, so the ticket's turn is the request's best chance.
--
-- The answer is google_ai_admit_at's, plus:
--   requested_model  the chain's first model (canonical)
--   fallback_from    each model passed over before the one that answered: {model, limit, retry_after_ms}
-- When every model refuses, the refusal whose capacity comes back first is answered (the first
-- model's when none names a time), with fallback_from listing every model tried. p_output_tokens: the
-- answer each model of p_models is sent with, in its order (google_ai_admit_at). p_chain: the chain's first
-- read (google_ai_fallback_chain of these models, token and no ticket, its first model's links), where the
-- caller read it once for several reservations (google_ai_reserve_many); null: read here.
CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[],
    p_request public.google_ai_request, p_output_tokens integer[], p_chain record DEFAULT NULL::record) RETURNS jsonb
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try public.google_ai_admission_verdict;
  v_served boolean := false;  -- v_try is the answer: admitted, queued, or a refusal no other model can change
  v_best jsonb;
  v_refusals public.google_ai_admission_verdict[];   -- every model's refusal, in order
  v_steps jsonb := '[]'::jsonb;      -- {model, limit, cause, retry_after_ms} of each model passed over
  v_passed text[] := '{}'::text[];   -- the models passed over
  v_chain_at timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());  -- both reads of the chain on one day
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  -- The first model's links; once they are passed over, the whole chain read again, less the models passed
  -- over (a row may have changed between the two reads).
  if p_chain is null then
    v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at,
      true);
  else
    v_chain := p_chain;
  end if;
  <<reads>>
  for v_read in 1 .. 2 loop
    for i in v_chain.o_first .. cardinality(v_chain.o_models) loop
      continue when v_chain.o_models[i] = any (v_passed);
      if v_chain.o_retired[i] then
        v_try := row(false, 'retired', 'retired', null, null, v_chain.o_models[i], null, null, null,
          jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
            'model', v_chain.o_models[i]))::public.google_ai_admission_verdict;
      else
        begin
          p_request.model := v_chain.o_names[i];
          p_request.output_tokens := p_output_tokens[v_chain.o_answer_of[i]];
          v_try := public.google_ai_admit_at(p_now, p_request);
          if not v_try.ok and v_try.ticket is null and (v_try.limit_hit = any (c_model_limits)
                                                        or public.google_ai_queue_turns(v_try.limit_hit) is not null)
          then
            raise exception using errcode = 'EF001', message = 'model refused: try the next';
          end if;
          v_served := true;
        exception when sqlstate 'EF001' then
          null; -- rolled back: no lock, row or ticket change of this model's try is left
        end;
      end if;
      exit reads when v_served;
      v_passed := v_passed || v_chain.o_models[i];
      v_refusals := v_refusals || v_try;
      v_steps := v_steps || jsonb_build_array(public.google_ai_pass_over(p_request, p_models[1],
        v_chain.o_models[i], v_try, v_chain.o_caller, v_chain.o_client_id, v_chain.o_token_id));
    end loop;
    exit when v_chain.o_complete;
    v_chain := public.google_ai_fallback_chain(p_models, p_request.token_hash, p_request.queue_ticket, v_chain_at);
  end loop;

  if v_served then
    if v_try.model is distinct from v_chain.o_models[1] then
      -- The rows of a fallback name the model the request asked for.
      if v_try.ok then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = v_try.reservation_id;
      elsif v_try.ticket is not null then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = v_try.ticket;
      end if;
    end if;
    return v_try.answer || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.answer into v_best from unnest(v_refusals) with ordinality r
  order by r.retry_at nulls last, (r.limit_hit = 'retired'), r.ordinality
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.o_models[1], 'fallback_from', v_steps);
end
$$;

-- The reservation entry's arguments as one record (google_ai_reserve_models' own, less p_), which its
-- clock seam google_ai_reserve_models_at takes whole.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_reservation') IS NULL THEN
    CREATE TYPE public.google_ai_reservation AS (
    models text[],
    estimated_tokens integer,
    caller text,
    token_hash text,
    request_id text,
    exclude_key_ids uuid[],
    attempt integer,
    wait_ms integer,
    metadata jsonb,
    idempotent boolean,
    priority text,
    queue_ticket uuid,
    wait_left_ms integer,
    reply_by timestamp with time zone,
    hold_until timestamp with time zone,
    holder uuid,
    output_tokens integer[],
    requests integer
);
  END IF;
END
$type$;

-- The one reservation entry: the models as an array (a single model is an array of one, a chain
-- its models in order) and either a caller (a service caller's label) or a token hash. One model
-- is admitted by google_ai_admit_at, a chain by google_ai_fall_back_at; the answer is theirs,
-- unchanged (one model past its shutdown date with a successor: admit's verdict says so, and the model
-- is asked again as a chain, which takes its successor). The holder's deadlines and identity
-- (reply_by, hold_until, holder: llm-invoke's store/holder.ts) are fields of the request, which every
-- attempt row and queue ticket of the statement carries (none without a reply_by; hold_until never
-- before reply_by). p_output_tokens: the answer each model is sent with (the request's largest, decided
-- by llm-invoke), in p_models' order, which a budget in money books; null: not known (a budget in money
-- refuses). The clock is injected (p_now; null: the transaction's own clock): the test seam. Owner only.
-- p_call: the entry's arguments as one record (google_ai_reservation; a null field is the entry's default).
-- p_chain: a chain's first read, for google_ai_fall_back_at (null: read there).
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone,
    p_call public.google_ai_reservation, p_chain record DEFAULT NULL::record) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_request public.google_ai_request;
  v_verdict public.google_ai_admission_verdict;
begin
  if p_call.models is null or cardinality(p_call.models) = 0 or cardinality(p_call.models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_call.caller is null) = (p_call.token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_call.caller = '' or array_position(p_call.models, null) is not null
     or array_position(p_call.models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_call.estimated_tokens is null or p_call.estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_call.output_tokens is not null and (cardinality(p_call.output_tokens) <> cardinality(p_call.models)
                                      or 0 > any (p_call.output_tokens)) then
    raise exception 'p_output_tokens must name one non-negative integer (or null) per model' using errcode = '22023';
  end if;
  if p_call.requests < 1 then
    raise exception 'p_requests must be a positive integer' using errcode = '22023';
  end if;
  v_request := row(p_call.models[1], p_call.caller, null, null, p_call.token_hash, p_call.request_id,
    coalesce(p_call.attempt, 1), p_call.estimated_tokens, p_call.output_tokens[1], coalesce(p_call.wait_ms, 0),
    p_call.wait_left_ms, coalesce(p_call.metadata, '{}'::jsonb), p_call.priority,
    coalesce(p_call.exclude_key_ids, '{}'), p_call.queue_ticket, coalesce(p_call.idempotent, false),
    coalesce(p_call.requests, 1), p_call.reply_by,
    -- (hold_until: the later of the two when both are named, else none)
    case when p_call.hold_until >= p_call.reply_by then p_call.hold_until
         when p_call.hold_until is not null then p_call.reply_by end,
    case when p_call.reply_by is not null then p_call.holder end);
  if cardinality(p_call.models) > 1 then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens, p_chain);
  end if;
  v_verdict := public.google_ai_admit_at(p_now, v_request);
  -- Past its shutdown date with a successor (passed over unlogged by google_ai_admit_at): the model and
  -- its successor as a chain, in the same statement.
  if v_verdict.successor is not null then
    return public.google_ai_fall_back_at(p_now, p_call.models, v_request, p_call.output_tokens);
  end if;
  return v_verdict.answer;
end
$$;

-- What llm-invoke calls: google_ai_reserve_models_at on the transaction's own clock. (PL/pgSQL, not
-- SQL: a SQL function with SET clauses is planned again on every call; this keeps its plan.)
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer,
    p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text,
    p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0,
    p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text,
    p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer,
    p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_holder uuid DEFAULT NULL::uuid, p_output_tokens integer[] DEFAULT NULL::integer[],
    p_requests integer DEFAULT 1) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_reserve_models_at(null, row(p_models, p_estimated_tokens, p_caller, p_token_hash,
    p_request_id, p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket,
    p_wait_left_ms, p_reply_by, p_hold_until, p_holder, p_output_tokens, p_requests)::public.google_ai_reservation);
end
$$;
-- ================================================================================================
-- supabase/schemas/60_life_cycle.sql
-- ================================================================================================

-- A request's life after its reservation: finalize (tokens, outcome, 429 causes and cooldowns,
-- token_usage), a cut stream, a withdrawn model, release, and the end of an idempotent request.
set check_function_bodies = off;

-- token_usage is the bot's GPT-4o usage table. Seed 000 says the bot writes the time into `at`
-- (seed 001 lists `ts`): we create `at` and, on adoption, accept whichever the table has.
CREATE TABLE IF NOT EXISTS public.token_usage (
    id bigserial NOT NULL,
    model text,
    prompt_tokens integer,
    completion_tokens integer,
    total_tokens integer,
    request_id text,
    meta jsonb,
    at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS id bigserial NOT NULL;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS model text;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS prompt_tokens integer;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS completion_tokens integer;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS total_tokens integer;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS request_id text;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS meta jsonb;
ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS at timestamp with time zone DEFAULT now() NOT NULL;

SELECT pg_temp.add_constraint_once('public.token_usage', 'token_usage_pkey',
  $constraint$ALTER TABLE ONLY public.token_usage
    ADD CONSTRAINT token_usage_pkey PRIMARY KEY (id);$constraint$);

CREATE INDEX IF NOT EXISTS token_usage_request_id_idx ON public.token_usage USING btree (request_id);

-- A quota group rests until p_until (never shortened by a later 429), with the 429's cause: one
-- model and every active row of its pool (limit_pool: they share its limits, so a rate's 429 for one
-- is the pool's), or for a spend cap every active model row the group's keys serve (their provider's;
-- a key's `models`, null: all of them) and the attempt's own model, a row or not. A row keeps the cause
-- of whichever rest ends later.
-- The rows are written in model order: two spend caps of one group (or a key check's delete, which
-- locks in the same order) take their row locks in one order and cannot deadlock.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text,
    p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  insert into public.google_ai_cooldowns as c (quota_group, model, cooldown_until, reason, quota_id, cause)
  select p_quota_group, m.model, p_until, left(p_reason, 500), left(p_quota_id, 200), p_cause
  from (select p_model as model
        union
        select l.model from public.google_ai_model_limits l
        where l.is_active and l.limit_pool = (select p.limit_pool from public.google_ai_model_limits p
                                              where p.model = p_model)
        union
        select l.model from public.google_ai_model_limits l
        where p_cause = any (public.google_ai_quota_causes(true)) and l.is_active
          and exists (select 1 from public.google_ai_api_keys k
                      where public.google_ai_quota_group(k.project_id, k.id) = p_quota_group
                        and k.serves_provider = l.provider
                        and (k.models is null or l.model = any (k.models)))) m
  order by m.model
  on conflict (quota_group, model) do update set
    cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
    reason = case when excluded.cooldown_until >= c.cooldown_until then excluded.reason else c.reason end,
    quota_id = case when excluded.cooldown_until >= c.cooldown_until then excluded.quota_id else c.quota_id end,
    cause = case when excluded.cooldown_until >= c.cooldown_until then excluded.cause else c.cause end,
    updated_at = now();
end
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_for_cause(p_quota_group text, p_model text,
    p_until timestamp with time zone, p_cause text, p_reason text, p_quota_id text) IS
    'Finalize''s cooldown: one model and the active rows of its pool (limit_pool), or for a spend cap or money '
    '(google_ai_quota_causes(true)) every active model the quota group''s keys serve.';

-- Cooldown by hand (an operator's, or a test's): a quota group rests for one model until p_until,
-- never shortened by a later call; written as finalize writes Google's (google_ai_cooldown_for_cause),
-- with no cause.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone,
    p_reason text DEFAULT NULL::text, p_quota_id text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
begin
  if p_quota_group is null or p_until is null then
    raise exception 'p_quota_group and p_until are required' using errcode = '22023';
  end if;
  perform public.google_ai_cooldown_for_cause(p_quota_group, v_model, p_until, null, p_reason, p_quota_id);
  return jsonb_build_object('ok', true, 'quota_group', p_quota_group, 'model', v_model, 'cooldown_until',
    (select c.cooldown_until from public.google_ai_cooldowns c
     where c.quota_group = p_quota_group and c.model = v_model));
end
$$;

-- The end of an idempotent request that failed: its in-flight marker goes, so the caller may repeat
-- the request id at once (a success replaces the marker with the answer in finalize instead).
-- Any reservation of the request identifies it; a holder ends only the claim it holds (by identity),
-- a row that names no holder only a claim taken before its reply_by.
CREATE OR REPLACE FUNCTION public.google_ai_end_request(p_reservation_id uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_deleted integer;
begin
  delete from public.google_ai_responses r
  using public.google_ai_attempts a
  where a.reservation_id = p_reservation_id
    and r.caller = a.caller and r.request_id = a.request_id and r.status = 'in_progress'
    and case when a.holder is not null then r.holder is not distinct from a.holder
             else a.reply_by is null or r.created_at <= a.reply_by end;
  get diagnostics v_deleted = row_count;
  return jsonb_build_object('ok', true, 'ended', v_deleted > 0);
end
$$;

-- What successes leave beside their attempt rows (p_atts, just finalized; p_outcomes theirs, each at its
-- att's index): each one's response (the outcome's, when given and the caller sent its own request_id)
-- kept for replay in place of the request's in-flight marker, and the bot's token_usage row with the
-- provider's counts. A step of finalize, taken for successes only (a cut stream is one too: its meta says
-- who cut it, and it keeps no answer); other rows are passed over. One statement for a batch
-- (google_ai_finalize_calls); two successes of one request leave the later one's answer, as one finalize
-- after the other would.
CREATE OR REPLACE FUNCTION public.google_ai_record_successes(p_atts public.google_ai_attempts[],
    p_outcomes public.google_ai_attempt_outcome[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  with x as materialized (
    select p_atts[g.n] as a, p_outcomes[g.n] as o, g.n from pg_catalog.generate_subscripts(p_atts, 1) g(n)
  ), kept as (
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    select distinct on ((x.a).caller, (x.a).request_id)
      (x.a).caller, (x.a).request_id, 'done', (x.a).model, (x.o).response, now(), null::timestamptz
    from x
    where (x.o).response is not null and (x.a).request_id is not null and (x.a).status = 'succeeded'
    order by (x.a).caller, (x.a).request_id, x.n desc
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null)
  insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
  select (x.a).model, (x.o).input_tokens, (x.o).output_tokens,
    coalesce((x.o).input_tokens, 0) + coalesce((x.o).output_tokens, 0),
    coalesce((x.a).request_id, (x.a).reservation_id::text),
    jsonb_build_object('source', 'eve-llm-gateway', 'caller', (x.a).caller, 'key_alias', (x.a).key_alias,
      'attempt', (x.a).attempt, 'reservation_id', (x.a).reservation_id)
      || case when (x.a).status = 'cut' then jsonb_build_object('cut_by', (x.o).cut_by) else '{}' end
  from x
  where (x.a).status in ('succeeded', 'cut')
  order by x.n;
end
$$;

-- The model whose own request bucket takes the provider's word (google_ai_settle_call): the word is a
-- bucket's (p_room_requests 0, p_room_tokens null), still ahead, and the model's limits are buckets
-- (bucket_share, a request limit after its margin); else null, and the word is weighed against the
-- margin (google_ai_room_rest).
CREATE OR REPLACE FUNCTION public.google_ai_room_bucket_model(p_att public.google_ai_attempts,
    p_room_requests integer, p_room_tokens integer, p_room_until timestamp with time zone)
    RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_model public.google_ai_model_limits;
begin
  if p_room_until > pg_catalog.clock_timestamp() and p_att.quota_group is not null and p_room_requests = 0
     and p_room_tokens is null then
    select m.* into v_model from public.google_ai_model_limits m
    where m.model = p_att.model and m.bucket_share is not null
      and public.google_ai_effective_limit(m.rpm, m.safety_margin) > 0;
  end if;
  return v_model;
end
$$;

-- The rest a sliding window's remaining counts ask for (google_ai_settle_call says when): the margin read
-- from the group's recent log, and the model rested when the provider's room is no more than it. It
-- reads the log and writes cooldown rows only, never a counter row: several finalizes written together
-- (google_ai_finalize_calls) take each one's before the first counter row is locked.
CREATE OR REPLACE FUNCTION public.google_ai_room_rest(p_att public.google_ai_attempts, p_room_requests integer,
    p_room_tokens integer, p_room_until timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it). The
  -- window is a range closed on both sides, for the generic plan (15_request_log.sql says why).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_margin integer;
  v_margin_tokens bigint;
begin
  if not (p_room_until > v_now and p_att.quota_group is not null) then
    return;
  end if;
  -- (Out since: still on their way, or back since. Not only those still on their way: a caller whose
  -- answer is back may be admitting its next call now, which this count cannot see until it commits,
  -- and which will not see this rest; when the callers come back at once, all of them do. The answered
  -- call's own caller is not among them: its call is in the provider's count already, and its next
  -- call is either not made yet (this lands before the answer) or taken out of p_room_* already.)
  select 2 * count(*) filter (where f.out_since) + count(*) filter (where f.counted_since),
    coalesce(2 * sum(a.estimated_tokens) filter (where f.out_since), 0)
      + coalesce(sum(a.estimated_tokens) filter (where f.counted_since), 0)
  into v_margin, v_margin_tokens
  from public.google_ai_attempts a
  cross join lateral (select a.id <> p_att.id and (a.status = 'reserved' or a.finished_at >= p_att.admitted_at),
    a.admitted_at > p_att.admitted_at) f(out_since, counted_since)
  where a.quota_group = p_att.quota_group and a.model = p_att.model
    and a.admitted_at > v_now - interval '5 minutes' and a.admitted_at < 'infinity';
  if p_room_requests <= v_margin or p_room_tokens <= v_margin_tokens then
    perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
      'provider_room', null);
  end if;
end
$$;

-- Finalize's accounting of one call, after its row is written: the rest the provider's own counts ask
-- for, then the admission settled at the provider's count (the counter row, the hot one, last).
--   Room: what the provider says is left of the group's limits (OpenAI's x-ratelimit-remaining-*,
--   which count every user of the organization). When no more is left than this group's calls of the
--   model out at any moment since this call was admitted, twice (those, and as many again admitted
--   before this rest lands), plus those admitted since this call was (the provider may have counted
--   them after its answer: on a busy machine a finalize lags its answer while callers go on), the model
--   rests until the provider's counts are full again (room_until, reason 'provider_room'), so the
--   gateway waits instead of meeting the provider's 429s. This call's own caller is not counted: its
--   room is left for the others (llm-invoke writes this before the answer where little is left, and
--   otherwise sends what the provider said less that caller's next call). A provider whose limits are buckets
--   (Anthropic's) says instead when they hold the next request (llm-invoke's roomUntil: nothing left
--   until room_until). Where that is its request bucket (room_requests 0, room_tokens null) on a
--   model whose own limits are buckets (bucket_share), the word may be up to one refill late (what is
--   left is rounded down), and the gateway's own request bucket already holds the next request back
--   until its place
--   (google_ai_schedule_place, at the group's RPM as the booking counts it: google_ai_group_rpm, a following
--   row's the provider's): only when even the word's earliest reading is later than that place
--   (others use the organization's bucket) does the model rest, in that bucket: its next place moves to
--   room_until and each later one a step after (the bucket taken down to what Anthropic's holds), so
--   requests wait for their place there (cause spread) rather than meet the 429s a rest for one request
--   would leave to the ones after it.
--   The margin is read (google_ai_room_rest) before the counter row is locked, here and where several
--   finalizes go together (google_ai_finalize_calls reads each one's before its first counter row).
--   Count: the input, and the output too where the model's TPM counts answers (its row's
--   booked_output_tokens, OpenAI's rule). When the provider sent none: settled_tokens (a call it
--   refused before generating keeps its input, its output booking goes back), else the booking stays.
--   Stated: the limits the answer states (stated_limits), noted on the counter row last (google_ai_note_stated).
-- The room and the count are google_ai_call_counted's; the counter row's settle is google_ai_settle_admission's.
CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts,
    p_outcome public.google_ai_attempt_outcome) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, public.google_ai_call_counted(p_att, p_outcome), false);
  -- The limits the answer states, on the counter row just settled (locked: no other lock taken).
  if p_outcome.stated_limits is not null then
    perform public.google_ai_note_stated(p_att, p_outcome.stated_limits);
  end if;
end
$$;

-- google_ai_settle_call's steps before the counter row's settle: the room (a rest, or a bucket's word on the
-- counter row) and the call's cost and count in its caller's budgets; answers the tokens to settle the
-- admission at.
CREATE OR REPLACE FUNCTION public.google_ai_call_counted(p_att public.google_ai_attempts,
    p_outcome public.google_ai_attempt_outcome) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_counted integer;
  v_model public.google_ai_model_limits;
  v_rpm integer;
  v_step record;
begin
  if p_outcome.room_until is not null then
    v_model := public.google_ai_room_bucket_model(p_att, p_outcome.room_requests, p_outcome.room_tokens,
      p_outcome.room_until);
  end if;
  if v_model.model is not null then
    v_rpm := public.google_ai_group_rpm(v_model, p_att.quota_group);
    v_step := public.google_ai_spread_step(greatest(1, floor(v_rpm * v_model.bucket_share))::integer,
      public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms), v_rpm, null, 0);
    -- (The gateway's own place for the next request in the model's request bucket: spread_until less
    -- the tolerance.)
    update public.google_ai_usage_counters c set spread_until = p_outcome.room_until + v_step.tolerance
    where c.quota_group = p_att.quota_group and c.model = coalesce(v_model.limit_pool, v_model.model)
      and p_outcome.room_until - 60000.0 / greatest(v_model.rpm, v_rpm) * interval '1 millisecond'
          > coalesce(c.spread_until - v_step.tolerance, '-infinity')
      and coalesce(c.spread_until, '-infinity') < p_outcome.room_until + v_step.tolerance;
  elsif p_outcome.room_until is not null then
    perform public.google_ai_room_rest(p_att, p_outcome.room_requests, p_outcome.room_tokens, p_outcome.room_until);
  end if;

  v_counted := p_outcome.input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null)
    then coalesce(p_outcome.output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_outcome.settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    -- (A service caller's budgets count the owner's Pacific day of the admission, not its provider's day.)
    perform public.google_ai_count_budgets(row(p_att.caller, p_att.client_id, p_att.token_id)::public.google_ai_caller,
      p_att.created_at, public.google_ai_pacific_day(coalesce(p_att.admitted_at, p_att.created_at)), 0,
      coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0), false);
  end if;
  return greatest(0, coalesce(v_counted, p_att.estimated_tokens));
end
$$;

-- What an outcome asks for beyond its attempt row (p_att, just finalized with p_outcome), one step of
-- finalize: the key out of rotation when the provider says the key itself is no good (with the reason,
-- never deleted), rather than let every request spend an attempt on it until the next health check;
-- and the group's rest (google_ai_cooldown_for_cause), whose end it answers.
CREATE OR REPLACE FUNCTION public.google_ai_rest_asked(p_att public.google_ai_attempts,
    p_outcome public.google_ai_attempt_outcome) RETURNS timestamp with time zone
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_until timestamptz;
begin
  if coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID') and p_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_outcome.error_code, 100), 'no reason given') || ') on a call',
      disabled_at = now(),
      updated_at = now()
    where k.id = p_att.api_key_id and k.is_active;
  end if;

  if p_outcome.cooldown_until_provider_midnight then
    -- A per-day quota: until the next midnight of the provider's day (its row's day_zone: Pacific
    -- for Google's row, whose per-day quotas are the ones that say so).
    select public.google_ai_midnight_after_in(pg_catalog.clock_timestamp(), p.day_zone) into v_until
    from public.google_ai_api_keys k join public.google_ai_providers p on p.name = k.serves_provider
    where k.id = p_att.api_key_id;
  else
    v_until := p_outcome.cooldown_until;
  end if;
  if v_until is not null and p_att.quota_group is not null then
    perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, v_until, p_outcome.quota_cause,
      coalesce(p_outcome.error_code, p_att.status), p_outcome.quota_id);
  end if;
  return v_until;
end
$$;

-- Finalize: record what came of the call to the provider (p_outcome) and settle its admission at the
-- provider's count (google_ai_settle_call): input tokens, and output too where the model's TPM counts
-- it (without the provider's count: settled_tokens, what a refusal keeps; else the booking). A success
-- also lands in token_usage, and its response (when given: the caller sent its own request_id) is kept
-- for replay (google_ai_record_successes). An outcome may take its key out of rotation and cool the group
-- down (the provider's 429) in the same transaction (google_ai_rest_asked): until cooldown_until, or
-- with cooldown_until_provider_midnight until the next midnight of the provider's day, in whatever zone
-- its row names. A cut stream (kind cut: the provider billed what it streamed) is written as a success
-- (its counts, room and stated limits; no stored answer), its row marked 'cut' with who cut it
-- (cut_by 'client': the caller went away; 'upstream': the stream broke off on the provider's side) as
-- its error_code stream_cut_by_<cut_by> and in its token_usage row's meta (cut_by), so the bot's books
-- tell a cut answer apart. A withdrawn model is a step of its own (google_ai_withdraw_attempt).
CREATE OR REPLACE FUNCTION public.google_ai_finalize_attempt(p_reservation_id uuid,
    p_outcome public.google_ai_attempt_outcome) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_written public.google_ai_outcome_written := public.google_ai_write_outcome(p_reservation_id, p_outcome);
begin
  if (v_written.att).id is not null then
    perform public.google_ai_settle_call(v_written.att, p_outcome);
  end if;
  return v_written.answer;
end
$$;

-- An outcome's kind as its attempt row takes it, or an error (22023) naming what the outcome got wrong.
CREATE OR REPLACE FUNCTION public.google_ai_outcome_kind(p_outcome public.google_ai_attempt_outcome) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_kind text := p_outcome.kind;
begin
  if v_kind = 'withdrawn' then
    return v_kind;  -- (its own step reads the rest: google_ai_withdraw_attempt)
  elsif v_kind is null or v_kind not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'cut') then
    raise exception 'an outcome''s kind must be succeeded, upstream_error, network_error, timeout, cut or withdrawn'
      using errcode = '22023';
  elsif v_kind = 'cut' and (p_outcome.cut_by is null or p_outcome.cut_by not in ('client', 'upstream')) then
    raise exception 'a cut''s cut_by must be client or upstream' using errcode = '22023';
  end if;
  if not (p_outcome.quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;
  return v_kind;
end
$$;

-- Whether an outcome asks for more than its rows (google_ai_rest_asked): a key out of rotation, a rest.
-- Most successes do not.
CREATE OR REPLACE FUNCTION public.google_ai_outcome_asks_rest(p_outcome public.google_ai_attempt_outcome)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  select coalesce(p_outcome.cooldown_until is not null or p_outcome.cooldown_until_provider_midnight
    or coalesce(p_outcome.key_rejected, p_outcome.error_code = 'API_KEY_INVALID'), false)
$$;

-- The attempt rows of outcomes (p_outcomes, their kinds checked: google_ai_outcome_kind, none withdrawn)
-- written in one statement: each open attempt of p_ids[n] takes p_outcomes[n]. Answers the rows written,
-- each at its call's index, null where the reservation is not open (a reservation named twice is
-- written by its first). The rows are found by their key whatever the log held when the connection
-- planned the statement (google_ai_finalize_calls says why: planned with sequential scans off).
CREATE OR REPLACE FUNCTION public.google_ai_write_attempts(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[])
    RETURNS public.google_ai_attempts[]
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_atts public.google_ai_attempts[];
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
begin
  perform pg_catalog.set_config('enable_seqscan', 'off', true);
  with w as (
    update public.google_ai_attempts a set
      status = x.kind,
      finished_at = pg_catalog.clock_timestamp(),
      input_tokens = (x.o).input_tokens,
      output_tokens = (x.o).output_tokens,
      http_status = case when x.kind = 'cut' then coalesce((x.o).http_status, 200) else (x.o).http_status end,
      error_code = case when x.kind = 'cut' then 'stream_cut_by_' || (x.o).cut_by
                        else left((x.o).error_code, 200) end,
      quota_id = left((x.o).quota_id, 200),
      error_message = left((x.o).error_message, 1000),
      latency_ms = (x.o).latency_ms,
      quota_cause = (x.o).quota_cause,
      service_tier = left((x.o).service_tier, 20),
      served_tier = left((x.o).served_tier, 20),
      -- (greatest() ignores a null: a time not known stays null)
      added_ms = case when (x.o).added_ms is not null then greatest(0, (x.o).added_ms) end,
      first_byte_ms = case when (x.o).first_byte_ms is not null then greatest(0, (x.o).first_byte_ms) end,
      cached_input_tokens = (x.o).cached_input_tokens,
      thinking_tokens = (x.o).thinking_tokens,
      cache_write_1h_tokens = (x.o).cache_write_1h_tokens, cache_write_5m_tokens = (x.o).cache_write_5m_tokens,
      cost_usd = public.google_ai_call_cost(a.model, x.o)
    from (select distinct on (g.id) g.n, g.id, p_outcomes[g.n] as o,
            public.google_ai_outcome_kind(p_outcomes[g.n]) as kind
          from unnest(p_ids) with ordinality g(id, n) order by g.id, g.n) x
    -- (= any: the key read by index whatever join the plan makes)
    where a.reservation_id = any (p_ids) and a.reservation_id = x.id and a.status = 'reserved'
      and x.kind <> 'withdrawn'
    returning x.n, a)
  select array(select w.a from unnest(p_ids) with ordinality g(id, n) left join w on w.n = g.n order by g.n)
  into v_atts;
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  return v_atts;
end
$$;

-- Finalize's first half, every row but the counter row (google_ai_finalize_attempt): the outcome checked,
-- the attempt row written, a success recorded, the rest the outcome asks for. Its att: the row written,
-- whose admission google_ai_settle_call settles next; null where nothing is left to settle (not open,
-- or withdrawn: google_ai_withdraw_attempt settles its own). Several finalizes written together
-- (google_ai_finalize_calls) take the same steps a step at a time for all of them, before the first settle,
-- so their counter rows are held only for the settles.
CREATE OR REPLACE FUNCTION public.google_ai_write_outcome(p_reservation_id uuid,
    p_outcome public.google_ai_attempt_outcome) RETURNS public.google_ai_outcome_written
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  if public.google_ai_outcome_kind(p_outcome) = 'withdrawn' then
    return row(null, public.google_ai_withdraw_attempt(p_reservation_id, p_outcome))::public.google_ai_outcome_written;
  end if;
  v_att := (public.google_ai_write_attempts(array[p_reservation_id], array[p_outcome]))[1];
  if v_att.id is null then
    return row(null, public.google_ai_not_open(p_reservation_id))::public.google_ai_outcome_written;
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if v_att.status in ('succeeded', 'cut') then
    perform public.google_ai_record_successes(array[v_att], array[p_outcome]);
  end if;
  if public.google_ai_outcome_asks_rest(p_outcome) then
    v_until := public.google_ai_rest_asked(v_att, p_outcome);
  end if;
  return row(v_att, jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until))
    ::public.google_ai_outcome_written;
end
$$;

-- A withdrawn model, in one transaction: the attempt row says 'withdrawn' (the provider's status, 404
-- when not said, its code, NOT_FOUND when not said, its sanitized message, the call's latency), the
-- reservation's capacity is given back as google_ai_release gives it (the admission leaves the minute
-- window and the day; the estimated tokens go back to a token's budget, its request stays counted: the
-- same request goes on to its chain's next model as a later attempt), and the model row is marked
-- withdrawn — once: a row already marked keeps the first time and message. successor: the model the
-- provider's answer names instead, as its dialect read it (a suggestion for the operator; another name
-- than the model's own). A reservation that is not open (finalized or released before) changes nothing
-- and is answered as google_ai_release answers it.
CREATE OR REPLACE FUNCTION public.google_ai_withdraw_attempt(p_reservation_id uuid,
    p_outcome public.google_ai_attempt_outcome) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_outcome.error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = coalesce(p_outcome.http_status, 404),
    error_code = left(coalesce(p_outcome.error_code, 'NOT_FOUND'), 200),
    error_message = v_message,
    latency_ms = p_outcome.latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_count_budgets(row(v_att.caller, v_att.client_id, v_att.token_id)::public.google_ai_caller,
    v_att.created_at, public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)), 0,
    -v_att.estimated_tokens, -v_att.booked_usd, false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = case when pg_catalog.lower(p_outcome.successor) <> pg_catalog.lower(v_att.model)
                            then left(p_outcome.successor, 100) end
  where l.model = v_att.model and l.withdrawn_at is null;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', found,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
end
$$;

-- The entry llm-invoke writes an outcome through alone (store/pg-store.ts; successes go in batches,
-- 86_finalize_call.sql): p_outcome read as jsonb_populate_record reads it into
-- google_ai_attempt_outcome, so a key this database does not know yet is ignored and one the caller
-- does not send is null (an attribute added by db push before the functions deploy breaks nothing);
-- below here the outcome travels typed. Its answer: {ok, status, cooldown_until}, a cut's {ok, status},
-- a withdrawn model's {ok, status, model, marked, successor}, or google_ai_not_open's.
CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_finalize_attempt(p_reservation_id,
    pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome, p_outcome));
end
$$;

-- Release: the call never reached Google, so the booking is given back (google_ai_settle_admission).
CREATE OR REPLACE FUNCTION public.google_ai_release(p_reservation_id uuid,
    p_reason text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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

  perform public.google_ai_count_budgets(row(v_att.caller, v_att.client_id, v_att.token_id)::public.google_ai_caller,
    v_att.created_at, public.google_ai_pacific_day(coalesce(v_att.admitted_at, v_att.created_at)),
    -public.google_ai_request_counts(v_att.attempt) * v_att.requests, -v_att.estimated_tokens, -v_att.booked_usd,
    false);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$$;
-- ================================================================================================
-- supabase/schemas/65_stored_responses.sql
-- ================================================================================================

-- The Responses API's stored responses (POST …/v1/responses with store, the gateway's default): the
-- response object as it was answered and its conversation in the hub's words (the turns a follow-up
-- by previous_response_id continues, on any model), for the caller that made it only: a service
-- caller by its label, a scoped token by the token itself. Each lives stored_response_lifetime
-- (05_settings.sql); housekeeping deletes it after (92_housekeeping.sql), and no read returns it.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_stored_responses (
    id text PRIMARY KEY,
    owner text NOT NULL,
    model text NOT NULL,
    response jsonb NOT NULL,
    conversation jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT google_ai_stored_responses_id_check CHECK ((id ~ '^resp_[A-Za-z0-9_-]{1,100}$'::text))
);

COMMENT ON TABLE public.google_ai_stored_responses IS
    'Responses API answers kept for previous_response_id and GET/DELETE …/v1/responses/{id}: the response object, '
    'its conversation in the hub''s words, whose it is (owner: service:<label> or token:<token id>), until '
    'expires_at (created_at + stored_response_lifetime).';

CREATE INDEX IF NOT EXISTS google_ai_stored_responses_expires_at_idx ON public.google_ai_stored_responses USING btree (expires_at);

-- Whose a stored response is: a service caller's label, or a scoped token that is neither revoked
-- nor expired (null: nobody's, so nothing is read, kept or deleted).
CREATE OR REPLACE FUNCTION public.google_ai_stored_response_owner(p_token_hash text, p_caller text)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select case
    when p_token_hash is null then 'service:' || p_caller
    else (select 'token:' || t.id::text from public.google_ai_tokens t
          where t.token_hash = p_token_hash and t.revoked_at is null
            and t.expires_at > pg_catalog.clock_timestamp())
  end
$$;

-- Keeps a response for its caller (a second write of the same id by its owner replaces it; another
-- owner's id is left alone). False: the caller has no scope (its token is gone).
CREATE OR REPLACE FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text,
    p_response jsonb, p_conversation jsonb) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_owner text := public.google_ai_stored_response_owner(p_token_hash, p_caller);
  v_lifetime interval := coalesce(
    (select s.stored_response_lifetime from public.google_ai_maintenance_settings s where s.id), interval '1 day');
begin
  if v_owner is null then
    return false;
  end if;
  insert into public.google_ai_stored_responses as r (id, owner, model, response, conversation, expires_at)
  values (p_id, v_owner, p_model, p_response, p_conversation, pg_catalog.clock_timestamp() + v_lifetime)
  on conflict (id) do update set model = excluded.model, response = excluded.response,
    conversation = excluded.conversation, expires_at = excluded.expires_at
    where r.owner = excluded.owner;
  return true;
end
$$;

COMMENT ON FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text,
    p_response jsonb, p_conversation jsonb) IS
    'Keeps a Responses API answer and its conversation for its caller (a service label, or a live token) for '
    'stored_response_lifetime.';

-- A stored response of the caller's own, while it lives: {model, response, conversation}; null: none
-- (never stored, another caller's, expired or deleted: the same answer, so ids cannot be probed).
CREATE OR REPLACE FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text)
    RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select jsonb_build_object('model', r.model, 'response', r.response, 'conversation', r.conversation)
  from public.google_ai_stored_responses r
  where r.id = p_id and r.owner = public.google_ai_stored_response_owner(p_token_hash, p_caller)
    and r.expires_at > pg_catalog.clock_timestamp()
$$;

COMMENT ON FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) IS
    'A stored Responses API answer of the caller''s own while it lives, else null.';

-- Deletes a stored response of the caller's own; false: there was none (as google_ai_stored_response).
CREATE OR REPLACE FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text)
    RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  with gone as (
    delete from public.google_ai_stored_responses r
    where r.id = p_id and r.owner = public.google_ai_stored_response_owner(p_token_hash, p_caller)
      and r.expires_at > pg_catalog.clock_timestamp()
    returning 1)
  select exists (select from gone)
$$;

COMMENT ON FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text) IS
    'Deletes a stored Responses API answer of the caller''s own; false when it had none.';
-- ================================================================================================
-- supabase/schemas/66_embedding_models.sql
-- ================================================================================================

-- Embedding models: a model row (google_ai_model_limits: its provider, limits, names) whose kind is
-- embedding, with what only an embedding model has: its vectors' dimensions, the inputs its provider
-- takes in one request, the tokens of one input, and whether its provider counts each input of a
-- batch as a request of its own (Google's batchEmbedContents) — then the gateway sends each input as
-- a call of its own, each reserved, logged and priced like any attempt. A model with no row here is
-- not an embedding model (the embedding routes refuse it by name), and a model with one generates
-- nothing (the generation routes refuse it).
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_embedding_models (
    model text PRIMARY KEY
      REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE,
    dimensions integer NOT NULL,
    shortenable boolean DEFAULT false NOT NULL,
    max_batch integer NOT NULL,
    max_input_tokens integer NOT NULL,
    counts_each_input boolean DEFAULT false NOT NULL,
    source text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_embedding_models_dimensions_check CHECK (((dimensions >= 1) AND (dimensions <= 65536))),
    CONSTRAINT google_ai_embedding_models_max_batch_check CHECK (((max_batch >= 1) AND (max_batch <= 100000))),
    CONSTRAINT google_ai_embedding_models_max_input_tokens_check CHECK ((max_input_tokens >= 1))
);

COMMENT ON TABLE public.google_ai_embedding_models IS
    'Embedding models (a row of google_ai_model_limits each): dimensions (shortenable: a smaller one may be asked), '
    'max_batch (inputs per provider request), max_input_tokens (per input), counts_each_input (the provider counts '
    'each input of a batch as one request: a batch of N is booked as N requests), source (where the facts were read).';

-- One model's embedding facts (its canonical name), or null: it does not embed.
CREATE OR REPLACE FUNCTION public.google_ai_embedding_traits(p_model text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select jsonb_build_object('dimensions', e.dimensions, 'shortenable', e.shortenable, 'max_batch', e.max_batch,
    'max_input_tokens', e.max_input_tokens, 'counts_each_input', e.counts_each_input)
  from public.google_ai_embedding_models e where e.model = p_model
$$;

COMMENT ON FUNCTION public.google_ai_embedding_traits(p_model text) IS
    'An embedding model''s dimensions, batch and input limits and counting, or null for a model that does not embed.';
-- ================================================================================================
-- supabase/schemas/70_response_cache.sql
-- ================================================================================================

-- The response cache: whole answers kept by what the provider would be sent (llm-invoke/cache/key.ts
-- hashes it), per scope (a client's tokens share their client's; the service key is one scope unless
-- the settings split it by caller label), served again without calling a provider or booking anything
-- of its limits. The same row is the single flight: a request that finds no answer claims the row (its
-- holder and until when), and an identical one in flight meanwhile waits for that answer instead of
-- calling (llm-invoke/cache/response-cache.ts polls google_ai_cache_lookup). Housekeeping expires entries by
-- their lifetime and by each scope's size limit; every hit leaves an audit row of what it saved.
-- Not the providers' prompt caching (cached_input_tokens and cache writes): that is another thing.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_response_cache_settings (
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

CREATE TABLE IF NOT EXISTS public.google_ai_response_cache_defaults (
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

CREATE TABLE IF NOT EXISTS public.google_ai_response_cache_shared_scopes (
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

CREATE TABLE IF NOT EXISTS public.google_ai_response_cache (
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

CREATE TABLE IF NOT EXISTS public.google_ai_response_cache_hits (
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

CREATE TABLE IF NOT EXISTS public.google_ai_response_cache_misses (
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
-- ================================================================================================
-- supabase/schemas/80_quota_visibility.sql
-- ================================================================================================

-- Quota you can see: what a reservation's answer carries (google_ai_answer_quota, read in the
-- reservation's own statement) and the quota route's report per model and credential.
set check_function_bodies = off;

-- What llm-invoke calls, beside the reservation in one statement. Seeing the quota must never cost
-- an admission: an error here would roll the reservation back with it, so the function only reads,
-- and reads its input without a cast that could fail (an answer it cannot read is "no quota known").
-- Not an exception block: its subtransaction would cost more than the whole read (measured ~150 µs).
CREATE OR REPLACE FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text,
    p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[]) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_answer_quota_at(null, p_answer, p_model, p_exclude_key_ids);
end
$$;

COMMENT ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text, p_exclude_key_ids uuid[]) IS
    'The quota a reservation''s answer carries (llm-invoke''s '
    'x-ratelimit-* headers): called in the reservation''s own statement.';

-- For a reservation's answer (google_ai_reserve_models): the quota of the group it booked, as
-- of the booking (this request counted); for a refusal, of the model asked on its best candidate
-- group (the one that could admit soonest, then the one with most left). Null when no model or group
-- is known (an unknown model, a token refused before the quota, no key for the model).
-- VOLATILE on purpose: called in the reservation's own statement, it must see what the reservation
-- wrote (a stable function would read the statement's starting snapshot).
CREATE OR REPLACE FUNCTION public.google_ai_answer_quota_at(p_now timestamp with time zone, p_answer jsonb,
    p_model text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[]) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_limits public.google_ai_model_limits;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}'::jsonb;
begin
  if p_answer is null or p_answer ->> 'limit' in
     ('unknown_model', 'no_active_key', 'token_invalid', 'token_expired', 'token_revoked', 'model_not_allowed')
     or (p_answer -> 'ok' = 'true'::jsonb and jsonb_typeof(p_answer -> 'quota_group') is distinct from 'string') then
    return null;
  end if;
  v_limits := public.google_ai_request_limits(coalesce(p_answer ->> 'model', p_model));
  if v_limits.model is null then
    return null;
  end if;

  -- (A row that follows its provider: the group's limits as the provider stated them for it.)
  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    if v_limits.provider_limits = 'follow' then
      v_limits := public.google_ai_group_limits(v_limits, v_group);
    end if;
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.*, (e.l).rpm as rpm, (e.l).tpm as tpm, (e.l).rpd as rpd into v_quota
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, p_exclude_key_ids) s) g
    cross join lateral (select case when v_limits.provider_limits = 'follow'
                                    then public.google_ai_group_limits(v_limits, g.quota_group)
                                    else v_limits end as l) e
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, (e.l).rpm, (e.l).tpm,
                                                     (e.l).rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
    v_limits.rpm := v_quota.rpm; v_limits.tpm := v_quota.tpm; v_limits.rpd := v_quota.rpd;
  end if;

  -- What the model's shares keep, for the class the answer names (an admission's, or a queued
  -- refusal's ticket's). Not carried without a class (a refusal answered at once: the shares' sizes
  -- cannot be told apart) nor for a model no share keeps anything of (as a fast booking's quota).
  v_class := coalesce(p_answer ->> 'priority', p_answer -> 'queue' ->> 'priority');
  if v_class is not null and exists (select 1 from public.google_ai_quota_shares s where s.model = v_limits.model) then
    v_kept := jsonb_build_object('kept', public.google_ai_quota_kept(v_limits.model,
      v_limits.rpm, v_limits.rpd, v_class, null));
  end if;

  return jsonb_build_object(
    'model', v_limits.model,
    'quota_group', v_group,
    'rpm', v_limits.rpm,
    'requests_left', v_quota.requests_left,
    -- (google_ai_group_quota leaves a limit's reset null where the model has no such limit: so is its ms.)
    'requests_reset_ms', public.google_ai_ms_until(v_quota.requests_reset_at, v_now),
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', public.google_ai_ms_until(v_quota.tokens_reset_at, v_now),
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', public.google_ai_ms_until(v_quota.day_reset_at, v_now))
    || v_kept;
end
$$;

-- What a model's shares keep, as one requester (class p_class, caller p_caller) sees them: per quota
-- group, the requests of the RPM and of the RPD kept for other owners (rpm_for_others, rpd_for_others:
-- this requester books only what their unused part leaves over) and those kept for it, its class's
-- share and its own (rpm_for_you, rpd_for_you). Share sizes, not what is unused of them; each at most
-- the effective limit given (p_rpm, p_rpd); null for a limit the model does not have.
CREATE OR REPLACE FUNCTION public.google_ai_quota_kept(p_model text,
    p_rpm integer, p_rpd integer, p_class text, p_caller text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select public.google_ai_kept_object(p_rpm, p_rpd,
             sum(s.reserved_rpm) filter (where not o.own), sum(s.reserved_rpm) filter (where o.own),
             sum(s.reserved_rpd) filter (where not o.own), sum(s.reserved_rpd) filter (where o.own))
    from public.google_ai_quota_shares s
    cross join lateral (select coalesce(s.priority_class = p_class,
      false) or coalesce(s.caller = p_caller, false) as own) o
    where s.model = p_model);
end
$$;

-- The cause of the model's cooldown that ends first among the quota groups resting for it that an
-- active key serving the model belongs to (google_ai_serving_keys: the groups the refusal was about, so
-- never the rest of an inactive or deleted key's organization); the one a refusal's retry_after_ms is
-- about. Null: none rests, or its rest has no cause recorded.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown_cause(p_model text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_model text := coalesce((public.google_ai_resolve_model(p_model)).model, p_model);
begin
  return (
    select c.cause
    from public.google_ai_cooldowns c
    where c.model = v_model
      and c.cooldown_until > pg_catalog.clock_timestamp()
      and c.quota_group in (select s.quota_group from public.google_ai_serving_keys(v_model, '{}') s)
    order by c.cooldown_until, c.quota_group
    limit 1);
end
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_cause(p_model text) IS
    'Why a model''s first-ending cooldown rests (a quota cause: docs/google-429s.md): read in the reservation''s '
    'statement when it refuses with limit cooldown.';

-- A chain's steps (fallback_from: {model, limit, cause, retry_after_ms}) with each model passed over for
-- a rest saying that rest's own cause (google_ai_cooldown_cause: money, a spend cap, a day, ...), as the
-- refusal itself says its first-back model's; a rest with no cause recorded keeps upstream_cooldown.
CREATE OR REPLACE FUNCTION public.google_ai_step_causes(p_steps jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select coalesce(jsonb_agg(case when s.step ->> 'limit' = 'cooldown'
                                   then s.step || jsonb_build_object('cause', coalesce(
                                     public.google_ai_cooldown_cause(p_model => s.step ->> 'model'),
                                     s.step ->> 'cause'))
                                   else s.step end order by s.i), '[]'::jsonb)
    from jsonb_array_elements(p_steps) with ordinality s(step, i));
end
$$;

COMMENT ON FUNCTION public.google_ai_step_causes(p_steps jsonb) IS
    'A refusal''s or answer''s fallback_from steps, each cooldown step naming its own rest''s cause: read in the '
    'reservation''s statement.';

-- What is left in one quota group for a model at p_now under the effective limits given (null limit:
-- none, its fields null), and when each figure next grows. ready_at: the earliest moment the group
-- could admit one more request (used to pick the best group for a refusal). An unlocked read.
CREATE OR REPLACE FUNCTION public.google_ai_group_quota(p_quota_group text, p_model text, p_rpm integer, p_tpm integer,
    p_rpd integer, p_now timestamp with time zone, OUT requests_left integer,
    OUT requests_reset_at timestamp with time zone, OUT tokens_left bigint,
    OUT tokens_reset_at timestamp with time zone, OUT day_left integer, OUT day_reset_at timestamp with time zone,
    OUT cooldown_until timestamp with time zone, OUT ready_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_at public.google_ai_counter_at;  -- the row as of p_now, in the provider's day
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  -- (The pool's row when the model names one: limit_pool, where google_ai_book_group books it.)
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce((select l.limit_pool from public.google_ai_model_limits l
                                                              where l.model = p_model), p_model);

  -- The minute and the day, counted as google_ai_book_group counts them (google_ai_counter_at): the ring
  -- moved on to p_now, the next to leave the window its oldest seconds; within the guard of a midnight
  -- the other day's count binds too.
  v_at := public.google_ai_counter_at(v_row, public.google_ai_day_zone(p_model), p_now, false);
  if p_rpm is not null then
    requests_left := greatest(0, p_rpm - v_at.sum_requests);
    requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute), p_now);
  end if;
  if p_tpm is not null then
    tokens_left := greatest(0, p_tpm - v_at.sum_tokens);
    tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_at.ring_low, v_at.ring, v_at.minute, true), p_now);
  end if;
  if p_rpd is not null then
    day_left := greatest(0, p_rpd - greatest(v_at.counts[1], case when v_at.near_end then v_at.counts[2] else 0 end,
                                             case when v_at.near_start then v_at.counts[3] else 0 end));
    day_reset_at := case when v_at.near_start and v_at.counts[3] > v_at.counts[1] then v_at.day_start
                         else v_at.midnight end + v_at.day_guard;
  end if;

  -- A group cooling down admits nothing until the cooldown ends (and its window has room then).
  if cooldown_until is not null then
    if p_rpm is not null then
      requests_reset_at := greatest(cooldown_until, case when requests_left = 0 then requests_reset_at end);
      requests_left := 0;
    end if;
    if p_tpm is not null then
      tokens_reset_at := greatest(cooldown_until, case when tokens_left = 0 then tokens_reset_at end);
      tokens_left := 0;
    end if;
    if p_rpd is not null and cooldown_until >= v_at.midnight then
      day_left := 0; -- the provider's per-day refusal: the cooldown lasts until its midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
end
$$;

-- The token buckets one quota group has for a model whose row counts input and output apart (itpm,
-- otpm; p_limits after the margin: google_ai_request_limits), on the counter row it books (its pool's,
-- limit_pool, or its own): what each holds at p_now (google_ai_bucket_take's bucket: what a request could
-- take now, its size less what is still refilling, rounded down, never more than a booking would take)
-- and when it is full again (p_now when full), 0 while a cooldown rests the group (full at the cooldown's
-- end at the earliest). Null for a limit the row does not have. An unlocked read, as google_ai_group_quota's.
CREATE OR REPLACE FUNCTION public.google_ai_group_token_room(p_quota_group text,
    p_limits public.google_ai_model_limits, p_now timestamp with time zone, OUT input_left bigint,
    OUT input_full_at timestamp with time zone, OUT output_left bigint, OUT output_full_at timestamp with time zone)
    RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval;
  v_row public.google_ai_usage_counters;
  v_rest timestamptz;
  v_left bigint[];
  v_full timestamptz[];
begin
  if p_limits.itpm is null and p_limits.otpm is null then
    return;
  end if;
  v_window := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(p_limits.limit_pool, p_limits.model);
  select cd.cooldown_until into v_rest from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_limits.model and cd.cooldown_until > p_now;
  select array_agg(case when b.size is null then null when v_rest is not null then 0
                        else greatest(0, floor(greatest(floor(b.size * coalesce(p_limits.bucket_share, 1)), 1)
                          - extract(epoch from b.full_at - p_now) * b.size / extract(epoch from v_window))) end
                   order by b.i),
         array_agg(case when b.size is not null then greatest(b.full_at, v_rest) end order by b.i)
  into v_left, v_full
  from (values (1, greatest(v_row.input_until, p_now), p_limits.itpm),
               (2, greatest(v_row.output_until, p_now), p_limits.otpm)) b(i, full_at, size);
  select v_left[1], v_full[1], v_left[2], v_full[2] into input_left, input_full_at, output_left, output_full_at;
end
$$;

-- What one quota group has of a model now, as the admission counts it (google_ai_group_quota on the
-- model's effective limits in the group, google_ai_stored_group_limits: a following row's are those its
-- provider stated; at the database's clock): the requests and tokens in the sliding window, and what
-- the next request could book (0 while a cooldown rests the group); for a row that counts input
-- and output apart (itpm, otpm), what its token buckets hold (google_ai_group_token_room). The usage view's
-- figures (google_ai_usage_now); callable by service_role, which may not give google_ai_group_quota a clock.
CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer,
    OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer,
    OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone,
    OUT input_tokens_left bigint, OUT output_tokens_left bigint) RETURNS record
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits public.google_ai_model_limits;
  v_row public.google_ai_usage_counters;
begin
  select * into v_limits from public.google_ai_model_limits l where l.model = p_model;
  v_limits := public.google_ai_stored_group_limits(v_limits, p_quota_group);
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = coalesce(v_limits.limit_pool, p_model);
  select coalesce(r.sum_requests, 0), coalesce(r.sum_tokens, 0) into requests_used, tokens_used
  from public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0)) r;
  select q.requests_left, q.tokens_left, q.day_left, least(q.requests_reset_at, q.tokens_reset_at), q.ready_at
    into requests_left, tokens_left, day_left, window_frees_at, ready_at
  from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  -- The token buckets of a row that counts input and output apart (null: it does not).
  select t.input_left, t.output_left into input_tokens_left, output_tokens_left
  from public.google_ai_group_token_room(p_quota_group, v_limits, v_now) t;
end
$$;

-- One model over all quota groups that may serve it: what is left of the minute (groups cooling
-- down count 0) and of its provider's day, when each sum next grows, and the queue per class; each group
-- under its effective limits (a row that follows its provider: those it stated for the group).
CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_limits public.google_ai_model_limits;
  v_sum record;
  v_bucket_limits jsonb := '{}'::jsonb;
  v_bucket_minute jsonb := '{}'::jsonb;
  v_queue jsonb;
begin
  v_limits := public.google_ai_request_limits(p_model);
  if v_limits.model is null then
    return null;
  end if;
  select count(*)::integer as groups,
         count(*) filter (where q.cooldown_until is not null)::integer as cooling,
         sum(q.requests_left)::integer as requests_left,
         min(q.requests_reset_at) filter (where q.requests_reset_at > p_now) as requests_reset_at,
         sum(q.tokens_left)::bigint as tokens_left,
         min(q.tokens_reset_at) filter (where q.tokens_reset_at > p_now) as tokens_reset_at,
         sum(q.day_left)::integer as day_left,
         min(q.day_reset_at) as day_reset_at,
         max(e.rpm) as rpm, max(e.tpm) as tpm, max(e.rpd) as rpd
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  -- (A row that follows its provider: each group's limits as the provider stated them for it.)
  cross join lateral (select (f.l).rpm, (f.l).tpm, (f.l).rpd
                      from (select case when v_limits.provider_limits = 'follow'
                                        then public.google_ai_group_limits(v_limits, g.quota_group)
                                        else v_limits end as l) f) e(rpm, tpm, rpd)
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, e.rpm, e.tpm, e.rpd, p_now) q;
  -- A row that counts input and output apart (itpm, otpm): its token buckets, summed, and when all are full.
  if v_limits.itpm is not null or v_limits.otpm is not null then
    select jsonb_build_object('itpm', v_limits.itpm, 'otpm', v_limits.otpm), jsonb_build_object(
             'input_tokens_left', case when v_limits.itpm is not null then coalesce(sum(t.input_left), 0) end,
             'input_tokens_reset_ms', case when v_limits.itpm is not null
               then public.google_ai_ms_until(coalesce(max(t.input_full_at), p_now), p_now) end,
             'output_tokens_left', case when v_limits.otpm is not null then coalesce(sum(t.output_left), 0) end,
             'output_tokens_reset_ms', case when v_limits.otpm is not null
               then public.google_ai_ms_until(coalesce(max(t.output_full_at), p_now), p_now) end)
      into v_bucket_limits, v_bucket_minute
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
    cross join lateral public.google_ai_group_token_room(g.quota_group, v_limits, p_now) t;
  end if;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object('model', v_limits.model,
    -- (The effective limits: a row that follows its provider, the largest of its groups'.)
    'limits', jsonb_build_object('rpm', coalesce(v_sum.rpm, v_limits.rpm), 'tpm', coalesce(v_sum.tpm, v_limits.tpm),
                                 'rpd', coalesce(v_sum.rpd, v_limits.rpd)) || v_bucket_limits,
    'quota_groups', v_sum.groups, 'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end)
      || v_bucket_minute,
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
end
$$;

-- The quota report's `budget` at p_now: a token's own (p_token; null for a service caller) and the
-- day's and month's of whoever owns the budgets (p_owner: the token's client, or a service caller's row;
-- null when it has none, so no budget in money and no spend), each from its row as stored
-- (google_ai_budget_left), whose budgets in money apply (usd_applies_to), and under `spend` the running
-- totals in money of the Pacific day and month (calls in flight at their worst case).
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_budget(p_now timestamp with time zone,
    p_token public.google_ai_tokens, p_owner public.google_ai_budget) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select jsonb_build_object(
    'token_requests_left', t.requests, 'token_tokens_left', t.tokens, 'token_expires_at', p_token.expires_at,
    'token_max_usd', p_token.max_usd, 'token_usd_left', t.usd,
    'usd_applies_to', case when p_token.id is not null then 'client' when p_owner.period is not null then 'caller' end,
    'daily_requests_left', o.requests, 'daily_tokens_left', o.tokens,
    'daily_resets_at', case when num_nonnulls(p_owner.max_requests, p_owner.max_tokens) > 0
                            then public.google_ai_pacific_midnight_after(p_now) end,
    'daily_max_usd', p_owner.max_usd, 'daily_usd_left', o.usd,
    'monthly_max_usd', p_owner.monthly_max_usd, 'monthly_usd_left', o.month_usd,
    'spend', case when p_owner.period is not null then jsonb_build_object('today_usd', (b.owner).spent_usd,
                                                                   'month_usd', (b.owner).spent_month_usd) end)
  from (select public.google_ai_pacific_day(p_now) as day) d
  cross join lateral (select public.google_ai_budget_on(p_owner, d.day) as owner) b
  cross join lateral public.google_ai_budget_left(public.google_ai_budget_of(p_token), d.day) t
  cross join lateral public.google_ai_budget_left(p_owner, d.day) o
$$;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report(p_token_hash text DEFAULT NULL::text,
    p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select public.google_ai_quota_report_at(null, p_token_hash, p_caller) $$;

COMMENT ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) IS
    'GET llm-invoke/v1/quota: per model the caller may use, what is left of the minute and the day over all quota '
    'groups, the queue per class, and the caller''s budgets.';

-- A model's limits beside its provider's, each quota group's (google_ai_stated_limits): for the quota
-- route's service key, which may see every group; a scoped token sees the effective limits alone.
CREATE OR REPLACE FUNCTION public.google_ai_provider_limits_of(p_model text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object('quota_group', d.quota_group, 'limit', d.limit_name,
           'mode', d.provider_limits, 'row', d.row_limit, 'provider', d.provider_limit,
           'effective', d.effective_limit, 'said_at', d.said_at, 'disagreement', d.disagreement)
           order by d.quota_group, d.limit_name), '[]'::jsonb)
  from public.google_ai_stated_limits() d
  where d.model = p_model
$$;

-- The quota route's report at p_now (google_ai_quota_report): per model, the minute and the day
-- over all quota groups, the queue, the caller's budgets, each model's `cooldowns` (with their cause)
-- and `kept` (what its shares keep for others and for this caller, google_ai_quota_kept),
-- and the models Google withdrew (`withdrawn`: when, Google's message, the successor, the shutdown date);
-- for a service caller, each model's `provider_limits` (google_ai_provider_limits_of).
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text,
    p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_models text[];           -- a token's models (google_ai_token_models; empty: none)
  v_every_model boolean := p_token_hash is null;  -- a service caller's: every model, said apart, not by a null list
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_owner public.google_ai_budget;  -- the token's client's or the service caller's (null: none)
  v_budget jsonb;
  v_refused text;  -- why the token can never be admitted
begin
  if p_token_hash is not null then
    select * into v_token from public.google_ai_tokens t where t.token_hash = p_token_hash;
    select * into v_client from public.google_ai_clients c where c.id = v_token.client_id;
    v_refused := public.google_ai_token_refusal(v_token, v_client, v_now);
    if v_refused is not null then
      return jsonb_build_object('ok', false, 'status', v_refused);
    end if;
    v_models := public.google_ai_token_models(v_token, v_client);
    v_owner := public.google_ai_budget_of(v_client);
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: v_owner stays null.
    v_owner := (select public.google_ai_budget_of(b) from public.google_ai_caller_budgets b where b.caller = p_caller);
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;
  v_budget := public.google_ai_quota_report_budget(v_now, v_token, v_owner);

  return jsonb_build_object('ok', true, 'as_of', v_now, 'caller', v_caller,
    -- (A service caller has no token: its token fields are null. The money's: the token's for its life,
    -- and its client's, or the service caller's, day and month; null: none.)
    'budget', v_budget - 'spend',
    -- (null for a service caller without a row: google_ai_spend_daily has its spend)
    'spend', v_budget -> 'spend',
    -- Each active model the caller may use (v_models, or every one: v_every_model), in model order: its provider, the
    -- minute, the day and the queue (google_ai_model_quota), its cooldowns (the quota groups' names, Google
    -- project ids and key:<uuid>, only for a service caller: a token's caller sees each cause and end, not
    -- whose project rests) and what its shares keep (google_ai_quota_kept).
    'models', (
      select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, v_now)
                       || jsonb_build_object('provider', l.provider,
                            'cooldowns', (
                              select coalesce(jsonb_agg(to_jsonb(c) - case when p_token_hash is null then ''
                                                                            else 'quota_group' end
                                                        order by c.cooldown_until, c.quota_group), '[]')
                              from (select cd.quota_group, cd.cause, cd.cooldown_until,
                                           public.google_ai_ms_until(cd.cooldown_until, v_now) as retry_after_ms
                                    from public.google_ai_cooldowns cd
                                    where cd.model = l.model and cd.cooldown_until > v_now) c),
                            'kept', public.google_ai_quota_kept(l.model,
                              public.google_ai_effective_limit(l.rpm, l.safety_margin),
                              public.google_ai_effective_limit(l.rpd, l.safety_margin), v_owner_class,
                              v_owner_caller))
                       -- The row's limits beside its provider's, per group, to the service key alone.
                       || case when p_token_hash is null then jsonb_build_object('provider_limits',
                            public.google_ai_provider_limits_of(l.model)) else '{}' end
                       order by l.model), '[]')
      from public.google_ai_model_limits l
      where l.is_active and (v_every_model or l.model = any (v_models))),
    -- The models their provider withdrew among those (which provider, when, its message, the successors,
    -- the shutdown date).
    'withdrawn', (
      select coalesce(jsonb_agg(to_jsonb(w) order by w.model), '[]')
      from (select l.model, l.provider, l.withdrawn_at, l.withdrawn_message, l.successor, l.google_successor,
                   l.shutdown_date
            from public.google_ai_model_limits l
            where l.withdrawn_at is not null and (v_every_model or l.model = any (v_models))) w));
end
$$;
-- ================================================================================================
-- supabase/schemas/85_reserve_call.sql
-- ================================================================================================

-- The call llm-invoke makes to reserve: google_ai_reserve_models (58_admission.sql) in its own
-- transaction, committed without waiting for the disk, then a second transaction that waits for a
-- flush covering it. A booking holds its quota group's counter row until its transaction ends; with a
-- synchronous commit that is until the flush, so every admission of a group waited for the one before
-- it to reach the disk. Here the lock goes at the first commit, and the flush the caller waits for is
-- shared with every other worker's (PostgreSQL flushes the WAL in order, up to the newest record asked
-- for). A crash between the two loses only bookings whose answer never left: the CALL returns after the
-- flush.
set check_function_bodies = off;

-- What a reservation's answer reads after its commit, under no lock: the quota it reports (o_quota: the
-- booking's own, or google_ai_answer_quota read after it), for a cooldown refusal why the group rests
-- (o_cause: google_ai_cooldown_cause), and each passed-over step's cause (google_ai_step_causes); the
-- answer itself less its quota (o_reservation). p_model: the request's first model; p_exclude_key_ids: its.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[],
    OUT o_reservation jsonb, OUT o_quota jsonb, OUT o_cause text) RETURNS record
    LANGUAGE plpgsql
    AS $$
begin
  o_quota := coalesce(p_reservation -> 'quota', public.google_ai_answer_quota(p_answer => p_reservation,
    p_model => p_model, p_exclude_key_ids => p_exclude_key_ids));
  if p_reservation ->> 'limit' = 'cooldown' then
    o_cause := public.google_ai_cooldown_cause(p_model => coalesce(p_reservation ->> 'model', p_model));
  end if;
  o_reservation := p_reservation - 'quota';
  -- Only a cooldown step has a cause to read (google_ai_step_causes leaves every other step as it is); a
  -- chain served by its first model has none (counted, about 80k instructions for an empty list).
  if o_reservation -> 'fallback_from' @> '[{"limit": "cooldown"}]' then
    o_reservation := pg_catalog.jsonb_set(o_reservation, '{fallback_from}',
      public.google_ai_step_causes(p_steps => o_reservation -> 'fallback_from'));
  end if;
end
$$;

-- A procedure, so that it can COMMIT: invoker, with no SET clause and every name schema-qualified (a
-- SET clause or SECURITY DEFINER forbids a COMMIT), called alone (`call …` as its own statement, never
-- inside a transaction block: a CALL there cannot COMMIT and fails). Its arguments are
-- google_ai_reserve_models'; it answers that entry's answer less its quota (o_reservation, with each
-- passed-over step's cause: google_ai_step_causes), the quota the answer reports (o_quota: the
-- booking's own, or google_ai_answer_quota read after it) and, for a cooldown refusal, why the group
-- rests (o_cause: google_ai_cooldown_cause). The reads run in the second transaction, outside the lock.
CREATE OR REPLACE PROCEDURE public.google_ai_reserve_call(IN p_models text[], IN p_estimated_tokens integer,
    IN p_caller text DEFAULT NULL::text, IN p_token_hash text DEFAULT NULL::text,
    IN p_request_id text DEFAULT NULL::text, IN p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[],
    IN p_attempt integer DEFAULT 1, IN p_wait_ms integer DEFAULT 0, IN p_metadata jsonb DEFAULT '{}'::jsonb,
    IN p_idempotent boolean DEFAULT false, IN p_priority text DEFAULT NULL::text,
    IN p_queue_ticket uuid DEFAULT NULL::uuid, IN p_wait_left_ms integer DEFAULT NULL::integer,
    IN p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone,
    IN p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    IN p_holder uuid DEFAULT NULL::uuid, IN p_output_tokens integer[] DEFAULT NULL::integer[],
    IN p_requests integer DEFAULT 1, INOUT o_reservation jsonb DEFAULT NULL::jsonb,
    INOUT o_quota jsonb DEFAULT NULL::jsonb, INOUT o_cause text DEFAULT NULL::text)
    LANGUAGE plpgsql
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting and v_lsn are assigned and never read by design, as said below.)
declare
  -- set_config's and the message's answers, taken by assignments: a perform is a statement of its own
  -- (counted, about 6k instructions more each).
  v_setting text;
  v_lsn pg_lsn;
  v_reads record;  -- google_ai_reserve_reads'
begin
  -- The booking: its commit does not wait for the disk, so the counter row's lock goes with it.
  v_setting := pg_catalog.set_config('synchronous_commit', 'off', true);
  o_reservation := public.google_ai_reserve_models(p_models => p_models,
    p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_token_hash => p_token_hash,
    p_request_id => p_request_id, p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt,
    p_wait_ms => p_wait_ms, p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
    p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms, p_reply_by => p_reply_by,
    p_hold_until => p_hold_until, p_holder => p_holder, p_output_tokens => p_output_tokens,
    p_requests => p_requests);
  commit;
  -- The answer's reads, under no lock (an assignment, not a query: a query's executor start costs more).
  v_reads := public.google_ai_reserve_reads(p_reservation => o_reservation, p_model => p_models[1],
    p_exclude_key_ids => p_exclude_key_ids);
  o_reservation := v_reads.o_reservation;
  o_quota := v_reads.o_quota;
  o_cause := v_reads.o_cause;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the booking's commit written before it. (A transaction
  -- that writes no WAL, or only takes an id, commits without waiting.)
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;

-- Reservations of one caller that met in one worker while one of theirs was being made (store/pg-store.ts:
-- one caller and one model chain; p_calls: a JSON array of google_ai_reservation records, null fields the
-- entry's defaults), booked in one transaction, each in its turn as google_ai_reserve_models_at books it
-- alone: one commit and one flush for them all, where each alone would wait for a flush of its own. The
-- answer is theirs, in the calls' order. Locks: the first call takes what it needs as a call alone does;
-- the others mostly hold its caller's rows already (token, client, budget: unless the first gave them back
-- with a try it undid), never wait for a counter row or an advisory lock another transaction holds
-- (eve.batch_member: google_ai_counter_locked, google_ai_advisory_lock), and wait at most 50 ms for
-- anything else (lock_timeout): a wait while this transaction holds an earlier call's counter row would
-- break the global lock order (docs/architecture.md, §2). Such a call is undone alone (its own
-- subtransaction) and answered {"alone": true}: the worker makes it again by itself
-- (google_ai_reserve_call). Both settings last this function only, each put back before it answers (a
-- set_config inside a function is kept to the transaction's end unless the function's own SET clause
-- names the variable, and a SET clause may not name a custom one but as a superuser).
CREATE OR REPLACE FUNCTION public.google_ai_reserve_many(p_calls jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_call public.google_ai_reservation;
  v_answers jsonb[] := '{}'::jsonb[];
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_chain record;          -- the first read of the chain of v_chain_of (google_ai_fallback_chain)
  v_chain_of text[];
begin
  perform pg_catalog.set_config('eve.batch_member', 'off', true); -- the first call waits as one alone does
  if pg_catalog.jsonb_typeof(p_calls) is distinct from 'array' or pg_catalog.jsonb_array_length(p_calls) > 16 then
    raise exception 'p_calls must be an array of at most 16 reservations' using errcode = '22023';
  end if;
  if exists (select from pg_catalog.jsonb_array_elements(p_calls) c
             where (c ->> 'caller', c ->> 'token_hash')
                   is distinct from (p_calls -> 0 ->> 'caller', p_calls -> 0 ->> 'token_hash')) then
    raise exception 'the reservations of p_calls must share one caller' using errcode = '22023';
  end if;
  for v_call in select c.* from pg_catalog.jsonb_populate_recordset(null::public.google_ai_reservation, p_calls) c loop
    -- A chain is read once for the calls that name it without a ticket (its rows do not change under
    -- the batch; counted, 220k instructions less a call in a batch of 8, of 3.54M).
    if v_call.queue_ticket is null and cardinality(v_call.models) between 2 and 4
       and array_position(v_call.models, null) is null and v_call.models is distinct from v_chain_of then
      v_chain := public.google_ai_fallback_chain(v_call.models, v_call.token_hash, null,
        pg_catalog.clock_timestamp(), true);
      v_chain_of := v_call.models;
    end if;
    begin
      v_answers := v_answers || case when v_call.queue_ticket is null and v_call.models = v_chain_of
        then public.google_ai_reserve_models_at(null, v_call, v_chain)
        else public.google_ai_reserve_models_at(null, v_call) end;
    exception when lock_not_available then
      v_answers := v_answers || '{"alone": true}'::jsonb;
    end;
    if cardinality(v_answers) = 1 then
      perform pg_catalog.set_config('lock_timeout', '50ms', true),
        pg_catalog.set_config('eve.batch_member', 'on', true);
    end if;
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true),
    pg_catalog.set_config('eve.batch_member', 'off', true);
  return pg_catalog.to_jsonb(v_answers);
end
$$;
-- ================================================================================================
-- supabase/schemas/86_finalize_call.sql
-- ================================================================================================

-- The call llm-invoke writes successes with (one, or a batch of one counter row's: store/pg-store.ts),
-- before the answer leaves where the provider's room is near its end (llm-invoke/attempt/room.ts), else
-- after it: google_ai_finalize_calls (below) in its own transaction, committed without
-- waiting for the disk, then a second transaction that waits for a flush covering it, as the
-- reservation does (85_reserve_call.sql). The finalize locks its quota group's counter row last and
-- holds it until its transaction ends; with a synchronous commit that is until the flush, and the
-- group's admissions would wait for this write's disk. Here the lock goes at the first commit; an
-- answer that waits for the finalize leaves once it (and the rest it wrote) is on disk.
set check_function_bodies = off;

-- The admissions of finalizes written together (google_ai_finalize_calls) settled: p_atts their attempt rows
-- as written, in their counter rows' order, p_outcomes theirs. Each is settled as google_ai_settle_call
-- settles one, but the calls of one counter row are settled in hand (google_ai_call_counted,
-- google_ai_admission_settled) and the row written once (google_ai_write_settled), as one settle after
-- another would leave it: each settle's lookup and write of the row was most of its time (measured at 16
-- callers). A call whose settle writes more of the row (a bucket's word, the limits it states) writes what
-- is in hand first and settles alone.
CREATE OR REPLACE FUNCTION public.google_ai_settle_calls(p_atts public.google_ai_attempts[],
    p_outcomes public.google_ai_attempt_outcome[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_att public.google_ai_attempts;
  v_tokens integer;
  v_model public.google_ai_model_limits;
  v_held public.google_ai_usage_counters;  -- the counter row in hand (locked), settled so far
begin
  for i in 1 .. coalesce(cardinality(p_atts), 0) loop
    v_att := p_atts[i];
    if (p_outcomes[i]).room_until is not null or (p_outcomes[i]).stated_limits is not null then
      if v_held.id is not null then
        perform public.google_ai_write_settled(v_held);
        v_held := null;
      end if;
      perform public.google_ai_settle_call(v_att, p_outcomes[i]);
      continue;
    end if;
    v_tokens := public.google_ai_call_counted(v_att, p_outcomes[i]);
    v_model := (select l from public.google_ai_model_limits l where l.model = v_att.model);
    if v_held.id is null or (v_held.quota_group, v_held.model)
                           is distinct from (v_att.quota_group, coalesce(v_model.limit_pool, v_att.model)) then
      if v_held.id is not null then
        perform public.google_ai_write_settled(v_held);
      end if;
      v_held := (select u from public.google_ai_usage_counters u
                 where u.quota_group = v_att.quota_group and u.model = coalesce(v_model.limit_pool, v_att.model)
                 for update);
    end if;
    if v_held.id is not null then
      v_held := public.google_ai_admission_settled(v_held, v_model, v_att, v_tokens, false);
    end if;
  end loop;
  if v_held.id is not null then
    perform public.google_ai_write_settled(v_held);
  end if;
end
$$;

-- The outcomes of a batch (google_ai_finalize_calls: p_ids its calls, p_outcomes theirs, p_open their open attempt
-- rows, p_order the calls in their counter rows' order) that carry the provider's room (a success's, a cut's),
-- weighed in that order before any counter row is locked: where the room is near its end the rest it asks is
-- written (google_ai_room_rest) and the outcome's room_until cleared, so that its settle does not weigh it again.
-- The answer is p_outcomes with those cleared.
CREATE OR REPLACE FUNCTION public.google_ai_rooms_weighed(p_ids uuid[], p_outcomes public.google_ai_attempt_outcome[],
    p_open public.google_ai_attempts[], p_order integer[]) RETURNS public.google_ai_attempt_outcome[]
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_outcome public.google_ai_attempt_outcome;
  c record;
begin
  for c in
    select a, t.n from unnest(p_order) with ordinality t(n, k)
    join unnest(p_open) a on a.reservation_id = p_ids[t.n]
    where (p_outcomes[t.n]).room_until is not null
    order by t.k
  loop
    v_outcome := p_outcomes[c.n];
    if (public.google_ai_room_bucket_model(c.a, v_outcome.room_requests, v_outcome.room_tokens,
        v_outcome.room_until)).model is null then
      perform public.google_ai_room_rest(c.a, v_outcome.room_requests, v_outcome.room_tokens, v_outcome.room_until);
      v_outcome.room_until := null;
      p_outcomes[c.n] := v_outcome;
    end if;
  end loop;
  return p_outcomes;
end
$$;

-- The finalizes that met in one worker while its last ones were being written (p_calls: a JSON array of
-- {reservation_id, outcome}, each outcome read as google_ai_finalize reads it), written in one transaction: one
-- commit, one wait for the disk, where each alone would hold its group's counter row through a wait of its own. Each
-- call is written as google_ai_finalize writes it; the answer is its answers, in the calls' order. A call that fails
-- fails them all (the caller then sends them one by one). Rows are locked in the one global order
-- (docs/architecture.md, §2): the calls' open attempt rows, their tokens, their clients, service callers' budgets
-- (each sorted), then the counter rows, last, the calls taken in their counter rows' order (quota group, then the
-- model's pool or the model: models of one pool share a row); so neither a reservation nor another batch nor a
-- single finalize waits in a ring with this one. (Riding in a reservation CALL, after its bookings,
-- 87_calls_together.sql, none of its waits lasts more than 5 ms.) A success that carries the provider's remaining
-- counts has its margin read and its rest written (google_ai_room_rest) before the first counter row is locked, the
-- calls in their counter rows' order; the calls' rows but the counter rows are then written
-- (google_ai_write_outcome's steps, each one statement for all the calls: google_ai_write_attempts,
-- google_ai_record_successes), and only then their admissions settled (google_ai_settle_calls), so a counter row is
-- held for its settles alone, not through the other calls' writes (a bucket's word stays with its call:
-- google_ai_settle_call moves the bucket on the counter row). The calls' open attempt rows are found by their key,
-- whatever the log held when the connection planned the statement: the plan is kept for the connection's life, and
-- one made on a small log (a new project, a fresh database) scans the whole log on every call as it grows (measured
-- at 16 callers with 3,500 rows: 480 µs a call of six finalizes, 75 µs by the index); planned with sequential scans
-- off, it reads the unique index. What the calls hold is read with them, so that a statement that would lock or
-- weigh nothing is not run (a plan started and stopped each).
CREATE OR REPLACE FUNCTION public.google_ai_finalize_calls(p_calls jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_ids uuid[];
  v_outcomes public.google_ai_attempt_outcome[];
  v_open public.google_ai_attempts[];
  v_answers jsonb[];
  v_order integer[];  -- the calls in their counter rows' order, each step's
  v_written public.google_ai_attempts[];  -- each call's attempt row as written (google_ai_write_attempts)
  -- Those written, with their outcomes, in the counter rows' order: to record, then to settle.
  v_atts public.google_ai_attempts[] := '{}'::public.google_ai_attempts[];
  v_outs public.google_ai_attempt_outcome[] := '{}'::public.google_ai_attempt_outcome[];
  v_until timestamptz;
  i integer;
  v_seqscan text := pg_catalog.current_setting('enable_seqscan');
  -- What the calls hold (above): an outcome with the provider's room, a token's call, a client's, a service's.
  v_room boolean;
  v_tokens boolean;
  v_clients boolean;
  v_service boolean;
begin
  select coalesce(array_agg((e.call ->> 'reservation_id')::uuid order by e.n), '{}'),
    coalesce(array_agg(e.o order by e.n), '{}'), coalesce(bool_or((e.o).room_until is not null), false)
  into v_ids, v_outcomes, v_room
  from (select e.call, e.n,
          pg_catalog.jsonb_populate_record(null::public.google_ai_attempt_outcome, e.call -> 'outcome') o
        from pg_catalog.jsonb_array_elements(p_calls) with ordinality e(call, n)) e;
  perform pg_catalog.set_config('enable_seqscan', 'off', true);  -- (by their key: above)
  select coalesce(array_agg(o.a order by (o.a).id), '{}'), coalesce(bool_or((o.a).token_id is not null), false),
    coalesce(bool_or((o.a).client_id is not null), false), coalesce(bool_or((o.a).client_id is null), false)
  into v_open, v_tokens, v_clients, v_service
  from (select a from public.google_ai_attempts a
        where a.status = 'reserved' and a.reservation_id = any (v_ids) order by a.id for update) o;
  perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
  v_answers := pg_catalog.array_fill(null::jsonb, array[cardinality(v_ids)]);
  if v_tokens then
    perform from public.google_ai_tokens t where t.id in (select token_id from unnest(v_open)) order by t.id for update;
  end if;
  if v_clients then
    perform from public.google_ai_clients l where l.id in (select client_id from unnest(v_open)) order by l.id
    for update;
  end if;
  if v_service then
    perform from public.google_ai_caller_budgets b
    where b.caller in (select a.caller from unnest(v_open) a where a.client_id is null) order by b.caller for update;
  end if;
  if cardinality(v_ids) = 1 then
    v_order := '{1}';
  else
    v_order := array(select g.n from pg_catalog.generate_subscripts(v_ids, 1) g(n)
      left join unnest(v_open) a on a.reservation_id = v_ids[g.n]
      left join public.google_ai_model_limits l on l.model = a.model
      order by a.quota_group, coalesce(l.limit_pool, a.model), g.n);
  end if;
  if v_room then
    v_outcomes := public.google_ai_rooms_weighed(v_ids, v_outcomes, v_open, v_order);
  end if;
  -- Each row but the counter row, a step at a time for all the calls (google_ai_write_outcome's steps): the
  -- attempt rows, the successes' rows, then the rest outcomes ask and withdrawn models, in order.
  v_written := public.google_ai_write_attempts(v_ids, v_outcomes);
  foreach i in array v_order loop
    continue when (v_written[i]).id is null;
    v_atts[cardinality(v_atts) + 1] := v_written[i];
    v_outs[cardinality(v_outs) + 1] := v_outcomes[i];
  end loop;
  perform public.google_ai_record_successes(v_atts, v_outs);
  foreach i in array v_order loop
    if (v_written[i]).id is not null then
      v_until := case when public.google_ai_outcome_asks_rest(v_outcomes[i])
                      then public.google_ai_rest_asked(v_written[i], v_outcomes[i]) end;
      v_answers[i] := jsonb_build_object('ok', true, 'status', (v_written[i]).status, 'cooldown_until', v_until);
    elsif public.google_ai_outcome_kind(v_outcomes[i]) = 'withdrawn' then
      v_answers[i] := public.google_ai_withdraw_attempt(v_ids[i], v_outcomes[i]);
    else
      v_answers[i] := public.google_ai_not_open(v_ids[i]);
    end if;
  end loop;
  -- Then the counter rows, each held from its first settle to the commit: for the settles alone.
  perform public.google_ai_settle_calls(v_atts, v_outs);
  return pg_catalog.to_jsonb(v_answers);
end
$$;

-- A procedure, so that it can COMMIT: invoker, with no SET clause and every name schema-qualified (a
-- SET clause or SECURITY DEFINER forbids a COMMIT), called alone (`call …` as its own statement, never
-- inside a transaction block: a CALL there cannot COMMIT and fails). p_calls is
-- google_ai_finalize_calls' (each call {reservation_id, outcome}; llm-invoke sends one, or a batch);
-- o_answers its answer (google_ai_finalize's answers, in the calls' order).
CREATE OR REPLACE PROCEDURE public.google_ai_finalize_call(IN p_calls jsonb, INOUT o_answers jsonb DEFAULT NULL::jsonb)
    LANGUAGE plpgsql
    AS $$
begin
  -- The finalize: its commit does not wait for the disk, so the counter row's lock goes with it.
  perform pg_catalog.set_config('synchronous_commit', 'off', true);
  o_answers := public.google_ai_finalize_calls(p_calls => p_calls);
  commit;
  -- The flush: a WAL record under a transaction id, committed synchronously. Its commit waits until
  -- the WAL is on disk up to it, which covers the finalize's commit written before it.
  perform pg_catalog.set_config('synchronous_commit', 'on', true);
  perform pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;
-- ================================================================================================
-- supabase/schemas/87_calls_together.sql
-- ================================================================================================

-- Reservations that met in a worker (google_ai_reserve_many, 85_reserve_call.sql) in one CALL, and the
-- successes' finalizes that ride with them (google_ai_finalize_calls, 86_finalize_call.sql): written while a
-- worker's reservations are under way, a finalize goes in their next CALL (store/pg-store.ts) rather than in
-- one of its own, which would take the same counter row beside them and flush the WAL a second time.
set check_function_bodies = off;

-- Finalizes written in a transaction that already holds the reservations' rows (google_ai_reserve_calls):
-- google_ai_finalize_calls' calls and answer, or, when they failed, undone together (their own
-- subtransaction) so the reservations stand, {"error": its SQLSTATE}: the worker then writes them by
-- themselves. They are the reservations' caller's (store/riders.ts), whose token, client and budget rows
-- the transaction holds already; their other locks (their attempt rows, a counter row the reservations did
-- not book) come after the reservations' counter rows, against the global order (docs/architecture.md, §2),
-- so no wait here is longer than 5 ms (lock_timeout, put back before it answers): a wait in a ring with
-- another transaction ends there, and the counter rows held meanwhile are held no longer for it.
CREATE OR REPLACE FUNCTION public.google_ai_finalize_riding(p_calls jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
declare
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_answers jsonb;
begin
  perform pg_catalog.set_config('lock_timeout', '5ms', true);
  begin
    v_answers := public.google_ai_finalize_calls(p_calls => p_calls);
  exception when others then
    v_answers := pg_catalog.jsonb_build_object('error', sqlstate);
  end;
  perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
  return v_answers;
end
$$;

-- The call llm-invoke makes for reservations that met (google_ai_reserve_many): as google_ai_reserve_call
-- makes one, the booking committed without waiting for the disk, then each answer's reads
-- (google_ai_reserve_reads), then one flush that covers them all; called alone, as it is. o_answers:
-- one {o_reservation, o_quota, o_cause} per call, in their order; a call answered {"alone": true} is
-- answered so, unread. p_finalizes: successes' finalizes of the same caller that ride with them
-- (google_ai_finalize_riding, after the bookings, in the same commit and flush); o_finalized their answers,
-- or {"error": SQLSTATE} when they failed, or null when none rode.
CREATE OR REPLACE PROCEDURE public.google_ai_reserve_calls(IN p_calls jsonb, IN p_finalizes jsonb DEFAULT NULL::jsonb,
    INOUT o_answers jsonb DEFAULT NULL::jsonb, INOUT o_finalized jsonb DEFAULT NULL::jsonb)
    LANGUAGE plpgsql
    AS $$
-- @plpgsql_check_options: extra_warnings = off
-- (`supabase db lint`: v_setting and v_lsn are assigned and never read by design, as in google_ai_reserve_call.)
declare
  v_setting text;
  v_lsn pg_lsn;
  v_booked jsonb;
  v_answers jsonb[] := '{}'::jsonb[];
begin
  v_setting := pg_catalog.set_config('synchronous_commit', 'off', true);
  v_booked := public.google_ai_reserve_many(p_calls => p_calls);
  if p_finalizes is not null then
    o_finalized := public.google_ai_finalize_riding(p_calls => p_finalizes);
  end if;
  commit;
  for i in 0 .. pg_catalog.jsonb_array_length(v_booked) - 1 loop
    -- (Expressions, not queries: a query's executor start costs more than its work here.)
    v_answers := v_answers || case when v_booked -> i ? 'alone' then v_booked -> i else
      pg_catalog.to_jsonb(public.google_ai_reserve_reads(p_reservation => v_booked -> i,
        p_model => p_calls -> i -> 'models' ->> 0,
        p_exclude_key_ids => coalesce((pg_catalog.jsonb_populate_record(null::public.google_ai_reservation,
          p_calls -> i)).exclude_key_ids, '{}'::uuid[]))) end;
  end loop;
  o_answers := pg_catalog.to_jsonb(v_answers);
  v_setting := pg_catalog.set_config('synchronous_commit', 'on', true);
  v_lsn := pg_catalog.pg_logical_emit_message(true, 'eve', '');
end
$$;
-- ================================================================================================
-- supabase/schemas/90_maintenance_log.sql
-- ================================================================================================

-- What maintenance did (the owner's google_ai_maintenance_log), read by the metrics and written by
-- housekeeping; what it is set to do is google_ai_maintenance_settings (05_settings.sql); whether its
-- pg_cron jobs are scheduled (google_ai_cron_jobs, read by the metrics and the maintenance run).
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_maintenance_log (
    id serial NOT NULL,
    operation text NOT NULL,
    tables_affected text[],
    deleted_count integer,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    status text,
    details jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS id serial NOT NULL;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS operation text NOT NULL;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS tables_affected text[];
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS deleted_count integer;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS started_at timestamp with time zone;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS completed_at timestamp with time zone;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS status text;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS details jsonb;
ALTER TABLE public.google_ai_maintenance_log ADD COLUMN IF NOT EXISTS created_at timestamp with time zone DEFAULT now() NOT NULL;

SELECT pg_temp.add_constraint_once('public.google_ai_maintenance_log', 'google_ai_maintenance_log_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_maintenance_log
    ADD CONSTRAINT google_ai_maintenance_log_pkey PRIMARY KEY (id);$constraint$);

CREATE INDEX IF NOT EXISTS google_ai_maintenance_log_started_at_idx
    ON public.google_ai_maintenance_log USING btree (started_at);

-- The pg_cron jobs the gateway runs on (20261122000200_rows_and_schedule.sql schedules them; its header
-- lists them with their commands, and docs/maintenance.md the statements that schedule each again),
-- each with its schedule, and whether it is scheduled: present, active, in this database. The
-- maintenance function's job is expected only where it can run (pg_net and Vault).
-- A migration cannot say a job is missing (`supabase db push` prints no NOTICE): this is where it shows,
-- in the maintenance run's answer and the metric eve_gateway_cron_job_missing. pg_cron's table is found
-- by name, so without pg_cron every expected job is missing and the function still compiles. Security
-- definer: cron.job shows each role only its own jobs, and they are the migrations' role's, this
-- function's owner.
CREATE OR REPLACE FUNCTION public.google_ai_cron_jobs() RETURNS TABLE(job text, schedule text, present boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_cron_jobs regclass := pg_catalog.to_regclass('cron.job');
  v_scheduled text[] := '{}'::text[];
begin
  if v_cron_jobs is not null then
    execute pg_catalog.format('select coalesce(pg_catalog.array_agg(j.jobname), ''{}'') from %s j '
                              || 'where j.active and j.database = pg_catalog.current_database()', v_cron_jobs)
      into v_scheduled;
  end if;
  return query
    select e.job, e.schedule, e.job = any (v_scheduled)
    from (values
      ('eve-gateway-housekeeping', '17 * * * *', true),
      ('eve-gateway-counters-vacuum', '10 seconds', true),
      ('eve-gateway-maintenance', '47 */6 * * *',
       pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null
       and pg_catalog.to_regclass('vault.decrypted_secrets') is not null)
    ) e(job, schedule, expected)
    where e.expected
    order by 1;
end
$$;

COMMENT ON FUNCTION public.google_ai_cron_jobs() IS
    'The pg_cron jobs the gateway expects here (the maintenance function''s only where pg_net and Vault exist), '
    'with its schedule, and whether each is scheduled (active, in this database).';
-- ================================================================================================
-- supabase/schemas/91_metrics.sql
-- ================================================================================================

-- Metrics from the database's truth: running totals folded from attempt rows that can no longer
-- change (with a fence against ids not committed yet) and one scrape's Prometheus text.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_metric_fold (
    id boolean DEFAULT true NOT NULL,
    folded_through bigint DEFAULT 0 NOT NULL,
    folded_at timestamp with time zone,
    rows_folded bigint DEFAULT 0 NOT NULL,
    fence_id bigint,
    fence_at timestamp with time zone,
    CONSTRAINT google_ai_metric_fold_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_metric_fold IS
    'Metrics: the attempt rows (id <= folded_through) whose counts are in google_ai_metric_totals, and the fence '
    '(fence_id handed out by fence_at) that tells an id never to be visible from one not committed yet.';

CREATE TABLE IF NOT EXISTS public.google_ai_metric_totals (
    family text NOT NULL,
    suffix text DEFAULT ''::text NOT NULL,
    labels text NOT NULL,
    le numeric DEFAULT 'NaN'::numeric NOT NULL,
    value numeric DEFAULT 0 NOT NULL
);

COMMENT ON TABLE public.google_ai_metric_totals IS
    'Metrics: running totals of the attempt rows already folded (google_ai_metric_fold), per series. A scrape adds the '
    'rows above the fold''s mark; housekeeping folds what it deletes. Never holds a key or a secret.';

SELECT pg_temp.add_constraint_once('public.google_ai_metric_fold', 'google_ai_metric_fold_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_metric_fold
    ADD CONSTRAINT google_ai_metric_fold_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_metric_totals', 'google_ai_metric_totals_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_metric_totals
    ADD CONSTRAINT google_ai_metric_totals_pkey PRIMARY KEY (family, suffix, labels, le);$constraint$);

-- The histograms' bucket bounds in seconds, +Inf last (the columns hold milliseconds).
CREATE OR REPLACE FUNCTION public.google_ai_metric_bounds_s() RETURNS numeric[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,120,300,Infinity}'::numeric[] $$;

-- A label pair with its value escaped as the text format wants (backslash, quote, newline).
CREATE OR REPLACE FUNCTION public.google_ai_metric_label(p_name text, p_value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select p_name operator(pg_catalog.||) '="' operator(pg_catalog.||)
    pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(coalesce(p_value, ''), E'\\', E'\\\\'), '"', E'\\"'),
      E'\n', E'\\n') operator(pg_catalog.||) '"'
$$;

-- The (non-cumulative) bucket of a duration in ms: the smallest bound >= it (le is inclusive).
CREATE OR REPLACE FUNCTION public.google_ai_metric_le(p_us integer) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select (public.google_ai_metric_bounds_s())[
    pg_catalog.width_bucket(p_us::double precision operator(pg_catalog.-) 0.5,
      '{5,10,25,50,100,250,500,1000,2500,5000,10000,30000,60000,120000,300000}'::double precision[])
    operator(pg_catalog.+) 1]
$$;

-- How long a refusal may still change: a waiting caller asking again updates its refusal row while
-- it is younger than its wait plus a minute (google_ai_refusal_at). The longest wait is bounded
-- by llm-invoke's budget, which Supabase's Edge Function wall clock (400 s at most) bounds; 8 minutes
-- covers it. Keep it below stale_reservation_after (the fold's lag, 15 minutes by default).
CREATE OR REPLACE FUNCTION public.google_ai_metric_refusal_settled() RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select interval '8 minutes' $$;

-- Which attempt rows the metrics count, with the columns their labels and values come from: the
-- decided rows with p_after < id <= p_through (and, given p_only, among those ids). A step of its own
-- so that google_ai_metric_samples reads them once for its counters and its histograms.
-- p_settled_before (the scrape's live part): a refusal created at or after it may still change, and
-- is left out until it cannot (the fold never reaches such a row; housekeeping's rows are old).
-- Every label is read from columns fixed when the row was written or decided, never from another
-- table: the caller is a Kaggle client's caller (client_id set at insert), else 'service'.
-- (SQL, STABLE, no SET clause: PostgreSQL inlines it into the query that reads it.)
CREATE OR REPLACE FUNCTION public.google_ai_metric_decided(p_after bigint, p_through bigint, p_only bigint[],
    p_settled_before timestamp with time zone) RETURNS TABLE(model text, quota_group text, priority_class text,
    status text, limit_hit text, refusal_cause text, quota_cause text, http_status integer, service_tier text,
    served_tier text, input_tokens integer, output_tokens integer, latency_ms integer, first_byte_ms integer,
    added_ms integer, wait_ms integer, caller text, cost_usd numeric)
    LANGUAGE sql STABLE
    AS $$
  select a.model, a.quota_group, a.priority_class, a.status, a.limit_hit, a.refusal_cause, a.quota_cause,
         a.http_status, a.service_tier, a.served_tier, a.input_tokens, a.output_tokens, a.latency_ms,
         a.first_byte_ms, a.added_ms, a.wait_ms,
         case when a.client_id is not null then a.caller else 'service' end as caller, a.cost_usd
  from public.google_ai_attempts a
  where a.id > p_after and a.id <= p_through and a.status <> 'reserved'
    and (p_only is null or a.id = any (p_only))
    and (p_settled_before is null or a.status <> 'refused' or a.created_at < p_settled_before)
$$;

-- The samples the decided attempt rows (google_ai_metric_decided, read once) add to the counters and
-- histograms, summed per series. One definition for the fold, the scrape's live part and
-- housekeeping's fold-on-delete, so the three always agree. Set-based: rows are grouped by their
-- labels first, and labels are rendered per group, not per row. A row from a reservation has a
-- quota group; a queue lapse (google_ai_queue_lapse) has none. No SET clause, so the scrape's statement
-- inlines it and keeps its plan; a row's samples are a union of selects, not a lateral VALUES list,
-- whose expressions PostgreSQL compiles again for every row it is joined to.
CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint,
    p_only bigint[] DEFAULT NULL::bigint[],
    p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(family text,
    suffix text, labels text, le numeric, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as upstream_429,
           coalesce(d.service_tier, 'standard') as service_tier, d.served_tier,
           count(*)::numeric as n, sum(d.input_tokens)::numeric as tokens_in,
             sum(d.output_tokens)::numeric as tokens_out, sum(d.cost_usd) as spend
    from decided d
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  ), counters as (
    select x.family, x.labels, sum(x.value) as value
    from (select g.*, public.google_ai_metric_label('model', g.model) as m,
                 public.google_ai_metric_label('quota_group', g.quota_group) as qg,
                 public.google_ai_metric_label('priority_class', g.priority_class) as pc,
                 public.google_ai_metric_label('caller', g.caller) as who,
                 public.google_ai_metric_label('provider',
                   (select l.provider from public.google_ai_model_limits l where l.model = g.model)) as pv
          from groups g) g
    cross join lateral (
      select 'eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc,
        g.who, public.google_ai_metric_label('status', g.status)), g.n
      union all select 'eve_gateway_refusals_total', concat_ws(',', g.m, g.pc,
        g.who, public.google_ai_metric_label('limit', g.limit_hit),
          public.google_ai_metric_label('cause', g.refusal_cause)),
        case when g.status = 'refused' then g.n end
      union all select 'eve_gateway_upstream_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.upstream_429 then g.n end
      union all select 'eve_gateway_upstream_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn') then g.n end
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      union all select 'eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      union all select 'eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end
      union all select 'eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'),
        g.tokens_in
      union all select 'eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'),
        g.tokens_out
      -- What the calls cost (cost_usd; a call of unknown cost adds nothing).
      union all select 'eve_gateway_spend_usd_total', concat_ws(',', g.m, g.pv, g.who), g.spend
    ) x(family, labels, value)
    where x.value is not null
    group by 1, 2
  ), durations as (
    -- One row per measured duration: its histogram, its two labels (model and quota group or class), its ms.
    select h.family, d.model, h.second_name, h.second_value, h.ms
    from decided d
    cross join lateral (
      select 'eve_gateway_upstream_latency_seconds', 'quota_group', d.quota_group, d.latency_ms
      union all select 'eve_gateway_time_to_first_byte_seconds', 'priority_class', d.priority_class, d.first_byte_ms
      union all select 'eve_gateway_added_latency_seconds', 'priority_class', d.priority_class, d.added_ms
      -- The wait before an admission: rows from a reservation only (a refusal's wait ended in no
      -- admission; a queue lapse's is its time in line).
      union all select 'eve_gateway_wait_seconds', 'priority_class', d.priority_class,
        case when d.quota_group is not null then d.wait_ms end
    ) h(family, second_name, second_value, ms)
    where h.ms is not null
  ), buckets as (
    select u.family, concat_ws(',', public.google_ai_metric_label('model', u.model),
             public.google_ai_metric_label(u.second_name, u.second_value)) as labels,
           public.google_ai_metric_le(u.ms) as le, count(*)::numeric as n, sum(u.ms)::numeric as ms
    from durations u
    group by u.family, u.model, u.second_name, u.second_value, 3
  )
  select c.family, '', c.labels, 'NaN'::numeric, c.value from counters c
  union all
  select b.family, '_bucket', b.labels, b.le, sum(b.n) from buckets b group by 1, 3, 4
  union all
  select b.family, '_sum', b.labels, 'NaN'::numeric, sum(b.ms) / 1000 from buckets b group by 1, 3
$$;

-- Adds the attempt rows that can no longer change to the totals and moves the mark past them: rows
-- above the mark, up to (not including) the first one still open ('reserved'), younger than
-- stale_reservation_after (no function runs that long, so none writes it again), or a refusal a
-- waiting caller may still update; and never past an id that is not visible, unless the fence says
-- it never will be. An id is handed out when its insert starts and is visible only once its
-- transaction commits, so a committed higher id says nothing of a lower one: passing an id whose
-- insert commits later would leave its row counted by neither the live part nor a later fold. Ids
-- also have permanent gaps (an insert rolled back: a reservation whose caller stopped waiting, a
-- model tried in a subtransaction; a row housekeeping deleted above the mark); a gap is permanent
-- once the fence (fence_id handed out by fence_at) is older than any transaction can stay open,
-- taken here as stale_reservation_after (the reservation's statements time out in seconds; a late
-- one is rolled back at commit). The fence is renewed once it is that old, so a gap holds the mark
-- back for at most twice stale_reservation_after; the rows after it stay live (counted) meanwhile.
-- p_wait: wait for a fold in progress (housekeeping) or give up at once (a scrape: the other fold
-- does the work). Returns the mark after the call.
CREATE OR REPLACE FUNCTION public.google_ai_metrics_fold(
    p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_wait boolean DEFAULT false) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_fold public.google_ai_metric_fold;
  v_mark bigint;
  v_through bigint;
  v_permanent_through bigint;
  v_lag interval;
begin
  if p_wait then
    select * into v_fold from public.google_ai_metric_fold f where f.id for update;
  else
    select * into v_fold from public.google_ai_metric_fold f where f.id for update skip locked;
    if not found then
      return (select f.folded_through from public.google_ai_metric_fold f where f.id);
    end if;
  end if;
  if v_fold.id is null then
    insert into public.google_ai_metric_fold (id) values (true) on conflict (id) do nothing;
    return 0;
  end if;
  v_mark := v_fold.folded_through;
  select coalesce((select s.stale_reservation_after from public.google_ai_maintenance_settings s where s.id),
                  interval '15 minutes') into v_lag;
  -- Ids up to this one that are not visible never will be.
  v_permanent_through := case when v_fold.fence_at <= v_now - v_lag then v_fold.fence_id else v_mark end;

  -- One statement, one snapshot: the first row that may still change (read along the primary key
  -- from the mark), the largest visible id below it, and the last visible row before the first gap
  -- not known to be permanent. (A row that commits later into an id this passes is in a permanent
  -- gap, so none does; a later snapshot, the totals' below, sees every row this one saw.)
  with stop as (
    select a.id from public.google_ai_attempts a
    where a.id > v_mark
      and (a.status = 'reserved' or a.created_at >= v_now - v_lag
           or (a.status = 'refused' and a.created_at >= v_now - public.google_ai_metric_refusal_settled()))
    order by a.id limit 1
  ), below as (
    select a.id, coalesce(lag(a.id) over (order by a.id), v_mark) as prev
    from public.google_ai_attempts a
    where a.id > v_mark and a.id < coalesce((select stop.id from stop), 9223372036854775807)
  )
  select coalesce((select min(b.prev) from below b where b.id > b.prev + 1 and b.id - 1 > v_permanent_through),
                  (select max(b.id) from below b), v_mark)
  into v_through;

  -- Renew an old fence: the ids handed out by now. (The identity's sequence has cache 1, so its
  -- last value is the last id handed to any session; a cache would hand out lower ids later.)
  if v_fold.fence_at is null or v_fold.fence_at <= v_now - v_lag then
    update public.google_ai_metric_fold f set
      fence_id = coalesce(pg_catalog.pg_sequence_last_value(
        pg_catalog.pg_get_serial_sequence('public.google_ai_attempts', 'id')::regclass), 0),
      fence_at = pg_catalog.clock_timestamp()
    where f.id;
  end if;
  if v_through <= v_mark then
    return v_mark;
  end if;

  insert into public.google_ai_metric_totals as t (family, suffix, labels, le, value)
  select s.family, s.suffix, s.labels, s.le, s.value
  from public.google_ai_metric_samples(v_mark, v_through) s
  on conflict (family, suffix, labels, le) do update set value = t.value + excluded.value;

  update public.google_ai_metric_fold f set
    folded_through = v_through,
    folded_at = pg_catalog.clock_timestamp(),
    rows_folded = f.rows_folded + (select count(*)
      from public.google_ai_attempts a where a.id > v_mark and a.id <= v_through)
  where f.id;
  return v_through;
end
$$;

-- The quota groups serving each active model now, and those that have counted for one: the series
-- the scrape knows before their first row, and the quota gauges.
CREATE OR REPLACE FUNCTION public.google_ai_metric_serving() RETURNS TABLE(quota_group text, model text)
    LANGUAGE sql STABLE
    AS $$
  select s.quota_group, l.model
  from public.google_ai_model_limits l
  cross join lateral public.google_ai_serving_keys(l.model, null) s
  where l.is_active
  union
  select c.quota_group, c.model from public.google_ai_usage_counters c where c.quota_group is not null
$$;

-- The counters and histograms of one scrape at p_at: the folded totals, the live rows above the mark
-- p_mark (a refusal once settled) and the series known before their first row at zero; buckets
-- cumulative, +Inf last, _count equal to it. Samples as the text format names them.
CREATE OR REPLACE FUNCTION public.google_ai_metric_counts(p_at timestamp with time zone, p_mark bigint)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with serving as (
    select p.quota_group, p.model from public.google_ai_metric_serving() p
  ), known (family, kind, labels) as (
    -- Series known before their first row, exported at zero from the start: a series that first
    -- appears already holding its first observations starts at that value for Prometheus, and rate()
    -- and increase() never count a series' starting value (a model's first requests would show in no
    -- latency panel, a group's first provider 429 or lost finalize no increase() alert). The labels as
    -- google_ai_metric_samples renders them; active models by class, and the quota groups serving each.
    select h.family, 'histogram', concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('priority_class', c.name))
    from public.google_ai_model_limits l cross join public.google_ai_priority_classes c
    cross join (values ('eve_gateway_time_to_first_byte_seconds'), ('eve_gateway_added_latency_seconds'),
                       ('eve_gateway_wait_seconds')) h(family)
    where l.is_active
    union all
    select x.family, x.kind, concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group))
    from serving p
    cross join (values ('eve_gateway_upstream_latency_seconds', 'histogram'),
                       ('eve_gateway_finalizes_lost_total', 'counter')) x(family, kind)
    union all
    -- (Every cause a row may name: google_ai_quota_causes.)
    select 'eve_gateway_upstream_429_total', 'counter',
           concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider',
               (select l.provider from public.google_ai_model_limits l where l.model = p.model)),
             public.google_ai_metric_label('cause', c.cause))
    from serving p
    cross join unnest(public.google_ai_quota_causes()) c(cause)
  ), counted as (
    select t.family, t.suffix, t.labels, t.le, t.value from public.google_ai_metric_totals t
    union all
    select s.family, s.suffix, s.labels, s.le, s.value
    from public.google_ai_metric_samples(p_mark, 9223372036854775807, null,
      p_at - public.google_ai_metric_refusal_settled()) s
    union all
    -- (A histogram's +Inf bucket brings all its buckets and _count; its _sum is a sample of its own.)
    select k.family, x.suffix, k.labels, x.le, 0 from known k
    cross join lateral (values ('histogram', '_bucket', 'Infinity'::numeric), ('histogram', '_sum', 'NaN'::numeric),
                               ('counter', '', 'NaN'::numeric)) x(kind, suffix, le)
    where x.kind = k.kind
  ), histograms as (
    -- Every bucket of each histogram series, cumulative: a bucket counts in each bound at or above its own.
    select c.family, c.labels, b.le, coalesce(sum(c.value) filter (where c.le <= b.le), 0) as value
    from counted c cross join unnest(public.google_ai_metric_bounds_s()) b(le)
    where c.suffix = '_bucket' group by 1, 2, 3
  )
  -- (Only a bucket has a bound: any other sample is one per family, suffix and labels.)
  select c.family, c.family || c.suffix, c.labels, sum(c.value) from counted c where c.suffix <> '_bucket'
  group by c.family, c.suffix, c.labels
  union all
  select h.family, h.family || '_bucket',
         concat_ws(',', nullif(h.labels, ''),
           'le="' || case when h.le = 'Infinity' then '+Inf' else h.le::text end || '"'),
         h.value
  from histograms h
  union all
  select h.family, h.family || '_count', h.labels, h.value from histograms h where h.le = 'Infinity'
$$;

-- The quota gauges at p_at, per quota group serving a model (google_ai_metric_serving): admissions in
-- the sliding minute (moved on to p_at by google_ai_ring_at) and the provider's day, and their limits (a
-- row that follows its provider: those it stated for the group);
-- and when each provider's day ends (its row's day_zone), when its models' day counts reopen. The
-- model's provider is a label of its gauges, so that a rule matches them with their provider's day end.
CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider', l.provider)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_day_in(p_at, public.google_ai_day_zone(p.model))
                then c.rpd_used else 0 end as day_requests,
           coalesce(case when c.stated_limits[1] is not null then (f.f).rpm end,
             public.google_ai_effective_limit(l.rpm, l.safety_margin)) as rpm,
           coalesce(case when c.stated_limits[2] is not null then (f.f).tpm end,
             public.google_ai_effective_limit(l.tpm, l.safety_margin)) as tpm,
           coalesce(case when c.stated_limits[3] is not null then (f.f).rpd end,
             public.google_ai_effective_limit(l.rpd, l.safety_margin)) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
    -- (A row that follows its provider: the group's limits as the provider stated them, where it did.)
    left join lateral (select case when l.provider_limits = 'follow'
                                   then public.google_ai_followed_limits(l, c.stated_limits) end as f) f on true
  )
  select x.family, x.family, concat_ws(',', q.labels, x.w), x.v
  from quota q cross join lateral (
    select 'eve_gateway_quota_used', 'window="minute",unit="requests"', q.minute_requests::numeric
    union all select 'eve_gateway_quota_used', 'window="minute",unit="tokens"', q.minute_tokens::numeric
    union all select 'eve_gateway_quota_used', 'window="day",unit="requests"', q.day_requests::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="requests"', q.rpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="minute",unit="tokens"', q.tpm::numeric
    union all select 'eve_gateway_quota_limit', 'window="day",unit="requests"', q.rpd::numeric) x(family, w, v)
  -- (A limit that is not set has no gauge.)
  where x.family = 'eve_gateway_quota_used' or x.v is not null
  union all
  select 'eve_gateway_provider_day_end_timestamp_seconds', 'eve_gateway_provider_day_end_timestamp_seconds',
         public.google_ai_metric_label('provider', v.name),
         extract(epoch from public.google_ai_midnight_after_in(p_at, v.day_zone))
  from public.google_ai_providers v
$$;

-- The other gauges at p_at: reservations in flight and the live rows (above the mark p_mark), the
-- Pacific day's end (when the callers' budgets reset; each provider's own is google_ai_metric_quota's),
-- the queue, cooldowns, models, keys, callers' budgets and the last housekeeping.
CREATE OR REPLACE FUNCTION public.google_ai_metric_gauges(p_at timestamp with time zone, p_mark bigint)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with live as (
    select a.status, a.model, a.quota_group from public.google_ai_attempts a where a.id > p_mark
  ), last_run as (
    select m.completed_at, m.status from public.google_ai_maintenance_log m
    where m.operation = 'housekeeping' and m.status <> 'skipped'
    order by m.started_at desc limit 1
  ), gauges (family, labels, value) as (
    select 'eve_gateway_attempts_in_flight', concat_ws(',', public.google_ai_metric_label('model', a.model),
             public.google_ai_metric_label('quota_group', a.quota_group)), count(*)::numeric
    from live a where a.status = 'reserved' group by a.model, a.quota_group
    union all
    select 'eve_gateway_metrics_live_rows', '', count(*)::numeric from live
    union all
    select 'eve_gateway_pacific_day_end_timestamp_seconds', '',
           extract(epoch from public.google_ai_pacific_midnight_after(p_at))
    union all
    select 'eve_gateway_queue_depth', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)), count(*)::numeric
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_queue_oldest_wait_seconds', concat_ws(',', public.google_ai_metric_label('model', q.model),
             public.google_ai_metric_label('priority_class', q.priority_class)),
           round(extract(epoch from (p_at - min(q.enqueued_at))), 3)
    from public.google_ai_queue q where q.lease_until > p_at group by q.model, q.priority_class
    union all
    select 'eve_gateway_cooldown_seconds_left', concat_ws(',', public.google_ai_metric_label('model', cd.model),
             public.google_ai_metric_label('quota_group', cd.quota_group),
             public.google_ai_metric_label('provider',
               (select l.provider from public.google_ai_model_limits l where l.model = cd.model)),
             public.google_ai_metric_label('cause', coalesce(cd.cause, 'unknown'))),
           round(extract(epoch from (cd.cooldown_until - p_at)), 3)
    from public.google_ai_cooldowns cd where cd.cooldown_until > p_at
    union all
    select 'eve_gateway_model_withdrawn', public.google_ai_metric_label('model', l.model),
           case when l.withdrawn_at is not null then 1 else 0 end
    from public.google_ai_model_limits l where l.is_active
    union all
    select 'eve_gateway_model_shutdown_timestamp_seconds',
           concat_ws(',', public.google_ai_metric_label('model', l.model),
             public.google_ai_metric_label('successor', l.successor)),
           extract(epoch from l.shutdown_date::timestamp at time zone 'UTC')
    from public.google_ai_model_limits l where l.is_active and l.shutdown_date is not null

    union all
    select 'eve_gateway_keys', concat_ws(',', public.google_ai_metric_label('provider', k.serves_provider),
             public.google_ai_metric_label('quota_group', public.google_ai_quota_group(k.project_id, k.id)),
             public.google_ai_metric_label('health', coalesce(h.status, 'unchecked')),
             public.google_ai_metric_label('active', k.is_active::text)), count(*)::numeric
    from public.google_ai_api_keys k left join public.google_ai_key_health h on h.api_key_id = k.id
    group by 2
    union all
    select 'eve_gateway_caller_budget_remaining', concat_ws(',', public.google_ai_metric_label('caller', b.caller),
             public.google_ai_metric_label('unit', x.unit)), x.left_today
    from (select 'client:' || c.name as caller, public.google_ai_budget_of(c) as budget
          from public.google_ai_clients c where c.revoked_at is null
          union all
          select s.caller, public.google_ai_budget_of(s) from public.google_ai_caller_budgets s) b
    cross join lateral public.google_ai_budget_left(b.budget, public.google_ai_pacific_day(p_at)) l
    cross join lateral (values ('requests', l.requests::numeric), ('tokens', l.tokens::numeric)) x(unit, left_today)
    where x.left_today is not null
    union all
    select 'eve_gateway_housekeeping_last_run_timestamp_seconds', '', extract(epoch from r.completed_at)
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_run_failed', '', case when r.status = 'failed' then 1 else 0 end
    from last_run r
    union all
    select 'eve_gateway_housekeeping_last_success_timestamp_seconds', '', extract(epoch from m.completed_at)
    from (select m.completed_at from public.google_ai_maintenance_log m
          where m.operation = 'housekeeping' and m.status = 'succeeded' order by m.started_at desc limit 1) m
  )
  select g.family, g.family, g.labels, g.value from gauges g
$$;

-- The limits providers state (google_ai_stated_limits, as applied) per quota group, model and limit, with the
-- row's mode; and 1 where the row disagrees with one (above, below, ceiling).
CREATE OR REPLACE FUNCTION public.google_ai_metric_stated()
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  select x.family, x.family, concat_ws(',', public.google_ai_metric_label('model', d.model),
           public.google_ai_metric_label('quota_group', d.quota_group),
           public.google_ai_metric_label('limit', d.limit_name), x.label), x.value
  from public.google_ai_stated_limits() d
  cross join lateral (values
    ('eve_gateway_provider_limit', public.google_ai_metric_label('mode', d.provider_limits),
       d.provider_limit::numeric),
    ('eve_gateway_provider_limit_disagreement', public.google_ai_metric_label('disagreement', d.disagreement),
       case when d.disagreement is not null then 1 end)) x(family, label, value)
  where x.value is not null
$$;

-- What the metrics route calls, once per scrape: the fold (skipped when another one is running), then
-- every sample, each as the text format names it (maintenance/metrics-text.ts writes the text, with
-- each family's HELP and TYPE). One statement, so one snapshot: a fold or a housekeeping run that
-- commits meanwhile is seen entirely or not at all.
CREATE OR REPLACE FUNCTION public.google_ai_metrics() RETURNS TABLE(family text, sample text, labels text,
    value numeric)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_at timestamptz := pg_catalog.now();
begin
  perform public.google_ai_metrics_fold(null, false);
  -- (PL/pgSQL, not SQL: a SQL function with SET clauses is planned again on every call, about half a
  -- scrape's CPU; this keeps its plan for the connection.)
  -- (A sample without a value has none to say: an owner's older log row may lack its times.)
  return query
    with fold as (select (select f.folded_through from public.google_ai_metric_fold f where f.id) as mark)
    select s.* from (
      select c.* from fold, public.google_ai_metric_counts(v_at, fold.mark) c
      union all
      select q.* from public.google_ai_metric_quota(v_at) q
      union all
      select g.* from fold, public.google_ai_metric_gauges(v_at, fold.mark) g
      union all -- (the pg_cron jobs: 1 where one is missing)
      select 'eve_gateway_cron_job_missing', 'eve_gateway_cron_job_missing',
             public.google_ai_metric_label('job', j.job), case when j.present then 0 else 1 end
      from public.google_ai_cron_jobs() j
      union all
      select r.* from public.google_ai_metric_response_cache() r
      union all
      select d.* from public.google_ai_metric_stated() d
    ) s
    where s.value is not null;
end
$$;

COMMENT ON FUNCTION public.google_ai_metrics() IS
    'One scrape''s samples (family, sample name, labels, value) of the gateway''s counters, histograms and gauges, '
    'for Prometheus'' text format (version 0.0.4): one call per scrape.';
-- ================================================================================================
-- supabase/schemas/92_housekeeping.sql
-- ================================================================================================

-- Housekeeping: the hourly run and its steps (abandoned reservations, old attempts, responses,
-- counters, cooldowns, tokens, pg_cron history), written to the maintenance log, and the call to
-- the maintenance Edge Function (scheduled by the migration that holds the pg_cron jobs).
set check_function_bodies = off;

-- One provider's active keys, with their quota group: those the maintenance function checks against
-- that provider's model list, and those llm-invoke's exact count uses (a provider that offers one).
-- No provider named, no keys. A key is only ever sent to its own provider.
CREATE OR REPLACE FUNCTION public.google_ai_active_keys(p_provider text DEFAULT NULL::text) RETURNS TABLE(id text,
    key_alias text, env_var_name text, quota_group text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select k.id::text, k.key_alias, k.env_var_name, public.google_ai_quota_group(k.project_id, k.id)
  from public.google_ai_api_keys k
  where k.is_active and k.serves_provider = p_provider
  order by k.priority nulls last, k.key_alias
$$;

-- Deletes rows of p_table matching p_condition (on alias s; $1 is p_cutoff) in batches of
-- p_batch, taking each batch with FOR UPDATE SKIP LOCKED so rows other transactions hold are left
-- alone. Stops after p_max_batches or at p_deadline; 'more' says rows may remain for the next run (its
-- last batch was full, or it took none).
-- Internal: the condition is SQL text, so only the owner may call it.
CREATE OR REPLACE FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text,
    p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone,
    p_order text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_sql text;
  v_n bigint := p_batch;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  v_sql := format(
    'delete from %s t where t.%I in (select s.%I from %s s where %s %s limit %s for update skip locked)',
    p_table, p_key, p_key, p_table, p_condition,
    coalesce('order by ' || p_order, ''), p_batch);
  while v_batches < p_max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    execute v_sql using p_cutoff;
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_batch;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_n >= p_batch);
end
$$;

-- What pg_cron, the maintenance function and operators call: the database clock, always.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping() RETURNS jsonb
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$ select public.google_ai_housekeeping_at(null) $$;

COMMENT ON FUNCTION public.google_ai_housekeeping() IS
    'Gateway housekeeping (retention, stale reservations, expired cooldowns and tokens, cron history, dead counters) '
    'in bounded batches; logs one google_ai_maintenance_log row per run and returns its summary.';

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_abandon(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_cutoff timestamptz := p_now - p_settings.stale_reservation_after;
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_done timestamptz;
  v_from timestamptz;
  v_last timestamptz;
  v_start timestamptz;
  v_n bigint := p_settings.batch_size;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  -- Where the last complete pass stopped (its cutoff), less an hour for the rows of transactions
  -- that were open then; never later than a day before this cutoff (a clock set back, a log row of
  -- an injected time). No complete pass logged: from the beginning.
  select (l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'older_than')::timestamptz into v_done
  from public.google_ai_maintenance_log l
  where l.operation = 'housekeeping'
    and l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'status' = 'succeeded'
    and l.details -> 'steps' -> 'abandon_stale_reservations' ->> 'more' = 'false'
  order by l.id desc
  limit 1;
  v_from := least(coalesce(v_done, '-infinity') - interval '1 hour', v_cutoff - interval '1 day');
  v_start := v_from;

  -- (As google_ai_delete_batched: 'more' when the last batch was full, or none was taken.)
  while v_batches < p_settings.max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    with picked as (
      select s.id from public.google_ai_attempts s
      where s.created_at >= v_from and s.created_at < v_cutoff and s.status = 'reserved'
        and coalesce(s.minute_bucket, s.created_at) < v_minute
      order by s.created_at
      limit p_settings.batch_size
      for update skip locked),
    closed as (
      update public.google_ai_attempts a set
        status = 'abandoned',
        finished_at = p_now,
        error_message = coalesce(a.error_message,
          'abandoned by housekeeping: no outcome within ' || p_settings.stale_reservation_after::text)
      where a.id in (select p.id from picked p) and a.status = 'reserved'
      returning a.created_at)
    select count(*), max(c.created_at) into v_n, v_last from closed c;
    -- The next batch starts where this one ended, not at the rows it just closed.
    v_from := coalesce(v_last, v_from);
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('abandoned', v_total, 'batches', v_batches, 'more', v_n >= p_settings.batch_size,
    'older_than', v_cutoff, 'from', v_start);
end
$$;

-- One step of a housekeeping run, as google_ai_housekeeping_steps lists it and google_ai_housekeeping_step
-- runs it: its name (its key in the run's log), the table it clears (rel), and either a function of its own
-- (fn: google_ai_housekeeping_<fn>, for abandon, attempts and counters) or a batched delete
-- (google_ai_delete_batched) of rel's rows that match condition ($1: cutoff) by key, in sort's order.
DO $type$
BEGIN
  IF pg_catalog.to_regtype('public.google_ai_housekeeping_task') IS NULL THEN
    CREATE TYPE public.google_ai_housekeeping_task AS (
    name text,
    rel text,
    fn text,
    key text,
    condition text,
    cutoff timestamp with time zone,
    sort text
);
  END IF;
END
$type$;

COMMENT ON TYPE public.google_ai_housekeeping_task IS
    'One step of a housekeeping run (google_ai_housekeeping_steps): its name, its table, and its own function or '
    'the batched delete''s key, condition, cutoff and order.';

-- Housekeeping's steps (google_ai_housekeeping_task), in the order a run takes them
-- (google_ai_housekeeping_at). The big deletes first. Cooldowns and responses near the end: a live call
-- may upsert a row these steps are deleting, and it waits until the run commits. dead_counters last: it
-- share-locks the keys table, and that lock should live only milliseconds.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_steps(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings) RETURNS SETOF public.google_ai_housekeeping_task
    LANGUAGE sql STABLE
    AS $_$
  values
    ('abandon_stale_reservations', 'public.google_ai_attempts', 'abandon', null, null, null::timestamptz, null),
    ('attempts_retention', 'public.google_ai_attempts', 'attempts', null, null, null, null),
    -- Kaggle tokens expired or revoked more than token_grace ago. The grace (>= 1 hour) outlives any
    -- open reservation of a token (tokens live <= 12 hours) and the mint rate limit's look-back.
    ('tokens', 'public.google_ai_tokens', null, 'id', 's.expires_at < $1 or s.revoked_at < $1',
     p_now operator(pg_catalog.-) p_settings.token_grace, null),
    -- Finished runs only: a run still going has no end_time.
    ('cron_history', 'cron.job_run_details', null, 'runid', 's.end_time < $1',
     p_now operator(pg_catalog.-) p_settings.cron_history_retention, null),
    -- An expired cooldown is inert (the reservation ignores it); google_ai_cooldown writes one anew.
    ('expired_cooldowns', 'public.google_ai_cooldowns', null, 'ctid', 's.cooldown_until < $1', p_now,
     's.cooldown_until'),
    -- A stored response is replayed for 24 hours (idempotent request ids); older rows are never read.
    ('replay_responses', 'public.google_ai_responses', null, 'ctid', 's.created_at < $1',
     p_now operator(pg_catalog.-) interval '24 hours', 's.created_at'),
    -- A Responses API conversation past its lifetime (stored_response_lifetime) is never read again.
    ('stored_responses', 'public.google_ai_stored_responses', null, 'id', 's.expires_at < $1', p_now,
     's.expires_at'),
    ('response_cache', 'public.google_ai_response_cache', 'response_cache', null, null, null, null),
    ('dead_counters', 'public.google_ai_usage_counters', 'counters', null, null, null, null)
$_$;

-- One housekeeping step (p_task, a row of google_ai_housekeeping_steps) in a subtransaction of its own:
-- what it did, with its status and time. A failed step is rolled back alone and answers its (sanitized)
-- error; a table this database does not have (pg_cron's, without pg_cron) skips its step.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_step(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone,
    p_task public.google_ai_housekeeping_task) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_result jsonb;
  v_message text;
  v_state text;
begin
  begin
    if p_task.fn is not null then
      execute format('select public.%I($1, $2, $3)', 'google_ai_housekeeping_' || p_task.fn)
        into v_result using p_now, p_settings, p_deadline;
    elsif pg_catalog.to_regclass(p_task.rel) is null then
      v_result := jsonb_build_object('skipped', 'no ' || p_task.rel || ' here: pg_cron is not installed');
    else
      v_result := public.google_ai_delete_batched(pg_catalog.to_regclass(p_task.rel), p_task.key, p_task.condition,
          p_task.cutoff, p_settings.batch_size, p_settings.max_batches, p_deadline, p_task.sort)
        || jsonb_build_object('older_than', p_task.cutoff);
    end if;
    v_result := v_result || jsonb_build_object('status',
      case when v_result ? 'skipped' then 'skipped' else 'succeeded' end);
  exception when others then
    get stacked diagnostics v_message = message_text, v_state = returned_sqlstate;
    v_result := jsonb_build_object('status', 'failed', 'sqlstate', v_state,
      'error', public.google_ai_sanitize_error(v_message));
  end;
  return v_result || jsonb_build_object(
    'ms', round(extract(epoch from (pg_catalog.clock_timestamp() - v_started)) * 1000, 1));
end
$_$;

-- Housekeeping with an injectable clock (p_now null: the database clock). Tests use it to place
-- the run in a given minute and Pacific day; everyone else calls google_ai_housekeeping(). The steps
-- (google_ai_housekeeping_steps) run one by one (google_ai_housekeeping_step): a failed step is logged
-- and the run goes on. One log row per run, a skipped one too.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_at(p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_step public.google_ai_housekeeping_task;
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_now timestamptz := coalesce(p_now, v_started);
  v_settings public.google_ai_maintenance_settings;
  v_old_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_result jsonb;
  v_steps jsonb := '{}'::jsonb;
  v_failed text[] := '{}'::text[];
  v_tables text[] := '{}'::text[];
  v_deleted bigint := 0;
  v_more boolean := false;
  v_status text;
  v_completed timestamptz;
  v_log_id integer;
begin
  select * into v_settings from public.google_ai_maintenance_settings s where s.id;
  if not found then
    -- The row was deleted: put the defaults back (they live in the column defaults only).
    insert into public.google_ai_maintenance_settings as s (id) values (true)
    on conflict (id) do update set id = s.id
    returning * into v_settings;
  end if;

  -- One run at a time (the hourly job and an on-demand run may meet); the other one is logged as skipped.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.google_ai_housekeeping')::bigint) then
    v_log_id := public.google_ai_log_maintenance_run('housekeeping', '{}', 0, v_started, pg_catalog.clock_timestamp(),
      'skipped', jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now));
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);
  for v_step in select * from public.google_ai_housekeeping_steps(v_now, v_settings) loop
    v_result := public.google_ai_housekeeping_step(v_now, v_settings, v_started + v_settings.time_budget, v_step);
    if v_result ->> 'status' = 'failed' then
      v_failed := v_failed || v_step.name;
    end if;
    v_deleted := v_deleted + coalesce((v_result ->> 'deleted')::bigint, 0);
    if coalesce((v_result ->> 'deleted')::bigint, 0) + coalesce((v_result ->> 'abandoned')::bigint, 0) > 0
       and not (pg_catalog.regexp_replace(v_step.rel, '^public\.', '') = any (v_tables)) then
      v_tables := v_tables || pg_catalog.regexp_replace(v_step.rel, '^public\.', '');
    end if;
    v_more := v_more or coalesce((v_result ->> 'more')::boolean, false);
    v_steps := v_steps || jsonb_build_object(v_step.name, v_result);
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_old_lock_timeout, true);

  v_status := case when cardinality(v_failed) > 0 then 'failed' else 'succeeded' end;
  v_completed := pg_catalog.clock_timestamp();
  v_result := jsonb_build_object('duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps, 'failed_steps', to_jsonb(v_failed), 'more_pending', v_more,
    -- Where a model row and its provider's stated limit disagree, in the run's log.
    'limit_disagreements', public.google_ai_limit_disagreements());
  v_log_id := public.google_ai_log_maintenance_run('housekeeping', v_tables, least(v_deleted, 2147483647)::integer,
    v_started, v_completed, v_status,
    v_result || jsonb_build_object('now', v_now, 'settings', to_jsonb(v_settings) - 'id' - 'updated_at'));

  if v_status = 'failed' then
    raise warning 'google_ai_housekeeping: step(s) % failed; see google_ai_maintenance_log id %',
      array_to_string(v_failed, ', '), v_log_id;
  end if;
  return v_result || jsonb_build_object('ok', v_status = 'succeeded', 'status', v_status, 'log_id', v_log_id,
    'deleted_count', v_deleted);
end
$_$;

-- Housekeeping's attempts step: old attempt rows deleted in batches; it folds first (waiting for a scrape's fold to
-- end) and holds the fold's row lock while it deletes, so the mark cannot move; a row above the mark is added to the
-- totals in the statement that deletes it.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_attempts(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_cutoff timestamptz := p_now - p_settings.attempts_retention;
  -- The fold goes by the database clock even when the run is given another (tests): whether a row
  -- can still change is a matter of real time.
  v_mark bigint := public.google_ai_metrics_fold(null, true);
  v_ids bigint[];
  v_above bigint[];
  v_n bigint := p_settings.batch_size;
  v_total bigint := 0;
  v_batches integer := 0;
begin
  while v_batches < p_settings.max_batches and pg_catalog.clock_timestamp() < p_deadline loop
    -- An open reservation is never deleted here (the abandon step closes it first).
    select coalesce(array_agg(s.id), '{}') into v_ids
    from (select s.id from public.google_ai_attempts s
          where s.created_at < v_cutoff and s.status <> 'reserved'
          order by s.created_at limit p_settings.batch_size for update skip locked) s;
    v_n := cardinality(v_ids);
    if v_n > 0 then
      -- Rows the fold has not reached (an open reservation held it back): into the totals as they go.
      select coalesce(array_agg(i), '{}') into v_above from unnest(v_ids) i where i > v_mark;
      if cardinality(v_above) > 0 then
        insert into public.google_ai_metric_totals as m (family, suffix, labels, le, value)
        select s.family, s.suffix, s.labels, s.le, s.value
        from public.google_ai_metric_samples(
          (select min(i) - 1 from unnest(v_above) i), (select max(i) from unnest(v_above) i), v_above) s
        on conflict (family, suffix, labels, le) do update set value = m.value + excluded.value;
      end if;
      delete from public.google_ai_attempts a where a.id = any (v_ids);
    end if;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_settings.batch_size;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_n >= p_settings.batch_size,
    'older_than', v_cutoff);
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_counters(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_minute timestamptz := public.google_ai_minute_window(p_now);
begin
  -- While this transaction lives, no key can be activated or added (SHARE blocks writes to the keys
  -- table, not reads): a reservation that sees a newly active group afterwards also sees its counter
  -- row gone and creates a fresh one, instead of booking on a row deleted under it. NOWAIT: an
  -- operator editing keys right now wins, and this step waits for the next run.
  begin
    lock table public.google_ai_api_keys in share mode nowait;
  exception when lock_not_available then
    return jsonb_build_object('skipped', 'google_ai_api_keys is being written; retried next run');
  end;
  return public.google_ai_delete_batched('public.google_ai_usage_counters'::regclass, 'id',
    -- A counter's day is over when its provider's day has turned (the day_zone of the provider of its
    -- model, or of its pool's models: limit_pool), not Pacific's; a name no row holds any more: Pacific's.
    format('s.quota_group is not null and s.minute_bucket < $1
            and s.day_bucket < public.google_ai_day_in(%L::timestamptz, coalesce(
              (select p.day_zone from public.google_ai_model_limits m
               join public.google_ai_providers p on p.name = m.provider
               where s.model in (m.model, m.limit_pool) limit 1), %L))
            and not exists (select 1 from public.google_ai_api_keys k
                            where k.is_active and public.google_ai_quota_group(k.project_id, k.id) = s.quota_group)',
           p_now, public.google_ai_pacific_zone()),
    v_minute, p_settings.batch_size, p_settings.max_batches, p_deadline);
end
$_$;

-- Calls the maintenance Edge Function through pg_net, with its URL and the service key read from
-- Vault at call time (so rotating the key is a Vault update, not a migration). Asynchronous: returns
-- pg_net's request id; the answer lands in net._http_response. By default the function skips its own
-- housekeeping (the hourly job does that) and checks keys and the model catalogue.
-- Raises a message that says what to set up when pg_net, Vault or a secret is missing. It reads the
-- service key: only its owner (the role pg_cron runs the job as) may call it (99_access.sql).
CREATE OR REPLACE FUNCTION public.google_ai_invoke_maintenance_function(
    p_body jsonb DEFAULT '{"housekeeping": false}'::jsonb, p_timeout_ms integer DEFAULT 120000) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  -- pg_net's function and Vault's view, found by name: where either extension is absent the function
  -- still compiles (and `supabase db lint` checks it) and says what to enable; their names reach the
  -- statements below only as these values, never as text a checker would resolve.
  v_post regprocedure := pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)');
  v_secrets regclass := pg_catalog.to_regclass('vault.decrypted_secrets');
  v_url text;
  v_key text;
  v_id bigint;
begin
  if v_post is null then
    raise exception
      'pg_net is not installed: enable it (Dashboard > Database > Extensions > pg_net, or: create extension pg_net;)'
      using errcode = '55000';
  end if;
  if v_secrets is null then
    raise exception 'Supabase Vault is not available in this database (vault.decrypted_secrets is missing)'
      using errcode = '55000';
  end if;
  execute pg_catalog.format('select s.decrypted_secret from %s s where s.name = $1 order by s.created_at desc limit 1',
                            v_secrets)
    into v_url using 'eve_gateway_functions_url';
  execute pg_catalog.format('select s.decrypted_secret from %s s where s.name = $1 order by s.created_at desc limit 1',
                            v_secrets)
    into v_key using 'eve_gateway_service_key';
  if coalesce(v_url, '') = '' then
    raise exception using errcode = '55000', message = 'Vault secret eve_gateway_functions_url is missing: select '
      || 'vault.create_secret(''https://<project-ref>.supabase.co/functions/v1'', ''eve_gateway_functions_url'');';
  end if;
  if coalesce(v_key, '') = '' then
    raise exception using errcode = '55000', message = 'Vault secret eve_gateway_service_key is missing: select '
      || 'vault.create_secret(''<service or secret key>'', ''eve_gateway_service_key'');';
  end if;
  execute pg_catalog.format('select %s(url => $1, body => $2, params => ''{}''::jsonb, headers => $3, '
                            || 'timeout_milliseconds => $4)', v_post::oid::regproc)
    into v_id
    using pg_catalog.rtrim(v_url, '/') || '/maintenance',
          coalesce(p_body, '{}'::jsonb) || '{"source": "pg_cron"}'::jsonb,
          pg_catalog.jsonb_build_object('content-type', 'application/json',
            'authorization', 'Bearer ' || v_key, 'apikey', v_key, 'x-caller', 'pg_cron'),
          p_timeout_ms;
  return v_id;
end
$_$;

-- One google_ai_maintenance_log row for a run (housekeeping's, or the maintenance function's); returns its id.
CREATE OR REPLACE FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[],
    p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone,
    p_status text, p_details jsonb) RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  insert into public.google_ai_maintenance_log
    (operation, tables_affected, deleted_count, started_at, completed_at, status, details)
  values (p_operation, p_tables_affected, p_deleted_count, p_started_at, p_completed_at, p_status, p_details)
  returning id
$$;
-- ================================================================================================
-- supabase/schemas/93_views.sql
-- ================================================================================================

-- The operator's views (security_invoker): usage now and by caller, cooldowns, clients, catalogue,
-- model life cycle, queue, shares and budgets today.
set check_function_bodies = off;

CREATE OR REPLACE VIEW public.google_ai_model_catalogue_status WITH (security_invoker='true') AS
 WITH ok_keys AS (
   SELECT h.api_key_id, h.checked_at, k.serves_provider AS provider
   FROM public.google_ai_key_health h
   JOIN public.google_ai_api_keys k ON k.id = h.api_key_id
   WHERE h.status = 'ok' AND k.is_active
 )
 SELECT l.model,
    l.is_active,
    (SELECT count(*) FROM ok_keys o WHERE o.provider = l.provider)::integer AS keys_checked,
    count(c.api_key_id)::integer AS keys_listing,
    coalesce(array_agg(DISTINCT c.quota_group) FILTER (WHERE c.api_key_id IS NOT NULL), '{}') AS quota_groups,
    max(c.input_token_limit) AS input_token_limit,
    max(c.output_token_limit) AS output_token_limit,
    max(c.refreshed_at) AS last_listed_at,
    (SELECT max(o.checked_at) FROM ok_keys o WHERE o.provider = l.provider) AS last_checked_at,
    CASE
      WHEN (SELECT count(*) FROM ok_keys o WHERE o.provider = l.provider) = 0 THEN 'unknown'
      WHEN count(c.api_key_id) > 0 THEN 'listed'
      ELSE 'unlisted'
    END AS catalogue_status
 FROM public.google_ai_model_limits l
 LEFT JOIN public.google_ai_model_catalogue c
   ON c.model = l.model AND c.api_key_id IN (SELECT o.api_key_id FROM ok_keys o WHERE o.provider = l.provider)
 GROUP BY l.model, l.is_active, l.provider;

COMMENT ON VIEW public.google_ai_model_catalogue_status IS
    'Each model row (google_ai_model_limits) against its provider''s catalogue: listed, unlisted (no checked '
    'active key of its provider lists it any more) or unknown (no successful check of its provider''s keys yet).';

CREATE OR REPLACE VIEW public.google_ai_caller_budgets_today WITH (security_invoker='true') AS
 SELECT b.caller,
    b.daily_max_requests,
    u.requests AS requests_today,
    b.daily_max_tokens,
    u.tokens AS tokens_today,
    public.google_ai_pacific_midnight_after(now()) AS resets_at,
    b.notes
 FROM public.google_ai_caller_budgets b
 CROSS JOIN LATERAL public.google_ai_budget_on(public.google_ai_budget_of(b), public.google_ai_pacific_day(now())) u;

COMMENT ON VIEW public.google_ai_caller_budgets_today IS
    'Service callers'' daily budgets and what they booked today (Pacific day), with the time they reset.';

CREATE OR REPLACE VIEW public.google_ai_clients_overview WITH (security_invoker='true') AS
 SELECT c.id,
    c.name,
    c.models,
    c.max_token_ttl,
    c.token_max_requests,
    c.token_max_tokens,
    c.daily_max_requests,
    c.daily_max_tokens,
    c.mint_per_hour,
    c.created_at,
    c.revoked_at,
    c.revoked_reason,
    (SELECT count(*) FROM public.google_ai_tokens t
     WHERE t.client_id = c.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS live_tokens,
    (SELECT max(t.created_at) FROM public.google_ai_tokens t WHERE t.client_id = c.id) AS last_token_at
 FROM public.google_ai_clients c;

CREATE OR REPLACE VIEW public.google_ai_cooldowns_active WITH (security_invoker='true') AS
 SELECT cd.quota_group,
    cd.model,
    cd.cooldown_until,
    ceil(extract(epoch FROM cd.cooldown_until - now()))::bigint AS seconds_left,
    cd.reason,
    cd.quota_id,
    cd.updated_at,
    coalesce((SELECT array_agg(k.key_alias ORDER BY k.key_alias) FROM public.google_ai_api_keys k
              WHERE k.is_active AND public.google_ai_quota_group(k.project_id, k.id) = cd.quota_group),
             '{}') AS key_aliases
 FROM public.google_ai_cooldowns cd
 WHERE cd.cooldown_until > now();

COMMENT ON VIEW public.google_ai_cooldowns_active IS
    'Cooldowns in force: the quota group and model rest until cooldown_until.';

CREATE OR REPLACE VIEW public.google_ai_model_lifecycle WITH (security_invoker='true') AS
 SELECT l.model,
    l.aliases,
    l.is_active,
    CASE
      WHEN l.withdrawn_at IS NOT NULL THEN 'withdrawn'
      WHEN NOT l.is_active THEN 'retired'
      WHEN l.shutdown_date <= CURRENT_DATE THEN 'shut_down'
      WHEN l.shutdown_date <= CURRENT_DATE + 14 THEN 'shutting_down'
      ELSE 'served'
    END AS state,
    l.withdrawn_at,
    l.withdrawn_message,
    l.successor,
    l.shutdown_date,
    l.shutdown_date - CURRENT_DATE AS days_to_shutdown,
    l.fallback_models,
    l.rpm,
    l.tpm,
    l.rpd,
    l.limits_source,
    l.supports_system_instruction,
    l.supports_json_mode,
    COALESCE(l.supports_tools, l.supports_json_mode) AS supports_tools,
    l.supports_images,
    s.catalogue_status,
    s.last_listed_at,
    l.google_successor,
    l.provider
 FROM public.google_ai_model_limits l
 LEFT JOIN public.google_ai_model_catalogue_status s ON s.model = l.model;

COMMENT ON VIEW public.google_ai_model_lifecycle IS
    'Each model row in its life cycle: withdrawn (when, its provider''s message and the replacement it names), '
    'shutdown date, successor, chain, limits and where they come from, and what its provider''s model list last '
    'said of it.';

CREATE OR REPLACE VIEW public.google_ai_queue_now WITH (security_invoker='true') AS
 SELECT q.model,
    q.priority_class,
    min(q.class_rank) AS class_rank,
    count(*)::integer AS waiting,
    count(DISTINCT q.caller)::integer AS callers,
    min(q.enqueued_at) AS oldest_since,
    max(q.expected_at) AS last_turn_at
 FROM public.google_ai_queue q
 WHERE q.lease_until >= now()
 GROUP BY q.model, q.priority_class;

COMMENT ON VIEW public.google_ai_queue_now IS
    'Requests waiting now, per model and class: how many, from '
    'how many callers, since when, and when the last turn comes.';

CREATE OR REPLACE VIEW public.google_ai_shares_today WITH (security_invoker='true') AS
 WITH clock AS (
   SELECT now() AS at,
     public.google_ai_window_length(coalesce((SELECT st.minute_guard_ms FROM public.google_ai_admission_settings st
                                              WHERE st.id), 1000)) AS window_length
 ), groups AS (
   SELECT DISTINCT s_1.id AS share_id, public.google_ai_quota_group(k.project_id, k.id) AS quota_group
   FROM public.google_ai_quota_shares s_1
   JOIN public.google_ai_model_limits m_1 ON m_1.model = s_1.model
   JOIN public.google_ai_api_keys k
     ON k.is_active AND k.serves_provider = m_1.provider AND (k.models IS NULL OR s_1.model = ANY (k.models))
 ), kept AS (
   SELECT s_1.model, sum(coalesce(s_1.reserved_rpd, 0))::integer AS reserved_rpd
   FROM public.google_ai_quota_shares s_1
   GROUP BY s_1.model
 )
 SELECT s.model,
    coalesce(s.priority_class, s.caller) AS owner,
    CASE WHEN s.priority_class IS NOT NULL THEN 'class' ELSE 'caller' END AS owner_kind,
    g.quota_group,
    s.reserved_rpm,
    s.reserved_rpd,
    s.pace_burst,
    w.used_in_window,
    d.used_today,
    CASE WHEN s.reserved_rpm IS NOT NULL THEN greatest(0, s.reserved_rpm - w.used_in_window) END AS rpm_kept_now,
    CASE WHEN s.reserved_rpd IS NOT NULL THEN greatest(0, s.reserved_rpd - d.used_today) END AS rpd_kept_today,
    CASE
      WHEN s.pace_burst IS NOT NULL AND l.rpd IS NOT NULL THEN public.google_ai_pace_allowance(c.at, z.day,
        s.pace_burst, l.rpd - (kept.reserved_rpd - coalesce(s.reserved_rpd, 0)), z.zone)
    END AS pace_allows_today
 FROM public.google_ai_quota_shares s
 JOIN groups g ON g.share_id = s.id
 JOIN kept ON kept.model = s.model
 CROSS JOIN clock c
 CROSS JOIN LATERAL (SELECT y.zone, public.google_ai_day_in(c.at, y.zone) AS day
                     FROM (SELECT public.google_ai_day_zone(s.model) AS zone) y) z
 LEFT JOIN LATERAL (
   SELECT e.window_requests, e.day_bucket, e.day_used, e.day_next_used, e.day_prev_used, e.ring_low, e.ring
   FROM public.google_ai_usage_counters uc,
     LATERAL unnest(uc.share_use) e(share_id, window_requests, day_bucket, day_used, day_next_used,
       day_prev_used, ring_low, ring)
   WHERE uc.quota_group = g.quota_group AND uc.model = s.model AND e.share_id = s.id) u ON true
 LEFT JOIN LATERAL (SELECT public.google_ai_effective_limit(m.rpd, m.safety_margin) AS rpd
                    FROM public.google_ai_model_limits m WHERE m.model = s.model) l ON true
 CROSS JOIN LATERAL (SELECT r.sum_requests AS used_in_window
                     FROM public.google_ai_ring_at(c.at, c.window_length, u.ring_low, u.ring, u.window_requests,
                       NULL::bigint) r) w
 CROSS JOIN LATERAL (SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used,
                       u.day_prev_used, z.day))[1] AS used_today) d;

COMMENT ON VIEW public.google_ai_shares_today IS
    'Reserved shares and pacing per quota group: the owner''s use in the window and today (the model''s provider''s '
    'day, in its row''s day_zone), what the share still keeps '
    'from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';

-- What the calls cost per provider's day (its row's day_zone: when it resets its limits and bills),
-- provider, model and caller: the calls that reached the provider, those of them whose cost is not
-- known (no price, no counts), and the spend of the others (cost_usd). A call of a model that has no
-- row any more has no provider, and its day is UTC's.
CREATE OR REPLACE VIEW public.google_ai_spend_daily WITH (security_invoker='true') AS
 SELECT (a.admitted_at AT TIME ZONE coalesce(p.day_zone, 'UTC'))::date AS day,
    l.provider,
    a.model,
    a.caller,
    count(*)::integer AS calls,
    count(*) FILTER (WHERE a.cost_usd IS NULL)::integer AS calls_unpriced,
    coalesce(sum(a.cost_usd), 0) AS spend_usd
 FROM public.google_ai_attempts a
 LEFT JOIN public.google_ai_model_limits l ON l.model = a.model
 LEFT JOIN public.google_ai_providers p ON p.name = l.provider
 WHERE a.admitted_at IS NOT NULL
   AND a.status = ANY ('{succeeded,cut,upstream_error,network_error,timeout}')
 GROUP BY 1, 2, 3, 4;

COMMENT ON VIEW public.google_ai_spend_daily IS
    'Spend in US dollars per provider''s day (in its row''s day_zone), provider, model and caller; '
    'calls_unpriced: calls whose cost is not known (not in spend_usd).';

-- The maintenance summary's spend: each provider's yesterday (its own day, google_ai_spend_daily) at
-- p_now (null: now), [{provider, day, spend_usd, calls, calls_unpriced}] in provider order.
CREATE OR REPLACE FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone DEFAULT NULL::timestamp with
    time zone) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object('provider', s.provider, 'day', s.day, 'spend_usd', s.spend,
           'calls', s.calls, 'calls_unpriced', s.unpriced) order by s.provider), '[]')
  from (select d.provider, d.day, sum(d.spend_usd) as spend, sum(d.calls)::integer as calls,
               sum(d.calls_unpriced)::integer as unpriced
        from public.google_ai_spend_daily d
        left join public.google_ai_providers p on p.name = d.provider
        where d.day = (coalesce(p_now, now()) at time zone coalesce(p.day_zone, 'UTC'))::date - 1
        group by 1, 2) s
$$;

CREATE OR REPLACE VIEW public.google_ai_usage_by_caller_24h WITH (security_invoker='true') AS
 SELECT a.caller,
    count(DISTINCT coalesce(a.request_id, a.reservation_id::text))::integer AS requests,
    count(*)::integer AS attempts,
    count(*) FILTER (WHERE a.status = 'succeeded')::integer AS succeeded,
    count(*) FILTER (WHERE a.status IN ('upstream_error', 'network_error', 'timeout'))::integer AS failed,
    count(*) FILTER (WHERE a.status = 'refused')::integer AS refused,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'rpm')::integer AS refused_rpm,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'tpm')::integer AS refused_tpm,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'rpd')::integer AS refused_rpd,
    count(*) FILTER (WHERE a.status = 'refused' AND a.limit_hit = 'cooldown')::integer AS refused_cooldown,
    count(*) FILTER (WHERE a.status = 'refused'
                       AND a.limit_hit NOT IN ('rpm', 'tpm', 'rpd', 'cooldown'))::integer AS refused_other,
    count(*) FILTER (WHERE a.status = 'reserved')::integer AS in_flight,
    count(*) FILTER (WHERE a.status = 'released')::integer AS released,
    count(*) FILTER (WHERE a.status = 'abandoned')::integer AS abandoned,
    coalesce(sum(a.input_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0) AS input_tokens,
    coalesce(sum(a.output_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0) AS output_tokens,
    coalesce(sum(a.input_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0)
      + coalesce(sum(a.output_tokens) FILTER (WHERE a.status IN ('succeeded', 'cut')), 0) AS total_tokens,
    array_agg(DISTINCT a.model ORDER BY a.model) AS models,
    min(a.created_at) AS first_at,
    max(a.created_at) AS last_at
 FROM public.google_ai_attempts a
 WHERE a.created_at > now() - interval '24 hours'
 GROUP BY a.caller;

COMMENT ON VIEW public.google_ai_usage_by_caller_24h IS
    'The last 24 hours per caller: logical requests, attempts by outcome, refusals by the limit that refused them, and '
    'the input/output tokens of successful calls.';

CREATE OR REPLACE VIEW public.google_ai_usage_now WITH (security_invoker='true') AS
 WITH clock AS (
   SELECT now() AS at
 ), serving AS (
   SELECT public.google_ai_quota_group(k.project_id, k.id) AS quota_group,
     l.model,
     count(*)::integer AS active_keys,
     array_agg(k.key_alias ORDER BY k.priority, k.key_alias) AS key_aliases
   FROM public.google_ai_api_keys k
   JOIN public.google_ai_model_limits l
     ON l.is_active AND k.serves_provider = l.provider AND (k.models IS NULL OR l.model = ANY (k.models))
   WHERE k.is_active
   GROUP BY 1, 2
 ), pairs AS (
   SELECT s.quota_group, s.model FROM serving s
   UNION
   SELECT c.quota_group, c.model FROM public.google_ai_usage_counters c WHERE c.quota_group IS NOT NULL
 ), usage AS (
   SELECT p.quota_group,
     p.model,
     clock.at,
     z.zone,
     z.day,
     coalesce(s.active_keys, 0) AS active_keys,
     coalesce(s.key_aliases, '{}') AS key_aliases,
     CASE WHEN c.day_bucket = z.day THEN c.rpd_used ELSE 0 END AS rpd_used,
     (e.l).rpm AS rpm_limit,
     (e.l).tpm AS tpm_limit,
     (e.l).rpd AS rpd_limit,
     cd.cooldown_until,
     cd.reason AS cooldown_reason
   FROM pairs p
   CROSS JOIN clock
   CROSS JOIN LATERAL (SELECT y.zone, public.google_ai_day_in(clock.at, y.zone) AS day
                       FROM (SELECT public.google_ai_day_zone(p.model) AS zone) y) z
   LEFT JOIN serving s ON s.quota_group = p.quota_group AND s.model = p.model
   LEFT JOIN public.google_ai_usage_counters c ON c.quota_group = p.quota_group AND c.model = p.model
   LEFT JOIN public.google_ai_model_limits l ON l.model = p.model
   CROSS JOIN LATERAL (SELECT public.google_ai_stored_group_limits(l, p.quota_group) AS l) e
   LEFT JOIN public.google_ai_cooldowns cd
     ON cd.quota_group = p.quota_group AND cd.model = p.model AND cd.cooldown_until > clock.at
 )
 SELECT u.quota_group,
    u.model,
    u.active_keys,
    u.key_aliases,
    u.at - interval '1 minute' AS minute_window,
    r.requests_used AS rpm_used,
    u.rpm_limit,
    r.requests_left AS rpm_left,
    r.tokens_used::integer AS tpm_used,
    u.tpm_limit,
    r.tokens_left::integer AS tpm_left,
    u.day AS provider_day,
    u.rpd_used,
    u.rpd_limit,
    r.day_left AS rpd_left,
    u.cooldown_until,
    u.cooldown_reason,
    CASE
      WHEN u.active_keys = 0 THEN 'no_active_key'
      WHEN u.cooldown_until IS NOT NULL THEN 'cooldown'
      WHEN r.day_left = 0 THEN 'rpd'
      WHEN r.requests_left = 0 THEN 'rpm'
      WHEN r.tokens_left = 0 THEN 'tpm'
      WHEN r.input_tokens_left = 0 OR r.output_tokens_left = 0 THEN 'tpm'
      ELSE 'open'
    END AS state,
    r.window_frees_at AS minute_resets_at,
    public.google_ai_day_start_in(u.day + 1, u.zone) AS day_resets_at,
    r.input_tokens_left AS itpm_left,
    r.output_tokens_left AS otpm_left
 FROM usage u
 CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left,
   tokens_left, day_left, window_frees_at, ready_at, input_tokens_left, output_tokens_left);

COMMENT ON VIEW public.google_ai_usage_now IS
    'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the '
    'sliding minute window (the last minute, minute_window on), the requests of this day of the provider''s '
    '(provider_day, in its row''s day_zone; day_resets_at its next midnight), against the limits after the safety '
    'margin (a row that follows its provider: those it stated for the group). The *_left figures are what the next '
    'request could book (0 while a cooldown rests the group; a share kept for another class or caller, '
    'google_ai_shares_today, may leave a given request less); minute_resets_at is when the window next frees room; '
    'itpm_left and otpm_left what the token buckets of a row that counts input and output apart hold (null: it does '
    'not); state is what would refuse one now (open, rpm, tpm, rpd, cooldown, no_active_key).';

CREATE OR REPLACE VIEW public.google_ai_wait_by_class_1h WITH (security_invoker='true') AS
 SELECT a.model,
    coalesce(a.priority_class, 'interactive') AS priority_class,
    count(*) FILTER (WHERE a.status NOT IN ('refused', 'abandoned'))::integer AS admitted,
    count(*) FILTER (WHERE a.status = 'refused')::integer AS refused,
    count(*) FILTER (WHERE a.status = 'abandoned')::integer AS abandoned,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY coalesce(a.wait_ms, 0))
      FILTER (WHERE a.status NOT IN ('refused', 'abandoned')) AS wait_ms_p50,
    percentile_disc(0.95) WITHIN GROUP (ORDER BY coalesce(a.wait_ms, 0))
      FILTER (WHERE a.status NOT IN ('refused', 'abandoned')) AS wait_ms_p95,
    max(coalesce(a.wait_ms, 0)) FILTER (WHERE a.status NOT IN ('refused', 'abandoned')) AS wait_ms_max
 FROM public.google_ai_attempts a
 WHERE a.created_at > now() - interval '1 hour' AND a.attempt = 1
 GROUP BY 1, 2;

COMMENT ON VIEW public.google_ai_wait_by_class_1h IS
    'The last hour per model and class: first attempts admitted, '
    'refused and abandoned in the queue, and how long the admitted waited.';

-- The model catalogue's status (the view of the same name), for the maintenance function's summary.
CREATE OR REPLACE FUNCTION public.google_ai_catalogue_status() RETURNS SETOF public.google_ai_model_catalogue_status
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select * from public.google_ai_model_catalogue_status order by model $$;
-- ================================================================================================
-- supabase/schemas/99_access.sql
-- ================================================================================================

-- Access, last: the schema's usage, RLS on every table, and for every table, view, sequence and
-- function its grants after a revoke of what Supabase's default privileges give (anon,
-- authenticated, service_role; eve_gateway too, so that applying it again keeps the order
-- of the grants; one loop revokes for all of them). service_role reads every table and view and gets
-- what else the operator's tools need; eve_gateway (the Edge Functions' role) only EXECUTE on the RPCs it calls.
set check_function_bodies = off;

COMMENT ON SCHEMA public IS 'standard public schema';

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, eve_gateway;

-- Nobody but their owner may use a function, table, view or sequence of the gateway unless a grant below
-- says so, and every table has RLS on. One loop for all of them (Supabase's default privileges give
-- every new object to anon, authenticated and service_role; PUBLIC has EXECUTE on a function by
-- default), so none is left out; the grants follow, each naming its object.
do $$
declare f
  regprocedure;
  r record;
begin
  for f in select p.oid::regprocedure from pg_catalog.pg_proc p
           where p.pronamespace = 'public'::regnamespace
  and p.proname like 'google\_ai\_%'
    loop execute pg_catalog.format(
      'revoke all on routine %s from public, anon, authenticated, service_role, eve_gateway',
  f); end loop;
  -- The gateway's relations only (token_usage is the owner's table the gateway adopted); an identity
  -- column's sequence keeps Supabase's defaults unless revoked by name below, as it always has.
  for r in select c.oid::regclass as rel, c.relkind from pg_catalog.pg_class c
           where c.relnamespace = 'public'::regnamespace
             and c.relkind in ('r', 'v', 'S')
             and (c.relname like 'google\_ai\_%' or c.relname like 'token\_usage%')
             and not exists (select from pg_catalog.pg_depend d where d.objid = c.oid and d.deptype = 'i')
    loop
      execute pg_catalog.format(
        'revoke all on %s %s from anon, authenticated, service_role, eve_gateway',
        case r.relkind when 'S' then 'sequence' else 'table' end, r.rel);
      if r.relkind = 'r' then
        execute pg_catalog.format('alter table %s enable row level security', r.rel);
      end if;
      -- The operator reads every table and view; what service_role may write is granted below.
      if r.relkind in ('r', 'v') then
        execute pg_catalog.format('grant select on table %s to service_role', r.rel);
      end if;
    end loop;
end
$$;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_providers TO service_role;

GRANT ALL ON FUNCTION public.google_ai_provider_list() TO service_role, eve_gateway;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_api_keys TO service_role;

GRANT ALL ON FUNCTION public.google_ai_provider(p_name text) TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_limits TO service_role;

GRANT ALL ON FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) TO service_role;

GRANT ALL ON SEQUENCE public.google_ai_model_limits_id_seq TO service_role;

GRANT ALL ON SEQUENCE public.google_ai_usage_counters_id_seq TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_attempts_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_attempts_id_seq TO service_role;

GRANT UPDATE ON TABLE public.google_ai_admission_settings TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pacific_zone() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_day_in(p_at timestamp with time zone, p_zone text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_day_start_in(p_day date, p_zone text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_day_zone(p_model text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_day_counts(p_bucket date, p_used integer, p_next integer, p_prev integer,
    p_day date) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_window_length(p_minute_guard_ms integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text,
    p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer,
    p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid,
    p_output_tokens integer[], p_requests integer) TO eve_gateway, service_role;

GRANT ALL ON PROCEDURE public.google_ai_reserve_call(p_models text[], p_estimated_tokens integer, p_caller text,
    p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer,
    p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid,
    p_output_tokens integer[], p_requests integer, o_reservation jsonb, o_quota jsonb, o_cause text)
    TO eve_gateway, service_role;

GRANT ALL ON FUNCTION public.google_ai_reserve_reads(p_reservation jsonb, p_model text, p_exclude_key_ids uuid[])
    TO eve_gateway, service_role;

GRANT ALL ON FUNCTION public.google_ai_reserve_many(p_calls jsonb) TO eve_gateway, service_role;

GRANT INSERT,UPDATE ON TABLE public.google_ai_priority_classes TO service_role;

GRANT UPDATE ON TABLE public.google_ai_queue_settings TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer,
    p_usable integer, p_zone text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint,
    ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_counted(p_ring public.google_ai_ring, p_window interval,
    p_at timestamp with time zone, p_requests integer, p_tokens integer, p_correction boolean) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_restarted(p_at timestamp with time zone, p_window interval,
    p_span integer, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_time(p_second bigint, p_us integer) TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_caller_budgets TO service_role;

-- (google_ai_caller_budgets_today reads a budget's day through these, as its invoker.)
GRANT ALL ON FUNCTION public.google_ai_budget_of(p_row anyelement) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_budget_on(p_budget public.google_ai_budget, p_day date) TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_quota_shares TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_quota_shares_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT USAGE ON SEQUENCE public.google_ai_quota_shares_id_seq TO service_role;

GRANT ALL ON FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone,
    p_reason text, p_quota_id text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome jsonb) TO eve_gateway, service_role;

GRANT ALL ON FUNCTION public.google_ai_finalize_calls(p_calls jsonb) TO eve_gateway, service_role;

GRANT ALL ON FUNCTION public.google_ai_stated_limits() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_limit_disagreements() TO service_role, eve_gateway;

GRANT ALL ON PROCEDURE public.google_ai_finalize_call(p_calls jsonb, o_answers jsonb) TO eve_gateway, service_role;

GRANT ALL ON FUNCTION public.google_ai_finalize_riding(p_calls jsonb) TO eve_gateway, service_role;

GRANT ALL ON PROCEDURE public.google_ai_reserve_calls(p_calls jsonb, p_finalizes jsonb, o_answers jsonb,
    o_finalized jsonb) TO eve_gateway, service_role;

GRANT ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) TO service_role, eve_gateway;

GRANT ALL ON TABLE public.token_usage TO service_role;

GRANT ALL ON SEQUENCE public.token_usage_id_seq TO service_role;

GRANT ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval,
    p_token_max_requests integer, p_token_max_tokens integer, p_daily_max_requests integer, p_daily_max_tokens integer,
    p_mint_per_hour integer, p_notes text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[],
    p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_revoke_client(p_name text, p_reason text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_revoke_token(p_token_id uuid) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_group_room(p_quota_group text, p_model text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_stored_group_limits(p_model public.google_ai_model_limits,
    p_quota_group text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text,
    p_exclude_key_ids uuid[]) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_step_causes(p_steps jsonb) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_list() TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_traits(p_model text) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_provider(p_model text) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer,
    p_reason text, p_message text, p_models jsonb, p_disable boolean) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_service_tier_list() TO service_role, eve_gateway;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_service_tiers TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_prices TO service_role;

GRANT ALL ON FUNCTION public.google_ai_active_keys(p_provider text) TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_housekeeping() TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cron_jobs() TO service_role, eve_gateway;

GRANT UPDATE ON TABLE public.google_ai_maintenance_settings TO service_role;

GRANT ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[],
    p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone,
    p_status text, p_details jsonb) TO service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_maintenance_log_id_seq TO service_role;

GRANT ALL ON FUNCTION public.google_ai_metrics() TO service_role, eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_catalogue_status() TO service_role, eve_gateway;

GRANT ALL ON TABLE public.google_ai_clients_overview TO service_role;

GRANT ALL ON TABLE public.google_ai_model_lifecycle TO service_role;

GRANT ALL ON FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone) TO service_role, eve_gateway;

-- The Responses API's stored responses (65_stored_responses.sql): read, kept and deleted only through
-- its functions, each for the caller's own.
GRANT DELETE ON TABLE public.google_ai_stored_responses TO service_role;

GRANT ALL ON FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text,
    p_response jsonb, p_conversation jsonb) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text)
    TO eve_gateway;

-- Embedding models (66_embedding_models.sql): rows the owner edits; llm-invoke reads one model's facts.
GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_embedding_models TO service_role;

GRANT ALL ON FUNCTION public.google_ai_embedding_traits(p_model text) TO eve_gateway, service_role;

-- The response cache (70_response_cache.sql): the operator's tables; the functions call its RPCs.
GRANT DELETE ON TABLE public.google_ai_response_cache TO service_role;

GRANT UPDATE ON TABLE public.google_ai_response_cache_settings TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_response_cache_defaults TO service_role;

GRANT INSERT,DELETE,UPDATE ON TABLE public.google_ai_response_cache_shared_scopes TO service_role;

GRANT ALL ON FUNCTION public.google_ai_cache_lookup(p_caller text, p_token_hash text, p_model text, p_key text,
    p_mode text, p_ttl_s integer, p_holder uuid, p_flight_until timestamp with time zone, p_request_id text)
    TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cache_store(p_entry bigint, p_holder uuid, p_answer jsonb,
    p_served_model text, p_provider text, p_finish text, p_ttl_s integer, p_reservation_id uuid) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cache_abandon(p_entry bigint, p_holder uuid) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cache_defaults_exist() TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cache_purge(p_scope text, p_model text) TO service_role;
