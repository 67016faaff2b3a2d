// The migrations were laid out again by concern (supabase/migrations/README.md). This proves the
// re-layout changed nothing but what it meant to: the schema today's files build equals the one the
// old files built (tests/db/fixtures/schema-before-layout.json, written by
// scripts/schema-description.ts before the change) — tables, columns, defaults, constraints,
// indexes, functions with their signatures, options and ACLs, RLS, views, roles, pg_cron jobs —
// except for the differences listed here.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  applyMigrations,
  applySeed,
  connect,
  listMigrations,
  migrationsDir,
  repoRoot,
  type Sql,
} from "../../shared/db/migrate.ts";
import { describeSchema, type SchemaDescription } from "../../shared/db/schema-description.ts";
import { createProductionTables } from "../support/production-tables.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { testServer } from "../support/test-database.ts";

const before = JSON.parse(await readFile(path.join(repoRoot, "tests/db/fixtures/schema-before-layout.json"), "utf8")) as {
  fresh: SchemaDescription;
  adopted: SchemaDescription;
};

/** The last file of the layout; what came after it is compared by its own tests. */
const LAYOUT_THROUGH = "20261122001000";

/** Functions the re-layout added: the quota group of a key, and the reservation's named steps. */
const ADDED_FUNCTIONS = [
  "google_ai_quota_group(text,uuid)",
  "google_ai_idempotent_answer(text,text,timestamp with time zone)",
  "google_ai_hold_request(text,text,text,timestamp with time zone)",
  "google_ai_request_limits(text,integer)",
  "google_ai_candidate_groups(text,uuid[],integer,integer,integer,timestamp with time zone)",
  "google_ai_book_best_group(text,integer,integer,integer,integer,uuid[],timestamp with time zone,timestamp with time zone)",
  "google_ai_serving_key(text,text,uuid[])",
  "google_ai_record_refusal(timestamp with time zone,text,text,uuid,uuid,text,text,integer,integer,text,timestamp with time zone,integer,jsonb)",
];

/** Functions whose body changed (everything else about them — signature, options, ACL — did not). */
const CHANGED_BODIES: Record<string, string> = {
  "google_ai_reserve_at(timestamp with time zone,text,integer,text,text,uuid[],integer,integer,jsonb,uuid,uuid,boolean)":
    "split into the named steps above",
  "google_ai_housekeeping_tokens(timestamp with time zone,google_ai_maintenance_settings,timestamp with time zone)":
    "no probe for a tokens table created later: the table exists by then",
  "google_ai_housekeeping_counters(timestamp with time zone,google_ai_maintenance_settings,timestamp with time zone)":
    "google_ai_quota_group instead of its own copy",
  "google_ai_record_key_check(uuid,text,integer,text,text,jsonb,boolean)": "google_ai_quota_group instead of its own copy",
  "google_ai_active_keys()": "google_ai_quota_group instead of its own copy",
};

/** Views whose definition changed: google_ai_quota_group instead of their own copy. */
const CHANGED_VIEWS = ["google_ai_usage_now", "google_ai_cooldowns_active"];

type Described = Omit<SchemaDescription, "extensions" | "cronJobs"> & Partial<Pick<SchemaDescription, "extensions" | "cronJobs">>;

/**
 * Roles belong to the whole server, not to one database: the local tools give eve_gateway LOGIN (a
 * password for local use only) on the shared test server, so whether it may log in depends on which
 * tests ran before. The migrations create it NOLOGIN; tests/db/gateway-role.test.ts checks its rights.
 */
function withoutLoginFlags<T extends Described>(d: T): T {
  const roles = (d as { roles?: Record<string, Record<string, unknown>> }).roles;
  if (roles === undefined) return d;
  return { ...d, roles: Object.fromEntries(Object.entries(roles).map(([name, r]) => [name, { ...r, login: null }])) };
}

/** Compares two descriptions allowing only the listed differences, and checks each listed one is real. */
function expectSameButIntended(old: Described, now: Described) {
  const { functions: oldFunctions, relations: oldRelations, ...oldRest } = withoutLoginFlags(old);
  const { functions: nowFunctions, relations: nowRelations, ...nowRest } = withoutLoginFlags(now);
  expect(nowRest).toEqual(oldRest);

  expect(Object.keys(nowFunctions).filter((f) => !(f in oldFunctions)).sort()).toEqual([...ADDED_FUNCTIONS].sort());
  expect(Object.keys(oldFunctions).filter((f) => !(f in nowFunctions))).toEqual([]);
  for (const [signature, was] of Object.entries(oldFunctions)) {
    const is = nowFunctions[signature]!;
    if (signature in CHANGED_BODIES) {
      expect(is.body, `${signature}: ${CHANGED_BODIES[signature]}`).not.toEqual(was.body);
      expect({ ...is, body: "" }, signature).toEqual({ ...was, body: "" });
    } else {
      expect(is, signature).toEqual(was);
    }
  }

  expect(Object.keys(nowRelations).sort()).toEqual(Object.keys(oldRelations).sort());
  for (const [name, was] of Object.entries(oldRelations) as [string, { definition?: string }][]) {
    const is = nowRelations[name] as { definition?: string };
    if (CHANGED_VIEWS.includes(name)) {
      expect(is.definition, name).toContain("google_ai_quota_group(");
      expect({ ...is, definition: "" }, name).toEqual({ ...was, definition: "" });
    } else {
      expect(is, name).toEqual(was);
    }
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe("the migrations, laid out by concern", () => {
  it("build on an empty project the schema the old files built, but for the listed differences", async () => {
    const sql = await emptySupabaseDatabase("layout_fresh", cleanups);
    await applyMigrations(sql, { through: LAYOUT_THROUGH });
    await applySeed(sql);
    // pg_cron lives only in the cron database (the next test); this one has the bootstrap's extensions.
    const { extensions, cronJobs, ...now } = await describeSchema(sql);
    const { extensions: _e, cronJobs: _c, ...old } = before.fresh;
    expectSameButIntended(old, now);
    expect(extensions).toEqual(before.adopted.extensions);
    expect(cronJobs).toEqual({});
  });

  it("schedule the same pg_cron jobs in the cron database", async () => {
    const { serverUrl, pgCron } = testServer();
    expect(pgCron, "pg_cron must be installed and preloaded (apt-get install postgresql-15-cron)").toBe(true);
    const sql = connect(serverUrl, { max: 1 });
    cleanups.push(() => sql.end({ timeout: 5 }));
    // The schedule file alone, in a transaction rolled back afterwards: the cron database belongs to
    // tests/maintenance/cron.test.ts, which may be migrating it right now.
    const schedule = (await listMigrations()).find((m) => m.name === "housekeeping_schedule")!;
    const tx = await sql.reserve();
    try {
      await tx`begin`;
      await tx.unsafe(await readFile(schedule.file, "utf8")).simple();
      const { cronJobs } = await describeSchema(tx as unknown as Sql);
      expect(cronJobs).toEqual(before.fresh.cronJobs);
      expect(Object.keys(cronJobs)).toEqual(["eve-gateway-housekeeping"]);
    } finally {
      await tx`rollback`;
      tx.release();
    }
  });

  it("adopt the owner's production tables, applied twice, into the same schema as before", async () => {
    const sql = await emptySupabaseDatabase("layout_adopted", cleanups);
    await createProductionTables(sql);
    await applyMigrations(sql, { through: LAYOUT_THROUGH });
    await applySeed(sql);
    await applyMigrations(sql, { through: LAYOUT_THROUGH, force: true });
    await applySeed(sql);
    expectSameButIntended(before.adopted, await describeSchema(sql));
  });

  it("have one quota-group function, inlined by the planner into the queries that use it", async () => {
    const sql = await emptySupabaseDatabase("layout_inline", cleanups);
    await applyMigrations(sql, { through: LAYOUT_THROUGH });
    // What the reservation's candidate query runs: the call becomes the COALESCE expression itself.
    const plan = await sql.begin(async (tx) => {
      await tx`set local search_path = ''`;
      return tx.unsafe(`explain verbose
        select distinct on (public.google_ai_quota_group(k.project_id, k.id)) public.google_ai_quota_group(k.project_id, k.id)
        from public.google_ai_api_keys k where k.is_active
        order by public.google_ai_quota_group(k.project_id, k.id), k.priority`);
    });
    const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
    expect(text).toContain("COALESCE(k.project_id, ('key:'::text || (k.id)::text))");
    expect(text).not.toContain("google_ai_quota_group");

    const copies: string[] = [];
    for (const m of await listMigrations()) {
      if ((await readFile(m.file, "utf8")).includes("'key:' ||")) copies.push(m.name);
    }
    expect(copies, "the quota group is spelled out only in google_ai_quota_group").toEqual([]);
  });

  it("are listed, one line each, in supabase/migrations/README.md", async () => {
    const readme = await readFile(path.join(migrationsDir, "README.md"), "utf8");
    for (const m of await listMigrations()) expect(readme).toContain(`${m.version}_${m.name}.sql`);
    expect(readme).toMatch(/append-only/);
  });
});
