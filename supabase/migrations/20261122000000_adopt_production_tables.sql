-- Adopt the five tables that already exist in production (seeds 000/001, known from a screenshot).
--
-- Rules for this file and every later one:
--   * create a table only if it is missing, in the shape production has;
--   * add only what is missing (columns, defaults on columns that have none, indexes, constraints);
--   * never drop, rename, retype or rewrite existing columns or rows;
--   * applying it twice changes nothing.
-- A unique constraint that existing rows would violate is not forced: the migration stops with a
-- message naming the duplicates, so the operator decides which row to keep.

create table if not exists public.google_ai_api_keys (
  id           uuid primary key default gen_random_uuid(),
  key_alias    text not null,
  provider     text not null default 'google',
  env_var_name text not null,
  is_active    boolean not null default true,
  priority     integer not null default 100,
  created_at   timestamptz not null default now(),
  notes        text
);

create table if not exists public.google_ai_model_limits (
  id         serial primary key,
  model      text not null,
  rpm        integer,
  tpm        integer,
  rpd        integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists public.google_ai_usage_counters (
  id            bigserial primary key,
  api_key_id    uuid,
  model         text,
  minute_bucket timestamptz,
  day_bucket    date,
  rpm_used      integer not null default 0,
  tpm_used      integer not null default 0,
  rpd_used      integer not null default 0,
  updated_at    timestamptz not null default now()
);

create table if not exists public.google_ai_maintenance_log (
  id              serial primary key,
  operation       text not null,
  tables_affected text[],
  deleted_count   integer,
  started_at      timestamptz,
  completed_at    timestamptz,
  status          text,
  details         jsonb,
  created_at      timestamptz not null default now()
);

-- token_usage is the bot's GPT-4o usage table. Seed 000 says the bot writes the time into `at`
-- (seed 001 lists `ts`): we create `at` and, on adoption, accept whichever the table has.
create table if not exists public.token_usage (
  id                bigserial primary key,
  model             text,
  prompt_tokens     integer,
  completion_tokens integer,
  total_tokens      integer,
  request_id        text,
  meta              jsonb,
  at                timestamptz not null default now()
);

-- Columns the gateway relies on, added where an older production table lacks them.
alter table public.google_ai_api_keys add column if not exists provider text;
alter table public.google_ai_api_keys add column if not exists notes text;
alter table public.google_ai_api_keys add column if not exists created_at timestamptz;
alter table public.google_ai_model_limits add column if not exists created_at timestamptz;
alter table public.google_ai_model_limits add column if not exists updated_at timestamptz;
alter table public.google_ai_usage_counters add column if not exists model text;
alter table public.google_ai_usage_counters add column if not exists updated_at timestamptz;
alter table public.google_ai_maintenance_log add column if not exists created_at timestamptz;
alter table public.token_usage add column if not exists model text;
alter table public.token_usage add column if not exists prompt_tokens integer;
alter table public.token_usage add column if not exists completion_tokens integer;
alter table public.token_usage add column if not exists total_tokens integer;
alter table public.token_usage add column if not exists request_id text;
alter table public.token_usage add column if not exists meta jsonb;
do $$
begin
  -- a time column under either name the seeds use; `at` only when the table has neither
  if not exists (select 1 from information_schema.columns
                 where table_schema = 'public' and table_name = 'token_usage' and column_name in ('at', 'ts')) then
    alter table public.token_usage add column at timestamptz default now();
  end if;
end
$$;

-- Defaults only where a column has none (never overrides the owner's own defaults).
do $$
declare
  d record;
begin
  for d in
    select * from (values
      ('google_ai_api_keys', 'provider', '''google'''),
      ('google_ai_api_keys', 'is_active', 'true'),
      ('google_ai_api_keys', 'priority', '100'),
      ('google_ai_api_keys', 'created_at', 'now()'),
      ('google_ai_model_limits', 'created_at', 'now()'),
      ('google_ai_model_limits', 'updated_at', 'now()'),
      ('google_ai_usage_counters', 'rpm_used', '0'),
      ('google_ai_usage_counters', 'tpm_used', '0'),
      ('google_ai_usage_counters', 'rpd_used', '0'),
      ('google_ai_usage_counters', 'updated_at', 'now()'),
      ('google_ai_maintenance_log', 'created_at', 'now()'),
      ('token_usage', 'at', 'now()'),
      ('token_usage', 'ts', 'now()')
    ) as t(tbl, col, expr)
  loop
    if exists (
      select 1 from information_schema.columns c
      where c.table_schema = 'public' and c.table_name = d.tbl and c.column_name = d.col
        and c.column_default is null
    ) then
      execute format('alter table public.%I alter column %I set default %s', d.tbl, d.col, d.expr);
    end if;
  end loop;
end
$$;

-- The gateway writes counter rows per quota group, not per key: a NOT NULL api_key_id from the
-- screenshot era would refuse them. Dropping NOT NULL keeps every row as it is.
alter table public.google_ai_usage_counters alter column api_key_id drop not null;

-- Unique constraints the gateway's upserts need, added only when the data allows it.
do $$
declare
  dupes text;
begin
  select string_agg(model, ', ') into dupes
  from (select model from public.google_ai_model_limits group by model having count(*) > 1) d;
  if dupes is not null then
    raise exception 'google_ai_model_limits has duplicate rows for model(s) %: keep one row per model, then re-run the migration', dupes;
  end if;
  select string_agg(key_alias, ', ') into dupes
  from (select key_alias from public.google_ai_api_keys group by key_alias having count(*) > 1) d;
  if dupes is not null then
    raise exception 'google_ai_api_keys has duplicate key_alias value(s) %: make them unique, then re-run the migration', dupes;
  end if;
end
$$;

create unique index if not exists google_ai_model_limits_model_key on public.google_ai_model_limits (model);
create unique index if not exists google_ai_api_keys_key_alias_key on public.google_ai_api_keys (key_alias);
create index if not exists token_usage_request_id_idx on public.token_usage (request_id);
create index if not exists google_ai_maintenance_log_started_at_idx on public.google_ai_maintenance_log (started_at);

-- A model row's first capability columns arrive here, before the baseline, so that the rows
-- production already has can be filled on the one run that adds them (Gemma takes no system
-- instruction and no JSON mode; the owner says gemma-3-27b) and later edits by the operator are
-- never reverted. The baseline adds every other column the schema has.
alter table public.google_ai_model_limits add column if not exists is_active boolean not null default true;
-- Fraction of each limit kept free (0.1 admits 90%), for quotas Google counts slightly differently.
alter table public.google_ai_model_limits add column if not exists safety_margin numeric(4, 3) not null default 0;
alter table public.google_ai_model_limits add column if not exists notes text;
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

-- The owner's key rows may hold provider names from before the gateway: each must read as a built-in
-- provider (google_ai_provider in 10_keys_and_limits.sql: case, spaces, '_' and '-' do not count; gemini
-- and Google AI are google; null is google), or the migration stops here naming the rows, having
-- changed nothing (the operator corrects them and runs it again). Then the key rows' foreign key to the
-- provider rows keeps it so.
do $providers$
declare
  v_rows text;
begin
  select pg_catalog.string_agg(pg_catalog.format('%s (%s)', k.id, k.provider), ', ' order by k.id) into v_rows
  from public.google_ai_api_keys k
  where pg_catalog.translate(pg_catalog.lower(coalesce(k.provider, 'google')), ' _-', '')
        not in ('google', 'googleai', 'gemini', 'openai');
  if v_rows is not null then
    raise exception 'google_ai_api_keys: provider not known in row(s) %', v_rows
      using hint = 'Known: google (any case; also gemini, google_ai, Google AI) and openai. '
                   'Correct these rows'' provider, then run the migration again.';
  end if;
end
$providers$;
