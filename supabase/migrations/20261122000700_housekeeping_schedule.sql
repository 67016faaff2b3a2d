-- The schedule: pg_cron runs the housekeeping hourly and, where pg_net and Vault exist, calls the
-- `maintenance` Edge Function (key health, model catalogue) every six hours. Applying this file again
-- overwrites the jobs by name, never duplicates them. Without pg_cron it changes nothing and says
-- (NOTICE) how to enable it; re-apply it, or run the cron.schedule statements below, afterwards.
--
--   job 'eve-gateway-housekeeping'   '17 * * * *'    select public.google_ai_housekeeping()
--   job 'eve-gateway-maintenance'    '47 */6 * * *'  select public.google_ai_invoke_maintenance_function()
--
-- The second job reads two Vault secrets (names are part of the API, see docs/maintenance.md):
--   eve_gateway_functions_url   https://<project-ref>.supabase.co/functions/v1
--   eve_gateway_service_key     the project's secret (sb_secret_...) or legacy service_role key

-- Calls the maintenance Edge Function through pg_net, with its URL and the service key read from
-- Vault at call time (so rotating the key is a Vault update, not a migration). Asynchronous: returns
-- pg_net's request id; the answer lands in net._http_response. By default the function skips its own
-- housekeeping (the hourly job does that) and checks keys and the model catalogue.
-- Raises a message that says what to set up when pg_net, Vault or a secret is missing. It reads the
-- service key: only its owner (the role pg_cron runs the job as) may call it (the access file).
create or replace function public.google_ai_invoke_maintenance_function(
  p_body jsonb default '{"housekeeping": false}',
  p_timeout_ms integer default 120000)
returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
  v_url text;
  v_key text;
  v_id bigint;
begin
  if pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null then
    raise exception 'pg_net is not installed: enable it (Dashboard > Database > Extensions > pg_net, or: create extension pg_net;)'
      using errcode = '55000';
  end if;
  if pg_catalog.to_regclass('vault.decrypted_secrets') is null then
    raise exception 'Supabase Vault is not available in this database (vault.decrypted_secrets is missing)'
      using errcode = '55000';
  end if;
  execute 'select s.decrypted_secret from vault.decrypted_secrets s where s.name = $1 order by s.created_at desc limit 1'
    into v_url using 'eve_gateway_functions_url';
  execute 'select s.decrypted_secret from vault.decrypted_secrets s where s.name = $1 order by s.created_at desc limit 1'
    into v_key using 'eve_gateway_service_key';
  if coalesce(v_url, '') = '' then
    raise exception 'Vault secret eve_gateway_functions_url is missing: select vault.create_secret(''https://<project-ref>.supabase.co/functions/v1'', ''eve_gateway_functions_url'');'
      using errcode = '55000';
  end if;
  if coalesce(v_key, '') = '' then
    raise exception 'Vault secret eve_gateway_service_key is missing: select vault.create_secret(''<service or secret key>'', ''eve_gateway_service_key'');'
      using errcode = '55000';
  end if;
  execute 'select net.http_post(url => $1, body => $2, params => ''{}''::jsonb, headers => $3, timeout_milliseconds => $4)'
    into v_id
    using pg_catalog.rtrim(v_url, '/') || '/maintenance',
          coalesce(p_body, '{}'::jsonb) || '{"source": "pg_cron"}'::jsonb,
          pg_catalog.jsonb_build_object('content-type', 'application/json',
            'authorization', 'Bearer ' || v_key, 'apikey', v_key, 'x-caller', 'pg_cron'),
          p_timeout_ms;
  return v_id;
end
$$;

do $$
declare
  v_cron_db text := pg_catalog.current_setting('cron.database_name', true);
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
       and v_cron_db is not null and v_cron_db = pg_catalog.current_database() then
      create extension if not exists pg_cron with schema pg_catalog;
    else
      raise notice using message =
        'pg_cron is not available in database ' || pg_catalog.current_database()
        || case when v_cron_db is null then ' (pg_cron is not preloaded on this server)'
                else ' (cron.database_name is ' || v_cron_db || ')' end
        || ': the gateway housekeeping is not scheduled. On Supabase: Dashboard > Database > Extensions > '
        || 'enable pg_cron, then run: select cron.schedule(''eve-gateway-housekeeping'', ''17 * * * *'', '
        || '''select public.google_ai_housekeeping()''); (or re-apply migration 20261122000700_housekeeping_schedule). '
        || 'Until then, run select public.google_ai_housekeeping(); yourself or call the maintenance function.';
      return;
    end if;
  end if;

  perform cron.schedule('eve-gateway-housekeeping', '17 * * * *', 'select public.google_ai_housekeeping()');

  if pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null
     and pg_catalog.to_regclass('vault.decrypted_secrets') is not null then
    perform cron.schedule('eve-gateway-maintenance', '47 */6 * * *',
      'select public.google_ai_invoke_maintenance_function()');
  else
    raise notice using message =
      'pg_net or Vault is not available: the maintenance function (key health, model catalogue) is not scheduled. '
      || 'On Supabase: enable pg_net (Dashboard > Database > Extensions), store the two Vault secrets '
      || 'eve_gateway_functions_url and eve_gateway_service_key (docs/maintenance.md), then re-apply this migration.';
  end if;
end
$$;
