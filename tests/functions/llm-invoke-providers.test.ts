// A key serves only its provider's models, over HTTP: an OpenAI key row at the best priority, whose
// secret name a Google key could have (GOOGLE_…), is never booked for a Google request nor sent to
// Google (the simulator's log holds no request carrying it), and stays in rotation.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const OPENAI_SECRET = "sk-openai-test-key";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_providers", {
    keys: [
      { alias: "google-main", project: "proj-g", priority: 10, simKey: "sim-key-google" },
      { alias: "openai-main", project: "org-openai", priority: 1, simKey: OPENAI_SECRET },
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
  });
});
