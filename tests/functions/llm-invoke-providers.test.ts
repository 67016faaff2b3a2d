// A key serves only its provider's models, over HTTP: an OpenAI key row at the best priority, whose
// secret name a Google key could have (GOOGLE_…), is never booked for a Google request nor sent to
// Google (the simulator's log holds no request carrying it), and stays in rotation. Neither is an
// OpenAI key row of the test harness's own kind (OPENAI_… secret, a key of the OpenAI simulator).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const OPENAI_SECRET = "sk-openai-test-key";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_providers", {
    keys: [
      { alias: "google-main", project: "proj-g", priority: 10, simKey: "sim-key-google" },
      { alias: "openai-main", project: "org-openai", priority: 1, simKey: OPENAI_SECRET },
      { alias: "openai-org", provider: "openai", project: "org-a", priority: 1, simKey: "sk-sim-a1" },
    ],
  });
  await s.sql`update public.google_ai_api_keys set provider = 'openai' where key_alias = 'openai-main'`;
});

afterAll(async () => {
  await s?.close();
});

describe("a Google request and another provider's key", () => {
  it("20 Google requests: none booked on the OpenAI key, none sent to Google with it", async () => {
    for (let i = 0; i < 20; i++) {
      const res = await s.call({ model: "gemma-3-27b", prompt: `hello ${i}`, request_id: `prov-${i}` });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ key_alias: "google-main", attempts: 1 });
    }
    const [{ openai, google }] = await s.sql`
      select count(*) filter (where key_alias = 'openai-main')::int as openai,
             count(*) filter (where key_alias = 'google-main')::int as google
      from public.google_ai_attempts where request_id like 'prov-%'`;
    expect({ openai, google }).toEqual({ openai: 0, google: 20 });
    const byKey = s.sim.stats().byKey;
    expect(byKey[OPENAI_SECRET]?.received ?? 0).toBe(0);
    expect(byKey["sim-key-google"]?.received).toBe(20);
    const [key] = await s.sql`select is_active, disabled_reason from public.google_ai_api_keys where key_alias = 'openai-main'`;
    expect(key).toEqual({ is_active: true, disabled_reason: null });
    // The harness's OpenAI key: its row and secret are OpenAI's, its organization the OpenAI
    // simulator's, and neither simulator saw it.
    const [row] = await s.sql`select serves_provider, env_var_name, project_id from public.google_ai_api_keys
                              where key_alias = 'openai-org'`;
    expect(row).toEqual({ serves_provider: "openai", env_var_name: "OPENAI_TEST_KEY_OPENAI_ORG", project_id: "org-a" });
    expect(s.openaiSim.organizations()["sim-org-a"]).toMatchObject({ keys: ["sk-sim-a1"] });
    expect(s.openaiSim.stats().total.received).toBe(0);
    expect(byKey["sk-sim-a1"]).toBeUndefined();
    const [{ n }] = await s.sql`select count(*)::int as n from public.google_ai_attempts a
                                join public.google_ai_api_keys k on k.id = a.api_key_id where k.key_alias = 'openai-org'`;
    expect(n).toBe(0);
  });

  it("the harness writes an OpenAI model row: a seeded one updated, a new one inserted as OpenAI's", async () => {
    await s.setLimit({ model: "gpt-4o", rpm: 7, bookedOutputTokens: 100 });
    await s.setLimit({ model: "gpt-4.1-mini", provider: "openai", rpm: 10, tpm: 1000, bookedOutputTokens: 2048 });
    const rows = await s.sql`select model, provider, rpm, tpm, rpd, booked_output_tokens as booked
                             from public.google_ai_model_limits where model in ('gpt-4o', 'gpt-4.1-mini') order by model`;
    expect(rows).toEqual([
      { model: "gpt-4.1-mini", provider: "openai", rpm: 10, tpm: 1000, rpd: null, booked: 2048 },
      { model: "gpt-4o", provider: "openai", rpm: 7, tpm: 30000, rpd: null, booked: 100 },
    ]);
  });
});
