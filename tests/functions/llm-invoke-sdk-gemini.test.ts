// Google's own SDK (@google/genai, from npm) pointed at the gateway with a scoped token as its API
// key, over HTTP with the real function, PostgreSQL and the simulator: generateContent,
// generateContentStream, countTokens, models.list/get, and a 429 the SDK can read with the gateway's
// exact wait in RetryInfo. Nothing but the base URL and the key changes in the caller's code. The same
// SDK naming an OpenAI model (gpt-4o) is served by OpenAI's simulator, answered in Google's shape.
import { ApiError, FunctionCallingConfigMode, GoogleGenAI, Type } from "@google/genai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let token: string;
let gptToken: string;
const GEMMA = "gemma-3-27b-it";
const FLASH = "gemini-2.5-flash";
const GPT = "gpt-4o";
const OPENAI_SECRET = "sk-sim-sdk";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_sdk_gemini", {
    keys: [
      { alias: "sdk-key", project: "proj-sdk", priority: 1, simKey: "sim-key-sdk" },
      { alias: "sdk-openai", provider: "openai", project: "org-sdk", priority: 1, simKey: OPENAI_SECRET },
    ],
  });
  ({ token } = await mintToken(s.sql, "sdk-notebook", { models: [GEMMA, FLASH] }));
  ({ token: gptToken } = await mintToken(s.sql, "sdk-gpt-notebook", { models: [GPT] }));
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
  // Each test reads the audit rows of its own requests.
  await s.sql`delete from public.google_ai_attempts`;
  await s.setLimit({ model: GEMMA, rpm: 30, tpm: 15_000, rpd: 14_400 });
});

/** The notebook's client: Google's SDK, the gateway as its base URL, a scoped token as its key. */
function sdk(headers: Record<string, string> = {}, apiKey = token): GoogleGenAI {
  return new GoogleGenAI({ apiKey, vertexai: false, httpOptions: { baseUrl: s.url, headers } });
}

describe("@google/genai against the gateway", () => {
  it("generateContent: Google's answer as Google shapes it, served by the pool, audited under the client", async () => {
    const answer = await sdk().models.generateContent({ model: "gemma-3-27b", contents: "Привет, Kaggle" });
    expect(answer.text).toBe(`sim(${GEMMA}): Привет, Kaggle`);
    expect(answer.usageMetadata?.promptTokenCount).toBeGreaterThan(0);
    const rows = await s.sql<{ caller: string; status: string; model: string }[]>`
      select caller, status, model from public.google_ai_attempts where status <> 'refused'`;
    expect(rows).toEqual([{ caller: "client:sdk-notebook", status: "succeeded", model: GEMMA }]);
    expect(s.sim.stats().recent.map((r) => r.method)).toEqual(["generateContent"]);
  });

  it("generateContentStream: Google's chunks in order, the same text as without streaming, one audit row", async () => {
    const whole = await sdk().models.generateContent({ model: FLASH, contents: "stream this answer to me please" });
    const pieces: string[] = [];
    let lastUsage: number | undefined;
    for await (const chunk of await sdk().models.generateContentStream({ model: FLASH, contents: "stream this answer to me please" })) {
      pieces.push(chunk.text ?? "");
      lastUsage = chunk.usageMetadata?.totalTokenCount ?? lastUsage;
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(whole.text);
    expect(lastUsage).toBe(whole.usageMetadata?.totalTokenCount);
    const [{ n }] = await s.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where status = 'succeeded'`;
    expect(n).toBe(2);
  });

  it("countTokens, both of Google's forms: Google's own count, with no quota booked", async () => {
    const counted = await sdk().models.countTokens({ model: FLASH, contents: "how many tokens is this?" });
    expect(counted.totalTokens).toBe(Math.ceil(new TextEncoder().encode("how many tokens is this?").length / 4));
    const [{ n }] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_attempts`;
    expect(n).toBe(0);
    // The pool's countTokens quota serves a token's own models only.
    const outside = await sdk().models.countTokens({ model: "gemini-2.5-flash-lite", contents: "x" }).catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(ApiError);
    expect((outside as ApiError).status).toBe(403);
  });

  it("models.list and models.get: the gateway's models in Google's shape, aliases included", async () => {
    const names: string[] = [];
    for await (const model of await sdk().models.list()) names.push(model.name ?? "");
    expect(names).toEqual(expect.arrayContaining([`models/${GEMMA}`, `models/${FLASH}`]));
    // A scoped token sees its own models only.
    expect(names).not.toContain("models/gemini-2.5-flash-lite");
    const gemma = await sdk().models.get({ model: "gemma-3-27b" });
    expect(gemma.name).toMatch(/gemma-3-27b/);
    expect(gemma.supportedActions ?? []).toEqual(expect.arrayContaining(["generateContent"]));
  });

  it("credentials as Google's SDKs send them: x-goog-api-key, ?key= or a bearer token; never a Google key", async () => {
    const path = `/functions/v1/llm-invoke/v1beta/models/${GEMMA}:generateContent`;
    const body = JSON.stringify({ contents: [{ role: "user", parts: [{ text: "key?" }] }] });
    const json = { "content-type": "application/json" };
    const byQuery = await s.raw({ method: "POST", path: `${path}?key=${encodeURIComponent(token)}`, headers: json, body });
    const byBearer = await s.raw({ method: "POST", path, headers: { ...json, authorization: `Bearer ${token}` }, body });
    expect([byQuery.status, byBearer.status]).toEqual([200, 200]);
    // A Google key is no credential here: refused in Google's error shape before anything is read.
    const googleKey = await s.raw({ method: "POST", path, headers: { ...json, "x-goog-api-key": "sim-key-sdk" }, body });
    expect(googleKey.status).toBe(401);
    expect(googleKey.body.error).toMatchObject({ code: 401, status: "UNAUTHENTICATED" });
    // The query-string token never reaches a log line.
    expect(s.logs.join("\n")).not.toContain(token);
  });

  it("a 429 the SDK can read: RetryInfo carries the gateway's exact wait, NO_WAIT asked by header", async () => {
    await s.setLimit({ model: GEMMA, rpm: 1 });
    const noWait = sdk({ "x-eve-mode": "NO_WAIT" });
    await noWait.models.generateContent({ model: GEMMA, contents: "first" });
    let refusal: unknown;
    try {
      await noWait.models.generateContent({ model: GEMMA, contents: "second" });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ApiError);
    expect((refusal as ApiError).status).toBe(429);
    const body = JSON.parse((refusal as ApiError).message) as {
      error: { code: number; status: string; details: Array<Record<string, string>> };
    };
    expect(body.error).toMatchObject({ code: 429, status: "RESOURCE_EXHAUSTED" });
    const retry = body.error.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.RetryInfo");
    const info = body.error.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo") as
      | { metadata?: Record<string, string> }
      | undefined;
    expect(retry?.retryDelay).toMatch(/^\d+(\.\d+)?s$/);
    // The delay is the gateway's own, to the millisecond: the refusal's audit row says the same.
    const [row] = await s.sql<{ retry_after_ms: string }[]>`
      select retry_after_ms from public.google_ai_attempts where status = 'refused'`;
    expect(Math.round(Number(retry!.retryDelay!.slice(0, -1)) * 1000)).toBe(Number(row!.retry_after_ms));
    expect(info?.metadata?.code).toBe("rate_limited");
    expect(s.sim.stats().recent).toHaveLength(1); // the refusal never reached Google
  });
});

describe("@google/genai naming an OpenAI model", () => {
  beforeEach(async () => {
    await s.sql`delete from public.token_usage`;
  });

  /** What the gateway wrote for the test's gpt-4o calls: attempt rows and token_usage rows. */
  async function written() {
    const attempts = await s.sql<{ model: string; status: string; quota_group: string; caller: string }[]>`
      select model, status, quota_group, caller from public.google_ai_attempts where status <> 'refused' order by id`;
    const usage = await s.sql<{ model: string; prompt_tokens: number; completion_tokens: number; total_tokens: number }[]>`
      select model, prompt_tokens, completion_tokens, total_tokens from public.token_usage order by id`;
    return { attempts, usage };
  }

  it("generateContent: gpt-4o's answer in Gemini's shape with usage, from OpenAI's simulator alone, logged as gpt-4o", async () => {
    const answer = await sdk({}, gptToken).models.generateContent({
      model: GPT,
      contents: "Привет, OpenAI",
      config: { systemInstruction: "Be brief.", maxOutputTokens: 100 },
    });
    expect(answer.text).toBe(`sim(${GPT}): Привет, OpenAI`);
    expect(answer.candidates?.[0]?.finishReason).toBe("STOP");
    const usage = answer.usageMetadata!;
    expect(usage.promptTokenCount).toBeGreaterThan(0);
    expect(usage.candidatesTokenCount).toBeGreaterThan(0);
    expect(usage.totalTokenCount).toBe(usage.promptTokenCount! + usage.candidatesTokenCount!);

    const oa = s.openaiSim.stats();
    expect(oa.recent.map((r) => [r.model, r.apiKey, r.status])).toEqual([[GPT, OPENAI_SECRET, 200]]);
    expect(s.sim.stats().total.received).toBe(0);
    expect(await written()).toEqual({
      attempts: [{ model: GPT, status: "succeeded", quota_group: "org-sdk", caller: "client:sdk-gpt-notebook" }],
      usage: [{
        model: GPT,
        prompt_tokens: usage.promptTokenCount,
        completion_tokens: usage.candidatesTokenCount,
        total_tokens: usage.totalTokenCount,
      }],
    });
  });

  it("generateContentStream: gpt-4o's chunks make the same text as without streaming, the last with usage", async () => {
    const question = "stream this answer from OpenAI to me please";
    const whole = await sdk({}, gptToken).models.generateContent({ model: GPT, contents: question });
    const pieces: string[] = [];
    let lastUsage: { promptTokenCount?: number; candidatesTokenCount?: number; totalTokenCount?: number } | undefined;
    let finish: string | undefined;
    for await (const chunk of await sdk({}, gptToken).models.generateContentStream({ model: GPT, contents: question })) {
      pieces.push(chunk.text ?? "");
      lastUsage = chunk.usageMetadata ?? lastUsage;
      finish = chunk.candidates?.[0]?.finishReason ?? finish;
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(whole.text);
    expect(finish).toBe("STOP");
    expect(lastUsage).toMatchObject({
      promptTokenCount: whole.usageMetadata?.promptTokenCount,
      candidatesTokenCount: whole.usageMetadata?.candidatesTokenCount,
      totalTokenCount: whole.usageMetadata?.totalTokenCount,
    });

    expect(s.openaiSim.stats().recent.map((r) => [r.model, r.apiKey, r.status])).toEqual([
      [GPT, OPENAI_SECRET, 200], [GPT, OPENAI_SECRET, 200],
    ]);
    expect(s.openaiSim.stats().streams).toMatchObject({ started: 1, completed: 1 });
    expect(s.sim.stats().total.received).toBe(0);
    const { attempts, usage } = await written();
    expect(attempts.map((a) => [a.model, a.status])).toEqual([[GPT, "succeeded"], [GPT, "succeeded"]]);
    expect(usage.map((u) => [u.model, u.prompt_tokens, u.completion_tokens])).toEqual([
      [GPT, lastUsage!.promptTokenCount, lastUsage!.candidatesTokenCount],
      [GPT, lastUsage!.promptTokenCount, lastUsage!.candidatesTokenCount],
    ]);
  });

  it("JSON and tools as Google's SDK writes them reach OpenAI as it takes them, and come back in Gemini's shape", async () => {
    const gpt = sdk({}, gptToken).models;
    // Google's types in capitals, nullable, propertyOrdering: OpenAI takes JSON Schema only.
    const event = await gpt.generateContent({
      model: GPT,
      contents: "concert on Friday",
      config: {
        responseMimeType: "application/json",
        responseSchema: {
          type: Type.OBJECT,
          properties: { title: { type: Type.STRING }, hour: { type: Type.INTEGER, nullable: true } },
          required: ["title", "hour"],
          propertyOrdering: ["title", "hour"],
        },
      },
    });
    expect(JSON.parse(event.text!)).toEqual({ title: "concert on Friday", hour: 1 });
    // A list at the root (Google's own example); OpenAI answers objects only, the caller gets the list.
    const listConfig = {
      responseMimeType: "application/json",
      responseSchema: { type: Type.ARRAY, items: { type: Type.STRING }, maxItems: "3" },
    };
    const list = await gpt.generateContent({ model: GPT, contents: "three colours", config: listConfig });
    expect(JSON.parse(list.text!)).toEqual([]);
    const pieces: string[] = [];
    for await (const chunk of await gpt.generateContentStream({ model: GPT, contents: "three colours", config: listConfig })) {
      pieces.push(chunk.text ?? "");
    }
    expect(pieces.join("")).toBe(list.text);
    // JSON without a schema, and a question that does not say "json" (OpenAI's json_object asks for the word).
    const any = await gpt.generateContent({ model: GPT, contents: "three colours", config: { responseMimeType: "application/json" } });
    expect(JSON.parse(any.text!)).toMatchObject({ model: GPT });
    // A function declared with Google's types, a call forced as Google forces it.
    const called = await gpt.generateContent({
      model: GPT,
      contents: "weather in Oslo?",
      config: {
        tools: [{
          functionDeclarations: [{
            name: "weather",
            parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } }, required: ["city"] },
          }],
        }],
        toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY } },
      },
    });
    expect(called.functionCalls?.map((c) => [c.name, c.args])).toEqual([["weather", { city: "sim" }]]);

    expect(s.openaiSim.stats().recent.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(s.sim.stats().total.received).toBe(0);
    expect((await written()).usage.map((u) => u.model)).toEqual([GPT, GPT, GPT, GPT, GPT]);
  });
});
