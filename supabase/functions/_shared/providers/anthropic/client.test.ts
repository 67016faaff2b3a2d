// Anthropic's client against the offline Anthropic simulator (a real HTTP server whose error wordings
// are drawn per run): what it sends (x-api-key, API version, max_tokens from the booked answer, the
// system apart, tools, a JSON answer through one forced tool), answers and named-event streams in the
// hub's words (requests written in Gemini's shape, said in the hub's by its route's translation), the
// exact count, and every failure classified by structure (money in four shapes, 529 retryable, an error
// event after a 200 a cut).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../../../../shared/anthropic-sim/server.ts";
import { hubFinish, hubText } from "../../upstream/hub.ts";
import { type GeminiRequest, hubRequestOf } from "../../../llm-invoke/surfaces/gemini/test-fixtures.ts";
import { StreamCut, type UpstreamClient } from "../../upstream/port.ts";
import { createAnthropicClient } from "./client.ts";
import { DEFAULT_MAX_TOKENS } from "./request.ts";
import { usageOf } from "./response.ts";
import { createAnthropicModelLister } from "./models.ts";

let sim: AnthropicSimulator;
let client: UpstreamClient;
const apiKey = "sk-ant-sim-a1";

beforeAll(async () => {
  sim = await startAnthropicSimulator({
    organizations: {
      "org-sim-a": { keys: ["sk-ant-sim-a1"] },
      "org-credit": { keys: ["k-credit"], wallet: "credit" },
      "org-billing": { keys: ["k-billing"], wallet: "billing" },
      "org-spend": { keys: ["k-spend"], wallet: "spend_limit" },
      "org-workspace": { keys: ["k-workspace"], wallet: "workspace_limit" },
    },
  });
  client = createAnthropicClient({ baseUrl: sim.url });
});
afterAll(() => sim.close());
beforeEach(() => sim.reset());

const request = (over: Partial<GeminiRequest> = {}): GeminiRequest => ({
  model: "claude-sonnet-4-5",
  contents: [{ role: "user", parts: [{ text: "hello there" }] }],
  systemInstruction: "Be brief.",
  generationConfig: { maxOutputTokens: 50 },
  ...over,
});
const call = (over: Partial<GeminiRequest> = {}, key = apiKey) => ({
  apiKey: key,
  request: hubRequestOf(request(over)),
  timeoutMs: 5_000,
});
const sent = () => sim.stats().received.at(-1)!;

describe("generate", () => {
  it("sends Anthropic's body and headers, and reads the answer in the hub's words", async () => {
    const out = await client.generate(call());
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(hubText(out.answer)).toBe("sim(claude-sonnet-4-5): hello there");
    expect(hubFinish(out.answer)).toEqual({ reason: "stop", word: "end_turn" });
    expect(out.answer.modelVersion).toBe("claude-sonnet-4-5-20250929");
    // 3 + 3 (the system) + 4 + 3 (the question); ceil(35 / 4) out
    expect(out.answer.usage).toMatchObject({ inputTokens: 13, outputTokens: 9, totalTokens: 22 });
    expect(out.dialectAnswer?.dialect).toBe("anthropic");
    expect(out.room).toMatchObject({ requests: 49 });
    expect(sent()).toMatchObject({
      credentialHeader: "x-api-key",
      anthropicVersion: "2023-06-01",
      body: {
        model: "claude-sonnet-4-5",
        max_tokens: 50,
        system: "Be brief.",
        messages: [{ role: "user", content: [{ type: "text", text: "hello there" }] }],
      },
    });
  });

  it("max_tokens: the caller's, else the booked answer, else the default", async () => {
    await client.generate(call({ generationConfig: {}, bookedOutputTokens: 700 }));
    expect((sent().body as { max_tokens: number }).max_tokens).toBe(700);
    await client.generate(call({ generationConfig: {} }));
    expect((sent().body as { max_tokens: number }).max_tokens).toBe(DEFAULT_MAX_TOKENS);
  });

  it("tools both ways: declarations as tools, a required call as tool_choice any, the call and its result paired by id", async () => {
    const tools = [{
      functionDeclarations: [{
        name: "get_weather",
        parametersJsonSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      }],
    }];
    const out = await client.generate(call({ tools, toolConfig: { functionCallingConfig: { mode: "ANY" } } }));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const called = out.answer.outputs[0]!.parts[0] as { name: string; id: string; args: Record<string, unknown> };
    expect(called).toMatchObject({ name: "get_weather", args: { city: "sim" } });
    expect(sent().body).toMatchObject({
      tool_choice: { type: "any" },
      tools: [{ name: "get_weather", input_schema: { type: "object" } }],
    });
    await client.generate(call({
      tools,
      contents: [
        { role: "user", parts: [{ text: "weather?" }] },
        { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }] },
        { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temp: 20 } } }] },
        { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Oslo" } } }] },
        { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { output: "3 C" } } }] },
        { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "?" } } }] },
        { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { error: "no such city" } } }] },
      ],
    }));
    const messages = (sent().body as { messages: Array<{ content: Array<Record<string, unknown>> }> }).messages;
    expect(messages[1]!.content[0]).toMatchObject({ type: "tool_use", name: "get_weather" });
    // An object goes as its JSON; Google's text ({output}) as the text; a failed tool's ({error}) as is_error.
    expect(messages[2]!.content[0]).toEqual({
      type: "tool_result",
      tool_use_id: messages[1]!.content[0]!.id,
      content: '{"temp":20}',
    });
    expect(messages[4]!.content[0]).toEqual({ type: "tool_result", tool_use_id: messages[3]!.content[0]!.id, content: "3 C" });
    expect(messages[6]!.content[0]).toEqual({
      type: "tool_result",
      tool_use_id: messages[5]!.content[0]!.id,
      content: "no such city",
      is_error: true,
    });
  });

  it("a JSON answer through one forced tool, its input the answer's text; an OpenAPI schema as JSON Schema", async () => {
    const out = await client.generate(call({
      generationConfig: {
        responseMimeType: "application/json",
        responseSchema: { type: "OBJECT", properties: { city: { type: "STRING", nullable: true } } },
        maxOutputTokens: 100,
      },
    }));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(JSON.parse(hubText(out.answer))).toEqual({ city: "sim" });
    expect(hubFinish(out.answer)?.reason).toBe("stop");
    expect(sent().body).toMatchObject({
      tool_choice: { type: "tool", name: "json_answer" },
      tools: [{
        name: "json_answer",
        input_schema: { type: "object", properties: { city: { type: ["string", "null"] } } },
      }],
    });
  });

  it("thinking: a budget within max_tokens, the signed thought read back as a thought with its signature", async () => {
    const out = await client.generate(
      call({
        generationConfig: { maxOutputTokens: 3000, thinkingConfig: { thinkingBudget: 2000, includeThoughts: true } },
      }),
    );
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.answer.outputs[0]!.parts[0]).toMatchObject({
      type: "text",
      thought: true,
      signature: expect.stringMatching(/^sig-sim-/),
    });
    expect(sent().body).toMatchObject({ thinking: { type: "enabled", budget_tokens: 2000 } });
    expect(hubText(out.answer)).toBe("sim(claude-sonnet-4-5): hello there");
  });

  it("prompt cache: reads are the hub's cached input, writes part of its input", async () => {
    // Through a caller's own Anthropic body (pass-through), which carries cache_control.
    const body = {
      model: "x",
      max_tokens: 50,
      system: [{ type: "text", text: "y".repeat(400), cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: "hi" }],
    };
    const first = await client.generate(call({ dialectBody: { dialect: "anthropic", body } }));
    const second = await client.generate(call({ dialectBody: { dialect: "anthropic", body } }));
    expect(first.ok && second.ok).toBe(true);
    if (!first.ok || !second.ok) return;
    expect(first.answer.usage).toMatchObject({ inputTokens: 108, cachedInputTokens: 0, cacheWrite5mTokens: 100 });
    expect(second.answer.usage).toMatchObject({ inputTokens: 108, cachedInputTokens: 100 });
    expect(second.answer.usage).not.toHaveProperty("cacheWrite5mTokens");
    expect((second.dialectAnswer!.body.usage as Record<string, number>).cache_read_input_tokens).toBe(100);
    expect(sent().body).toMatchObject({ model: "claude-sonnet-4-5", max_tokens: 50 });
    // A read, an hour's write and 5 minutes' write in one call, each counted apart.
    const more = { ...body, system: [
      ...body.system,
      { type: "text", text: "z".repeat(400), cache_control: { type: "ephemeral", ttl: "1h" } },
      { type: "text", text: "w".repeat(400), cache_control: { type: "ephemeral", ttl: "5m" } },
    ] };
    const third = await client.generate(call({ dialectBody: { dialect: "anthropic", body: more } }));
    expect(third.ok && third.answer.usage).toMatchObject({ inputTokens: 308, cachedInputTokens: 100, cacheWrite1hTokens: 100, cacheWrite5mTokens: 100 });
  });

  it("cache writes without cache_creation are 5-minute ones, Anthropic's default lifetime", () => {
    expect(usageOf({ input_tokens: 5, cache_creation_input_tokens: 40, cache_read_input_tokens: 7, output_tokens: 3 }))
      .toEqual({ inputTokens: 52, outputTokens: 3, thinkingTokens: 0, cachedInputTokens: 7, totalTokens: 55, cacheWrite5mTokens: 40 });
  });
});

describe("failures, by structure", () => {
  it("money in four shapes is a rest of the organization, its cause named", async () => {
    const causes: Record<string, string | null> = {};
    for (const key of ["k-credit", "k-billing", "k-spend", "k-workspace"]) {
      const out = await client.generate(call({}, key));
      expect(out.ok).toBe(false);
      if (out.ok) continue;
      expect(out.error.class, key).toBe("rate_limited");
      causes[key] = out.error.quotaCause;
    }
    expect(causes).toEqual({
      "k-credit": "credits_depleted",
      "k-billing": "billing_cap",
      "k-spend": "monthly_cap",
      "k-workspace": "monthly_cap",
    });
  });

  it("a rate limit rests for retry-after; a 529 and a 500 are retried, no rest; 401 and 403 the key; a retired model's 404", async () => {
    sim.addFault({ kind: "rate_limited", count: 1, waitMs: 7000, limit: "output_tokens" });
    const limited = await client.generate(call());
    expect(limited.ok ? null : limited.error).toMatchObject({
      class: "rate_limited",
      quotaCause: "minute",
      retryAfterMs: 7000,
      quotaId: "output_tokens",
    });
    sim.addFault({ kind: "acceleration", count: 1, waitMs: 2000 });
    expect((await client.generate(call())).ok ? null : "x").toBe("x");
    sim.addFault({ kind: "overloaded", count: 1 });
    const over = await client.generate(call());
    expect(over.ok ? null : over.error).toMatchObject({ class: "retryable", httpStatus: 529, quotaCause: null });
    sim.addFault({ kind: "api_error", count: 1 });
    expect((await client.generate(call())).ok ? null : "retryable").toBe("retryable");
    expect((await client.generate(call({}, "sk-ant-nobody"))).ok ? null : "x").toBe("x");
    sim.addFault({ kind: "permission", count: 1 });
    const denied = await client.generate(call());
    expect(denied.ok ? null : denied.error.class).toBe("invalid_key");
    const gone = await client.generate(call({ model: "claude-3-opus-20240229" }));
    expect(gone.ok ? null : gone.error.class).toBe("model_withdrawn");
    const look = await client.getModel({ apiKey, model: "claude-3-opus-20240229", timeoutMs: 5000 });
    expect(look.ok ? null : look.error.class).toBe("model_withdrawn");
    expect((await client.getModel({ apiKey, model: "claude-sonnet-4-5", timeoutMs: 5000 })).ok).toBe(true);
  });

  it("several answers asked is the caller's error, said before any call", async () => {
    const before = sim.stats().total.received;
    const out = await client.generate(call({ generationConfig: { candidateCount: 2 } }));
    expect(out.ok ? null : out.error).toMatchObject({ class: "client_error", httpStatus: 400 });
    expect(sim.stats().total.received).toBe(before);
  });
});

describe("stream", () => {
  async function drain(over: Partial<GeminiRequest> = {}) {
    const opened = await client.stream(call(over));
    if (!opened.ok) throw new Error(opened.error.message);
    const texts: string[] = [];
    let usage: unknown = null;
    let finish: unknown = null;
    let own = 0;
    for await (const chunk of opened.chunks) {
      if (chunk.own?.dialect === "anthropic") own++;
      if (chunk.answer === null) continue;
      texts.push(hubText(chunk.answer));
      const ended = hubFinish(chunk.answer);
      if (ended !== null) finish = ended.reason;
      if (chunk.answer.usage !== null) usage = chunk.answer.usage;
    }
    return { text: texts.join(""), usage, finish, own, whole: opened.dialectAnswer!() };
  }

  it("named events in the hub's words, usage at the end, the whole message folded beside", async () => {
    const got = await drain();
    expect(got.text).toBe("sim(claude-sonnet-4-5): hello there");
    expect(got.finish).toBe("stop");
    expect(got.usage).toMatchObject({ inputTokens: 13, outputTokens: 9 });
    expect(got.own).toBeGreaterThan(5);
    expect(got.whole.body).toMatchObject({
      type: "message",
      content: [{ type: "text", text: "sim(claude-sonnet-4-5): hello there" }],
      stop_reason: "end_turn",
    });
  });

  it("an error event after the 200 is a cut, classified by its type (overloaded: retried)", async () => {
    sim.addFault({ kind: "stream_error", count: 1, afterChunks: 3 });
    const error = await drain().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(StreamCut);
    expect((error as StreamCut).error).toMatchObject({ class: "retryable", httpStatus: 529 });
    sim.addFault({ kind: "cut_stream", count: 1, afterChunks: 2 });
    expect(await drain().then(() => null, (e: unknown) => e)).toBeInstanceOf(StreamCut);
  });
});

describe("count and models", () => {
  it("counts the input exactly, spending nothing", async () => {
    const counted = await client.countTokens!(call());
    expect(counted).toMatchObject({ ok: true, totalTokens: 13 });
    expect(sim.stats().received.at(-1)!.body).not.toHaveProperty("max_tokens");
  });

  it("lists every page of the models a key sees", async () => {
    const listed = await createAnthropicModelLister({ baseUrl: sim.url }).list(apiKey);
    expect(listed.ok).toBe(true);
    if (!listed.ok) return;
    expect(listed.models.map((m) => m.model)).toEqual([
      "claude-haiku-5-5",
      "claude-sonnet-5-5",
      "claude-opus-5-5",
      "claude-opus-4-5-20251101",
      "claude-haiku-4-5-20251001",
      "claude-sonnet-4-5-20250929",
    ]);
    expect(listed.models[0]).toMatchObject({ display_name: "Claude Haiku 5.5" });
  });
});
