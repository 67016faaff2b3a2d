-- The cluster as a hosted Supabase project has it, for the embedded PostgreSQL of tests and the local
-- stack: run once per server start, in the `postgres` database, as the cluster's superuser
-- `supabase_admin` (initdb's bootstrap user, shared/db/postgres-server.ts). Idempotent. Never applied to
-- a real Supabase project: there all of it already exists.
--
-- Read from Supabase's public sources (github.com/supabase/postgres, commit 7db7e1a):
--   migrations/db/init-scripts/00000000000000-initial-schema.sql
--       supabase_admin: SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS (the cluster's owner)
--   migrations/db/migrations/10000000000000_demote-postgres.sql
--       postgres: NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS; ALL on database postgres
--   migrations/db/migrations/20230306081037_grant_pg_monitor_to_postgres.sql
--       pg_monitor (with it pg_read_all_settings, pg_read_all_stats, pg_stat_scan_tables)
--   migrations/db/migrations/20240606060239_grant_predefined_roles_to_postgres.sql
--       pg_read_all_data, pg_signal_backend
--   migrations/db/migrations/20230201083204_grant_auth_roles_to_postgres.sql
--       anon, authenticated, service_role (the API roles, from the initial schema) granted to postgres
--   migrations/db/migrate.sh
--       alter database postgres owner to postgres
--   migrations/db/init-scripts/00000000000003-post-setup.sql
--       postgres's search_path "$user", public, extensions
--   ansible/files/postgresql_config/supautils.conf.j2
--       supautils.privileged_role_allowed_configs: the settings `postgres` may SET although only a
--       superuser could (supautils is not in the embedded engine: GRANT SET ON PARAMETER stands in for
--       the core ones; the others belong to extensions this engine lacks);
--       supautils.privileged_extensions (pg_cron, pg_stat_statements, pgtap, ...): created for
--       `postgres` by the superuser; here supabase-bootstrap.sql creates the ones the project uses beforehand.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'postgres') then
    create role postgres;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

alter role postgres with login nosuperuser createdb createrole replication bypassrls;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
grant anon, authenticated, service_role to postgres;
grant set on parameter session_replication_role, track_io_timing, log_lock_waits, log_min_messages to postgres;
-- The one grant beyond a hosted project's: SET track_functions and log_statement, for the
-- measurements that count function calls and statements (02_reservation.test.sql, the bench's
-- databases). Neither the migrations nor the gateway set them.
grant set on parameter track_functions, log_statement to postgres;

alter database postgres owner to postgres;
grant all on database postgres to postgres;

alter role postgres set search_path = "$user", public, extensions;
alter role supabase_admin set search_path = "$user", public, auth, extensions;
