-- What the gateway adds to the adopted schema: quota groups, model capabilities, per-group counter
-- rows, cooldowns and the attempt log. Additive and idempotent, like every migration here.

-- Keys -----------------------------------------------------------------------------------------
-- Google counts quota per Cloud project, not per key: keys with the same project_id share one quota
-- group. A key without project_id is its own group ('key:<id>'), the safe assumption for keys whose
-- project nobody recorded.
alter table public.google_ai_api_keys add column if not exists project_id text;
-- Models this key may serve (null: every configured model).
alter table public.google_ai_api_keys add column if not exists models text[];
-- Why a key was taken out of rotation (by maintenance or an operator) and when. Keys are never
-- deleted: their history stays readable in the attempt log.
alter table public.google_ai_api_keys add column if not exists disabled_reason text;
alter table public.google_ai_api_keys add column if not exists disabled_at timestamptz;
alter table public.google_ai_api_keys add column if not exists updated_at timestamptz default now();

comment on column public.google_ai_api_keys.project_id is
  'Google Cloud project of the key: keys of one project share one quota group. Null: the key is its own group.';
comment on column public.google_ai_api_keys.env_var_name is
  'Name of the Edge Function secret that holds the key (supabase secrets set NAME=...). The key itself never enters the database.';
comment on column public.google_ai_api_keys.priority is
  'Lower is preferred. Among equal priorities the group with the most headroom is chosen.';

create index if not exists google_ai_api_keys_active_idx
  on public.google_ai_api_keys (priority) where is_active;

-- Models ---------------------------------------------------------------------------------------
alter table public.google_ai_model_limits add column if not exists is_active boolean not null default true;
-- Fraction of each limit kept free (0.1 admits 90%), for quotas Google counts slightly differently.
alter table public.google_ai_model_limits add column if not exists safety_margin numeric(4, 3) not null default 0;
alter table public.google_ai_model_limits add column if not exists notes text;

-- Aliases and capabilities are new columns: when they arrive, fill them for the models production
-- already has (Gemma takes no system instruction and no JSON mode; the owner says gemma-3-27b).
-- Only on the run that adds them, so later edits by the operator are never reverted.
do $$
begin
  if not exists (select 1 from information_schema.columns where table_schema = 'public'
                 and table_name = 'google_ai_model_limits' and column_name = 'aliases') then
    alter table public.google_ai_model_limits add column aliases text[] not null default '{}';
    update public.google_ai_model_limits set aliases = array['gemma-3-27b'] where model = 'gemma-3-27b-it';
  end if;
  if not exists (select 1 from information_schema.columns where table_schema = 'public'
                 and table_name = 'google_ai_model_limits' and column_name = 'supports_system_instruction') then
    alter table public.google_ai_model_limits add column supports_system_instruction boolean not null default true;
    alter table public.google_ai_model_limits add column supports_json_mode boolean not null default true;
    update public.google_ai_model_limits set supports_system_instruction = false, supports_json_mode = false
    where model like 'gemma-%';
  end if;
end
$$;

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'google_ai_model_limits_safety_margin_check') then
    alter table public.google_ai_model_limits
      add constraint google_ai_model_limits_safety_margin_check
      check (safety_margin >= 0 and safety_margin < 1) not valid;
  end if;
end
$$;

comment on column public.google_ai_model_limits.aliases is
  'Other names callers may use for this model (gemma-3-27b for gemma-3-27b-it).';
comment on column public.google_ai_model_limits.rpm is 'Requests per minute per quota group (null: no limit).';
comment on column public.google_ai_model_limits.tpm is 'Input tokens per minute per quota group (null: no limit).';
comment on column public.google_ai_model_limits.rpd is 'Requests per Pacific day per quota group (null: no limit).';

-- Counters -------------------------------------------------------------------------------------
-- One row per (quota group, model) holds the current minute and the current Pacific day:
-- minute_bucket/rpm_used/tpm_used are the minute window, day_bucket/rpd_used the day window.
-- A reservation rolls a window over when it finds the row in an older one. Rows from before the
-- gateway (quota_group null, per key) are kept untouched and ignored.
alter table public.google_ai_usage_counters add column if not exists quota_group text;
create unique index if not exists google_ai_usage_counters_group_model_key
  on public.google_ai_usage_counters (quota_group, model) where quota_group is not null;
-- Hot rows: updates stay HOT (no indexed column changes) when pages keep free space.
alter table public.google_ai_usage_counters set (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01);

comment on column public.google_ai_usage_counters.quota_group is
  'Google Cloud project (or key:<id>) the row counts for. Null on rows written before the gateway.';
comment on column public.google_ai_usage_counters.rpd_used is
  'Requests booked in day_bucket (the Pacific day), carried across minute rollovers.';

-- Cooldowns ------------------------------------------------------------------------------------
-- A quota group rests for one model until a time, e.g. after Google's own 429 named a retry delay,
-- or until Pacific midnight after a per-day quota violation.
create table if not exists public.google_ai_cooldowns (
  quota_group    text not null,
  model          text not null,
  cooldown_until timestamptz not null,
  reason         text,
  quota_id       text,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  primary key (quota_group, model)
);
create index if not exists google_ai_cooldowns_until_idx on public.google_ai_cooldowns (cooldown_until);

-- Attempt log ----------------------------------------------------------------------------------
-- One row per reservation decision: a refusal, or a reservation that later becomes the outcome of
-- one call to Google (succeeded, google_error, network_error, timeout) or is released.
-- Never holds a key, a token or a secret: keys are named by alias, callers by label.
create table if not exists public.google_ai_attempts (
  id               bigint generated always as identity primary key,
  reservation_id   uuid not null default gen_random_uuid(),
  created_at       timestamptz not null default now(),
  finished_at      timestamptz,
  status           text not null,
  request_id       text,
  caller           text not null,
  client_id        uuid,
  token_id         uuid,
  model            text not null,
  requested_model  text,
  attempt          smallint not null default 1,
  api_key_id       uuid,
  key_alias        text,
  quota_group      text,
  minute_bucket    timestamptz,
  day_bucket       date,
  estimated_tokens integer,
  input_tokens     integer,
  output_tokens    integer,
  limit_hit        text,
  retry_after_ms   bigint,
  http_status      integer,
  error_code       text,
  quota_id         text,
  error_message    text,
  latency_ms       integer,
  wait_ms          integer,
  metadata         jsonb not null default '{}',
  constraint google_ai_attempts_status_check check (status in
    ('reserved', 'refused', 'succeeded', 'google_error', 'network_error', 'timeout', 'released', 'abandoned'))
);
create unique index if not exists google_ai_attempts_reservation_id_key on public.google_ai_attempts (reservation_id);
create index if not exists google_ai_attempts_created_at_idx on public.google_ai_attempts (created_at);
create index if not exists google_ai_attempts_request_id_idx on public.google_ai_attempts (request_id) where request_id is not null;
create index if not exists google_ai_attempts_caller_idx on public.google_ai_attempts (caller, created_at);
create index if not exists google_ai_attempts_client_idx on public.google_ai_attempts (client_id, created_at) where client_id is not null;
create index if not exists google_ai_attempts_open_idx on public.google_ai_attempts (created_at) where status = 'reserved';

comment on table public.google_ai_attempts is
  'Audit log: one row per reservation decision and its outcome. Secrets never appear here.';

-- Idempotency records ----------------------------------------------------------------------------
-- A caller that names its request (its own request_id) may repeat it safely: while the first call
-- is in flight the row is 'in_progress' with a lease (expires_at), and a repeat is refused; once it
-- succeeded the row is 'done' with the answer, replayed for 24 hours (housekeeping deletes older
-- rows). Holds model output, never a key or a token.
create table if not exists public.google_ai_responses (
  caller      text not null,
  request_id  text not null,
  status      text not null default 'done',
  model       text,
  response    jsonb,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz,
  primary key (caller, request_id),
  constraint google_ai_responses_status_check check (status in ('in_progress', 'done'))
);
create index if not exists google_ai_responses_created_at_idx on public.google_ai_responses (created_at);
comment on table public.google_ai_responses is
  'Idempotency records of requests that carried the caller''s own request_id: in flight (with a lease) or done (answer replayed for 24 h).';
