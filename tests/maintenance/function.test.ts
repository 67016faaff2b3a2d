// The maintenance Edge Function over HTTP: served by Deno from the repository (scripts/serve-functions.ts),
// against a real database and the offline Google simulator. Shows: only the service key may call it,
// a key Google rejects is taken out of rotation with its reason (never deleted), a key whose secret
// is missing is reported only, the catalogue is refreshed, configured models Google does not list
// are flagged, the run is logged, and no key appears anywhere in what it answers or writes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionsServer } from "../../scripts/serve-functions.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../shared/google-sim/server.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { serveMaintenance } from "./serve-maintenance.ts";

const SERVICE_KEY = "sb_secret_maintenance_http_test_0123456789";
// Key rows -> Edge secrets -> simulator keys. "revoked" is a key the simulator (Google) does not know;
// "c1" is a key it knows but refuses for models.list (a key revoked after it was added).
const SECRETS: Record<string, string> = {
  GOOGLE_MT_KEY_A1: "sim-key-a1",
  GOOGLE_MT_KEY_B1: "sim-key-b1",
  GOOGLE_MT_KEY_REVOKED: "sim-key-revoked-by-owner",
  GOOGLE_MT_KEY_C1: "sim-key-c1",
};
const KEYS = [
  { alias: "a1", env: "GOOGLE_MT_KEY_A1", project: "sim-project-a", priority: 1 },
  { alias: "b1", env: "GOOGLE_MT_KEY_B1", project: "sim-project-b", priority: 2 },
  { alias: "revoked", env: "GOOGLE_MT_KEY_REVOKED", project: "sim-project-x", priority: 3 },
  { alias: "c1", env: "GOOGLE_MT_KEY_C1", project: "sim-project-c", priority: 4 },
  { alias: "nosecret", env: "GOOGLE_MT_KEY_NOT_SET", project: "sim-project-d", priority: 5 },
];

let db: TestDatabase;
let sim: GoogleSimulator;
let server: FunctionsServer;
let url: string;
const logs: string[] = [];
const bodies: string[] = [];

beforeAll(async () => {
  db = await freshDatabase("maintenance_fn");
  await db.sql`delete from public.google_ai_api_keys`;
  for (const k of KEYS) {
    await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
                 values (${k.alias}, ${k.env}, ${k.project}, ${k.priority})`;
  }
  // A configured model Google does not serve (retired or mistyped).
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('gemini-1.0-pro-retired', 5, 1000, 10)`;
  sim = await startGoogleSimulator({
    keys: { "sim-key-a1": "sim-project-a", "sim-key-b1": "sim-project-b", "sim-key-c1": "sim-project-c" },
    // A model Google serves that no row names yet (a new release).
    models: { "gemini-3.9-flash": { displayName: "Gemini 3.9 Flash" } },
    faults: [{ kind: "invalid_key", apiKey: "sim-key-c1", methods: ["models.list"] }],
  });
  ({ server, url } = await serveMaintenance({
    dbUrl: db.url,
    serviceKey: SERVICE_KEY,
    env: { GOOGLE_AI_BASE_URL: sim.url, GOOGLE_MT_KEY_NOT_SET: "", ...SECRETS },
    log: (line) => logs.push(line),
  }));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sim?.close();
  await db?.drop();
});

async function call(init: { body?: unknown; headers?: Record<string, string>; method?: string } = {}) {
  const res = await fetch(url, {
    method: init.method ?? "POST",
    headers: {
      authorization: `Bearer ${SERVICE_KEY}`,
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
  const text = await res.text();
  bodies.push(text);
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) };
}

describe("callers", () => {
  it.each([
    ["no credential", { authorization: "" }],
    ["a forged bearer key", { authorization: "Bearer sb_secret_forged_0000000000" }],
    ["a forged apikey", { authorization: "", apikey: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.forged" }],
    ["a scoped token", { authorization: `Bearer evegw_tok_${"x".repeat(43)}` }],
  ])("refuses %s with 401 JSON and does nothing", async (_name, headers) => {
    const [{ n: before }] = await db.sql`select count(*)::int as n from public.google_ai_maintenance_log`;
    const res = await call({ body: {}, headers });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.body.error.code).toBe("unauthorized");
    const [{ n: after }] = await db.sql`select count(*)::int as n from public.google_ai_maintenance_log`;
    expect(after).toBe(before);
  });

  it("answers GET with 405 JSON", async () => {
    const res = await call({ method: "GET" });
    expect(res.status).toBe(405);
    expect(res.body.error.code).toBe("method_not_allowed");
  });
});

describe("a run", () => {
  let first: Awaited<ReturnType<typeof call>>;

  beforeAll(async () => {
    first = await call({ body: { source: "test-run" } });
  }, 60_000);

  it("answers 200 with a summary: housekeeping run, every key checked", () => {
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: "succeeded", dry_run: false, housekeeping: { status: "succeeded" } });
    expect(first.body.keys).toMatchObject({
      status: "checked",
      checked: 5,
      ok: ["a1", "b1"],
      missing_secret: ["nosecret"],
      errors: [],
    });
    expect([...first.body.keys.disabled].sort()).toEqual(["c1", "revoked"]);
  });

  it("takes a key Google rejects out of rotation with its reason, and never deletes it", async () => {
    const rows = await db.sql`select key_alias, is_active, disabled_reason, disabled_at is not null as dated
                              from public.google_ai_api_keys where key_alias in ('revoked', 'c1') order by key_alias`;
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({ is_active: false, dated: true });
      expect(row.disabled_reason).toMatch(/^maintenance: Google rejected the key \(its model list: HTTP 400 API_KEY_INVALID\): API key not valid/);
    }
    const result = first.body.keys.results.find((r: { key_alias: string }) => r.key_alias === "revoked");
    expect(result).toMatchObject({ status: "invalid", action: "disabled", http_status: 400, reason: "API_KEY_INVALID" });
    // The reservation RPC no longer hands it out.
    const [{ r }] = await db.sql`select public.google_ai_reserve_models(array['gemma-3-27b-it'], 10, 'test', null, 'after-maintenance',
                                   (select array_agg(id) from public.google_ai_api_keys where key_alias in ('a1', 'b1', 'nosecret'))) as r`;
    expect(r).toMatchObject({ ok: false, limit: "no_active_key" });
  });

  it("names the pg_cron jobs that are not scheduled (this database has no pg_cron), and where to read how to schedule them", () => {
    expect(first.body.schedule).toEqual({
      status: "checked",
      missing: ["eve-gateway-counters-vacuum", "eve-gateway-housekeeping"],
      jobs: [
        { job: "eve-gateway-counters-vacuum", schedule: "10 seconds", present: false },
        { job: "eve-gateway-housekeeping", schedule: "17 * * * *", present: false },
      ],
    });
    expect(first.body.problems).toContain("pg_cron job eve-gateway-housekeeping (17 * * * *) is not scheduled: " +
      "enable pg_cron and schedule it as docs/maintenance.md says (\"The schedule\")");
  });

  it("reports a missing secret without disabling the key", async () => {
    const [row] = await db.sql`select k.is_active, h.status, h.message from public.google_ai_api_keys k
                               join public.google_ai_key_health h on h.api_key_id = k.id where k.key_alias = 'nosecret'`;
    expect(row).toMatchObject({ is_active: true, status: "missing_secret" });
    expect(row!.message).toMatch(/GOOGLE_MT_KEY_NOT_SET/);
    expect(first.body.problems.join("\n")).toMatch(/supabase secrets set GOOGLE_MT_KEY_NOT_SET=/);
  });

  it("refreshes the catalogue: which models each key and quota group reaches, with their token limits", async () => {
    const rows = await db.sql`select key_alias, quota_group, model, input_token_limit, output_token_limit, supported_methods,
                                     refreshed_at > now() - interval '1 minute' as fresh
                              from public.google_ai_model_catalogue
                              where model in ('gemini-2.5-flash', 'gemini-2.5-flash-lite', 'gemma-3-27b-it')
                              order by key_alias, model`;
    expect(rows).toEqual([
      { key_alias: "a1", quota_group: "sim-project-a", model: "gemini-2.5-flash", input_token_limit: 1048576, output_token_limit: 65536,
        supported_methods: ["generateContent", "countTokens"], fresh: true },
      { key_alias: "a1", quota_group: "sim-project-a", model: "gemini-2.5-flash-lite", input_token_limit: 1048576,
        output_token_limit: 65536, supported_methods: ["generateContent", "countTokens"], fresh: true },
      { key_alias: "a1", quota_group: "sim-project-a", model: "gemma-3-27b-it", input_token_limit: 131072, output_token_limit: 8192,
        supported_methods: ["generateContent", "countTokens"], fresh: true },
      { key_alias: "b1", quota_group: "sim-project-b", model: "gemini-2.5-flash", input_token_limit: 1048576, output_token_limit: 65536,
        supported_methods: ["generateContent", "countTokens"], fresh: true },
      { key_alias: "b1", quota_group: "sim-project-b", model: "gemini-2.5-flash-lite", input_token_limit: 1048576,
        output_token_limit: 65536, supported_methods: ["generateContent", "countTokens"], fresh: true },
      { key_alias: "b1", quota_group: "sim-project-b", model: "gemma-3-27b-it", input_token_limit: 131072, output_token_limit: 8192,
        supported_methods: ["generateContent", "countTokens"], fresh: true },
    ]);
    expect(sim.stats().byMethod["models.list"]?.received).toBeGreaterThanOrEqual(4);
    // And every other model the simulator serves (those of December 2026), under each checked key.
    const perKey = await db.sql`select key_alias, count(*)::int as n from public.google_ai_model_catalogue
                                group by key_alias order by key_alias`;
    const served = Object.keys(sim.models()).length;
    expect(perKey).toEqual([{ key_alias: "a1", n: served }, { key_alias: "b1", n: served }]);
  });

  it("flags configured models Google no longer lists", async () => {
    expect(first.body.catalogue).toMatchObject({ status: "refreshed", refreshed_keys: 2, unlisted: ["gemini-1.0-pro-retired"] });
    const status = await db.sql`select model, catalogue_status from public.google_ai_model_catalogue_status
                                where catalogue_status <> 'listed' order by model`;
    // The seed's OpenAI and Anthropic models are no Google key's business: unknown until a key of theirs is checked.
    expect(status).toEqual([
      { model: "claude-haiku-4-5-20251001", catalogue_status: "unknown" },
      { model: "claude-haiku-5-5", catalogue_status: "unknown" },
      { model: "claude-opus-4-5-20251101", catalogue_status: "unknown" },
      { model: "claude-opus-5-5", catalogue_status: "unknown" },
      { model: "claude-sonnet-4-5-20250929", catalogue_status: "unknown" },
      { model: "claude-sonnet-5-5", catalogue_status: "unknown" },
      { model: "gemini-1.0-pro-retired", catalogue_status: "unlisted" },
      { model: "gpt-4o", catalogue_status: "unknown" },
      { model: "gpt-4o-mini", catalogue_status: "unknown" },
      { model: "text-embedding-3-large", catalogue_status: "unknown" },
      { model: "text-embedding-3-small", catalogue_status: "unknown" },
    ]);
    // The life cycle: missing from Google's list, and the models Google lists that no row serves.
    expect(first.body.lifecycle).toMatchObject({ status: "reviewed", checked: true, missing: ["gemini-1.0-pro-retired"],
      unserved: ["gemini-3.9-flash"] });
  });

  it("logs the run (and its housekeeping) in google_ai_maintenance_log", async () => {
    const [run] = await db.sql`select operation, status, tables_affected, details from public.google_ai_maintenance_log
                               where id = ${first.body.run_id}`;
    expect(run).toMatchObject({
      operation: "maintenance_function",
      status: "succeeded",
      tables_affected: ["google_ai_api_keys", "google_ai_key_health", "google_ai_model_catalogue"],
    });
    expect(run!.details).toMatchObject({ caller: "test-run", keys: { disabled: expect.any(Array) } });
    const [hk] = await db.sql`select operation, status from public.google_ai_maintenance_log where id = ${first.body.housekeeping.log_id}`;
    expect(hk).toEqual({ operation: "housekeeping", status: "succeeded" });
  });

  it("on the next run keeps when a model was first seen and renews when it was refreshed", async () => {
    await db.sql`update public.google_ai_model_catalogue set first_seen_at = '2026-01-01 00:00+00', refreshed_at = '2026-01-01 00:00+00'`;
    const second = await call({ body: { housekeeping: false } });
    expect(second.body).toMatchObject({ status: "succeeded", housekeeping: { status: "not_run" } });
    expect(second.body.keys.checked).toBe(3); // the two disabled keys are no longer active
    const [row] = await db.sql`select count(*)::int as n, min(first_seen_at) as first, min(refreshed_at) > '2026-01-01 00:00+00' as renewed
                               from public.google_ai_model_catalogue`;
    expect(row).toMatchObject({ n: 2 * Object.keys(sim.models()).length, first: new Date("2026-01-01T00:00:00Z"), renewed: true });
  });

  it("never shows or stores a key: not in answers, logs, or any table", async () => {
    const secrets = [...Object.values(SECRETS), SERVICE_KEY];
    const dump = await db.sql`select string_agg(t::text, ' ') as all from (
      select to_jsonb(x) as t from public.google_ai_maintenance_log x
      union all select to_jsonb(x) from public.google_ai_key_health x
      union all select to_jsonb(x) from public.google_ai_model_catalogue x
      union all select to_jsonb(x) from public.google_ai_api_keys x) s`;
    const everything = bodies.join("\n") + logs.join("\n") + dump[0]!.all;
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });
});

/** Every row of every table in schema public, as one fingerprint per table. */
async function snapshot(): Promise<Record<string, string>> {
  const tables = await db.sql<{ name: string }[]>`
    select table_name as name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`;
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    const [row] = await db.sql.unsafe(
      `select count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '') as f from public."${name}" t`,
    );
    out[name] = String(row!.f);
  }
  return out;
}

describe("a dry run", () => {
  it("changes no row of any table, and reports what a real run would delete", async () => {
    // Aged-out rows a real run deletes, an expired cooldown, and a key Google rejects.
    await db.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
                 select 'succeeded', 'dry-run-aged', 'gemma-3-27b-it', now() - interval '40 days'
                 from generate_series(1, 25)`;
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until)
                 values ('key:dry-run', 'gemma-3-27b-it', now() - interval '1 hour') on conflict do nothing`;
    await db.sql`update public.google_ai_api_keys set is_active = true, disabled_reason = null, disabled_at = null where key_alias = 'c1'`;
    const before = await snapshot();
    const res = await call({ body: { dry_run: true } });
    expect(res.status).toBe(200);
    expect(res.body.dry_run).toBe(true);
    expect(res.body.run_id).toBeNull();
    expect(res.body.housekeeping.deleted_count).toBeGreaterThanOrEqual(26);
    expect(res.body.keys.would_disable).toEqual(["c1"]);
    expect(await snapshot()).toEqual(before);
    // The same request for real does delete them.
    const real = await call({ body: {} });
    expect(real.body.housekeeping.deleted_count).toBeGreaterThanOrEqual(26);
    const [left] = await db.sql`select count(*)::int as n from public.google_ai_attempts where caller = 'dry-run-aged'`;
    expect(left!.n).toBe(0);
  });

  it("reports a rejected key without taking it out of rotation", async () => {
    await db.sql`update public.google_ai_api_keys set is_active = true, disabled_reason = null, disabled_at = null where key_alias = 'c1'`;
    const res = await call({ body: { dry_run: true, housekeeping: false } });
    expect(res.body.keys.would_disable).toEqual(["c1"]);
    expect(res.body.keys.disabled).toEqual([]);
    const [row] = await db.sql`select is_active from public.google_ai_api_keys where key_alias = 'c1'`;
    expect(row!.is_active).toBe(true);
  });
});
