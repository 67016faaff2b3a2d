// An empty database on the shared test server with only what Supabase provides (no gateway
// migrations), dropped by the cleanup it registers; and an empty project folder for the CLI's --workdir.
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { applySupabaseBootstrap, connect, databaseUrl, dropDatabase, quoteIdent, repoRoot, type Sql } from "../../shared/db/migrate.ts";
import { testServer } from "./test-database.ts";

/** An empty project: a database as `postgres`, the platform's bootstrap, nothing else; its URL and a pool. */
export async function emptySupabaseProject(
  label: string,
  cleanups: (() => Promise<void>)[],
  { max = 1 }: { max?: number } = {},
): Promise<{ url: string; sql: Sql }> {
  const { serverUrl } = testServer();
  const name = `${label}_${Math.random().toString(16).slice(2, 10)}`;
  const admin = connect(serverUrl, { max: 1 });
  await admin.unsafe(`create database ${quoteIdent(name)}`).finally(() => admin.end());
  const url = databaseUrl(serverUrl, name);
  await applySupabaseBootstrap(url);
  const sql = connect(url, { max });
  cleanups.push(async () => {
    await sql.end({ timeout: 5 });
    await dropDatabase(serverUrl, name);
  });
  return { url, sql };
}

export async function emptySupabaseDatabase(
  label: string,
  cleanups: (() => Promise<void>)[],
  options: { max?: number } = {},
): Promise<Sql> {
  return (await emptySupabaseProject(label, cleanups, options)).sql;
}

/**
 * A project folder of its own (removed by the cleanup it registers): the repository's supabase/config.toml
 * and an empty supabase/migrations, for `supabase … --workdir` to push other files than the project's.
 */
export async function projectFolder(label: string, cleanups: (() => Promise<void>)[]): Promise<string> {
  const workdir = await mkdtemp(path.join(tmpdir(), `eve-${label}-`));
  cleanups.push(() => rm(workdir, { recursive: true, force: true }));
  await mkdir(path.join(workdir, "supabase", "migrations"), { recursive: true });
  await copyFile(path.join(repoRoot, "supabase", "config.toml"), path.join(workdir, "supabase", "config.toml"));
  return workdir;
}
