// The maintenance Edge Function checks every provider's keys, each against its own provider: served by
// Deno from the repository, against a real database, the offline Google simulator and the offline
// OpenAI simulator. An OpenAI key the simulator knows is ok and its organization's models land in the
// catalogue; a key OpenAI refuses (401 invalid_api_key) is taken out of rotation with its reason; a key
// with no secret is reported only; Google's keys are checked as before; the life cycle is per provider
// (an OpenAI row OpenAI does not list is missing, a withdrawn one it lists again is restored); and
// counted in both simulators, no key ever reaches the other provider.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionsServer } from "../../scripts/serve-functions.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../shared/google-sim/server.ts";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { serveMaintenance } from "./serve-maintenance.ts";

const SERVICE_KEY = "sb_secret_maintenance_openai_test_0123456789";
const GOOGLE_SECRETS: Record<string, string> = { GOOGLE_MT_KEY_G1: "sim-key-g1" };
// "o-revoked" holds a key no organization of the simulator knows (a key revoked on OpenAI's side).
const OPENAI_SECRETS: Record<string, string> = {
  OPENAI_MT_KEY_A1: "sk-mt-org-a-0123456789abcdef",
  OPENAI_MT_KEY_REVOKED: "sk-mt-revoked-by-the-owner-0123456789",
};
const KEYS = [
  { alias: "g1", provider: "google", env: "GOOGLE_MT_KEY_G1", project: "sim-project-g", priority: 1 },
  { alias: "o-a1", provider: "openai", env: "OPENAI_MT_KEY_A1", project: "org-mt-a", priority: 1 },
  { alias: "o-revoked", provider: "openai", env: "OPENAI_MT_KEY_REVOKED", project: "org-mt-x", priority: 2 },
  { alias: "o-nosecret", provider: "openai", env: "OPENAI_MT_KEY_NOT_SET", project: "org-mt-d", priority: 3 },
];

let db: TestDatabase;
let google: GoogleSimulator;
let openai: OpenAISimulator;
let server: FunctionsServer;
let url: string;
const logs: string[] = [];
const bodies: string[] = [];

beforeAll(async () => {
  db = await freshDatabase("maintenance_openai");
  await db.sql`delete from public.google_ai_api_keys`;
  for (const k of KEYS) {
    await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority)
                 values (${k.alias}, ${k.provider}, ${k.env}, ${k.project}, ${k.priority})`;
  }
  // An OpenAI row OpenAI does not list (retired), and the seed's gpt-4o-mini marked withdrawn an hour ago.
  await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, booked_output_tokens)
               values ('gpt-4-32k-retired', 'openai', 500, 30000, 4096)`;
  await db.sql`update public.google_ai_model_limits set withdrawn_at = now() - interval '1 hour',
                 withdrawn_message = 'The model does not exist' where model = 'gpt-4o-mini'`;
  google = await startGoogleSimulator({ keys: { "sim-key-g1": "sim-project-g" } });
  openai = await startOpenAISimulator({ organizations: { "org-mt-a": { keys: [OPENAI_SECRETS.OPENAI_MT_KEY_A1!] } } });
  ({ server, url } = await serveMaintenance({
    dbUrl: db.url,
    serviceKey: SERVICE_KEY,
    env: {
      GOOGLE_AI_BASE_URL: google.url,
      OPENAI_BASE_URL: openai.url,
      OPENAI_MT_KEY_NOT_SET: "",
      ...GOOGLE_SECRETS,
      ...OPENAI_SECRETS,
    },
    log: (line) => logs.push(line),
  }));
}, 120_000);

afterAll(async () => {
  await server?.close();
  await openai?.close();
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

type Result = { key_alias: string; provider: string; status: string; action: string; reason: string | null };

describe("a run with Google's and OpenAI's keys", () => {
  let first: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    first = await run({ housekeeping: false, source: "test-openai" });
  }, 60_000);

  it("checks every active key of both providers", () => {
    expect(first.status).toBe(200);
    expect(first.body.keys).toMatchObject({
      status: "checked",
      checked: 4,
      ok: ["g1", "o-a1"],
      disabled: ["o-revoked"],
      would_disable: [],
      missing_secret: ["o-nosecret"],
      errors: [],
    });
    const results = first.body.keys.results as Result[];
    expect(results.map((r) => [r.key_alias, r.provider, r.status, r.action])).toEqual([
      ["g1", "google", "ok", "none"],
      ["o-a1", "openai", "ok", "none"],
      ["o-revoked", "openai", "invalid", "disabled"],
      ["o-nosecret", "openai", "missing_secret", "none"],
    ]);
    expect(results.find((r) => r.key_alias === "o-revoked")).toMatchObject({ http_status: 401, reason: "invalid_api_key" });
  });

  it("takes the key OpenAI refuses out of rotation with its reason, never deleting it", async () => {
    const [row] = await db.sql`select is_active, disabled_reason, disabled_at is not null as dated
                               from public.google_ai_api_keys where key_alias = 'o-revoked'`;
    expect(row).toMatchObject({ is_active: false, dated: true });
    expect(row!.disabled_reason).toMatch(/^maintenance: OpenAI rejected the key \(its model list: HTTP 401 invalid_api_key\): /);
    expect(first.body.problems.join("\n")).toMatch(/key o-revoked was taken out of rotation/);
  });

  it("reports the OpenAI key without a secret, and leaves it in rotation", async () => {
    const [row] = await db.sql`select k.is_active, h.status, h.message from public.google_ai_api_keys k
                               join public.google_ai_key_health h on h.api_key_id = k.id where k.key_alias = 'o-nosecret'`;
    expect(row).toMatchObject({ is_active: true, status: "missing_secret" });
    expect(row!.message).toBe("no usable Edge secret named OPENAI_MT_KEY_NOT_SET (it is not set, or empty)");
    expect(first.body.problems.join("\n")).toMatch(/supabase secrets set OPENAI_MT_KEY_NOT_SET=/);
  });

  it("fills the catalogue with OpenAI's models per key and organization (no token limits), beside Google's", async () => {
    const listed = Object.keys(openai.models()).filter((id) => !openai.withdrawnModels().includes(id)).sort();
    const rows = await db.sql`select model, quota_group, input_token_limit, output_token_limit
                              from public.google_ai_model_catalogue where key_alias = 'o-a1' order by model`;
    expect(rows.map((r) => r.model)).toEqual(listed);
    for (const r of rows) expect(r).toMatchObject({ quota_group: "org-mt-a", input_token_limit: null, output_token_limit: null });
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_model_catalogue where key_alias = 'g1'`;
    expect(n).toBe(Object.keys(google.models()).length);
    const [health] = await db.sql`select status, models_listed, http_status from public.google_ai_key_health h
                                  join public.google_ai_api_keys k on k.id = h.api_key_id where k.key_alias = 'o-a1'`;
    expect(health).toEqual({ status: "ok", models_listed: listed.length, http_status: 200 });
  });

  it("reviews the life cycle per provider: a missing OpenAI row flagged, a withdrawn one listed again restored", async () => {
    expect(first.body.lifecycle).toMatchObject({ status: "reviewed", checked: true, restored: ["gpt-4o-mini"],
      missing: ["gpt-4-32k-retired"] });
    expect(first.body.lifecycle.unserved).toEqual(expect.arrayContaining(["gpt-4.1-mini", "gpt-5.5"]));
    expect(first.body.lifecycle.unserved).not.toContain("gpt-4o");
    expect(first.body.catalogue.unlisted).toEqual(["gpt-4-32k-retired"]);
    const [row] = await db.sql`select withdrawn_at from public.google_ai_model_limits where model = 'gpt-4o-mini'`;
    expect(row!.withdrawn_at).toBeNull();
    expect(first.body.problems.join("\n")).toMatch(/model gpt-4-32k-retired is configured but no checked key of its provider/);
  });

  it("sends no key to the other provider: 0 cross-provider keys in either simulator", () => {
    const googleKeys = Object.keys(google.stats().byKey);
    const openaiKeys = Object.keys(openai.stats().byKey);
    expect(googleKeys).toEqual(["sim-key-g1"]);
    expect(openaiKeys.sort()).toEqual(Object.values(OPENAI_SECRETS).sort());
    expect(googleKeys.filter((k) => Object.values(OPENAI_SECRETS).includes(k))).toHaveLength(0);
    expect(openaiKeys.filter((k) => Object.values(GOOGLE_SECRETS).includes(k))).toHaveLength(0);
    expect(openai.stats().byMethod["models.list"]?.received).toBe(2);
    expect(openai.stats().byMethod["chat.completions"]?.received ?? 0).toBe(0);
  });

  it("concludes nothing from an OpenAI 429 or 5xx: error, nothing disabled", async () => {
    openai.addFault({ kind: "rate_limited", apiKey: OPENAI_SECRETS.OPENAI_MT_KEY_A1, methods: ["models.list"], count: 1 });
    const limited = await run({ housekeeping: false });
    expect(limited.body.keys).toMatchObject({ ok: ["g1"], errors: ["o-a1"], disabled: [] });
    openai.addFault({ kind: "http503", apiKey: OPENAI_SECRETS.OPENAI_MT_KEY_A1, methods: ["models.list"], count: 1 });
    const down = await run({ housekeeping: false });
    expect(down.body.keys).toMatchObject({ ok: ["g1"], errors: ["o-a1"], disabled: [] });
    const [row] = await db.sql`select k.is_active, h.status, h.http_status from public.google_ai_api_keys k
                               join public.google_ai_key_health h on h.api_key_id = k.id where k.key_alias = 'o-a1'`;
    expect(row).toEqual({ is_active: true, status: "error", http_status: 503 });
    // While no OpenAI key's last check succeeded, nothing is concluded about OpenAI's rows.
    expect(down.body.lifecycle.missing).toEqual([]);
  });

  it("in a dry run reports a key OpenAI refuses as would_disable and leaves it in rotation", async () => {
    await db.sql`update public.google_ai_api_keys set is_active = true, disabled_reason = null, disabled_at = null
                 where key_alias = 'o-revoked'`;
    const dry = await run({ housekeeping: false, dry_run: true });
    expect(dry.body.keys).toMatchObject({ would_disable: ["o-revoked"], disabled: [] });
    expect(dry.body.problems.join("\n")).toMatch(/key o-revoked is rejected by OpenAI \(dry run: left active\)/);
    const [row] = await db.sql`select is_active from public.google_ai_api_keys where key_alias = 'o-revoked'`;
    expect(row!.is_active).toBe(true);
  });

  it("never shows or stores a key: not in answers, logs, or any table", async () => {
    const secrets = [...Object.values(GOOGLE_SECRETS), ...Object.values(OPENAI_SECRETS), SERVICE_KEY];
    const dump = await db.sql`select string_agg(t::text, ' ') as all from (
      select to_jsonb(x) as t from public.google_ai_maintenance_log x
      union all select to_jsonb(x) from public.google_ai_key_health x
      union all select to_jsonb(x) from public.google_ai_model_catalogue x
      union all select to_jsonb(x) from public.google_ai_api_keys x) s`;
    const everything = bodies.join("\n") + logs.join("\n") + dump[0]!.all;
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });
});
