// The project's runner (shared/db/migrate.ts) stays where the CLI cannot serve (a chain applied up to
// a given version, twice in a row, the test template built once per run): it must leave what Supabase's
// CLI leaves. Two empty projects on the hosted-shaped test server, one built by the runner, one by
// `supabase db push --include-seed`: the same schema (shared/db/schema-description.ts), the same
// supabase_migrations.schema_migrations records (version, name, statements) and seed_files; the CLI
// reads the runner's records as its own (`migration list`: local = remote). And the runner's splitter
// splits as the CLI does where statements are hard to split (a file the CLI pushes and records).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMigrations, prepareDatabase, type Sql } from "../../shared/db/migrate.ts";
import { cliStatements } from "../../shared/db/cli-statements.ts";
import { describeDifferences, describeSchema } from "../../shared/db/schema-description.ts";
import { cliDbUrl, dbPush, migrationList, supabase } from "../../shared/db/supabase-cli.ts";
import { emptySupabaseProject, projectFolder } from "../support/empty-database.ts";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const records = (sql: Sql) =>
  sql<{ version: string; name: string; statements: string[] }[]>`
    select version, name, statements from supabase_migrations.schema_migrations order by version`;
const seeds = (sql: Sql) => sql<{ path: string; hash: string }[]>`select path, hash from supabase_migrations.seed_files order by path`;

let byRunner: { url: string; sql: Sql };
let byCli: { url: string; sql: Sql };
beforeAll(async () => {
  [byRunner, byCli] = await Promise.all([emptySupabaseProject("by_runner", cleanups, { max: 2 }), emptySupabaseProject("by_cli", cleanups, { max: 2 })]);
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
    const rows = await migrationList(byRunner.url);
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
    const project = await emptySupabaseProject("split_probe", cleanups, { max: 2 });
    const workdir = await projectFolder("split-probe", cleanups);
    await writeFile(path.join(workdir, "supabase", "migrations", "20000101000000_split_probe.sql"), HARD_TO_SPLIT);
    const run = await supabase(["db", "push", "--db-url", cliDbUrl(project.url), "--yes", "--workdir", workdir]);
    expect(run.code, run.stderr).toBe(0);
    const [record] = await records(project.sql);
    expect(record!.statements).toHaveLength(6);
    expect(cliStatements(HARD_TO_SPLIT)).toEqual(record!.statements);
  });
});
