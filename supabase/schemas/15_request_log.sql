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
CREATE TABLE public.google_ai_attempts (
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

COMMENT ON TYPE public.google_ai_attempt_outcome IS
    'What came of one attempt at the provider, as finalize takes it: its kind (succeeded, upstream_error, '
    'network_error, timeout, cut, withdrawn), the provider''s counts and answer, the rest it asks for '
    '(cooldown_until, or until the provider''s midnight), its room and the limits it states.';

-- Finalize's first half, as its second takes it (google_ai_write_outcome, 60_life_cycle.sql): att, the
-- attempt row written, whose admission is still to settle (null where none is); answer, finalize's answer.
CREATE TYPE public.google_ai_outcome_written AS (
    att public.google_ai_attempts,
    answer jsonb
);

COMMENT ON TYPE public.google_ai_outcome_written IS
    'Finalize''s first half: the attempt row written, its admission still to settle (null where none is), '
    'and finalize''s answer.';

-- A caller that names its request (its own request_id) may repeat it safely: while the first call
-- is in flight the row is 'in_progress' with a lease (expires_at), and a repeat is refused; once it
-- succeeded the row is 'done' with the answer, replayed for 24 hours (housekeeping deletes older
-- rows). Holds model output, never a key or a token.
CREATE TABLE public.google_ai_responses (
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
