// supabase/schemas is the database's one current truth; supabase/migrations must build the same
// database from it. Two empty Supabase projects, one migrated, one built from the schema files plus
// the migration that holds what declarative files cannot (rows, the pg_cron schedule), must have
// equal descriptions (shared/db/schema-description.ts: tables, columns, defaults, constraints,
// indexes, function bodies and options, grants, RLS, comments, views, triggers, roles, cron jobs).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyMigrations,
  applySchemas,
  applySeed,
  listMigrations,
  listSchemaFiles,
  migrationsDir,
  repoRoot,
  type Sql,
} from "../../shared/db/migrate.ts";
import { BASELINE_FILE, baselineIntact, baselineText, splitStatements } from "../../shared/db/baseline.ts";
import { describeSchema, type SchemaDescription } from "../../shared/db/schema-description.ts";
import { GENERATED_MARK, ROWS_AND_SCHEDULE, WHAT_MARK } from "../../shared/db/schema-diff.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";

/** The last file of the baseline; later migrations are changes, each holding only what it changed. */
const BASELINE_LAST = "20261122000200";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let migrated: Sql;
let declared: Sql;
beforeAll(async () => {
  migrated = await emptySupabaseDatabase("from_migrations", cleanups);
  await applyMigrations(migrated);
  await applySeed(migrated);
  declared = await emptySupabaseDatabase("from_schemas", cleanups);
  await applySchemas(declared, { migrations: [ROWS_AND_SCHEDULE] });
  await applySeed(declared);
});

/** The description `change` leaves in `sql`, the change then rolled back. */
async function describedAfter(sql: Sql, change: string): Promise<SchemaDescription> {
  let description: SchemaDescription | undefined;
  await sql.begin(async (tx) => {
    await tx.unsafe(change).simple();
    description = await describeSchema(tx as unknown as Sql);
    throw new Error("roll back");
  }).catch((err: Error) => {
    if (err.message !== "roll back") throw err;
  });
  return description!;
}

describe("supabase/schemas and supabase/migrations", () => {
  it("build the same database", async () => {
    const fromMigrations = await describeSchema(migrated);
    const fromSchemas = await describeSchema(declared);
    expect(Object.keys(fromSchemas.functions).length).toBeGreaterThan(90);
    expect(fromSchemas).toEqual(fromMigrations);
  });

  it("are told apart when either side changes alone", async () => {
    const fromMigrations = await describeSchema(migrated);
    const fromSchemas = await describeSchema(declared);
    // One extra `create or replace` on one side: the same signature, one more comment in its body.
    const quotaGroup = `create or replace function public.google_ai_quota_group(p_project_id text, p_key_id uuid)
      returns text language sql immutable parallel safe
      as $$ select coalesce(p_project_id, 'key:' operator(pg_catalog.||) p_key_id::pg_catalog.text) -- changed
      $$;`;
    expect(await describedAfter(migrated, quotaGroup)).not.toEqual(fromSchemas);
    expect(await describedAfter(declared, quotaGroup)).not.toEqual(fromMigrations);
    // A grant alone, and a comment alone, are differences too.
    expect(await describedAfter(migrated, `grant select on public.google_ai_attempts to anon`)).not.toEqual(fromSchemas);
    expect(await describedAfter(declared, `comment on table public.google_ai_queue is 'x'`)).not.toEqual(fromMigrations);
    // Rolled back: the two still agree.
    expect(await describeSchema(declared)).toEqual(await describeSchema(migrated));
  });

  it("keep the baseline as its generator wrote it from the schema files", async () => {
    const baseline = await readFile(BASELINE_FILE, "utf8");
    expect(baselineIntact(baseline), "the baseline is generated: never edit it").toBe(true);
    expect(baselineIntact(baseline.replace("google_ai_quota_group", "google_ai_quota_grouped"))).toBe(false);
    // Its generator still writes migrations of this shape: every table adopting, every statement once.
    const generated = await baselineText();
    expect(baselineIntact(generated)).toBe(true);
    expect(generated).toContain("CREATE TABLE IF NOT EXISTS public.google_ai_api_keys (");
    expect(generated).toContain("ALTER TABLE public.google_ai_api_keys ADD COLUMN IF NOT EXISTS project_id text;");
  });

  it("define each function once, in supabase/schemas only (the baseline is generated from it)", async () => {
    const seen = new Map<string, string>();
    for (const file of await listSchemaFiles()) {
      for (const statement of splitStatements(await readFile(file, "utf8"))) {
        // (A procedure is a routine too: describeSchema lists it with the functions.)
        const m = /^\s*(?:--[^\n]*\n\s*)*CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE) (public\.\w+\([^)]*\))/i.exec(statement);
        if (!m) continue;
        expect(seen.get(m[1]!), `${m[1]} defined twice`).toBeUndefined();
        seen.set(m[1]!, path.basename(file));
      }
    }
    expect(seen.size).toBe(Object.keys((await describeSchema(declared)).functions).length);
    // The baseline's hand-written neighbours define none; a later migration that defines one is
    // written by `npm run db:diff` from the schema files, not copied by hand.
    for (const m of await listMigrations()) {
      if (m.file === BASELINE_FILE) continue;
      const text = await readFile(m.file, "utf8");
      if (m.version <= BASELINE_LAST) expect(text, m.name).not.toMatch(/create\s+(or\s+replace\s+)?function/i);
      else if (/create\s+(or\s+replace\s+)?function/i.test(text)) expect(text.startsWith(GENERATED_MARK), `${m.name}: write it with npm run db:diff`).toBe(true);
    }
  });

  it("have one quota-group function, inlined by the planner into the queries that use it", async () => {
    // What the reservation's candidate query runs: the call becomes the COALESCE expression itself.
    const plan = await migrated.begin(async (tx) => {
      await tx`set local search_path = ''`;
      return tx.unsafe(`explain verbose
        select distinct on (public.google_ai_quota_group(k.project_id, k.id)) public.google_ai_quota_group(k.project_id, k.id)
        from public.google_ai_api_keys k where k.is_active
        order by public.google_ai_quota_group(k.project_id, k.id), k.priority`);
    });
    const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
    expect(text).toContain("COALESCE(k.project_id, ('key:'::text || (k.id)::text))");
    expect(text).not.toContain("google_ai_quota_group");
    let spelled = 0;
    for (const file of await listSchemaFiles()) spelled += (await readFile(file, "utf8")).split("'key:'").length - 1;
    expect(spelled, "the quota group is spelled out only in google_ai_quota_group").toBe(1);
  });

  it("after the baseline, each says in its header what it changes", async () => {
    const unsaid: string[] = [];
    for (const m of await listMigrations()) {
      if (m.version <= BASELINE_LAST) continue;
      const text = await readFile(m.file, "utf8");
      if (!text.split("\n").some((l) => l.startsWith(WHAT_MARK) && l.length > WHAT_MARK.length)) unsaid.push(m.name);
    }
    expect(unsaid, `no "${WHAT_MARK.trim()}" line (npm run db:diff -- <name> --what "...")`).toEqual([]);
  });

  it("up to the baseline, and the schema files, are listed in supabase/MIGRATIONS.md (and docs/architecture.md)", async () => {
    const readme = await readFile(path.join(repoRoot, "supabase", "MIGRATIONS.md"), "utf8");
    const architecture = await readFile(path.join(repoRoot, "docs", "architecture.md"), "utf8");
    for (const m of await listMigrations()) {
      if (m.version <= BASELINE_LAST) expect(readme).toContain(`${m.version}_${m.name}.sql`);
    }
    for (const file of await listSchemaFiles()) {
      expect(readme).toContain(path.basename(file));
      expect(architecture).toContain(path.basename(file));
    }
  });
});
