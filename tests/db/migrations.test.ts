// Migrations adopt the production tables in place: applied to a database that already has the
// five tables with rows, every row and column survives; each applied twice in a row, the second time
// changes nothing. (An earlier migration is not applied again after later ones: no project does, and
// a later one may change a function's result columns, which the earlier CREATE OR REPLACE cannot undo.)
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  applyMigration,
  applyMigrations,
  applySchemas,
  applySeed,
  listMigrations,
  migrationsDir,
  repoRoot,
  schemasDir,
  type Sql,
} from "../../shared/db/migrate.ts";
import { describeDifferences, describeSchema } from "../../shared/db/schema-description.ts";
import { diffSchemas, ROWS_AND_SCHEDULE, writeMigration } from "../../shared/db/schema-diff.ts";
import { createProductionTables } from "../support/production-tables.ts";
import { BASELINE_LAST, migrationsBeforeSquash } from "../support/squashed-migrations.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { testServer } from "../support/test-database.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const TABLES = ["google_ai_api_keys", "google_ai_model_limits", "google_ai_usage_counters", "google_ai_maintenance_log", "token_usage"];

async function snapshotRows(sql: Sql): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const t of TABLES) out[t] = await sql.unsafe(`select to_jsonb(t) as row from public.${t} t order by id`).then((r) => r.map((x) => x.row));
  return out;
}

/** Everything a migration could change: columns, indexes, constraints, functions, grants, RLS, options. */
async function snapshotSchema(sql: Sql) {
  return sql.unsafe(`
    select 'column' as kind, table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') as def
      from information_schema.columns where table_schema = 'public'
    union all select 'index', indexdef from pg_indexes where schemaname = 'public'
    union all select 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid) from pg_constraint where connamespace = 'public'::regnamespace
    union all select 'function', p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '')
      from pg_proc p where p.pronamespace = 'public'::regnamespace
    union all select 'grant', table_name || ' ' || grantee || ' ' || privilege_type from information_schema.role_table_grants where table_schema = 'public'
    union all select 'table', relname || ' rls=' || relrowsecurity || ' ' || coalesce(reloptions::text, '') from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'
    union all select 'comment', c.relname || ' ' || coalesce(col_description(c.oid, a.attnum), '') from pg_class c join pg_attribute a on a.attrelid = c.oid
      where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and a.attnum > 0
    order by 1, 2`);
}

/** Every old row is still there with every old column unchanged (new columns may be added). */
function expectRowsKept(before: Record<string, Record<string, unknown>[]>, after: Record<string, Record<string, unknown>[]>): void {
  for (const table of TABLES) {
    const afterById = new Map(after[table]!.map((r) => [String(r.id), r]));
    for (const old of before[table]!) {
      const now = afterById.get(String(old.id));
      expect(now, `${table} row ${old.id}`).toBeDefined();
      for (const [col, value] of Object.entries(old)) expect(now![col], `${table}.${col} of row ${old.id}`).toEqual(value);
    }
  }
}

/**
 * The migrations of `dir` in order, each applied twice in a row: the second time must change neither
 * the schema nor a row; then the seed, twice, likewise.
 */
async function applyEachTwice(sql: Sql, dir = migrationsDir): Promise<void> {
  await applyMigrations(sql, { dir: await mkdtemp(path.join(tmpdir(), "eve-no-migrations-")) }); // the record table
  for (const m of await listMigrations(dir)) {
    await applyMigration(sql, m);
    const [schema, rows] = [await snapshotSchema(sql), await snapshotRows(sql)];
    await applyMigration(sql, m);
    expect(await snapshotSchema(sql), `${m.name} applied a second time`).toEqual(schema);
    expect(await snapshotRows(sql), `${m.name} applied a second time`).toEqual(rows);
  }
  await applySeed(sql);
  const [schema, rows] = [await snapshotSchema(sql), await snapshotRows(sql)];
  await applySeed(sql);
  expect(await snapshotSchema(sql), "the seed applied a second time").toEqual(schema);
  expect(await snapshotRows(sql), "the seed applied a second time").toEqual(rows);
}

/** The current baseline alone (the files up to BASELINE_LAST), in a folder of their own. */
async function baselineOnly(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "eve-baseline-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  for (const m of await listMigrations()) if (m.version <= BASELINE_LAST) await cp(m.file, path.join(dir, path.basename(m.file)));
  return dir;
}

/** Rows with their timestamps (when each database was made and migrated) set aside. */
function timesAside(rows: Record<string, unknown[]>): unknown {
  return JSON.parse(JSON.stringify(rows), (_, v) => typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v) ? "<time>" : v);
}

/** Every row of every table in public (the gateway's and the owner's), each table's rows in one order. */
async function everyRow(sql: Sql): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  const tables = await sql<{ name: string }[]>`select c.relname as name from pg_catalog.pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') order by 1`;
  for (const { name } of tables) {
    const rows = await sql.unsafe(`select to_jsonb(t) as row from public."${name}" t`);
    out[name] = rows.map((r) => r.row).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  return out;
}

describe("the squashed baseline", () => {
  for (const shape of ["with the production tables", "empty"] as const) {
    it(`changes nothing on a project ${shape} that applied the migrations it squashed, and builds the same on a new one`, async () => {
      const [before, baseline] = [await migrationsBeforeSquash(cleanups), await baselineOnly()];
      const old = await emptySupabaseDatabase("squash_old", cleanups, { max: 2 });
      const fresh = await emptySupabaseDatabase("squash_new", cleanups, { max: 2 });
      if (shape !== "empty") {
        await createProductionTables(old);
        await createProductionTables(fresh);
      }
      await applyMigrations(old, { dir: before });
      const [description, rows] = [await describeSchema(old), await everyRow(old)];
      // The squashed files keep versions such a project recorded, so it applies none of them; run
      // again all the same, they change nothing.
      const recorded = new Set((await old<{ version: string }[]>`select version from supabase_migrations.schema_migrations`).map((r) => r.version));
      for (const m of await listMigrations(baseline)) {
        expect(recorded.has(m.version), `${m.version} recorded by a project that applied the old migrations`).toBe(true);
        await applyMigration(old, m);
      }
      expect(describeDifferences(description, await describeSchema(old))).toEqual([]);
      expect(await everyRow(old)).toEqual(rows);
      // A new project builds the same from the baseline alone: schema and every table's rows.
      await applyMigrations(fresh, { dir: baseline });
      expect(describeDifferences(await describeSchema(fresh), description)).toEqual([]);
      expect(Object.values(rows).flat().length).toBeGreaterThan(60);
      expect(timesAside(await everyRow(fresh))).toEqual(timesAside(rows)); // (two databases made a moment apart)
    });
  }
});

/** The rows migration that brought the built-in models and their prices before the 1.0 squash (from git). */
const BUILT_IN_ROWS = "20261128150000";
/** A commit whose supabase/seed.sql still held the models and prices, as projects seeded before may have them. */
const SEEDED_FROM = "a626fa6";

/** Every model row and price row, whole, ordered; ids and the times rows were written set aside. */
async function modelRows(sql: Sql): Promise<{ models: Record<string, unknown>[]; prices: Record<string, unknown>[] }> {
  const aside = (r: Record<string, unknown>) => {
    const { id: _id, created_at: _c, updated_at: _u, ...rest } = r;
    return rest;
  };
  const models = await sql.unsafe(`select to_jsonb(l) as row from public.google_ai_model_limits l order by model`);
  const prices = await sql.unsafe(`select to_jsonb(p) as row from public.google_ai_model_prices p order by model, service_tier`);
  return { models: models.map((r) => aside(r.row)), prices: prices.map((r) => aside(r.row)) };
}

/** The models docs/models.md promises ("The built-in models"): every table row's first cell. */
async function documentedModels(): Promise<string[]> {
  const text = await readFile(path.join(repoRoot, "docs", "models.md"), "utf8");
  const section = /\n## The built-in models[^\n]*\n([\s\S]*?)(?:\n## |$)/.exec(text)?.[1];
  expect(section, "docs/models.md has a section \"The built-in models\"").toBeDefined();
  return [...section!.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!).sort();
}

describe("the built-in models, brought by the migrations alone (supabase db push applies no seed)", () => {
  it("a new project gets every model the docs list, each with a price, and no key row", async () => {
    const sql = await emptySupabaseDatabase("rows_alone", cleanups, { max: 2 });
    await applyMigrations(sql);
    const { models, prices } = await modelRows(sql);
    expect(models.map((m) => m.model).sort()).toEqual(await documentedModels());
    expect(models.length).toBe(22);
    expect(prices.length).toBe(33);
    const unpriced = models.map((m) => m.model).filter((m) => !prices.some((p) => p.model === m));
    expect(unpriced, "models without a price row").toEqual([]);
    expect(models.filter((m) => m.limits_source === null).map((m) => m.model), "models not described").toEqual([]);
    expect((await sql`select count(*)::int as n from public.google_ai_api_keys`)[0].n, "key rows are the owner's (or the seed's)").toBe(0);
    const served = await sql`select provider, count(*)::int as n from public.google_ai_model_limits group by 1 order by 1`;
    expect(served).toEqual([{ provider: "anthropic", n: 6 }, { provider: "google", n: 12 }, { provider: "openai", n: 4 }]);
  });

  it("the owner's production rows keep their limits, get only what they never had, and a price", async () => {
    const sql = await emptySupabaseDatabase("rows_owner", cleanups, { max: 2 });
    await createProductionTables(sql);
    await applyMigrations(sql);
    const owners = await sql`select model, rpm, tpm, rpd, successor, limits_source from public.google_ai_model_limits
                             where model in ('gemma-3-27b-it', 'gemini-2.5-flash') order by model`;
    expect(owners).toEqual([
      { model: "gemini-2.5-flash", rpm: 10, tpm: 250000, rpd: 250, successor: "gemini-3.5-flash-lite",
        limits_source: expect.stringMatching(/^The owner's own figures, kept/) },
      { model: "gemma-3-27b-it", rpm: 30, tpm: 15000, rpd: 14400, successor: "gemma-4-31b-it",
        limits_source: expect.stringMatching(/^Free tier 30 RPM/) },
    ]);
    const { models, prices } = await modelRows(sql);
    expect(models.length).toBe(22);
    expect(models.map((m) => m.model).filter((m) => !prices.some((p) => p.model === m))).toEqual([]);
  });

  it("bring what the old seed brought: the same model and price rows", async () => {
    // A project seeded before the built-in rows came: the migrations before them as SQUASHED_FROM had
    // them, the old seed, then the rest of that chain (what it pushes before the squash) and the new files.
    const seeded = await emptySupabaseDatabase("rows_old_seed", cleanups, { max: 2 });
    const migrated = await emptySupabaseDatabase("rows_new", cleanups, { max: 2 });
    for (const sql of [seeded, migrated]) await createProductionTables(sql);
    const oldChain = await migrationsBeforeSquash(cleanups);
    await applyMigrations(seeded, { dir: await migrationsBefore(BUILT_IN_ROWS, oldChain) });
    await seeded.unsafe(oldSeed()).simple();
    await applyMigrations(seeded, { dir: oldChain });
    await applyMigrations(seeded);
    await applyMigrations(migrated);
    expect(await modelRows(migrated)).toEqual(await modelRows(seeded));
  });

  it("change none of the owner's edits to rows a project already had, and nothing applied twice", async () => {
    const sql = await emptySupabaseDatabase("rows_edited", cleanups, { max: 2 });
    await createProductionTables(sql);
    const rows = (await listMigrations()).find((m) => m.name === "rows_and_schedule")!;
    await applyMigrations(sql);
    // The owner's edits: limits corrected, a successor cleared, an alias repointed, a thinking ceiling
    // cleared, a model retired, a price corrected, the free tier's price deleted (the project billed).
    await sql.unsafe(`
      update public.google_ai_model_limits set rpm = 2, limits_source = 'our quota page' where model = 'gemma-4-31b-it';
      update public.google_ai_model_limits set successor = null, shutdown_date = null where model = 'gemini-2.5-flash';
      update public.google_ai_model_limits set aliases = aliases || '{gemma-3-27b}' where model = 'gemma-4-31b-it';
      update public.google_ai_model_limits set max_thinking_tokens = null where model = 'gemini-3.8-flash';
      update public.google_ai_model_limits set is_active = false where model = 'gpt-4o-mini';
      update public.google_ai_model_prices set input_per_mtok = 2.00 where model = 'gpt-4o';
      delete from public.google_ai_model_prices where model = 'gemini-2.5-flash' and service_tier = 'free';`).simple();
    const edited = await modelRows(sql);
    await applyMigration(sql, rows);
    expect(await modelRows(sql)).toEqual(edited);
    await applyMigration(sql, rows);
    expect(await modelRows(sql)).toEqual(edited);
  });

  it("change nothing applied a second time on a new project", async () => {
    const sql = await emptySupabaseDatabase("rows_twice", cleanups, { max: 2 });
    await applyMigrations(sql);
    const once = await modelRows(sql);
    await applyMigration(sql, (await listMigrations()).find((m) => m.name === "rows_and_schedule")!);
    expect(await modelRows(sql)).toEqual(once);
  });
});

/** The migrations of `from` before `version`, in a folder of their own: a project that has not applied it yet. */
async function migrationsBefore(version: string, from: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "eve-migrations-before-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  for (const m of await listMigrations(from)) if (m.version < version) await cp(m.file, path.join(dir, path.basename(m.file)));
  return dir;
}

/** supabase/seed.sql as SEEDED_FROM had it (its models, prices and key rows). */
function oldSeed(): string {
  try {
    return execFileSync("git", ["show", `${SEEDED_FROM}:supabase/seed.sql`], { cwd: repoRoot, encoding: "utf8" });
  } catch {
    throw new Error(`the old seed's replay needs commit ${SEEDED_FROM} (a clone with its history)`);
  }
}

describe("migrations on a project that already has the production tables", () => {
  it("keep every existing row and column, and add what the gateway needs", async () => {
    const sql = await emptySupabaseDatabase("adopt", cleanups, { max: 2 });
    await createProductionTables(sql);
    const before = await snapshotRows(sql);

    const applied = await applyMigrations(sql);
    expect(applied.slice(0, 3)).toEqual(["20261122000000_adopt_production_tables", "20261122000100_baseline", "20261122000200_rows_and_schedule"]);
    await applySeed(sql);

    expectRowsKept(before, await snapshotRows(sql));
    // The seed did not overwrite the owner's own limits (flash at 10 RPM here), only filled gaps; it
    // says they are the owner's, and adds the model's life cycle.
    const flash = await sql`select rpm, rpd, limits_source, shutdown_date::text as shutdown, successor
                            from public.google_ai_model_limits where model = 'gemini-2.5-flash'`;
    expect(flash).toEqual([{ rpm: 10, rpd: 250, shutdown: "2026-12-01", successor: "gemini-3.5-flash-lite",
      limits_source: expect.stringMatching(/^The owner's own figures, kept/) }]);
    // New columns arrived with their defaults on old rows.
    const [gemma] = await sql`select aliases, is_active, safety_margin, supports_system_instruction, supports_json_mode
                              from public.google_ai_model_limits where model = 'gemma-3-27b-it'`;
    expect(gemma).toEqual({ aliases: ["gemma-3-27b"], is_active: true, safety_margin: "0.000",
      supports_system_instruction: false, supports_json_mode: false });
  });

  it("leave the adopted database working: the RPC reserves on the owner's active key", async () => {
    const sql = await emptySupabaseDatabase("adopt_rpc", cleanups, { max: 2 });
    await createProductionTables(sql);
    await applyMigrations(sql);
    await applySeed(sql);
    const [{ r }] = await sql`select public.google_ai_reserve_models(array['gemma-3-27b-it'], 10, 'test', null, 'adopt-1') as r`;
    expect(r).toMatchObject({ ok: true, key_alias: "main", env_var_name: "GOOGLE_API_KEY" });
    // Old per-key counter rows (quota_group null) are neither used nor touched.
    const legacy = await sql`select count(*)::int as n from public.google_ai_usage_counters where quota_group is null and rpm_used = 3`;
    expect(legacy[0].n).toBe(2);
  });

  it("write token_usage rows whether the time column is `at` or `ts`", async () => {
    const sql = await emptySupabaseDatabase("adopt_ts", cleanups, { max: 2 });
    await createProductionTables(sql, "ts");
    await applyMigrations(sql);
    await applySeed(sql);
    const [{ r }] = await sql`select public.google_ai_reserve_models(array['gemma-3-27b'], 10, 'test', null, 'adopt-ts') as r`;
    await sql`select public.google_ai_finalize(${r.reservation_id}::uuid,
      '{"kind": "succeeded", "input_tokens": 12, "output_tokens": 3, "http_status": 200}'::jsonb)`;
    const rows = await sql`select model, prompt_tokens, completion_tokens, total_tokens, ts is not null as has_time
                           from public.token_usage where request_id = 'adopt-ts'`;
    expect(rows).toEqual([{ model: "gemma-3-27b-it", prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, has_time: true }]);
  });

  it("change nothing when each is applied a second time (schema and data)", async () => {
    const sql = await emptySupabaseDatabase("idempotent", cleanups, { max: 2 });
    await createProductionTables(sql);
    await applyEachTwice(sql);
  });

  it("apply to an empty project too, each twice, with identical results", async () => {
    const sql = await emptySupabaseDatabase("fresh", cleanups, { max: 2 });
    await applyEachTwice(sql);
    const models = await sql`select model, rpm, tpm, rpd from public.google_ai_model_limits order by model`;
    expect(models).toEqual([
      { model: "claude-haiku-4-5-20251001", rpm: 50, tpm: null, rpd: null },
      { model: "claude-haiku-5-5", rpm: 50, tpm: null, rpd: null },
      { model: "claude-opus-4-5-20251101", rpm: 50, tpm: null, rpd: null },
      { model: "claude-opus-5-5", rpm: 50, tpm: null, rpd: null },
      { model: "claude-sonnet-4-5-20250929", rpm: 50, tpm: null, rpd: null },
      { model: "claude-sonnet-5-5", rpm: 50, tpm: null, rpd: null },
      { model: "gemini-2.5-flash", rpm: 5, tpm: 250000, rpd: 20 },
      { model: "gemini-2.5-flash-lite", rpm: 10, tpm: 250000, rpd: 20 },
      { model: "gemini-3.1-flash-lite", rpm: 15, tpm: 250000, rpd: 500 },
      { model: "gemini-3.5-flash", rpm: 5, tpm: 250000, rpd: 20 },
      { model: "gemini-3.5-flash-lite", rpm: 15, tpm: 250000, rpd: 500 },
      { model: "gemini-3.6-flash", rpm: 5, tpm: 250000, rpd: 20 },
      { model: "gemini-3.7-flash", rpm: 5, tpm: 250000, rpd: 20 },
      { model: "gemini-3.8-flash", rpm: 5, tpm: 250000, rpd: 20 },
      { model: "gemini-embedding-001", rpm: 100, tpm: 30000, rpd: 1000 },
      { model: "gemma-3-27b-it", rpm: 30, tpm: 15000, rpd: 14400 },
      { model: "gemma-4-26b-a4b-it", rpm: 30, tpm: 15000, rpd: 14400 },
      { model: "gemma-4-31b-it", rpm: 30, tpm: 15000, rpd: 14400 },
      { model: "gpt-4o", rpm: 500, tpm: 30000, rpd: null },
      { model: "gpt-4o-mini", rpm: 500, tpm: 200000, rpd: null },
      { model: "text-embedding-3-large", rpm: 3000, tpm: 1000000, rpd: null },
      { model: "text-embedding-3-small", rpm: 3000, tpm: 1000000, rpd: null },
    ]);
    // Anthropic's rows hold its three limits apart, as buckets of a whole minute.
    const claude = await sql`select model, itpm, otpm, bucket_share::float8 as share from public.google_ai_model_limits
                             where provider = 'anthropic' order by model`;
    expect(claude).toEqual([
      { model: "claude-haiku-4-5-20251001", itpm: 50000, otpm: 10000, share: 1 },
      { model: "claude-haiku-5-5", itpm: 50000, otpm: 10000, share: 1 },
      { model: "claude-opus-4-5-20251101", itpm: 30000, otpm: 8000, share: 1 },
      { model: "claude-opus-5-5", itpm: 30000, otpm: 8000, share: 1 },
      { model: "claude-sonnet-4-5-20250929", itpm: 30000, otpm: 8000, share: 1 },
      { model: "claude-sonnet-5-5", itpm: 30000, otpm: 8000, share: 1 },
    ]);
    // OpenAI's chat rows are OpenAI's, book input + max_tokens (4096 when a request names none), and its one
    // key row is served by them alone, its organization its quota group.
    const openai = await sql`select model, provider, booked_output_tokens from public.google_ai_model_limits
                             where booked_output_tokens is not null or provider <> 'google' order by model`;
    expect(openai).toEqual([
      { model: "claude-haiku-4-5-20251001", provider: "anthropic", booked_output_tokens: 4096 },
      { model: "claude-haiku-5-5", provider: "anthropic", booked_output_tokens: 4096 },
      { model: "claude-opus-4-5-20251101", provider: "anthropic", booked_output_tokens: 4096 },
      { model: "claude-opus-5-5", provider: "anthropic", booked_output_tokens: 4096 },
      { model: "claude-sonnet-4-5-20250929", provider: "anthropic", booked_output_tokens: 4096 },
      { model: "claude-sonnet-5-5", provider: "anthropic", booked_output_tokens: 4096 },
      { model: "gpt-4o", provider: "openai", booked_output_tokens: 4096 },
      { model: "gpt-4o-mini", provider: "openai", booked_output_tokens: 4096 },
      // An embedding answers no tokens: its TPM counts its input alone.
      { model: "text-embedding-3-large", provider: "openai", booked_output_tokens: null },
      { model: "text-embedding-3-small", provider: "openai", booked_output_tokens: null },
    ]);
    const keys = await sql`select key_alias, serves_provider, env_var_name, project_id from public.google_ai_api_keys order by key_alias`;
    expect(keys).toEqual([
      { key_alias: "default", serves_provider: "google", env_var_name: "GOOGLE_API_KEY", project_id: null },
      { key_alias: "openai-default", serves_provider: "openai", env_var_name: "OPENAI_API_KEY", project_id: "org-default" },
    ]);
    // Every seeded row says where its limits come from, and the owner's names carry their life cycle.
    const lifecycle = await sql`select model, shutdown_date::text as shutdown, successor, limits_source is not null as sourced
                                from public.google_ai_model_limits
                                where model in ('gemma-3-27b-it', 'gemini-2.5-flash', 'gemini-3.5-flash')
                                order by model`;
    expect(lifecycle).toEqual([
      { model: "gemini-2.5-flash", shutdown: "2026-12-01", successor: "gemini-3.5-flash-lite", sourced: true },
      { model: "gemini-3.5-flash", shutdown: null, successor: "gemini-3.6-flash", sourced: true },
      { model: "gemma-3-27b-it", shutdown: null, successor: "gemma-4-31b-it", sourced: true },
    ]);
    // Google's -latest names are aliases of the rows they route to: one quota counts both names.
    const latest = await sql`select (public.google_ai_model_by_name('gemini-flash-latest')).model as flash,
                                    (public.google_ai_model_by_name('gemini-flash-lite-latest')).model as lite`;
    expect(latest).toEqual([{ flash: "gemini-3.8-flash", lite: "gemini-3.5-flash-lite" }]);
    expect((await sql`select count(*)::int as n from public.google_ai_model_limits where limits_source is null`)[0].n).toBe(0);
    // The operator's edits survive the seed's re-run: a successor cleared, limits corrected, an alias repointed.
    await sql`update public.google_ai_model_limits set successor = null, shutdown_date = null where model = 'gemini-2.5-flash'`;
    await sql`update public.google_ai_model_limits set rpm = 2, limits_source = 'our quota page' where model = 'gemma-4-31b-it'`;
    await sql`update public.google_ai_model_limits set aliases = aliases || '{gemma-3-27b}' where model = 'gemma-4-31b-it'`;
    const edited = await snapshotRows(sql);
    await applySeed(sql);
    expect(await snapshotRows(sql)).toEqual(edited);
    const [{ r }] = await sql`select (public.google_ai_model_by_name('gemma-3-27b')).model as r`;
    expect(r).toBe("gemma-4-31b-it");
  });

  it("take a later migration that adds a result column to a function of the baseline, written by db:diff", async () => {
    // A copy of the schema files and migrations; a column added to google_ai_fallback_chain's results.
    const [schemas, migrations] = [await mkdtemp(path.join(tmpdir(), "eve-schemas-")), await mkdtemp(path.join(tmpdir(), "eve-migrations-"))];
    cleanups.push(() => rm(schemas, { recursive: true, force: true }), () => rm(migrations, { recursive: true, force: true }));
    await cp(schemasDir, schemas, { recursive: true });
    await cp(migrationsDir, migrations, { recursive: true });
    const file = path.join(schemas, "56_fallback_chain.sql");
    const before = await readFile(file, "utf8");
    const after = before.replace("OUT o_token_id uuid, OUT o_complete boolean) RETURNS record",
      "OUT o_token_id uuid, OUT o_complete boolean, OUT o_asked_count integer) RETURNS record")
      .replace("  if p_queue_ticket is not null then\n    o_first :=", "  o_asked_count := cardinality(o_names);\n  if p_queue_ticket is not null then\n    o_first :=");
    expect(after.split("asked_count").length, "the edit found its two places").toBe(3);
    await writeFile(file, after);
    const diff = await diffSchemas(testServer().serverUrl, { schemas, migrations, what: "the chain says how many it asked" });
    expect(diff.sql).toMatch(/drop function if exists "?public"?\."?google_ai_fallback_chain"?\(/);
    expect(diff.remaining).toEqual([]);
    await writeMigration("fallback_chain_asked", diff.sql!, migrations);

    // The replay: on the owner's tables, each migration twice in a row, the rows kept.
    const adopted = await emptySupabaseDatabase("later_result", cleanups, { max: 2 });
    await createProductionTables(adopted);
    const rows = await snapshotRows(adopted);
    await applyEachTwice(adopted, migrations);
    expectRowsKept(rows, await snapshotRows(adopted));
    const [{ asked }] = await adopted`select (public.google_ai_fallback_chain(array['gemma-3-27b-it', 'gpt-4o'], null, null)).o_asked_count as asked`;
    expect(asked).toBe(2);

    // Equality: what the migrations build is what the edited schema files build.
    const migrated = await emptySupabaseDatabase("later_migrated", cleanups);
    await applyMigrations(migrated, { dir: migrations });
    const declared = await emptySupabaseDatabase("later_declared", cleanups);
    await applySchemas(declared, { dir: schemas, migrations: [path.join(migrations, ROWS_AND_SCHEDULE)] });
    expect(describeDifferences(await describeSchema(migrated), await describeSchema(declared))).toEqual([]);
  });

  it("stop with a clear message, changing nothing, when existing rows would break a unique key", async () => {
    const sql = await emptySupabaseDatabase("dupes", cleanups, { max: 2 });
    await createProductionTables(sql);
    await sql`insert into public.google_ai_model_limits (model, rpm) values ('gemma-3-27b-it', 1)`;
    await expect(applyMigrations(sql)).rejects.toThrow(/duplicate rows for model\(s\) gemma-3-27b-it/);
    const cols = await sql`select count(*)::int as n from information_schema.columns
                           where table_name = 'google_ai_api_keys' and column_name = 'project_id'`;
    expect(cols[0].n).toBe(0);
    expect((await sql`select count(*)::int as n from public.google_ai_model_limits`)[0].n).toBe(3);
  });
});
