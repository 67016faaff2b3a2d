import { describe, expect, it } from "vitest";
import { ERROR_STATUS, type ErrorCode, GatewayError, rateLimited } from "../../_shared/errors.ts";
import { DEFAULT_REQUEST_LIMITS } from "../contract.ts";
import { type GeminiAnswer, hubAnswerOf } from "../../_shared/providers/google/answer.ts";
import type { HubChunk } from "../../_shared/upstream/hub.ts";
import type { InvokeResult, InvokeStream } from "../attempt/context.ts";
import { imageTokens } from "../model/images.ts";
import { MAX_PARTS } from "./shared/request-rules.ts";
import {
  countTokensAnswer,
  geminiJsonArrayStream,
  geminiModel,
  geminiModels,
  geminiSurface,
  GOOGLE_STATUS,
  parseCountTokens,
  retryDelay,
} from "./gemini.ts";
import type { SurfaceContext } from "./shared/surface.ts";
import { base64, png } from "../../../../tests/support/image-bytes.ts";
import { modelEntry } from "../../../../tests/support/model-entry.ts";
import { refusal } from "../../../../tests/support/refusal.ts";
import { withGoogleView } from "./gemini/test-fixtures.ts";

const limits = DEFAULT_REQUEST_LIMITS;

function parse(body: unknown, headers: Record<string, string> = {}, model = "gemini-2.5-flash", stream = false) {
  return withGoogleView(geminiSurface.parse({ body, headers: new Headers(headers), limits, model, stream }));
}

describe("geminiSurface.parse: Google's GenerateContentRequest", () => {
  const camel = {
    contents: [{ role: "user", parts: [{ text: "Hi" }] }],
    systemInstruction: { parts: [{ text: "Be brief." }, { text: "Answer in Russian." }] },
    generationConfig: {
      maxOutputTokens: 64,
      responseMimeType: "application/json",
      thinkingConfig: { thinkingBudget: 0 },
    },
    safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
    tools: [{ functionDeclarations: [{ name: "now" }] }],
    toolConfig: { functionCallingConfig: { mode: "AUTO" } },
  };

  it("reads a camelCase body into the request the gateway runs, with the native defaults", () => {
    const r = parse(camel);
    expect(r.asks).toEqual({
      json: { feature: "responseMimeType", words: "responseMimeType application/json" },
      tools: { feature: "tools", words: "tools (function calling)" },
    });
    expect(r).toMatchObject(
      {
        model: "gemini-2.5-flash",
        contents: [{ role: "user", parts: [{ text: "Hi" }] }],
        system: "Be brief.\n\nAnswer in Russian.",
        generationConfig: {
          maxOutputTokens: 64,
          responseMimeType: "application/json",
          thinkingConfig: { thinkingBudget: 0 },
        },
        extras: { tools: camel.tools, toolConfig: camel.toolConfig, safetySettings: camel.safetySettings },
        imageTokens: 0,
        stream: false,
        mode: "WAIT",
        maxWaitMs: limits.defaultMaxWaitMs,
        metadata: {},
      },
    );
  });

  it("reads the same body in snake_case (top level, generationConfig, thinkingConfig) to the same request", () => {
    const snake = {
      contents: camel.contents,
      system_instruction: { parts: [{ text: "Be brief." }, { text: "Answer in Russian." }] },
      generation_config: {
        max_output_tokens: 64,
        response_mime_type: "application/json",
        thinking_config: { thinking_budget: 0 },
      },
      safety_settings: camel.safetySettings,
      tools: camel.tools,
      tool_config: camel.toolConfig,
    };
    expect(parse(snake)).toEqual(parse(camel));
  });

  it("refuses a field given in both spellings, since which one counts would be a guess", () => {
    const e = refusal(() => parse({ contents: camel.contents, generationConfig: {}, generation_config: {} }));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toContain("generationConfig");
  });

  it("names safety settings Google's REST client sent as enum numbers", () => {
    const r = parse({ contents: camel.contents, safetySettings: [{ category: 7, threshold: 4 }] });
    expect(r.extras.safetySettings).toEqual([{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }]);
  });

  it("takes the model from the path (models/ optional), the stream flag from the route and options from x-eve-* headers", () => {
    const r = parse(
      { contents: camel.contents, model: "models/gemini-2.5-flash" },
      {
        "x-eve-mode": "NO_WAIT",
        "x-eve-request-id": "job-42",
        "x-eve-priority": "batch",
        "x-eve-fallback-models": "models/gemini-2.0-flash, gemma-3-27b-it",
      },
      "models/gemini-2.5-flash",
      true,
    );
    expect(r).toMatchObject({
      model: "gemini-2.5-flash",
      stream: true,
      mode: "NO_WAIT",
      maxWaitMs: 0,
      requestId: "job-42",
      priority: "batch",
      fallbackModels: ["gemini-2.0-flash", "gemma-3-27b-it"],
    });
  });

  it("refuses a body model other than the path's, and a fallback that repeats the path's model", () => {
    expect(refusal(() => parse({ contents: camel.contents, model: "models/gemma-3-27b-it" })).code).toBe(
      "invalid_request",
    );
    const e = refusal(() => parse({ contents: camel.contents }, { "x-eve-fallback-models": "gemini-2.5-flash" }));
    expect(e.details).toMatchObject({ header: "x-eve-fallback-models" });
  });

  it("accepts the system instruction as a string or as text parts; blank is none", () => {
    expect(parse({ contents: camel.contents, systemInstruction: "Be brief." }).system).toBe("Be brief.");
    expect(parse({ contents: camel.contents, systemInstruction: { role: "system", parts: [{ text: "A" }] } }).system)
      .toBe("A");
    expect(parse({ contents: camel.contents, systemInstruction: { parts: [{ text: "  " }] } }).system).toBeUndefined();
  });

  it("refuses a system instruction with a part other than text", () => {
    const e = refusal(() =>
      parse({
        contents: camel.contents,
        systemInstruction: { parts: [{ inlineData: { mimeType: "image/png", data: base64(png(8, 8)) } }] },
      })
    );
    expect(e.code).toBe("unsupported_feature");
    expect(e.details).toMatchObject({ field: "systemInstruction.parts[0]" });
  });

  it("reads images given as inline_data (snake_case) and books their tokens", () => {
    const r = parse({
      contents: [{
        role: "user",
        parts: [{ text: "What is this?" }, { inline_data: { mime_type: "image/png", data: base64(png(1024, 768)) } }, {
          inlineData: { mimeType: "image/png", data: base64(png(200, 100)) },
        }],
      }],
    });
    expect(r.contents[0]!.parts[1]).toEqual({ inlineData: { mimeType: "image/png", data: base64(png(1024, 768)) } });
    expect(r.imageTokens).toBe(imageTokens(1024, 768) + imageTokens(200, 100));
    expect(r.imageTokens).toBeGreaterThan(0);
  });

  it("refuses cachedContent and fileData, which live in one Google project, as unsupported_feature", () => {
    const cached = refusal(() => parse({ contents: camel.contents, cached_content: "cachedContents/abc" }));
    expect(cached.code).toBe("unsupported_feature");
    expect(cached.message).toContain("one Google project");
    const file = refusal(() =>
      parse({ contents: [{ parts: [{ file_data: { mime_type: "image/png", file_uri: "https://x/files/1" } }] }] })
    );
    expect(file.code).toBe("unsupported_feature");
  });

  it("refuses an unknown top-level field by name, as Google does, and ignores Google's billing fields", () => {
    const e = refusal(() => parse({ contents: camel.contents, temperature: 0.2 }));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toContain('Unknown name "temperature"');
    expect(parse({ contents: camel.contents, labels: { team: "x" }, service_tier: "standard", store: false }).model)
      .toBe("gemini-2.5-flash");
  });

  it("takes the caller's serviceTier (as @google/genai writes it) to be checked within its class", () => {
    expect(parse({ contents: camel.contents, serviceTier: "flex" }).serviceTier).toBe("flex");
    expect(parse({ contents: camel.contents, service_tier: "priority" }).serviceTier).toBe("priority");
    expect(parse({ contents: camel.contents, serviceTier: "unspecified" }).serviceTier).toBeUndefined();
    const e = refusal(() => parse({ contents: camel.contents, serviceTier: "turbo" }));
    expect(e.code).toBe("invalid_request");
    expect(e.details).toMatchObject({ field: "serviceTier" });
  });

  it("checks generationConfig by the native rules, passing unknown fields through, with the field's path", () => {
    const e = refusal(() => parse({ contents: camel.contents, generationConfig: { temperature: 5 } }));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toMatch(/^generationConfig\.temperature/);
    expect(parse({ contents: camel.contents, generationConfig: { responseModalities: ["TEXT"] } }).generationConfig)
      .toEqual({ responseModalities: ["TEXT"] });
  });

  it("refuses more parts over all turns than the native route allows, before reading any of them", () => {
    const turns = Array.from({ length: MAX_PARTS + 1 }, () => ({ parts: [{ bogus: true }] }));
    const e = refusal(() => parse({ contents: turns }));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toContain(`the limit is ${MAX_PARTS}`);
    expect(parse({ contents: Array.from({ length: MAX_PARTS }, () => ({ parts: [{ text: "x" }] })) }).contents)
      .toHaveLength(MAX_PARTS);
  });

  it("refuses a body without contents, a body that is not an object, and a path without a model", () => {
    expect(refusal(() => parse({ generationConfig: {} })).code).toBe("empty_input");
    expect(refusal(() => parse([1])).code).toBe("invalid_json");
    expect(refusal(() => parse({ contents: camel.contents }, {}, "")).code).toBe("invalid_request");
  });
});

// ---- answers and errors ---------------------------------------------------------------------------------

const googleAnswer: GeminiAnswer = {
  candidates: [{ content: { role: "model", parts: [{ text: "Привет" }] }, finishReason: "STOP", index: 0 }],
  usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 },
  modelVersion: "gemini-2.5-flash",
  responseId: "abc",
};

const result: InvokeResult = {
  text: "Привет",
  model: "gemini-2.5-flash",
  key_alias: "k1",
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  attempts: 1,
  waited_ms: 0,
  hub: hubAnswerOf(googleAnswer),
  dialectAnswer: { dialect: "google", body: googleAnswer },
};

describe("geminiSurface.answer", () => {
  it("is Google's answer exactly as Google sent it, sent as is", () => {
    expect(geminiSurface.answer(result, ctx()).body).toBe(googleAnswer);
  });

  it("says another provider's answer (the hub's) in Google's words", () => {
    const { dialectAnswer: _own, ...served } = result;
    expect(geminiSurface.answer({ ...served, provider: "openai" }, ctx())).toEqual({ body: googleAnswer, asIs: true });
  });
});

describe("geminiSurface.error: Google's error shape", () => {
  it("says a 429 with RetryInfo equal to the gateway's exact wait and the stable code in ErrorInfo", () => {
    const answer = geminiSurface.error(rateLimited("tpm", 3500), "req-1");
    expect(answer.body).toEqual({
      error: {
        code: 429,
        message: "No capacity for this model now (limit: tpm); retry in 3500 ms.",
        status: "RESOURCE_EXHAUSTED",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "RATE_LIMITED",
            domain: "eve-llm-gateway",
            metadata: { code: "rate_limited", request_id: "req-1", limit: "tpm" },
          },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "3.5s" },
        ],
      },
    });
  });

  it("writes the wait as a Duration to the millisecond, never rounded", () => {
    expect(retryDelay(3500)).toBe("3.5s");
    expect(retryDelay(61_000)).toBe("61s");
    expect(retryDelay(1)).toBe("0.001s");
    expect(retryDelay(1050)).toBe("1.05s");
    expect(retryDelay(0)).toBe("0s");
    const body = geminiSurface.error(rateLimited("rpm", 61_000), "r").body as { error: { details: unknown[] } };
    expect(body.error.details).toContainEqual({
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: "61s",
    });
  });

  it("leaves RetryInfo out when the wait is not known", () => {
    const body = geminiSurface.error(rateLimited("rpd", null), "r").body as {
      error: { details: Array<Record<string, unknown>> };
    };
    expect(body.error.details.map((d) => d["@type"])).toEqual(["type.googleapis.com/google.rpc.ErrorInfo"]);
  });

  it("names the field of a bad request in BadRequest", () => {
    const e = refusal(() => parse({ contents: [{ role: "system", parts: [{ text: "x" }] }] }));
    const body = geminiSurface.error(e, "r").body as { error: { details: unknown[] } };
    expect(body.error.details).toContainEqual({
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      fieldViolations: [{ field: "contents[0].role", description: e.message }],
    });
  });

  it("gives every error code its HTTP status and a canonical status (a new code cannot be forgotten)", () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      const body = geminiSurface.error(new GatewayError(code as ErrorCode, "m"), "r").body as {
        error: { code: number; status: string; details: Array<{ reason?: string }> };
      };
      expect(body.error.code, code).toBe(status);
      expect(GOOGLE_STATUS[status], `${code} (${status})`).toBeDefined();
      expect(body.error.status, code).toBe(GOOGLE_STATUS[status]);
      expect(body.error.details[0]!.reason).toBe(code.toUpperCase());
    }
    const statusOf = (code: ErrorCode) =>
      (geminiSurface.error(new GatewayError(code, "m"), "r").body as { error: { status: string } }).error.status;
    expect(statusOf("unauthorized")).toBe("UNAUTHENTICATED");
    expect(statusOf("model_not_allowed")).toBe("PERMISSION_DENIED");
    expect(statusOf("not_found")).toBe("NOT_FOUND");
    expect(statusOf("method_not_allowed")).toBe("UNIMPLEMENTED");
    expect(statusOf("body_too_large")).toBe("INVALID_ARGUMENT");
    expect(statusOf("upstream_timeout")).toBe("DEADLINE_EXCEEDED");
  });
});

// ---- streams --------------------------------------------------------------------------------------------

function ctx(): SurfaceContext {
  return { requestId: "req-s", request: parse({ contents: [{ parts: [{ text: "Hi" }] }] }), now: 0 };
}

const chunks: GeminiAnswer[] = [
  {
    candidates: [{ content: { role: "model", parts: [{ text: "При" }] }, index: 0 }],
    modelVersion: "gemini-2.5-flash",
  },
  {
    candidates: [{ content: { role: "model", parts: [{ text: "вет" }] }, finishReason: "STOP", index: 0 }],
    usageMetadata: { totalTokenCount: 5 },
  },
];

function fakeStream(items: GeminiAnswer[], failWith?: Error, stopped?: { value: boolean }): InvokeStream {
  async function* gen(): AsyncGenerator<HubChunk, void, undefined> {
    try {
      for (const body of items) yield { answer: hubAnswerOf(body), own: { dialect: "google", body } };
      if (failWith !== undefined) throw failWith;
    } finally {
      if (stopped !== undefined) stopped.value = true;
    }
  }
  return {
    kind: "stream",
    chunks: gen(),
    cancel: () => Promise.resolve(),
    result: () => result,
    model: "gemini-2.5-flash",
    key_alias: "k1",
    attempts: 1,
    waited_ms: 0,
  };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

describe("geminiSurface.stream: Google's server-sent events", () => {
  it("writes each chunk exactly as Google sent it, framed with CRLF as Google frames it", async () => {
    const answer = geminiSurface.stream(fakeStream(chunks), ctx());
    expect(answer.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(await readAll(answer.stream)).toBe(chunks.map((c) => `data: ${JSON.stringify(c)}\r\n\r\n`).join(""));
  });

  it("says an error mid-stream as one last frame in Google's error shape, then ends", async () => {
    const text = await readAll(
      geminiSurface.stream(
        fakeStream(chunks.slice(0, 1), new GatewayError("upstream_error", "Google broke off.")),
        ctx(),
      ).stream,
    );
    const frames = text.split("\r\n\r\n").filter((f) => f !== "").map((f) => JSON.parse(f.replace(/^data: /, "")));
    expect(frames).toHaveLength(2);
    expect(frames[0]).toEqual(chunks[0]);
    expect(frames[1].error).toMatchObject({ code: 502, message: "Google broke off.", status: "UNAVAILABLE" });
    expect(frames[1].error.details[0].metadata).toEqual({ code: "upstream_error", request_id: "req-s" });
  });

  it("sends a replayed answer as one chunk: Google's whole answer", async () => {
    const text = await readAll(geminiSurface.stream({ ...result, replayed: true }, ctx()).stream);
    expect(text).toBe(`data: ${JSON.stringify(googleAnswer)}\r\n\r\n`);
  });

  it("stops the chunks (and so the call to Google) when the caller goes away", async () => {
    const stopped = { value: false };
    const reader = geminiSurface.stream(fakeStream(chunks, undefined, stopped), ctx()).stream.getReader();
    await reader.read();
    await reader.cancel();
    expect(stopped.value).toBe(true);
  });

  it("writes the JSON-array form (no alt=sse) as one array of Google's chunks, an error as its last item", async () => {
    expect(JSON.parse(await readAll(geminiJsonArrayStream(fakeStream(chunks), ctx()).stream))).toEqual(chunks);
    const broken = JSON.parse(
      await readAll(geminiJsonArrayStream(fakeStream(chunks.slice(0, 1), rateLimited("rpm", 1000)), ctx()).stream),
    );
    expect(broken[0]).toEqual(chunks[0]);
    expect(broken[1].error.status).toBe("RESOURCE_EXHAUSTED");
  });
});

// ---- models ---------------------------------------------------------------------------------------------

const entry = modelEntry;

const models = [
  entry("gemini-2.5-flash", ["flash"], {
    displayName: "Gemini 2.5 Flash",
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    rpm: 10,
    tpm: 250_000,
    rpd: 250,
  }),
  entry("gemma-3-27b-it", []),
  entry("gemini-2.0-flash", ["flash-2", "old-flash"], { rpm: 15 }),
];

describe("geminiModels / geminiModel: Google's Model resources", () => {
  it("lists each model and each alias as its own entry, in Google's Model shape, unknown limits left out", () => {
    const { models: listed, nextPageToken } = geminiModels(models);
    expect(listed.map((m) => m.name)).toEqual([
      "models/gemini-2.5-flash",
      "models/flash",
      "models/gemma-3-27b-it",
      "models/gemini-2.0-flash",
      "models/flash-2",
      "models/old-flash",
    ]);
    expect(nextPageToken).toBeUndefined();
    expect(listed[0]).toEqual({
      name: "models/gemini-2.5-flash",
      baseModelId: "gemini-2.5-flash",
      displayName: "Gemini 2.5 Flash",
      description: "Served through EVE LLM Gateway within RPM 10, TPM 250000, RPD 250 shared by all its callers.",
      inputTokenLimit: 1_048_576,
      outputTokenLimit: 65_536,
      supportedGenerationMethods: ["generateContent", "streamGenerateContent", "countTokens"],
    });
    expect(listed[1]!.description).toMatch(/^Alias of models\/gemini-2\.5-flash\. /);
    expect(listed[2]).not.toHaveProperty("inputTokenLimit");
    expect(listed[2]!.displayName).toBe("gemma-3-27b-it");
  });

  it("pages with pageSize and the nextPageToken it gave, until every entry was listed once", () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = geminiModels(models, 4, token);
      seen.push(...page.models.map((m) => m.name));
      token = page.nextPageToken;
      pages += 1;
    } while (token !== undefined);
    expect(pages).toBe(2);
    expect(seen).toEqual(geminiModels(models).models.map((m) => m.name));
  });

  it("refuses a page token it did not give and a negative or fractional page size", () => {
    expect(refusal(() => geminiModels(models, 2, "abc")).code).toBe("invalid_request");
    expect(refusal(() => geminiModels(models, 2, "999")).code).toBe("invalid_request");
    expect(refusal(() => geminiModels(models, -1)).code).toBe("invalid_request");
    expect(refusal(() => geminiModels(models, 1.5)).code).toBe("invalid_request");
  });

  it("gets a model by id or alias (models/ optional); an unknown one is 404 in Google's shape", () => {
    expect(geminiModel(models, "models/flash-2")).toMatchObject({
      name: "models/flash-2",
      baseModelId: "gemini-2.0-flash",
    });
    expect(geminiModel(models, "gemini-2.5-flash").name).toBe("models/gemini-2.5-flash");
    const e = refusal(() => geminiModel(models, "models/gpt-4"));
    expect(e.code).toBe("not_found");
    expect(geminiSurface.error(e, "r").body).toMatchObject({ error: { code: 404, status: "NOT_FOUND" } });
  });
});

// ---- countTokens ----------------------------------------------------------------------------------------

describe("parseCountTokens / countTokensAnswer", () => {
  const contents = [{ role: "user", parts: [{ text: "How many tokens?" }] }];

  it("reads {contents} as the request the gateway would run", () => {
    const r = withGoogleView(parseCountTokens({ contents }, "models/gemini-2.5-flash", limits));
    expect(r).toMatchObject({ model: "gemini-2.5-flash", contents, stream: false, imageTokens: 0 });
    expect(r.system).toBeUndefined();
  });

  it("reads {generateContentRequest} with its system instruction, tools and config (snake_case too)", () => {
    const r = withGoogleView(parseCountTokens(
      {
        generate_content_request: {
          model: "models/gemini-2.5-flash",
          contents,
          system_instruction: { parts: [{ text: "Be brief." }] },
          tools: [{ function_declarations: [{ name: "now" }] }],
          generation_config: { max_output_tokens: 10 },
        },
      },
      "gemini-2.5-flash",
      limits,
    ));
    expect(r).toMatchObject({
      model: "gemini-2.5-flash",
      contents,
      system: "Be brief.",
      extras: { tools: [{ function_declarations: [{ name: "now" }] }] },
      generationConfig: { maxOutputTokens: 10 },
    });
  });

  it("refuses both forms at once, neither, another model, and names fields inside generateContentRequest", () => {
    expect(refusal(() => parseCountTokens({ contents, generateContentRequest: { contents } }, "m", limits)).code)
      .toBe("invalid_request");
    expect(refusal(() => parseCountTokens({}, "m", limits)).code).toBe("empty_input");
    expect(
      refusal(() => parseCountTokens({ generateContentRequest: { model: "models/other", contents } }, "m", limits))
        .code,
    )
      .toBe("invalid_request");
    const e = refusal(() =>
      parseCountTokens({ generateContentRequest: { contents, generationConfig: { topP: 3 } } }, "m", limits)
    );
    expect(e.message).toMatch(/^generateContentRequest\.generationConfig\.topP/);
    expect(
      refusal(() => parseCountTokens({ generateContentRequest: { contents, cachedContent: "c" } }, "m", limits)).code,
    )
      .toBe("unsupported_feature");
  });

  it("answers Google's countTokens shape", () => {
    expect(countTokensAnswer(42)).toEqual({ totalTokens: 42 });
  });
});
