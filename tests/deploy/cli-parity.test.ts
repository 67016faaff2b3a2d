// The project's runner (shared/db/migrate.ts) stays where the CLI cannot serve (a chain applied up to
// a given version, twice in a row, the test template built once per run): it must leave what Supabase's
// CLI leaves. Two empty projects on the hosted-shaped test server, one built by the runner, one by
// `supabase db push --include-seed`: the same schema (shared/db/schema-description.ts), the same
// supabase_migrations.schema_migrations records (version, name, statements) and seed_files; the CLI
// reads the runner's records as its own (`migration list`: local = remote). And the runner's splitter
// splits as the CLI does where statements are hard to split (a file the CLI pushes and records).
import { mkdir, mkdtemp, rm, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySupabaseBootstrap, connect, databaseUrl, dropDatabase, listMigrations, prepareDatabase, quoteIdent, repoRoot, type Sql } from "../../shared/db/migrate.ts";
import { cliStatements } from "../../shared/db/cli-statements.ts";
import { describeDifferences, describeSchema } from "../../shared/db/schema-description.ts";
import { cliDbUrl, dbPush, supabase } from "../../shared/db/supabase-cli.ts";
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

const records = (sql: Sql) =>
  sql<{ version: string; name: string; statements: string[] }[]>`
    select version, name, statements from supabase_migrations.schema_migrations order by version`;
const seeds = (sql: Sql) => sql<{ path: string; hash: string }[]>`select path, hash from supabase_migrations.seed_files order by path`;

let byRunner: { url: string; sql: Sql };
let byCli: { url: string; sql: Sql };
beforeAll(async () => {
  [byRunner, byCli] = await Promise.all([emptyProject("by_runner"), emptyProject("by_cli")]);
  await prepareDatabase(byRunner.url, { bootstrap: false });
  const applied = await dbPush(byCli.url, { includeSeed: true });
  expect(applied).toEqual((await listMigrations()).map((m) => `${m.version}_${m.name}`));
}, 180_000);

describe("the runner and `supabase db push --include-seed`", () => {
  it("build the same schema", async () => {
    const [runner, cli] = [await describeSchema(byRunner.sql), await describeSchema(byCli.sql)];
    expect(Object.keys(cli.functions).length).toBeGreaterThan(90);
    expect(describeDifferences(runner, cli)).toEqual([]);
  });

  it("record the same migrations, statement by statement, and the same seed", async () => {
    const [runner, cli] = [await records(byRunner.sql), await records(byCli.sql)];
    expect(cli.length).toBe((await listMigrations()).length);
    expect(cli.reduce((n, r) => n + r.statements.length, 0)).toBeGreaterThan(cli.length);
    expect(runner).toEqual(cli);
    expect(await seeds(byRunner.sql)).toEqual(await seeds(byCli.sql));
    expect((await seeds(byCli.sql)).map((s) => s.path)).toEqual(["supabase/seed.sql"]);
  });

  it("the CLI reads the runner's records as its own: migration list shows every local migration remote too", async () => {
    const run = await supabase(["migration", "list", "--db-url", cliDbUrl(byRunner.url)]);
    expect(run.code, run.stderr).toBe(0);
    const rows = [...run.stdout.matchAll(/^\s*`?(\d{14})?`?\s*\|\s*`?(\d{14})?`?\s*\|/gm)].map((m) => [m[1], m[2]]);
    expect(rows.length).toBe((await listMigrations()).length);
    for (const [local, remote] of rows) expect(remote, `local ${local}`).toBe(local);
  });
});

// Quotes, dollar quotes, nested comments, parentheses, BEGIN ATOMIC bodies, a last statement without
// its semicolon: every place a `;` does not end a statement.
const HARD_TO_SPLIT = `-- a comment; with a semicolon
/* a block; /* nested; */ still the block; */
create table public.split_probe (id int primary key, "semi;colon" text default 'it''s; fine', note text default E'tab\\there');
create function public.split_probe_atomic() returns int language sql
begin atomic
  select 1;
  select 2;
end;
create function public.split_probe_dollar() returns text language plpgsql as $body$ begin return 'a;b'; end $body$;
insert into public.split_probe (id) select n from (values (1), (2)) v(n) where n::text <> ';';
create view public.split_probe_view as select ($$;$$)::text as semicolon, (select count(*) from public.split_probe where note <> ';') as n;
do $$ begin perform 1; end $$
`;

describe("the runner's splitter (shared/db/cli-statements.ts)", () => {
  it("splits a file as the CLI records it after pushing it", async () => {
    const project = await emptyProject("split_probe");
    const workdir = await mkdtemp(path.join(tmpdir(), "eve-split-probe-"));
    cleanups.push(() => rm(workdir, { recursive: true, force: true }));
    await mkdir(path.join(workdir, "supabase", "migrations"), { recursive: true });
    await copyFile(path.join(repoRoot, "supabase", "config.toml"), path.join(workdir, "supabase", "config.toml"));
    await writeFile(path.join(workdir, "supabase", "migrations", "20000101000000_split_probe.sql"), HARD_TO_SPLIT);
    const run = await supabase(["db", "push", "--db-url", cliDbUrl(project.url), "--yes", "--workdir", workdir]);
    expect(run.code, run.stderr).toBe(0);
    const [record] = await records(project.sql);
    expect(record!.statements).toHaveLength(6);
    expect(cliStatements(HARD_TO_SPLIT)).toEqual(record!.statements);
  });
});
