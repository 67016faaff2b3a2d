-- Access: nothing here is for the Data API's anon/authenticated roles. RLS is on for every gateway
-- table (with no policies: only roles that bypass RLS — the table owner and service_role — see
-- rows), privileges are granted explicitly, and every function is executable only by the roles the
-- gateway uses: the functions' database owner (the Edge Functions connect as it through
-- SUPABASE_DB_URL) and service_role.
--
-- Note for the bot: with RLS on token_usage, the bot must write it with the service/secret key
-- (service_role), not the anon key. A project whose bot uses the anon key needs that switch first.

do $$
declare
  t text;
begin
  foreach t in array array['google_ai_api_keys', 'google_ai_model_limits', 'google_ai_usage_counters',
                           'google_ai_maintenance_log', 'google_ai_cooldowns', 'google_ai_attempts',
                           'google_ai_responses', 'token_usage']
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

-- service_role: the operator's tools (supabase-py, the dashboard) manage keys and limits and read
-- the logs; the bot keeps writing its GPT-4o usage to token_usage.
grant select, insert, update, delete on public.google_ai_api_keys, public.google_ai_model_limits to service_role;
grant select on public.google_ai_usage_counters, public.google_ai_cooldowns, public.google_ai_attempts,
  public.google_ai_maintenance_log, public.google_ai_responses to service_role;
grant select, insert on public.token_usage to service_role;
grant usage on all sequences in schema public to service_role;

-- Functions: revoke the default PUBLIC execute (and Supabase's default grants), then grant narrowly.
-- The clock-injecting google_ai_reserve_at and the internal helpers stay owner-only.
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

grant execute on function
  public.google_ai_reserve(text, integer, text, text, uuid[], integer, integer, jsonb, boolean),
  public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer, timestamptz, boolean, jsonb, boolean),
  public.google_ai_release(uuid, text),
  public.google_ai_end_request(uuid),
  public.google_ai_cooldown(text, text, timestamptz, text, text)
to service_role;
