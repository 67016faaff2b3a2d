-- The Edge Functions' own database role: eve_gateway may call the gateway's RPCs and nothing else.
--
-- The functions used to connect as postgres, which owns every table and bypasses RLS. Every read and
-- write they make now goes through a SECURITY DEFINER function (search_path = ''), so the role needs
-- USAGE on the schema and EXECUTE on exactly those functions: it can neither read nor write any table.
-- The role is created without LOGIN (a migration holds no password); the operator gives it one:
--
--   alter role eve_gateway with login password '<a long random password>';
--
-- and points the functions at it: GATEWAY_DB_URL = postgres://eve_gateway.<project-ref>:<password>@
-- <region>.pooler.supabase.com:6543/postgres (docs/architecture.md, "Database access").

do $$
begin
  create role eve_gateway nologin;
exception
  when duplicate_object then null; -- created by an earlier run, or by another database of the cluster
end
$$;

grant usage on schema public to eve_gateway;

-- The model row a caller's name resolves to (by name, else alias), with what llm-invoke adapts to.
create or replace function public.google_ai_model_capabilities(p_model text)
returns table (model text, supports_system_instruction boolean, supports_json_mode boolean)
language sql stable security definer set search_path = ''
as $$
  select l.model, l.supports_system_instruction, l.supports_json_mode
  from public.google_ai_resolve_model(p_model) l
  where l.id is not null
$$;

-- The keys the maintenance function checks against Google, with their quota group.
create or replace function public.google_ai_active_keys()
returns table (id text, key_alias text, env_var_name text, quota_group text)
language sql stable security definer set search_path = ''
as $$
  select k.id::text, k.key_alias, k.env_var_name, coalesce(k.project_id, 'key:' || k.id::text)
  from public.google_ai_api_keys k
  where k.is_active
  order by k.priority nulls last, k.key_alias
$$;

-- The model catalogue's status (the view of the same name), for the maintenance function's summary.
create or replace function public.google_ai_catalogue_status()
returns setof public.google_ai_model_catalogue_status
language sql stable security definer set search_path = ''
as $$ select * from public.google_ai_model_catalogue_status order by model $$;

-- One google_ai_maintenance_log row for a run of the maintenance function; returns its id.
create or replace function public.google_ai_log_maintenance_run(
  p_operation text, p_tables_affected text[], p_deleted_count integer, p_started_at timestamptz,
  p_completed_at timestamptz, p_status text, p_details jsonb)
returns integer
language sql security definer set search_path = ''
as $$
  insert into public.google_ai_maintenance_log
    (operation, tables_affected, deleted_count, started_at, completed_at, status, details)
  values (p_operation, p_tables_affected, p_deleted_count, p_started_at, p_completed_at, p_status, p_details)
  returning id
$$;

do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'public.google_ai_model_capabilities(text)',
    'public.google_ai_active_keys()',
    'public.google_ai_catalogue_status()',
    'public.google_ai_log_maintenance_run(text, text[], integer, timestamptz, timestamptz, text, jsonb)'
  ]::regprocedure[] loop
    -- Not from service_role: revoking and granting again would reorder the ACL on every run.
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;

-- Exactly what the three functions call (supabase/functions/*/pg-store.ts and store.ts). Revoked
-- first so the role is granted last on every run: earlier migrations revoke and grant service_role
-- again when they are re-applied, and the ACL must come out the same each time.
do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    -- llm-invoke
    'public.google_ai_check_token(text, integer)',
    'public.google_ai_model_capabilities(text)',
    'public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean)',
    'public.google_ai_reserve_with_token(text, text, integer, text, uuid[], integer, integer, jsonb, boolean)',
    'public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean)',
    'public.google_ai_release(uuid, text)',
    'public.google_ai_end_request(uuid)',
    -- issue-kaggle-token
    'public.google_ai_mint_token(text, text, text[], integer, integer, integer)',
    -- maintenance
    'public.google_ai_housekeeping()',
    'public.google_ai_active_keys()',
    'public.google_ai_record_key_check(uuid, text, integer, text, text, jsonb, boolean)',
    'public.google_ai_catalogue_status()',
    'public.google_ai_log_maintenance_run(text, text[], integer, timestamptz, timestamptz, text, jsonb)'
  ]::regprocedure[] loop
    execute format('revoke all on function %s from eve_gateway', f);
    execute format('grant execute on function %s to eve_gateway', f);
  end loop;
end
$$;
