// Claude's 5.x models refuse a thinking budget and sampling other than the defaults; their rows say so
// (refuses_thinking_budget, refuses_sampling), so the gateway refuses such a request by name, in each
// route's shape, before any call: the Anthropic simulator (which answers Anthropic's own 400 for
// them) receives nothing and no attempt row is written. The defaults pass, as does an older Claude
// model that takes them; a row's chain passes over a 5.x model for such a request as it does over any
// model lacking what the request asks, a chain the caller wrote is held to it, and a model past its
// shutdown date whose 5.x successor refuses the request is refused naming the successor. Real
// functions, real PostgreSQL, the simulators over real HTTP.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type InvokeStack, startClaudeStack } from "./llm-invoke-helpers.ts";

const SONNET_55 = "claude-sonnet-5-5";
const SONNET_45 = "claude-sonnet-4-5";
const SONNET_45_ID = "claude-sonnet-4-5-20250929";
const KEY = "sk-ant-sim-refusals-0123456789";
const ROOMY = { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 };

let s: InvokeStack;
let sim: AnthropicSimulator;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_claude_refusals", {
    simulator: {
      organizations: { "org-ant": { keys: [KEY], limits: { "sonnet-4": ROOMY, "sonnet-5-5": ROOMY, "haiku-5-5": ROOMY } } },
    },
    claude: [{ name: "MAIN", secret: KEY, org: "org-ant" }],
    roomy: true,
  }));
  openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: s.url, apiKey: s.serviceKey, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
});

/** What reached Anthropic since the reset: every request the simulator received. */
const claudeCalls = () => sim.stats().received.length;
const attemptRows = async (model: string) =>
  (await s.sql`select count(*)::int as n from public.google_ai_attempts where model = ${model}`)[0]!.n as number;

async function rejection(p: Promise<unknown>): Promise<any> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeDefined();
  return e;
}

describe("a 5.x model's row says what it refuses", () => {
  it("the three 5.5 rows refuse a thinking budget and sampling; the 4.5 rows refuse neither", async () => {
    const rows = await s.sql`select model, refuses_thinking_budget as budget, refuses_sampling as sampling
                             from public.google_ai_model_limits where provider = 'anthropic' order by model`;
    expect(rows.map((r) => [r.model, r.budget, r.sampling])).toEqual([
      ["claude-haiku-4-5-20251001", false, false],
      ["claude-haiku-5-5", true, true],
      ["claude-opus-4-5-20251101", false, false],
      ["claude-opus-5-5", true, true],
      ["claude-sonnet-4-5-20250929", false, false],
      ["claude-sonnet-5-5", true, true],
    ]);
  });
});

describe("refused by name before any call, in every route's shape", () => {
  it("the native route: temperature, topK and a thinking budget, each a 400 unsupported_feature naming its field", async () => {
    const cases = [
      [{ temperature: 0.2 }, "sampling", "generationConfig.temperature"],
      [{ topK: 40 }, "sampling", "generationConfig.topK"],
      [{ thinkingConfig: { thinkingBudget: 2048 } }, "thinking_budget", "generationConfig.thinkingConfig.thinkingBudget"],
    ] as const;
    for (const [generationConfig, feature, field] of cases) {
      const res = await s.call({ model: SONNET_55, prompt: "hi", mode: "NO_WAIT", generationConfig });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: "unsupported_feature", details: { model: SONNET_55, feature, field } });
      expect(res.body.error.message).toContain(SONNET_55);
      expect(res.body.error.message).toContain(field);
    }
    expect(claudeCalls()).toBe(0);
    expect(await attemptRows(SONNET_55)).toBe(0);
  });

  it("Gemini's route: Google's 400 INVALID_ARGUMENT, the gateway's code in ErrorInfo", async () => {
    const res = await s.raw({
      method: "POST",
      path: `/functions/v1/llm-invoke/v1beta/models/${SONNET_55}:generateContent`,
      headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }], generationConfig: { topP: 0.5 } }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });
    expect(res.body.error.message).toContain("generationConfig.topP");
    expect(res.body.error.details[0].metadata).toMatchObject({ code: "unsupported_feature" });
    expect(claudeCalls()).toBe(0);
  });

  it("OpenAI's chat route through the openai SDK: temperature and reasoning_effort, OpenAI's 400", async () => {
    const hot = await rejection(openai.chat.completions.create({
      model: SONNET_55,
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.7,
    }));
    expect(hot).toBeInstanceOf(OpenAI.BadRequestError);
    expect(hot.code).toBe("unsupported_feature");
    expect(hot.message).toContain("temperature");
    expect(hot.message).toContain(SONNET_55);
    const thinking = await rejection(openai.chat.completions.create({
      model: "claude-haiku-5-5",
      messages: [{ role: "user", content: "hi" }],
      reasoning_effort: "low",
    }));
    expect(thinking).toBeInstanceOf(OpenAI.BadRequestError);
    expect(thinking.message).toContain("reasoning_effort");
    expect(thinking.error).toMatchObject({ details: { model: "claude-haiku-5-5", feature: "thinking_budget" } });
    expect(claudeCalls()).toBe(0);
  });

  it("OpenAI's Responses route through the openai SDK: top_p, OpenAI's 400", async () => {
    const e = await rejection(openai.responses.create({ model: "claude-opus-5-5", input: "hi", top_p: 0.9 }));
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(e.code).toBe("unsupported_feature");
    expect(e.message).toContain("top_p");
    expect(e.message).toContain("claude-opus-5-5");
    expect(claudeCalls()).toBe(0);
    expect(await attemptRows("claude-opus-5-5")).toBe(0);
  });

  it("Anthropic's route through its SDK: thinking.budget_tokens and top_k, Anthropic's 400 invalid_request_error", async () => {
    const budget = await rejection(anthropic.messages.create({
      model: SONNET_55,
      max_tokens: 4096,
      thinking: { type: "enabled", budget_tokens: 2048 },
      messages: [{ role: "user", content: "hi" }],
    }));
    expect(budget).toBeInstanceOf(Anthropic.BadRequestError);
    expect(budget.error.error).toMatchObject({
      type: "invalid_request_error",
      code: "unsupported_feature",
      details: { model: SONNET_55, feature: "thinking_budget" },
    });
    expect(budget.error.error.message).toContain("thinking.budget_tokens");
    const topK = await rejection(anthropic.messages.create({
      model: SONNET_55,
      max_tokens: 64,
      // The pinned SDK (API version 2026-10-21) has no top_k in its types; older callers send it.
      ...({ top_k: 5 } as object),
      messages: [{ role: "user", content: "hi" }],
    }));
    expect(topK).toBeInstanceOf(Anthropic.BadRequestError);
    expect(topK.error.error.message).toContain("top_k");
    expect(claudeCalls()).toBe(0);
    expect(await attemptRows(SONNET_55)).toBe(0);
  });
});

describe("what the 5.x models take, and older ones", () => {
  it("the defaults (temperature 1, top_p 1) and adaptive thinking reach the 5.x model, which answers", async () => {
    const chat = await openai.chat.completions.create({
      model: SONNET_55,
      messages: [{ role: "user", content: "defaults" }],
      temperature: 1,
      top_p: 1,
    });
    expect(chat.choices[0]!.message.content).toBe(`sim(${SONNET_55}): defaults`);
    expect(sim.stats().received.at(-1)!.body).toMatchObject({ model: SONNET_55, temperature: 1, top_p: 1 });
    const adaptive = await anthropic.messages.create({
      model: SONNET_55,
      max_tokens: 64,
      thinking: { type: "adaptive" } as unknown as Anthropic.ThinkingConfigParam,
      messages: [{ role: "user", content: "adaptive" }],
    });
    expect(adaptive.content).toEqual([{ type: "text", text: `sim(${SONNET_55}): adaptive` }]);
    expect(sim.stats().received.at(-1)!.body).toMatchObject({ thinking: { type: "adaptive" } });
    expect(sim.stats().total.byStatus).toEqual({ "200": 2 });
  });

  it("a 4.5 model takes a temperature and a thinking budget, and is sent them", async () => {
    const res = await s.call({
      model: SONNET_45,
      prompt: "warm",
      mode: "NO_WAIT",
      generationConfig: { temperature: 0.2, maxOutputTokens: 4096, thinkingConfig: { thinkingBudget: 2048 } },
    });
    expect(res.status).toBe(200);
    expect(sim.stats().received.at(-1)!.body).toMatchObject({
      model: SONNET_45_ID,
      temperature: 0.2,
      thinking: { type: "enabled", budget_tokens: 2048 },
    });
  });
});

describe("fallback chains", () => {
  it("a row's chain passes over the 5.x model for a request it refuses: the next model serves, the 5.x one never called", async () => {
    // Opus 4.5: a model no other test here asks for, so the worker reads its row (and this chain) afresh.
    const first = "claude-opus-4-5-20251101";
    await s.sql`update public.google_ai_model_limits set fallback_models = ${["claude-opus-5-5", "gemma-3-27b"]}
                where model = ${first}`;
    sim.addFault({ kind: "overloaded", count: 10 });
    try {
      const res = await s.call({
        model: first,
        prompt: "overloaded, then past Opus 5.5",
        mode: "NO_WAIT",
        request_id: "refusal-chain",
        generationConfig: { temperature: 0.2 },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ model: "gemma-3-27b-it", requested_model: first });
      // Anthropic heard Opus 4.5 once (its 529); Opus 5.5 was not in the request's chain.
      expect(sim.stats().received.map((r) => (r.body as { model: string }).model)).toEqual([first]);
      const rows = await s.sql`select model, status from public.google_ai_attempts
                               where request_id = 'refusal-chain' order by created_at, attempt`;
      expect(rows.map((r) => [r.model, r.status])).toEqual([[first, "upstream_error"], ["gemma-3-27b-it", "succeeded"]]);
    } finally {
      sim.clearFaults();
      await s.sql`update public.google_ai_model_limits set fallback_models = '{}' where model = ${first}`;
    }
  });

  it("past its shutdown date a model is served by its 5.x successor: a request the successor refuses is a 400 naming it, no call", async () => {
    // Haiku 4.5 (no other test here asks for it) with an end already passed; Haiku 5.5 is its successor.
    const retired = "claude-haiku-4-5-20251001";
    await s.sql`update public.google_ai_model_limits set shutdown_date = current_date - 1 where model = ${retired}`;
    try {
      const res = await s.call({ model: retired, prompt: "hi", mode: "NO_WAIT", generationConfig: { topP: 0.5 } });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({
        code: "unsupported_feature",
        details: { model: "claude-haiku-5-5", feature: "sampling", field: "generationConfig.topP" },
      });
      expect(claudeCalls()).toBe(0);
      // The successor's booking is given back, not left reserved.
      const rows = await s.sql`select status from public.google_ai_attempts where model = 'claude-haiku-5-5'`;
      expect(rows.map((r) => r.status)).toEqual(["released"]);
    } finally {
      await s.sql`update public.google_ai_model_limits set shutdown_date = null where model = ${retired}`;
    }
  });

  it("a chain the caller wrote is held to it: a 5.x fallback that refuses the request is a 400 before any call", async () => {
    const res = await s.call({
      model: SONNET_45,
      fallback_models: [SONNET_55],
      prompt: "hi",
      mode: "NO_WAIT",
      generationConfig: { temperature: 0.2 },
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "unsupported_feature", details: { model: SONNET_55, feature: "sampling" } });
    expect(claudeCalls()).toBe(0);
  });
});
