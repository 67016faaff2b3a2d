// The path supabase/MIGRATIONS.md ("A release squashes", step 4) gives a project that pushed the
// migrations a release squashed, run with Supabase's pinned CLI as an owner runs it. A project on the
// hosted-shaped test server built by `supabase db push` of the old chain (read from git at
// SQUASHED_FROM); the CLI refuses to push the new files over that history, naming the versions it does
// not know; MIGRATIONS.md's `supabase migration repair --status reverted …` commands, run as written
// (with --db-url in place of the linked project), name exactly the deleted files' versions; after them
// `supabase migration list` shows local and remote agreeing, `supabase db push` applies nothing, and the
// schema (shared/db/schema-description.ts) is a new project's, built by `supabase db push` of the new
// files alone.
import { copyFile, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMigrations, repoRoot, type Sql } from "../../shared/db/migrate.ts";
import { describeDifferences, describeSchema } from "../../shared/db/schema-description.ts";
import { cliDbUrl, dbPush, migrationList, supabase } from "../../shared/db/supabase-cli.ts";
import { emptySupabaseProject, projectFolder } from "../support/empty-database.ts";
import { migrationsBeforeSquash, SQUASHED_FROM, squashedVersions } from "../support/squashed-migrations.ts";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

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
  const workdir = await projectFolder("before-squash-project", cleanups);
  for (const m of await listMigrations(before)) await copyFile(m.file, path.join(workdir, "supabase", "migrations", path.basename(m.file)));
  [old, fresh] = await Promise.all([emptySupabaseProject("repair_old", cleanups, { max: 2 }), emptySupabaseProject("repair_new", cleanups, { max: 2 })]);
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
