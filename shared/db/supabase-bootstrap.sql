-- What a Supabase project's database provides before any migration runs, recreated for plain
-- PostgreSQL (tests and the local stack): run in each new database as the cluster's superuser
-- `supabase_admin`, after supabase-cluster.sql made the roles (that file names the sources read).
-- Modelled on supabase/postgres's init scripts; idempotent. Never applied to a real Supabase
-- project: there these objects already exist.

create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- Statement statistics, as every hosted project has them (`supabase inspect db outliers`, `calls`);
-- the server preloads the library (postgres-server.ts).
create extension if not exists pg_stat_statements with schema extensions;
-- Extensions `postgres` may create on a hosted project (supautils' privileged_extensions) but not on
-- a plain server, created beforehand where the engine has them (the grants below reach their
-- routines): pgTAP (`supabase test db`, the pgTAP suite), plpgsql_check (`supabase db lint` creates it
-- as `postgres`, which only supautils allows); pg_cron below.
do $$
begin
  if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pgtap') then
    create extension if not exists pgtap with schema extensions;
  end if;
  if exists (select 1 from pg_catalog.pg_available_extensions where name = 'plpgsql_check') then
    create extension if not exists plpgsql_check with schema extensions;
  end if;
end
$$;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant usage on schema public to postgres, anon, authenticated, service_role;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- What `postgres` may do with the platform's schemas (10000000000000_demote-postgres.sql,
-- 20230224042246_grant_extensions_perms_for_postgres.sql).
grant all on schema auth, extensions to postgres;
grant all on all tables in schema extensions to postgres with grant option;
grant all on all routines in schema extensions to postgres with grant option;
grant all on all sequences in schema extensions to postgres with grant option;
alter default privileges in schema extensions grant all on tables to postgres with grant option;
alter default privileges in schema extensions grant all on routines to postgres with grant option;
alter default privileges in schema extensions grant all on sequences to postgres with grant option;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select nullif(
    coalesce(current_setting('request.jwt.claim.sub', true),
             (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')), '')::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select nullif(
    coalesce(current_setting('request.jwt.claim.role', true),
             (current_setting('request.jwt.claims', true)::jsonb ->> 'role')), '')::text
$$;

-- Hosted Supabase grants the API roles everything new in public by default (older projects still
-- do), whether `postgres` (the migrations) or `supabase_admin` creates it. Reproducing that here makes
-- the grant tests prove that our migrations revoke explicitly.
alter default privileges for role postgres, supabase_admin in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres, supabase_admin in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres, supabase_admin in schema public
  grant execute on functions to anon, authenticated, service_role;

-- pg_cron, in the server's cron database only (where the engine has it), with the grants the platform
-- gives `postgres` (20231020085357_revoke_writes_on_cron_job_from_postgres.sql: all on cron's tables
-- but cron.job, which it may only read; jobs are made with cron.schedule).
do $$
begin
  if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
     and pg_catalog.current_setting('cron.database_name', true) = pg_catalog.current_database() then
    create extension if not exists pg_cron with schema pg_catalog;
    grant usage on schema cron to postgres with grant option;
    grant all on all tables in schema cron to postgres with grant option;
    grant all on all sequences in schema cron to postgres with grant option;
    grant all on all routines in schema cron to postgres with grant option;
    alter default privileges in schema cron grant all on tables to postgres with grant option;
    alter default privileges in schema cron grant all on routines to postgres with grant option;
    alter default privileges in schema cron grant all on sequences to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
  end if;
end
$$;
