-- GENERATED from supabase/schemas by `npx tsx scripts/schemas-baseline.ts` when a release
-- squashed the migrations: never edit it. A change is an edit of supabase/schemas plus a later migration
-- holding only that change (supabase/migrations/README.md).
-- The baseline: every schema file in name order, made safe for a project that already has the
-- owner's production tables (20261122000000_adopt_production_tables.sql ran first) and safe to
-- apply twice.
-- sha256 of what follows: fad784d588ec7950c6ccf914978b685526bfc8be49610e93652863c4fea9e008
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
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_admission_settings (
    id boolean DEFAULT true NOT NULL,
    minute_guard_ms integer DEFAULT 1000 NOT NULL,
    day_guard_ms integer DEFAULT 5000 NOT NULL,
    recheck_ms integer DEFAULT 2000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_admission_settings_day_guard_ms_check
      CHECK (((day_guard_ms >= 0) AND (day_guard_ms <= 600000))),
    CONSTRAINT google_ai_admission_settings_minute_guard_ms_check
      CHECK (((minute_guard_ms >= 0) AND (minute_guard_ms <= 30000))),
    CONSTRAINT google_ai_admission_settings_one_row CHECK (id),
    CONSTRAINT google_ai_admission_settings_recheck_ms_check CHECK (((recheck_ms >= 100) AND (recheck_ms <= 60000)))
);

COMMENT ON TABLE public.google_ai_admission_settings IS
    'How far admission allows for Google''s clock: minute_guard_ms (>= the spread of network delays; the minute window '
    'is 60 s plus this), day_guard_ms (>= clock offset + delay at Pacific midnight), recheck_ms (how soon a TPM waiter '
    'asks again while tokens of its window may still be given back).';

SELECT pg_temp.add_constraint_once('public.google_ai_admission_settings', 'google_ai_admission_settings_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_admission_settings
    ADD CONSTRAINT google_ai_admission_settings_pkey PRIMARY KEY (id);$constraint$);

CREATE OR REPLACE FUNCTION public.google_ai_admission_guard() RETURNS public.google_ai_admission_settings
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
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
    id boolean DEFAULT true NOT NULL,
    grace_ms integer DEFAULT 3000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_queue_settings_grace_ms_check CHECK (((grace_ms >= 100) AND (grace_ms <= 60000))),
    CONSTRAINT google_ai_queue_settings_one_row CHECK (id)
);

COMMENT ON TABLE public.google_ai_queue_settings IS
    'The admission queue: grace_ms, how long a turn is kept for '
    'a waiter that has not called yet before its ticket lapses.';

SELECT pg_temp.add_constraint_once('public.google_ai_queue_settings', 'google_ai_queue_settings_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_queue_settings
    ADD CONSTRAINT google_ai_queue_settings_pkey PRIMARY KEY (id);$constraint$);

-- One row (id = true). Edit it to tune retention; the function falls back to these defaults if the
-- row is missing.
CREATE TABLE IF NOT EXISTS public.google_ai_maintenance_settings (
    id boolean DEFAULT true NOT NULL,
    attempts_retention interval DEFAULT '30 days'::interval NOT NULL,
    stale_reservation_after interval DEFAULT '00:15:00'::interval NOT NULL,
    token_grace interval DEFAULT '7 days'::interval NOT NULL,
    cron_history_retention interval DEFAULT '7 days'::interval NOT NULL,
    batch_size integer DEFAULT 5000 NOT NULL,
    max_batches integer DEFAULT 100 NOT NULL,
    time_budget interval DEFAULT '00:02:00'::interval NOT NULL,
    lock_timeout_ms integer DEFAULT 5000 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_maintenance_settings_attempts_retention_check CHECK ((attempts_retention >=
      '1 day'::interval)),
    CONSTRAINT google_ai_maintenance_settings_batch_size_check CHECK (((batch_size >= 1) AND (batch_size <= 100000))),
    CONSTRAINT google_ai_maintenance_settings_cron_history_check CHECK ((cron_history_retention >=
      '01:00:00'::interval)),
    CONSTRAINT google_ai_maintenance_settings_lock_timeout_check CHECK
      (((lock_timeout_ms >= 1) AND (lock_timeout_ms <= 600000))),
    CONSTRAINT google_ai_maintenance_settings_max_batches_check
      CHECK (((max_batches >= 1) AND (max_batches <= 100000))),
    CONSTRAINT google_ai_maintenance_settings_singleton CHECK (id),
    CONSTRAINT google_ai_maintenance_settings_stale_reservation_check CHECK ((stale_reservation_after >=
      '00:07:00'::interval)),
    CONSTRAINT google_ai_maintenance_settings_time_budget_check CHECK ((time_budget > '00:00:00'::interval)),
    CONSTRAINT google_ai_maintenance_settings_token_grace_check CHECK ((token_grace >= '01:00:00'::interval))
);

COMMENT ON TABLE public.google_ai_maintenance_settings IS
    'Housekeeping settings (one row). attempts_retention: how long attempt rows are kept; stale_reservation_after: '
    'when an open reservation counts as abandoned; token_grace: how long expired/revoked tokens are kept; '
    'cron_history_retention: cron.job_run_details kept; batch_size/max_batches/time_budget: work per run; '
    'lock_timeout_ms: longest wait for a table lock.';

SELECT pg_temp.add_constraint_once('public.google_ai_maintenance_settings', 'google_ai_maintenance_settings_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_maintenance_settings
    ADD CONSTRAINT google_ai_maintenance_settings_pkey PRIMARY KEY (id);$constraint$);
-- ================================================================================================
-- supabase/schemas/10_keys_and_limits.sql
-- ================================================================================================

-- Keys and limits: the providers' API keys (the secret's name only, never the key) and their quota
-- groups (google_ai_quota_group: keys of one Cloud project, or of one OpenAI organization, share a
-- group), a model's row (limits, capabilities, aliases, life cycle columns), the per-group counters and
-- the cooldowns; how a name becomes a model row and what limit applies to a group.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- The one reading of a provider's name: a key row's provider is the owner's own text, kept as written,
-- so case, spaces, '_' and '-' do not count, and Google also goes by its product's name (gemini,
-- Google AI); null (a row from before the column had values) is Google's, as every key was. Pure
-- normalisation, so immutable: a key row keeps its reading in the generated serves_provider, and the key
-- selection compares two columns (reading a table there cost a reservation about 20k instructions).
CREATE OR REPLACE FUNCTION public.google_ai_provider(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case pg_catalog.translate(pg_catalog.lower(coalesce(p_name, 'google')), ' _-', '')
           when 'googleai' then 'google' when 'gemini' then 'google'
           else pg_catalog.translate(pg_catalog.lower(coalesce(p_name, 'google')), ' _-', '') end
$$;

-- The providers, a row each (the rows migration seeds google and openai): a key row or a model row names
-- one (foreign keys). dialect: the wire format, a module of the functions' registry; they refuse a row
-- whose dialect they do not know, naming it, so a new dialect needs no change here. key_env_pattern: the
-- secrets its key rows may name (a regular expression; GATEWAY_<NAME>_KEY_ENV_PATTERN replaces it). A
-- dialect's own row may leave base_url and key_env_pattern null: its variable's, else its default.
CREATE TABLE IF NOT EXISTS public.google_ai_providers (
    name text NOT NULL PRIMARY KEY,
    dialect text NOT NULL,
    display_name text NOT NULL,
    base_url text,
    key_env_pattern text,
    CONSTRAINT google_ai_providers_name_check
        CHECK ((name ~ '^[a-z][a-z0-9]{0,39}$' AND name = public.google_ai_provider(name))),
    CONSTRAINT google_ai_providers_base_url_check
        CHECK ((base_url ~ '^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[^?#[:space:]]*)?$')),
    CONSTRAINT google_ai_providers_own_check
        CHECK ((name = dialect OR (base_url IS NOT NULL AND key_env_pattern IS NOT NULL)))
);

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
    CONSTRAINT google_ai_model_limits_booked_output_tokens_check CHECK ((booked_output_tokens >= 1)),
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
SELECT pg_temp.add_constraint_once('public.google_ai_model_limits', 'google_ai_model_limits_booked_output_tokens_check',
  $constraint$ALTER TABLE public.google_ai_model_limits ADD CONSTRAINT google_ai_model_limits_booked_output_tokens_check CHECK ((booked_output_tokens >= 1));$constraint$);
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

COMMENT ON COLUMN public.google_ai_model_limits.rpd IS 'Requests per Pacific day per quota group (null: no limit).';

COMMENT ON COLUMN public.google_ai_model_limits.aliases IS
    'Other names callers may use for this model (gemma-3-27b for gemma-3-27b-it).';

COMMENT ON COLUMN public.google_ai_model_limits.fallback_models IS
    'Models tried in this order when this one cannot serve a request within its wait (its day used up, cooling down, '
    'retired, no active key), for requests that name no fallback_models '
    'of their own. Names or aliases of other rows; at most 3.';

COMMENT ON COLUMN public.google_ai_model_limits.supports_tools IS
    'False: the model has no function calling (tools/toolConfig are '
    'refused with unsupported_feature). Null: as supports_json_mode.';

COMMENT ON COLUMN public.google_ai_model_limits.shutdown_date IS
    'The day Google announced it stops serving this model (its deprecations page); null: none announced.';

COMMENT ON COLUMN public.google_ai_model_limits.successor IS
    'The model Google names as this one''s replacement (a name or alias of another row, or a model no row serves yet).';

COMMENT ON COLUMN public.google_ai_model_limits.withdrawn_at IS
    'When Google answered 404 NOT_FOUND for this model: requests pass over it without calling Google until the '
    'maintenance function finds it in models.list again or the operator clears it. Null: served.';

COMMENT ON COLUMN public.google_ai_model_limits.withdrawn_message IS
    'Google''s (sanitized) message of the 404 that withdrew the model.';

COMMENT ON COLUMN public.google_ai_model_limits.google_successor IS
    'The model Google''s withdrawal message names as the replacement (".. use models/X"), read when the model is '
    'marked withdrawn: a suggestion for the operator. Requests go to it only through successor or fallback_models, '
    'which the operator sets (docs/models.md).';

COMMENT ON COLUMN public.google_ai_model_limits.limits_source IS
    'Where this row''s RPM/TPM/RPD come from (a page and the day it was read, or the project''s own quota page).';

COMMENT ON COLUMN public.google_ai_model_limits.supports_images IS
    'The model takes images as input. Null: not known (images are passed to Google, which decides).';

-- What one share's owner (google_ai_quota_shares) used of a quota group: the window as a ring of
-- seconds (google_ai_ring_at; window_requests its sum) and the Pacific day's counts of day_bucket
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
    share_use public.google_ai_share_use[]
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
ALTER TABLE public.google_ai_usage_counters SET (fillfactor='70', autovacuum_vacuum_scale_factor='0.01', toast_tuple_target='8160');

COMMENT ON COLUMN public.google_ai_usage_counters.rpd_used IS
    'Requests booked in day_bucket (the Pacific day), carried across minute rollovers.';

COMMENT ON COLUMN public.google_ai_usage_counters.quota_group IS
    'Google Cloud project (or key:<id>) the row counts for. Null on rows written before the gateway.';

COMMENT ON COLUMN public.google_ai_usage_counters.window_requests IS
    'Requests in the sliding window (the last 60 s + minute guard): the sum of the ring''s counts.';

COMMENT ON COLUMN public.google_ai_usage_counters.rpd_next_used IS
    'Requests admitted within the day guard before midnight, counted for the next Pacific day too.';

COMMENT ON COLUMN public.google_ai_usage_counters.rpd_prev_used IS
    'Requests of the previous Pacific day, plus those admitted within the day guard after midnight.';

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

COMMENT ON COLUMN public.google_ai_usage_counters.ring IS
    'The sliding window as a ring of seconds from ring_low on (google_ai_ring_at): per second its admissions, their '
    'tokens, the first and the last one''s microsecond; window_requests and window_tokens are their sums.';

-- Why Google answered 429, as llm-invoke reads it from the answer's structure (QUOTA_CAUSES and
-- GROUP_CAUSES in functions/_shared/vocabulary.ts; tests/db/vocabulary.test.ts keeps this function and
-- both checks equal to them). The database's one list: finalize and the metrics read it here.
-- p_rests_group: only the causes that rest every model of the quota group (the spend-based rate
-- limit, and money), not only the model asked. The rows' checks (google_ai_cooldowns.cause,
-- google_ai_attempts.quota_cause) write the list out: a check's expression is planned again for every
-- statement that writes its table (each of a reservation's one-row writes), and a function in it was
-- parsed (run, when IMMUTABLE) each time, about 100 us an attempt row. So a new cause is an edit of
-- QUOTA_CAUSES, three here, and a migration that drops and adds both checks (NOT VALID, then
-- VALIDATE: no long lock on the attempt log). STABLE, so it is inlined where it is read.
CREATE OR REPLACE FUNCTION public.google_ai_quota_causes(p_rests_group boolean DEFAULT false) RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case when p_rests_group then array['spend_cap', 'monthly_cap', 'billing_cap', 'credits_depleted']
              else array['minute', 'day', 'limit_zero', 'spend_cap', 'monthly_cap', 'billing_cap', 'credits_depleted',
                         'unknown'] end
$$;

-- A quota group rests for one model until a time, e.g. after Google's own 429 named a retry delay,
-- or until Pacific midnight after a per-day quota violation. (Its check's list is one array constant,
-- as google_ai_attempts' are: 15_request_log.sql says why.)
CREATE TABLE IF NOT EXISTS public.google_ai_cooldowns (
    quota_group text NOT NULL,
    model text NOT NULL,
    cooldown_until timestamp with time zone NOT NULL,
    reason text,
    quota_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    cause text,
    CONSTRAINT google_ai_cooldowns_cause_check CHECK ((cause = ANY
      ('{minute,day,limit_zero,spend_cap,monthly_cap,billing_cap,credits_depleted,unknown}'::text[])))
);

COMMENT ON COLUMN public.google_ai_cooldowns.cause IS
    'Why the group rests: a Google 429''s quota_cause (a spend cap or money - monthly_cap, billing_cap, '
    'credits_depleted - rests every model of the group: one row each).';

SELECT pg_temp.add_constraint_once('public.google_ai_api_keys', 'google_ai_api_keys_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_api_keys
    ADD CONSTRAINT google_ai_api_keys_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_cooldowns', 'google_ai_cooldowns_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_cooldowns
    ADD CONSTRAINT google_ai_cooldowns_pkey PRIMARY KEY (quota_group, model);$constraint$);

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

-- A model row by name or alias, active or not (an inactive row is a retired model that may still
-- name its fallbacks). An active row wins, then the row named exactly.
CREATE OR REPLACE FUNCTION public.google_ai_model_by_name(p_model text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits;
begin
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

-- The model row a caller's name resolves to (by name, else by alias).
CREATE OR REPLACE FUNCTION public.google_ai_resolve_model(p_model text) RETURNS public.google_ai_model_limits
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits;
begin
  select l.* into v_row from public.google_ai_model_limits l
  where l.is_active and (l.model = p_model or p_model = any (l.aliases))
  order by (l.model = p_model) desc, l.id
  limit 1;
  return v_row;
end
$$;
-- ================================================================================================
-- supabase/schemas/15_request_log.sql
-- ================================================================================================

-- The request log: one attempt row per reservation (google_ai_attempts: who, which model and key,
-- outcome, tokens, tiers and times, the holder's deadlines) and the idempotency records of a
-- (caller, request id) (google_ai_responses); a refusal's cause, and an error made fit for a row.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- One row per reservation decision: a refusal, or a reservation that later becomes the outcome of
-- one call to the model's provider (succeeded, upstream_error, network_error, timeout, cut, withdrawn;
-- google_error is upstream_error on rows written before it had that name) or is released.
-- Never holds a key, a token or a secret: keys are named by alias, callers by label.
-- (The checks' lists are array constants: PostgreSQL reads a table's checks again from their stored text
-- in every statement that writes a row, token by token; written as ARRAY[...] of one constant per value
-- they cost about 70k instructions more in each statement that writes an attempt row.)
CREATE TABLE IF NOT EXISTS public.google_ai_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
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
    CONSTRAINT google_ai_attempts_quota_cause_check CHECK ((quota_cause = ANY
      ('{minute,day,limit_zero,spend_cap,monthly_cap,billing_cap,credits_depleted,unknown}'::text[]))),
    CONSTRAINT google_ai_attempts_status_check CHECK ((status = ANY
      ('{reserved,refused,succeeded,upstream_error,network_error,timeout,cut,withdrawn,google_error,
        released,abandoned}'::text[])))
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

COMMENT ON COLUMN public.google_ai_attempts.thinking_tokens IS
    'Of output_tokens, the model''s thinking (Google''s thoughtsTokenCount, OpenAI''s reasoning_tokens); '
    'null: not said.';

COMMENT ON COLUMN public.google_ai_attempts.cost_usd IS
    'What the call cost in US dollars, set when it settles (google_ai_call_cost): the provider''s counts at its '
    'model''s price; null: not known (no price, or a call that may have been billed without counts).';

COMMENT ON COLUMN public.google_ai_attempts.booked_usd IS
    'The worst case the reservation booked in its client''s budget in money (google_ai_count_token_use), settled on '
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
    'The invocation whose statement made this row (its $holder id), when it named one.';

-- A caller that names its request (its own request_id) may repeat it safely: while the first call
-- is in flight the row is 'in_progress' with a lease (expires_at), and a repeat is refused; once it
-- succeeded the row is 'done' with the answer, replayed for 24 hours (housekeeping deletes older
-- rows). Holds model output, never a key or a token.
CREATE TABLE IF NOT EXISTS public.google_ai_responses (
    caller text NOT NULL,
    request_id text NOT NULL,
    status text DEFAULT 'done'::text NOT NULL,
    model text,
    response jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    holder uuid,
    CONSTRAINT google_ai_responses_status_check CHECK ((status = ANY (ARRAY['in_progress'::text, 'done'::text])))
);

COMMENT ON TABLE public.google_ai_responses IS
    'Idempotency records of requests that carried the caller''s own '
    'request_id: in flight (with a lease) or done (answer replayed for 24 h).';

COMMENT ON COLUMN public.google_ai_responses.holder IS
    'The invocation holding this in-flight claim (its $holder id); '
    'null until its first reservation, or for a claim made without one.';

SELECT pg_temp.add_constraint_once('public.google_ai_attempts', 'google_ai_attempts_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_attempts
    ADD CONSTRAINT google_ai_attempts_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_responses', 'google_ai_responses_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_responses
    ADD CONSTRAINT google_ai_responses_pkey PRIMARY KEY (caller, request_id);$constraint$);

CREATE INDEX IF NOT EXISTS google_ai_attempts_caller_idx ON public.google_ai_attempts USING btree (caller, created_at);

CREATE INDEX IF NOT EXISTS google_ai_attempts_client_idx ON public.google_ai_attempts USING btree (client_id,
    created_at) WHERE (client_id IS NOT NULL);

CREATE INDEX IF NOT EXISTS google_ai_attempts_created_at_idx ON public.google_ai_attempts USING btree (created_at);

-- The admissions of a quota group's window, for what the ring of counts cannot say: which class made
-- them (the queue's likely turn), which are still in flight (a TPM waiter's recheck).
CREATE INDEX IF NOT EXISTS google_ai_attempts_window_idx ON public.google_ai_attempts USING btree (quota_group, model,
    admitted_at) WHERE (admitted_at IS NOT NULL);

CREATE INDEX IF NOT EXISTS google_ai_attempts_request_id_idx ON
    public.google_ai_attempts USING btree (request_id) WHERE (request_id IS NOT NULL);

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_attempts_reservation_id_key
    ON public.google_ai_attempts USING btree (reservation_id);

CREATE INDEX IF NOT EXISTS google_ai_responses_created_at_idx ON public.google_ai_responses USING btree (created_at);

-- Why a refusal was made, from its limit when nothing finer is known (the booking names window_full,
-- share_kept or spread for rpm and tpm, queue_turn for a turn kept for earlier tickets): a full window
-- (rpm, tpm), the Pacific day (rpd), a paced share (pace), a provider's cooldown (upstream_cooldown;
-- google_cooldown on rows written before it had that name), a budget (token, client or caller); any
-- other limit is the request's own reason and is its own cause. The limits and causes
-- are listed once, in functions/_shared/vocabulary.ts (refusalCauseOf); tests/db/vocabulary.test.ts
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
  return (
    select left(
      regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        coalesce(p_message, ''),
        'AIza[0-9A-Za-z_-]{10,}', '[redacted]', 'g'),
        '\msk-[0-9A-Za-z_-]{8,}', '[redacted]', 'g'),
        '(sb_secret_|evegw_tok_|evegw_cs_)[0-9A-Za-z_-]+', '[redacted]', 'g'),
        'eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*', '[redacted]', 'g'),
        '([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@', '\1[redacted]@', 'gi'),
        '\m(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
        '[[:cntrl:]]+', ' ', 'g'),
      greatest(p_max_length, 1)));
end
$$;
-- ================================================================================================
-- supabase/schemas/20_windows.sql
-- ================================================================================================

-- Windows on Google's clock: the Pacific day, the sliding minute window (60 s plus a guard) as a ring
-- of seconds, and the spread's schedule.
-- Bodies are checked when called, not when created: a function may name one defined further down.
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
  return (
    select jsonb_build_object('ok', false, 'error', 'not_open',
      'status', (select a.status from public.google_ai_attempts a where a.reservation_id = p_reservation_id)));
end
$$;

-- Google's day: Pacific time, midnight to midnight (23, 24 or 25 hours). The zone is named here only.
CREATE OR REPLACE FUNCTION public.google_ai_pacific_zone() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select 'America/Los_Angeles'::text $$;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_at at time zone public.google_ai_pacific_zone())::pg_catalog.date $$;

-- The moment Pacific day p_day begins.
CREATE OR REPLACE FUNCTION public.google_ai_pacific_start(p_day date) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select (p_day::pg_catalog.timestamp at time zone public.google_ai_pacific_zone()) $$;

CREATE OR REPLACE FUNCTION public.google_ai_pacific_midnight_after(p_at timestamp with time zone)
    RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select public.google_ai_pacific_start(public.google_ai_pacific_day(p_at) operator(pg_catalog.+) 1) $$;

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

-- The day reopens after midnight plus the day guard (the first moments of a day still count for the
-- day before, on a clock that may lag ours).
CREATE OR REPLACE FUNCTION public.google_ai_reopens_at(p_limit text,
    p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
begin
  return (
    select case when p_limit = 'rpd'
                then public.google_ai_pacific_midnight_after(p_now)
                     + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond'
                else public.google_ai_minute_window(p_now) + interval '1 minute' end);
end
$$;

-- The spread of a model's window (p_burst: google_ai_model_limits.spread_burst): each quota group hands its
-- window out on a schedule (google_ai_usage_counters.spread_until, a GCRA "theoretical arrival
-- time"), one step per request: p_window / RPM, or the request's tokens' part of p_window / TPM when
-- that is longer (limit_name says which). Every booking moves it one step on (google_ai_spread_next);
-- while the spread holds (google_ai_spread_holds: requests wait), a request may be booked when the
-- schedule is at most tolerance = (spread_burst - 1) RPM steps ahead of now.
-- So under a flood at most spread_burst requests go at once, then one per step, and capacity comes
-- back to the window a request at a time instead of all at once a window later. Microseconds are
-- rounded up: the schedule never runs faster than the limit. All null: the model is not spread.
-- (PL/pgSQL: a SQL function that is not inlined is planned again on every call.)
CREATE OR REPLACE FUNCTION public.google_ai_spread_step(p_burst integer, p_window interval, p_rpm integer,
    p_tpm integer, p_tokens integer, OUT step interval, OUT tolerance interval, OUT limit_name text) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_window_us numeric := extract(epoch from p_window) * 1000000;
  v_request_us numeric;
  v_token_us numeric;
begin
  if p_burst is null or (p_rpm is null and p_tpm is null) then
    return;
  end if;
  v_request_us := case when p_rpm > 0 then ceil(v_window_us / p_rpm) end;
  v_token_us := case when p_tpm > 0 then ceil(v_window_us * greatest(p_tokens, 0) / p_tpm) end;
  limit_name := case when coalesce(v_token_us, 0) > coalesce(v_request_us, 0) then 'tpm' else 'rpm' end;
  step := greatest(v_request_us, v_token_us, 0) * interval '1 microsecond';
  tolerance := (p_burst - 1) * coalesce(v_request_us, greatest(v_token_us, 0)) * interval '1 microsecond';
end
$$;

-- The schedule after a booking at p_now: one step after the booking's place. A booking at most half a
-- step after its place (its waiter woke a little late) keeps the schedule's grid, so waking up late
-- does not cost the window capacity under sustained demand; one later than that (the schedule fell
-- behind: nobody asked) starts it again from now. Null step: not spread (null). STABLE, as timestamptz
-- minus an interval is: so it is inlined into the booking's statement, not called.
CREATE OR REPLACE FUNCTION public.google_ai_spread_next(p_spread_until timestamp with time zone,
    p_now timestamp with time zone, p_step interval) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select case
    when p_spread_until operator(pg_catalog.>=) (p_now operator(pg_catalog.-) (p_step operator(pg_catalog./) 2))
              then p_spread_until else p_now end operator(pg_catalog.+) p_step
$$;

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
-- This moves the ring to p_at (null: where it is), letting go what left the window, then counts
-- p_requests and p_tokens at p_admitted_at (default p_at) while its second is in the ring. Negative:
-- a correction, never below nothing; a request given back leaves the others of its second with the
-- last (which of them it was is not known). Tokens are kept when sum_tokens is not null.
CREATE OR REPLACE FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval,
    INOUT ring_low bigint, INOUT ring integer[], INOUT sum_requests integer, INOUT sum_tokens bigint,
    p_requests integer DEFAULT 0, p_tokens integer DEFAULT 0,
    p_admitted_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  -- (date_part: a double is exact to the microsecond here, and far cheaper than extract's numeric.)
  v_span integer := 1 + ceil(date_part('epoch', p_window))::integer;
  v_now bigint := floor(date_part('epoch', p_at))::bigint;
  v_second bigint;
  v_us integer;
  v_i integer;
  v_count integer;  -- the second's count and tokens after this
  v_tokens integer;
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
    return;
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
    return;
  end if;
  if p_admitted_at is null and p_requests > 0 and p_tokens >= 0 and v_now is not null then
    -- A booking now (nearly every call): the lines below in smaller expressions (they cost by size: 90k less).
    v_i := (v_now % v_span)::integer * 4;
    v_us := round((date_part('epoch', p_at) - v_now) * 1000000)::integer;
    ring[v_i + 1 : v_i + 4] := array[ring[v_i + 1] + p_requests,
      ring[v_i + 2] + case when sum_tokens is not null then p_tokens else 0 end,
      case when ring[v_i + 1] = 0 then v_us else least(ring[v_i + 3], v_us) end, greatest(ring[v_i + 4], v_us)];
    sum_requests := sum_requests + p_requests;
    sum_tokens := sum_tokens + p_tokens;
    return;
  end if;
  v_second := floor(date_part('epoch', coalesce(p_admitted_at, p_at)))::bigint;
  v_us := round((date_part('epoch', coalesce(p_admitted_at, p_at)) - v_second) * 1000000)::integer;
  if v_second < ring_low or v_second >= ring_low + v_span then
    return;
  end if;
  v_i := (v_second % v_span)::integer * 4;
  if p_admitted_at is not null and ring[v_i + 1] = 0 then
    return; -- (a correction for a second that left)
  end if;
  -- (A request given back from before the second's first left already, with it.)
  v_count := case when p_requests > 0 or v_us >= ring[v_i + 3] then greatest(0, ring[v_i + 1] + p_requests)
                  else ring[v_i + 1] end;
  v_tokens := case when sum_tokens is not null then greatest(0, ring[v_i + 2] + p_tokens) else ring[v_i + 2] end;
  sum_requests := sum_requests + v_count - ring[v_i + 1];
  sum_tokens := sum_tokens + v_tokens - ring[v_i + 2];
  -- The second written as one slice: element by element, PL/pgSQL unpacks the whole array and packs it
  -- again (counted: about 40k instructions more a booking). Its first and last times: a booking's when it
  -- is the second's first, else the earliest and latest; a request given back leaves the last.
  ring[v_i + 1 : v_i + 4] := case
    when v_count = 0 then '{0,0,0,0}'::integer[]
    when p_requests > 0 and v_count = p_requests then array[v_count, v_tokens, v_us, v_us]
    when p_requests > 0 then array[v_count, v_tokens, least(ring[v_i + 3], v_us), greatest(ring[v_i + 4], v_us)]
    when p_requests < 0 then array[v_count, v_tokens, ring[v_i + 4], ring[v_i + 4]]
    else array[v_count, v_tokens, ring[v_i + 3], ring[v_i + 4]] end;
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
declare
  v_span integer := cardinality(p_ring) / 4;
  v_expiries timestamptz[] := '{}';
  v_s bigint;  -- a second of the epoch
  v_i integer;
begin
  -- (Offsets from p_ring_low: a FOR variable is an integer, and epoch seconds pass 2^31 in 2038.)
  for k in 0 .. coalesce(v_span, 0) - 1 loop
    v_s := p_ring_low + k;
    v_i := (v_s % v_span)::integer * 4;
    continue when p_ring[v_i + 1] = 0;
    v_expiries := v_expiries || (public.google_ai_ring_time(v_s, p_ring[v_i + 3]) + p_window)
      || pg_catalog.array_fill(public.google_ai_ring_time(v_s, p_ring[v_i + 4]) + p_window, array[p_ring[v_i + 1] - 1]);
  end loop;
  return v_expiries;
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
-- ================================================================================================
-- supabase/schemas/22_priority_classes.sql
-- ================================================================================================

-- Priority classes: who goes first when requests wait (interactive before batch), and what part of a
-- model's window and day each class keeps for itself by default.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_priority_classes (
    name text NOT NULL,
    rank smallint NOT NULL,
    description text,
    kept_rpm_percent numeric(5,2),
    kept_rpd_percent numeric(5,2),
    kept_changed_at timestamp with time zone,
    CONSTRAINT google_ai_priority_classes_name_check CHECK ((name ~ '^[a-z][a-z0-9_]{0,31}$'::text)),
    CONSTRAINT google_ai_priority_classes_kept_rpm_check CHECK (((kept_rpm_percent
      > (0)::numeric) AND (kept_rpm_percent <= (100)::numeric))),
    CONSTRAINT google_ai_priority_classes_kept_rpd_check CHECK (((kept_rpd_percent
      > (0)::numeric) AND (kept_rpd_percent <= (100)::numeric)))
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

SELECT pg_temp.add_constraint_once('public.google_ai_priority_classes', 'google_ai_priority_classes_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_priority_classes
    ADD CONSTRAINT google_ai_priority_classes_pkey PRIMARY KEY (name);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_priority_classes', 'google_ai_priority_classes_rank_key',
  $constraint$ALTER TABLE ONLY public.google_ai_priority_classes
    ADD CONSTRAINT google_ai_priority_classes_rank_key UNIQUE (rank);$constraint$);
-- ================================================================================================
-- supabase/schemas/25_models.sql
-- ================================================================================================

-- Models: key health and the model catalogue the maintenance function keeps, the profile, traits,
-- features and list llm-invoke reads, aliases owned by one row, the life cycle review, service tiers.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- The last check of each key against its provider's model list (Google's models.list, OpenAI's GET
-- /v1/models): ok (the list answered), invalid (the provider refused the key; the key was taken out of
-- rotation), missing_secret (no Edge secret under env_var_name; reported only), error (anything else:
-- 429, 5xx, network; nothing concluded).
CREATE TABLE IF NOT EXISTS public.google_ai_key_health (
    api_key_id uuid NOT NULL,
    key_alias text NOT NULL,
    status text NOT NULL,
    checked_at timestamp with time zone DEFAULT now() NOT NULL,
    http_status integer,
    reason text,
    message text,
    models_listed integer,
    CONSTRAINT google_ai_key_health_status_check CHECK ((status = ANY (ARRAY['ok'::text, 'invalid'::text,
      'missing_secret'::text, 'error'::text])))
);

COMMENT ON TABLE public.google_ai_key_health IS
    'The last check of each key against its provider''s model list, by the maintenance function.';

CREATE TABLE IF NOT EXISTS public.google_ai_model_catalogue (
    api_key_id uuid NOT NULL,
    model text NOT NULL,
    key_alias text NOT NULL,
    quota_group text NOT NULL,
    display_name text,
    version text,
    input_token_limit integer,
    output_token_limit integer,
    supported_methods text[] DEFAULT '{}'::text[] NOT NULL,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    refreshed_at timestamp with time zone DEFAULT now() NOT NULL
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
    CONSTRAINT google_ai_service_tiers_tier_check CHECK ((service_tier = ANY (ARRAY['flex'::text, 'standard'::text,
      'priority'::text])))
);

COMMENT ON TABLE public.google_ai_service_tiers IS
    'The service tier llm-invoke asks Google for, per canonical model id and priority class; no row: standard.';

-- What a model's call costs, per service tier, in US dollars per million tokens: input, input the
-- provider read from its cache (null: not known, so a call with cached input costs null), output, and
-- thinking (null: billed as output, Google's and OpenAI's rule; output_tokens already holds it). A
-- 'free' row: a call that asks for no tier is on the provider's free tier (Google's free projects),
-- priced there (0); a call at a tier with no row, or a model with none, costs null (unknown), never 0.
-- Each row says where its figures came from and the day they were read (google_ai_call_cost).
CREATE TABLE IF NOT EXISTS public.google_ai_model_prices (
    model text NOT NULL,
    service_tier text NOT NULL,
    input_per_mtok numeric NOT NULL,
    cached_input_per_mtok numeric,
    output_per_mtok numeric NOT NULL,
    thinking_per_mtok numeric,
    source text NOT NULL,
    read_on date NOT NULL,
    CONSTRAINT google_ai_model_prices_tier_check CHECK ((service_tier = ANY
      ('{free,flex,standard,priority}'::text[]))),
    CONSTRAINT google_ai_model_prices_not_negative CHECK (((LEAST(input_per_mtok, cached_input_per_mtok,
      output_per_mtok, thinking_per_mtok) >= (0)::numeric)))
);

COMMENT ON TABLE public.google_ai_model_prices IS
    'US dollars per million tokens per model and service tier (free: a call asking no tier), with the source and '
    'the day it was read; no row: the call''s cost is unknown (null).';

SELECT pg_temp.add_constraint_once('public.google_ai_model_prices', 'google_ai_model_prices_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_model_prices
    ADD CONSTRAINT google_ai_model_prices_pkey PRIMARY KEY (model, service_tier);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_model_prices', 'google_ai_model_prices_model_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_model_prices
    ADD CONSTRAINT google_ai_model_prices_model_fkey FOREIGN KEY (model) REFERENCES public.google_ai_model_limits(model)
      ON UPDATE CASCADE ON DELETE CASCADE;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_key_health', 'google_ai_key_health_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_key_health
    ADD CONSTRAINT google_ai_key_health_pkey PRIMARY KEY (api_key_id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_model_catalogue', 'google_ai_model_catalogue_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_model_catalogue
    ADD CONSTRAINT google_ai_model_catalogue_pkey PRIMARY KEY (api_key_id, model);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_service_tiers', 'google_ai_service_tiers_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_service_tiers
    ADD CONSTRAINT google_ai_service_tiers_pkey PRIMARY KEY (model, priority_class);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_key_health', 'google_ai_key_health_api_key_id_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_key_health
    ADD CONSTRAINT google_ai_key_health_api_key_id_fkey FOREIGN KEY (api_key_id) REFERENCES
      public.google_ai_api_keys(id) ON DELETE CASCADE;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_model_catalogue', 'google_ai_model_catalogue_api_key_id_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_model_catalogue
    ADD CONSTRAINT google_ai_model_catalogue_api_key_id_fkey FOREIGN KEY (api_key_id) REFERENCES
      public.google_ai_api_keys(id) ON DELETE CASCADE;$constraint$);

CREATE INDEX IF NOT EXISTS google_ai_model_catalogue_model_idx ON public.google_ai_model_catalogue USING btree (model);

-- What one call cost in US dollars: the provider's counts at its model's price (google_ai_model_prices)
-- for the tier that served it (OpenAI's default is standard; no tier said: the one asked for, else
-- standard), or the free tier's where a call that asked for none has one. Input read from the cache
-- at its own price, thinking (part of the output) at its own or the output's. Null: no price row, a
-- cached count without a cached price, or no counts from a call the provider may have billed (a
-- refusal it answered, upstream_error, bills nothing: 0).
CREATE OR REPLACE FUNCTION public.google_ai_call_cost(p_model text, p_asked_tier text, p_served_tier text,
    p_outcome text, p_input integer, p_cached integer, p_output integer, p_thinking integer) RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select case when p_input is null and p_output is null then case when p_outcome = 'upstream_error' then 0 end
                else ((coalesce(p_input, 0) - coalesce(p_cached, 0)) * p.input_per_mtok
                      + case when coalesce(p_cached, 0) = 0 then 0 else p_cached * p.cached_input_per_mtok end
                      + (coalesce(p_output, 0) - coalesce(p_thinking, 0)) * p.output_per_mtok
                      + coalesce(p_thinking, 0) * coalesce(p.thinking_per_mtok, p.output_per_mtok)) * 0.000001 end
    from (select case lower(coalesce(p_served_tier, p_asked_tier)) when 'default' then 'standard'
                   else coalesce(lower(coalesce(p_served_tier, p_asked_tier)), 'standard') end as tier) t
    join public.google_ai_model_prices p on p.model = p_model
      and p.service_tier in (t.tier, case when t.tier = 'standard' and p_asked_tier is null then 'free' end)
    order by p.service_tier = 'free' desc
    limit 1);
end
$$;

-- The most one call may cost, as a budget in money books it: p_input tokens at the input price, p_output
-- of answer and the most the model may think beside it (max_thinking_tokens: Gemini's thinking is not
-- capped by maxOutputTokens) at the output's and the thinking's, at the dearest tier the call may be
-- asked at (no tier, or any google_ai_service_tiers row of the model). Null when one of them has no
-- price: a call that may cost what nobody knows has no worst case.
CREATE OR REPLACE FUNCTION public.google_ai_worst_call_cost(p_model text, p_input integer, p_output integer)
    RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
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
$$;

-- The maintenance function's key check (google_ai_record_key_check) writes the key's health row; an
-- 'ok' check ends the limit_zero rests of the key's quota group: the project may have been given
-- quota for the model since (the next request tries Google once more, and a new limit: 0 rests again).
CREATE OR REPLACE FUNCTION public.google_ai_key_check_clears_limit_zero() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if new.status = 'ok' then
    -- Locked in model order first, as finalize writes a spend cap's rows: no deadlock between them.
    delete from public.google_ai_cooldowns c
    where c.ctid in (
      select l.ctid from public.google_ai_cooldowns l
      join public.google_ai_api_keys k on k.id = new.api_key_id
      where l.quota_group = public.google_ai_quota_group(k.project_id, k.id)
        and l.cause = 'limit_zero'
      order by l.model
      for update of l);
  end if;
  return null;
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

  return jsonb_build_object(
    'checked', cardinality(v_checked) > 0,
    'restored', to_jsonb(v_restored),
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
-- display name), the largest over the keys that list the model.
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
  order by l.model
$$;

-- What llm-invoke needs to build a request's chain: the model a name resolves to (inactive rows
-- included, flagged), what it can do (function calling where the row does not say: as JSON mode;
-- images: null when not known), whether it is withdrawn and its successor (the countTokens route,
-- which books nothing, answers a withdrawn model without calling Google), and its row's chain
-- resolved to canonical names (names no row knows are left out).
CREATE OR REPLACE FUNCTION public.google_ai_model_traits(p_model text) RETURNS TABLE(model text, is_active boolean,
    supports_system_instruction boolean, supports_json_mode boolean, supports_tools boolean, supports_images boolean,
    fallback_models text[], withdrawn boolean, successor text)
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
         l.withdrawn_at is not null, l.successor
  from public.google_ai_model_by_name(p_model) l
  where l.id is not null
$$;

-- Who serves a model (its canonical name) and how its TPM counts: the provider whose client and keys
-- the gateway uses, and the output a request books where TPM counts answers too (OpenAI). Read beside
-- google_ai_model_traits in the same statement.
CREATE OR REPLACE FUNCTION public.google_ai_model_provider(p_model text) RETURNS TABLE(provider text,
    booked_output_tokens integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select l.provider, l.booked_output_tokens from public.google_ai_model_limits l where l.model = p_model
$$;

-- Retired in its provider's catalogue: active keys of the model's provider were checked (their model
-- lists answered) and none lists the model. The same reading as google_ai_model_catalogue_status's
-- 'unlisted': another provider's lists say nothing of the model, and no checked key says 'unknown'.
CREATE OR REPLACE FUNCTION public.google_ai_model_unlisted(p_model text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    with ok_keys as (
      select h.api_key_id from public.google_ai_key_health h
      join public.google_ai_api_keys k on k.id = h.api_key_id
      join public.google_ai_model_limits l on l.model = p_model and l.provider = k.serves_provider
      where h.status = 'ok' and k.is_active)
    select exists (select 1 from ok_keys)
       and not exists (select 1 from public.google_ai_model_catalogue c
                       where c.model = p_model and c.api_key_id in (select o.api_key_id from ok_keys o)));
end
$$;

-- Records one key's check in one transaction: its health row; for 'ok' the catalogue rows of the
-- models listed (upserted, first_seen_at kept) and the removal of those no longer listed; for
-- 'invalid' the removal of its catalogue rows and, when p_disable, the key taken out of rotation
-- (is_active = false, disabled_reason naming the provider that refused it, disabled_at; never
-- deleted). p_models: a JSON array of
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

CREATE OR REPLACE TRIGGER google_ai_key_check_clears_limit_zero AFTER INSERT OR UPDATE OF checked_at,
    status ON public.google_ai_key_health FOR EACH ROW EXECUTE FUNCTION public.google_ai_key_check_clears_limit_zero();

CREATE OR REPLACE TRIGGER google_ai_model_alias_moves AFTER INSERT OR UPDATE OF aliases ON public.google_ai_model_limits
    FOR EACH ROW EXECUTE FUNCTION public.google_ai_model_alias_moves();
-- ================================================================================================
-- supabase/schemas/30_shares_and_budgets.sql
-- ================================================================================================

-- Reserved shares and budgets: part of a model's RPM/RPD kept for a class or a caller, an owner's
-- day paced, the owners' use counted under the counter-row lock, and service callers' daily budgets;
-- and an admission settled when its attempt ends (capacity given back at once, the shares' too).
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_caller_budgets (
    caller text NOT NULL,
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
    'no limit), booked and settled as a client''s (spent_today_usd, spent_month_usd): its request names no largest '
    'answer, so the worst case books the model''s booked_output_tokens, else its catalogued output limit. Refusal '
    'caller_budget with cause spend_budget until the day or month ends.';

CREATE TABLE IF NOT EXISTS public.google_ai_quota_shares (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    model text NOT NULL,
    priority_class text,
    caller text,
    reserved_rpm integer,
    reserved_rpd integer,
    pace_burst integer,
    notes text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    derived_from_class boolean DEFAULT false NOT NULL,
    CONSTRAINT google_ai_quota_shares_caller_check CHECK ((caller ~ '^[A-Za-z0-9._:@-]{1,80}$'::text)),
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

SELECT pg_temp.add_constraint_once('public.google_ai_caller_budgets', 'google_ai_caller_budgets_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_caller_budgets
    ADD CONSTRAINT google_ai_caller_budgets_pkey PRIMARY KEY (caller);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_quota_shares', 'google_ai_quota_shares_owner_key',
  $constraint$ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_owner_key UNIQUE NULLS NOT DISTINCT (model, priority_class, caller);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_quota_shares', 'google_ai_quota_shares_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_quota_shares', 'google_ai_quota_shares_model_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_model_fkey FOREIGN KEY (model) REFERENCES public.google_ai_model_limits(model)
      ON UPDATE CASCADE ON DELETE CASCADE;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_quota_shares', 'google_ai_quota_shares_priority_class_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_quota_shares
    ADD CONSTRAINT google_ai_quota_shares_priority_class_fkey FOREIGN KEY (priority_class) REFERENCES
      public.google_ai_priority_classes(name) ON UPDATE CASCADE ON DELETE CASCADE;$constraint$);

-- A request counts against a budget once, on its first attempt; a retry spends tokens only.
CREATE OR REPLACE FUNCTION public.google_ai_request_counts(p_attempt integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when coalesce(p_attempt, 1) operator(pg_catalog.=) 1 then 1 else 0 end $$;

-- What is left of a budget (null: there is none), never below 0.
CREATE OR REPLACE FUNCTION public.google_ai_budget_left(p_max bigint, p_used bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ select case when p_max is not null
                  then greatest(0, p_max operator(pg_catalog.-) coalesce(p_used, 0)) end $$;

-- A daily budget's use (a service caller's, google_ai_caller_budgets, or a client's, google_ai_clients)
-- on Pacific day p_day with p_requests and p_tokens more: the row's counts are its day's (p_bucket),
-- none on a new day. over: the use goes past a maximum (null: none). Over, not "nothing left": a retry
-- or a request of no tokens adds nothing, and is still refused once the operator lowered the budget
-- below the day's use. The one place a daily budget rolls over (an inlined SQL table function).
CREATE OR REPLACE FUNCTION public.google_ai_daily_use(p_bucket date, p_requests_today integer,
    p_tokens_today bigint, p_day date, p_requests integer, p_tokens bigint, p_max_requests integer,
    p_max_tokens bigint) RETURNS TABLE(requests integer, tokens bigint, over boolean)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select u.requests, u.tokens,
         coalesce(u.requests operator(pg_catalog.>) p_max_requests, false)
         or coalesce(u.tokens operator(pg_catalog.>) p_max_tokens, false)
  from (select case when p_bucket operator(pg_catalog.=) p_day then p_requests_today else 0 end
                 operator(pg_catalog.+) p_requests as requests,
               case when p_bucket operator(pg_catalog.=) p_day then p_tokens_today else 0 end
                 operator(pg_catalog.+) p_tokens as tokens) u
$$;

-- A service caller's budgets (google_ai_caller_budgets) as a booking at p_at sees them, its row
-- locked until the booking counts the request in it (google_ai_count_caller_budget): day, the Pacific
-- day; requests and tokens, the day's use with this request (google_ai_daily_use); worst, what the call
-- may cost where the caller has a budget in money (google_ai_worst_call_cost; its request names no
-- largest answer: the model's booked_output_tokens, else its catalogued output limit). cause and
-- reopens_at: why the booking is refused (budget: a count over, until midnight; spend_budget: money,
-- until the day or month ends, or never while a price is not known), null when it is not. All null
-- when the caller has no budget, or is a client's (p_client_id: its token carries its budgets).
CREATE OR REPLACE FUNCTION public.google_ai_caller_budget_at(p_caller text, p_client_id uuid,
    p_at timestamp with time zone, p_tokens integer, p_attempt integer, p_model public.google_ai_model_limits,
    OUT day date, OUT requests integer, OUT tokens bigint, OUT worst numeric, OUT cause text,
    OUT reopens_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_budget public.google_ai_caller_budgets;
  v_over boolean;
  v_day date;
begin
  if p_client_id is not null then
    return;
  end if;
  -- (The row alone first: most callers have none, and the statement that reads a day's use costs more
  -- to start than this one; counted, 44k instructions less a reservation without a budget, 22k more
  -- with one.)
  select b.* into v_budget from public.google_ai_caller_budgets b where b.caller = p_caller for update;
  if not found then
    return;
  end if;
  select d.day, u.requests, u.tokens, u.over into day, requests, tokens, v_over
  from (select public.google_ai_pacific_day(p_at) as day) d
  cross join lateral public.google_ai_daily_use(v_budget.day_bucket, v_budget.requests_today, v_budget.tokens_today,
    d.day, public.google_ai_request_counts(p_attempt), p_tokens, v_budget.daily_max_requests,
    v_budget.daily_max_tokens) u;
  v_day := day;
  if v_over then
    select 'budget', public.google_ai_pacific_midnight_after(p_at) into cause, reopens_at;
  elsif num_nonnulls(v_budget.daily_max_usd, v_budget.monthly_max_usd) > 0 then
    worst := public.google_ai_worst_call_cost(p_model.model, p_tokens, coalesce(p_model.booked_output_tokens,
      (select max(c.output_token_limit) from public.google_ai_model_catalogue c where c.model = p_model.model)));
    if worst is null or worst + (case when v_budget.day_bucket = v_day then v_budget.spent_today_usd else 0 end)
                        > v_budget.daily_max_usd then
      select 'spend_budget', case when worst is not null then public.google_ai_pacific_midnight_after(p_at) end
        into cause, reopens_at;
    elsif worst + (case when v_budget.month_bucket = date_trunc('month', v_day)::date then v_budget.spent_month_usd
                        else 0 end) > v_budget.monthly_max_usd then
      select 'spend_budget', public.google_ai_pacific_start((date_trunc('month', v_day) + interval '1 month')::date)
        into cause, reopens_at;
    end if;
  end if;
end
$$;

-- A booked request counted in its caller's budgets: the day's use with it, as google_ai_caller_budget_at
-- read it under the lock it still holds, and its worst case (null: no budget in money) on the day's and
-- the month's spend, which finalize settles (google_ai_adjust_token_budget).
CREATE OR REPLACE FUNCTION public.google_ai_count_caller_budget(p_caller text, p_day date, p_requests integer,
    p_tokens bigint, p_worst numeric) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  update public.google_ai_caller_budgets b set day_bucket = p_day, requests_today = p_requests, tokens_today = p_tokens,
    spent_today_usd = case when b.day_bucket = p_day then b.spent_today_usd else 0 end + coalesce(p_worst, 0),
    month_bucket = date_trunc('month', p_day)::date,
    spent_month_usd = case when b.month_bucket = date_trunc('month', p_day)::date then b.spent_month_usd else 0 end
      + coalesce(p_worst, 0)
  where b.caller = p_caller;
end
$$;

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

-- What a paced owner may have used of Pacific day p_day at p_at: the burst, plus the part of the
-- usable requests that the elapsed part of the day (23, 24 or 25 hours) earns.
CREATE OR REPLACE FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer,
    p_usable integer) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select p_burst + floor(greatest(0, p_usable)::numeric
             * least(greatest(extract(epoch from p_at - d.s), 0), extract(epoch from d.e - d.s))
             / extract(epoch from d.e - d.s))::integer
    from (select public.google_ai_pacific_start(p_day) as s, public.google_ai_pacific_start(p_day + 1) as e) d);
end
$$;

-- The first moment of Pacific day p_day at which the allowance reaches p_used + 1 (to the
-- microsecond, the clock's resolution); null when it does not within that day. The allowance at
-- s + e is burst + floor(usable x e / L), so it reaches need = p_used + 1 - burst at
-- e = ceil(need x L / usable), which lies within the day (e < L) exactly when need < usable.
CREATE OR REPLACE FUNCTION public.google_ai_pace_opens_at(p_day date, p_used integer, p_burst integer,
    p_usable integer) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select case when n.need <= 0 then d.s
                -- The allowance reaches burst + usable only at the day's end, which is the next day.
                when p_usable <= 0 or n.need >= p_usable then null
                else d.s + ceil(n.need::numeric * (extract(epoch from d.e - d.s) * 1000000) / p_usable)
                           * interval '1 microsecond' end
    from (select public.google_ai_pacific_start(p_day) as s, public.google_ai_pacific_start(p_day + 1) as e) d,
         (select p_used + 1 - p_burst as need) n);
end
$$;

-- When the sliding window has room again for one more request of p_tokens, for a requester that
-- does not own the RPM shares it holds back: walking the window's seconds oldest first (a second's
-- first admission leaves on time, the others with its last: google_ai_ring_at), the first moment the
-- admissions left, plus what the other owners may still claim of their shares, leave a request over
-- (an owner's admission leaving gives its owner room, not the others). Null: never within the window
-- (the shares kept from this requester cover the limit, or the tokens the TPM).
CREATE OR REPLACE FUNCTION public.google_ai_window_reopens_for(p_quota_group text, p_model text,
    p_now timestamp with time zone, p_window interval, p_rpm integer, p_tpm integer, p_tokens integer, p_class text,
    p_caller text) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_usage_counters;
  v_ring record;
  v_share record;
  -- The others' RPM shares: what each keeps, what its owner used of the window, its ring (a row each).
  v_kept integer[] := '{}';
  v_used integer[] := '{}';
  v_rings integer[] := '{}';
  v_span integer;
  v_left_requests integer;
  v_left_tokens bigint;
  v_i integer;
  v_us integer;
  v_gone integer;
  v_held integer;
  v_s bigint;  -- a second of the epoch (the loop counts offsets: a FOR variable is an integer, 2^31 s is 2038)
begin
  select * into v_row from public.google_ai_usage_counters c where c.quota_group = p_quota_group and c.model = p_model;
  v_ring := public.google_ai_ring_at(p_now, p_window, v_row.ring_low, v_row.ring, v_row.window_requests,
    v_row.window_tokens);
  if v_ring.ring_low is null then
    return null;
  end if;
  v_span := cardinality(v_ring.ring) / 4;
  for v_share in
    select s.reserved_rpm, r.ring, r.sum_requests
    from public.google_ai_quota_shares s
    left join unnest(v_row.share_use) u on u.share_id = s.id
    cross join lateral public.google_ai_ring_at(p_now, p_window, u.ring_low, u.ring, u.window_requests, null) r
    where s.model = p_model and s.reserved_rpm is not null and p_rpm is not null
      and not (coalesce(s.priority_class = p_class, false) or coalesce(s.caller = p_caller, false))
  loop
    v_kept := v_kept || v_share.reserved_rpm;
    v_used := v_used || v_share.sum_requests;
    v_rings := v_rings || array[v_share.ring];
  end loop;

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
      if (p_rpm is null or v_left_requests - v_gone + 1 + v_held <= p_rpm)
         and (p_tpm is null or v_left_tokens - case when v_gone = v_ring.ring[v_i + 1] then v_ring.ring[v_i + 2]
                                                     else 0 end + p_tokens <= p_tpm) then
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

-- Brings the derived rows of p_model (null: every model) and p_class (null: every class) in step:
-- a derived row is updated, or removed when the class keeps nothing of the model any more, and a
-- missing one is inserted; a row the operator owns for the same model and class (derived_from_class
-- false) is left as it is, and none is derived beside it. A share's owner counts
-- (google_ai_usage_counters.share_use) stay with its row; a removed row's are no longer read.
CREATE OR REPLACE FUNCTION public.google_ai_derive_class_shares(p_model text, p_class text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  -- Tells the shares' trigger that these writes are the derivation's, not an operator's edit.
  perform pg_catalog.set_config('google_ai.deriving_shares', 'on', true);
  delete from public.google_ai_quota_shares s
  where s.derived_from_class
    and (p_model is null or s.model = p_model) and (p_class is null or s.priority_class = p_class)
    and not exists (select 1 from public.google_ai_derived_shares(s.model, s.priority_class));
  update public.google_ai_quota_shares s set reserved_rpm = d.reserved_rpm, reserved_rpd = d.reserved_rpd
  from public.google_ai_derived_shares(p_model, p_class) d
  where s.derived_from_class and s.model = d.model and s.priority_class = d.priority_class and s.caller is null
    and (s.reserved_rpm, s.reserved_rpd) is distinct from (d.reserved_rpm, d.reserved_rpd);
  insert into public.google_ai_quota_shares (model, priority_class,
    reserved_rpm, reserved_rpd, derived_from_class, notes)
  select d.model, d.priority_class, d.reserved_rpm, d.reserved_rpd, true,
         'Derived from the class''s kept percents (google_ai_priority_classes); an edit makes the row the operator''s.'
  from public.google_ai_derived_shares(p_model, p_class) d
  on conflict on constraint google_ai_quota_shares_owner_key do nothing;
  perform pg_catalog.set_config('google_ai.deriving_shares', '', true);
end
$$;

-- A model inserted, or its limits or safety margin changed: its derived rows follow.
CREATE OR REPLACE FUNCTION public.google_ai_model_derives_shares() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.google_ai_derive_class_shares(new.model, null);
  return null;
end
$$;

-- A class's kept percents set or cleared: when, for the seed (kept_changed_at), before the write.
CREATE OR REPLACE FUNCTION public.google_ai_class_kept_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if tg_op = 'INSERT' and (new.kept_rpm_percent is not null or new.kept_rpd_percent is not null)
     or tg_op = 'UPDATE' and (new.kept_rpm_percent, new.kept_rpd_percent)
                             is distinct from (old.kept_rpm_percent, old.kept_rpd_percent) then
    new.kept_changed_at := pg_catalog.now();
  end if;
  return new;
end
$$;

-- ... and every model's derived row of the class follows, after it.
CREATE OR REPLACE FUNCTION public.google_ai_class_derives_shares() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.google_ai_derive_class_shares(null, new.name);
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
    safety_margin ON public.google_ai_model_limits FOR EACH ROW EXECUTE FUNCTION
    public.google_ai_model_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_class_kept_changed BEFORE INSERT OR UPDATE OF kept_rpm_percent,
    kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION
    public.google_ai_class_kept_changed();

CREATE OR REPLACE TRIGGER google_ai_class_derives_shares AFTER INSERT OR UPDATE OF kept_rpm_percent,
    kept_rpd_percent ON public.google_ai_priority_classes FOR EACH ROW EXECUTE FUNCTION
    public.google_ai_class_derives_shares();

CREATE OR REPLACE TRIGGER google_ai_share_edited BEFORE INSERT OR UPDATE ON public.google_ai_quota_shares FOR EACH ROW
    WHEN (new.derived_from_class) EXECUTE FUNCTION public.google_ai_share_edited();

-- The shares' use (google_ai_usage_counters.share_use) with a request more or less counted for the
-- shares of p_owned: p_window_requests in their window (google_ai_ring_at: a booking at p_at, a
-- release in the second of p_admitted_at) and p_day_requests in their Pacific day p_day (and the
-- other day's within a guard of midnight: p_near_end, p_near_start). A booking (1, 1) moves each
-- owner's day on to p_day; a release (-1, or 0 for an admission the window does not look for, and -1)
-- corrects only a day still counted (the same day_bucket). p_live: the model's shares in id order,
-- whose elements the result keeps (a removed share's go); null: every element is kept.
CREATE OR REPLACE FUNCTION public.google_ai_share_use_counted(p_use public.google_ai_share_use[], p_live bigint[],
    p_owned bigint[], p_at timestamp with time zone, p_window interval, p_window_requests integer,
    p_day_requests integer, p_admitted_at timestamp with time zone, p_day date, p_near_end boolean,
    p_near_start boolean) RETURNS public.google_ai_share_use[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_use public.google_ai_share_use[] := '{}';
  v_ids bigint[] := p_live;
  v_id bigint;
  v_old public.google_ai_share_use;
  v_new public.google_ai_share_use;
  v_days integer[];
  v_ring record;
begin
  if v_ids is null then
    -- (Apart, so that the loop's expression stays a simple one, not a query.)
    v_ids := array(select u.share_id from unnest(p_use) u);
  end if;
  foreach v_id in array v_ids loop
    v_old := null;
    for i in 1 .. coalesce(cardinality(p_use), 0) loop
      if (p_use[i]).share_id = v_id then
        v_old := p_use[i];
        exit;
      end if;
    end loop;
    if not coalesce(v_id = any(p_owned), false) or (p_day_requests < 0 and v_old.share_id is null) then
      if v_old.share_id is not null then
        v_use := v_use || v_old;
      end if;
      continue;
    end if;
    v_ring := public.google_ai_ring_at(p_at, p_window, v_old.ring_low, v_old.ring, v_old.window_requests, null,
      p_window_requests, 0, p_admitted_at);
    v_new := row(v_id, v_ring.sum_requests, v_old.day_bucket, v_old.day_used, v_old.day_next_used,
      v_old.day_prev_used, v_ring.ring_low, v_ring.ring);
    if p_day_requests > 0 or v_old.day_bucket = p_day then
      v_days := public.google_ai_day_counts(v_old.day_bucket, v_old.day_used, v_old.day_next_used,
        v_old.day_prev_used, p_day);
      v_new.day_bucket := p_day;
      v_new.day_used := greatest(0, v_days[1] + p_day_requests);
      v_new.day_next_used := greatest(0, v_days[2] + case when p_near_end then p_day_requests else 0 end);
      v_new.day_prev_used := greatest(0, v_days[3] + case when p_near_start then p_day_requests else 0 end);
    end if;
    v_use := v_use || v_new;
  end loop;
  return v_use;
end
$$;

-- Settles an admission on its counter row: finalize sets its tokens to Google's count (p_tokens),
-- release gives back the request in its minute, day and window (and in its owners' shares). The
-- window is corrected in the second the admission counts in (google_ai_attempts.admitted_at) while
-- that second is still in the ring; one that left it changes only the calendar counters.
CREATE OR REPLACE FUNCTION public.google_ai_settle_admission(p_att public.google_ai_attempts, p_tokens integer,
    p_released boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_ring record;
  v_second bigint := floor(extract(epoch from p_att.admitted_at))::bigint;
  -- (An attempt without its admission's time is not looked for in the window.)
  v_requests integer := case when p_released and v_second is not null then -1 else 0 end;
  v_delta integer := p_tokens - p_att.estimated_tokens;
  -- Counted for the other day too when admitted within the day guard of a midnight.
  v_near_end boolean := p_att.admitted_at >= public.google_ai_pacific_midnight_after(p_att.admitted_at) - v_day_guard;
  v_near_start boolean := p_att.admitted_at
    < public.google_ai_pacific_start(public.google_ai_pacific_day(p_att.admitted_at)) + v_day_guard;
begin
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_att.quota_group and c.model = p_att.model
  for update;
  if not found then
    return;
  end if;
  v_ring := public.google_ai_ring_at(null, v_window, v_row.ring_low, v_row.ring,
    v_row.window_requests, v_row.window_tokens, v_requests,
    case when v_second is not null then v_delta else 0 end, p_att.admitted_at);

  update public.google_ai_usage_counters c set
    rpm_used = case when p_released and c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.rpm_used - 1) else c.rpm_used end,
    tpm_used = case when c.minute_bucket = p_att.minute_bucket
                    then greatest(0, c.tpm_used + v_delta) else c.tpm_used end,
    rpd_used = case when p_released and c.day_bucket = p_att.day_bucket
                    then greatest(0, c.rpd_used - 1) else c.rpd_used end,
    rpd_next_used = case when p_released and c.day_bucket = p_att.day_bucket and v_near_end
                         then greatest(0, c.rpd_next_used - 1) else c.rpd_next_used end,
    rpd_prev_used = case when p_released and c.day_bucket = p_att.day_bucket and v_near_start
                         then greatest(0, c.rpd_prev_used - 1) else c.rpd_prev_used end,
    ring = v_ring.ring,
    window_requests = v_ring.sum_requests, window_tokens = v_ring.sum_tokens,
    share_use = case when p_released and c.share_use is not null then public.google_ai_share_use_counted(c.share_use,
                  null, array(select s.id from public.google_ai_quota_shares s
                              where s.model = p_att.model
                                and (s.priority_class = p_att.priority_class or s.caller = p_att.caller)),
                  null, v_window, v_requests, -1, p_att.admitted_at, p_att.day_bucket, v_near_end, v_near_start)
                else c.share_use end
  where c.id = v_row.id;
end
$$;
-- ================================================================================================
-- supabase/schemas/35_clients_and_tokens.sql
-- ================================================================================================

-- Kaggle clients and their scoped tokens: creation, minting, revocation, the credential check (with
-- refusals counted per minute) and token budgets.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_clients (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    secret_hash text NOT NULL,
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
    max_output_tokens integer DEFAULT 8192 NOT NULL,
    priority_class text DEFAULT 'batch'::text NOT NULL,
    daily_max_usd numeric,
    month_bucket date,
    monthly_max_usd numeric,
    spent_month_usd numeric DEFAULT 0 NOT NULL,
    spent_today_usd numeric DEFAULT 0 NOT NULL,
    token_max_usd numeric,
    CONSTRAINT google_ai_clients_max_output_tokens_check CHECK
      (((max_output_tokens >= 1) AND (max_output_tokens <= 1000000))),
    CONSTRAINT google_ai_clients_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'::text)),
    CONSTRAINT google_ai_clients_ttl_check CHECK (((max_token_ttl > '00:00:00'::interval) AND (max_token_ttl <=
      '12:00:00'::interval)))
);

COMMENT ON COLUMN public.google_ai_clients.secret_hash IS
    'SHA-256 hex of the client secret; the secret itself is shown once at creation.';

COMMENT ON COLUMN public.google_ai_clients.max_output_tokens IS
    'Most output tokens one request of this client may ask for; the gateway sends it when a request names none.';

COMMENT ON COLUMN public.google_ai_clients.daily_max_usd IS
    'The most the client''s calls may cost in US dollars per Pacific day (null: no limit), beside its token and '
    'request budgets: a reservation books its worst case (its input, max_output_tokens and the model''s thinking '
    'at the dearest price it may be served at, google_ai_worst_call_cost) in spent_today_usd and spent_month_usd, '
    'finalize settles them on the call''s cost '
    '(cost_usd; unknown: the worst case stays); refused with cause spend_budget until Pacific midnight.';

COMMENT ON COLUMN public.google_ai_clients.monthly_max_usd IS
    'As daily_max_usd, per Pacific calendar month (month_bucket, spent_month_usd); refused until the month''s end.';

COMMENT ON COLUMN public.google_ai_clients.token_max_usd IS
    'The budget in money each token minted from now on gets (google_ai_tokens.max_usd; null: none).';

COMMENT ON COLUMN public.google_ai_clients.priority_class IS
    'The highest class this client''s requests are queued in (a request may ask for a lower one).';

CREATE TABLE IF NOT EXISTS public.google_ai_tokens (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    client_id uuid NOT NULL,
    token_hash text NOT NULL,
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
    'The most the token''s calls may cost in US dollars over its life (at most 12 hours, so no day or month of its '
    'own; null: no limit), beside its client''s budgets: booked and settled as the client''s are (spent_usd); '
    'refused with limit token_budget, cause spend_budget, never reopening (a new token has its own).';

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

CREATE TABLE IF NOT EXISTS public.google_ai_credential_refusals (
    minute timestamp with time zone NOT NULL,
    reason text NOT NULL,
    token_id uuid,
    client_id uuid,
    refusals integer DEFAULT 0 NOT NULL,
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT google_ai_credential_refusals_reason_check CHECK ((reason = ANY (ARRAY['token_invalid'::text,
      'token_expired'::text, 'token_revoked'::text]))),
    CONSTRAINT google_ai_credential_refusals_refusals_check CHECK ((refusals >= 0))
);

COMMENT ON TABLE public.google_ai_credential_refusals IS
    'Requests refused before any attempt row because their token can never be admitted: how many, per minute, reason '
    'and token (unknown tokens together). Trimmed after a day.';

SELECT pg_temp.add_constraint_once('public.google_ai_clients', 'google_ai_clients_name_key',
  $constraint$ALTER TABLE ONLY public.google_ai_clients
    ADD CONSTRAINT google_ai_clients_name_key UNIQUE (name);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_clients', 'google_ai_clients_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_clients
    ADD CONSTRAINT google_ai_clients_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_clients', 'google_ai_clients_secret_hash_key',
  $constraint$ALTER TABLE ONLY public.google_ai_clients
    ADD CONSTRAINT google_ai_clients_secret_hash_key UNIQUE (secret_hash);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_tokens', 'google_ai_tokens_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_tokens
    ADD CONSTRAINT google_ai_tokens_pkey PRIMARY KEY (id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_tokens', 'google_ai_tokens_token_hash_key',
  $constraint$ALTER TABLE ONLY public.google_ai_tokens
    ADD CONSTRAINT google_ai_tokens_token_hash_key UNIQUE (token_hash);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_clients', 'google_ai_clients_priority_class_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_clients
    ADD CONSTRAINT google_ai_clients_priority_class_fkey FOREIGN KEY (priority_class) REFERENCES
      public.google_ai_priority_classes(name);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_credential_refusals', 'google_ai_credential_refusals_client_id_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_credential_refusals
    ADD CONSTRAINT google_ai_credential_refusals_client_id_fkey FOREIGN KEY (client_id) REFERENCES
      public.google_ai_clients(id) ON DELETE CASCADE;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_credential_refusals', 'google_ai_credential_refusals_token_id_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_credential_refusals
    ADD CONSTRAINT google_ai_credential_refusals_token_id_fkey FOREIGN KEY (token_id) REFERENCES
      public.google_ai_tokens(id) ON DELETE CASCADE;$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_tokens', 'google_ai_tokens_client_id_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_tokens
    ADD CONSTRAINT google_ai_tokens_client_id_fkey FOREIGN KEY (client_id) REFERENCES public.google_ai_clients(id);$constraint$);

CREATE UNIQUE INDEX IF NOT EXISTS google_ai_credential_refusals_key ON public.google_ai_credential_refusals USING btree
    (minute, reason, COALESCE(token_id, '00000000-0000-0000-0000-000000000000'::uuid));

CREATE INDEX IF NOT EXISTS google_ai_tokens_client_created_idx ON
    public.google_ai_tokens USING btree (client_id, created_at);

CREATE INDEX IF NOT EXISTS google_ai_tokens_expires_idx ON public.google_ai_tokens USING btree (expires_at);

-- Token budgets follow the reservation's life cycle: finalize and release (request life cycle) call
-- this with an attempt's request, token and money deltas. finalize reconciles the token's (and the
-- client's same-day) tokens by actual - estimate, and the token's and the client's same-day and
-- same-month spend by cost - worst case; release gives back what the reservation booked.
CREATE OR REPLACE FUNCTION public.google_ai_adjust_token_budget(p_attempt public.google_ai_attempts,
    p_requests integer, p_tokens integer, p_usd numeric DEFAULT 0) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
  elsif p_attempt.client_id is null then
    -- (A service caller's day is the one its booking counted in: the attempt's day_bucket.)
    v_day := coalesce(p_attempt.day_bucket, v_day);
    v_month := pg_catalog.date_trunc('month', v_day)::date;
    update public.google_ai_caller_budgets b set
      requests_today = case when b.day_bucket = v_day then greatest(0, b.requests_today + p_requests)
                            else b.requests_today end,
      tokens_today = case when b.day_bucket = v_day then greatest(0, b.tokens_today + p_tokens) else b.tokens_today end,
      spent_today_usd = case when b.day_bucket = v_day then greatest(0, b.spent_today_usd + coalesce(p_usd, 0))
                             else b.spent_today_usd end,
      spent_month_usd = case when b.month_bucket = v_month then greatest(0, b.spent_month_usd + coalesce(p_usd, 0))
                             else b.spent_month_usd end
    where b.caller = p_attempt.caller and (b.day_bucket = v_day or b.month_bucket = v_month);
  end if;
end
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
  values (p_name, encode(pg_catalog.sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_models,
    p_max_token_ttl, p_token_max_requests, p_token_max_tokens,
    p_daily_max_requests, p_daily_max_tokens, p_mint_per_hour, p_notes)
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

-- A scoped token's verdict on one request, under the token's and its client's row locks (held until
-- the reservation commits, so two requests of one token are counted one after the other): refusal is
-- null when the token may send it (caller is then its client's name), else the answer to give, its
-- refused attempt row written. Budgets count a request on its first attempt, tokens on every attempt.
CREATE OR REPLACE FUNCTION public.google_ai_token_verdict_at(p_now timestamp with time zone, p_token_hash text,
    p_model text, p_estimated_tokens integer, p_request_id text, p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, OUT refusal jsonb, OUT caller text, OUT client_id uuid, OUT token_id uuid) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
$$;

-- Books an admitted request on its token and its client's day (the rows google_ai_token_verdict_at
-- locked): a request on its first attempt, its estimated tokens on every attempt, and where the token
-- or its client has a budget in money the call's worst case (as the verdict read it) on the token and
-- the client's day and month; answers that worst case (null: no budget in money), which finalize
-- settles (google_ai_adjust_token_budget).
CREATE OR REPLACE FUNCTION public.google_ai_count_token_use(p_token_id uuid, p_client_id uuid,
    p_now timestamp with time zone, p_attempt integer, p_estimated_tokens integer, p_model text) RETURNS numeric
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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
$$;
-- ================================================================================================
-- supabase/schemas/38_candidates.sql
-- ================================================================================================

-- A request's candidates: the limits of the model it names (google_ai_request_limits), the class it
-- runs in (google_ai_request_class) and the quota groups that may serve it (google_ai_candidate_groups),
-- with what ranks them and the key a group serves it on.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- The keys that may serve p_model, each with its quota group: active, of the model's provider (a
-- model no row names has none), for the model (a key's models; null: every model of its provider) and
-- not excluded by the caller. The booking's candidates, a booking that waited
-- for a row, the quota reads and the metrics ask here (the operators' views keep their own reading).
-- A SQL table function, so it is inlined into the statement that reads it.
CREATE OR REPLACE FUNCTION public.google_ai_serving_keys(p_model text, p_exclude_key_ids uuid[])
    RETURNS TABLE(quota_group text, key_id uuid, priority integer, key_alias text, env_var_name text)
    LANGUAGE sql STABLE
    AS $$
  select public.google_ai_quota_group(k.project_id, k.id), k.id, k.priority, k.key_alias, k.env_var_name
  from public.google_ai_api_keys k
  where k.is_active
    and k.serves_provider operator(pg_catalog.=)
        (select m.provider from public.google_ai_model_limits m where m.model operator(pg_catalog.=) p_model)
    and (k.models is null or p_model operator(pg_catalog.=) any (k.models))
    and not (k.id operator(pg_catalog.=) any (coalesce(p_exclude_key_ids, '{}'::uuid[])))
$$;

-- The quota groups that may serve p_model (through a key google_ai_serving_keys names), one
-- row each: the priority of its best key, the cooldown in force at p_now, what it used in the
-- current minute and Pacific day (an unlocked read) and its headroom (the smallest remaining
-- fraction of RPM, TPM and RPD) and what those counts already show full for everyone (full_by: a
-- cooldown, the day, the window). The reservation tries them by priority (lower first, none last),
-- then headroom (largest first), then name: the order the caller sorts them in (no row_number():
-- starting its window aggregate cost about 1% of a reservation's CPU). Each row names the key that serves its group
-- (the best active key for the model, by priority, then alias), so a booking needs no second look at
-- the keys.
CREATE OR REPLACE FUNCTION public.google_ai_candidate_groups(p_model text, p_exclude_key_ids uuid[], p_rpm integer,
    p_tpm integer, p_rpd integer, p_now timestamp with time zone) RETURNS TABLE(quota_group text, priority integer,
    cooldown_until timestamp with time zone, rpm_used integer, tpm_used integer, rpd_used integer, headroom numeric,
    key_id uuid, key_alias text, env_var_name text, full_by text)
    LANGUAGE sql STABLE
    AS $$
  with keys as (
    select distinct on (s.quota_group) s.quota_group, s.priority, s.key_id, s.key_alias, s.env_var_name
    from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
    order by s.quota_group, s.priority nulls last, s.key_alias
  ), usage as (
    select g.quota_group, g.priority, g.key_id, g.key_alias, g.env_var_name, cd.cooldown_until,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.rpm_used else 0 end as rpm_used,
           case when c.minute_bucket operator(pg_catalog.=) public.google_ai_minute_window(p_now)
                then c.tpm_used else 0 end as tpm_used,
           case when c.day_bucket operator(pg_catalog.=) public.google_ai_pacific_day(p_now)
                then c.rpd_used else 0 end as rpd_used
    from keys g
    left join public.google_ai_usage_counters c
      on c.quota_group operator(pg_catalog.=) g.quota_group and c.model operator(pg_catalog.=) p_model
    left join public.google_ai_cooldowns cd
      on cd.quota_group operator(pg_catalog.=) g.quota_group and cd.model operator(pg_catalog.=) p_model
         and cd.cooldown_until operator(pg_catalog.>) p_now
  )
  select u.quota_group, u.priority, u.cooldown_until, u.rpm_used, u.tpm_used, u.rpd_used,
         least(coalesce(1 operator(pg_catalog.-) (u.rpm_used::numeric operator(pg_catalog./) nullif(p_rpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.tpm_used::numeric operator(pg_catalog./) nullif(p_tpm, 0)), 1),
               coalesce(1 operator(pg_catalog.-) (u.rpd_used::numeric operator(pg_catalog./) nullif(p_rpd, 0)), 1)),
         u.key_id, u.key_alias, u.env_var_name,
         case when u.cooldown_until is not null then 'cooldown'
              when p_rpd is not null and u.rpd_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpd then 'rpd'
              when p_rpm is not null and u.rpm_used operator(pg_catalog.+) 1 operator(pg_catalog.>) p_rpm then 'rpm' end
  from usage u
$$;

-- The model a request names, as the request is held to it: its row (google_ai_model_limits), the
-- active one named exactly (its unique index), else the first active row with the name as an alias,
-- with rpm, tpm and rpd after the safety margin (safety_margin then 0); all null when none is
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
  select m.* into v_row from public.google_ai_model_limits m where m.model = p_model and m.is_active;
  if not found then
    select m.* into v_row from public.google_ai_model_limits m
    where m.is_active and p_model = any (m.aliases)
    order by m.id limit 1;
  end if;
  v_row.rpm := public.google_ai_effective_limit(v_row.rpm, v_row.safety_margin);
  v_row.tpm := public.google_ai_effective_limit(v_row.tpm, v_row.safety_margin);
  v_row.rpd := public.google_ai_effective_limit(v_row.rpd, v_row.safety_margin);
  v_row.safety_margin := 0;
  return v_row;
end
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

-- Whether p_key_id still serves p_quota_group for p_model (google_ai_serving_keys): a booking that
-- waited for a group's row asks, as the key it read before the wait may have changed meanwhile.
CREATE OR REPLACE FUNCTION public.google_ai_key_serves(p_model text, p_exclude_key_ids uuid[], p_key_id uuid,
    p_quota_group text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return exists (select 1 from public.google_ai_serving_keys(p_model, p_exclude_key_ids) s
                 where s.key_id = p_key_id and s.quota_group = p_quota_group);
end
$$;
-- ================================================================================================
-- supabase/schemas/40_queue.sql
-- ================================================================================================

-- The fair admission queue: tickets taken by a refusal, turns by class then fair between callers,
-- lapsed tickets, and whether the spread holds a class back (only while requests wait).
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE TABLE IF NOT EXISTS public.google_ai_queue (
    ticket_id uuid DEFAULT gen_random_uuid() NOT NULL,
    model text NOT NULL,
    priority_class text NOT NULL,
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
    "position" integer NOT NULL
);

COMMENT ON TABLE public.google_ai_queue IS
    'Requests waiting for capacity, in admission order (class_rank, turn, enqueued_at). A ticket ends when its request '
    'is admitted, gives up, or stops calling (lease_until): then an abandoned attempt row records it.';

SELECT pg_temp.add_constraint_once('public.google_ai_queue', 'google_ai_queue_pkey',
  $constraint$ALTER TABLE ONLY public.google_ai_queue
    ADD CONSTRAINT google_ai_queue_pkey PRIMARY KEY (ticket_id);$constraint$);

SELECT pg_temp.add_constraint_once('public.google_ai_queue', 'google_ai_queue_priority_class_fkey',
  $constraint$ALTER TABLE ONLY public.google_ai_queue
    ADD CONSTRAINT google_ai_queue_priority_class_fkey FOREIGN KEY (priority_class) REFERENCES
      public.google_ai_priority_classes(name);$constraint$);

CREATE INDEX IF NOT EXISTS google_ai_queue_caller_idx ON public.google_ai_queue USING btree (model, caller, class_rank);

CREATE INDEX IF NOT EXISTS google_ai_queue_lease_idx ON public.google_ai_queue USING btree (model, lease_until);

CREATE INDEX IF NOT EXISTS google_ai_queue_order_idx ON
    public.google_ai_queue USING btree (model, class_rank, turn, enqueued_at);

-- The limits a WAIT caller waits for in the model's queue, one entry each (WAITABLE_LIMITS in
-- supabase/functions/_shared/vocabulary.ts; tests/db/vocabulary.test.ts holds the first list to it), and
-- how their turns go. A refusal for one of them takes a ticket (google_ai_refusal_at); its turn follows:
-- 'slots' for what google_ai_queue_turn_at counts (each group's window, its day, its cooldowns: the
-- second list), where a request behind the due tickets may book a slot they leave over; 'head' for any
-- other (its capacity is not the window's, so the queue cannot count it): a due ticket waiting for it
-- holds every request behind it until its own turn is served (google_ai_queue_place). Null: not waited
-- for, answered at once. Inlined into the statement that reads it.
CREATE OR REPLACE FUNCTION public.google_ai_queue_turns(p_limit text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case when p_limit operator(pg_catalog.=) any ('{rpm,tpm,rpd,cooldown,pace}'::text[])
              then case when p_limit operator(pg_catalog.=) any ('{rpm,tpm,rpd,cooldown,pace}'::text[]) then 'slots'
                        else 'head' end end
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
    attempt, estimated_tokens, limit_hit, wait_ms, priority_class, error_message, finished_at)
  select 'abandoned', g.request_id, g.caller, g.client_id, g.token_id, g.model, g.requested_model, 1, g.tokens,
    g.limit_hit, greatest(0, extract(epoch from (g.expected_at - g.enqueued_at)) * 1000)::integer, g.priority_class,
    'left the queue: no call within the grace after its turn', p_now
  from gone g;
  get diagnostics v_lapsed = row_count;
  return v_lapsed;
end
$$;

-- A group's next p_needed slots for waiters: its openings (free now, then as admissions leave),
-- each again a window later, and on a spread model (p_step) none before its schedule allows
-- (p_schedule: the group's spread_until, p_tolerance: what the schedule forgives; google_ai_spread_next).
CREATE OR REPLACE FUNCTION public.google_ai_group_slots(p_openings timestamp with time zone[], p_needed integer,
    p_window interval, p_schedule timestamp with time zone, p_step interval, p_tolerance interval)
    RETURNS timestamp with time zone[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_n integer := cardinality(p_openings);
  v_schedule timestamptz := p_schedule;
  v_slot timestamptz;
  v_slots timestamptz[] := '{}';
begin
  for j in 1 .. p_needed loop
    v_slot := p_openings[((j - 1) % v_n) + 1] + ((j - 1) / v_n) * p_window;
    if p_step is not null then
      v_slot := greatest(v_slot, v_schedule - p_tolerance);
      v_schedule := public.google_ai_spread_next(v_schedule, v_slot, p_step);
    end if;
    v_slots := v_slots || v_slot;
  end loop;
  return v_slots;
end
$$;

-- What the higher classes than rank p_rank took of a group's window for the model (a request that
-- waited longer than a window says nothing of what its class asks for now).
CREATE OR REPLACE FUNCTION public.google_ai_higher_taken(p_group text, p_model text, p_now timestamp with time zone,
    p_window interval, p_rank smallint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (select count(*) from public.google_ai_attempts a
          join public.google_ai_priority_classes pc on pc.name = a.priority_class
          where a.quota_group = p_group and a.model = p_model and a.admitted_at > p_now - p_window
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

-- The p_n-th earliest of p_slots, never before p_now; null when there are fewer. (The three helpers
-- here are PL/pgSQL: a query in a SQL function cannot be inlined, and PL/pgSQL keeps its plans for
-- the session.)
CREATE OR REPLACE FUNCTION public.google_ai_nth_slot(p_slots timestamp with time zone[], p_n integer,
    p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
begin
  return (select case when count(*) >= p_n then greatest(p_now, (array_agg(o order by o))[p_n]) end
          from unnest(p_slots) o);
end
$$;

-- When the p_slots-th request from now can be admitted, counting requests only (RPM), over the
-- quota groups that may serve the model today: each group offers its free slots now, then one slot
-- as each admission of its window leaves it (admitted_at + window), then the same again a window
-- later; a spread model's group offers each of those slots no sooner than its schedule allows
-- (google_ai_spread_step, google_ai_spread_next). A group's window holds, for a waiter of class
-- p_class and caller p_caller, what the RPM shares it does not own leave it (google_ai_booking_rules'
-- rule: the limit less what their owners have not used of the window), so a slot a share keeps from it
-- is not counted as its turn. free_now counts the slots of each group's first p_slots that are free
-- now. likely_at: the same for a request of class rank p_rank, counting, on a
-- spread model, on the part of each group's slots that the higher classes left in the last window
-- (they will ask again, and go first; at least a tenth): its p_slots-th slot is a group's
-- p_slots / part-th. spread_bound: some group's window has a slot now that only its schedule holds
-- back; kept_bound: some group's window has room now that only the shares keep from this waiter.
-- Null turn_at: no group can serve today (day used up or cooling down everywhere), or the shares
-- it does not own keep every group's window.
CREATE OR REPLACE FUNCTION public.google_ai_queue_turn_at(p_model text, p_rpm integer, p_rpd integer,
    p_exclude_key_ids uuid[], p_now timestamp with time zone, p_slots integer, p_rank smallint, p_class text,
    p_caller text, OUT free_now integer, OUT turn_at timestamp with time zone, OUT likely_at timestamp with time zone,
    OUT spread_bound boolean, OUT kept_bound boolean) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_window interval := public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms);
  v_spread record;
  v_spaced boolean;
  v_group record;
  v_ring record;
  v_expiries timestamptz[];
  v_count integer;
  v_room integer;
  v_part numeric;
  v_needed integer;
  v_openings timestamptz[];
  v_group_slots timestamptz[];
  v_slots timestamptz[] := '{}';
  v_likely timestamptz[] := '{}';
  v_day_left bigint := 0;
begin
  free_now := 0;
  spread_bound := false;
  kept_bound := false;
  v_spread := public.google_ai_spread_step((select l.spread_burst from public.google_ai_model_limits l
                                            where l.model = p_model), v_window, p_rpm, null, 0);
  -- A waiter of the first class is not held by the schedule (google_ai_spread_holds): the queue is
  -- asked for waiters only, so only the class matters here.
  v_spaced := v_spread.step is not null
              and (p_rank is null or exists (select 1 from public.google_ai_priority_classes c where c.rank < p_rank));
  for v_group in
    select c.quota_group, c.cooldown_until, c.rpd_used, u.spread_until, u.ring_low, u.ring, u.window_requests,
           public.google_ai_higher_taken(c.quota_group, p_model, p_now, v_window, p_rank) as higher,
           public.google_ai_kept_from(p_model, u.share_use, p_now, v_window, p_class, p_caller) as held
    from public.google_ai_candidate_groups(p_model, p_exclude_key_ids, p_rpm, null, p_rpd, p_now) c
    left join public.google_ai_usage_counters u on u.quota_group = c.quota_group and u.model = p_model
  loop
    continue when v_group.cooldown_until is not null or (p_rpd is not null and v_group.rpd_used >= p_rpd);
    v_day_left := v_day_left + coalesce(p_rpd - v_group.rpd_used, 1000000);
    if p_rpm is null then
      free_now := 1000000;
      continue;
    end if;
    -- The window's admissions leave with their seconds (google_ai_ring_at).
    v_ring := public.google_ai_ring_at(p_now, v_window, v_group.ring_low, v_group.ring,
      v_group.window_requests, null);
    v_expiries := public.google_ai_ring_expiries(v_ring.ring_low, v_ring.ring, v_window);
    v_count := cardinality(v_expiries);
    -- The group's openings within one window for this waiter (its room: the limit less what others'
    -- shares keep): free now, then as admissions leave.
    v_room := p_rpm - v_group.held;
    kept_bound := kept_bound or (v_count < p_rpm and v_count >= v_room);
    v_openings := array_fill(p_now, array[greatest(0, v_room - v_count)])
                  || coalesce(v_expiries[greatest(1, v_count - v_room + 1):v_count], '{}');
    continue when cardinality(v_openings) = 0;
    spread_bound := spread_bound
                    or (v_spaced and v_openings[1] <= p_now and v_group.spread_until - v_spread.tolerance > p_now);
    -- (A model that is not spread reopens a window's slots at once, to whoever is waiting then:
    -- every waiter there counts on them all.)
    v_part := case when not v_spaced then 1
                   else greatest(0.1, 1 - coalesce(v_group.higher, 0)::numeric / greatest(p_rpm, v_count, 1)) end;
    v_needed := ceil(p_slots / v_part)::integer;
    -- Its slots (a waiter of this class counts on its part of them: the likely ones).
    v_group_slots := public.google_ai_group_slots(v_openings, v_needed, v_window, v_group.spread_until,
      case when v_spaced then v_spread.step end, v_spread.tolerance);
    for k in 1 .. p_slots loop
      v_slots := v_slots || v_group_slots[k];
      free_now := free_now + case when v_group_slots[k] <= p_now then 1 else 0 end;
      v_likely := v_likely || v_group_slots[least(v_needed, ceil(k / v_part)::integer)];
    end loop;
  end loop;
  if v_day_left < p_slots then
    return; -- not today
  end if;
  -- The p_slots-th of the slots in time order, and of the likely ones (now when enough are free now).
  -- None when the shares this waiter does not own keep every group's window from it: the booking
  -- names when, if ever, one has room for it.
  turn_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_slots, p_slots, p_now) end;
  likely_at := case when free_now >= p_slots then p_now else public.google_ai_nth_slot(v_likely, p_slots, p_now) end;
end
$$;

-- At commit: a ticket taken or moved by a statement whose holder stopped waiting goes with the
-- statement (it would hold the request's claim and a place ahead of live waiters for nobody). The
-- statement's reply_by is the transaction's setting google_ai.reply_by (set by google_ai_reserve_models_at).
CREATE OR REPLACE FUNCTION public.google_ai_queue_reply_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_reply_by timestamptz := nullif(pg_catalog.current_setting('google_ai.reply_by', true), '')::timestamptz;
begin
  if pg_catalog.clock_timestamp() > v_reply_by then
    raise exception 'queue ticket % reached its commit after its caller stopped waiting (%); rolled back',
      new.ticket_id, v_reply_by
      using errcode = '57014';
  end if;
  return null;
end
$$;

DROP TRIGGER IF EXISTS google_ai_queue_reply_check ON public.google_ai_queue;
CREATE CONSTRAINT TRIGGER google_ai_queue_reply_check AFTER INSERT OR UPDATE ON public.google_ai_queue DEFERRABLE
    INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.google_ai_queue_reply_check();

-- Whether the spread holds a request of class rank p_rank back (its place in the schedule still
-- ahead): only while requests wait for the model, and only for a class that some class ranks before
-- (the schedule keeps the next slots coming for that class; the first class has nobody to keep them
-- for). While nobody waits, a burst that fits the window goes at once. Null rank: held.
CREATE OR REPLACE FUNCTION public.google_ai_spread_holds(p_model text, p_rank smallint,
    p_at timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (
    select exists (select 1 from public.google_ai_queue q where q.model = p_model and q.lease_until >= p_at)
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

-- A request's place in the model's queue, none when nobody waits for the model and the request holds no
-- ticket (p_ticket: the ticket it names; only a live one of its caller for the model counts), nor for a
-- null model (the request is blocked already). p_model, p_class and p_caller are the request's model row
-- (limits after the margin: google_ai_request_limits), class row and caller, each whole, as the booking
-- takes them. Answers the class and turn it stands in (its ticket's, the turn
-- moved up as google_ai_next_turn allows; else where a ticket taken now, p_new_ticket, would stand, in
-- p_class), and whether it may ask for a booking now (may_book). It may when nobody else waits, when a
-- slot is free beyond the due tickets ahead, or when its own RPM share still has room in a group (the
-- share keeps that slot for it, the spread does not hold it back, and the booking decides exactly); never
-- while a due ticket ahead waits for a limit whose turns go head first (google_ai_queue_turns: 'head').
-- When it may not, blocked_by and cause say why: the limit the window counts (rpm, else tpm), or the
-- one the head-first ticket waits for, and queue_turn when the free slots (or the head's turn) are the
-- turns of the tickets ahead, spread when only the schedule holds one, share_kept when only others'
-- shares keep the window's room from it, else window_full.
CREATE OR REPLACE FUNCTION public.google_ai_queue_place(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_exclude_key_ids uuid[],
    p_now timestamp with time zone, p_ticket uuid, p_new_ticket uuid, OUT ticket uuid, OUT rank smallint,
    OUT class text, OUT turn bigint, OUT since timestamp with time zone, OUT may_book boolean, OUT blocked_by text,
    OUT cause text, OUT turn_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
#variable_conflict use_variable
declare
  v_model text := p_model.model;
  v_caller text := p_caller.name;
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
  if v_model is null then
    return;
  end if;
  if p_ticket is not null then
    select * into v_held from public.google_ai_queue q
    where q.ticket_id = p_ticket and q.caller = v_caller and q.model = v_model and q.lease_until >= p_now;
  end if;
  if v_held.ticket_id is not null then
    select v_held.ticket_id, v_held.class_rank, v_held.priority_class, v_held.enqueued_at
      into ticket, rank, class, since;
    -- Its turn moves up to follow its caller's previous live ticket (or the head of the class), as a
    -- new ticket's would: turns its caller's earlier tickets held and gave up are not kept from it.
    turn := least(v_held.turn, public.google_ai_next_turn(v_model, rank, v_caller, p_now, ticket, v_held.turn));
  end if;
  if not exists (select 1 from public.google_ai_queue q
                 where q.model = v_model and q.lease_until >= p_now and q.ticket_id is distinct from ticket) then
    return;
  end if;
  if ticket is null then
    turn := public.google_ai_next_turn(v_model, rank, v_caller, p_now, null, null);
    since := p_now;
  end if;

  select count(*), count(*) filter (where q.expected_at <= p_now),
         min(q.limit_hit) filter (where q.expected_at <= p_now and public.google_ai_queue_turns(q.limit_hit) = 'head')
    into v_ahead, v_due_ahead, v_head_limit
  from public.google_ai_queue q
  where q.model = v_model and q.lease_until >= p_now and q.ticket_id is distinct from ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id) < (rank, turn, since, coalesce(ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.spread_bound, t.kept_bound into v_free_now, turn_at, v_spread_bound, v_kept_bound
  from public.google_ai_queue_turn_at(v_model, p_model.rpm, p_model.rpd, p_exclude_key_ids, p_now, v_ahead + 1, rank,
    class, v_caller) t;
  -- Slots go to the due tickets ahead first; one nobody due claims goes to whoever asks. (No turn,
  -- none today anywhere or every window kept from it by shares: the booking names the reopening.)
  may_book := v_head_limit is null and (turn_at is null or v_due_ahead < v_free_now
    or exists (select 1 from public.google_ai_quota_shares s
               left join (select e.* from public.google_ai_usage_counters c, unnest(c.share_use) e
                          where c.model = v_model) u on u.share_id = s.id
               where s.model = v_model and s.reserved_rpm is not null
                 and (s.priority_class = class or s.caller = v_caller)
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

-- A refused request waits in line (google_ai_admit_at asks when its limit is one a turn can bring and
-- it has wait left): its ticket is taken, or renewed, when its turn is likely within the wait, and
-- answer names it (the queued refusal, without the credential's ids). Otherwise no ticket and a null
-- answer; turn_at, expected and likely_at say when its turn would have been, for the refusal's time.
-- p_ticket, p_turn, p_since: the request's live ticket (google_ai_queue_place); none: a new ticket
-- p_new_ticket. p_booking_tried: the booking was asked (p_reopens_at, p_recheck_at are its answer).
CREATE OR REPLACE FUNCTION public.google_ai_queue_wait(p_now timestamp with time zone, p_model text,
    p_requested_model text, p_rpm integer, p_rpd integer, p_exclude_key_ids uuid[], p_caller text, p_client_id uuid,
    p_token_id uuid, p_request_id text, p_tokens integer, p_class text, p_rank smallint, p_ticket uuid,
    p_turn bigint, p_since timestamp with time zone, p_new_ticket uuid, p_limit text, p_cause text,
    p_booking_tried boolean, p_reopens_at timestamp with time zone, p_recheck_at timestamp with time zone,
    p_wait_left_ms integer, OUT answer jsonb, OUT turn_at timestamp with time zone,
    OUT expected timestamp with time zone, OUT likely_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_wait_until timestamptz := p_now + p_wait_left_ms * interval '1 millisecond';
  v_grace interval;
  v_turn bigint := p_turn;
  v_since timestamptz := p_since;
  v_ahead integer;
  v_due_lease timestamptz;
  v_free_now integer;
  v_ticket public.google_ai_queue;
begin
  -- Tickets of a model are taken one at a time, so each one's place and time count every ticket before
  -- it (the lock is the model's and lasts until the reservation commits; nothing under it waits for a
  -- counter row, so a counter row the reservation may still hold cannot deadlock with it).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('google_ai_queue:' || p_model));
  v_grace := coalesce((select qs.grace_ms from public.google_ai_queue_settings qs where qs.id), 3000)
             * interval '1 millisecond';
  perform public.google_ai_queue_lapse(p_model, p_now);
  if p_ticket is null then
    v_turn := public.google_ai_next_turn(p_model, p_rank, p_caller, null, null, null);
    v_since := p_now;
  end if;
  select count(*), min(q.lease_until) filter (where q.expected_at <= p_now) into v_ahead, v_due_lease
  from public.google_ai_queue q
  where q.model = p_model and q.ticket_id is distinct from p_ticket
    and (q.class_rank, q.turn, q.enqueued_at, q.ticket_id)
        < (p_rank, v_turn, v_since, coalesce(p_ticket, p_new_ticket));
  select t.free_now, t.turn_at, t.likely_at into v_free_now, turn_at, likely_at
  from public.google_ai_queue_turn_at(p_model, p_rpm, p_rpd, p_exclude_key_ids, p_now, v_ahead + 1, p_rank,
    p_class, p_caller) t;
  -- A slot free now but kept for a ticket ahead whose turn has come: if that waiter never calls, the
  -- slot is this one's once its ticket lapses. When the next opening lies beyond this caller's wait,
  -- that is its chance: it asks again then (one call more if the waiter did come).
  if v_free_now > 0 and v_due_lease is not null and coalesce(turn_at > v_wait_until, true) then
    turn_at := v_due_lease + interval '1 millisecond';
    likely_at := turn_at;
  end if;
  -- The booking was tried and names no time it could succeed (a closed model, or free slots that a
  -- reserved share keeps from this caller): the queue's count of slots cannot serve it, and asking
  -- again would not either, so it is answered now rather than given a turn.
  if p_booking_tried and p_reopens_at is null and p_recheck_at is null then
    turn_at := null;
    likely_at := null;
  end if;
  -- Its turn: when the tickets ahead leave a slot over, and not before the booking's own reopening.
  expected := greatest(turn_at, least(p_reopens_at, p_recheck_at), p_now + interval '50 milliseconds');
  if turn_at is null and p_reopens_at is null then
    expected := null;
  end if;
  -- A ticket is taken only when the turn is likely within the wait: the higher classes that asked
  -- during the last window will ask again and go first (google_ai_queue_turn_at's likely_at). The
  -- waiter is still told the earliest time (expected), so no slot waits for it.
  if expected <= v_wait_until and greatest(expected, likely_at) <= v_wait_until then
    insert into public.google_ai_queue as q (ticket_id, model, priority_class, class_rank, caller, client_id,
      token_id, request_id, requested_model, turn, enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
    values (coalesce(p_ticket, p_new_ticket), p_model, p_class, p_rank, p_caller, p_client_id, p_token_id,
      p_request_id, p_requested_model, v_turn, v_since, p_tokens, p_limit, expected, expected + v_grace, v_ahead + 1)
    on conflict (ticket_id) do update set
      expected_at = excluded.expected_at, lease_until = excluded.lease_until, turn = excluded.turn,
      position = excluded.position, tokens = excluded.tokens, limit_hit = excluded.limit_hit
    returning * into v_ticket;
    answer := jsonb_build_object(
      'ok', false,
      'limit', p_limit,
      'cause', p_cause,
      'retry_after_ms', public.google_ai_ms_until(expected, p_now),
      'retry_at', expected,
      'model', p_model,
      'queue', jsonb_build_object('ticket', v_ticket.ticket_id, 'position', v_ticket.position,
                                  'expected_at', expected, 'priority', p_class));
  end if;
end
$$;
-- ================================================================================================
-- supabase/schemas/45_group_booking.sql
-- ================================================================================================

-- Booking in one quota group: google_ai_book_group counts a request in the group's windows under its
-- counter row's lock (window, day, spread, shares, pace), or says when it may go and why.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- Pacing: each paced share the requester owns must allow one more of the day (usable: the group's
-- day less what the other owners' shares keep). Null: none holds it back; else when the last one
-- allows it: today, else tomorrow (counting what the guard before midnight booked ahead), else later.
CREATE OR REPLACE FUNCTION public.google_ai_paced_until(p_now timestamp with time zone, p_day date, p_rpd integer,
    p_reserved_rpd bigint, p_burst integer[], p_kept integer[], p_used integer[], p_next integer[])
    RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_usable integer;
  v_at timestamptz;
begin
  for i in 1 .. case when p_rpd is null then 0 else coalesce(cardinality(p_burst), 0) end loop
    v_usable := p_rpd - (p_reserved_rpd - p_kept[i]);
    if p_used[i] + 1 > public.google_ai_pace_allowance(p_now, p_day, p_burst[i], v_usable) then
      v_at := greatest(v_at, coalesce(public.google_ai_pace_opens_at(p_day, p_used[i], p_burst[i], v_usable),
                                      public.google_ai_pace_opens_at(p_day + 1, p_next[i], p_burst[i], v_usable),
                                      public.google_ai_pacific_start(p_day + 2)));
    end if;
  end loop;
  return v_at;
end
$$;

-- The booking's verdict, each rule in one place: the day (today's count, and within a guard of
-- midnight the other day's; p_day: {today, ahead, yesterday} with this request not yet counted, p_held
-- the same of what the others' day shares keep), the pace, the window (p_requests and p_tokens with
-- this request counted; p_held_rpm what the others' RPM shares keep), the spread's schedule (named
-- after the limit whose part of the window its step is). outcome: 'booked' or the first that blocks;
-- cause, one meaning each: the day spent or kept by others' shares, a pace, the window full or kept
-- by others' shares, or the request's place in the spread's schedule; window_full: no room in the
-- window for this requester, whatever blocked first. p_model, p_class, p_caller: the request's model row
-- (its limits after the margin), class row and caller, whole (google_ai_request_limits), so a rule here
-- reads a new column of theirs with no signature changed on the way. (PL/pgSQL returning a record: the
-- rules call it as an expression, where a SQL table function is a statement of its own.)
CREATE OR REPLACE FUNCTION public.google_ai_booking_outcome(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_requests integer,
    p_tokens bigint, p_day integer[], p_near_end boolean, p_near_start boolean, p_held_rpm bigint, p_held bigint[],
    p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_spread_limit text,
    OUT outcome text, OUT cause text, OUT window_full boolean) RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  -- The day has no room for this requester (full), or none for anyone (spent).
  v_day_full boolean := p_model.rpd is not null and (p_day[1] + 1 > p_model.rpd - p_held[1]
    or (p_near_end and p_day[2] + 1 > p_model.rpd - p_held[2])
    or (p_near_start and p_day[3] + 1 > p_model.rpd - p_held[3]));
  v_day_spent boolean := p_model.rpd is not null and (p_day[1] + 1 > p_model.rpd
    or (p_near_end and p_day[2] + 1 > p_model.rpd) or (p_near_start and p_day[3] + 1 > p_model.rpd));
  -- The window has no room for this requester, in requests or in tokens.
  v_rpm_full boolean := p_model.rpm is not null and p_requests > p_model.rpm - p_held_rpm;
  v_tpm_full boolean := p_model.tpm is not null and p_tokens > p_model.tpm;
begin
  window_full := v_rpm_full or v_tpm_full;
  if v_day_full then
    outcome := 'rpd';
    cause := case when v_day_spent then 'day_exhausted' else 'share_kept' end;
  elsif p_paced_until is not null then
    outcome := 'pace';
    cause := 'pace';
  elsif window_full then
    outcome := case when v_rpm_full then 'rpm' else 'tpm' end;
    -- (No room for anyone: the window is spent; else the others' shares keep what is left.)
    cause := case when (p_model.rpm is not null and p_requests > p_model.rpm) or v_tpm_full then 'window_full'
                  else 'share_kept' end;
  elsif p_spread_at is not null then
    outcome := p_spread_limit;
    cause := 'spread';
  else
    outcome := 'booked';
  end if;
end
$$;

-- The rules a booking in one group meets. The model's shares as the requester sees them at p_now, in
-- one pass: what the others' shares still keep from it, of the window and of each day
-- google_ai_day_counts names; its own (its class's or its caller's), which a booking counts, and
-- whether one of them still has room in its RPM share (the spread does not hold it then); a share's
-- window is read only where it matters, an owner's only to the spread. Then its pace (paced_until:
-- google_ai_paced_until, when it owns a paced share: usable is the group's day less what the other
-- owners' shares keep), its place in the spread's schedule (spread_at: the schedule holds the request
-- when google_ai_spread_holds says so, unless its own share covers it; spread_step: the schedule's
-- step after a booking) and the verdict (google_ai_booking_outcome). p_requests and p_window_tokens:
-- the window with this request counted; p_counts: the day's counts before it. What a booking writes
-- and answers comes with it: the others' day shares (held_rpd), the model's shares in id order and the
-- requester's own (live, owned: what the counter row's share_use keeps), what the shares keep for its
-- class and for the others (kept, as google_ai_quota_kept reads it). p_model, p_class, p_caller: the
-- request's model row (limits after the margin, spread_burst: google_ai_request_limits), class row and
-- caller; p_counter: the group's counter row as locked (its share_use, its spread_until). Each whole,
-- so a rule reads a new column of theirs with no signature changed on the way.
-- (PL/pgSQL, called as an expression: one statement reads the shares, the rest are expressions.)
CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller,
    p_counter public.google_ai_usage_counters, p_now timestamp with time zone, p_window interval, p_day date,
    p_tokens integer, p_requests integer, p_window_tokens bigint, p_counts integer[], p_near_end boolean,
    p_near_start boolean, OUT outcome text, OUT cause text, OUT window_full boolean,
    OUT paced_until timestamp with time zone, OUT spread_at timestamp with time zone, OUT spread_step interval,
    OUT held_rpd bigint, OUT live bigint[], OUT owned bigint[], OUT kept jsonb) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_class text := p_class.name;
  v_caller text := p_caller.name;
  v_share record;
  v_win integer;                    -- a share's window
  v_reserved_rpd bigint := 0;       -- the day shares of all owners
  v_held_rpm bigint := 0;           -- what the others' shares keep: of the window, and of each day
  v_held bigint[] := '{0,0,0}';
  v_in_share boolean := false;
  v_pace_burst integer[];          -- the requester's paced shares: burst, day share, today's and tomorrow's count
  v_pace_kept integer[];
  v_pace_used integer[];
  v_pace_next integer[];
  v_kept bigint[] := '{0,0,0,0}';   -- kept for the others and for the class: of the window, of the day
  v_step record;
  v_verdict record;
begin
  for v_share in
    select s.id, s.reserved_rpm, coalesce(s.reserved_rpd, 0) as rpd_share, s.pace_burst, u.ring_low, u.ring,
           u.window_requests, coalesce(s.priority_class = v_class, false) as for_class,
           coalesce(s.priority_class = v_class, false) or coalesce(s.caller = v_caller, false) as is_owned,
           public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used, u.day_prev_used, p_day) as day
    from public.google_ai_quota_shares s
    left join unnest(p_counter.share_use) u on u.share_id = s.id
    where s.model = p_model.model
    order by s.id
  loop
    v_win := case when v_share.reserved_rpm is null or (v_share.is_owned and p_model.spread_burst is null) then 0
                  else (public.google_ai_ring_at(p_now, p_window, v_share.ring_low, v_share.ring,
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

  held_rpd := v_held[1];
  if v_class is not null and live is not null then
    kept := public.google_ai_kept_object(p_model.rpm, p_model.rpd, v_kept[1], v_kept[2], v_kept[3], v_kept[4]);
  end if;
  if v_pace_burst is not null then
    paced_until := public.google_ai_paced_until(p_now, p_day, p_model.rpd, v_reserved_rpd, v_pace_burst, v_pace_kept,
      v_pace_used, v_pace_next);
  end if;
  v_step := public.google_ai_spread_step(p_model.spread_burst, p_window, p_model.rpm, p_model.tpm, p_tokens);
  spread_step := v_step.step;
  if v_step.step is not null and not v_in_share and p_counter.spread_until - v_step.tolerance > p_now
     and public.google_ai_spread_holds(p_model.model, p_class.rank, p_now) then
    spread_at := p_counter.spread_until - v_step.tolerance;
  end if;
  v_verdict := public.google_ai_booking_outcome(p_model, p_class, p_caller, p_requests, p_window_tokens, p_counts,
    p_near_end, p_near_start, v_held_rpm, v_held, paced_until, spread_at, v_step.limit_name);
  outcome := v_verdict.outcome;
  cause := v_verdict.cause;
  window_full := v_verdict.window_full;
end
$$;

-- When a refused request may go (reopens_at) and when asking again may help sooner (recheck_at):
-- the day at midnight plus its guard; a request today's count has room for (p_today_fits) was refused
-- by the other day's count within a guard: within the guard before midnight it waits past the next
-- midnight's guard (tomorrow is full too), within the guard after midnight only until that guard ends
-- (yesterday's count stops binding then); the window
-- when it has room for this requester (google_ai_window_reopens_for), sooner if tokens of admissions
-- still in flight come back; a pace or the schedule's place, and the window must have room by then.
-- p_model, p_class, p_caller: whole, as the rules take them (google_ai_booking_rules).
CREATE OR REPLACE FUNCTION public.google_ai_refusal_times(p_outcome text, p_window_full boolean, p_quota_group text,
    p_model public.google_ai_model_limits, p_class public.google_ai_priority_classes,
    p_caller public.google_ai_caller, p_now timestamp with time zone, p_window interval, p_tokens integer,
    p_midnight timestamp with time zone, p_day_guard interval, p_near_end boolean, p_today_fits boolean,
    p_paced_until timestamp with time zone, p_spread_at timestamp with time zone, p_recheck_ms integer,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    AS $$
begin
  if p_outcome = 'rpd' then
    reopens_at := case when not p_today_fits then p_midnight
                       when p_near_end then public.google_ai_pacific_midnight_after(p_midnight)
                       else public.google_ai_pacific_start(public.google_ai_pacific_day(p_now)) end + p_day_guard;
    return;
  end if;
  if p_window_full then
    reopens_at := public.google_ai_window_reopens_for(p_quota_group, p_model.model, p_now, p_window, p_model.rpm,
      p_model.tpm, p_tokens, p_class.name, p_caller.name);
    if p_outcome = 'tpm' and exists (select 1 from public.google_ai_attempts a
                                     where a.quota_group = p_quota_group and a.model = p_model.model
                                       and a.status = 'reserved' and a.admitted_at > p_now - p_window) then
      recheck_at := p_now + p_recheck_ms * interval '1 millisecond';
    end if;
  end if;
  if p_outcome = 'pace' then
    reopens_at := greatest(p_paced_until, reopens_at);
    recheck_at := null;
  elsif p_spread_at is not null then
    reopens_at := greatest(p_spread_at, reopens_at);
    if recheck_at >= reopens_at then
      recheck_at := null;
    end if;
  end if;
end
$$;

-- The quota a booking leaves, as google_ai_group_quota reads it (this request counted): the window's
-- requests and tokens (p_requests, p_tokens) with the times their oldest seconds leave the ring
-- (google_ai_ring_frees_at; now at the latest), and the day's count, the largest of today's and,
-- within a guard of midnight, the other day's (p_day: {today, ahead, yesterday} before this request),
-- until the day resets (p_midnight plus p_day_guard; after midnight, within its guard, when yesterday's
-- count is the larger, that guard's end). p_kept: what the model's shares keep, for the admitted class
-- (as google_ai_answer_quota_at adds it; the booking takes the key out when it is null: a concatenation
-- would encode the whole object again). Inlined into the booking's assignment.
CREATE OR REPLACE FUNCTION public.google_ai_booked_quota(p_model text, p_quota_group text, p_rpm integer,
    p_tpm integer, p_rpd integer, p_now timestamp with time zone, p_requests integer, p_tokens bigint,
    p_ring_low bigint, p_ring integer[], p_window interval, p_day integer[], p_near_end boolean,
    p_near_start boolean, p_today date, p_midnight timestamp with time zone, p_day_guard interval, p_kept jsonb)
    RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select jsonb_build_object(
    'model', p_model,
    'quota_group', p_quota_group,
    'rpm', p_rpm,
    'requests_left', case when p_rpm is not null then greatest(0, p_rpm operator(pg_catalog.-) p_requests) end,
    'requests_reset_ms', case when p_rpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_ring_low, p_ring, p_window), p_now), p_now) end,
    'tpm', p_tpm,
    'tokens_left', case when p_tpm is not null then greatest(0, p_tpm operator(pg_catalog.-) p_tokens) end,
    'tokens_reset_ms', case when p_tpm is not null then public.google_ai_ms_until(
      coalesce(public.google_ai_ring_frees_at(p_ring_low, p_ring, p_window, true), p_now), p_now) end,
    'rpd', p_rpd,
    'day_left', case when p_rpd is not null
                     then greatest(0, p_rpd operator(pg_catalog.-) (greatest(p_day[1],
                                        case when p_near_end then p_day[2] end,
                                        case when p_near_start then p_day[3] end) operator(pg_catalog.+) 1)) end,
    'day_reset_ms', case when p_rpd is not null then public.google_ai_ms_until(
      case when p_near_start and p_day[3] operator(pg_catalog.>) p_day[1] then public.google_ai_pacific_start(p_today)
           else p_midnight end operator(pg_catalog.+) p_day_guard, p_now) end,
    'kept', p_kept)
$$;

-- A quota group's counter row for p_model, locked (created on the group's first use of the model); with
-- p_skip_locked, a row another reservation holds is passed over: all fields null. (A new row, or one
-- housekeeping removed when idle, starts its owners' use again: share_use is on the row.)
CREATE OR REPLACE FUNCTION public.google_ai_counter_locked(p_quota_group text, p_model text, p_skip_locked boolean)
    RETURNS public.google_ai_usage_counters
    LANGUAGE plpgsql
    AS $$
declare
  v_row public.google_ai_usage_counters;
begin
  for i in 1 .. 2 loop
    if p_skip_locked then
      select * into v_row from public.google_ai_usage_counters c
      where c.quota_group = p_quota_group and c.model = p_model for update skip locked;
    else
      select * into v_row from public.google_ai_usage_counters c
      where c.quota_group = p_quota_group and c.model = p_model for update;
    end if;
    exit when found;
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

-- Books one request on a quota group's counter row, or says why not. outcome: 'booked', 'skipped'
-- (the row is locked by someone else and p_skip_locked), or the first limit that blocks: 'rpd',
-- 'pace', 'rpm', 'tpm'; cause names why (google_ai_refusal_cause's list), reopens_at when it may go,
-- recheck_at when asking again may help sooner (tokens of admissions in flight may come back).
-- p_model, p_class, p_caller: the request's model row (limits after the margin), class row and caller,
-- whole, handed to the rules (google_ai_booking_rules). A booking answers with the quota it leaves
-- (as google_ai_group_quota reads it), so the answer needs no second reading of the window. The
-- subtransaction (begin ... exception) gives the row lock back when the row is full, so the caller can
-- move on to the next group without holding it.
CREATE OR REPLACE FUNCTION public.google_ai_book_group(p_quota_group text, p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer,
    p_now timestamp with time zone, p_skip_locked boolean, OUT outcome text,
    OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT reopens_at timestamp with time zone,
    OUT recheck_at timestamp with time zone, OUT cause text, OUT admitted_at timestamp with time zone,
    OUT quota jsonb) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_row public.google_ai_usage_counters;
  v_now timestamptz;
  v_day date;
  v_counts integer[];  -- the day's counts (google_ai_day_counts): today's, ahead for tomorrow, yesterday's
  v_midnight timestamptz;
  v_near_end boolean;
  v_near_start boolean;
  v_ring record;
  v_rules record;      -- what the rules say (google_ai_booking_rules)
begin
  begin
    v_row := public.google_ai_counter_locked(p_quota_group, p_model.model, p_skip_locked);
    if v_row.id is null then
      outcome := 'skipped';
      return;
    end if;

    -- Decided at the time the lock is held; a window, minute or day never moves backwards. The ring
    -- moved on to now with this request counted (written only if it fits).
    v_now := greatest(coalesce(p_now, pg_catalog.clock_timestamp()), v_row.window_at);
    v_day := greatest(public.google_ai_pacific_day(v_now), v_row.day_bucket);
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_midnight := public.google_ai_pacific_midnight_after(v_now);
    v_near_end := v_now >= v_midnight - v_day_guard;
    v_near_start := v_now < public.google_ai_pacific_start(v_day) + v_day_guard;
    v_ring := public.google_ai_ring_at(v_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, v_row.window_tokens, 1, p_tokens);
    v_rules := public.google_ai_booking_rules(p_model, p_class, p_caller, v_row, v_now, v_window, v_day, p_tokens,
      v_ring.sum_requests, v_ring.sum_tokens, v_counts, v_near_end, v_near_start);
    select v_rules.outcome, v_rules.cause, greatest(public.google_ai_minute_window(v_now), v_row.minute_bucket), v_day
      into outcome, cause, minute_bucket, day_bucket;
    if outcome <> 'booked' then
      select r.reopens_at, r.recheck_at into reopens_at, recheck_at
      from public.google_ai_refusal_times(outcome, v_rules.window_full, p_quota_group, p_model, p_class, p_caller,
        v_now, v_window, p_tokens, v_midnight, v_day_guard, v_near_end, p_model.rpd - v_rules.held_rpd > v_counts[1],
        v_rules.paced_until, v_rules.spread_at, v_guard.recheck_ms) r;
      raise exception using errcode = 'P0001', message = 'eve:full';
    end if;

    update public.google_ai_usage_counters c set
      minute_bucket   = google_ai_book_group.minute_bucket,
      day_bucket      = v_day,
      rpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.rpm_used else 0 end
                        + 1,
      tpm_used        = case when c.minute_bucket = google_ai_book_group.minute_bucket then c.tpm_used else 0 end
                        + p_tokens,
      rpd_used        = v_counts[1] + 1,
      rpd_next_used   = v_counts[2] + case when v_near_end then 1 else 0 end,
      rpd_prev_used   = v_counts[3] + case when v_near_start then 1 else 0 end,
      ring_low        = v_ring.ring_low,
      ring            = v_ring.ring,
      window_requests = v_ring.sum_requests,
      window_tokens   = v_ring.sum_tokens,
      window_at       = v_now,
      spread_until    = public.google_ai_spread_next(c.spread_until, v_now, v_rules.spread_step),
      share_use       = case when v_rules.owned is null then c.share_use
                             else public.google_ai_share_use_counted(c.share_use, v_rules.live, v_rules.owned, v_now,
                                    v_window, 1, 1, null, v_day, v_near_end, v_near_start) end,
      updated_at      = v_now
    where c.id = v_row.id;
    admitted_at := v_now;
    -- (The key kept taken out when the shares keep nothing; minus an empty array is the object as it is.)
    quota := public.google_ai_booked_quota(p_model.model, p_quota_group, p_model.rpm, p_model.tpm, p_model.rpd, v_now,
      v_ring.sum_requests, v_ring.sum_tokens, v_ring.ring_low, v_ring.ring, v_window, v_counts, v_near_end,
      v_near_start, v_day, v_midnight, v_day_guard, v_rules.kept)
      - case when v_rules.kept is null then '{kept}' else '{}' end::text[];
  exception
    when sqlstate 'P0001' then
      if sqlerrm <> 'eve:full' then
        raise;
      end if;
      -- outcome, cause, the buckets, reopens_at and recheck_at keep the values set above
  end;
end
$$;
-- ================================================================================================
-- supabase/schemas/50_booking.sql
-- ================================================================================================

-- Booking a request: google_ai_book_best_group tries the groups that may serve the model in rank order,
-- each through google_ai_book_group (45_group_booking.sql) under its counter row's lock.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- Books the request on the best candidate group that fits (p_now: the injected clock or null, for
-- the decision under the lock; p_at: the reservation's time), with the quota it leaves and the key
-- that serves the group (read with the candidates, before the row's lock). Groups cooling down are
-- skipped, and so are groups the unlocked counts of google_ai_candidate_groups already show full.
-- Within a priority tier a group whose row another reservation holds is passed over (SKIP LOCKED) so
-- concurrent callers spread across groups; before moving to a lower tier the passed-over groups are
-- tried again in a second pass, waiting for their locks, so a busy row is never mistaken for a full
-- one. The only group is waited for at once.
-- Unbooked: blocked_by/reopens_at name the earliest reopening, or no_active_key when no group may
-- serve the model; a service caller's budget (google_ai_caller_budgets) spent: caller_budget (its cause
-- budget, or spend_budget for money); booked_usd: the worst case booked in its budget in money.
-- A null model (an earlier step blocked the request) books nothing and answers nulls. p_model, p_class,
-- p_caller: the request's model row (limits after the margin: google_ai_request_limits), class row and
-- caller, each whole and handed down whole to the rules (google_ai_book_group).
CREATE OR REPLACE FUNCTION public.google_ai_book_best_group(p_model public.google_ai_model_limits,
    p_class public.google_ai_priority_classes, p_caller public.google_ai_caller, p_tokens integer,
    p_exclude_key_ids uuid[], p_now timestamp with time zone, p_at timestamp with time zone, p_attempt integer,
    OUT booked_group text,
    OUT minute_bucket timestamp with time zone, OUT day_bucket date, OUT blocked_by text,
    OUT reopens_at timestamp with time zone, OUT recheck_at timestamp with time zone, OUT cause text,
    OUT admitted_at timestamp with time zone, OUT quota jsonb, OUT key_id uuid, OUT key_alias text,
    OUT env_var_name text, OUT booked_usd numeric) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_budget record;   -- a service caller's daily budget (google_ai_caller_budget_at)
  v_candidate record;
  v_skipped text[] := '{}';  -- the groups passed over in a first pass so far
  v_try record;      -- a candidate's answer (google_ai_book_group's, or the refusal its unlocked counts show)
begin
  if p_model.model is null then
    return; -- (an earlier step blocked the request)
  end if;
  -- A service caller's budgets, locked until the booking counts the request in them.
  v_budget := public.google_ai_caller_budget_at(p_caller.name, p_caller.client_id, p_at, p_tokens, p_attempt, p_model);
  if v_budget.cause is not null then
    select 'caller_budget', v_budget.cause, v_budget.reopens_at into blocked_by, cause, reopens_at;
    return;
  end if;

  -- The candidates, best first, each tier twice: the second pass waits for the groups the first passed
  -- over. What their unlocked counts already show (a cooldown, the day or the window full for
  -- everyone) is refused without taking their locks.
  for v_candidate in
    select c.*, p.waiting
    from (select c.*, count(*) over () as groups
          from public.google_ai_candidate_groups(p_model.model, p_exclude_key_ids, p_model.rpm, p_model.tpm,
                 p_model.rpd, p_at) c) c
    cross join (values (false), (true)) p(waiting)
    where not p.waiting or c.groups > 1
    order by c.priority nulls last, p.waiting, c.headroom desc, c.quota_group
  loop
    continue when v_candidate.waiting and not (v_candidate.quota_group = any (v_skipped));
    if v_candidate.full_by is null then
      v_try := public.google_ai_book_group(v_candidate.quota_group, p_model, p_class, p_caller, p_tokens, p_now,
        v_candidate.groups > 1 and not v_candidate.waiting);
      if v_try.outcome = 'booked' then
        select v_candidate.quota_group, v_candidate.key_id, v_candidate.key_alias, v_candidate.env_var_name
          into booked_group, key_id, key_alias, env_var_name;
        -- (After waiting for the row, the key read before the wait must still serve the group.)
        if v_candidate.waiting
           and not public.google_ai_key_serves(p_model.model, p_exclude_key_ids, v_candidate.key_id, booked_group) then
          raise exception 'the keys of quota group % changed during the reservation; retry', booked_group
            using errcode = '40001';
        end if;
        exit;
      elsif v_try.outcome = 'skipped' then
        v_skipped := v_skipped || v_candidate.quota_group;
        continue;
      end if;
    else
      -- (For a requester that others' shares keep slots from, a full window reopens later.)
      select v_candidate.full_by as outcome, public.google_ai_refusal_cause(v_candidate.full_by) as cause,
             case v_candidate.full_by
               when 'cooldown' then v_candidate.cooldown_until
               when 'rpd' then public.google_ai_reopens_at('rpd', p_at)
               else public.google_ai_window_reopens_for(v_candidate.quota_group, p_model.model, p_at,
                 public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
                 p_model.rpm, p_model.tpm, p_tokens, p_class.name, p_caller.name) end as reopens_at,
             null::timestamptz as recheck_at
        into v_try;
    end if;
    -- The earliest reopening wins, with its cause; asking again may help at the earliest recheck.
    if reopens_at is null or v_try.reopens_at < reopens_at then
      select v_try.reopens_at, v_try.outcome, v_try.cause into reopens_at, blocked_by, cause;
    end if;
    recheck_at := least(recheck_at, v_try.recheck_at);
  end loop;
  if not found then
    blocked_by := 'no_active_key';
  elsif booked_group is not null then
    select v_try.minute_bucket, v_try.day_bucket, v_try.admitted_at, v_try.quota, null, null, null, null, v_budget.worst
      into minute_bucket, day_bucket, admitted_at, quota, blocked_by, reopens_at, recheck_at, cause, booked_usd;
    perform public.google_ai_count_caller_budget(p_caller.name, v_budget.day, v_budget.requests, v_budget.tokens,
      v_budget.worst) where v_budget.day is not null;
    return;
  end if;

  cause := coalesce(cause, public.google_ai_refusal_cause(blocked_by));
  -- Asking again only helps before the reopening itself.
  recheck_at := case when recheck_at >= reopens_at then null else recheck_at end;
end
$$;
-- ================================================================================================
-- supabase/schemas/55_claims.sql
-- ================================================================================================

-- Claims: a request id is held by its caller while it is served (the holder's deadlines reply_by and
-- hold_until), answered again from its stored answer (idempotency), and each refusal is logged.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- The attempt row takes the holder's times and identity out of its metadata: the row keeps them; a
-- claim just taken (no holder yet) becomes the admitted invocation's, with its hold_until; a claim its
-- holder still holds is renewed by its holder's statements only, never shortened. A claim nobody
-- holds any more is not revived: a repeat may take it over.
CREATE OR REPLACE FUNCTION public.google_ai_attempt_holder() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_holder jsonb := new.metadata -> '$holder';
  v_now timestamptz := pg_catalog.clock_timestamp();
begin
  new.metadata := new.metadata - '$holder';
  if pg_catalog.jsonb_typeof(v_holder) is distinct from 'object' then
    return new;
  end if;
  new.reply_by := public.google_ai_holder_time(v_holder, 'reply_by');
  new.holder := public.google_ai_holder_id(v_holder);
  -- Never before reply_by; none when the statement names none (then the claim keeps its lease).
  new.hold_until := case when v_holder ? 'hold_until'
                         then greatest(public.google_ai_holder_time(v_holder, 'hold_until'), new.reply_by) end;
  if new.request_id is not null and new.hold_until is not null and new.holder is not null then
    update public.google_ai_responses r set
      expires_at = case when r.holder is null then new.hold_until else greatest(r.expires_at, new.hold_until) end,
      holder = new.holder
    where r.caller = new.caller and r.request_id = new.request_id and r.status = 'in_progress'
      and (r.holder = new.holder or (r.holder is null and new.status = 'reserved'))
      and public.google_ai_claim_held_until(r.caller, r.request_id, r.expires_at, v_now) is not null;
  end if;
  return new;
end
$_$;

-- At commit: a reservation or refusal whose holder stopped waiting is rolled back with everything its
-- statement did (a refusal renews its holder's claim). 57014 (query_canceled) is what a statement
-- timeout raises: the function answers it 503.
CREATE OR REPLACE FUNCTION public.google_ai_attempt_reply_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if pg_catalog.clock_timestamp() > new.reply_by then
    raise exception '% of request % reached its commit after its caller stopped waiting (%); rolled back',
      coalesce('reservation ' || new.reservation_id::text, 'refusal'), new.request_id, new.reply_by
      using errcode = '57014';
  end if;
  return null;
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

-- One time of a '$holder' (null when absent); anything but an ISO timestamp is a clear 22023.
CREATE OR REPLACE FUNCTION public.google_ai_holder_time(p_holder jsonb, p_key text) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if p_holder -> p_key is null then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(p_holder -> p_key) = 'string' then
    begin
      return (p_holder ->> p_key)::timestamptz;
    exception when data_exception then
      null; -- told below
    end;
  end if;
  raise exception 'metadata key $holder is the gateway''s own: its % must be an ISO timestamp', p_key
    using errcode = '22023';
end
$$;

-- The invocation a '$holder' names (null when absent); anything but a uuid is a clear 22023.
CREATE OR REPLACE FUNCTION public.google_ai_holder_id(p_holder jsonb) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
begin
  if p_holder -> 'holder' is null then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(p_holder -> 'holder') = 'string'
     and (p_holder ->> 'holder') ~ '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$' then
    return (p_holder ->> 'holder')::uuid;
  end if;
  raise exception 'metadata key $holder is the gateway''s own: its holder must be a uuid'
    using errcode = '22023';
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
-- taken (or taken over) names no holder until its taker's attempt row, in the same statement, makes
-- it the taker's (google_ai_attempt_holder).
CREATE OR REPLACE FUNCTION public.google_ai_hold_request(p_caller text, p_request_id text, p_model text,
    p_now timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  insert into public.google_ai_responses as r (caller, request_id, status, model, created_at, expires_at, holder)
  values (p_caller, p_request_id, 'in_progress', p_model, p_now, p_now + interval '7 minutes', null)
  on conflict (caller, request_id) do update set
    status = 'in_progress', response = null, model = excluded.model,
    created_at = excluded.created_at, expires_at = excluded.expires_at, holder = null;
end
$$;

-- For a request the caller named with its own request_id: the answer to give instead of reserving,
-- or null to go on. A request id this caller completed within 24 hours is answered from the stored
-- response; one whose earlier call still holds its lease (in flight, or between attempts) is refused
-- as in_progress. The advisory lock serialises concurrent duplicates until the first one's marker
-- (google_ai_hold_request, in the same transaction) is committed.
CREATE OR REPLACE FUNCTION public.google_ai_idempotent_answer(p_caller text, p_request_id text,
    p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_prior public.google_ai_responses;
  v_held_until timestamptz;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(p_caller || '/' || p_request_id, 0));
  select * into v_prior from public.google_ai_responses r
  where r.caller = p_caller and r.request_id = p_request_id;
  if v_prior.status = 'done' and v_prior.created_at > p_now - interval '24 hours' then
    return jsonb_build_object('ok', false, 'limit', 'duplicate', 'cause', 'duplicate', 'response', v_prior.response,
      'retry_after_ms', null, 'retry_at', null);
  elsif v_prior.status = 'in_progress' then
    v_held_until := public.google_ai_claim_held_until(p_caller, p_request_id, v_prior.expires_at, p_now);
    if v_held_until is not null then
      return jsonb_build_object('ok', false, 'limit', 'in_progress', 'cause', 'in_progress',
        'retry_after_ms', greatest(1000, public.google_ai_ms_until(v_held_until, p_now)),
        'retry_at', v_held_until);
    end if;
  end if;
  return null;
end
$$;

CREATE OR REPLACE TRIGGER google_ai_attempts_holder BEFORE INSERT ON public.google_ai_attempts FOR EACH ROW WHEN
    ((new.metadata ? '$holder'::text)) EXECUTE FUNCTION public.google_ai_attempt_holder();

DROP TRIGGER IF EXISTS google_ai_attempts_reply_check ON public.google_ai_attempts;
CREATE CONSTRAINT TRIGGER google_ai_attempts_reply_check AFTER INSERT ON public.google_ai_attempts DEFERRABLE INITIALLY
    DEFERRED FOR EACH ROW WHEN ((new.reply_by IS NOT NULL)) EXECUTE FUNCTION public.google_ai_attempt_reply_check();

CREATE OR REPLACE TRIGGER google_ai_responses_holder_check BEFORE UPDATE ON public.google_ai_responses FOR EACH ROW WHEN
    (((old.status = 'in_progress'::text) AND (new.status = 'done'::text) AND (old.holder IS NOT NULL))) EXECUTE FUNCTION
    public.google_ai_response_holder_check();
-- ================================================================================================
-- supabase/schemas/58_admission.sql
-- ================================================================================================

-- The reservation: one round trip that answers "may this request go to Google now, on which key?".
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
-- ticket), so the generic plan is the one a custom plan would choose.
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- refuse: a request no group takes now waits in line when its turn is likely within its wait
-- (google_ai_queue_wait, for a refusal a wait can end: google_ai_queue_turns names them; its answer is
-- the ticket), else it is answered with its limit, its cause and when to ask again, and logged: one
-- refused row per request and attempt, not one per poll (a WAIT caller asking again, p_wait_ms > 0,
-- updates the row its first refusal wrote during this wait). A ticket it held is given up. Behind a
-- queue, capacity for this caller comes with its turn: the queue's estimate (the likely one, for a
-- lower class), else its turn (the queue's when it was asked, which may be none; else the one its place
-- showed, p_turn_at) or the group's own time, whichever is later.
-- p_model is the model's row (null when the name is unknown; the row then names the model as asked);
-- p_ticket, p_turn, p_since and p_booking_tried are its place (google_ai_queue_place).
CREATE OR REPLACE FUNCTION public.google_ai_refusal_at(p_now timestamp with time zone, p_caller text,
    p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer,
    p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_exclude_key_ids uuid[], p_rpm integer,
    p_rpd integer, p_class text, p_rank smallint, p_limit text, p_cause text, p_reopens_at timestamp with time zone,
    p_recheck_at timestamp with time zone, p_wait_left_ms integer, p_ticket uuid, p_turn bigint,
    p_since timestamp with time zone, p_turn_at timestamp with time zone, p_booking_tried boolean,
    p_new_ticket uuid) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_wait record;
  v_reopens_at timestamptz := p_reopens_at;
  v_recheck_at timestamptz := p_recheck_at;
  v_retry_ms bigint;
begin
  -- In line, when its turn is likely within its wait (nulls when it does not wait).
  select w.* into v_wait from public.google_ai_queue_wait(p_now => p_now, p_model => p_model,
    p_requested_model => p_requested_model, p_rpm => p_rpm, p_rpd => p_rpd, p_exclude_key_ids => p_exclude_key_ids,
    p_caller => p_caller, p_client_id => p_client_id, p_token_id => p_token_id, p_request_id => p_request_id,
    p_tokens => p_estimated_tokens, p_class => p_class, p_rank => p_rank, p_ticket => p_ticket, p_turn => p_turn,
    p_since => p_since, p_new_ticket => p_new_ticket, p_limit => p_limit, p_cause => p_cause,
    p_booking_tried => p_booking_tried, p_reopens_at => p_reopens_at, p_recheck_at => p_recheck_at,
    p_wait_left_ms => p_wait_left_ms) w
  where public.google_ai_queue_turns(p_limit) is not null and coalesce(p_wait_left_ms, 0) > 0;
  if v_wait.answer is not null then
    return v_wait.answer;
  end if;

  -- Not waiting (NO_WAIT, or the turn lies beyond the caller's wait): answered now, with the time.
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_limit in ('rpm', 'tpm') then
    v_reopens_at := coalesce(greatest(v_wait.expected, v_wait.likely_at),
      greatest(case when coalesce(p_wait_left_ms, 0) > 0 then v_wait.turn_at else p_turn_at end, v_reopens_at));
    if v_recheck_at >= v_reopens_at then
      v_recheck_at := null;
    end if;
  end if;
  v_retry_ms := public.google_ai_ms_until(v_reopens_at, p_now);
  if coalesce(p_wait_ms, 0) > 0 and p_request_id is not null then
    update public.google_ai_attempts a set
      limit_hit = p_limit, refusal_cause = p_cause, retry_after_ms = v_retry_ms, wait_ms = p_wait_ms,
      estimated_tokens = p_estimated_tokens
    where a.request_id = p_request_id and a.caller = p_caller and a.attempt = p_attempt
      and a.status = 'refused'
      and a.created_at >= pg_catalog.now() - (p_wait_ms + 60000) * interval '1 millisecond';
  end if;
  if coalesce(p_wait_ms, 0) = 0 or p_request_id is null or not found then
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, p_caller, p_client_id, p_token_id, coalesce(p_model, p_requested_model),
      p_requested_model, p_attempt, p_estimated_tokens, p_limit, p_cause, v_retry_ms, p_wait_ms,
      coalesce(p_metadata, '{}'));
  end if;
  return jsonb_build_object('ok', false, 'limit', p_limit, 'cause', p_cause, 'retry_after_ms', v_retry_ms,
    'retry_at', v_reopens_at, 'model', p_model, 'recheck_after_ms', public.google_ai_ms_until(v_recheck_at, p_now));
end
$$;

-- record the admission: a booked request's attempt row, and the answer from what it holds (the key, its group, the
-- buckets, the class, and the quota the booking leaves when it has one). The ticket it held is done
-- with; an idempotent request's id is held (google_ai_hold_request); a token's budgets count the
-- request (p_count_token: google_ai_count_token_use).
CREATE OR REPLACE FUNCTION public.google_ai_record_admission(p_now timestamp with time zone, p_caller text,
    p_request_id text, p_client_id uuid, p_token_id uuid, p_model text, p_requested_model text, p_attempt integer,
    p_estimated_tokens integer, p_wait_ms integer, p_metadata jsonb, p_class text, p_quota_group text,
    p_key_id uuid, p_key_alias text, p_env_var_name text, p_minute_bucket timestamp with time zone,
    p_day_bucket date, p_admitted_at timestamp with time zone, p_quota jsonb, p_ticket uuid, p_hold boolean,
    p_count_token boolean, p_booked_usd numeric) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_answer jsonb;
  v_booked_usd numeric := p_booked_usd;  -- a service caller's worst case, booked with the quota
begin
  if p_ticket is not null then
    delete from public.google_ai_queue q where q.ticket_id = p_ticket;
  end if;
  if p_count_token then
    v_booked_usd := public.google_ai_count_token_use(p_token_id, p_client_id, p_now, p_attempt, p_estimated_tokens,
      p_model);
  end if;
  if p_hold then
    perform public.google_ai_hold_request(p_caller, p_request_id, p_model, p_now);
  end if;
  -- (One object with the quota in it, and the key taken out when there is none: a concatenation would
  -- encode the whole answer again.)
  insert into public.google_ai_attempts as a (reservation_id, status, request_id, caller, client_id, token_id, model,
    requested_model, attempt, api_key_id, key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens,
    wait_ms, metadata, priority_class, admitted_at, booked_usd)
  values (gen_random_uuid(), 'reserved', p_request_id, p_caller, p_client_id, p_token_id, p_model,
    p_requested_model, p_attempt, p_key_id, p_key_alias, p_quota_group, p_minute_bucket, p_day_bucket,
    p_estimated_tokens, p_wait_ms, coalesce(p_metadata, '{}'), p_class, p_admitted_at, v_booked_usd)
  returning jsonb_build_object('ok', true, 'reservation_id', a.reservation_id, 'key_id', a.api_key_id,
    'key_alias', a.key_alias, 'env_var_name', p_env_var_name, 'quota_group', a.quota_group, 'model', a.model,
    'minute_bucket', a.minute_bucket, 'day_bucket', a.day_bucket, 'priority', a.priority_class, 'quota', p_quota)
  into v_answer;
  if p_quota is null then
    v_answer := v_answer - 'quota';
  end if;
  return v_answer;
end
$$;

-- admit: one request for one model, as a service caller (p_caller; p_client_id when it acts for a
-- client) or with a scoped token (p_token_hash: checked and its budgets booked with the quota, all or
-- nothing, by google_ai_token_verdict_at and google_ai_count_token_use; the client's class bounds the
-- request's; a queued refusal books no budget). The answer of a token's request names its client_id
-- and token_id.
CREATE OR REPLACE FUNCTION public.google_ai_admit_at(p_now timestamp with time zone, p_model text,
    p_estimated_tokens integer, p_caller text, p_request_id text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[],
    p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb,
    p_client_id uuid DEFAULT NULL::uuid, p_token_id uuid DEFAULT NULL::uuid, p_idempotent boolean DEFAULT false,
    p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid,
    p_wait_left_ms integer DEFAULT NULL::integer, p_token_hash text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_answer jsonb;
  v_who jsonb := '{}';       -- a token's client and token, named in every answer
  v_credential record;
  -- The request resolved, each handed whole down the queue and the booking to the rules.
  v_limits public.google_ai_model_limits;   -- the model's row, limits after the margin
  v_class public.google_ai_priority_classes;
  v_caller public.google_ai_caller;
  v_blocked_by text;
  v_place record;            -- the request's place in the queue (google_ai_queue_place), when one is kept
  v_booking record;          -- the booking (google_ai_book_best_group): its group and key, or when to ask again
  -- The id a ticket taken now gets: tickets taken at the same instant are ordered by it.
  v_new_ticket uuid := gen_random_uuid();
begin
  if p_token_hash is not null then
    v_credential := public.google_ai_token_verdict_at(v_now, p_token_hash, p_model, p_estimated_tokens, p_request_id,
      p_attempt, p_wait_ms, p_metadata);
    if v_credential.refusal is not null then
      return v_credential.refusal;
    end if;
    -- The token's client is the caller from here on.
    p_caller := v_credential.caller;
    p_client_id := v_credential.client_id;
    p_token_id := v_credential.token_id;
    v_who := jsonb_build_object('client_id', p_client_id, 'token_id', p_token_id);
  end if;

  if p_idempotent and p_request_id is not null and p_attempt = 1 then
    v_answer := public.google_ai_idempotent_answer(p_caller, p_request_id, v_now);
    if v_answer is not null then
      return v_answer || v_who;
    end if;
  end if;

  -- The request resolved, and the rules on it alone (before any lock): unknown, withdrawn, too large.
  v_limits := public.google_ai_request_limits(p_model);
  v_class := public.google_ai_request_class(p_priority, p_client_id);
  v_caller := row(p_caller, p_client_id, p_token_id);
  v_blocked_by := case when v_limits.model is null then 'unknown_model' when v_limits.withdrawn_at is not null
                       then 'withdrawn' when v_limits.tpm < p_estimated_tokens then 'too_large' end;

  -- Its place in the queue (none when nobody waits for the model and it holds no ticket), then a booking
  -- when its turn allows one; each answers nulls for a null model (an earlier step blocked it). (Called as
  -- expressions: a statement that reads a function sets up a scan even when its condition is false.)
  v_place := public.google_ai_queue_place(case when v_blocked_by is null then v_limits end, v_class, v_caller,
    p_exclude_key_ids, v_now, p_queue_ticket, v_new_ticket);
  if v_place.class is distinct from v_class.name then -- (a ticket keeps the class and rank it was taken in)
    select pc.* into v_class from public.google_ai_priority_classes pc where pc.name = v_place.class;
  end if;
  v_class.rank := coalesce(v_place.rank, v_class.rank);
  v_booking := public.google_ai_book_best_group(
    case when v_blocked_by is null and coalesce(v_place.may_book, true) then v_limits end, v_class, v_caller,
    p_estimated_tokens, p_exclude_key_ids, p_now, v_now, p_attempt);
  v_blocked_by := coalesce(v_blocked_by, v_place.blocked_by, v_booking.blocked_by);

  if v_booking.booked_group is null then
    return public.google_ai_refusal_at(v_now, p_caller, p_request_id, p_client_id, p_token_id, v_limits.model,
      p_model, p_attempt, p_estimated_tokens, p_wait_ms, p_metadata, p_exclude_key_ids, v_limits.rpm, v_limits.rpd,
      v_class.name, v_class.rank, v_blocked_by,
      coalesce(v_place.cause, v_booking.cause, public.google_ai_refusal_cause(v_blocked_by)),
      v_booking.reopens_at, v_booking.recheck_at, p_wait_left_ms, v_place.ticket, v_place.turn, v_place.since,
      v_place.turn_at, coalesce(v_place.may_book, true), v_new_ticket)
      -- How many tokens a minute allows (too large); a withdrawn model's when and successor (if a row says).
      || jsonb_build_object('max_tokens', case when v_blocked_by = 'too_large' then v_limits.tpm end)
      || case when v_blocked_by = 'withdrawn'
              then jsonb_build_object('withdrawn_at', v_limits.withdrawn_at, 'successor', v_limits.successor)
              else '{}' end
      || v_who;
  end if;

  v_answer := public.google_ai_record_admission(v_now, p_caller, p_request_id, p_client_id, p_token_id,
    v_limits.model, p_model, p_attempt, p_estimated_tokens, p_wait_ms, p_metadata, v_class.name,
    v_booking.booked_group, v_booking.key_id, v_booking.key_alias, v_booking.env_var_name, v_booking.minute_bucket,
    v_booking.day_bucket, v_booking.admitted_at, v_booking.quota, v_place.ticket,
    p_idempotent and p_request_id is not null, p_token_hash is not null, v_booking.booked_usd);
  -- (A service caller's answer names no client: it is not encoded again for an empty object.)
  return case when p_token_hash is null then v_answer else v_answer || v_who end;
end
$$;

-- The chain a request tries (google_ai_fall_back_at): its models as asked (names) and canonical
-- (models), each once, and whether each is retired (an inactive row, or unlisted by every checked key
-- of its provider: google_ai_model_unlisted); when every one is, none is (the catalogue may be the one that is wrong).
-- With p_token_hash, the fallbacks the token may not use are left out (the first model is always
-- asked) and the token's client is the caller (caller, client_id, token_id). first: where the chain
-- starts, the model of p_queue_ticket when the request holds one.
CREATE OR REPLACE FUNCTION public.google_ai_fallback_chain(p_models text[], p_token_hash text, p_queue_ticket uuid,
    OUT names text[], OUT models text[], OUT retired boolean[], OUT first integer, OUT caller text,
    OUT client_id uuid, OUT token_id uuid) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_row public.google_ai_model_limits;
  v_name text;
  v_allowed text[];
begin
  select '{}', '{}', '{}', 1 into names, models, retired, first;
  if p_token_hash is not null then
    select t.models, t.id, c.id, 'client:' || c.name into v_allowed, token_id, client_id, caller
    from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id
    where t.token_hash = p_token_hash;
  end if;
  foreach v_name in array p_models loop
    v_row := public.google_ai_model_by_name(v_name);
    continue when coalesce(v_row.model, v_name) = any (models);
    continue when cardinality(models) > 0 and p_token_hash is not null
                  and not (coalesce(v_row.model, v_name) = any (coalesce(v_allowed, '{}')));
    names := names || v_name;
    models := models || coalesce(v_row.model, v_name);
    retired := retired || (v_row.id is not null
                           and (not v_row.is_active
                                or public.google_ai_model_unlisted(v_row.model)));
  end loop;
  if not (false = any (retired)) then
    retired := array_fill(false, array[cardinality(models)]);
  end if;
  if p_queue_ticket is not null then
    first := coalesce(array_position(models,
      (select q.model from public.google_ai_queue q where q.ticket_id = p_queue_ticket)), 1);
  end if;
end
$$;

-- Fallback: the request's models in order, each admitted (google_ai_admit_at) until one serves.
-- p_models: the request's model as the caller named it, then its fallbacks (2 to 4). A service caller
-- passes p_caller; a scoped token passes p_token_hash instead (checked for each model under the
-- token's lock, as for one model). Fallbacks the token may not use are left out; the first model is
-- always asked, so a token that may not use it is refused model_not_allowed.
--
-- With p_queue_ticket, the chain starts at the ticket's model: the models before it could not serve
-- within the wait when the ticket was taken, so the ticket's turn is the request's best chance.
--
-- The answer is google_ai_admit_at's, plus:
--   requested_model  the chain's first model (canonical)
--   fallback_from    each model passed over before the one that answered: {model, limit, retry_after_ms}
-- When every model refuses, the refusal whose capacity comes back first is answered (the first
-- model's when none names a time), with fallback_from listing every model tried.
CREATE OR REPLACE FUNCTION public.google_ai_fall_back_at(p_now timestamp with time zone, p_models text[],
    p_estimated_tokens integer, p_caller text, p_token_hash text, p_request_id text,
    p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0,
    p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text,
    p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  -- Refusals that belong to one model, so another model may still serve: these, and every limit a
  -- caller may wait for in the model's queue (google_ai_queue_turns).
  c_model_limits constant text[] := array['no_active_key', 'too_large', 'unknown_model', 'withdrawn'];
  v_chain record;             -- google_ai_fallback_chain: the models, and a token's caller
  v_try jsonb;
  v_answer jsonb;
  v_refusals jsonb := '[]';   -- every model's refusal, in order
  v_steps jsonb := '[]';      -- {model, limit, retry_after_ms} of each model passed over
  v_best jsonb;
begin
  -- (google_ai_reserve_models_at, its only caller, checked p_models and the caller or token.)
  v_chain := public.google_ai_fallback_chain(p_models, p_token_hash, p_queue_ticket);
  for i in v_chain.first .. cardinality(v_chain.models) loop
    if v_chain.retired[i] then
      v_try := jsonb_build_object('ok', false, 'limit', 'retired', 'cause', 'retired', 'retry_after_ms', null,
        'model', v_chain.models[i]);
    else
      begin
        v_try := public.google_ai_admit_at(p_now => p_now, p_model => v_chain.names[i],
          p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
          p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
          p_metadata => p_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
          p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms, p_token_hash => p_token_hash);
        if not (v_try ->> 'ok')::boolean and not (v_try ? 'queue')
           and ((v_try ->> 'limit') = any (c_model_limits)
                or public.google_ai_queue_turns(v_try ->> 'limit') is not null) then
          raise exception using errcode = 'EF001', message = 'model refused: try the next';
        end if;
        v_answer := v_try; -- admitted, queued, or a refusal no other model can change
      exception when sqlstate 'EF001' then
        null; -- rolled back: no lock, row or ticket change of this model's try is left
      end;
    end if;
    exit when v_answer is not null;

    -- Passed over. A ticket the request held for this model is given up (its turn lay beyond the
    -- wait after all, or the model retired meanwhile).
    if p_queue_ticket is not null then
      delete from public.google_ai_queue q where q.ticket_id = p_queue_ticket and q.model = v_chain.models[i];
    end if;

    v_refusals := v_refusals || jsonb_build_array(v_try);
    v_steps := v_steps || jsonb_build_array(jsonb_build_object('model', v_chain.models[i], 'limit', v_try ->> 'limit',
      'cause', v_try ->> 'cause', 'retry_after_ms', v_try -> 'retry_after_ms'));
    insert into public.google_ai_attempts (status, request_id, caller, client_id, token_id, model, requested_model,
      attempt, estimated_tokens, limit_hit, refusal_cause, retry_after_ms, wait_ms, metadata)
    values ('refused', p_request_id, coalesce(v_chain.caller, p_caller, 'token'), v_chain.client_id,
      v_chain.token_id, v_chain.models[i], p_models[1],
      p_attempt, p_estimated_tokens, v_try ->> 'limit', v_try ->> 'cause', (v_try ->> 'retry_after_ms')::bigint,
      p_wait_ms, coalesce(p_metadata, '{}'));
  end loop;

  if v_answer is not null then
    if (v_answer ->> 'model') is distinct from v_chain.models[1] then
      -- The rows of a fallback name the model the request asked for.
      if (v_answer ->> 'ok')::boolean then
        update public.google_ai_attempts a set requested_model = p_models[1]
        where a.reservation_id = (v_answer ->> 'reservation_id')::uuid;
      elsif v_answer ? 'queue' then
        update public.google_ai_queue q set requested_model = p_models[1]
        where q.ticket_id = (v_answer -> 'queue' ->> 'ticket')::uuid;
      end if;
    end if;
    return v_answer || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
  end if;

  -- Every model refused: answer with the one whose capacity comes back first.
  select r.value into v_best from jsonb_array_elements(v_refusals) with ordinality r(value, i)
  order by (r.value ->> 'retry_at')::timestamptz nulls last, (r.value ->> 'limit' = 'retired'), r.i
  limit 1;
  return v_best || jsonb_build_object('requested_model', v_chain.models[1], 'fallback_from', v_steps);
end
$$;

-- The one reservation entry: the models as an array (a single model is an array of one, a chain
-- its models in order) and either a caller (a service caller's label) or a token hash. One model
-- is admitted by google_ai_admit_at, a chain by google_ai_fall_back_at; the answer is theirs,
-- unchanged. The holder's deadlines and identity
-- (reply_by, hold_until, holder: llm-invoke's store/holder.ts) reach the attempt row's trigger
-- (google_ai_attempt_holder) under the metadata key '$holder', which they overwrite; the statement's
-- reply_by also holds for a queue ticket it takes (the transaction's setting google_ai.reply_by).
-- The clock is injected (p_now; null: the transaction's own clock): the test seam. Owner only.
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models_at(p_now timestamp with time zone, p_models text[],
    p_estimated_tokens integer, p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text,
    p_request_id text DEFAULT NULL::text, p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1,
    p_wait_ms integer DEFAULT 0, p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false,
    p_priority text DEFAULT NULL::text, p_queue_ticket uuid DEFAULT NULL::uuid,
    p_wait_left_ms integer DEFAULT NULL::integer,
    p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_holder uuid DEFAULT NULL::uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $_$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}');
begin
  if p_models is null or cardinality(p_models) = 0 or cardinality(p_models) > 4 then
    raise exception 'p_models must name 1 to 4 models' using errcode = '22023';
  end if;
  if (p_caller is null) = (p_token_hash is null) then
    raise exception 'pass exactly one of p_caller and p_token_hash' using errcode = '22023';
  end if;
  if p_caller = '' or array_position(p_models, null) is not null or array_position(p_models, '') is not null then
    raise exception 'p_caller and p_models may not be empty' using errcode = '22023';
  end if;
  if p_estimated_tokens is null or p_estimated_tokens < 0 then
    raise exception 'p_estimated_tokens must be a non-negative integer' using errcode = '22023';
  end if;
  if p_reply_by is not null then
    v_metadata := v_metadata || pg_catalog.jsonb_build_object('$holder', pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('reply_by', p_reply_by, 'hold_until', p_hold_until, 'holder', p_holder)));
  end if;
  -- The statement's reply_by, for a queue ticket it takes or moves (google_ai_queue_reply_check).
  perform pg_catalog.set_config('google_ai.reply_by', coalesce(case
    when pg_catalog.jsonb_typeof(v_metadata -> '$holder') = 'object'
    then public.google_ai_holder_time(v_metadata -> '$holder', 'reply_by')::text end, ''), true);
  if cardinality(p_models) > 1 then
    return public.google_ai_fall_back_at(p_now => p_now, p_models => p_models,
      p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_token_hash => p_token_hash,
      p_request_id => p_request_id, p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt,
      p_wait_ms => p_wait_ms, p_metadata => v_metadata, p_idempotent => p_idempotent,
      p_priority => p_priority, p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms);
  end if;
  return public.google_ai_admit_at(p_now => p_now, p_model => p_models[1],
    p_estimated_tokens => p_estimated_tokens, p_caller => p_caller, p_request_id => p_request_id,
    p_exclude_key_ids => p_exclude_key_ids, p_attempt => p_attempt, p_wait_ms => p_wait_ms,
    p_metadata => v_metadata, p_idempotent => p_idempotent, p_priority => p_priority,
    p_queue_ticket => p_queue_ticket, p_wait_left_ms => p_wait_left_ms, p_token_hash => p_token_hash);
end
$_$;

-- What llm-invoke calls: google_ai_reserve_models_at on the transaction's own clock. (PL/pgSQL, not
-- SQL: a SQL function with SET clauses is planned again on every call; this keeps its plan.)
CREATE OR REPLACE FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer,
    p_caller text DEFAULT NULL::text, p_token_hash text DEFAULT NULL::text, p_request_id text DEFAULT NULL::text,
    p_exclude_key_ids uuid[] DEFAULT '{}'::uuid[], p_attempt integer DEFAULT 1, p_wait_ms integer DEFAULT 0,
    p_metadata jsonb DEFAULT '{}'::jsonb, p_idempotent boolean DEFAULT false, p_priority text DEFAULT NULL::text,
    p_queue_ticket uuid DEFAULT NULL::uuid, p_wait_left_ms integer DEFAULT NULL::integer,
    p_reply_by timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_hold_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_holder uuid DEFAULT NULL::uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
begin
  return public.google_ai_reserve_models_at(null, p_models, p_estimated_tokens, p_caller, p_token_hash, p_request_id,
    p_exclude_key_ids, p_attempt, p_wait_ms, p_metadata, p_idempotent, p_priority, p_queue_ticket, p_wait_left_ms,
    p_reply_by, p_hold_until, p_holder);
end
$$;
-- ================================================================================================
-- supabase/schemas/60_life_cycle.sql
-- ================================================================================================

-- A request's life after its reservation: finalize (tokens, outcome, 429 causes and cooldowns,
-- token_usage), a cut stream, a withdrawn model, release, and the end of an idempotent request.
-- Bodies are checked when called, not when created: a function may name one defined further down.
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
-- model, or for a spend cap every active model row the group's keys serve (their provider's; a key's
-- `models`, null: all of them) and the attempt's own model, a row or not. A row keeps the cause of
-- whichever rest ends later.
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
    'Finalize''s cooldown: one model, or for a spend cap or money (google_ai_quota_causes(true)) every active '
    'model the quota group''s keys serve.';

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

-- What a success leaves beside its attempt row (p_att, just finalized): its response (p_response,
-- when given and the caller sent its own request_id) kept for replay in place of the request's
-- in-flight marker, and the bot's token_usage row with Google's counts. One step of finalize, taken
-- for a success only (a cut stream is one too: google_ai_finalize_cut finalizes it as a success first).
CREATE OR REPLACE FUNCTION public.google_ai_record_success(p_att public.google_ai_attempts, p_input_tokens integer,
    p_output_tokens integer, p_response jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if p_response is not null and p_att.request_id is not null then
    insert into public.google_ai_responses as r (caller, request_id, status, model, response, created_at, expires_at)
    values (p_att.caller, p_att.request_id, 'done', p_att.model, p_response, now(), null)
    on conflict (caller, request_id) do update set
      status = 'done', model = excluded.model, response = excluded.response,
      created_at = excluded.created_at, expires_at = null;
  end if;

  insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, meta)
  values (p_att.model, p_input_tokens, p_output_tokens,
    coalesce(p_input_tokens, 0) + coalesce(p_output_tokens, 0),
    coalesce(p_att.request_id, p_att.reservation_id::text),
    jsonb_build_object('source', 'eve-llm-gateway', 'caller', p_att.caller, 'key_alias', p_att.key_alias,
      'attempt', p_att.attempt, 'reservation_id', p_att.reservation_id));
end
$$;

-- Finalize's accounting of one call, after its row is written: the rest the provider's own counts ask
-- for, then the admission settled at the provider's count (the counter row, the hot one, last).
--   Room: what the provider says is left of the group's limits (OpenAI's x-ratelimit-remaining-*,
--   which count every user of the organization). When no more is left than twice this group's
--   admissions of the model still on their way (those, and as many again admitted before this rest
--   lands), the model rests until the provider's counts are full again (p_room_until, reason
--   'provider_room'), so the gateway waits instead of meeting the provider's 429s.
--   Count: the input, and the output too where the model's TPM counts answers (its row's
--   booked_output_tokens, OpenAI's rule). When the provider sent none: p_settled_tokens (a call it
--   refused before generating keeps its input, its output booking goes back), else the booking stays.
CREATE OR REPLACE FUNCTION public.google_ai_settle_call(p_att public.google_ai_attempts, p_input_tokens integer,
    p_output_tokens integer, p_room_requests integer, p_room_tokens integer,
    p_room_until timestamp with time zone, p_settled_tokens integer) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  -- The clock read once, into a variable: a bound the window's index can hold (clock_timestamp() in the
  -- statement itself is volatile, so every row of the group's log would be read to test it).
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_flying integer;
  v_flying_tokens bigint;
  v_counted integer;
begin
  if p_room_until > v_now and p_att.quota_group is not null then
    select count(*), coalesce(sum(a.estimated_tokens), 0) into v_flying, v_flying_tokens
    from public.google_ai_attempts a
    where a.quota_group = p_att.quota_group and a.model = p_att.model
      and a.admitted_at > v_now - interval '5 minutes' and a.status = 'reserved';
    if p_room_requests <= 2 * v_flying or p_room_tokens <= 2 * v_flying_tokens then
      perform public.google_ai_cooldown_for_cause(p_att.quota_group, p_att.model, p_room_until, 'minute',
        'provider_room', null);
    end if;
  end if;

  v_counted := p_input_tokens + case when exists (select 1 from public.google_ai_model_limits l
    where l.model = p_att.model and l.booked_output_tokens is not null) then coalesce(p_output_tokens, 0) else 0 end;
  v_counted := coalesce(v_counted, least(p_settled_tokens, p_att.estimated_tokens));
  -- A client's spend takes the call's cost in place of the worst case it booked (an unknown cost keeps it).
  if v_counted is not null and v_counted <> p_att.estimated_tokens or p_att.booked_usd is not null
     or p_att.cost_usd is not null then
    perform public.google_ai_adjust_token_budget(p_att, 0, coalesce(v_counted - p_att.estimated_tokens, 0),
      coalesce(p_att.cost_usd, p_att.booked_usd, 0) - coalesce(p_att.booked_usd, 0));
  end if;
  -- The window learns the provider's count now: waiters asking again see the tokens given back.
  perform public.google_ai_settle_admission(p_att, greatest(0, coalesce(v_counted, p_att.estimated_tokens)), false);
end
$$;

-- Finalize: record the outcome of the call to the provider and settle its admission at the provider's
-- count (google_ai_settle_admission): input tokens, and output too where the model's TPM counts it
-- (without the provider's count: p_settled_tokens, what a refusal keeps; else the booking). A
-- success also lands in token_usage, and its response (when given: the caller sent its own request_id)
-- is kept for replay (google_ai_record_success). Optionally cools the group down (the provider's 429)
-- in the same round trip.
CREATE OR REPLACE FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text,
    p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer,
    p_http_status integer DEFAULT NULL::integer, p_error_code text DEFAULT NULL::text,
    p_quota_id text DEFAULT NULL::text, p_error_message text DEFAULT NULL::text,
    p_latency_ms integer DEFAULT NULL::integer,
    p_cooldown_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_cooldown_until_pacific_midnight boolean DEFAULT false, p_response jsonb DEFAULT NULL::jsonb,
    p_key_rejected boolean DEFAULT NULL::boolean, p_quota_cause text DEFAULT NULL::text,
    p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text,
    p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer,
    p_room_requests integer DEFAULT NULL::integer, p_room_tokens integer DEFAULT NULL::integer,
    p_room_until timestamp with time zone DEFAULT NULL::timestamp with time zone,
    p_settled_tokens integer DEFAULT NULL::integer, p_cached_input_tokens integer DEFAULT NULL::integer,
    p_thinking_tokens integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_att public.google_ai_attempts;
  v_until timestamptz;
begin
  -- google_error: upstream_error's former name, taken until the next release (a finalize logged
  -- before it replays) and written as upstream_error.
  if p_outcome not in ('succeeded', 'upstream_error', 'network_error', 'timeout', 'google_error') then
    raise exception 'p_outcome must be succeeded, upstream_error, network_error or timeout' using errcode = '22023';
  end if;
  if not (p_quota_cause = any (public.google_ai_quota_causes())) then
    raise exception 'p_quota_cause must be one of %', array_to_string(public.google_ai_quota_causes(), ', ')
      using errcode = '22023';
  end if;

  update public.google_ai_attempts a set
    status = case p_outcome when 'google_error' then 'upstream_error' else p_outcome end,
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
    first_byte_ms = case when p_first_byte_ms is not null then greatest(0, p_first_byte_ms) end,
    cached_input_tokens = p_cached_input_tokens,
    thinking_tokens = p_thinking_tokens,
    cost_usd = public.google_ai_call_cost(a.model, p_service_tier, p_served_tier, p_outcome, p_input_tokens,
      p_cached_input_tokens, p_output_tokens, p_thinking_tokens)
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  -- Rows nobody holds for long first; the counter row (the hot one) last, so nothing this call might
  -- wait for (a housekeeping run holding a cooldown or a response row) keeps the counter locked.
  if p_outcome = 'succeeded' then
    perform public.google_ai_record_success(v_att, p_input_tokens, p_output_tokens, p_response);
  end if;

  -- The provider says the key itself is no good: take it out of rotation now (with the reason, never
  -- deleted), rather than let every request spend an attempt on it until the next health check.
  if coalesce(p_key_rejected, p_error_code = 'API_KEY_INVALID') and v_att.api_key_id is not null then
    update public.google_ai_api_keys k set
      is_active = false,
      disabled_reason = (select p.display_name from public.google_ai_providers p where p.name = k.serves_provider)
        || ' rejected the key (' || coalesce(left(p_error_code, 100), 'no reason given') || ') on a call',
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
  perform public.google_ai_settle_call(v_att, p_input_tokens, p_output_tokens, p_room_requests, p_room_tokens,
    p_room_until, p_settled_tokens);

  return jsonb_build_object('ok', true, 'status', v_att.status, 'cooldown_until', v_until);
end
$$;

-- Google billed what it streamed: the call is finalized like a success (tokens reconciled with
-- Google's last count, token_usage written, no stored answer), then marked 'cut' with who cut it
-- ('client': the caller went away; 'upstream': the stream broke off on the provider's side; 'google',
-- upstream's former name, is taken until the next release, so a finalize logged before it replays).
CREATE OR REPLACE FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text,
    p_input_tokens integer DEFAULT NULL::integer, p_output_tokens integer DEFAULT NULL::integer,
    p_latency_ms integer DEFAULT NULL::integer, p_error_message text DEFAULT NULL::text,
    p_service_tier text DEFAULT NULL::text, p_served_tier text DEFAULT NULL::text,
    p_added_ms integer DEFAULT NULL::integer, p_first_byte_ms integer DEFAULT NULL::integer,
    p_cached_input_tokens integer DEFAULT NULL::integer, p_thinking_tokens integer DEFAULT NULL::integer)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_answer jsonb;
begin
  if p_cut_by not in ('client', 'upstream', 'google') then
    raise exception 'p_cut_by must be client or upstream' using errcode = '22023';
  end if;
  v_answer := public.google_ai_finalize(
    p_reservation_id => p_reservation_id, p_outcome => 'succeeded', p_input_tokens => p_input_tokens,
    p_output_tokens => p_output_tokens, p_http_status => 200, p_latency_ms => p_latency_ms,
    p_service_tier => p_service_tier, p_served_tier => p_served_tier, p_added_ms => p_added_ms,
    p_first_byte_ms => p_first_byte_ms, p_cached_input_tokens => p_cached_input_tokens,
    p_thinking_tokens => p_thinking_tokens);
  if not coalesce((v_answer ->> 'ok')::boolean, false) then
    return v_answer;
  end if;
  update public.google_ai_attempts a set
    status = 'cut',
    error_code = 'stream_cut_by_' || p_cut_by,
    error_message = left(p_error_message, 1000)
  where a.reservation_id = p_reservation_id;
  return jsonb_build_object('ok', true, 'status', 'cut');
end
$$;

-- One transaction: the attempt row says 'withdrawn' (Google's status, code and sanitized message,
-- the call's latency), the reservation's capacity is given back as google_ai_release gives it (the
-- admission leaves the minute window and the day; the estimated tokens go back to a token's budget,
-- its request stays counted: the same request goes on to its chain's next model as a later attempt),
-- and the model row is marked withdrawn — once: a row already marked keeps the first time and
-- message. A reservation that is not open (finalized or released before) changes nothing and is
-- answered as google_ai_release answers it.
CREATE OR REPLACE FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer DEFAULT 404,
    p_error_code text DEFAULT 'NOT_FOUND'::text, p_error_message text DEFAULT NULL::text,
    p_latency_ms integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_att public.google_ai_attempts;
  v_message text := left(public.google_ai_sanitize_error(p_error_message), 1000);
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_marked boolean;
begin
  update public.google_ai_attempts a set
    status = 'withdrawn',
    finished_at = v_now,
    http_status = p_http_status,
    error_code = left(p_error_code, 200),
    error_message = v_message,
    latency_ms = p_latency_ms
  where a.reservation_id = p_reservation_id and a.status = 'reserved'
  returning * into v_att;

  if not found then
    return public.google_ai_not_open(p_reservation_id);
  end if;

  perform public.google_ai_adjust_token_budget(v_att, 0, -v_att.estimated_tokens, -v_att.booked_usd);
  perform public.google_ai_settle_admission(v_att, 0, true);

  -- Google's message may name a replacement ("… use models/X"): the first other model it names is kept
  -- as its suggestion. The only sentence read here, and only for the operator to see.
  update public.google_ai_model_limits l set withdrawn_at = v_now, withdrawn_message = v_message,
    google_successor = (select pg_catalog.lower(pg_catalog.rtrim(m[1], '.'))
                        from pg_catalog.regexp_matches(v_message, 'models/([A-Za-z0-9][A-Za-z0-9._-]{0,99})', 'g') m
                        where pg_catalog.lower(pg_catalog.rtrim(m[1], '.')) <> pg_catalog.lower(v_att.model)
                        limit 1)
  where l.model = v_att.model and l.withdrawn_at is null;
  v_marked := found;

  return jsonb_build_object('ok', true, 'status', 'withdrawn', 'model', v_att.model, 'marked', v_marked,
    'successor', (select l.successor from public.google_ai_model_limits l where l.model = v_att.model));
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

  perform public.google_ai_adjust_token_budget(v_att, case when v_att.attempt = 1 then -1 else 0 end,
    -v_att.estimated_tokens, -v_att.booked_usd);
  perform public.google_ai_settle_admission(v_att, 0, true);

  return jsonb_build_object('ok', true, 'status', 'released');
end
$$;
-- ================================================================================================
-- supabase/schemas/80_quota_visibility.sql
-- ================================================================================================

-- Quota you can see: what a reservation's answer carries (google_ai_answer_quota, read in the
-- reservation's own statement) and the quota route's report per model and credential.
-- Bodies are checked when called, not when created: a function may name one defined further down.
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
  v_limits record;
  v_group text;
  v_quota record;
  v_class text;
  v_kept jsonb := '{}';
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

  if p_answer -> 'ok' = 'true'::jsonb then
    v_group := p_answer ->> 'quota_group';
    select * into v_quota
    from public.google_ai_group_quota(v_group, v_limits.model, v_limits.rpm, v_limits.tpm, v_limits.rpd, v_now) q;
  else
    select g.quota_group, q.* into v_quota
    from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, p_exclude_key_ids) s) g
    cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                     v_limits.rpd, v_now) q
    order by q.ready_at, q.requests_left desc nulls last, q.day_left desc nulls last, g.quota_group
    limit 1;
    if not found then
      return null;
    end if;
    v_group := v_quota.quota_group;
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
    'requests_reset_ms', case when v_limits.rpm is not null
                              then public.google_ai_ms_until(v_quota.requests_reset_at, v_now) end,
    'tpm', v_limits.tpm,
    'tokens_left', v_quota.tokens_left,
    'tokens_reset_ms', case when v_limits.tpm is not null
                            then public.google_ai_ms_until(v_quota.tokens_reset_at, v_now) end,
    'rpd', v_limits.rpd,
    'day_left', v_quota.day_left,
    'day_reset_ms', case when v_limits.rpd is not null
                         then public.google_ai_ms_until(v_quota.day_reset_at, v_now) end)
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

-- The cause of the model's cooldown that ends first among the quota groups resting for it (the one
-- a refusal's retry_after_ms is about); null: none rests, or its rest has no cause recorded.
CREATE OR REPLACE FUNCTION public.google_ai_cooldown_cause(p_model text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  return (
    select c.cause
    from public.google_ai_cooldowns c
    where c.model = coalesce((public.google_ai_resolve_model(p_model)).model, p_model)
      and c.cooldown_until > pg_catalog.clock_timestamp()
    order by c.cooldown_until, c.quota_group
    limit 1);
end
$$;

COMMENT ON FUNCTION public.google_ai_cooldown_cause(p_model text) IS
    'Why a model''s first-ending cooldown rests (a quota cause: docs/google-429s.md): read in the reservation''s '
    'statement when it refuses with limit cooldown.';

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
  v_guard public.google_ai_admission_settings := public.google_ai_admission_guard();
  v_window interval := public.google_ai_window_length(v_guard.minute_guard_ms);
  v_day_guard interval := v_guard.day_guard_ms * interval '1 millisecond';
  v_ring record;
  v_row public.google_ai_usage_counters;
  v_day date := public.google_ai_pacific_day(p_now);
  v_midnight timestamptz := public.google_ai_pacific_midnight_after(p_now);
  v_day_start timestamptz;
  v_counts integer[];
  v_used integer;
  v_next integer;
  v_prev integer;
  v_near_end boolean;
  v_near_start boolean;
begin
  select cd.cooldown_until into cooldown_until from public.google_ai_cooldowns cd
  where cd.quota_group = p_quota_group and cd.model = p_model and cd.cooldown_until > p_now;

  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = p_model;

  -- The minute, counted as google_ai_book_group counts it: the ring moved on to p_now; the next to
  -- leave the window are its oldest seconds.
  if p_rpm is not null or p_tpm is not null then
    v_ring := public.google_ai_ring_at(p_now, v_window, v_row.ring_low, v_row.ring,
      v_row.window_requests, coalesce(v_row.window_tokens, 0));
    if p_rpm is not null then
      requests_left := greatest(0, p_rpm - v_ring.sum_requests);
      requests_reset_at := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window), p_now);
    end if;
    if p_tpm is not null then
      tokens_left := greatest(0, p_tpm - v_ring.sum_tokens);
      tokens_reset_at := coalesce(public.google_ai_ring_frees_at(v_ring.ring_low, v_ring.ring, v_window, true),
        p_now);
    end if;
  end if;

  -- The day, read as google_ai_book_group reads it (google_ai_day_counts): within the guard of a
  -- midnight the other day's count binds too.
  if p_rpd is not null then
    v_counts := public.google_ai_day_counts(v_row.day_bucket, v_row.rpd_used, v_row.rpd_next_used,
      v_row.rpd_prev_used, v_day);
    v_used := v_counts[1]; v_next := v_counts[2]; v_prev := v_counts[3];
    v_day_start := public.google_ai_pacific_start(v_day);
    v_near_end := p_now >= v_midnight - v_day_guard;
    v_near_start := p_now < v_day_start + v_day_guard;
    day_left := greatest(0, p_rpd - greatest(coalesce(v_used, 0),
                                             case when v_near_end then coalesce(v_next, 0) else 0 end,
                                             case when v_near_start then coalesce(v_prev, 0) else 0 end));
    day_reset_at := case when v_near_start and coalesce(v_prev, 0) > coalesce(v_used, 0)
                         then v_day_start + v_day_guard
                         else v_midnight + v_day_guard end;
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
    if p_rpd is not null and cooldown_until >= v_midnight then
      day_left := 0; -- Google's per-day refusal: the cooldown lasts until the Pacific midnight
    end if;
  end if;

  ready_at := greatest(p_now, cooldown_until,
                       case when requests_left = 0 then requests_reset_at end,
                       case when tokens_left = 0 then tokens_reset_at end,
                       case when day_left = 0 then day_reset_at end);
end
$$;

-- What one quota group has of a model now, as the admission counts it (google_ai_group_quota on the
-- model's effective limits, at the database's clock): the requests and tokens in the sliding window,
-- and what the next request could book (0 while a cooldown rests the group). The usage view's figures
-- (google_ai_usage_now); callable by service_role, which may not give google_ai_group_quota a clock.
CREATE OR REPLACE FUNCTION public.google_ai_group_room(p_quota_group text, p_model text, OUT requests_used integer,
    OUT tokens_used bigint, OUT requests_left integer, OUT tokens_left bigint, OUT day_left integer,
    OUT window_frees_at timestamp with time zone, OUT ready_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_limits record;
  v_row public.google_ai_usage_counters;
  v_ring record;
  v_quota record;
begin
  select public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
         public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
         public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
  into v_limits from public.google_ai_model_limits l where l.model = p_model;
  select * into v_row from public.google_ai_usage_counters c
  where c.quota_group = p_quota_group and c.model = p_model;
  v_ring := public.google_ai_ring_at(v_now,
    public.google_ai_window_length((public.google_ai_admission_guard()).minute_guard_ms),
    v_row.ring_low, v_row.ring, v_row.window_requests, coalesce(v_row.window_tokens, 0));
  requests_used := coalesce(v_ring.sum_requests, 0);
  tokens_used := coalesce(v_ring.sum_tokens, 0);
  select * into v_quota from public.google_ai_group_quota(p_quota_group, p_model, v_limits.rpm, v_limits.tpm,
    v_limits.rpd, v_now);
  requests_left := v_quota.requests_left;
  tokens_left := v_quota.tokens_left;
  day_left := v_quota.day_left;
  window_frees_at := least(v_quota.requests_reset_at, v_quota.tokens_reset_at);
  ready_at := v_quota.ready_at;
end
$$;

-- p_show_groups: the quota groups' names (Google project ids, key:<uuid>) are the operator's; a
-- scoped token's caller sees each cooldown's cause and end, not whose project rests.
CREATE OR REPLACE FUNCTION public.google_ai_model_cooldowns(p_model text, p_now timestamp with time zone,
    p_show_groups boolean) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'quota_group', c.quota_group,
           'cause', c.cause,
           'cooldown_until', c.cooldown_until,
           'retry_after_ms', public.google_ai_ms_until(c.cooldown_until, p_now))
           - case when p_show_groups then '' else 'quota_group' end
         order by c.cooldown_until, c.quota_group), '[]')
  from public.google_ai_cooldowns c
  where c.model = p_model and c.cooldown_until > p_now
$$;

-- One model over all quota groups that may serve it: what is left of the minute (groups cooling
-- down count 0) and of the Pacific day, when each sum next grows, and the queue per class.
CREATE OR REPLACE FUNCTION public.google_ai_model_quota(p_model text, p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_limits record;
  v_sum record;
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
         min(q.day_reset_at) as day_reset_at
    into v_sum
  from (select distinct s.quota_group from public.google_ai_serving_keys(v_limits.model, '{}') s) g
  cross join lateral public.google_ai_group_quota(g.quota_group, v_limits.model, v_limits.rpm, v_limits.tpm,
                                                   v_limits.rpd, p_now) q;

  select coalesce(jsonb_object_agg(pc.name, (
           select count(*) from public.google_ai_queue w
           where w.model = v_limits.model and w.priority_class = pc.name and w.lease_until >= p_now)
), '{}')
    into v_queue
  from public.google_ai_priority_classes pc;

  return jsonb_build_object(
    'model', v_limits.model,
    'limits', jsonb_build_object('rpm', v_limits.rpm, 'tpm', v_limits.tpm, 'rpd', v_limits.rpd),
    'quota_groups', v_sum.groups,
    'cooling_down', v_sum.cooling,
    'minute', jsonb_build_object(
      'requests_left', case when v_limits.rpm is not null then coalesce(v_sum.requests_left, 0) end,
      'requests_reset_ms', case when v_limits.rpm is not null
                                then public.google_ai_ms_until(coalesce(v_sum.requests_reset_at, p_now), p_now) end,
      'tokens_left', case when v_limits.tpm is not null then coalesce(v_sum.tokens_left, 0) end,
      'tokens_reset_ms', case when v_limits.tpm is not null
                              then public.google_ai_ms_until(coalesce(v_sum.tokens_reset_at, p_now), p_now) end),
    'day', jsonb_build_object(
      'requests_left', case when v_limits.rpd is not null then coalesce(v_sum.day_left, 0) end,
      'resets_at', case when v_limits.rpd is not null then v_sum.day_reset_at end,
      'reset_ms', case when v_limits.rpd is not null and v_sum.day_reset_at is not null
                       then public.google_ai_ms_until(v_sum.day_reset_at, p_now) end),
    'queue', v_queue);
end
$$;

-- The quota report's `models`: each active model the caller may use (p_models; null: every one), in
-- model order, with its `provider`, the minute and the day over all its quota groups and its queue
-- (google_ai_model_quota), its `cooldowns` (google_ai_model_cooldowns) and `kept` (what its shares keep
-- for others and for the requester of class p_class and caller p_caller, google_ai_quota_kept).
-- A step of its own: the report's body says who asks; this, what each model has left for them.
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_models(p_now timestamp with time zone, p_models text[],
    p_show_groups boolean, p_class text, p_caller text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(public.google_ai_model_quota(l.model, p_now)
                   || jsonb_build_object('provider', l.provider,
                        'cooldowns', public.google_ai_model_cooldowns(l.model, p_now, p_show_groups),
                        'kept', public.google_ai_quota_kept(l.model,
                          public.google_ai_effective_limit(l.rpm, l.safety_margin),
                          public.google_ai_effective_limit(l.rpd, l.safety_margin), p_class, p_caller))
                   order by l.model), '[]')
  from public.google_ai_model_limits l
  where l.is_active and (p_models is null or l.model = any (p_models))
$$;

-- The quota report's `withdrawn`: the models their provider withdrew among those the caller may use
-- (p_models; null: every one), in model order: which provider, when, its message, the successors, the
-- shutdown date.
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_withdrawn(p_models text[]) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'model', l.model,
           'provider', l.provider,
           'withdrawn_at', l.withdrawn_at,
           'withdrawn_message', l.withdrawn_message,
           'successor', l.successor,
           'google_successor', l.google_successor,
           'shutdown_date', l.shutdown_date)
         order by l.model), '[]')
  from public.google_ai_model_limits l
  where l.withdrawn_at is not null and (p_models is null or l.model = any (p_models))
$$;

CREATE OR REPLACE FUNCTION public.google_ai_quota_report(p_token_hash text DEFAULT NULL::text,
    p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select public.google_ai_quota_report_at(null, p_token_hash, p_caller) $$;

COMMENT ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) IS
    'GET llm-invoke/v1/quota: per model the caller may use, what is left of the minute and the day over all quota '
    'groups, the queue per class, and the caller''s budgets.';

-- The quota route's report at p_now (google_ai_quota_report): per model, the minute and the day
-- over all quota groups, the queue, the caller's budgets, each model's `cooldowns` (with their cause)
-- and `kept` (what its shares keep for others and for this caller, google_ai_quota_kept),
-- and the models Google withdrew (`withdrawn`: when, Google's message, the successor, the shutdown date).
CREATE OR REPLACE FUNCTION public.google_ai_quota_report_at(p_now timestamp with time zone, p_token_hash text,
    p_caller text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.clock_timestamp());
  v_day date := public.google_ai_pacific_day(v_now);
  v_token public.google_ai_tokens;
  v_client public.google_ai_clients;
  v_caller_budget public.google_ai_caller_budgets;
  v_models text[];
  v_caller jsonb;
  v_owner_class text;
  v_owner_caller text;
  v_max_requests integer;
  v_max_tokens bigint;
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
    v_max_requests := v_client.daily_max_requests;
    v_max_tokens := v_client.daily_max_tokens;
    select u.requests, u.tokens into v_requests_today, v_tokens_today
    from public.google_ai_daily_use(v_client.day_bucket, v_client.requests_today, v_client.tokens_today, v_day, 0, 0,
      null, null) u;
    v_caller := jsonb_build_object('kind', 'token', 'client', v_client.name,
                                   'priority_class', v_client.priority_class);
    v_owner_class := v_client.priority_class;
    v_owner_caller := 'client:' || v_client.name;
  else
    -- A label without a row has no budget: every field of v_caller_budget stays null.
    select * into v_caller_budget from public.google_ai_caller_budgets b where b.caller = p_caller;
    v_max_requests := v_caller_budget.daily_max_requests;
    v_max_tokens := v_caller_budget.daily_max_tokens;
    select u.requests, u.tokens into v_requests_today, v_tokens_today
    from public.google_ai_daily_use(v_caller_budget.day_bucket, v_caller_budget.requests_today,
      v_caller_budget.tokens_today, v_day, 0, 0, null, null) u;
    v_owner_class := (select pc.name from public.google_ai_priority_classes pc order by pc.rank limit 1);
    v_owner_caller := p_caller;
    v_caller := jsonb_build_object('kind', 'service', 'client', null, 'priority_class', v_owner_class);
  end if;

  return jsonb_build_object(
    'ok', true,
    'as_of', v_now,
    'caller', v_caller,
    -- (A service caller has no token: its token fields are null.)
    'budget', jsonb_build_object(
      'token_requests_left', public.google_ai_budget_left(v_token.max_requests, v_token.requests_used),
      'token_tokens_left', public.google_ai_budget_left(v_token.max_tokens, v_token.tokens_used),
      'token_expires_at', v_token.expires_at,
      'daily_requests_left', public.google_ai_budget_left(v_max_requests, v_requests_today),
      'daily_tokens_left', public.google_ai_budget_left(v_max_tokens, v_tokens_today),
      'daily_resets_at', case when v_max_requests is not null or v_max_tokens is not null
                              then public.google_ai_pacific_midnight_after(v_now) end,
      -- A client's budgets in money: what is left of its day's and month's (booked worst cases included).
      -- (greatest() ignores a null: a budget not set stays null only outside it)
      'daily_usd_left', v_client.daily_max_usd - least(v_client.daily_max_usd, case when v_client.day_bucket = v_day
                                                                   then v_client.spent_today_usd else 0 end),
      'monthly_usd_left', v_client.monthly_max_usd - least(v_client.monthly_max_usd, case when v_client.month_bucket
        = pg_catalog.date_trunc('month', v_day)::date then v_client.spent_month_usd else 0 end)),
    -- A token's client's spend of the Pacific day and month, from its running totals (calls in flight at
    -- their worst case where it has a budget in money); a service caller's is read in google_ai_spend_daily.
    'spend', case when p_token_hash is not null then jsonb_build_object(
               'today_usd', case when v_client.day_bucket = v_day then v_client.spent_today_usd else 0 end,
               'month_usd', case when v_client.month_bucket = pg_catalog.date_trunc('month', v_day)::date
                                 then v_client.spent_month_usd else 0 end) end,
    'models', public.google_ai_quota_report_models(v_now, v_models, p_token_hash is null, v_owner_class,
      v_owner_caller),
    'withdrawn', public.google_ai_quota_report_withdrawn(v_models));
end
$$;
-- ================================================================================================
-- supabase/schemas/90_maintenance_log.sql
-- ================================================================================================

-- What maintenance did (the owner's google_ai_maintenance_log), read by the metrics and written by
-- housekeeping; what it is set to do is google_ai_maintenance_settings (05_settings.sql).
-- Bodies are checked when called, not when created: a function may name one defined further down.
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
-- ================================================================================================
-- supabase/schemas/91_metrics.sql
-- ================================================================================================

-- Metrics from the database's truth: running totals folded from attempt rows that can no longer
-- change (with a fence against ids not committed yet) and one scrape's Prometheus text.
-- Bodies are checked when called, not when created: a function may name one defined further down.
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
  select a.model, a.quota_group, a.priority_class, a.status,
         a.limit_hit, a.refusal_cause, a.quota_cause, a.http_status,
         a.service_tier, a.served_tier, a.input_tokens, a.output_tokens,
         a.latency_ms, a.first_byte_ms, a.added_ms, a.wait_ms,
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
-- quota group; a queue lapse (google_ai_queue_lapse) has none.
CREATE OR REPLACE FUNCTION public.google_ai_metric_samples(p_after bigint, p_through bigint,
    p_only bigint[] DEFAULT NULL::bigint[],
    p_settled_before timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(family text,
    suffix text, labels text, le numeric, value numeric)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  with decided as materialized (
    select d.* from public.google_ai_metric_decided(p_after, p_through, p_only, p_settled_before) d
  ), groups as (
    select d.model, d.quota_group, d.priority_class, d.caller, d.status, d.limit_hit,
           coalesce(d.refusal_cause, public.google_ai_refusal_cause(d.limit_hit)) as refusal_cause,
           coalesce(d.quota_cause, 'unknown') as cause, d.http_status = 429 as google_429,
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
                   (select v.provider from public.google_ai_model_provider(g.model) v)) as pv
          from groups g) g
    cross join lateral (values
      ('eve_gateway_attempts_total', concat_ws(',', g.m, g.qg, g.pc,
        g.who, public.google_ai_metric_label('status', g.status)), g.n),
      ('eve_gateway_refusals_total', concat_ws(',', g.m, g.pc,
        g.who, public.google_ai_metric_label('limit', g.limit_hit),
          public.google_ai_metric_label('cause', g.refusal_cause)),
        case when g.status = 'refused' then g.n end),
      ('eve_gateway_google_429_total', concat_ws(',', g.m, g.qg, g.pv,
        public.google_ai_metric_label('cause', g.cause)),
        case when g.google_429 then g.n end),
      ('eve_gateway_google_calls_total', concat_ws(',', g.m, g.qg, g.pv,
          public.google_ai_metric_label('status', g.status),
          public.google_ai_metric_label('service_tier', g.service_tier),
            public.google_ai_metric_label('served_tier', g.served_tier)),
        case when g.status in ('succeeded', 'cut', 'upstream_error', 'network_error', 'timeout',
          'withdrawn', 'google_error') then g.n end),
      -- Abandoned by housekeeping: a reservation (it has a quota group) no finalize reached.
      ('eve_gateway_finalizes_lost_total', concat_ws(',', g.m, g.qg),
        case when g.status = 'abandoned' and g.quota_group is not null then g.n end),
      -- Abandoned in the queue: a waiter that stopped asking; it never had a reservation.
      ('eve_gateway_queue_lapses_total', concat_ws(',', g.m, g.pc, g.who),
        case when g.status = 'abandoned' and g.quota_group is null then g.n end),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="input"'), g.tokens_in),
      ('eve_gateway_tokens_total', concat_ws(',', g.m, g.qg, g.who, 'gen_ai_token_type="output"'), g.tokens_out),
      -- What the calls cost (cost_usd; a call of unknown cost adds nothing).
      ('eve_gateway_spend_usd_total', concat_ws(',', g.m, g.pv, g.who), g.spend)
    ) x(family, labels, value)
    where x.value is not null
    group by 1, 2
  ), durations as (
    -- One row per measured duration: its histogram, its two labels (model and quota group or class), its ms.
    select h.family, d.model, h.second_name, h.second_value, h.ms
    from decided d
    cross join lateral (values
      ('eve_gateway_google_latency_seconds', 'quota_group', d.quota_group, d.latency_ms),
      ('eve_gateway_time_to_first_byte_seconds', 'priority_class', d.priority_class, d.first_byte_ms),
      ('eve_gateway_added_latency_seconds', 'priority_class', d.priority_class, d.added_ms),
      -- The wait before an admission: rows from a reservation only (a refusal's wait ended in no
      -- admission; a queue lapse's is its time in line).
      ('eve_gateway_wait_seconds', 'priority_class', d.priority_class,
        case when d.quota_group is not null then d.wait_ms end)
    ) h(family, second_name, second_value, ms)
    where h.ms is not null
  ), buckets as (
    select u.family, u.model, u.second_name, u.second_value, public.google_ai_metric_le(u.ms) as le,
           count(*)::numeric as n, sum(u.ms)::numeric as ms
    from durations u
    group by 1, 2, 3, 4, 5
  ), histogram_rows as (
    select b.family, concat_ws(',', public.google_ai_metric_label('model', b.model),
                               public.google_ai_metric_label(b.second_name, b.second_value)) as labels,
           b.le, b.n, b.ms
    from buckets b
  )
  select c.family, '', c.labels, 'NaN'::numeric, c.value from counters c
  union all
  select h.family, '_bucket', h.labels, h.le, sum(h.n) from histogram_rows h group by 1, 3, 4
  union all
  select h.family, '_sum', h.labels, 'NaN'::numeric, sum(h.ms) / 1000 from histogram_rows h group by 1, 3
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
    -- latency panel, a group's first Google 429 or lost finalize no increase() alert). The labels as
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
    cross join (values ('eve_gateway_google_latency_seconds', 'histogram'),
                       ('eve_gateway_finalizes_lost_total', 'counter')) x(family, kind)
    union all
    -- (Every cause a row may name: google_ai_quota_causes.)
    select 'eve_gateway_google_429_total', 'counter',
           concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group),
             public.google_ai_metric_label('provider',
               (select v.provider from public.google_ai_model_provider(p.model) v)),
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
  ), summed as (
    select c.family, c.suffix, c.labels, c.le, sum(c.value) as value from counted c group by 1, 2, 3, 4
  ), histograms as (
    -- Every bucket of each histogram series, cumulative.
    select h.family, h.labels, b.le,
           sum(coalesce(s.value, 0)) over (partition by h.family collate "C", h.labels collate "C" order by b.le)
             as value
    from (select distinct s.family, s.labels from summed s where s.suffix = '_bucket') h
    cross join unnest(public.google_ai_metric_bounds_s()) b(le)
    left join summed s on s.family = h.family and s.labels = h.labels and s.suffix = '_bucket' and s.le = b.le
  )
  select s.family, s.family || s.suffix, s.labels, s.value from summed s where s.suffix <> '_bucket'
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
-- the sliding minute (moved on to p_at by google_ai_ring_at) and the Pacific day, and their limits.
CREATE OR REPLACE FUNCTION public.google_ai_metric_quota(p_at timestamp with time zone)
    RETURNS TABLE(family text, sample text, labels text, value numeric)
    LANGUAGE sql STABLE
    AS $$
  with quota as (
    select concat_ws(',', public.google_ai_metric_label('model', p.model),
             public.google_ai_metric_label('quota_group', p.quota_group)) as labels,
           coalesce(w.sum_requests, 0) as minute_requests,
           coalesce(w.sum_tokens, 0) as minute_tokens,
           case when c.day_bucket = public.google_ai_pacific_day(p_at) then c.rpd_used else 0 end as day_requests,
           public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
           public.google_ai_effective_limit(l.tpm, l.safety_margin) as tpm,
           public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
    from public.google_ai_metric_serving() p
    left join public.google_ai_usage_counters c on c.quota_group = p.quota_group and c.model = p.model
    left join lateral public.google_ai_ring_at(p_at, public.google_ai_window_length(coalesce(
      (select g.minute_guard_ms from public.google_ai_admission_settings g where g.id), 1000)),
      c.ring_low, c.ring, c.window_requests, c.window_tokens) w on true
    left join public.google_ai_model_limits l on l.model = p.model
  )
  select x.family, x.family, concat_ws(',', q.labels, x.w), x.v
  from quota q cross join lateral (values
    ('eve_gateway_quota_used', 'window="minute",unit="requests"', q.minute_requests::numeric),
    ('eve_gateway_quota_used', 'window="minute",unit="tokens"', q.minute_tokens::numeric),
    ('eve_gateway_quota_used', 'window="day",unit="requests"', q.day_requests::numeric),
    ('eve_gateway_quota_limit', 'window="minute",unit="requests"', q.rpm::numeric),
    ('eve_gateway_quota_limit', 'window="minute",unit="tokens"', q.tpm::numeric),
    ('eve_gateway_quota_limit', 'window="day",unit="requests"', q.rpd::numeric)) x(family, w, v)
  -- (A limit that is not set has no gauge.)
  where x.family = 'eve_gateway_quota_used' or x.v is not null
$$;

-- The other gauges at p_at: reservations in flight and the live rows (above the mark p_mark), the
-- Pacific day's end, the queue, cooldowns, models, keys, callers' budgets and the last housekeeping.
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
               (select v.provider from public.google_ai_model_provider(cd.model) v)),
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
           extract(epoch from public.google_ai_pacific_start(l.shutdown_date))
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
             public.google_ai_metric_label('unit', x.unit)), greatest(x.lim - x.used, 0)
    from (select 'client:' || c.name as caller, c.daily_max_requests as max_requests,
                 c.daily_max_tokens::bigint as max_tokens, c.day_bucket, c.requests_today,
                 c.tokens_today::bigint as tokens_today
          from public.google_ai_clients c where c.revoked_at is null
          union all
          select s.caller, s.daily_max_requests, s.daily_max_tokens::bigint, s.day_bucket, s.requests_today,
                 s.tokens_today
          from public.google_ai_caller_budgets s) b
    cross join lateral public.google_ai_daily_use(b.day_bucket, b.requests_today, b.tokens_today,
      public.google_ai_pacific_day(p_at), 0, 0, null, null) u
    cross join lateral (values ('requests', b.max_requests::numeric, u.requests::numeric),
                               ('tokens', b.max_tokens::numeric, u.tokens::numeric)) x(unit, lim, used)
    where x.lim is not null
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
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

-- One provider's active keys (Google's by default), with their quota group: those the maintenance
-- function checks against that provider's model list, and (Google's) those llm-invoke's countTokens
-- calls use. A key is only ever sent to its own provider.
CREATE OR REPLACE FUNCTION public.google_ai_active_keys(p_provider text DEFAULT 'google'::text) RETURNS TABLE(id text,
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
-- alone. Stops after p_max_batches or at p_deadline; 'more' says rows may remain for the next run.
-- Internal: the condition is SQL text, so only the owner may call it.
CREATE OR REPLACE FUNCTION public.google_ai_delete_batched(p_table regclass, p_key text, p_condition text,
    p_cutoff timestamp with time zone, p_batch integer, p_max_batches integer, p_deadline timestamp with time zone,
    p_order text DEFAULT NULL::text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_sql text;
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
begin
  v_sql := format(
    'delete from %s t where t.%I in (select s.%I from %s s where %s %s limit %s for update skip locked)',
    p_table, p_key, p_key, p_table, p_condition,
    coalesce('order by ' || p_order, ''), p_batch);
  loop
    if v_batches >= p_max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
    execute v_sql using p_cutoff;
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    v_batches := v_batches + 1;
    exit when v_n < p_batch;
  end loop;
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_more);
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
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
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

  loop
    if v_batches >= p_settings.max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
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
  return jsonb_build_object('abandoned', v_total, 'batches', v_batches, 'more', v_more, 'older_than', v_cutoff,
    'from', v_start);
end
$$;

-- Housekeeping's steps, in the order a run takes them (google_ai_housekeeping_at). A step is a
-- function of its own (fn: google_ai_housekeeping_<fn>, for abandon, attempts and counters) or a batched
-- delete (google_ai_delete_batched) of rel's rows that match condition ($1: cutoff), in sort's order.
-- The big deletes first. Cooldowns and responses near the end: a live call may upsert a row these
-- steps are deleting, and it waits until the run commits. dead_counters last: it share-locks the keys
-- table, and that lock should live only milliseconds.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_steps(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings) RETURNS TABLE(name text, rel text, fn text, key text,
    condition text, cutoff timestamp with time zone, sort text)
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
    ('dead_counters', 'public.google_ai_usage_counters', 'counters', null, null, null, null)
$_$;

-- One housekeeping step (a row of google_ai_housekeeping_steps) in a subtransaction of its own: what it
-- did, with its status and time. A failed step is rolled back alone and answers its (sanitized) error;
-- a table this database does not have (pg_cron's, without pg_cron) skips its step.
CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_step(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone, p_fn text, p_rel text,
    p_key text, p_condition text, p_cutoff timestamp with time zone, p_sort text) RETURNS jsonb
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
    if p_fn is not null then
      execute format('select public.%I($1, $2, $3)', 'google_ai_housekeeping_' || p_fn)
        into v_result using p_now, p_settings, p_deadline;
    elsif pg_catalog.to_regclass(p_rel) is null then
      v_result := jsonb_build_object('skipped', 'no ' || p_rel || ' here: pg_cron is not installed');
    else
      v_result := public.google_ai_delete_batched(pg_catalog.to_regclass(p_rel), p_key, p_condition, p_cutoff,
          p_settings.batch_size, p_settings.max_batches, p_deadline, p_sort)
        || jsonb_build_object('older_than', p_cutoff);
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
  v_step record;
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_now timestamptz := coalesce(p_now, v_started);
  v_settings public.google_ai_maintenance_settings;
  v_old_lock_timeout text := pg_catalog.current_setting('lock_timeout');
  v_result jsonb;
  v_steps jsonb := '{}';
  v_failed text[] := '{}';
  v_tables text[] := '{}';
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
    insert into public.google_ai_maintenance_log (operation, tables_affected, deleted_count, started_at,
      completed_at, status, details)
    values ('housekeeping', '{}', 0, v_started, pg_catalog.clock_timestamp(), 'skipped',
      jsonb_build_object('reason', 'another housekeeping run is in progress', 'now', v_now))
    returning id into v_log_id;
    return jsonb_build_object('ok', true, 'status', 'skipped', 'log_id', v_log_id, 'deleted_count', 0,
      'reason', 'another housekeeping run is in progress');
  end if;

  perform pg_catalog.set_config('lock_timeout', v_settings.lock_timeout_ms::text || 'ms', true);
  for v_step in select * from public.google_ai_housekeeping_steps(v_now, v_settings) loop
    v_result := public.google_ai_housekeeping_step(v_now, v_settings, v_started + v_settings.time_budget,
      v_step.fn, v_step.rel, v_step.key, v_step.condition, v_step.cutoff, v_step.sort);
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
  v_result := jsonb_build_object(
    'duration_ms', round(extract(epoch from (v_completed - v_started)) * 1000, 1),
    'steps', v_steps,
    'failed_steps', to_jsonb(v_failed),
    'more_pending', v_more);
  insert into public.google_ai_maintenance_log (operation, tables_affected, deleted_count, started_at,
    completed_at, status, details)
  values ('housekeeping', v_tables, least(v_deleted, 2147483647)::integer, v_started, v_completed, v_status,
    v_result || jsonb_build_object('now', v_now, 'settings', to_jsonb(v_settings) - 'id' - 'updated_at'))
  returning id into v_log_id;

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
  v_n bigint;
  v_total bigint := 0;
  v_batches integer := 0;
  v_more boolean := false;
begin
  loop
    if v_batches >= p_settings.max_batches or pg_catalog.clock_timestamp() >= p_deadline then
      v_more := true;
      exit;
    end if;
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
  return jsonb_build_object('deleted', v_total, 'batches', v_batches, 'more', v_more, 'older_than', v_cutoff);
end
$$;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_counters(p_now timestamp with time zone,
    p_settings public.google_ai_maintenance_settings, p_deadline timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_minute timestamptz := public.google_ai_minute_window(p_now);
  v_day date := public.google_ai_pacific_day(p_now);
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
    format('s.quota_group is not null and s.day_bucket < %L::date and s.minute_bucket < $1
            and not exists (select 1 from public.google_ai_api_keys k
                            where k.is_active and public.google_ai_quota_group(k.project_id, k.id) = s.quota_group)',
           v_day),
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
  v_url text;
  v_key text;
  v_id bigint;
begin
  if pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null then
    raise exception
      'pg_net is not installed: enable it (Dashboard > Database > Extensions > pg_net, or: create extension pg_net;)'
      using errcode = '55000';
  end if;
  if pg_catalog.to_regclass('vault.decrypted_secrets') is null then
    raise exception 'Supabase Vault is not available in this database (vault.decrypted_secrets is missing)'
      using errcode = '55000';
  end if;
  execute 'select s.decrypted_secret from vault.decrypted_secrets s where s.name = $1 '
          || 'order by s.created_at desc limit 1'
    into v_url using 'eve_gateway_functions_url';
  execute 'select s.decrypted_secret from vault.decrypted_secrets s where s.name = $1 '
          || 'order by s.created_at desc limit 1'
    into v_key using 'eve_gateway_service_key';
  if coalesce(v_url, '') = '' then
    raise exception using errcode = '55000', message = 'Vault secret eve_gateway_functions_url is missing: select '
      || 'vault.create_secret(''https://<project-ref>.supabase.co/functions/v1'', ''eve_gateway_functions_url'');';
  end if;
  if coalesce(v_key, '') = '' then
    raise exception using errcode = '55000', message = 'Vault secret eve_gateway_service_key is missing: select '
      || 'vault.create_secret(''<service or secret key>'', ''eve_gateway_service_key'');';
  end if;
  execute 'select net.http_post(url => $1, body => $2, params => ''{}''::jsonb, headers => $3, '
          || 'timeout_milliseconds => $4)'
    into v_id
    using pg_catalog.rtrim(v_url, '/') || '/maintenance',
          coalesce(p_body, '{}'::jsonb) || '{"source": "pg_cron"}'::jsonb,
          pg_catalog.jsonb_build_object('content-type', 'application/json',
            'authorization', 'Bearer ' || v_key, 'apikey', v_key, 'x-caller', 'pg_cron'),
          p_timeout_ms;
  return v_id;
end
$_$;

-- One google_ai_maintenance_log row for a run of the maintenance function; returns its id.
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
-- Bodies are checked when called, not when created: a function may name one defined further down.
set check_function_bodies = off;

CREATE OR REPLACE VIEW public.google_ai_model_catalogue_status WITH (security_invoker='true') AS
 WITH ok_keys AS (
         SELECT h.api_key_id,
            h.checked_at,
            k.serves_provider AS provider
           FROM (public.google_ai_key_health h
             JOIN public.google_ai_api_keys k ON ((k.id = h.api_key_id)))
          WHERE ((h.status = 'ok'::text) AND k.is_active)
        )
 SELECT l.model,
    l.is_active,
    (( SELECT count(*) AS count
           FROM ok_keys o
          WHERE (o.provider = l.provider)))::integer AS keys_checked,
    (count(c.api_key_id))::integer AS keys_listing,
    COALESCE(array_agg(DISTINCT c.quota_group) FILTER (WHERE (c.api_key_id IS NOT NULL)), '{}'::text[]) AS quota_groups,
    max(c.input_token_limit) AS input_token_limit,
    max(c.output_token_limit) AS output_token_limit,
    max(c.refreshed_at) AS last_listed_at,
    ( SELECT max(o.checked_at) AS max
           FROM ok_keys o
          WHERE (o.provider = l.provider)) AS last_checked_at,
        CASE
            WHEN (( SELECT count(*) AS count
               FROM ok_keys o
              WHERE (o.provider = l.provider)) = 0) THEN 'unknown'::text
            WHEN (count(c.api_key_id) > 0) THEN 'listed'::text
            ELSE 'unlisted'::text
        END AS catalogue_status
   FROM (public.google_ai_model_limits l
     LEFT JOIN public.google_ai_model_catalogue c ON (((c.model = l.model) AND (c.api_key_id IN ( SELECT o.api_key_id
           FROM ok_keys o
          WHERE (o.provider = l.provider))))))
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
    public.google_ai_pacific_start((public.google_ai_pacific_day(now()) + 1)) AS resets_at,
    b.notes
   FROM (public.google_ai_caller_budgets b
     CROSS JOIN LATERAL public.google_ai_daily_use(b.day_bucket, b.requests_today, b.tokens_today,
       public.google_ai_pacific_day(now()), 0, 0, NULL::integer, NULL::bigint) u(requests, tokens, over));

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
    ( SELECT count(*) AS count
           FROM public.google_ai_tokens t
          WHERE ((t.client_id = c.id) AND (t.revoked_at IS NULL) AND (t.expires_at > now()))) AS live_tokens,
    ( SELECT max(t.created_at) AS max
           FROM public.google_ai_tokens t
          WHERE (t.client_id = c.id)) AS last_token_at
   FROM public.google_ai_clients c;

CREATE OR REPLACE VIEW public.google_ai_cooldowns_active WITH (security_invoker='true') AS
 SELECT cd.quota_group,
    cd.model,
    cd.cooldown_until,
    (ceil(EXTRACT(epoch FROM (cd.cooldown_until - now()))))::bigint AS seconds_left,
    cd.reason,
    cd.quota_id,
    cd.updated_at,
    COALESCE(( SELECT array_agg(k.key_alias ORDER BY k.key_alias) AS array_agg
           FROM public.google_ai_api_keys k
          WHERE (k.is_active AND (public.google_ai_quota_group(k.project_id, k.id) = cd.quota_group))),
            '{}'::text[]) AS key_aliases
   FROM public.google_ai_cooldowns cd
  WHERE (cd.cooldown_until > now());

COMMENT ON VIEW public.google_ai_cooldowns_active IS
    'Cooldowns in force: the quota group and model rest until cooldown_until.';

CREATE OR REPLACE VIEW public.google_ai_model_lifecycle WITH (security_invoker='true') AS
 SELECT l.model,
    l.aliases,
    l.is_active,
        CASE
            WHEN (l.withdrawn_at IS NOT NULL) THEN 'withdrawn'::text
            WHEN (NOT l.is_active) THEN 'retired'::text
            WHEN (l.shutdown_date <= CURRENT_DATE) THEN 'shut_down'::text
            WHEN (l.shutdown_date <= (CURRENT_DATE + 14)) THEN 'shutting_down'::text
            ELSE 'served'::text
        END AS state,
    l.withdrawn_at,
    l.withdrawn_message,
    l.successor,
    l.shutdown_date,
    (l.shutdown_date - CURRENT_DATE) AS days_to_shutdown,
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
   FROM (public.google_ai_model_limits l
     LEFT JOIN public.google_ai_model_catalogue_status s ON ((s.model = l.model)));

COMMENT ON VIEW public.google_ai_model_lifecycle IS
    'Each model row in its life cycle: withdrawn (when, its provider''s message and the replacement it names), '
    'shutdown date, successor, chain, limits and where they come from, and what its provider''s model list last '
    'said of it.';

CREATE OR REPLACE VIEW public.google_ai_queue_now WITH (security_invoker='true') AS
 SELECT q.model,
    q.priority_class,
    min(q.class_rank) AS class_rank,
    (count(*))::integer AS waiting,
    (count(DISTINCT q.caller))::integer AS callers,
    min(q.enqueued_at) AS oldest_since,
    max(q.expected_at) AS last_turn_at
   FROM public.google_ai_queue q
  WHERE (q.lease_until >= now())
  GROUP BY q.model, q.priority_class;

COMMENT ON VIEW public.google_ai_queue_now IS
    'Requests waiting now, per model and class: how many, from '
    'how many callers, since when, and when the last turn comes.';

CREATE OR REPLACE VIEW public.google_ai_shares_today WITH (security_invoker='true') AS
 WITH clock AS (
         SELECT now() AS at,
            public.google_ai_pacific_day(now()) AS day,
            public.google_ai_window_length(COALESCE(( SELECT st.minute_guard_ms
                   FROM public.google_ai_admission_settings st
                  WHERE st.id), 1000)) AS window_length
        ), groups AS (
         SELECT DISTINCT s_1.id AS share_id,
            public.google_ai_quota_group(k.project_id, k.id) AS quota_group
           FROM ((public.google_ai_quota_shares s_1
             JOIN public.google_ai_model_limits m_1 ON ((m_1.model = s_1.model)))
             JOIN public.google_ai_api_keys k ON ((k.is_active AND (k.serves_provider = m_1.provider) AND
               ((k.models IS NULL) OR (s_1.model = ANY (k.models))))))
        ), kept AS (
         SELECT s_1.model,
            (sum(COALESCE(s_1.reserved_rpd, 0)))::integer AS reserved_rpd
           FROM public.google_ai_quota_shares s_1
          GROUP BY s_1.model
        )
 SELECT s.model,
    COALESCE(s.priority_class, s.caller) AS owner,
        CASE
            WHEN (s.priority_class IS NOT NULL) THEN 'class'::text
            ELSE 'caller'::text
        END AS owner_kind,
    g.quota_group,
    s.reserved_rpm,
    s.reserved_rpd,
    s.pace_burst,
    w.used_in_window,
    d.used_today,
        CASE
            WHEN (s.reserved_rpm IS NOT NULL) THEN GREATEST(0, (s.reserved_rpm - w.used_in_window))
            ELSE NULL::integer
        END AS rpm_kept_now,
        CASE
            WHEN (s.reserved_rpd IS NOT NULL) THEN GREATEST(0, (s.reserved_rpd - d.used_today))
            ELSE NULL::integer
        END AS rpd_kept_today,
        CASE
            WHEN ((s.pace_burst IS NOT NULL) AND (l.rpd IS NOT NULL)) THEN public.google_ai_pace_allowance(c.at, c.day,
              s.pace_burst, (l.rpd - (kept.reserved_rpd - COALESCE(s.reserved_rpd, 0))))
            ELSE NULL::integer
        END AS pace_allows_today
   FROM (((((((public.google_ai_quota_shares s
     JOIN groups g ON ((g.share_id = s.id)))
     JOIN kept ON ((kept.model = s.model)))
     CROSS JOIN clock c)
     LEFT JOIN LATERAL ( SELECT e.window_requests, e.day_bucket, e.day_used, e.day_next_used, e.day_prev_used,
            e.ring_low, e.ring
           FROM public.google_ai_usage_counters uc,
            LATERAL unnest(uc.share_use) e(share_id, window_requests, day_bucket, day_used, day_next_used,
              day_prev_used, ring_low, ring)
          WHERE ((uc.quota_group = g.quota_group) AND (uc.model = s.model) AND (e.share_id = s.id))) u ON (true))
     LEFT JOIN LATERAL ( SELECT public.google_ai_effective_limit(m.rpd, m.safety_margin) AS rpd
           FROM public.google_ai_model_limits m
          WHERE (m.model = s.model)) l ON (true))
     CROSS JOIN LATERAL ( SELECT r.sum_requests AS used_in_window
           FROM public.google_ai_ring_at(c.at, c.window_length, u.ring_low, u.ring, u.window_requests,
             NULL::bigint) r) w)
     CROSS JOIN LATERAL ( SELECT (public.google_ai_day_counts(u.day_bucket, u.day_used, u.day_next_used,
             u.day_prev_used, c.day))[1] AS used_today) d);

COMMENT ON VIEW public.google_ai_shares_today IS
    'Reserved shares and pacing per quota group: the owner''s use in the window and today, what the share still keeps '
    'from the others (rpm_kept_now, rpd_kept_today), and how much of today a paced owner may have used by now.';

-- What the calls cost per provider's day (Google's Pacific day, OpenAI's UTC day: when each resets its
-- limits and bills), provider, model and caller: the calls that reached the provider, those of them whose
-- cost is not known (no price, no counts), and the spend of the others (cost_usd).
CREATE OR REPLACE VIEW public.google_ai_spend_daily WITH (security_invoker='true') AS
 SELECT
        CASE
            WHEN (l.provider = 'openai'::text) THEN ((a.admitted_at AT TIME ZONE 'UTC'::text))::date
            ELSE public.google_ai_pacific_day(a.admitted_at)
        END AS day,
    COALESCE(l.provider, 'google'::text) AS provider,
    a.model,
    a.caller,
    (count(*))::integer AS calls,
    (count(*) FILTER (WHERE (a.cost_usd IS NULL)))::integer AS calls_unpriced,
    COALESCE(sum(a.cost_usd), (0)::numeric) AS spend_usd
   FROM (public.google_ai_attempts a
     LEFT JOIN public.google_ai_model_limits l ON ((l.model = a.model)))
  WHERE ((a.admitted_at IS NOT NULL) AND (a.status = ANY ('{succeeded,cut,upstream_error,network_error,timeout,
    google_error}'::text[])))
  GROUP BY 1, 2, 3, 4;

COMMENT ON VIEW public.google_ai_spend_daily IS
    'Spend in US dollars per provider''s day (Pacific for Google, UTC for OpenAI), provider, model and caller; '
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
        where d.day = case d.provider when 'openai' then (coalesce(p_now, now()) at time zone 'UTC')::date
                                      else public.google_ai_pacific_day(coalesce(p_now, now())) end - 1
        group by 1, 2) s
$$;

CREATE OR REPLACE VIEW public.google_ai_usage_by_caller_24h WITH (security_invoker='true') AS
 SELECT a.caller,
    (count(DISTINCT COALESCE(a.request_id, (a.reservation_id)::text)))::integer AS requests,
    (count(*))::integer AS attempts,
    (count(*) FILTER (WHERE (a.status = 'succeeded'::text)))::integer AS succeeded,
    (count(*) FILTER (WHERE (a.status = ANY (ARRAY['upstream_error'::text, 'google_error'::text,
      'network_error'::text, 'timeout'::text]))))::integer AS failed,
    (count(*) FILTER (WHERE (a.status = 'refused'::text)))::integer AS refused,
    (count(*) FILTER (WHERE ((a.status = 'refused'::text) AND (a.limit_hit = 'rpm'::text))))::integer AS refused_rpm,
    (count(*) FILTER (WHERE ((a.status = 'refused'::text) AND (a.limit_hit = 'tpm'::text))))::integer AS refused_tpm,
    (count(*) FILTER (WHERE ((a.status = 'refused'::text) AND (a.limit_hit = 'rpd'::text))))::integer AS refused_rpd,
    (count(*) FILTER (WHERE ((a.status = 'refused'::text) AND
      (a.limit_hit = 'cooldown'::text))))::integer AS refused_cooldown,
    (count(*) FILTER (WHERE ((a.status = 'refused'::text) AND (a.limit_hit <> ALL (ARRAY['rpm'::text, 'tpm'::text,
      'rpd'::text, 'cooldown'::text])))))::integer AS refused_other,
    (count(*) FILTER (WHERE (a.status = 'reserved'::text)))::integer AS in_flight,
    (count(*) FILTER (WHERE (a.status = 'released'::text)))::integer AS released,
    (count(*) FILTER (WHERE (a.status = 'abandoned'::text)))::integer AS abandoned,
    COALESCE(sum(a.input_tokens) FILTER (WHERE (a.status = ANY (ARRAY['succeeded'::text,
      'cut'::text]))), (0)::bigint) AS input_tokens,
    COALESCE(sum(a.output_tokens) FILTER (WHERE (a.status = ANY (ARRAY['succeeded'::text,
      'cut'::text]))), (0)::bigint) AS output_tokens,
    (COALESCE(sum(a.input_tokens) FILTER (WHERE (a.status = ANY (ARRAY['succeeded'::text, 'cut'::text]))),
      (0)::bigint) + COALESCE(sum(a.output_tokens) FILTER (WHERE (a.status = ANY (ARRAY['succeeded'::text,
      'cut'::text]))), (0)::bigint)) AS total_tokens,
    array_agg(DISTINCT a.model ORDER BY a.model) AS models,
    min(a.created_at) AS first_at,
    max(a.created_at) AS last_at
   FROM public.google_ai_attempts a
  WHERE (a.created_at > (now() - '24:00:00'::interval))
  GROUP BY a.caller;

COMMENT ON VIEW public.google_ai_usage_by_caller_24h IS
    'The last 24 hours per caller: logical requests, attempts by outcome, refusals by the limit that refused them, and '
    'the input/output tokens of successful calls.';

CREATE OR REPLACE VIEW public.google_ai_usage_now WITH (security_invoker='true') AS
 WITH clock AS (
         SELECT now() AS at,
            public.google_ai_pacific_day(now()) AS day
        ), serving AS (
         SELECT public.google_ai_quota_group(k.project_id, k.id) AS quota_group,
            l.model,
            (count(*))::integer AS active_keys,
            array_agg(k.key_alias ORDER BY k.priority, k.key_alias) AS key_aliases
           FROM (public.google_ai_api_keys k
             JOIN public.google_ai_model_limits l ON ((l.is_active AND (k.serves_provider = l.provider) AND
               ((k.models IS NULL) OR (l.model = ANY (k.models))))))
          WHERE k.is_active
          GROUP BY (public.google_ai_quota_group(k.project_id, k.id)), l.model
        ), pairs AS (
         SELECT s.quota_group,
            s.model
           FROM serving s
        UNION
         SELECT c.quota_group,
            c.model
           FROM public.google_ai_usage_counters c
          WHERE (c.quota_group IS NOT NULL)
        ), usage AS (
         SELECT p.quota_group,
            p.model,
            clock.at,
            clock.day,
            COALESCE(s.active_keys, 0) AS active_keys,
            COALESCE(s.key_aliases, '{}'::text[]) AS key_aliases,
                CASE
                    WHEN (c.day_bucket = clock.day) THEN c.rpd_used
                    ELSE 0
                END AS rpd_used,
            public.google_ai_effective_limit(l.rpm, l.safety_margin) AS rpm_limit,
            public.google_ai_effective_limit(l.tpm, l.safety_margin) AS tpm_limit,
            public.google_ai_effective_limit(l.rpd, l.safety_margin) AS rpd_limit,
            cd.cooldown_until,
            cd.reason AS cooldown_reason
           FROM (((((pairs p
             CROSS JOIN clock)
             LEFT JOIN serving s ON (((s.quota_group = p.quota_group) AND (s.model = p.model))))
             LEFT JOIN public.google_ai_usage_counters c ON (((c.quota_group = p.quota_group) AND (c.model = p.model))))
             LEFT JOIN public.google_ai_model_limits l ON ((l.model = p.model)))
             LEFT JOIN public.google_ai_cooldowns cd ON (((cd.quota_group = p.quota_group) AND (cd.model = p.model) AND
               (cd.cooldown_until > clock.at))))
        )
 SELECT u.quota_group,
    u.model,
    u.active_keys,
    u.key_aliases,
    (u.at - '00:01:00'::interval) AS minute_window,
    r.requests_used AS rpm_used,
    u.rpm_limit,
    r.requests_left AS rpm_left,
    (r.tokens_used)::integer AS tpm_used,
    u.tpm_limit,
    (r.tokens_left)::integer AS tpm_left,
    u.day AS pacific_day,
    u.rpd_used,
    u.rpd_limit,
    r.day_left AS rpd_left,
    u.cooldown_until,
    u.cooldown_reason,
        CASE
            WHEN (u.active_keys = 0) THEN 'no_active_key'::text
            WHEN (u.cooldown_until IS NOT NULL) THEN 'cooldown'::text
            WHEN (r.day_left = 0) THEN 'rpd'::text
            WHEN (r.requests_left = 0) THEN 'rpm'::text
            WHEN (r.tokens_left = 0) THEN 'tpm'::text
            ELSE 'open'::text
        END AS state,
    r.window_frees_at AS minute_resets_at,
    public.google_ai_pacific_start((u.day + 1)) AS day_resets_at
   FROM (usage u
     CROSS JOIN LATERAL public.google_ai_group_room(u.quota_group, u.model) r(requests_used, tokens_used, requests_left,
       tokens_left, day_left, window_frees_at, ready_at));

COMMENT ON VIEW public.google_ai_usage_now IS
    'Per quota group and model, as the admission counts them (google_ai_group_room): the requests and tokens in the '
    'sliding minute window (the last minute, minute_window on), the requests of this Pacific day, against the limits '
    'after the safety margin. The *_left figures are what the next request could book (0 while a cooldown rests the '
    'group; a share kept for another class or caller, google_ai_shares_today, may leave a given request less); '
    'minute_resets_at is when the window next frees room; state is what would refuse one now (open, rpm, tpm, rpd, '
    'cooldown, no_active_key).';

CREATE OR REPLACE VIEW public.google_ai_wait_by_class_1h WITH (security_invoker='true') AS
 SELECT a.model,
    COALESCE(a.priority_class, 'interactive'::text) AS priority_class,
    (count(*) FILTER (WHERE (a.status <> ALL (ARRAY['refused'::text, 'abandoned'::text]))))::integer AS admitted,
    (count(*) FILTER (WHERE (a.status = 'refused'::text)))::integer AS refused,
    (count(*) FILTER (WHERE (a.status = 'abandoned'::text)))::integer AS abandoned,
    percentile_disc((0.5)::double precision) WITHIN GROUP (ORDER BY COALESCE(a.wait_ms,
      0)) FILTER (WHERE (a.status <> ALL (ARRAY['refused'::text, 'abandoned'::text]))) AS wait_ms_p50,
    percentile_disc((0.95)::double precision) WITHIN GROUP (ORDER BY COALESCE(a.wait_ms,
      0)) FILTER (WHERE (a.status <> ALL (ARRAY['refused'::text, 'abandoned'::text]))) AS wait_ms_p95,
    max(COALESCE(a.wait_ms, 0)) FILTER (WHERE (a.status <> ALL (ARRAY['refused'::text,
      'abandoned'::text]))) AS wait_ms_max
   FROM public.google_ai_attempts a
  WHERE ((a.created_at > (now() - '01:00:00'::interval)) AND (a.attempt = 1))
  GROUP BY a.model, COALESCE(a.priority_class, 'interactive'::text);

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
-- of the grants; one revoke covers all the functions). service_role gets what the operator's tools
-- need; eve_gateway (the Edge Functions' role) only EXECUTE on the RPCs it calls. Bodies are checked when called, not
-- when created: a function may name one defined further down.
set check_function_bodies = off;

COMMENT ON SCHEMA public IS 'standard public schema';

GRANT USAGE ON SCHEMA public TO anon;

GRANT USAGE ON SCHEMA public TO authenticated;

GRANT USAGE ON SCHEMA public TO service_role;

GRANT USAGE ON SCHEMA public TO eve_gateway;

-- Functions: nobody but their owner may execute one unless a grant below says so. One revoke for all
-- the gateway's functions (Supabase's default privileges give every new function to anon, authenticated and
-- service_role; PUBLIC has EXECUTE by default), so none is left out; the grants follow, each naming its function.
do $$
declare f
  regprocedure;
begin
  for f in select p.oid::regprocedure from pg_catalog.pg_proc p
           where p.pronamespace = 'public'::regnamespace
  and p.proname like 'google\_ai\_%'
    loop execute pg_catalog.format(
      'revoke all on function %s from public, anon, authenticated, service_role, eve_gateway',
  f); end loop;
end
$$;

ALTER TABLE public.google_ai_api_keys ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_cooldowns ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_model_limits ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_usage_counters ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_providers ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_providers FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_providers TO service_role;

GRANT ALL ON FUNCTION public.google_ai_provider_list() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_provider_list() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_api_keys FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_api_keys TO service_role;

GRANT ALL ON FUNCTION public.google_ai_provider(p_name text) TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_limits FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_limits TO service_role;

GRANT ALL ON FUNCTION public.google_ai_effective_limit(p_limit integer, p_margin numeric) TO service_role;

REVOKE ALL ON TABLE public.google_ai_usage_counters FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_usage_counters TO service_role;

GRANT ALL ON FUNCTION public.google_ai_quota_group(p_project_id text, p_key_id uuid) TO service_role;

REVOKE ALL ON TABLE public.google_ai_cooldowns FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_cooldowns TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_model_limits_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_model_limits_id_seq TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_usage_counters_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_usage_counters_id_seq TO service_role;

ALTER TABLE public.google_ai_attempts ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_responses ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_attempts FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_attempts TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_attempts_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_attempts_id_seq TO service_role;

REVOKE ALL ON TABLE public.google_ai_responses FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_responses TO service_role;

ALTER TABLE public.google_ai_admission_settings ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_admission_settings FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,UPDATE ON TABLE public.google_ai_admission_settings TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pacific_start(p_day date) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pacific_zone() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_pacific_day(p_at timestamp with time zone) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_day_counts(p_bucket date, p_used integer, p_next integer, p_prev integer,
    p_day date) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_window_length(p_minute_guard_ms integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text,
    p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer,
    p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_reserve_models(p_models text[], p_estimated_tokens integer, p_caller text,
    p_token_hash text, p_request_id text, p_exclude_key_ids uuid[], p_attempt integer, p_wait_ms integer,
    p_metadata jsonb, p_idempotent boolean, p_priority text, p_queue_ticket uuid, p_wait_left_ms integer,
    p_reply_by timestamp with time zone, p_hold_until timestamp with time zone, p_holder uuid) TO eve_gateway;

ALTER TABLE public.google_ai_priority_classes ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_queue ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_queue_settings ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_priority_classes FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,UPDATE ON TABLE public.google_ai_priority_classes TO service_role;

REVOKE ALL ON TABLE public.google_ai_queue FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_queue TO service_role;

REVOKE ALL ON TABLE public.google_ai_queue_settings FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,UPDATE ON TABLE public.google_ai_queue_settings TO service_role;

ALTER TABLE public.google_ai_caller_budgets ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_quota_shares ENABLE ROW LEVEL SECURITY;

GRANT ALL ON FUNCTION public.google_ai_pace_allowance(p_at timestamp with time zone, p_day date, p_burst integer,
    p_usable integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_at(p_at timestamp with time zone, p_window interval, ring_low bigint,
    ring integer[], sum_requests integer, sum_tokens bigint, p_requests integer, p_tokens integer,
    p_admitted_at timestamp with time zone) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_restarted(p_at timestamp with time zone, p_window interval,
    p_span integer, ring_low bigint, ring integer[], sum_requests integer, sum_tokens bigint) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_ring_time(p_second bigint, p_us integer) TO service_role;

REVOKE ALL ON TABLE public.google_ai_caller_budgets FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_caller_budgets TO service_role;

-- (google_ai_caller_budgets_today reads a budget's day through it, as its invoker.)
GRANT ALL ON FUNCTION public.google_ai_daily_use(p_bucket date, p_requests_today integer, p_tokens_today bigint,
    p_day date, p_requests integer, p_tokens bigint, p_max_requests integer, p_max_tokens bigint) TO service_role;

REVOKE ALL ON TABLE public.google_ai_quota_shares FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_quota_shares TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_quota_shares_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT USAGE ON SEQUENCE public.google_ai_quota_shares_id_seq TO service_role;

ALTER TABLE public.token_usage ENABLE ROW LEVEL SECURITY;

GRANT ALL ON FUNCTION public.google_ai_cooldown(p_quota_group text, p_model text, p_until timestamp with time zone,
    p_reason text, p_quota_id text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_end_request(p_reservation_id uuid) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer,
    p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text,
    p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean,
    p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text,
    p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer,
    p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer,
    p_thinking_tokens integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_finalize(p_reservation_id uuid, p_outcome text, p_input_tokens integer,
    p_output_tokens integer, p_http_status integer, p_error_code text, p_quota_id text, p_error_message text,
    p_latency_ms integer, p_cooldown_until timestamp with time zone, p_cooldown_until_pacific_midnight boolean,
    p_response jsonb, p_key_rejected boolean, p_quota_cause text, p_service_tier text, p_served_tier text,
    p_added_ms integer, p_first_byte_ms integer, p_room_requests integer, p_room_tokens integer,
    p_room_until timestamp with time zone, p_settled_tokens integer, p_cached_input_tokens integer,
    p_thinking_tokens integer) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer,
    p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text,
    p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer,
    p_thinking_tokens integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_finalize_cut(p_reservation_id uuid, p_cut_by text, p_input_tokens integer,
    p_output_tokens integer, p_latency_ms integer, p_error_message text, p_service_tier text, p_served_tier text,
    p_added_ms integer, p_first_byte_ms integer, p_cached_input_tokens integer,
    p_thinking_tokens integer) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer,
    p_error_code text, p_error_message text, p_latency_ms integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_finalize_withdrawn(p_reservation_id uuid, p_http_status integer,
    p_error_code text, p_error_message text, p_latency_ms integer) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_release(p_reservation_id uuid, p_reason text) TO eve_gateway;

REVOKE ALL ON TABLE public.token_usage FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON TABLE public.token_usage TO service_role;

REVOKE ALL ON SEQUENCE public.token_usage_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.token_usage_id_seq TO service_role;

ALTER TABLE public.google_ai_clients ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_credential_refusals ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_tokens ENABLE ROW LEVEL SECURITY;

GRANT ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_check_token(p_token_hash text, p_refusals integer) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_create_client(p_name text, p_models text[], p_max_token_ttl interval,
    p_token_max_requests integer, p_token_max_tokens integer, p_daily_max_requests integer, p_daily_max_tokens integer,
    p_mint_per_hour integer, p_notes text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[],
    p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_mint_token(p_secret_hash text, p_token_hash text, p_models text[],
    p_ttl_seconds integer, p_max_requests integer, p_max_tokens integer) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_revoke_client(p_name text, p_reason text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_revoke_token(p_token_id uuid) TO service_role;

REVOKE ALL ON TABLE public.google_ai_clients FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_clients TO service_role;

REVOKE ALL ON TABLE public.google_ai_tokens FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_tokens TO service_role;

REVOKE ALL ON TABLE public.google_ai_credential_refusals FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_credential_refusals TO service_role;

GRANT ALL ON FUNCTION public.google_ai_group_room(p_quota_group text, p_model text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text,
    p_exclude_key_ids uuid[]) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_answer_quota(p_answer jsonb, p_model text,
    p_exclude_key_ids uuid[]) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_cooldown_cause(p_model text) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_quota_report(p_token_hash text, p_caller text) TO eve_gateway;

ALTER TABLE public.google_ai_key_health ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_model_catalogue ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_service_tiers ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_model_prices ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.google_ai_key_health FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_key_health TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_catalogue FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_model_catalogue TO service_role;

GRANT ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_model_lifecycle_review(p_within_days integer) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_list() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_model_list() TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_traits(p_model text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_model_traits(p_model text) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_model_provider(p_model text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_model_provider(p_model text) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_record_key_check(p_key_id uuid, p_status text, p_http_status integer,
    p_reason text, p_message text, p_models jsonb, p_disable boolean) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_service_tier_list() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_service_tier_list() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_service_tiers FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_service_tiers TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_prices FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.google_ai_model_prices TO service_role;

ALTER TABLE public.google_ai_maintenance_log ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_maintenance_settings ENABLE ROW LEVEL SECURITY;

GRANT ALL ON FUNCTION public.google_ai_active_keys(p_provider text) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_active_keys(p_provider text) TO eve_gateway;

GRANT ALL ON FUNCTION public.google_ai_housekeeping() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_housekeeping() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_maintenance_settings FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT,UPDATE ON TABLE public.google_ai_maintenance_settings TO service_role;

GRANT ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[],
    p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone,
    p_status text, p_details jsonb) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_log_maintenance_run(p_operation text, p_tables_affected text[],
    p_deleted_count integer, p_started_at timestamp with time zone, p_completed_at timestamp with time zone,
    p_status text, p_details jsonb) TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_maintenance_log FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_maintenance_log TO service_role;

REVOKE ALL ON SEQUENCE public.google_ai_maintenance_log_id_seq FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON SEQUENCE public.google_ai_maintenance_log_id_seq TO service_role;

ALTER TABLE public.google_ai_metric_fold ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.google_ai_metric_totals ENABLE ROW LEVEL SECURITY;

GRANT ALL ON FUNCTION public.google_ai_metrics() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_metrics() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_metric_fold FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_metric_fold TO service_role;

REVOKE ALL ON TABLE public.google_ai_metric_totals FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_metric_totals TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_catalogue_status FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_model_catalogue_status TO service_role;

GRANT ALL ON FUNCTION public.google_ai_catalogue_status() TO service_role;

GRANT ALL ON FUNCTION public.google_ai_catalogue_status() TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_caller_budgets_today FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_caller_budgets_today TO service_role;

REVOKE ALL ON TABLE public.google_ai_clients_overview FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON TABLE public.google_ai_clients_overview TO service_role;

REVOKE ALL ON TABLE public.google_ai_cooldowns_active FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_cooldowns_active TO service_role;

REVOKE ALL ON TABLE public.google_ai_model_lifecycle FROM anon, authenticated, service_role, eve_gateway;

GRANT ALL ON TABLE public.google_ai_model_lifecycle TO service_role;

REVOKE ALL ON TABLE public.google_ai_queue_now FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_queue_now TO service_role;

REVOKE ALL ON TABLE public.google_ai_shares_today FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_shares_today TO service_role;

REVOKE ALL ON TABLE public.google_ai_spend_daily FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_spend_daily TO service_role;

GRANT ALL ON FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone) TO service_role;

GRANT ALL ON FUNCTION public.google_ai_spend_yesterday(p_now timestamp with time zone) TO eve_gateway;

REVOKE ALL ON TABLE public.google_ai_usage_by_caller_24h FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_usage_by_caller_24h TO service_role;

REVOKE ALL ON TABLE public.google_ai_usage_now FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_usage_now TO service_role;

REVOKE ALL ON TABLE public.google_ai_wait_by_class_1h FROM anon, authenticated, service_role, eve_gateway;

GRANT SELECT ON TABLE public.google_ai_wait_by_class_1h TO service_role;
