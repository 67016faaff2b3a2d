// `npm run db:diff` writes the next migration from supabase/schemas (shared/db/schema-diff.ts). For
// each kind of change a maintainer makes, a copy of the schema files is edited, the generator writes
// the migration, and that migration, applied twice to what the migrations build, must give the
// database the edited files build: bodies, signatures, grants, RLS, view options, comments.
// And on the repository itself it finds no changes: supabase/schemas and the migrations agree.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, applySchemas, cloneDatabase, connect, dropDatabase, schemasDir } from "../../shared/db/migrate.ts";
import { describeDifferences, describeSchema } from "../../shared/db/schema-description.ts";
import {
  buildDatabase,
  checksLast,
  DependentsRefused,
  diffDatabases,
  diffSchemas,
  migrationHeader,
  OwnersDataRefused,
  refuseOwnersData,
  ROWS_AND_SCHEDULE,
  type SchemaDiff,
  WHAT_MARK,
} from "../../shared/db/schema-diff.ts";
import { testServer } from "../support/test-database.ts";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const unique = (label: string) => `${label}_${Math.random().toString(16).slice(2, 10)}`;
let serverUrl: string;
/** What the migrations build, copied for each case. */
let migrated: string;

beforeAll(async () => {
  serverUrl = testServer().serverUrl;
  migrated = unique("diff_migrated");
  await buildDatabase(serverUrl, migrated, async (sql) => void await applyMigrations(sql));
  cleanups.push(() => dropDatabase(serverUrl, migrated));
});

async function newDatabase(label: string, build?: (url: string) => Promise<void>): Promise<string> {
  const name = unique(label);
  cleanups.push(() => dropDatabase(serverUrl, name));
  const url = await cloneDatabase(serverUrl, migrated, name);
  if (build) await build(url);
  return url;
}

/** Applies `edit` to a copy of supabase/schemas, then writes the migration to it from the migrations' database. */
async function generate(edit: (dir: string) => Promise<void>, what?: string, fromSql?: string):
    Promise<{ diff: SchemaDiff; targetUrl: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), "eve-schemas-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await cp(schemasDir, dir, { recursive: true });
  await edit(dir);
  const target = unique("diff_target");
  cleanups.push(() => dropDatabase(serverUrl, target));
  const targetUrl = await buildDatabase(serverUrl, target, (sql) => applySchemas(sql, { dir, migrations: [ROWS_AND_SCHEDULE] }));
  const diff = await diffDatabases(await newDatabase("diff_from", fromSql ? (url) => applySql(url, fromSql) : undefined),
    targetUrl, what);
  return { diff, targetUrl };
}

/** `text` applied to the database at `url`, as one script. */
async function applySql(url: string, text: string): Promise<void> {
  const sql = connect(url, { max: 1 });
  try {
    await sql.begin((tx) => tx.unsafe(text).simple());
  } finally {
    await sql.end();
  }
}

/** Replaces `from` by `to` in a schema file of the copy; `from` must be there. */
async function replaceIn(dir: string, file: string, from: string, to: string): Promise<void> {
  const text = await readFile(path.join(dir, file), "utf8");
  expect(text, `${file} holds the text the case edits`).toContain(from);
  await writeFile(path.join(dir, file), text.replaceAll(from, () => to));
}

/** The migration applied twice to a fresh copy of what the migrations build must make it describe as the target. */
async function expectAppliedTwiceEqual(migration: string, targetUrl: string, fromSql?: string): Promise<void> {
  const url = await newDatabase("diff_check", fromSql ? (u) => applySql(u, fromSql) : undefined);
  const sql = connect(url, { max: 1 });
  const target = connect(targetUrl, { max: 1 });
  try {
    await sql.begin((tx) => tx.unsafe(migration).simple());
    const once = await describeSchema(sql);
    await sql.begin((tx) => tx.unsafe(migration).simple());
    const twice = await describeSchema(sql);
    const wanted = await describeSchema(target);
    expect(describeDifferences(once, wanted), "applied once").toEqual([]);
    expect(describeDifferences(twice, wanted), "applied twice").toEqual([]);
  } finally {
    await Promise.all([sql.end(), target.end()]);
  }
}

// Each case builds a database from the schema files and diffs it: several seconds, more on a busy machine.
describe("npm run db:diff", { timeout: 240_000 }, () => {
  it("finds no changes on the repository: supabase/schemas and the migrations build the same database", async () => {
    const diff = await diffSchemas(serverUrl);
    expect(diff.sql, `supabase/schemas and the migrations differ; \`npm run db:diff -- <name>\` writes:\n${diff.sql}`).toBeNull();
    expect(diff.remaining, "differences the diff cannot write").toEqual([]);
  });

  it("writes a changed function body as CREATE OR REPLACE, keeping its grants, and says what it changes", async () => {
    const { diff, targetUrl } = await generate((dir) =>
      replaceIn(dir, "10_keys_and_limits.sql", "else greatest(1, pg_catalog.floor(", "else greatest(2, pg_catalog.floor("),
      "an effective limit of at least 2");
    expect(diff.sql!.split("\n").slice(0, 4)).toEqual([
      expect.stringMatching(/^-- Written by `npm run db:diff`/),
      expect.stringMatching(/^-- what supabase\/schemas builds/),
      `${WHAT_MARK}an effective limit of at least 2`,
      "set check_function_bodies = off;",
    ]);
    expect(diff.statements).toHaveLength(1);
    expect(diff.statements[0]).toMatch(/^CREATE OR REPLACE FUNCTION public\.google_ai_effective_limit\(/);
    expect(diff.fixups).toEqual([]);
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(diff.sql!, targetUrl);
  });

  it("writes a changed signature as drop and create, with the grants named in 99_access.sql and no stray overload", async () => {
    const { diff, targetUrl } = await generate(async (dir) => {
      await replaceIn(dir, "80_quota_visibility.sql", "CREATE OR REPLACE FUNCTION public.google_ai_cooldown_cause(p_model text)",
        "CREATE OR REPLACE FUNCTION public.google_ai_cooldown_cause(p_model text, p_at timestamp with time zone DEFAULT NULL)");
      await replaceIn(dir, "80_quota_visibility.sql", "and c.cooldown_until > pg_catalog.clock_timestamp()",
        "and c.cooldown_until > coalesce(p_at, pg_catalog.clock_timestamp())");
      await replaceIn(dir, "80_quota_visibility.sql", "COMMENT ON FUNCTION public.google_ai_cooldown_cause(p_model text)",
        "COMMENT ON FUNCTION public.google_ai_cooldown_cause(p_model text, p_at timestamp with time zone)");
      await replaceIn(dir, "99_access.sql", "public.google_ai_cooldown_cause(p_model text)",
        "public.google_ai_cooldown_cause(p_model text, p_at timestamp with time zone)");
    });
    const sql = diff.sql!;
    expect(sql).toMatch(/drop function if exists "public"\."google_ai_cooldown_cause"\(p_model text\);/);
    const signature = "public.google_ai_cooldown_cause(p_model text, p_at timestamp with time zone)";
    // Least privilege: revoked from everyone who holds it by default, then granted by name as the schema files do.
    expect(diff.fixups).toEqual(expect.arrayContaining([
      expect.stringMatching(new RegExp(`^revoke all on function ${escape(signature)} from public, anon, authenticated`)),
      `grant execute on function ${signature} to service_role;`,
      `grant execute on function ${signature} to eve_gateway;`,
    ]));
    // Other functions' grants are not touched.
    expect(diff.fixups.filter((s) => /^(revoke|grant)/.test(s) && !s.includes(signature))).toEqual([]);
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl);
  });

  it("writes a new table and function with their grants, RLS, policy, index and comments", async () => {
    const { diff, targetUrl } = await generate(async (dir) => {
      await writeFile(path.join(dir, "94_notes.sql"), `
CREATE TABLE public.google_ai_notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    note text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
COMMENT ON TABLE public.google_ai_notes IS 'The operator''s notes.';
COMMENT ON COLUMN public.google_ai_notes.note IS 'What happened.';
CREATE INDEX google_ai_notes_created_at ON public.google_ai_notes USING btree (created_at);
CREATE POLICY notes_read ON public.google_ai_notes FOR SELECT TO service_role USING (true);
CREATE OR REPLACE FUNCTION public.google_ai_note_count() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$ select pg_catalog.count(*) from public.google_ai_notes $$;
`);
      const access = await readFile(path.join(dir, "99_access.sql"), "utf8");
      await writeFile(path.join(dir, "99_access.sql"), access + `
ALTER TABLE public.google_ai_notes ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.google_ai_notes FROM anon, authenticated, service_role, eve_gateway;
GRANT SELECT,INSERT ON TABLE public.google_ai_notes TO service_role;
GRANT ALL ON FUNCTION public.google_ai_note_count() TO eve_gateway;
`);
    });
    const sql = diff.sql!;
    expect(sql).toContain(`create table if not exists "public"."google_ai_notes"`);
    expect(sql).toContain(`alter table "public"."google_ai_notes" enable row level security;`);
    expect(sql).toContain("grant execute on function public.google_ai_note_count() to eve_gateway;");
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl);
    // The new function is the gateway role's only: not anon's, authenticated's or PUBLIC's.
    const check = connect(targetUrl, { max: 1 });
    try {
      const [{ acl }] = await check`select proacl::text as acl from pg_proc where proname = 'google_ai_note_count'`;
      expect(acl).toBe("{postgres=X/postgres,eve_gateway=X/postgres}");
    } finally {
      await check.end();
    }
  });

  it("writes a view that gains a column in the middle, keeping security_invoker, grants and comment", async () => {
    const { diff, targetUrl } = await generate((dir) =>
      replaceIn(dir, "93_views.sql", "    cd.reason,\n    cd.quota_id,", "    cd.reason,\n    cd.cause,\n    cd.quota_id,"));
    const sql = diff.sql!;
    expect(sql).toContain(`drop view if exists "public"."google_ai_cooldowns_active";`);
    expect(diff.fixups).toEqual(expect.arrayContaining([
      "alter view public.google_ai_cooldowns_active set (security_invoker='true');",
      "grant select on table public.google_ai_cooldowns_active to service_role;",
    ]));
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl);
  });

  it("writes a view that gains a column in the middle when a function returns its rows and a view reads it", async () => {
    // google_ai_catalogue_status() returns the view's row type; google_ai_model_lifecycle selects from it.
    const { diff, targetUrl } = await generate((dir) =>
      replaceIn(dir, "93_views.sql", "SELECT l.model,\n    l.is_active,\n    (SELECT count(*) FROM ok_keys",
        "SELECT l.model,\n    l.is_active,\n    l.provider,\n    (SELECT count(*) FROM ok_keys"));
    const sql = diff.sql!;
    const at = (text: string) => {
      const i = sql.indexOf(text);
      expect(i, text).toBeGreaterThanOrEqual(0);
      return i;
    };
    // The dependents go first and come back after the view, in dependency order, with their grants.
    const dropFunction = at("drop function if exists public.google_ai_catalogue_status();");
    const dropLifecycle = at(`drop view if exists "public"."google_ai_model_lifecycle";`);
    const dropView = at(`drop view if exists "public"."google_ai_model_catalogue_status";`);
    const createView = at(`create or replace view "public"."google_ai_model_catalogue_status"`);
    const createFunction = at("CREATE OR REPLACE FUNCTION public.google_ai_catalogue_status()");
    const createLifecycle = at(`create or replace view "public"."google_ai_model_lifecycle"`);
    expect(Math.max(dropFunction, dropLifecycle)).toBeLessThan(dropView);
    expect(createView).toBeLessThan(Math.min(createFunction, createLifecycle));
    expect(diff.fixups).toEqual(expect.arrayContaining([
      "grant execute on function public.google_ai_catalogue_status() to eve_gateway;",
      expect.stringMatching(/^grant insert, select, .* on table public\.google_ai_model_lifecycle to service_role;$/),
      expect.stringMatching(/^comment on view public\.google_ai_model_lifecycle is 'Each model row in its life cycle/),
    ]));
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl);
  });

  it("writes a view over a view over a changed view, innermost first", async () => {
    // Two views stacked on google_ai_cooldowns_active, in both databases; the bottom one gains a column
    // in the middle.
    const stacked = `
CREATE OR REPLACE VIEW public.google_ai_cooldowns_by_group WITH (security_invoker='true') AS
 SELECT a.quota_group, count(*)::integer AS models FROM public.google_ai_cooldowns_active a GROUP BY a.quota_group;
COMMENT ON VIEW public.google_ai_cooldowns_by_group IS 'Cooldowns in force per quota group.';
CREATE OR REPLACE VIEW public.google_ai_cooldowns_busiest WITH (security_invoker='true') AS
 SELECT g.quota_group, g.models FROM public.google_ai_cooldowns_by_group g WHERE g.models > 1;
REVOKE ALL ON TABLE public.google_ai_cooldowns_busiest FROM anon, authenticated, service_role;
GRANT SELECT ON TABLE public.google_ai_cooldowns_busiest TO service_role;
`;
    const { diff, targetUrl } = await generate(async (dir) => {
      // (The views in a file of their own, their access in 99_access.sql, whose loop revokes every view first.)
      const [views, access] = stacked.split("REVOKE ALL");
      await writeFile(path.join(dir, "94_stacked.sql"), views);
      await writeFile(path.join(dir, "99_access.sql"),
        (await readFile(path.join(dir, "99_access.sql"), "utf8")) + "REVOKE ALL" + access);
      await replaceIn(dir, "93_views.sql", "    cd.reason,\n    cd.quota_id,", "    cd.reason,\n    cd.cause,\n    cd.quota_id,");
    }, undefined, stacked);
    const sql = diff.sql!;
    const order = [
      `drop view if exists "public"."google_ai_cooldowns_busiest";`,
      `drop view if exists "public"."google_ai_cooldowns_by_group";`,
      `drop view if exists "public"."google_ai_cooldowns_active";`,
      `create or replace view "public"."google_ai_cooldowns_active"`,
      `create or replace view "public"."google_ai_cooldowns_by_group"`,
      `create or replace view "public"."google_ai_cooldowns_busiest"`,
    ].map((text) => [text, sql.indexOf(text)] as const);
    for (const [text, i] of order) expect(i, text).toBeGreaterThanOrEqual(0);
    expect(order.map(([, i]) => i)).toEqual(order.map(([, i]) => i).sort((a, b) => a - b));
    expect(diff.fixups).toEqual(expect.arrayContaining([
      "grant select on table public.google_ai_cooldowns_busiest to service_role;",
      "comment on view public.google_ai_cooldowns_by_group is 'Cooldowns in force per quota group.';",
    ]));
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl, stacked);
  });

  it("folds trigger functions: the triggers of the functions it drops are dropped first and created again on the new one", async () => {
    // What the migrations built before the fold: one trigger function per table.
    const unfolded = ["model", "class"].map((kind) => `
      create function public.google_ai_${kind}_derives_shares() returns trigger language plpgsql security definer
        set search_path to '' as $$ begin return null; end $$;
      create or replace trigger google_ai_${kind}_derives_shares after insert on public.${kind === "model" ? "google_ai_model_limits" : "google_ai_priority_classes"}
        for each row execute function public.google_ai_${kind}_derives_shares();`).join("\n");
    const { diff, targetUrl } = await generate(async () => {}, "one trigger function derives the shares", unfolded);
    expect(diff.sql).toMatch(/drop function if exists "public"\."google_ai_model_derives_shares"\(\);/);
    expect(diff.sql).toMatch(/drop function if exists "public"\."google_ai_class_derives_shares"\(\);/);
    expect(diff.sql).toContain("EXECUTE FUNCTION public.google_ai_derives_shares()");
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(diff.sql!, targetUrl, unfolded);
  });

  it("drops and creates again a trigger whose WHEN calls a function whose signature changes", async () => {
    const probe = (args: string) => `
      create or replace function public.google_ai_probe_when(p_status text${args}) returns boolean language sql immutable
        as $$ select p_status = 'done' $$;
      create or replace trigger google_ai_probe_when after update on public.google_ai_responses for each row
        when (public.google_ai_probe_when(new.status)) execute function public.google_ai_derives_shares();\n`;
    const { diff, targetUrl } = await generate((dir) => writeFile(path.join(dir, "98_probe.sql"), probe(", p_more integer DEFAULT 0")),
      undefined, probe(""));
    const sql = diff.sql!;
    const dropTrigger = sql.indexOf("drop trigger if exists google_ai_probe_when on public.google_ai_responses;");
    const dropFunction = sql.indexOf(`drop function if exists "public"."google_ai_probe_when"(p_status text);`);
    const createTrigger = sql.lastIndexOf("CREATE TRIGGER google_ai_probe_when");
    expect([dropTrigger, dropFunction, createTrigger].every((i) => i >= 0), sql).toBe(true);
    expect(dropTrigger).toBeLessThan(dropFunction);
    expect(createTrigger).toBeGreaterThan(dropFunction);
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl, probe(""));
  });

  it("refuses, naming them, what depends on a changed view and is neither a view nor a function", async () => {
    const kept = "CREATE TABLE public.google_ai_cooldown_snapshots (taken public.google_ai_cooldowns_active);\n";
    const change = generate(async (dir) => {
      await writeFile(path.join(dir, "94_snapshots.sql"), kept);
      await replaceIn(dir, "93_views.sql", "    cd.reason,\n    cd.quota_id,", "    cd.reason,\n    cd.cause,\n    cd.quota_id,");
    }, undefined, kept);
    await expect(change).rejects.toThrow(DependentsRefused);
    await expect(change).rejects.toThrow(new RegExp("^refused: column taken of table public.google_ai_cooldown_snapshots depends on " +
      escape(`"public"."google_ai_cooldowns_active"`) + ", which db:diff drops and creates again only for views, functions and triggers: " +
      "write this migration by hand"));
  });

  it("writes what migra alone misses or gets wrong: a new result type, a function's settings, a comment", async () => {
    const { diff, targetUrl } = await generate(async (dir) => {
      await replaceIn(dir, "20_windows.sql", "public.google_ai_pacific_zone() RETURNS text",
        "public.google_ai_pacific_zone() RETURNS character varying");
      await replaceIn(dir, "10_keys_and_limits.sql", "LANGUAGE sql IMMUTABLE PARALLEL SAFE\n    AS $$ select case when p_limit",
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE\n    SET search_path TO ''\n    AS $$ select case when p_limit");
      await replaceIn(dir, "80_quota_visibility.sql", "'Why a model''s first-ending", "'Why (in short) a model''s first-ending");
    });
    // CREATE OR REPLACE cannot change a result type: the function is dropped first, then granted again.
    expect(diff.statements[0]).toBe("drop function if exists public.google_ai_pacific_zone();");
    expect(diff.fixups).toEqual(expect.arrayContaining([
      "grant execute on function public.google_ai_pacific_zone() to service_role;",
      expect.stringMatching(/^CREATE OR REPLACE FUNCTION public\.google_ai_effective_limit\([\s\S]*SET search_path TO ''/),
      expect.stringMatching(/^comment on function public\.google_ai_cooldown_cause\(p_model text\) is 'Why \(in short\)/),
    ]));
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(diff.sql!, targetUrl);
  });

  it("writes a function whose result type changes while a view reads it: the view goes first and comes back", async () => {
    const zone = `
CREATE OR REPLACE VIEW public.google_ai_zone_now WITH (security_invoker='true') AS
 SELECT public.google_ai_pacific_zone() AS zone;
COMMENT ON VIEW public.google_ai_zone_now IS 'The Pacific zone''s name.';
`;
    const { diff, targetUrl } = await generate(async (dir) => {
      await writeFile(path.join(dir, "94_zone.sql"), zone);
      await replaceIn(dir, "20_windows.sql", "public.google_ai_pacific_zone() RETURNS text",
        "public.google_ai_pacific_zone() RETURNS character varying");
    }, undefined, zone);
    const sql = diff.sql!;
    const dropView = sql.indexOf(`drop view if exists "public"."google_ai_zone_now";`);
    const dropFunction = sql.indexOf("drop function if exists public.google_ai_pacific_zone();");
    expect(dropView).toBeGreaterThanOrEqual(0);
    expect(dropView).toBeLessThan(dropFunction);
    expect(diff.fixups).toEqual(expect.arrayContaining([
      "comment on view public.google_ai_zone_now is 'The Pacific zone''s name.';",
    ]));
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl, zone);
  });

  it("writes a composite type that gains an attribute: the functions taking it go first and come back", async () => {
    const { diff, targetUrl } = await generate((dir) =>
      replaceIn(dir, "35_clients_and_tokens.sql", "    client_id uuid,\n    token_id uuid\n);",
        "    client_id uuid,\n    token_id uuid,\n    attempt integer\n);"));
    const sql = diff.sql!;
    const dropType = sql.indexOf(`drop type if exists "public"."google_ai_caller";`);
    const dropRules = sql.indexOf("drop function if exists public.google_ai_booking_rules(");
    const createRules = sql.indexOf("CREATE OR REPLACE FUNCTION public.google_ai_booking_rules(");
    expect(dropRules).toBeGreaterThanOrEqual(0);
    expect(dropRules).toBeLessThan(dropType);
    expect(dropType).toBeLessThan(createRules);
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl);
  });

  it("writes types changed together, one naming another, and a new function taking one: applied twice", async () => {
    // google_ai_caller gains an attribute; google_ai_token_verdict (after it by name) gains one of its
    // type; a new function takes it. On the second run the verdict's new attribute and the new function
    // would hold google_ai_caller's drop: the verdict is dropped first, the function before both.
    const { diff, targetUrl } = await generate(async (dir) => {
      await replaceIn(dir, "35_clients_and_tokens.sql", "    client_id uuid,\n    token_id uuid\n);",
        "    client_id uuid,\n    token_id uuid,\n    attempt integer\n);");
      await replaceIn(dir, "35_clients_and_tokens.sql", "    worst numeric\n);", "    worst numeric,\n    who public.google_ai_caller\n);");
      await replaceIn(dir, "35_clients_and_tokens.sql", "CREATE TABLE public.google_ai_credential_refusals (",
        "CREATE OR REPLACE FUNCTION public.google_ai_caller_label(p_caller public.google_ai_caller) RETURNS text\n" +
        "    LANGUAGE sql IMMUTABLE\n    AS $$ select p_caller.name $$;\n\n" +
        "CREATE TABLE public.google_ai_credential_refusals (");
    });
    const sql = diff.sql!;
    expect(sql.indexOf(`drop type if exists "public"."google_ai_token_verdict";`))
      .toBeLessThan(sql.indexOf(`drop type if exists "public"."google_ai_caller";`));
    expect(sql.indexOf("drop function if exists public.google_ai_caller_label("))
      .toBeLessThan(sql.indexOf(`drop type if exists "public"."google_ai_caller";`));
    expect(diff.remaining).toEqual([]);
    await expectAppliedTwiceEqual(sql, targetUrl);
  });

  it("says in its header what the migration changes, in comment lines of at most 110 characters", () => {
    const what = "the fair queue's turns: a caller's first waiting ticket takes the head's turn and a moved " +
      "ticket never ties the head; a waiter's likely turn counts only the slots the shares it does not own leave it";
    const lines = migrationHeader(what).split("\n");
    const said = lines.filter((l) => l.startsWith("--")).slice(2);
    expect(said[0]!.startsWith(WHAT_MARK)).toBe(true);
    expect(said.length).toBeGreaterThan(1);
    expect(Math.max(...said.map((l) => l.length))).toBeLessThanOrEqual(110);
    expect(said.map((l, i) => l.slice(i === 0 ? WHAT_MARK.length : 2).trim()).join(" ")).toBe(what);
    expect(lines.at(-1)).toBe("set check_function_bodies = off;");
    // Without words, the header says only how the file was written.
    expect(migrationHeader().split("\n").filter((l) => l.startsWith(WHAT_MARK.trimEnd()))).toEqual([]);
  });

  it("adds a check after the functions the same migration creates (a check may ask one of them)", () => {
    const add = `alter table "public"."t" add constraint "t_c_check" CHECK (public.f(c)) not valid;`;
    const validate = `alter table "public"."t" validate constraint "t_c_check";`;
    const drop = `alter table "public"."t" drop constraint "t_c_check";`;
    const create = "CREATE OR REPLACE FUNCTION public.f(p text) RETURNS boolean AS $$ select true $$;";
    expect(checksLast([drop, add, validate, create])).toEqual([drop, create, add, validate]);
  });

  it("refuses to drop or rewrite the owner's tables and columns", () => {
    for (const statement of [
      `drop table "public"."token_usage";`,
      `alter table "public"."google_ai_api_keys" drop column "project_id";`,
      `alter table "public"."google_ai_model_limits" alter column "rpm" set data type bigint using "rpm"::bigint;`,
    ]) {
      expect(() => refuseOwnersData([statement]), statement).toThrow(OwnersDataRefused);
    }
    // The gateway's own tables, and additions to the owner's, are the generator's to write.
    refuseOwnersData([`drop table if exists "public"."google_ai_notes";`,
      `alter table "public"."token_usage" add column if not exists "x" text;`]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
