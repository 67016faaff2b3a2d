// One conformance suite, every dialect a caller may speak (the routes' surfaces: native, gemini,
// openai, anthropic) against every dialect a model is reached in (google, openai, anthropic), each
// provider its offline simulator over HTTP, which checks a body as its provider does and records it.
// The caller's own body asks for more than the gateway allows: another model name, a larger output
// cap, a larger thinking budget, the other stream. The gateway's decisions (the request as the
// handler and the attempt loop leave it: the model booked, the cap, the budget, the call's stream) are
// what each provider receives, whatever rides beside them of the caller's own body (OpenAI's and
// Anthropic's bodies passed through, Google's fields the hub has no word for, Google's own body as
// the port takes it). What a dialect cannot carry is refused by name by every other provider's model;
// a cut answer's usage and finish reason read back the same on every route.
//
// Embeddings, an operation of their own, have their own rows: every embedding route (OpenAI's
// /v1/embeddings, Google's :embedContent and :batchEmbedContents) against every provider that embeds.
// The gateway's model is sent, the caller's inputs in their order and the size asked; the vectors come
// back one per input in order, with the usage, whatever route and provider; what only one dialect's
// models take (Google's task type, OpenAI's token ids) is refused by name by the other's.
//
// A new route surface joins with one row of ROUTES, a new provider dialect with one row of PROVIDERS
// (and, where they embed, of EMBEDDING_ROUTES and EMBEDDERS).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../shared/google-sim/server.ts";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { GatewayError } from "../../supabase/functions/_shared/errors.ts";
import { createAnthropicClient } from "../../supabase/functions/_shared/providers/anthropic/client.ts";
import { createGoogleClient } from "../../supabase/functions/_shared/providers/google/client.ts";
import { createOpenAiClient } from "../../supabase/functions/_shared/providers/openai/client.ts";
import type { Dialect } from "../../supabase/functions/_shared/providers/registry.ts";
import { type FinishReason, hubFinish, type HubRequest } from "../../supabase/functions/_shared/upstream/hub.ts";
import type { GenerateOutcome, UpstreamClient } from "../../supabase/functions/_shared/upstream/port.ts";
import { answerUsage, type InvokeResult } from "../../supabase/functions/llm-invoke/attempt/context.ts";
import {
  DEFAULT_REQUEST_LIMITS,
  type EmbeddingRequest,
  type ModelCapabilities,
  type ModelProfile,
  type NormalizedRequest,
} from "../../supabase/functions/llm-invoke/contract.ts";
import { embedding } from "../../supabase/functions/llm-invoke/embedding/operation.ts";
import { geminiEmbeddingsSurface } from "../../supabase/functions/llm-invoke/surfaces/gemini/embeddings.ts";
import { embeddingsSurface } from "../../supabase/functions/llm-invoke/surfaces/openai/embeddings.ts";
import { adaptToModel } from "../../supabase/functions/llm-invoke/model/adapt.ts";
import { anthropicSurface } from "../../supabase/functions/llm-invoke/surfaces/anthropic.ts";
import { geminiSurface } from "../../supabase/functions/llm-invoke/surfaces/gemini.ts";
import { nativeSurface } from "../../supabase/functions/llm-invoke/surfaces/native.ts";
import { openAiSurface } from "../../supabase/functions/llm-invoke/surfaces/openai.ts";
import type { EmbeddingSurface, Surface } from "../../supabase/functions/llm-invoke/surfaces/shared/surface.ts";

type Json = Record<string, any>;

/** What the caller's own body asks for (more than the gateway allows), and whether it asks to stream. */
interface Asked {
  cap: number;
  thinking: number;
  stream: boolean;
}

/** What a provider received, in the words this suite compares. `thinking`: undefined where its dialect has no budget. */
interface Wire {
  model: string;
  cap: number | undefined;
  stream: boolean;
  thinking: number | undefined;
}

/** How a route's answer says why it ended and what it counted, in the hub's words. */
interface ReadBack {
  finish: FinishReason | string;
  input: number;
  output: number;
}

interface RouteRow {
  name: "native" | "gemini" | "openai" | "anthropic";
  surface: Surface;
  /** The provider dialect whose models are given the caller's body (or its own fields) as it came. */
  own: Dialect;
  /** The caller's body, naming a model the gateway does not send. */
  body(asked: Asked): Json;
  /** What the path says beside the body (Google's routes: the model, the stream). */
  path?: { model: string; stream: boolean };
  /** A field only its provider's models take, and the name a refusal gives it. */
  onlyTheirs: { fields: Json; named: string };
  readBack(answer: Json): ReadBack;
}

const CALLERS_MODEL = "callers-own-name";
const QUESTION = "conformance question";

/** Google's words for a finish, as the native and Gemini routes say them. */
const GOOGLE_FINISH: Record<string, FinishReason> = { STOP: "stop", MAX_TOKENS: "max_tokens" };

const geminiFields = (a: Asked) => ({
  contents: [{ role: "user", parts: [{ text: QUESTION }] }],
  // thinkingLevel is a field the hub has no word for: the whole thinkingConfig rides for Google as given.
  generationConfig: { maxOutputTokens: a.cap, thinkingConfig: { thinkingBudget: a.thinking, thinkingLevel: "HIGH" } },
});

const ROUTES: RouteRow[] = [
  {
    name: "native",
    surface: nativeSurface,
    own: "google",
    body: (a) => ({ model: CALLERS_MODEL, ...geminiFields(a), stream: a.stream }),
    onlyTheirs: { fields: { tools: [{ googleSearch: {} }] }, named: "tools[0].googleSearch" },
    readBack: (b) => ({
      finish: GOOGLE_FINISH[b.finish_reason] ?? b.finish_reason,
      input: b.usage.prompt_tokens,
      output: b.usage.completion_tokens,
    }),
  },
  {
    name: "gemini",
    surface: geminiSurface,
    own: "google",
    body: geminiFields,
    path: { model: CALLERS_MODEL, stream: false },
    onlyTheirs: { fields: { tools: [{ googleSearch: {} }] }, named: "tools[0].googleSearch" },
    readBack: (b) => ({
      finish: GOOGLE_FINISH[b.candidates[0].finishReason] ?? b.candidates[0].finishReason,
      input: b.usageMetadata.promptTokenCount,
      output: b.usageMetadata.candidatesTokenCount + (b.usageMetadata.thoughtsTokenCount ?? 0),
    }),
  },
  {
    name: "openai",
    surface: openAiSurface,
    own: "openai",
    // Chat Completions has no thinking budget (reasoning_effort is a level): the caller asks none.
    body: (a) => ({ model: CALLERS_MODEL, messages: [{ role: "user", content: QUESTION }], max_completion_tokens: a.cap, stream: a.stream }),
    onlyTheirs: { fields: { logprobs: true }, named: "logprobs" },
    readBack: (b) => ({
      finish: ({ stop: "stop", length: "max_tokens" } as Record<string, FinishReason>)[b.choices[0].finish_reason] ??
        b.choices[0].finish_reason,
      input: b.usage.prompt_tokens,
      output: b.usage.completion_tokens,
    }),
  },
  {
    name: "anthropic",
    surface: anthropicSurface,
    own: "anthropic",
    body: (a) => ({
      model: CALLERS_MODEL,
      max_tokens: a.cap,
      thinking: { type: "enabled", budget_tokens: a.thinking },
      messages: [{ role: "user", content: QUESTION }],
      stream: a.stream,
    }),
    onlyTheirs: {
      fields: { tools: [{ type: "web_search_20250305", name: "web_search" }] },
      named: "tools[0]",
    },
    readBack: (b) => ({
      finish: ({ end_turn: "stop", max_tokens: "max_tokens" } as Record<string, FinishReason>)[b.stop_reason] ?? b.stop_reason,
      input: b.usage.input_tokens,
      output: b.usage.output_tokens,
    }),
  },
];

/** A generation call a simulator received: the model and streaming as it was asked for them, its body. */
interface Sent {
  model: string | undefined;
  streamed: boolean;
  body: Json;
}

/** A call whose body names its model and its streaming (OpenAI's and Anthropic's), as a simulator received it. */
const sentInBody = (body: unknown): Sent => ({
  model: (body as Json).model,
  streamed: (body as Json).stream === true,
  body: body as Json,
});

interface ProviderRow {
  dialect: Dialect;
  /** The model id the gateway books and sends (a chain's model, never the caller's name for it). */
  model: string;
  apiKey: string;
  client(): UpstreamClient;
  /** The generation bodies its simulator received since the last reset, with the path's model and method. */
  received(): Sent[];
  wire(r: Sent): Wire;
  /** Its own dialect's body (what a route of its dialect passes through), asking as the caller asks. */
  ownBody(asked: Asked): Json;
}

let google: GoogleSimulator;
let openai: OpenAISimulator;
let anthropic: AnthropicSimulator;

const PROVIDERS: ProviderRow[] = [
  {
    dialect: "google",
    model: "gemini-2.5-flash",
    apiKey: "sim-key-conformance",
    client: () => createGoogleClient({ baseUrl: google.url }),
    received: () =>
      google.stats().recent.filter((r) => r.method === "generateContent" || r.method === "streamGenerateContent")
        .map((r) => ({ model: r.model, streamed: r.method === "streamGenerateContent", body: r.body as Json })),
    wire: ({ model, streamed, body }) => ({
      model: model!,
      cap: body.generationConfig?.maxOutputTokens,
      stream: streamed,
      thinking: body.generationConfig?.thinkingConfig?.thinkingBudget,
    }),
    ownBody: (a) => geminiFields(a),
  },
  {
    dialect: "openai",
    model: "gpt-4o",
    apiKey: "sk-sim-conformance",
    client: () => createOpenAiClient({ baseUrl: openai.url }),
    received: () =>
      openai.stats().recent.filter((r) => r.method === "chat.completions").map((r) => sentInBody(r.body)),
    wire: ({ body }) => ({
      model: body.model,
      cap: body.max_completion_tokens ?? body.max_tokens,
      stream: body.stream === true,
      thinking: undefined,
    }),
    ownBody: (a) => ROUTES.find((r) => r.name === "openai")!.body(a),
  },
  {
    dialect: "anthropic",
    model: "claude-sonnet-4-5-20250929",
    apiKey: "sk-ant-sim-conformance",
    client: () => createAnthropicClient({ baseUrl: anthropic.url }),
    received: () =>
      anthropic.stats().received.filter((r) => r.method === "messages").map((r) => sentInBody(r.body)),
    wire: ({ body }) => ({
      model: body.model,
      cap: body.max_tokens,
      stream: body.stream === true,
      thinking: body.thinking?.budget_tokens,
    }),
    ownBody: (a) => ROUTES.find((r) => r.name === "anthropic")!.body(a),
  },
];

beforeAll(async () => {
  google = await startGoogleSimulator({ keys: { "sim-key-conformance": "proj-conformance" } });
  openai = await startOpenAISimulator({ organizations: { "org-conformance": { keys: ["sk-sim-conformance"] } } });
  anthropic = await startAnthropicSimulator({ organizations: { "org-conformance": { keys: ["sk-ant-sim-conformance"] } } });
});
afterAll(async () => {
  await google?.close();
  await openai?.close();
  await anthropic?.close();
});
beforeEach(() => {
  google.reset();
  openai.reset();
  anthropic.reset();
});

/** What the caller asks: more than the gateway allows, and the other stream than the call's. */
const asked = (stream: boolean): Asked => ({ cap: 4000, thinking: 3000, stream: !stream });

function parse(route: RouteRow, body: Json): NormalizedRequest {
  return route.surface.parse({
    body,
    headers: new Headers(),
    limits: DEFAULT_REQUEST_LIMITS,
    ...(route.path ?? {}),
  });
}

/** The gateway's decisions over a parsed request: its cap and, where given, its thinking budget. */
function decided(request: NormalizedRequest, gateway: { cap: number; thinking?: number }): NormalizedRequest {
  const thinking = gateway.thinking === undefined
    ? request.options.thinking
    : { ...request.options.thinking, budgetTokens: gateway.thinking };
  return {
    ...request,
    options: { ...request.options, maxOutputTokens: gateway.cap, ...(thinking === undefined ? {} : { thinking }) },
  };
}

const capsOf = (p: ProviderRow): ModelCapabilities & { dialect: Dialect } => ({
  model: p.model,
  dialect: p.dialect,
  supportsSystemInstruction: true,
  supportsJsonMode: true,
  supportsTools: true,
});

/** One call as the attempt loop makes it: whole, or streamed to its end. */
async function send(p: ProviderRow, request: HubRequest, stream: boolean): Promise<GenerateOutcome> {
  const call = { apiKey: p.apiKey, request, timeoutMs: 10_000 };
  if (!stream) return await p.client().generate(call);
  const outcome = await p.client().stream(call);
  if (!outcome.ok) return outcome;
  for await (const _ of outcome.chunks) { /* read to the end */ }
  return { ok: true, answer: { outputs: [], usage: null, modelVersion: null, id: null }, latencyMs: outcome.latencyMs };
}

function lastWire(p: ProviderRow): Wire {
  const all = p.received();
  expect(all.length, `${p.dialect} received no generation call`).toBeGreaterThan(0);
  return p.wire(all.at(-1)!);
}

describe.each(ROUTES)("a caller of the $name route", (route) => {
  describe.each(PROVIDERS)("to a $dialect model", (provider) => {
    it.each([false, true])("streamed %s: the gateway's model, output cap, stream and thinking budget are sent, not the caller's", async (stream) => {
      const request = decided(parse(route, route.body(asked(stream))), { cap: 1500, thinking: 1200 });
      const outcome = await send(provider, adaptToModel(capsOf(provider), request), stream);
      expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
      expect(lastWire(provider)).toEqual({
        model: provider.model,
        cap: 1500,
        stream,
        thinking: provider.dialect === "openai" ? undefined : 1200,
      });
    });

    it("a cap the gateway lowered below the caller's thinking budget: the call is taken, cut, and its usage and finish read back the same", async () => {
      // The budget stays the caller's (3000); the cap is 3 tokens: Anthropic's budget must stay below max_tokens.
      const request = decided(parse(route, route.body(asked(false))), { cap: 3 });
      const outcome = await send(provider, adaptToModel(capsOf(provider), request), false);
      expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
      if (!outcome.ok) return;
      const wire = lastWire(provider);
      expect(wire.cap).toBe(3);
      if (wire.thinking !== undefined) expect(provider.dialect === "google" || wire.thinking < wire.cap!).toBe(true);
      expect(hubFinish(outcome.answer)?.reason).toBe("max_tokens");

      const usage = answerUsage(outcome.answer.usage, 0);
      const result: InvokeResult = {
        text: "",
        model: provider.model,
        key_alias: "conformance",
        usage,
        attempts: 1,
        waited_ms: 0,
        hub: outcome.answer,
        ...(outcome.dialectAnswer === undefined ? {} : { dialectAnswer: outcome.dialectAnswer }),
      };
      const answer = route.surface.answer(result, { requestId: "req-conformance", request, now: 1_763_000_000_000 });
      expect(route.readBack(answer.body as Json)).toEqual({
        finish: "max_tokens",
        input: usage.prompt_tokens,
        output: usage.completion_tokens,
      });
    });
  });

  it("what only its own provider's models take is refused by name by every other provider's model, and given to its own", () => {
    const request = parse(route, { ...route.body(asked(false)), ...route.onlyTheirs.fields });
    for (const provider of PROVIDERS) {
      const adapt = () => adaptToModel(capsOf(provider), request);
      if (provider.dialect === route.own) {
        expect(adapt, provider.dialect).not.toThrow();
        continue;
      }
      let refusal: unknown;
      try {
        adapt();
      } catch (error) {
        refusal = error;
      }
      expect(refusal, provider.dialect).toBeInstanceOf(GatewayError);
      const error = refusal as GatewayError;
      expect(error.code).toBe("unsupported_feature");
      expect(error.details?.features).toContain(route.onlyTheirs.named);
      expect(error.message).toContain(route.onlyTheirs.named);
    }
  });
});

describe.each(PROVIDERS)("a $dialect model given its own dialect's body as it came (pass-through)", (provider) => {
  it.each([false, true])("streamed %s: the gateway's model, cap, stream and thinking budget over the body's own", async (stream) => {
    const own = provider.ownBody(asked(stream));
    const request: HubRequest = {
      model: provider.model,
      messages: [{ role: "user", parts: [{ type: "text", text: QUESTION }] }],
      options: { maxOutputTokens: 1500, thinking: { budgetTokens: 1200 } },
      dialectBody: { dialect: provider.dialect, body: own },
    };
    const outcome = await send(provider, request, stream);
    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    expect(lastWire(provider)).toEqual({
      model: provider.model,
      cap: 1500,
      stream,
      thinking: provider.dialect === "openai" ? undefined : 1200,
    });
  });
});

// ---- Embeddings ----------------------------------------------------------------------------------------

const TEXTS = ["first conformance text", "second one", "third, the last"];
const SIZE = 64;

interface EmbeddingRouteRow {
  name: "openai.embeddings" | "gemini.embed";
  surface: EmbeddingSurface;
  /** The caller's body: the texts, the size asked, naming a model the gateway does not send. */
  body(texts: readonly string[], size: number): Json;
  path?: { model: string };
  /** What only one provider's models take, whose (its dialect), and the name a refusal gives it. */
  onlyTheirs: { body: Json; own: Dialect; named: string };
  /** The vectors and the input tokens the answer says, in the hub's words. */
  readBack(answer: Json): { vectors: number[][]; input: number | null };
}

const EMBEDDING_ROUTES: EmbeddingRouteRow[] = [
  {
    name: "openai.embeddings",
    surface: embeddingsSurface,
    body: (texts, size) => ({ model: CALLERS_MODEL, input: [...texts], dimensions: size, encoding_format: "float" }),
    onlyTheirs: { body: { model: CALLERS_MODEL, input: [[1, 2, 3]] }, own: "openai", named: "input" },
    readBack: (b) => ({
      vectors: (b.data as Json[]).sort((x, y) => x.index - y.index).map((d) => d.embedding),
      input: b.usage.prompt_tokens,
    }),
  },
  {
    name: "gemini.embed",
    surface: geminiEmbeddingsSurface,
    path: { model: CALLERS_MODEL },
    body: (texts, size) => ({
      requests: texts.map((text) => ({ model: `models/${CALLERS_MODEL}`, content: { parts: [{ text }] }, outputDimensionality: size })),
    }),
    onlyTheirs: {
      body: { content: { parts: [{ text: "doc" }] }, taskType: "RETRIEVAL_DOCUMENT" },
      own: "google",
      named: "taskType",
    },
    // Google's answer names no token count: the route says none.
    readBack: (b) => ({ vectors: (b.embeddings as Json[]).map((e) => e.values), input: null }),
  },
];

interface EmbedderRow {
  dialect: Dialect;
  model: string;
  apiKey: string;
  dimensions: number;
  countsEachInput: boolean;
  client(): UpstreamClient;
  /** The model, the inputs and the size its simulator received in its last embedding call. */
  lastWire(): { model: string; inputs: unknown[]; size: number | undefined };
}

const EMBEDDERS: EmbedderRow[] = [
  {
    dialect: "google",
    model: "gemini-embedding-001",
    apiKey: "sim-key-conformance",
    dimensions: 3072,
    countsEachInput: true,
    client: () => createGoogleClient({ baseUrl: google.url }),
    lastWire: () => {
      const call = google.stats().recent.filter((r) => r.method === "embedContent" || r.method === "batchEmbedContents").at(-1)!;
      const body = call.body as Json;
      const one: Json[] = call.method === "embedContent" ? [body] : body.requests;
      return {
        model: call.model!,
        inputs: one.map((r) => r.content.parts.map((p: Json) => p.text).join("")),
        size: one[0]!.outputDimensionality,
      };
    },
  },
  {
    dialect: "openai",
    model: "text-embedding-3-small",
    apiKey: "sk-sim-conformance",
    dimensions: 1536,
    countsEachInput: false,
    client: () => createOpenAiClient({ baseUrl: openai.url }),
    lastWire: () => {
      const body = openai.stats().recent.filter((r) => r.method === "embeddings").at(-1)!.body as Json;
      return { model: body.model, inputs: Array.isArray(body.input) ? body.input : [body.input], size: body.dimensions };
    },
  },
];

const embedderProfile = (p: EmbedderRow): ModelProfile => ({
  model: p.model,
  provider: p.dialect,
  dialect: p.dialect,
  active: true,
  fallbackModels: [],
  supportsSystemInstruction: false,
  supportsJsonMode: false,
  supportsTools: false,
  supportsImages: false,
  embedding: { dimensions: p.dimensions, shortenable: true, maxBatch: 100, maxInputTokens: 2048, countsEachInput: p.countsEachInput },
});

function parseEmbedding(route: EmbeddingRouteRow, body: Json): EmbeddingRequest {
  return route.surface.parse({ body, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS, ...(route.path ?? {}) });
}

describe.each(EMBEDDING_ROUTES)("a caller of the $name embedding route", (route) => {
  describe.each(EMBEDDERS)("to a $dialect embedding model", (provider) => {
    it("the gateway's model, the inputs in order and the size asked are sent; the vectors read back one per input, in order", async () => {
      const request = parseEmbedding(route, route.body(TEXTS, SIZE));
      const operation = embedding(request);
      const sent = operation.fit(embedderProfile(provider));
      const outcome = await operation.call(provider.client(), { apiKey: provider.apiKey, request: sent, timeoutMs: 10_000 }, provider.dialect);
      expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
      if (!outcome.ok) return;
      expect(provider.lastWire()).toEqual({ model: provider.model, inputs: TEXTS, size: SIZE });

      const booked = operation.estimate([{ model: provider.model, request: sent, profile: embedderProfile(provider) }]);
      const usage = outcome.usage ?? operation.unsaidUsage(booked);
      const result: InvokeResult = {
        model: provider.model,
        key_alias: "conformance",
        usage: answerUsage(usage, booked),
        attempts: 1,
        waited_ms: 0,
        ...outcome.answer,
      };
      const read = route.readBack(route.surface.answer(result, { requestId: "req-conformance", request, now: 1_763_000_000_000 }).body as Json);
      expect(read.vectors).toEqual(outcome.answer.vectors);
      expect(read.vectors.map((v) => v.length)).toEqual(TEXTS.map(() => SIZE));
      if (read.input !== null) expect(read.input).toBe(usage!.inputTokens);
    });

    it("is booked as its provider counts a batch: one request, or one per input", () => {
      const request = parseEmbedding(route, route.body(TEXTS, SIZE));
      const operation = embedding(request);
      const link = { model: provider.model, request: operation.fit(embedderProfile(provider)), profile: embedderProfile(provider) };
      expect(operation.requests([link])).toBe(provider.countsEachInput ? TEXTS.length : 1);
      expect(operation.answerSize([link])).toEqual({ perModel: [0], tpmOutput: 0 });
    });
  });

  it("what only one provider's models take is refused by name by every other provider's model, and given to its own", () => {
    const request = parseEmbedding(route, route.onlyTheirs.body);
    for (const provider of EMBEDDERS) {
      const fit = () => embedding(request).fit(embedderProfile(provider));
      if (provider.dialect === route.onlyTheirs.own) {
        expect(fit, provider.dialect).not.toThrow();
        continue;
      }
      let refusal: unknown;
      try {
        fit();
      } catch (error) {
        refusal = error;
      }
      expect(refusal, provider.dialect).toBeInstanceOf(GatewayError);
      const error = refusal as GatewayError;
      expect(error.code).toBe("unsupported_feature");
      expect(error.details?.features).toContain(route.onlyTheirs.named);
    }
  });

  it("a model that generates is refused by name: it does not embed", () => {
    const request = parseEmbedding(route, route.body(TEXTS, SIZE));
    const { embedding: _traits, ...generator } = embedderProfile(EMBEDDERS[0]!);
    expect(() => embedding(request).fit({ ...generator, model: "gemini-2.5-flash" })).toThrow("gemini-2.5-flash does not embed");
  });
});
