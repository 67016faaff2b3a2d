// Applies what `supabase db reset` would: the Supabase bootstrap (plain PostgreSQL only), every
// file in supabase/migrations in name order, then supabase/seed.sql — all unchanged. Applied
// migrations are recorded in supabase_migrations.schema_migrations, as the Supabase CLI does.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { checkFunctionBodies } from "./function-bodies.ts";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const migrationsDir = path.join(repoRoot, "supabase", "migrations");
/** The database's current truth, one file per concern (supabase/schemas/README.md). */
export const schemasDir = path.join(repoRoot, "supabase", "schemas");
const bootstrapFile = path.join(repoRoot, "shared", "db", "supabase-bootstrap.sql");
const seedFile = path.join(repoRoot, "supabase", "seed.sql");

export type Sql = postgres.Sql;

export function connect(url: string, options: postgres.Options<Record<string, never>> = {}): Sql {
  return postgres(url, { onnotice: () => {}, ...options });
}

/** The server's version, e.g. "17.6". */
export async function serverVersion(url: string): Promise<string> {
  const sql = connect(url, { max: 1 });
  try {
    const [{ v }] = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
    return v.split(" ")[0]!;
  } finally {
    await sql.end();
  }
}

/** Roles, schemas and auth helpers a Supabase project has before its migrations run. */
export async function applySupabaseBootstrap(sql: Sql): Promise<void> {
  await runScript(sql, await readFile(bootstrapFile, "utf8"));
  // Supabase puts `extensions` on the search path of its roles (pgTAP lives there too).
  await sql.unsafe(`alter role postgres set search_path = "$user", public, extensions`);
}

export async function listMigrations(dir = migrationsDir): Promise<{ version: string; name: string; file: string }[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{14}_.+\.sql$/.test(f)).sort();
  return files.map((f) => ({ version: f.slice(0, 14), name: f.slice(15, -4), file: path.join(dir, f) }));
}

/** Applies the migrations not yet recorded, in order, each in its own transaction. */
export async function applyMigrations(sql: Sql, { dir = migrationsDir }: { dir?: string } = {}): Promise<string[]> {
  await sql.unsafe(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text primary key, name text, statements text[]);`).simple();
  const done = new Set(
    (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations`).map((r) => r.version),
  );
  const applied: string[] = [];
  for (const m of await listMigrations(dir)) {
    if (done.has(m.version)) continue;
    await applyMigration(sql, m);
    applied.push(`${m.version}_${m.name}`);
  }
  return applied;
}

/**
 * Applies one migration (an entry of listMigrations) in its own transaction and records it. A migration
 * applied a second time right after itself must change nothing (tests/db/migrations.test.ts); an earlier
 * one applied again after later ones need not (a later migration may change a function's result
 * columns, which the earlier one's CREATE OR REPLACE then cannot replace), and no project does that:
 * the recorded ones are skipped.
 */
export async function applyMigration(sql: Sql, m: { version: string; name: string; file: string }): Promise<void> {
  const text = await readFile(m.file, "utf8");
  await sql.begin(async (tx) => {
    await tx.unsafe(text).simple();
    await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
             values (${m.version}, ${m.name}, ${[text]}) on conflict (version) do nothing`;
  });
}

export async function listSchemaFiles(dir = schemasDir): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort().map((f) => path.join(dir, f));
}

/**
 * Builds the schema from supabase/schemas in name order, as `supabase db diff` does on its shadow
 * database, in one transaction. What declarative files cannot say (rows, the pg_cron schedule) lives
 * in migrations: pass them as `migrations` (file names, or paths) to apply them afterwards. `dir` reads the schema
 * files from elsewhere (a copy being edited). Then every function body is checked with the whole schema
 * in place (shared/db/function-bodies.ts): one that does not compile throws BrokenFunctionBodies, naming
 * the function and the line.
 */
export async function applySchemas(
  sql: Sql,
  { migrations = [], dir = schemasDir }: { migrations?: string[]; dir?: string } = {},
): Promise<void> {
  const texts = await Promise.all((await listSchemaFiles(dir)).map((f) => readFile(f, "utf8")));
  for (const m of migrations) texts.push(await readFile(path.resolve(migrationsDir, m), "utf8"));
  await sql.begin(async (tx) => {
    for (const text of texts) await tx.unsafe(text).simple();
  });
  await checkFunctionBodies(sql);
}

export async function applySeed(sql: Sql): Promise<void> {
  await runScript(sql, await readFile(seedFile, "utf8"));
}

/** Bootstrap (unless the server is a real Supabase database), migrations and seed. */
export async function prepareDatabase(
  url: string,
  { bootstrap = true, seed = true }: { bootstrap?: boolean; seed?: boolean } = {},
): Promise<string[]> {
  const sql = connect(url, { max: 1 });
  try {
    if (bootstrap) await applySupabaseBootstrap(sql);
    const applied = await applyMigrations(sql);
    if (seed) await applySeed(sql);
    return applied;
  } finally {
    await sql.end();
  }
}

async function runScript(sql: Sql, text: string): Promise<void> {
  await sql.unsafe(text).simple();
}

/** The URL of another database on the same server. */
export function databaseUrl(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Creates `name` as a copy of `template` (fast: a file copy). Retries while the template is busy,
 * since PostgreSQL refuses to copy a database someone is connected to.
 */
export async function cloneDatabase(serverUrl: string, template: string, name: string): Promise<string> {
  const sql = connect(serverUrl, { max: 1 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await sql.unsafe(`create database ${quoteIdent(name)} template ${quoteIdent(template)}`);
        return databaseUrl(serverUrl, name);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== "55006" || attempt > 50) throw err; // 55006: source database is being accessed
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await sql.end();
  }
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const sql = connect(serverUrl, { max: 1 });
  try {
    await sql.unsafe(`drop database if exists ${quoteIdent(name)} with (force)`);
  } finally {
    await sql.end();
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
