// Applies what `supabase db push --include-seed` does: every file in supabase/migrations not yet
// recorded, in name order, then supabase/seed.sql, all unchanged; before them, on a server of our own,
// the Supabase bootstrap a hosted project already has. Each file is split into statements as the
// CLI splits it (cli-statements.ts), run one statement at a time in one transaction, and recorded as
// the CLI records it: supabase_migrations.schema_migrations (version, name, statements) and, for the
// seed, supabase_migrations.seed_files (path, SHA-256).
//
// Why a runner of our own beside the CLI (which builds the local stack's database and the deploy test's,
// scripts/local-db.ts, tests/deploy/): tests need the chain applied up to a given version, one file at
// a time, or twice in a row (tests/db/migrations.test.ts); the test template is built once per run
// and the CLI takes seconds more per database. tests/deploy/cli-parity.test.ts shows that both leave
// the same schema and the same records.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { checkFunctionBodies } from "./function-bodies.ts";
import { cliStatements } from "./cli-statements.ts";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const migrationsDir = path.join(repoRoot, "supabase", "migrations");
/** The database's current truth, one file per concern (supabase/schemas/README.md). */
export const schemasDir = path.join(repoRoot, "supabase", "schemas");
const clusterFile = path.join(repoRoot, "shared", "db", "supabase-cluster.sql");
const bootstrapFile = path.join(repoRoot, "shared", "db", "supabase-bootstrap.sql");
/** The seed, and the path the CLI records it under in supabase_migrations.seed_files. */
export const SEED_PATH = "supabase/seed.sql";
const seedFile = path.join(repoRoot, SEED_PATH);

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

/**
 * The cluster's superuser, as on a hosted project: it owns the cluster and runs only the bootstrap
 * (supabase-cluster.sql, supabase-bootstrap.sql). Everything else, the migrations included, runs as
 * `postgres`, which is not a superuser.
 */
export const SUPERUSER = "supabase_admin";
/**
 * The application_name of every superuser connection the project opens: the test run counts the
 * superuser connections the server logs and allows only these (scripts/test.ts).
 */
export const BOOTSTRAP_APPLICATION = "eve-bootstrap";

/**
 * `url` as the cluster's superuser, for the bootstrap alone. A server of DATABASE_URL's (not ours: its
 * roles are its own) is left to the user its URL names, as before the hosted shape.
 */
export function superuserUrl(url: string): string {
  if (process.env.DATABASE_URL && new URL(process.env.DATABASE_URL).host === new URL(url).host) return url;
  const u = new URL(url);
  u.username = SUPERUSER;
  u.password = "";
  return u.toString();
}

/** A connection as the cluster's superuser to `url`'s database, named as the bootstrap's. */
export function connectAsBootstrap(url: string): Sql {
  return connect(superuserUrl(url), { max: 1, connection: { application_name: BOOTSTRAP_APPLICATION } });
}

/** The roles a hosted project's cluster has (supabase-cluster.sql), made on our own server once it starts. */
export async function applySupabaseCluster(serverUrl: string): Promise<void> {
  const sql = connectAsBootstrap(databaseUrl(serverUrl, "postgres"));
  try {
    await runScript(sql, await readFile(clusterFile, "utf8"));
  } finally {
    await sql.end();
  }
}

/** Schemas, extensions, grants and auth helpers a Supabase project's database has before its migrations run. */
export async function applySupabaseBootstrap(url: string): Promise<void> {
  const sql = connectAsBootstrap(url);
  try {
    await runScript(sql, await readFile(bootstrapFile, "utf8"));
  } finally {
    await sql.end();
  }
}

export async function listMigrations(dir = migrationsDir): Promise<{ version: string; name: string; file: string }[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{14}_.+\.sql$/.test(f)).sort();
  return files.map((f) => ({ version: f.slice(0, 14), name: f.slice(15, -4), file: path.join(dir, f) }));
}

/** The CLI's history table, made as it makes it (apps/cli-go/pkg/migration/history.go). */
async function createHistoryTable(sql: Sql): Promise<void> {
  await sql.unsafe(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
    alter table supabase_migrations.schema_migrations add column if not exists statements text[];
    alter table supabase_migrations.schema_migrations add column if not exists name text;`).simple();
}

/** Applies the migrations not yet recorded, in order, each in its own transaction. */
export async function applyMigrations(sql: Sql, { dir = migrationsDir }: { dir?: string } = {}): Promise<string[]> {
  await createHistoryTable(sql);
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
  const statements = cliStatements(await readFile(m.file, "utf8"));
  await sql.begin(async (tx) => {
    await runStatements(tx as unknown as Sql, statements);
    await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
             values (${m.version}, ${m.name}, ${statements}) on conflict (version) do nothing`;
  });
}

/** One statement at a time, as the CLI sends them: a file the CLI would split wrongly fails here too. */
async function runStatements(sql: Sql, statements: string[]): Promise<void> {
  for (const statement of statements) await sql.unsafe(statement, [], { prepare: false });
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

/** The seed, run and recorded as `db push --include-seed` does (apps/cli-go/pkg/migration/seed.go). */
export async function applySeed(sql: Sql): Promise<void> {
  const text = await readFile(seedFile, "utf8");
  await sql.unsafe(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.seed_files (path text not null primary key, hash text not null);`).simple();
  await sql.begin(async (tx) => {
    await runStatements(tx as unknown as Sql, cliStatements(text));
    await tx`insert into supabase_migrations.seed_files (path, hash)
             values (${SEED_PATH}, ${createHash("sha256").update(text).digest("hex")})
             on conflict (path) do update set hash = excluded.hash`;
  });
}

/** Bootstrap (unless the server is a real Supabase database), migrations and seed. */
export async function prepareDatabase(
  url: string,
  { bootstrap = true, seed = true }: { bootstrap?: boolean; seed?: boolean } = {},
): Promise<string[]> {
  if (bootstrap) await applySupabaseBootstrap(url);
  const sql = connect(url, { max: 1 });
  try {
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
