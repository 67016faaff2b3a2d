// An embedding as the attempt loop runs it: booked as any request's input (the texts' estimate as one
// turn, token ids one each, no output), as many requests as its provider counts, the booked input as its
// usage where the provider counts none, the port's own embed call, and the vectors of an answer stored by
// an earlier release read as they were stored.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import type { HubEmbedRequest } from "../../_shared/upstream/hub.ts";
import type { EmbedCall, UpstreamClient } from "../../_shared/upstream/port.ts";
import type { InvokeResult } from "../attempt/context.ts";
import type { EmbeddingRequest, ModelProfile } from "../contract.ts";
import { estimateInputTokens } from "../model/tokens.ts";
import { embedding, providerRequests, vectorsOf } from "./operation.ts";

const GOOGLE: ModelProfile = {
  model: "gemini-embedding-001",
  provider: "google",
  dialect: "google",
  active: true,
  fallbackModels: [],
  supportsSystemInstruction: false,
  supportsJsonMode: false,
  supportsTools: false,
  supportsImages: false,
  embedding: { dimensions: 3072, shortenable: true, maxBatch: 100, maxInputTokens: 2048, countsEachInput: true },
};
const OPENAI: ModelProfile = {
  ...GOOGLE,
  model: "text-embedding-3-small",
  provider: "openai",
  dialect: "openai",
  embedding: { dimensions: 1536, shortenable: true, maxBatch: 2048, maxInputTokens: 8192, countsEachInput: false },
};

function request(inputs: Array<string | number[]>, more: Partial<EmbeddingRequest> = {}): EmbeddingRequest {
  const tokenIds = inputs.reduce<number>((n, i) => n + (typeof i === "string" ? 0 : i.length), 0);
  return { model: "m", fallbackModels: [], mode: "WAIT", maxWaitMs: 0, metadata: {}, embed: { inputs }, tokenIds, ...more };
}

const link = (profile: ModelProfile, asked: EmbeddingRequest) => ({
  model: profile.model,
  profile,
  request: embedding(asked).fit(profile),
});

describe("an embedding's booking", () => {
  it("its input: the texts' estimate as one turn of any request, token ids one each; no output", () => {
    const texts = ["event 1: a concert in Riga on day 1", "Привет, 21.11.2025 19:00"];
    const asked = request([...texts, [5, 6, 7]]);
    const operation = embedding(asked);
    const asOneTurn = estimateInputTokens({ messages: [{ role: "user", parts: texts.map((text) => ({ type: "text", text })) }] });
    expect(operation.estimate([link(GOOGLE, asked)])).toBe(asOneTurn + 3);
    expect(operation.imageTokens).toBe(0);
    expect(operation.answerSize([link(GOOGLE, asked), link(OPENAI, asked)])).toEqual({ perModel: [0, 0], tpmOutput: 0 });
    // Token ids alone: the request's overhead and the ids.
    expect(embedding(request([[1, 2]])).estimate([])).toBe(estimateInputTokens({ messages: [] }) + 2);
  });

  it("its requests: one per input where a model of its chain counts each, else one", () => {
    const batch = request(["a", "b", "c"]);
    expect(providerRequests([{ profile: GOOGLE }], batch)).toBe(3);
    expect(providerRequests([{ profile: OPENAI }], batch)).toBe(1);
    expect(providerRequests([{ profile: OPENAI }, { profile: GOOGLE }], batch)).toBe(3);
    expect(providerRequests([{ profile: GOOGLE }], request(["one"]))).toBe(1);
  });

  it("its usage where the provider counts none: the input booked, no output", () => {
    expect(embedding(request(["a"])).unsaidUsage(42)).toEqual({
      inputTokens: 42,
      outputTokens: 0,
      thinkingTokens: 0,
      cachedInputTokens: 0,
      totalTokens: 42,
    });
  });
});

describe("an embedding fitted to a model", () => {
  it("its own request: the model's id and what the caller asked, nothing of a generation", () => {
    const asked = request(["a", "b"], { embed: { inputs: ["a", "b"], dimensions: 256, taskType: "RETRIEVAL_QUERY" } });
    expect(embedding(asked).fit(GOOGLE)).toEqual({
      model: "gemini-embedding-001",
      inputs: ["a", "b"],
      dimensions: 256,
      taskType: "RETRIEVAL_QUERY",
    });
  });

  it("token ids reach OpenAI's model (no image rule applies to them), and are refused by name by Google's", () => {
    const ids = request([[1, 2, 3]], {
      only: { dialect: "openai", fields: [{ field: "input", why: "token ids are OpenAI's models' only" }] },
    });
    expect(embedding(ids).fit(OPENAI)).toEqual({ model: "text-embedding-3-small", inputs: [[1, 2, 3]] });
    expect(() => embedding(ids).fit(GOOGLE)).toThrow(/Not supported by gemini-embedding-001: input/);
  });

  it("refuses by name a model that does not embed, a size it cannot give, a batch its provider cannot take", () => {
    const { embedding: _traits, ...generator } = GOOGLE;
    const codeOf = (fit: () => unknown) => {
      try {
        fit();
      } catch (error) {
        return [(error as GatewayError).code, (error as GatewayError).details];
      }
      return null;
    };
    expect(codeOf(() => embedding(request(["a"])).fit({ ...generator, model: "gemini-2.5-flash" })))
      .toEqual(["unsupported_feature", { model: "gemini-2.5-flash", feature: "embeddings" }]);
    expect(codeOf(() => embedding(request(["a"], { embed: { inputs: ["a"], dimensions: 4096 } })).fit(OPENAI)))
      .toEqual(["invalid_request", { model: "text-embedding-3-small", field: "dimensions" }]);
    const many = Array.from({ length: 101 }, (_, i) => `t${i}`);
    expect(codeOf(() => embedding(request(many)).fit(GOOGLE)))
      .toEqual(["invalid_request", { model: "gemini-embedding-001", field: "input", max_batch: 100, inputs: 101 }]);
  });
});

describe("an embedding's call", () => {
  const call = { apiKey: "k", request: { model: "m", inputs: ["a"] } as HubEmbedRequest, timeoutMs: 1000 };

  it("is the port's own embed: its vectors answered, its usage as the provider counted it", async () => {
    const asked: EmbedCall[] = [];
    const client = {
      embed: (c: EmbedCall) => {
        asked.push(c);
        return Promise.resolve({ ok: true as const, latencyMs: 7, answer: { vectors: [[0.5, 0.5]], usage: null, modelVersion: null } });
      },
    } as unknown as UpstreamClient;
    const outcome = await embedding(request(["a"])).call(client, call, "Google");
    expect(asked).toEqual([call]);
    expect(outcome).toEqual({ ok: true, latencyMs: 7, usage: null, answer: { text: "", vectors: [[0.5, 0.5]] } });
  });

  it("a provider with no embeddings: refused by name, nothing called", async () => {
    const error = await embedding(request(["a"])).call({} as UpstreamClient, call, "Anthropic").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).message).toBe("Anthropic has no embeddings.");
  });
});

describe("an answer's vectors", () => {
  const base: InvokeResult = { text: "", model: "m", key_alias: "k", usage: { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 }, attempts: 1, waited_ms: 0 };

  it("are its own, or, stored by an earlier release, its hub answer's", () => {
    expect(vectorsOf({ ...base, vectors: [[1], [2]] })).toEqual([[1], [2]]);
    const stored = { ...base, hub: { outputs: [], usage: null, modelVersion: null, id: null, embeddings: [[3]] } };
    expect(vectorsOf(stored as InvokeResult)).toEqual([[3]]);
    expect(vectorsOf(base)).toEqual([]);
  });
});
