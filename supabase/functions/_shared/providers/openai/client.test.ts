// OpenAI's client against the offline OpenAI simulator (a real HTTP server whose error wordings are
// drawn per run): answers in the gateway's inner shape, the stream with its usage chunk, and every
// failure classified by structure.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../../../../shared/openai-sim/server.ts";
import { hubFinish, hubText } from "../../upstream/hub.ts";
import { type GeminiRequest, hubRequestOf } from "../../../llm-invoke/surfaces/gemini/test-fixtures.ts";
import { createOpenAiClient } from "./client.ts";
import { type UpstreamClient } from "../../upstream/port.ts";

let sim: OpenAISimulator;
let client: UpstreamClient;
const apiKey = "sk-sim-a1";

beforeAll(async () => {
  sim = await startOpenAISimulator({ waitStyle: "mixed" });
  client = createOpenAiClient({ baseUrl: sim.url });
});
afterAll(() => sim.close());
beforeEach(() => sim.reset());

const request = (over: Partial<GeminiRequest> = {}): GeminiRequest => ({
  model: "gpt-4o",
  contents: [{ role: "user", parts: [{ text: "hello there" }] }],
  systemInstruction: "Be brief.",
  generationConfig: { maxOutputTokens: 50 },
  ...over,
});
const call = (over: Partial<GeminiRequest> = {}) => ({ apiKey, request: hubRequestOf(request(over)), timeoutMs: 5_000 });

describe("generate", () => {
  it("answers in the gateway's shape with OpenAI's usage", async () => {
    const out = await client.generate(call());
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(hubText(out.answer)).toContain("hello there");
    expect(hubFinish(out.answer)).toEqual({ reason: "stop", word: "stop" });
    const usage = out.answer.usage!;
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.totalTokens).toBe(usage.inputTokens + usage.outputTokens);
    expect(out.answer.modelVersion).toMatch(/^gpt-4o/);
    const seen = sim.stats().recent.at(-1)!;
    expect(seen).toMatchObject({ model: "gpt-4o", apiKey, status: 200 });
  });

  it("sends function declarations as tools and reads tool calls back as the hub's tool calls", async () => {
    const out = await client.generate(call({
      tools: [{
        functionDeclarations: [{
          name: "get_weather",
          parametersJsonSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        }],
      }],
      toolConfig: { functionCallingConfig: { mode: "ANY" } },
    }));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const called = out.answer.outputs[0]!.parts.find((p) => p.type === "tool_call") as { name: string; id?: string };
    expect(called.name).toBe("get_weather");
    expect(called.id).toBeTypeOf("string");
  });
});

describe("stream", () => {
  it("passes the text as it comes and ends with OpenAI's usage", async () => {
    const out = await client.stream({ ...call(), streamTimeoutMs: 5_000 });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const chunks = [];
    for await (const chunk of out.chunks) if (chunk.answer !== null) chunks.push(chunk.answer);
    expect(chunks.map(hubText).join("")).toContain("hello there");
    const usage = chunks.at(-1)!.usage!;
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.outputTokens).toBeGreaterThan(0);
  });

  it("gives each of OpenAI's chunks as it came beside its hub shape: the role chunk and a tool call's pieces too", async () => {
    const out = await client.stream({
      ...call({
        tools: [{ functionDeclarations: [{ name: "get_weather", parametersJsonSchema: { type: "object" } }] }],
        toolConfig: { functionCallingConfig: { mode: "ANY" } },
      }),
      streamTimeoutMs: 5_000,
    });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const chunks = [];
    for await (const chunk of out.chunks) chunks.push(chunk);
    // Every chunk OpenAI sent, [DONE] aside, is there as it came.
    expect(chunks.every((c) => c.own?.dialect === "openai" && c.own.body.object === "chat.completion.chunk")).toBe(true);
    type Delta = { tool_calls?: Array<{ function: { arguments?: string } }> };
    const pieces = chunks.flatMap((c) =>
      (c.own!.body.choices as Array<{ delta: Delta }>).flatMap((ch) => ch.delta.tool_calls ?? [])
    );
    expect(pieces.length).toBeGreaterThan(2);
    // The hub shape takes the call whole, when its choice ends; the role chunk and the pieces hold nothing of it.
    const calls = chunks.flatMap((c) =>
      (c.answer?.outputs ?? []).flatMap((o) => o.parts.filter((p) => p.type === "tool_call"))
    );
    expect(calls).toEqual([expect.objectContaining({ type: "tool_call", name: "get_weather" })]);
    expect(chunks[0]!.answer).toBeNull();
    expect(JSON.parse(pieces.map((p) => p.function.arguments ?? "").join(""))).toEqual(
      (calls[0] as { args: unknown }).args,
    );
  });

  it("a stream OpenAI breaks off is a StreamCut", async () => {
    sim.addFault({ kind: "cut_stream", afterChunks: 2, count: 1 });
    const out = await client.stream({ ...call(), streamTimeoutMs: 5_000 });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    await expect((async () => {
      for await (const _ of out.chunks) { /* drain */ }
    })()).rejects.toMatchObject({ name: "StreamCut" });
  });
});

describe("failures, by structure", () => {
  it("a rate limit rests for the wait the headers give, whatever the message says", async () => {
    for (const limitType of ["requests", "tokens"] as const) {
      sim.addFault({ kind: "rate_limited", limitType, waitMs: 7_250, count: 1 });
      const out = await client.generate(call());
      expect(out.ok).toBe(false);
      if (out.ok) return;
      expect(out.error).toMatchObject({ class: "rate_limited", quotaCause: "minute", httpStatus: 429 });
      expect(out.error.retryAfterMs).toBe(7_250);
    }
  });

  it("an empty wallet is money, not a rate limit (same status)", async () => {
    sim.setWallet("org-sim-a", "empty");
    const out = await client.generate(call());
    sim.setWallet("org-sim-a", "funded");
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error).toMatchObject({ class: "rate_limited", quotaCause: "credits_depleted", retryAfterMs: null });
  });

  it("a wrong key is the key's fault, and its secret is not in the message", async () => {
    const out = await client.generate({ ...call(), apiKey: "sk-not-a-key-0123456789" });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.class).toBe("invalid_key");
    expect(out.error.message).not.toContain("sk-not-a-key-0123456789");
  });

  it("a withdrawn model is model_withdrawn, and models.get confirms it", async () => {
    const out = await client.generate(call({ model: "gpt-4" }));
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.class).toBe("model_withdrawn");
    const asked = await client.getModel({ apiKey, model: "gpt-4", timeoutMs: 5_000 });
    expect(asked.ok).toBe(false);
    if (!asked.ok) expect(asked.error.class).toBe("model_withdrawn");
    expect((await client.getModel({ apiKey, model: "gpt-4o", timeoutMs: 5_000 })).ok).toBe(true);
  });

  it("a 5xx is retried, a bad request is the caller's", async () => {
    sim.addFault({ kind: "http503", count: 1 });
    const failed = await client.generate(call());
    expect(!failed.ok && failed.error.class).toBe("retryable");
    sim.addFault({ kind: "bad_request", count: 1 });
    const bad = await client.generate(call());
    expect(!bad.ok && bad.error.class).toBe("client_error");
  });

  it("OpenAI offers no token count: the estimate stands", () => {
    expect(client.countTokens).toBeUndefined();
    expect(sim.stats().total.received).toBe(0);
  });
});
