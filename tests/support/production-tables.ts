// The five tables the owner's production project already has, in the shape and with the kind of
// rows a live project holds: what the adoption migration must take over without losing a row.
import type { Sql } from "../../shared/db/migrate.ts";

/** The production tables as the owner's screenshot shows them, with rows a live project has. */
export async function createProductionTables(sql: Sql, timeColumn: "at" | "ts" = "at") {
  await sql.unsafe(`
    create table public.google_ai_api_keys (
      id uuid primary key default gen_random_uuid(), key_alias text, provider text, env_var_name text,
      is_active bool, priority int4, created_at timestamptz default now(), notes text);
    create table public.google_ai_model_limits (
      id serial primary key, model text, rpm int4, tpm int4, rpd int4,
      created_at timestamptz default now(), updated_at timestamptz default now());
    create table public.google_ai_usage_counters (
      id bigserial primary key, api_key_id uuid not null, model text, minute_bucket timestamptz,
      day_bucket date, rpm_used int4, tpm_used int4, rpd_used int4, updated_at timestamptz);
    create table public.google_ai_maintenance_log (
      id serial primary key, operation text, tables_affected text[], deleted_count int4,
      started_at timestamptz, completed_at timestamptz, status text, details jsonb,
      created_at timestamptz default now());
    create table public.token_usage (
      id bigserial primary key, ${timeColumn} timestamptz not null, model text, prompt_tokens int4,
      completion_tokens int4, total_tokens int4, request_id text, meta jsonb);
    insert into public.google_ai_api_keys (id, key_alias, provider, env_var_name, is_active, priority, notes) values
      ('11111111-1111-1111-1111-111111111111', 'main', 'google', 'GOOGLE_API_KEY', true, 1, 'the key in use today'),
      ('22222222-2222-2222-2222-222222222222', 'spare', 'google', 'GOOGLE_API_KEY_2', false, 2, null);
    insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values
      ('gemma-3-27b-it', 30, 15000, 14400), ('gemini-2.5-flash', 10, 250000, 250);
    insert into public.google_ai_usage_counters (api_key_id, model, minute_bucket, day_bucket, rpm_used, tpm_used, rpd_used, updated_at) values
      ('11111111-1111-1111-1111-111111111111', 'gemma-3-27b-it', '2026-11-20 10:00+00', '2026-11-20', 3, 1200, 40, now()),
      ('11111111-1111-1111-1111-111111111111', 'gemma-3-27b-it', '2026-11-20 10:00+00', '2026-11-20', 3, 1200, 40, now());
    insert into public.google_ai_maintenance_log (operation, tables_affected, deleted_count, started_at, completed_at, status, details) values
      ('cleanup', array['google_ai_usage_counters'], 12, now() - interval '1 hour', now(), 'success', '{"by":"hand"}');
    insert into public.token_usage (${timeColumn}, model, prompt_tokens, completion_tokens, total_tokens, request_id, meta) values
      (now(), 'gpt-4o', 100, 50, 150, 'bot-1', '{"chat": 1}'), (now(), 'gpt-4o', 10, 5, 15, null, null);
  `).simple();
}
