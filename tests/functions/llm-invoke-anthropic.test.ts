// Claude through the same door: Anthropic's dialect behind the port, served on every route, over HTTP
// with the real functions and PostgreSQL against the offline Anthropic simulator (its buckets refilling
// continuously, its wordings drawn per run):
//   the native route, OpenAI's route (whole and streamed, through the openai SDK) and Gemini's route
//   (through @google/genai) answer from Claude, each in its caller's shape; max_tokens is the row's
//   booked answer when a caller names none;
//   8 callers × 40 NO_WAIT at RPM 6 with a burst capacity of 6: the 6 at once, then one a step, no 429
//   from Anthropic;
//   a 529 costs no cooldown and the attempt after it answers, the chain's next model where there is one;
//   money is learned in one call;
//   every answer writes one token_usage row and its cost, cache reads at their price.
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type InvokeStack, startClaudeStack } from "./llm-invoke-helpers.ts";

/** The caller's name for it; the row (and what Anthropic is sent) is the dated id. */
const MODEL = "claude-sonnet-4-5";
const ROW = "claude-sonnet-4-5-20250929";
const KEY = "sk-ant-sim-gateway-0123456789";
const BROKE_KEY = "sk-ant-sim-broke-0123456789";
const RPM = 6;

/** The organization's limits at Anthropic: far above the rows', so the gateway's own admission decides. */
const LIMITS = {
  "sonnet-4": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 },
  "haiku-4-5": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 },
};

let s: InvokeStack;
let sim: AnthropicSimulator;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_anthropic", {
    simulator: {
      // An answer takes a moment, as Anthropic's do: a burst's admissions are all made before the first
      // answer's room (anthropic-ratelimit-*) can rest the model (google_ai_settle_call).
      latencyMs: 300,
      organizations: {
        "org-ant": { keys: [KEY], limits: LIMITS },
        "org-broke": { keys: [BROKE_KEY], wallet: "credit" },
      },
    },
    // The broke organization's key row is its own test's (money is learned in one call).
    claude: [{ name: "MAIN", secret: KEY, org: "org-ant" }, { name: "BROKE", secret: BROKE_KEY }],
    roomy: true,
  }));
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
});

const lastBody = () => sim.stats().received.at(-1)!.body as Record<string, unknown>;

describe("Claude on every route", () => {
  it("the native route: Claude's answer, max_tokens the row's booked answer, one token_usage row, its cost", async () => {
    const res = await s.call({ model: MODEL, prompt: "hello claude", mode: "NO_WAIT" });
    expect(res.status).toBe(200);
    expect(res.body.text).toBe("sim(claude-sonnet-4-5-20250929): hello claude");
    expect(lastBody()).toMatchObject({ model: ROW, max_tokens: 4096 });
    expect(sim.stats().received.at(-1)!).toMatchObject({ credentialHeader: "x-api-key", anthropicVersion: "2023-06-01" });
    const [{ n }] = await s.sql`select count(*)::int as n from public.token_usage where model = ${ROW}`;
    expect(n).toBeGreaterThanOrEqual(1);
    const [attempt] = await s.sql`select cost_usd::float8 as cost, input_tokens, output_tokens
                                  from public.google_ai_attempts where model = ${ROW} order by admitted_at desc limit 1`;
    // 3 + 4 + ceil(12 / 4) input tokens at $3, ceil(45 / 4) output at $15 per million.
    expect(attempt).toMatchObject({ input_tokens: 10, output_tokens: 12 });
    expect(attempt!.cost).toBeCloseTo((10 * 3 + 12 * 15) / 1e6, 12);
    // The caller's own cap is sent as Claude's max_tokens.
    await s.call({ model: MODEL, prompt: "short", mode: "NO_WAIT", generationConfig: { maxOutputTokens: 77 } });
    expect(lastBody()).toMatchObject({ max_tokens: 77 });
  });

  it("OpenAI's route, whole and streamed, through the openai SDK", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const whole = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "openai shape" }],
      max_tokens: 50,
    });
    expect(whole.choices[0]!.message.content).toBe("sim(claude-sonnet-4-5-20250929): openai shape");
    expect(whole.choices[0]!.finish_reason).toBe("stop");
    expect(lastBody()).toMatchObject({ system: "Be brief.", max_tokens: 50 });
    let text = "";
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "streamed" }], stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("sim(claude-sonnet-4-5-20250929): streamed");
    expect(sim.stats().streams.completed).toBe(1);
  });

  it("OpenAI's tools reach Claude as tools, and its call comes back as OpenAI's tool call", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "get_weather in Paris" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }],
      tool_choice: "required",
    });
    const call = answer.choices[0]!.message.tool_calls?.[0];
    expect(call?.type === "function" ? call.function.name : null).toBe("get_weather");
    expect(lastBody()).toMatchObject({ tool_choice: { type: "any" }, tools: [{ name: "get_weather" }] });
  });

  it("Gemini's route, through @google/genai", async () => {
    const client = new GoogleGenAI({ apiKey: s.serviceKey, vertexai: false, httpOptions: { baseUrl: s.url } });
    const answer = await client.models.generateContent({ model: MODEL, contents: "gemini shape", config: { maxOutputTokens: 40 } });
    expect(answer.text).toBe("sim(claude-sonnet-4-5-20250929): gemini shape");
    expect(answer.usageMetadata?.promptTokenCount).toBeGreaterThan(0);
    expect(lastBody()).toMatchObject({ max_tokens: 40 });
  });
});

describe("Anthropic's limits and words", () => {
  it("8 callers × 40 NO_WAIT at RPM 6, burst capacity 6: the 6 at once, then one a step, no 429 from Anthropic", async () => {
    // Haiku 4.5: a model (and an Anthropic pool) no other test of this file calls, so the minute is its own.
    const burst = "claude-haiku-4-5-20251001";
    sim.setOrganizations({
      ...sim.organizations(),
      "org-ant": { keys: [KEY], limits: { ...LIMITS, "haiku-4-5": { rpm: RPM, itpm: 1_000_000, otpm: 1_000_000, capacity: { requests: RPM } } } },
    });
    await s.sql`update public.google_ai_model_limits set rpm = ${RPM} where model = ${burst}`;
    try {
      const statuses: number[] = [];
      const started = Date.now();
      await Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const res = await s.call({ model: burst, prompt: `burst ${w}-${i}`, mode: "NO_WAIT", generationConfig: { maxOutputTokens: 20 } });
          statuses.push(res.status);
        }
      }));
      // The bucket's 6 at once, then one more a step (61 s / 6) as it refills: a run under a step, exactly 6.
      const served = statuses.filter((x) => x === 200).length;
      expect(served).toBeGreaterThanOrEqual(RPM);
      expect(served).toBeLessThanOrEqual(RPM + Math.floor((Date.now() - started) / (61_000 / RPM)));
      expect(statuses.filter((x) => x !== 200 && x !== 429)).toEqual([]);
      expect(sim.stats().total.byStatus["429"] ?? 0).toBe(0);
      expect(sim.stats().byModel[burst]?.received).toBe(served);
    } finally {
      sim.setOrganizations({ ...sim.organizations(), "org-ant": { keys: [KEY], limits: LIMITS } });
    }
  }, 180_000);

  it("a 529 is Anthropic's load: no cooldown, and the next attempt answers", async () => {
    sim.addFault({ kind: "overloaded", count: 1 });
    const res = await s.call({ model: MODEL, prompt: "overloaded once", mode: "NO_WAIT" });
    expect(res.status).toBe(200);
    expect(sim.stats().total.byStatus).toMatchObject({ "529": 1, "200": 1 });
    const cooldowns = await s.sql`select 1 from public.google_ai_cooldowns`;
    expect(cooldowns).toHaveLength(0);
  });

  it("a 529 is answered by the chain: the next model serves at once, no cooldown, Claude not called again", async () => {
    sim.addFault({ kind: "overloaded", count: 10 });
    try {
      const res = await s.call({
        model: MODEL,
        fallback_models: ["gemma-3-27b"],
        prompt: "overloaded, then Gemma",
        mode: "NO_WAIT",
        request_id: "ant-529-chain",
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ model: "gemma-3-27b-it", requested_model: ROW, attempts: 2 });
      // One call to Anthropic (its 529), then Gemma's answer: the overloaded model is not tried again.
      expect(sim.stats().total.byStatus).toEqual({ "529": 1 });
      const rows = await s.sql`select model, status, http_status from public.google_ai_attempts
                               where request_id = 'ant-529-chain' order by created_at, attempt`;
      expect(rows.map((r) => [r.model, r.status, r.http_status])).toEqual([
        [ROW, "upstream_error", 529],
        ["gemma-3-27b-it", "succeeded", 200],
      ]);
      expect(await s.sql`select 1 from public.google_ai_cooldowns`).toHaveLength(0);
    } finally {
      sim.clearFaults();
    }
  });

  it("Anthropic overloaded on every attempt: three calls at most, a 5xx to the caller, no cooldown left", async () => {
    sim.addFault({ kind: "overloaded", count: 10 });
    const res = await s.call({ model: MODEL, prompt: "overloaded for good", mode: "NO_WAIT" });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(sim.stats().total.byStatus["529"]).toBe(3);
    expect(await s.sql`select 1 from public.google_ai_cooldowns where model = ${ROW}`).toHaveLength(0);
    sim.clearFaults();
  });

  it("an error event after the 200 is a cut: the caller gets an error, never a half answer as whole", async () => {
    sim.addFault({ kind: "stream_error", count: 3, afterChunks: 3 });
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const outcome = await (async () => {
      let text = "";
      const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "cut me" }], stream: true });
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      return text;
    })().then((t) => ({ ok: true, t }), (e: unknown) => ({ ok: false, e }));
    // Either the gateway retried before the first byte reached the caller (then whole), or it says the cut.
    if (outcome.ok) expect((outcome as { t: string }).t).toBe("sim(claude-sonnet-4-5-20250929): cut me");
    else expect(String((outcome as { e: unknown }).e)).toMatch(/./);
  });

  it("money is learned in one call: an organization without credit rests, its next request never reaches Anthropic", async () => {
    await s.sql`update public.google_ai_api_keys set is_active = false where key_alias = 'claude-main'`;
    await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
                values ('claude-broke', 'anthropic', 'ANTHROPIC_TEST_KEY_BROKE', 'org-broke', 1, true)`;
    try {
      const first = await s.call({ model: MODEL, prompt: "no credit", mode: "NO_WAIT" });
      expect(first.status).toBeGreaterThanOrEqual(400);
      const second = await s.call({ model: MODEL, prompt: "no credit again", mode: "NO_WAIT" });
      expect(second.status).toBeGreaterThanOrEqual(400);
      expect(sim.stats().byKey[BROKE_KEY]?.received).toBe(1);
      const [cooldown] = await s.sql`select cause from public.google_ai_cooldowns limit 1`;
      expect(cooldown?.cause).toBe("credits_depleted");
    } finally {
      await s.sql`delete from public.google_ai_api_keys where key_alias = 'claude-broke'`;
      await s.sql`update public.google_ai_api_keys set is_active = true where key_alias = 'claude-main'`;
    }
  });
});
