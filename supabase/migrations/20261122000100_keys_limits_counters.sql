-- Keys, quota groups, model limits and the counters and cooldowns they are enforced on: what the
-- gateway adds to the adopted tables, and the small pure functions every later file reads them with
-- (the quota group of a key, the minute and Pacific-day windows, a limit after its safety margin,
-- the model a caller's name resolves to). Additive and idempotent, like every migration here.

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

-- The quota group of a key: its project, else the key alone. The one definition every query uses.
-- Inlined by the planner into the queries that call it (plain SQL, immutable, no SET clause), so
-- it costs the reservation nothing; with no SET search_path, the body names everything by schema.
create or replace function public.google_ai_quota_group(p_project_id text, p_key_id uuid)
returns text language sql immutable parallel safe
as $$ select coalesce(p_project_id, 'key:' operator(pg_catalog.||) p_key_id::pg_catalog.text) $$;

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

-- Windows --------------------------------------------------------------------------------------
-- Minute windows start at second :00; the day is the calendar day in America/Los_Angeles, so the
-- day window is 23 or 25 hours long on DST change days. Both come from the database clock.
create or replace function public.google_ai_minute_window(p_at timestamptz)
returns timestamptz language sql immutable parallel safe set search_path = ''
as $$ select pg_catalog.date_trunc('minute', p_at, 'UTC') $$;

create or replace function public.google_ai_pacific_day(p_at timestamptz)
returns date language sql immutable parallel safe set search_path = ''
as $$ select (p_at at time zone 'America/Los_Angeles')::date $$;

create or replace function public.google_ai_pacific_midnight_after(p_at timestamptz)
returns timestamptz language sql immutable parallel safe set search_path = ''
as $$ select ((public.google_ai_pacific_day(p_at) + 1)::timestamp at time zone 'America/Los_Angeles') $$;

-- A limit after the model's safety margin; null means "no limit", 0 (or less) means "closed".
-- A positive limit never drops below 1, so a margin cannot silently close a model.
create or replace function public.google_ai_effective_limit(p_limit integer, p_margin numeric)
returns integer language sql immutable parallel safe set search_path = ''
as $$ select case when p_limit is null then null
                  when p_limit <= 0 then 0
                  else greatest(1, floor(p_limit * (1 - coalesce(p_margin, 0))))::integer end $$;

-- The model row a caller's name resolves to (by name, else by alias).
create or replace function public.google_ai_resolve_model(p_model text)
returns public.google_ai_model_limits language sql stable set search_path = ''
as $$
  select l.* from public.google_ai_model_limits l
  where l.is_active and (l.model = p_model or p_model = any (l.aliases))
  order by (l.model = p_model) desc, l.id
  limit 1
$$;

-- The model row a caller's name resolves to (by name, else alias), with what llm-invoke adapts to.
create or replace function public.google_ai_model_capabilities(p_model text)
returns table (model text, supports_system_instruction boolean, supports_json_mode boolean)
language sql stable security definer set search_path = ''
as $$
  select l.model, l.supports_system_instruction, l.supports_json_mode
  from public.google_ai_resolve_model(p_model) l
  where l.id is not null
$$;
