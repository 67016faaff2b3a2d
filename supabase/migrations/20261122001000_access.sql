-- Access, last, for everything the files before it created. Nothing here is for the Data API's
-- anon/authenticated roles. RLS is on for every gateway table (with no policies: only roles that
-- bypass RLS — the table owner and service_role — see rows), privileges are granted explicitly, and
-- every function is executable only by the roles the gateway uses: the functions' database owner,
-- service_role (the operator's tools) and eve_gateway (the Edge Functions' own role, below).
-- Every statement revokes before it grants, so applying this file again gives the same ACLs.
--
-- Note for the bot: with RLS on token_usage, the bot must write it with the service/secret key
-- (service_role), not the anon key. A project whose bot uses the anon key needs that switch first.

-- Tables ---------------------------------------------------------------------------------------
do $$
declare
  t text;
begin
  foreach t in array array['google_ai_api_keys', 'google_ai_model_limits', 'google_ai_usage_counters',
                           'google_ai_maintenance_log', 'google_ai_cooldowns', 'google_ai_attempts',
                           'google_ai_responses', 'token_usage', 'google_ai_clients', 'google_ai_tokens',
                           'google_ai_credential_refusals', 'google_ai_maintenance_settings',
                           'google_ai_key_health', 'google_ai_model_catalogue']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from anon, authenticated', t);
    -- service_role too (Supabase's default privileges give it everything): it gets back below only
    -- what it needs — no TRUNCATE of the audit log, no writes to counters. token_usage is the bot's
    -- own table: its privileges stay as the project has them.
    if t <> 'token_usage' then
      execute format('revoke all on table public.%I from service_role', t);
    end if;
  end loop;
end
$$;

revoke all on all sequences in schema public from anon, authenticated;

-- service_role: the operator's tools (supabase-py, the dashboard) manage keys and limits, tune the
-- housekeeping settings and read the logs; the bot keeps writing its GPT-4o usage to token_usage.
grant select, insert, update, delete on public.google_ai_api_keys, public.google_ai_model_limits to service_role;
grant select on public.google_ai_usage_counters, public.google_ai_cooldowns, public.google_ai_attempts,
  public.google_ai_maintenance_log, public.google_ai_responses, public.google_ai_clients, public.google_ai_tokens,
  public.google_ai_credential_refusals, public.google_ai_key_health, public.google_ai_model_catalogue
  to service_role;
grant select, update on public.google_ai_maintenance_settings to service_role;
grant select, insert on public.token_usage to service_role;
grant usage on all sequences in schema public to service_role;

-- Views (security_invoker: the tables' grants apply too) -----------------------------------------
revoke all on public.google_ai_usage_now, public.google_ai_cooldowns_active, public.google_ai_usage_by_caller_24h,
  public.google_ai_model_catalogue_status
  from anon, authenticated, service_role;
grant select on public.google_ai_usage_now, public.google_ai_cooldowns_active, public.google_ai_usage_by_caller_24h,
  public.google_ai_model_catalogue_status
  to service_role;
revoke all on public.google_ai_clients_overview from anon, authenticated;
grant select on public.google_ai_clients_overview to service_role;

-- Functions --------------------------------------------------------------------------------------
-- Revoke the default PUBLIC execute (and Supabase's default grants) from every gateway function,
-- then grant narrowly. The clock-injecting *_at variants, the reservation's steps, the housekeeping
-- steps and the helpers stay owner-only.
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.proname like 'google\_ai\_%'
  loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
  end loop;
end
$$;

-- service_role: the RPCs, for operators and scripts (supabase-js rpc, the clients CLI), and the pure
-- functions the security_invoker views use.
grant execute on function
  public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean),
  public.google_ai_reserve_with_token(text, text, integer, text, uuid[], integer, integer, jsonb, boolean),
  public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean),
  public.google_ai_release(uuid, text),
  public.google_ai_end_request(uuid),
  public.google_ai_cooldown(text, text, timestamptz, text, text),
  public.google_ai_check_token(text, integer),
  public.google_ai_model_capabilities(text),
  public.google_ai_mint_token(text, text, text[], integer, integer, integer),
  public.google_ai_create_client(text, text[], interval, integer, integer, integer, integer, integer, text),
  public.google_ai_revoke_client(text, text),
  public.google_ai_revoke_token(uuid),
  public.google_ai_housekeeping(),
  public.google_ai_active_keys(),
  public.google_ai_catalogue_status(),
  public.google_ai_log_maintenance_run(text, text[], integer, timestamptz, timestamptz, text, jsonb),
  public.google_ai_effective_limit(integer, numeric),
  public.google_ai_quota_group(text, uuid)
to service_role;

-- The Edge Functions' role -------------------------------------------------------------------------
-- eve_gateway may call the gateway's RPCs and nothing else. Every read and write the functions make
-- goes through a SECURITY DEFINER function (search_path = ''), so the role needs USAGE on the schema
-- and EXECUTE on exactly those functions: it can neither read nor write any table. The role is
-- created without LOGIN (a migration holds no password); the operator gives it one:
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

-- Exactly what the three functions call (supabase/functions/*/pg-store.ts and store.ts).
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
