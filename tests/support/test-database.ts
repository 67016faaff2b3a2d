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
