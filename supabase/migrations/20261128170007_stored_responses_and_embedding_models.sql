-- Written by `npm run db:diff` from the difference between what the migrations before it build and
-- what supabase/schemas builds. Applying it twice changes nothing.
-- What it changes: the Responses API's stored conversations (google_ai_stored_responses, their lifetime
--   setting, their housekeeping step and the functions that keep, read and delete them for their caller only)
--   and the embedding models' facts (google_ai_embedding_models: dimensions, batch size, input size, how the
--   provider counts a batch)
set check_function_bodies = off;

create table if not exists "public"."google_ai_embedding_models" (
    "model" text not null,
    "dimensions" integer not null,
    "shortenable" boolean not null default false,
    "max_batch" integer not null,
    "max_input_tokens" integer not null,
    "counts_each_input" boolean not null default false,
    "source" text,
    "updated_at" timestamp with time zone not null default now()
      );

alter table "public"."google_ai_embedding_models" enable row level security;

create table if not exists "public"."google_ai_stored_responses" (
    "id" text not null,
    "owner" text not null,
    "model" text not null,
    "response" jsonb not null,
    "conversation" jsonb not null,
    "created_at" timestamp with time zone not null default now(),
    "expires_at" timestamp with time zone not null
      );

alter table "public"."google_ai_stored_responses" enable row level security;

alter table "public"."google_ai_maintenance_settings" add column if not exists "stored_response_lifetime" interval not null default '1 day'::interval;

create UNIQUE index if not exists google_ai_embedding_models_pkey ON public.google_ai_embedding_models USING btree (model);

create index if not exists google_ai_stored_responses_expires_at_idx ON public.google_ai_stored_responses USING btree (expires_at);

create UNIQUE index if not exists google_ai_stored_responses_pkey ON public.google_ai_stored_responses USING btree (id);

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_pkey') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_pkey" PRIMARY KEY using index "google_ai_embedding_models_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_stored_responses"'::regclass
                 and conname = 'google_ai_stored_responses_pkey') then
    alter table "public"."google_ai_stored_responses" add constraint "google_ai_stored_responses_pkey" PRIMARY KEY using index "google_ai_stored_responses_pkey";
  end if;
end $migration$;

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_dimensions_check') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_dimensions_check" CHECK (((dimensions >= 1) AND (dimensions <= 65536))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_dimensions_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_max_batch_check') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_max_batch_check" CHECK (((max_batch >= 1) AND (max_batch <= 100000))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_max_batch_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_max_input_tokens_check') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_max_input_tokens_check" CHECK ((max_input_tokens >= 1)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_max_input_tokens_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_embedding_models"'::regclass
                 and conname = 'google_ai_embedding_models_model_fkey') then
    alter table "public"."google_ai_embedding_models" add constraint "google_ai_embedding_models_model_fkey" FOREIGN KEY (model) REFERENCES public.google_ai_model_limits(model) ON UPDATE CASCADE ON DELETE CASCADE not valid;
  end if;
end $migration$;

alter table "public"."google_ai_embedding_models" validate constraint "google_ai_embedding_models_model_fkey";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_maintenance_settings"'::regclass
                 and conname = 'google_ai_maintenance_settings_stored_response_lifetime_check') then
    alter table "public"."google_ai_maintenance_settings" add constraint "google_ai_maintenance_settings_stored_response_lifetime_check" CHECK (((stored_response_lifetime >= '00:01:00'::interval) AND (stored_response_lifetime <= '30 days'::interval))) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_maintenance_settings" validate constraint "google_ai_maintenance_settings_stored_response_lifetime_check";

do $migration$ begin
  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '"public"."google_ai_stored_responses"'::regclass
                 and conname = 'google_ai_stored_responses_id_check') then
    alter table "public"."google_ai_stored_responses" add constraint "google_ai_stored_responses_id_check" CHECK ((id ~ '^resp_[A-Za-z0-9_-]{1,100}$'::text)) not valid;
  end if;
end $migration$;

alter table "public"."google_ai_stored_responses" validate constraint "google_ai_stored_responses_id_check";

CREATE OR REPLACE FUNCTION public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text)
 RETURNS boolean
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  with gone as (
    delete from public.google_ai_stored_responses r
    where r.id = p_id and r.owner = public.google_ai_stored_response_owner(p_token_hash, p_caller)
      and r.expires_at > pg_catalog.clock_timestamp()
    returning 1)
  select exists (select from gone)
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_embedding_traits(p_model text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object('dimensions', e.dimensions, 'shortenable', e.shortenable, 'max_batch', e.max_batch,
    'max_input_tokens', e.max_input_tokens, 'counts_each_input', e.counts_each_input)
  from public.google_ai_embedding_models e where e.model = p_model
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text, p_response jsonb, p_conversation jsonb)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object('model', r.model, 'response', r.response, 'conversation', r.conversation)
  from public.google_ai_stored_responses r
  where r.id = p_id and r.owner = public.google_ai_stored_response_owner(p_token_hash, p_caller)
    and r.expires_at > pg_catalog.clock_timestamp()
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_stored_response_owner(p_token_hash text, p_caller text)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select case
    when p_token_hash is null then 'service:' || p_caller
    else (select 'token:' || t.id::text from public.google_ai_tokens t
          where t.token_hash = p_token_hash and t.revoked_at is null
            and t.expires_at > pg_catalog.clock_timestamp())
  end
$function$
;

CREATE OR REPLACE FUNCTION public.google_ai_housekeeping_steps(p_now timestamp with time zone, p_settings public.google_ai_maintenance_settings)
 RETURNS TABLE(name text, rel text, fn text, key text, condition text, cutoff timestamp with time zone, sort text)
 LANGUAGE sql
 STABLE
AS $function$
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
    ('dead_counters', 'public.google_ai_usage_counters', 'counters', null, null, null, null)
$function$
;

grant delete on table "public"."google_ai_embedding_models" to "service_role";

grant insert on table "public"."google_ai_embedding_models" to "service_role";

grant select on table "public"."google_ai_embedding_models" to "service_role";

grant update on table "public"."google_ai_embedding_models" to "service_role";

grant delete on table "public"."google_ai_stored_responses" to "service_role";

grant select on table "public"."google_ai_stored_responses" to "service_role";

-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
revoke all on function public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text) to eve_gateway;
comment on function public.google_ai_delete_stored_response(p_token_hash text, p_caller text, p_id text) is 'Deletes a stored Responses API answer of the caller''s own; false when it had none.';
revoke all on table public.google_ai_embedding_models from public, anon, authenticated, service_role;
grant insert, select, update, delete on table public.google_ai_embedding_models to service_role;
comment on table public.google_ai_embedding_models is 'Embedding models (a row of google_ai_model_limits each): dimensions (shortenable: a smaller one may be asked), max_batch (inputs per provider request), max_input_tokens (per input), counts_each_input (the provider counts each input of a batch as one request: the gateway sends one input per call), source (where the facts were read).';
revoke all on function public.google_ai_embedding_traits(p_model text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_embedding_traits(p_model text) to eve_gateway;
grant execute on function public.google_ai_embedding_traits(p_model text) to service_role;
comment on function public.google_ai_embedding_traits(p_model text) is 'An embedding model''s dimensions, batch and input limits and counting, or null for a model that does not embed.';
comment on table public.google_ai_maintenance_settings is 'Housekeeping settings (one row). attempts_retention: how long attempt rows are kept; stale_reservation_after: when an open reservation counts as abandoned; token_grace: how long expired/revoked tokens are kept; cron_history_retention: cron.job_run_details kept; batch_size/max_batches/time_budget: work per run; lock_timeout_ms: longest wait for a table lock; stored_response_lifetime: how long a Responses API conversation kept for previous_response_id lives (1 minute to 30 days, OpenAI''s own keeping).';
revoke all on function public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text, p_response jsonb, p_conversation jsonb) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text, p_response jsonb, p_conversation jsonb) to eve_gateway;
comment on function public.google_ai_store_response(p_token_hash text, p_caller text, p_id text, p_model text, p_response jsonb, p_conversation jsonb) is 'Keeps a Responses API answer and its conversation for its caller (a service label, or a live token) for stored_response_lifetime.';
revoke all on function public.google_ai_stored_response_owner(p_token_hash text, p_caller text) from public, anon, authenticated, service_role;
revoke all on function public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) from public, anon, authenticated, service_role, eve_gateway;
grant execute on function public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) to eve_gateway;
comment on function public.google_ai_stored_response(p_token_hash text, p_caller text, p_id text) is 'A stored Responses API answer of the caller''s own while it lives, else null.';
revoke all on table public.google_ai_stored_responses from public, anon, authenticated, service_role;
grant select, delete on table public.google_ai_stored_responses to service_role;
comment on table public.google_ai_stored_responses is 'Responses API answers kept for previous_response_id and GET/DELETE …/v1/responses/{id}: the response object, its conversation in the hub''s words, whose it is (owner: service:<label> or token:<token id>), until expires_at (created_at + stored_response_lifetime).';
