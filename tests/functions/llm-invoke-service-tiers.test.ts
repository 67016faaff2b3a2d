// Service tiers over HTTP (the served function, a real PostgreSQL, the simulator): the operator's row
// for (model, class) decides the tier sent to Google; the attempt row records the tier asked and the
// tier Google's x-gemini-service-tier header says served; a flex call Google sheds is retried, at
// standard only where the row says so; priority over its own limit is served at standard and
// recorded as such; the OpenAI surface's service_tier is honoured up to the class's tier.
import { ApiError, GoogleGenAI, ServiceTier } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const FLASH = "gemini-2.5-flash";
/** A model row of this test's own, so that the seed's models may change without it. */
const TIERED = "gemini-tier-test";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_service_tiers", {
    keys: [{ alias: "tier-key", project: "proj-tier", priority: 1, simKey: "sim-key-tier" }],
    limits: [{ model: FLASH, rpm: 1_000, tpm: 10_000_000, rpd: 100_000 }],
    simulator: { models: { [TIERED]: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 } } },
  });
  await s.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
              values (${TIERED}, 1000, 10000000, 100000) on conflict (model) do nothing`;
  // Set before any request: workers cache the rows.
  await s.sql`insert into public.google_ai_service_tiers (model, priority_class, service_tier, standard_on_shed) values
    (${FLASH}, 'batch', 'flex', true),
    (${TIERED}, 'batch', 'flex', false),
    (${TIERED}, 'interactive', 'priority', false)`;
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_attempts`;
});

async function attempts(requestId: string) {
  return s.sql<{ status: string; http_status: number | null; service_tier: string | null; served_tier: string | null }[]>`
    select status, http_status, service_tier, served_tier from public.google_ai_attempts
    where request_id = ${requestId} and status <> 'refused' order by id`;
}

describe("service tiers", () => {
  it("a batch request goes to Google with flex, an interactive one without; the recorded tier is the simulator's header", async () => {
    const batch = await s.call({ model: FLASH, prompt: "batch", priority: "batch", request_id: "t-batch" });
    expect(batch.status, batch.text).toBe(200);
    expect(s.sim.serviceTiers().asked).toEqual({ flex: 1 });
    expect(await attempts("t-batch")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: "flex", served_tier: "flex" },
    ]);

    const interactive = await s.call({ model: FLASH, prompt: "interactive", request_id: "t-interactive" });
    expect(interactive.status).toBe(200);
    expect(s.sim.serviceTiers().asked).toEqual({ flex: 1, standard: 1 });
    expect(await attempts("t-interactive")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: null, served_tier: "standard" },
    ]);
    expect(s.sim.serviceTiers().served).toEqual({ flex: 1, standard: 1 });
  });

  it("a flex call Google sheds is retried like a 503: at standard where the row says so, at flex where it does not", async () => {
    s.sim.setServiceTiers({ shedFlex: 1 });
    const toStandard = await s.call({ model: FLASH, prompt: "shed", priority: "batch", request_id: "t-shed-std" });
    expect(toStandard.status).toBe(200);
    expect(toStandard.body.attempts).toBe(2);
    expect(await attempts("t-shed-std")).toEqual([
      { status: "upstream_error", http_status: 503, service_tier: "flex", served_tier: null },
      { status: "succeeded", http_status: 200, service_tier: null, served_tier: "standard" },
    ]);

    s.sim.setServiceTiers({ shedFlex: 1 });
    const staysFlex = await s.call({ model: TIERED, prompt: "shed", priority: "batch", request_id: "t-shed-flex" });
    expect(staysFlex.status).toBe(200);
    expect(await attempts("t-shed-flex")).toEqual([
      { status: "upstream_error", http_status: 503, service_tier: "flex", served_tier: null },
      { status: "succeeded", http_status: 200, service_tier: "flex", served_tier: "flex" },
    ]);
    expect(s.sim.serviceTiers().shed).toBe(2);
  });

  it("priority over its own limit is served at standard, and recorded as such", async () => {
    s.sim.setServiceTiers({ priorityRpm: 1 });
    await s.call({ model: TIERED, prompt: "first", request_id: "t-prio-1" });
    await s.call({ model: TIERED, prompt: "second", request_id: "t-prio-2" });
    expect(await attempts("t-prio-1")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: "priority", served_tier: "priority" },
    ]);
    expect(await attempts("t-prio-2")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: "priority", served_tier: "standard" },
    ]);
  });

  it("the OpenAI surface's service_tier: honoured up to the class's tier, a clear 400 above it", async () => {
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const flex = await openai.chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "cheap" }],
      service_tier: "flex",
    }, { headers: { "x-eve-request-id": "t-oa-flex" } });
    expect(flex.choices[0]!.message.content).toContain("cheap");
    expect(await attempts("t-oa-flex")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: "flex", served_tier: "flex" },
    ]);

    // An interactive caller of Flash has no priority row: standard is its ceiling.
    const refused = await openai.chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "fast" }],
      service_tier: "priority",
    }, { headers: { "x-eve-request-id": "t-oa-priority" } }).then(() => null, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({
      code: "invalid_request",
      param: "service_tier",
      details: { field: "service_tier", allowed: ["flex", "standard"] },
    });
    // Refused before admission: nothing was booked, nothing reached Google.
    expect(await attempts("t-oa-priority")).toEqual([]);
    expect(s.sim.serviceTiers().asked).toEqual({ flex: 1 });

    // OpenAI's "scale" (and "default", "auto") leave the tier to the class: standard here.
    const scale = await openai.chat.completions.create({
      model: FLASH,
      messages: [{ role: "user", content: "scaled" }],
      service_tier: "scale",
    }, { headers: { "x-eve-request-id": "t-oa-scale" } });
    expect(scale.choices[0]!.message.content).toContain("scaled");
    expect(await attempts("t-oa-scale")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: null, served_tier: "standard" },
    ]);

    // A value OpenAI's API does not have is refused by the schema.
    const unknown = await s.raw({
      method: "POST",
      path: "/functions/v1/llm-invoke/v1/chat/completions",
      headers: { authorization: `Bearer ${s.serviceKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: FLASH, messages: [{ role: "user", content: "x" }], service_tier: "turbo" }),
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe("invalid_request");
  });

  it("the Gemini route's serviceTier (from @google/genai's config): honoured up to the class's tier", async () => {
    const genai = new GoogleGenAI({
      apiKey: s.serviceKey,
      vertexai: false,
      httpOptions: { baseUrl: s.url, headers: { "x-eve-request-id": "t-g-flex" } },
    });
    const flex = await genai.models.generateContent({
      model: FLASH,
      contents: "cheap",
      config: { serviceTier: ServiceTier.FLEX },
    });
    expect(flex.text).toContain("cheap");
    expect(await attempts("t-g-flex")).toEqual([
      { status: "succeeded", http_status: 200, service_tier: "flex", served_tier: "flex" },
    ]);
    const refused = await genai.models.generateContent({
      model: FLASH,
      contents: "fast",
      config: { serviceTier: ServiceTier.PRIORITY, httpOptions: { headers: { "x-eve-request-id": "t-g-prio" } } },
    }).then(() => null, (e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(400);
    expect((refused as ApiError).message).toContain("service_tier priority is not allowed");
    expect(await attempts("t-g-prio")).toEqual([]);
  });
});
