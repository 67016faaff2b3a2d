// An OpenAI-compatible provider added by rows and a secret alone, no code: a google_ai_providers row
// (dialect openai, its own base URL and key-secret pattern), a key row, a model row with its limits and
// the key's Edge secret. Its service is the OpenAI simulator started on another port; OpenAI's own
// simulator runs beside it with a key of its own. Over HTTP with the real functions and PostgreSQL:
//   8 callers × 40 NO_WAIT requests at RPM 6: exactly 6 served, the rest refused by the gateway, the
//   provider's simulator answers no 429, each simulator sees only its own provider's keys, and each
//   answer writes one token_usage row;
//   a row whose dialect no module speaks is left out, named in the log, and its key is sent nowhere;
//   OpenAI's route takes OpenAI's own fields (logprobs) to it, as to OpenAI; its row has no Responses
//   API, so responses.create reaches it as a chat completion and web_search is refused by name;
//   a provider named neither Google nor OpenAI whose service refuses its key fails in its display name's
//   words (the answer, the key's disabled reason), metered under its row's name; a key whose secret two
//   providers' patterns both take is refused to the caller in words that name no secret;
//   the quota route and the metrics name it; GET /v1/models says who owns each model (the row's name);
//   maintenance checks the provider's key against its own model list and fills the catalogue with it.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";
import { DIALECTS } from "../../supabase/functions/_shared/providers/registry.ts";
import { serveMaintenance } from "../maintenance/serve-maintenance.ts";

const RPM = 6;
const MODEL = "deepseek-chat";
/** Another of its models, with room to spare. */
const WIDE = "deepseek-reasoner";
const DEEP_KEY = "sk-sim-deepseek-0123456789";
const OPENAI_KEY = "sk-sim-openai-beside";
/** Keys the provider's service does not know (it answers 401). */
const KIWI_KEY = "sk-sim-kiwi-unknown-0123456789";
const TWIN_KEY = "sk-sim-twin-unknown-0123456789";

let s: InvokeStack;
let deep: OpenAISimulator;
/** Kiwi AI's and the twins' service: knows none of their keys. */
let kiwi: OpenAISimulator;

beforeAll(async () => {
  // The provider's service: an OpenAI-shaped server elsewhere, with its own model and limits.
  deep = await startOpenAISimulator({
    settle: "usage",
    models: {
      [MODEL]: { rpm: RPM, tpm: 1_000_000, snapshot: MODEL, ownedBy: "deepseek" },
      [WIDE]: { rpm: 1_000, tpm: 1_000_000, snapshot: WIDE, ownedBy: "deepseek" },
    },
    organizations: { "org-deep": { keys: [DEEP_KEY], limits: { [MODEL]: { rpm: RPM, tpm: 1_000_000 } } } },
  });
  kiwi = await startOpenAISimulator({
    models: { "kiwi-chat": { rpm: 1_000, tpm: 1_000_000, snapshot: "kiwi-chat", ownedBy: "kiwi" } },
    organizations: {},
  });
  s = await startInvokeStack("llm_invoke_provider_row", {
    keys: [
      { alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-google" },
      { alias: "openai-main", provider: "openai", project: "org-o", priority: 1, simKey: OPENAI_KEY },
    ],
    env: { DEEPSEEK_KEY_1: DEEP_KEY, TYPO_KEY_1: DEEP_KEY, KIWI_KEY_1: KIWI_KEY, TWIN_B_KEY_1: TWIN_KEY },
  });
  // The rows an operator types (the key row's provider in the operator's own spelling).
  await s.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
              values ('deepseek', 'openai', 'DeepSeek', ${deep.url}, 'DEEPSEEK_[A-Z0-9_]{1,100}')`;
  await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
              values ('deepseek-main', 'Deep Seek', 'DEEPSEEK_KEY_1', 'org-deep', 1, true)`;
  await s.sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, rpd, booked_output_tokens,
                supports_system_instruction, supports_json_mode, supports_tools, is_active)
              values (${MODEL}, 'deepseek', ${RPM}, null, null, 4096, true, true, true, true),
                     (${WIDE}, 'deepseek', 600, null, null, 4096, true, true, true, true)`;
  // A mistyped row: a dialect no module speaks. Its key's secret is a key the other service knows.
  await s.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
              values ('typo', 'opnai', 'Typo', ${deep.url}, 'TYPO_[A-Z0-9_]{1,100}')`;
  await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
              values ('typo-key', 'typo', 'TYPO_KEY_1', 'org-typo', 1, true)`;
  await s.sql`insert into public.google_ai_model_limits (model, provider, rpm, is_active) values ('typo-model', 'typo', 60, true)`;
  // A provider named neither Google nor OpenAI whose key its service refuses (401): every failure,
  // message and log line says its display name; its metrics and listings keep its row's name.
  await s.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
              values ('kiwiai', 'openai', 'Kiwi AI', ${kiwi.url}, 'KIWI_[A-Z0-9_]{1,100}'),
                     ('twinai', 'openai', 'Twin AI', ${kiwi.url}, 'TWIN_[A-Z0-9_]{1,100}'),
                     ('twinbai', 'openai', 'Twin B AI', ${kiwi.url}, 'TWIN_B_[A-Z0-9_]{1,100}')`;
  await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
              values ('kiwi-main', 'kiwiai', 'KIWI_KEY_1', 'org-kiwi', 1, true),
                     ('twin-main', 'twinai', 'TWIN_B_KEY_1', 'org-twin', 1, true)`;
  await s.sql`insert into public.google_ai_model_limits (model, provider, rpm, booked_output_tokens, is_active)
              values ('kiwi-chat', 'kiwiai', 60, 100, true), ('twin-chat', 'twinai', 60, 100, true)`;
}, 120_000);

afterAll(async () => {
  await s?.close();
  await deep?.close();
  await kiwi?.close();
});

describe("an OpenAI-compatible provider added by rows and a secret", () => {
  it("8 callers × 40 NO_WAIT at RPM 6: exactly 6 served, no 429 from it, no key seen by the wrong provider", async () => {
    const statuses: number[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        const res = await s.call({ model: MODEL, prompt: `rows ${w}-${i}`, mode: "NO_WAIT", generationConfig: { maxOutputTokens: 20 } });
        statuses.push(res.status);
      }
    }));
    expect(statuses.filter((x) => x === 200)).toHaveLength(RPM);
    expect(statuses.filter((x) => x !== 200 && x !== 429)).toEqual([]);
    const stats = deep.stats();
    expect(stats.total.received).toBe(RPM);
    expect(stats.recent.filter((r) => r.status === 429)).toEqual([]);
    // Each simulator saw its own provider's keys only.
    expect(Object.keys(stats.byKey)).toEqual([DEEP_KEY]);
    expect(Object.keys(s.openaiSim.stats().byKey)).not.toContain(DEEP_KEY);
    expect(Object.keys(s.sim.stats().byKey)).not.toContain(DEEP_KEY);
    const [{ n }] = await s.sql`select count(*)::int as n from public.token_usage where model = ${MODEL}`;
    expect(n).toBe(RPM);
  }, 180_000);

  it("takes OpenAI's own fields through OpenAI's route: the provider speaks OpenAI's dialect", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const before = deep.stats().total.received;
    const answer = await client.chat.completions.create({
      model: WIDE,
      messages: [{ role: "user", content: "say something" }],
      max_tokens: 20,
      logprobs: true,
    });
    expect(answer.choices[0]!.message.content).toBeTruthy();
    expect(deep.stats().total.received).toBe(before + 1);
    expect(Object.keys(deep.stats().byKey)).toEqual([DEEP_KEY]);
  });

  it("answers responses.create through the hub's translation (its row has no Responses API); web_search refused by name", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const [{ has }] = await s.sql`select has_responses_api as has from public.google_ai_providers where name = 'deepseek'`;
    expect(has).toBe(false);
    const before = deep.stats().recent.length;
    const answer = await client.responses.create({ model: WIDE, input: "say something", max_output_tokens: 20, store: false });
    expect(answer.object).toBe("response");
    expect(answer.status).toBe("completed");
    expect(answer.output_text).toBeTruthy();
    // Its service was sent a chat completion, never OpenAI's /v1/responses.
    expect(deep.stats().recent.slice(before).map((r) => r.method)).toEqual(["chat.completions"]);
    const web = await client.responses.create({ model: WIDE, input: "search", tools: [{ type: "web_search" }] })
      .then(() => null, (e: unknown) => e) as InstanceType<typeof OpenAI.APIError> | null;
    expect(web).toBeInstanceOf(OpenAI.BadRequestError);
    expect(web!.code).toBe("unsupported_feature");
    expect(web!.param).toBe("tools[0].type");
    expect(web!.message).toContain("web_search");
    expect(deep.stats().recent.length).toBe(before + 1);
    // OpenAI's own row has it: the same call on gpt-4o goes to OpenAI's /v1/responses as it came.
    const openaiBefore = s.openaiSim.stats().recent.length;
    await client.responses.create({ model: "gpt-4o", input: "say something", max_output_tokens: 20, store: false });
    expect(s.openaiSim.stats().recent.slice(openaiBefore).map((r) => r.method)).toEqual(["responses"]);
  });

  it("a row whose dialect no module speaks stops with a message naming it, and sends its key nowhere", async () => {
    const before = deep.stats().total.received;
    const res = await s.call({ model: "typo-model", prompt: "typo", mode: "NO_WAIT" });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(600);
    expect(typeof res.body?.error?.code).toBe("string");
    expect(deep.stats().total.received).toBe(before);
    expect(s.logs.join("\n")).toContain(
      `provider typo: dialect "opnai" is not one the functions speak (${DIALECTS.join(", ")})`,
    );
    expect(s.logs.join("\n")).toMatch(/key typo-key \(secret TYPO_KEY_1\) not used: provider typo has no usable row/);
  });

  it("a provider named neither Google nor OpenAI fails, is logged and metered under its own name", async () => {
    const res = await s.call({ model: "kiwi-chat", prompt: "kiwi", mode: "NO_WAIT", generationConfig: { maxOutputTokens: 20 } });
    expect(res.status).toBe(502);
    expect(res.body.error.message).toMatch(/^Kiwi AI refused the gateway's keys/);
    expect(JSON.stringify(res.body)).not.toMatch(/OpenAI|Google/);
    // The attempt's row, the key's disabled reason (the log an operator reads) and the metrics.
    const attempts = await s.sql`select status, http_status, error_message from public.google_ai_attempts
                                 where model = 'kiwi-chat' and status <> 'refused'`;
    expect(attempts.map((a) => a.http_status)).toEqual([401]);
    const [key] = await s.sql`select disabled_reason from public.google_ai_api_keys where key_alias = 'kiwi-main'`;
    expect(key!.disabled_reason).toContain("Kiwi AI");
    expect(key!.disabled_reason).not.toMatch(/OpenAI|Google/);
    const series = await s.sql`select labels from public.google_ai_metric_gauges(now(), 0)
                               where family = 'eve_gateway_keys' and labels like '%org-kiwi%'`;
    expect(series.map((k) => k.labels)).toEqual([expect.stringContaining('provider="kiwiai"')]);
  });

  it("a key whose secret two providers' patterns both take is refused to the caller in words, naming no secret", async () => {
    const before = kiwi.stats().total.received;
    const res = await s.call({ model: "twin-chat", prompt: "twin", mode: "NO_WAIT" });
    expect(res.status).toBe(503);
    expect(res.body.error.message).toContain("taken by two providers' key-secret patterns");
    expect(JSON.stringify(res.body)).not.toContain("TWIN_B_KEY_1");
    expect(JSON.stringify(res.body)).not.toContain(TWIN_KEY);
    expect(kiwi.stats().total.received).toBe(before);
    expect(s.logs.join("\n")).toContain("TWIN_B_KEY_1 matches both Twin AI's and Twin B AI's key-secret patterns");
  });

  it("the quota route and the metrics carry it", async () => {
    const res = await s.raw({
      method: "GET",
      path: "/functions/v1/llm-invoke/v1/quota",
      headers: { authorization: `Bearer ${s.serviceKey}` },
    });
    expect(res.status).toBe(200);
    const model = (res.body.models as Array<{ model: string; provider: string }>).find((m) => m.model === MODEL);
    expect(model).toMatchObject({ provider: "deepseek" });
    const keys = await s.sql`select labels from public.google_ai_metric_gauges(now(), 0)
                             where family = 'eve_gateway_keys' and labels like '%org-deep%'`;
    expect(keys.map((k) => k.labels)).toEqual([expect.stringContaining('provider="deepseek"')]);
  });

  it("GET /v1/models says who owns each model", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const owners = new Map<string, string>();
    for await (const m of client.models.list()) owners.set(m.id, m.owned_by);
    expect(owners.get(MODEL)).toBe("deepseek");
    expect(owners.get("gpt-4o")).toBe("openai");
    expect(owners.get("gemma-3-27b-it")).toBe("google");
  });

  it("maintenance checks its key against its own model list and lists its models", async () => {
    const serviceKey = "sb_secret_provider_row_maintenance_0123456789";
    const { server, url } = await serveMaintenance({
      dbUrl: s.db.url,
      serviceKey,
      env: {
        GOOGLE_AI_BASE_URL: s.sim.url,
        OPENAI_BASE_URL: s.openaiSim.url,
        DEEPSEEK_KEY_1: DEEP_KEY,
        OPENAI_TEST_KEY_OPENAI_MAIN: OPENAI_KEY,
        GOOGLE_TEST_KEY_GOOGLE_MAIN: "sim-key-google",
      },
    });
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${serviceKey}`, "content-type": "application/json" },
        body: JSON.stringify({ housekeeping: false }),
      });
      const body = await res.json();
      expect(res.status).toBe(200);
      const results = body.keys.results as Array<{ key_alias: string; provider: string; status: string }>;
      expect(results.find((r) => r.key_alias === "deepseek-main")).toMatchObject({ provider: "deepseek", status: "ok" });
      const rows = await s.sql`select c.model from public.google_ai_model_catalogue c where c.key_alias = 'deepseek-main'`;
      expect(rows.map((r) => r.model)).toContain(MODEL);
      const [status] = await s.sql`select catalogue_status from public.google_ai_model_catalogue_status where model = ${MODEL}`;
      expect(status!.catalogue_status).toBe("listed");
      expect(Object.keys(deep.stats().byKey)).toEqual([DEEP_KEY]);
      expect(Object.keys(s.openaiSim.stats().byKey)).not.toContain(DEEP_KEY);
    } finally {
      await server.close();
    }
  }, 120_000);
});
