// The PostgreSQL every test file shares, and a fresh database per test file cloned from a template
// that already has the Supabase bootstrap, every migration and the seed applied.
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { cloneDatabase, connect, dropDatabase, type Sql } from "../../shared/db/migrate.ts";

declare module "vitest" {
  export interface ProvidedContext {
    pg: { serverUrl: string; template: string; engine: string; pgCron: boolean; pgTap: boolean };
  }
}

export interface TestDatabase {
  url: string;
  name: string;
  sql: Sql;
  drop(): Promise<void>;
}

export function testServer() {
  return inject("pg");
}

/** A new database with the migrated schema and seed, owned by the calling test file. */
export async function freshDatabase(label = "t", options: { max?: number } = {}): Promise<TestDatabase> {
  const { serverUrl, template } = inject("pg");
  const name = `${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`;
  const url = await cloneDatabase(serverUrl, template, name);
  const sql = connect(url, { max: options.max ?? 10 });
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      await dropDatabase(serverUrl, name);
    },
  };
}

/**
 * A fresh database for a test of the admission kernel: one key, the test's own (alias, its env var, its
 * quota group), and no share kept for any priority class, so the shares are the tests' own.
 */
export async function oneKeyDatabase(label: string, key: { alias: string; envVar: string; project: string }): Promise<TestDatabase> {
  const db = await freshDatabase(label);
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
               values (${key.alias}, ${key.envVar}, ${key.project}, 1)`;
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  return db;
}
