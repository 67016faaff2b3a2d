// The maintenance Edge Function checks Anthropic's keys against Anthropic's own model list (the offline
// Anthropic simulator, every page), beside Google's: a key Anthropic knows is ok and its organization's
// models land in the catalogue, so the seeded Claude rows (their dated ids, as Anthropic lists them) are
// listed, not missing; a key Anthropic refuses (401 authentication_error) is taken out of rotation with
// its reason; a 529 concludes nothing; no key reaches the other provider.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionsServer } from "../../scripts/serve-functions.ts";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../shared/google-sim/server.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { serveMaintenance } from "./serve-maintenance.ts";

const SERVICE_KEY = "sb_secret_maintenance_anthropic_test_0123456789";
const SECRETS: Record<string, string> = {
  GOOGLE_MT_KEY_G1: "sim-key-g1",
  ANTHROPIC_MT_KEY_A1: "sk-ant-mt-org-a-0123456789abcdef",
  ANTHROPIC_MT_KEY_REVOKED: "sk-ant-mt-revoked-0123456789",
};
const KEYS = [
  { alias: "g1", provider: "google", env: "GOOGLE_MT_KEY_G1", project: "sim-project-g", priority: 1 },
  { alias: "c-a1", provider: "anthropic", env: "ANTHROPIC_MT_KEY_A1", project: "org-mt-a", priority: 1 },
  { alias: "c-revoked", provider: "anthropic", env: "ANTHROPIC_MT_KEY_REVOKED", project: "org-mt-x", priority: 2 },
];

let db: TestDatabase;
let google: GoogleSimulator;
let anthropic: AnthropicSimulator;
let server: FunctionsServer;
let url: string;
const logs: string[] = [];
const bodies: string[] = [];

beforeAll(async () => {
  db = await freshDatabase("maintenance_anthropic");
  await db.sql`delete from public.google_ai_api_keys`;
  for (const k of KEYS) {
    await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority)
                 values (${k.alias}, ${k.provider}, ${k.env}, ${k.project}, ${k.priority})`;
  }
  google = await startGoogleSimulator({ keys: { "sim-key-g1": "sim-project-g" } });
  anthropic = await startAnthropicSimulator({ organizations: { "org-mt-a": { keys: [SECRETS.ANTHROPIC_MT_KEY_A1!] } } });
  ({ server, url } = await serveMaintenance({
    dbUrl: db.url,
    serviceKey: SERVICE_KEY,
    env: { GOOGLE_AI_BASE_URL: google.url, ANTHROPIC_BASE_URL: anthropic.url, ...SECRETS },
    log: (line) => logs.push(line),
  }));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await anthropic?.close();
  await google?.close();
  await db?.drop();
});

async function run(body: Record<string, unknown>) {
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${SERVICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  bodies.push(text);
  return { status: res.status, body: JSON.parse(text) };
}

describe("a run with Google's and Anthropic's keys", () => {
  let first: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    first = await run({ housekeeping: false, source: "test-anthropic" });
  }, 60_000);

  it("checks each key against its own provider, and takes the key Anthropic refuses out of rotation", async () => {
    expect(first.status).toBe(200);
    expect(first.body.keys).toMatchObject({ checked: 3, ok: ["c-a1", "g1"], disabled: ["c-revoked"], errors: [] });
    const [row] = await db.sql`select is_active, disabled_reason from public.google_ai_api_keys where key_alias = 'c-revoked'`;
    expect(row!.is_active).toBe(false);
    expect(row!.disabled_reason).toMatch(/^maintenance: Anthropic rejected the key \(its model list: HTTP 401 authentication_error\)/);
  });

  it("fills the catalogue from Anthropic's list, so the Claude rows are listed, not missing", async () => {
    const rows = await db.sql`select model, quota_group from public.google_ai_model_catalogue where key_alias = 'c-a1' order by model`;
    expect(rows.map((r) => r.model)).toEqual(["claude-haiku-4-5-20251001", "claude-haiku-5-5", "claude-opus-4-5-20251101",
      "claude-opus-5-5", "claude-sonnet-4-5-20250929", "claude-sonnet-5-5"]);
    for (const r of rows) expect(r.quota_group).toBe("org-mt-a");
    const status = await db.sql`select model, catalogue_status from public.google_ai_model_catalogue_status
                                where model like 'claude-%' order by model`;
    expect(status.map((s) => s.catalogue_status)).toEqual(["listed", "listed", "listed", "listed", "listed", "listed"]);
    expect(first.body.lifecycle.missing ?? []).not.toEqual(expect.arrayContaining(["claude-sonnet-4-5-20250929"]));
  });

  it("concludes nothing from Anthropic's 529, and sends no key to the other provider", async () => {
    anthropic.addFault({ kind: "overloaded", apiKey: SECRETS.ANTHROPIC_MT_KEY_A1, methods: ["models.list"], count: 1 });
    const over = await run({ housekeeping: false });
    expect(over.body.keys).toMatchObject({ errors: ["c-a1"], disabled: [] });
    const [row] = await db.sql`select is_active from public.google_ai_api_keys where key_alias = 'c-a1'`;
    expect(row!.is_active).toBe(true);
    expect(Object.keys(google.stats().byKey)).toEqual(["sim-key-g1"]);
    expect(Object.keys(anthropic.stats().byKey).sort()).toEqual([SECRETS.ANTHROPIC_MT_KEY_A1, SECRETS.ANTHROPIC_MT_KEY_REVOKED].sort());
    const everything = bodies.join("\n") + logs.join("\n");
    for (const secret of Object.values(SECRETS)) expect(everything).not.toContain(secret);
  });
});
