-- The record of each request: the attempt log (one row per reservation decision and its outcome)
-- and the idempotency records of requests that carry the caller's own request_id.

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
