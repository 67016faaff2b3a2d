// The path supabase/MIGRATIONS.md ("A release squashes", step 4) gives a project that pushed the
// migrations a release squashed, run with Supabase's pinned CLI as an owner runs it. A project on the
// hosted-shaped test server built by `supabase db push` of the old chain (read from git at
// SQUASHED_FROM); the CLI refuses to push the new files over that history, naming the versions it does
// not know; MIGRATIONS.md's `supabase migration repair --status reverted …` commands, run as written
// (with --db-url in place of the linked project), name exactly the deleted files' versions; after them
// `supabase migration list` shows local and remote agreeing, `supabase db push` applies nothing, and the
// schema (shared/db/schema-description.ts) is a new project's, built by `supabase db push` of the new
// files alone.
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySupabaseBootstrap, connect, databaseUrl, dropDatabase, listMigrations, quoteIdent, repoRoot, type Sql } from "../../shared/db/migrate.ts";
import { describeDifferences, describeSchema } from "../../shared/db/schema-description.ts";
import { cliDbUrl, dbPush, supabase } from "../../shared/db/supabase-cli.ts";
import { migrationsBeforeSquash, SQUASHED_FROM, squashedVersions } from "../support/squashed-migrations.ts";
import { testServer } from "../support/test-database.ts";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An empty project: a database as `postgres`, the platform's bootstrap, nothing else. */
async function emptyProject(label: string): Promise<{ url: string; sql: Sql }> {
  const { serverUrl } = testServer();
  const name = `${label}_${Math.random().toString(16).slice(2, 10)}`;
  const admin = connect(serverUrl, { max: 1 });
  await admin.unsafe(`create database ${quoteIdent(name)}`).finally(() => admin.end());
  const url = databaseUrl(serverUrl, name);
  await applySupabaseBootstrap(url);
  const sql = connect(url, { max: 2 });
  cleanups.push(async () => {
    await sql.end({ timeout: 5 });
    await dropDatabase(serverUrl, name);
  });
  return { url, sql };
}

/** `supabase migration list` of a project: each row's local and remote version (either may be missing, "` `"). */
async function migrationList(url: string): Promise<[string | undefined, string | undefined][]> {
  const run = await supabase(["migration", "list", "--db-url", cliDbUrl(url)]);
  expect(run.code, run.stderr).toBe(0);
  const rows = run.stdout.split("\n").map((line) => /^[ \t]*`?(\d{14})?[ \t]*`?[ \t]*\|[ \t]*`?(\d{14})?[ \t]*`?[ \t]*\|/.exec(line));
  return rows.filter((m) => m !== null && (m[1] !== undefined || m[2] !== undefined)).map((m) => [m![1], m![2]]);
}

const recorded = async (sql: Sql) =>
  (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations order by version`).map((r) => r.version);

/** MIGRATIONS.md's repair commands, each as its words (the shell's comment dropped). */
async function repairCommands(): Promise<string[][]> {
  const text = await readFile(path.join(repoRoot, "supabase", "MIGRATIONS.md"), "utf8");
  return [...text.matchAll(/^supabase migration repair .*$/gm)].map((m) => m[0].replace(/#.*$/, "").trim().split(/\s+/));
}

let old: { url: string; sql: Sql };
let fresh: { url: string; sql: Sql };
let before: string;
let oldVersions: string[];

beforeAll(async () => {
  before = await migrationsBeforeSquash(cleanups);
  // The old chain in a project folder of its own, as a checkout of SQUASHED_FROM has it.
  const workdir = await mkdtemp(path.join(tmpdir(), "eve-before-squash-project-"));
  cleanups.push(() => rm(workdir, { recursive: true, force: true }));
  await mkdir(path.join(workdir, "supabase", "migrations"), { recursive: true });
  await copyFile(path.join(repoRoot, "supabase", "config.toml"), path.join(workdir, "supabase", "config.toml"));
  for (const m of await listMigrations(before)) await copyFile(m.file, path.join(workdir, "supabase", "migrations", path.basename(m.file)));
  [old, fresh] = await Promise.all([emptyProject("repair_old"), emptyProject("repair_new")]);
  const pushed = await supabase(["db", "push", "--db-url", cliDbUrl(old.url), "--yes", "--workdir", workdir]);
  expect(pushed.code, pushed.stderr).toBe(0);
  oldVersions = (await listMigrations(before)).map((m) => m.version);
  expect(await recorded(old.sql)).toEqual(oldVersions);
  expect(await dbPush(fresh.url)).toEqual((await listMigrations()).map((m) => `${m.version}_${m.name}`));
}, 300_000);

describe(`a project that pushed the migrations squashed from ${SQUASHED_FROM}`, () => {
  it("is refused the new files until its history is repaired: the CLI names the versions it does not know", async () => {
    const deleted = await squashedVersions(before);
    expect(deleted.length).toBeGreaterThan(0);
    const list = await migrationList(old.url);
    expect(list.filter(([local, remote]) => remote !== undefined && local === undefined).map(([, r]) => r)).toEqual(deleted);
    const run = await supabase(["db", "push", "--db-url", cliDbUrl(old.url), "--yes"]);
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).toMatch(/migration repair --status reverted/);
    expect(run.stderr + run.stdout).toContain(deleted[0]);
    expect(await recorded(old.sql)).toEqual(oldVersions);
  }, 60_000);

  it("MIGRATIONS.md's repair commands name every deleted file's version, once, and nothing else", async () => {
    const commands = await repairCommands();
    expect(commands.length).toBeGreaterThan(0);
    const versions: string[] = [];
    for (const words of commands) {
      expect(words.slice(0, 5)).toEqual(["supabase", "migration", "repair", "--status", "reverted"]);
      for (const v of words.slice(5)) {
        expect(v).toMatch(/^\d{14}$/);
        versions.push(v);
      }
    }
    expect(versions).toEqual(await squashedVersions(before));
  });

  it("after them, migration list agrees, db push applies nothing, and the schema is a new project's", async () => {
    for (const words of await repairCommands()) {
      const run = await supabase([...words.slice(1), "--db-url", cliDbUrl(old.url)]);
      expect(run.code, run.stderr).toBe(0);
    }
    const kept = (await listMigrations()).map((m) => m.version);
    expect(await recorded(old.sql)).toEqual(kept);
    const list = await migrationList(old.url);
    expect(list.length).toBe(kept.length);
    for (const [local, remote] of list) expect(remote, `local ${local}`).toBe(local);
    const push = await supabase(["db", "push", "--db-url", cliDbUrl(old.url), "--yes"]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout + push.stderr).not.toMatch(/Applying migration/);
    expect(push.stdout + push.stderr).toMatch(/up to date/i);
    const [repaired, built] = [await describeSchema(old.sql), await describeSchema(fresh.sql)];
    expect(Object.keys(built.functions).length).toBeGreaterThan(90);
    expect(describeDifferences(repaired, built)).toEqual([]);
  }, 120_000);
});
