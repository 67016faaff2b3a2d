import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../_shared/errors.ts";
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from "../../contract.ts";
import { parseInvokeRequest as parseRequest } from "./request.ts";
import { withGoogleView } from "../gemini/test-fixtures.ts";

/** The request, with what Google's translation sends of it beside (its contents, generationConfig, extras). */
const parseInvokeRequest = (body: unknown, limits?: RequestLimits) => withGoogleView(parseRequest(body, limits));

function codeOf(body: unknown): string {
  try {
    parseInvokeRequest(body);
  } catch (e) {
    if (e instanceof GatewayError) return e.code;
    throw e;
  }
  return "ok";
}

describe("parseInvokeRequest: normalization", () => {
  it("turns a prompt into one user turn with defaults", () => {
    const r = parseInvokeRequest({ model: "gemma-3-27b-it", prompt: "Привет" });
    expect(r.messages).toEqual([{ role: "user", parts: [{ type: "text", text: "Привет" }] }]);
    expect(r.options).toEqual({});
    expect(r.asks).toEqual({});
    expect(r).toMatchObject({
      model: "gemma-3-27b-it",
      contents: [{ role: "user", parts: [{ text: "Привет" }] }],
      generationConfig: {},
      extras: {},
      imageTokens: 0,
      stream: false,
      mode: "WAIT",
      maxWaitMs: DEFAULT_REQUEST_LIMITS.defaultMaxWaitMs,
      metadata: {},
      includeCandidates: false,
    });
  });

  it("maps chat messages to Gemini roles and lifts system messages out", () => {
    const r = parseInvokeRequest({
      model: "gemini-2.5-flash",
      system: "Be brief.",
      messages: [
        { role: "system", content: "Answer in Russian." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Привет" },
        { role: "user", content: "Weather?" },
      ],
    });
    expect(r.system).toBe("Be brief.\n\nAnswer in Russian.");
    expect(r.contents).toEqual([
      { role: "user", parts: [{ text: "Hi" }] },
      { role: "model", parts: [{ text: "Привет" }] },
      { role: "user", parts: [{ text: "Weather?" }] },
    ]);
  });

  it("accepts native contents, defaulting a missing role to user", () => {
    const r = parseInvokeRequest({
      model: "gemma-3-27b-it",
      contents: [{ parts: [{ text: "a" }, { text: "b" }] }, { role: "model", parts: [{ text: "c" }] }],
    });
    expect(r.contents).toEqual([
      { role: "user", parts: [{ text: "a" }, { text: "b" }] },
      { role: "model", parts: [{ text: "c" }] },
    ]);
  });

  it("strips a models/ prefix from the model id", () => {
    expect(parseInvokeRequest({ model: "models/gemma-3-27b", prompt: "x" }).model).toBe("gemma-3-27b");
  });

  it("keeps generationConfig, request_id, metadata and include_candidates", () => {
    const r = parseInvokeRequest({
      model: "gemini-2.5-flash",
      prompt: "x",
      generationConfig: { temperature: 0.2, maxOutputTokens: 256, stopSequences: ["END"] },
      request_id: "bot:42.a-b_c",
      metadata: { chat_id: 1, stage: "digest" },
      include_candidates: true,
    });
    expect(r.generationConfig).toEqual({ temperature: 0.2, maxOutputTokens: 256, stopSequences: ["END"] });
    expect(r.requestId).toBe("bot:42.a-b_c");
    expect(r.metadata).toEqual({ chat_id: 1, stage: "digest" });
    expect(r.includeCandidates).toBe(true);
  });

  it("caps max_wait_ms at the budget and forces 0 for NO_WAIT", () => {
    const limits = { ...DEFAULT_REQUEST_LIMITS, maxWaitBudgetMs: 5000 };
    expect(parseInvokeRequest({ model: "m", prompt: "x", max_wait_ms: 999_999 }, limits).maxWaitMs).toBe(5000);
    expect(parseInvokeRequest({ model: "m", prompt: "x", max_wait_ms: 1200 }, limits).maxWaitMs).toBe(1200);
    const noWait = parseInvokeRequest({ model: "m", prompt: "x", mode: "NO_WAIT", max_wait_ms: 1200 }, limits);
    expect(noWait).toMatchObject({ mode: "NO_WAIT", maxWaitMs: 0 });
  });
});

describe("parseInvokeRequest: rejections", () => {
  it.each<[string, unknown, string]>([
    ["a non-object body", ["prompt"], "invalid_json"],
    ["null", null, "invalid_json"],
    ["no input", { model: "m" }, "empty_input"],
    ["an empty prompt", { model: "m", prompt: "  \n" }, "empty_input"],
    ["empty messages", { model: "m", messages: [] }, "empty_input"],
    ["only a system message", { model: "m", messages: [{ role: "system", content: "x" }] }, "empty_input"],
    ["an empty user message", { model: "m", messages: [{ role: "user", content: "" }] }, "empty_input"],
    ["empty contents", { model: "m", contents: [] }, "empty_input"],
    ["contents without text", { model: "m", contents: [{ parts: [{ text: " " }] }] }, "empty_input"],
    ["two inputs", { model: "m", prompt: "x", messages: [{ role: "user", content: "y" }] }, "invalid_request"],
    ["a missing model", { prompt: "x" }, "invalid_request"],
    ["a model with a path", { model: "../../etc/passwd", prompt: "x" }, "invalid_request"],
    ["a model with SQL", { model: "gemma'; drop table x;--", prompt: "x" }, "invalid_request"],
    ["an unknown key", { model: "m", prompt: "x", temperature: 1 }, "invalid_request"],
    ["a wrong type", { model: "m", prompt: 42 }, "invalid_request"],
    ["an unknown role", { model: "m", messages: [{ role: "tool", content: "x" }] }, "invalid_request"],
    ["a bad mode", { model: "m", prompt: "x", mode: "later" }, "invalid_request"],
    ["a negative wait", { model: "m", prompt: "x", max_wait_ms: -1 }, "invalid_request"],
    ["a fractional wait", { model: "m", prompt: "x", max_wait_ms: 1.5 }, "invalid_request"],
    ["a bad request_id", { model: "m", prompt: "x", request_id: "a b<script>" }, "invalid_request"],
    ["a long request_id", { model: "m", prompt: "x", request_id: "a".repeat(129) }, "invalid_request"],
    ["a temperature of 5", { model: "m", prompt: "x", generationConfig: { temperature: 5 } }, "invalid_request"],
    ["a fractional seed", { model: "m", prompt: "x", generationConfig: { seed: 1.5 } }, "invalid_request"],
    ["both response schemas", {
      model: "m",
      prompt: "x",
      generationConfig: { responseSchema: { type: "OBJECT" }, responseJsonSchema: { type: "object" } },
    }, "invalid_request"],
    ["six stop sequences", {
      model: "m",
      prompt: "x",
      generationConfig: { stopSequences: ["a", "b", "c", "d", "e", "f"] },
    }, "invalid_request"],
    ["metadata as an array", { model: "m", prompt: "x", metadata: [1] }, "invalid_request"],
    ["huge metadata", { model: "m", prompt: "x", metadata: { blob: "x".repeat(5000) } }, "invalid_request"],
    [
      "an empty image",
      { model: "m", contents: [{ parts: [{ inlineData: { mimeType: "image/png", data: "" } }] }] },
      "invalid_image",
    ],
    [
      "a GIF",
      { model: "m", contents: [{ parts: [{ inlineData: { mimeType: "image/gif", data: "R0lGODlh" } }] }] },
      "unsupported_feature",
    ],
    [
      "a file bound to one Google project",
      { model: "m", contents: [{ parts: [{ fileData: { mimeType: "image/png", fileUri: "files/abc" } }] }] },
      "unsupported_feature",
    ],
    [
      "a part of no known kind",
      { model: "m", contents: [{ parts: [{ executableCode: { code: "x" } }] }] },
      "unsupported_feature",
    ],
    [
      "a part of two kinds",
      { model: "m", contents: [{ parts: [{ text: "x", functionCall: { name: "f" } }] }] },
      "invalid_request",
    ],
    [
      "a function call without a name",
      { model: "m", contents: [{ parts: [{ functionCall: { args: {} } }] }] },
      "invalid_request",
    ],
  ])("rejects %s", (_name, body, code) => {
    expect(codeOf(body)).toBe(code);
  });

  it("forwards the full Gemini request: any generationConfig field, tools, safety settings, function turns", () => {
    const tools = [{ functionDeclarations: [{ name: "lookup", parametersJsonSchema: { type: "object" } }] }];
    const r = parseInvokeRequest({
      model: "gemini-2.5-flash",
      contents: [
        { role: "user", parts: [{ text: "weather?" }] },
        { role: "model", parts: [{ functionCall: { name: "lookup", args: { city: "Riga" } } }] },
        { role: "user", parts: [{ function_response: { name: "lookup", response: { t: 3 } } }] },
      ],
      generationConfig: { seed: 7, thinkingConfig: { thinkingBudget: 0 }, mediaResolution: "MEDIA_RESOLUTION_LOW" },
      tools,
      toolConfig: { functionCallingConfig: { mode: "AUTO" } },
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
      stream: true,
    });
    expect(r.generationConfig).toEqual({
      seed: 7,
      thinkingConfig: { thinkingBudget: 0 },
      mediaResolution: "MEDIA_RESOLUTION_LOW",
    });
    expect(r.extras).toEqual({
      tools,
      toolConfig: { functionCallingConfig: { mode: "AUTO" } },
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
    });
    // snake_case part names become Google's camelCase.
    expect(r.contents[2]!.parts[0]).toEqual({ functionResponse: { name: "lookup", response: { t: 3 } } });
    expect(r.stream).toBe(true);
  });

  it("reads generationConfig in Google's snake_case as its camelCase, so checks and caps see it", () => {
    const r = parseInvokeRequest({
      model: "m",
      prompt: "x",
      generationConfig: { max_output_tokens: 5, thinking_config: { thinking_budget: 0 } },
    });
    expect(r.generationConfig).toEqual({ maxOutputTokens: 5, thinkingConfig: { thinkingBudget: 0 } });
    expect(codeOf({ model: "m", prompt: "x", generationConfig: { max_output_tokens: 5, maxOutputTokens: 6 } }))
      .toBe("invalid_request");
  });

  it("keeps a `__proto__` key a key: such a part is of no known kind, never an empty one", () => {
    const body = JSON.parse('{"model":"m","contents":[{"parts":[{"__proto__":{"text":"x"}}]}]}');
    expect(codeOf(body)).toBe("unsupported_feature");
  });

  it("says which field is wrong and how", () => {
    try {
      parseInvokeRequest({ model: "m", prompt: "x", generationConfig: { temperature: "hot" } });
      expect.unreachable();
    } catch (e) {
      const err = e as GatewayError;
      expect(err.message).toMatch(/^generationConfig\.temperature: .*number/);
      expect(err.details).toEqual({
        issues: [{ path: "generationConfig.temperature", message: expect.any(String) }],
      });
    }
  });

  it("names unknown keys so that a typo is easy to fix", () => {
    try {
      parseInvokeRequest({ model: "m", prompt: "x", max_wait: 5 });
      expect.unreachable();
    } catch (e) {
      expect((e as GatewayError).message).toContain("max_wait");
    }
  });
});

describe("metadata is kept small", () => {
  it("accepts 1 KiB as JSON and refuses a byte more", () => {
    const fits = { note: "m".repeat(1024 - '{"note":""}'.length) };
    expect(parseInvokeRequest({ model: "m", prompt: "x", metadata: fits }).metadata).toEqual(fits);
    const over = { note: "m".repeat(1025 - '{"note":""}'.length) };
    expect(() => parseInvokeRequest({ model: "m", prompt: "x", metadata: over })).toThrow(/1025 bytes/);
  });

  it("refuses a key starting with $ (kept for the gateway's own) instead of dropping it", () => {
    for (const key of ["$gateway", "$mine"]) {
      let error: unknown;
      try {
        parseInvokeRequest({ model: "m", prompt: "x", metadata: { chat_id: 1, [key]: { reply_by: "x" } } });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).code).toBe("invalid_request");
      expect((error as GatewayError).message).toContain(key);
    }
    // "$" elsewhere in a key is the caller's.
    expect(parseInvokeRequest({ model: "m", prompt: "x", metadata: { "price$": 1 } }).metadata).toEqual({ "price$": 1 });
  });
});

describe("fallback_models", () => {
  it("keeps the chain in order, models/ prefixes stripped; absent and empty stay apart", () => {
    const r = parseInvokeRequest({
      model: "gemini-2.5-flash",
      fallback_models: ["models/gemini-2.5-flash-lite", "gemma-3-27b"],
      prompt: "x",
    });
    expect(r.fallbackModels).toEqual(["gemini-2.5-flash-lite", "gemma-3-27b"]);
    // Absent: the model row's chain applies; empty: the caller wants no fallback at all.
    expect(parseInvokeRequest({ model: "m", prompt: "x" })).not.toHaveProperty("fallbackModels");
    expect(parseInvokeRequest({ model: "m", prompt: "x", fallback_models: [] }).fallbackModels).toEqual([]);
  });

  it.each<[string, unknown, RegExp]>([
    ["a string instead of a list", "gemma-3-27b", /^fallback_models: .*array/],
    ["four fallbacks", ["a", "b", "c", "d"], /^fallback_models: at most 3 fallback models/],
    ["a name with a path", ["../x"], /^fallback_models\[0\]: must be a model id/],
    ["a name that is not a string", [42], /^fallback_models\[0\]: /],
    ["an empty name", [""], /^fallback_models\[0\]: must be a model id/],
    ["the first model again", ["gemini-2.5-flash"], /^fallback_models\[0\]: gemini-2\.5-flash is already in the chain/],
    [
      "a model twice",
      ["gemma-3-27b", "models/gemma-3-27b"],
      /^fallback_models\[1\]: gemma-3-27b is already in the chain/,
    ],
  ])("refuses %s with a 400 that names the field", (_name, fallbacks, message) => {
    try {
      parseInvokeRequest({ model: "gemini-2.5-flash", fallback_models: fallbacks, prompt: "x" });
      expect.unreachable();
    } catch (e) {
      const err = e as GatewayError;
      expect(err.code).toBe("invalid_request");
      expect(err.status).toBe(400);
      expect(err.message).toMatch(message);
    }
  });
});
