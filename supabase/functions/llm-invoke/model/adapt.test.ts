import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import type { ModelCapabilities } from "../contract.ts";
import { adaptToModel, foldSystem } from "./adapt.ts";
import { parseInvokeRequest } from "../surfaces/native/request.ts";
import { parseResponses } from "../surfaces/openai/responses/request.ts";
import { parseChatCompletion } from "../surfaces/openai/request.ts";
import { DEFAULT_REQUEST_LIMITS } from "../contract.ts";
import { base64, png } from "../../../../tests/support/image-bytes.ts";

const GEMMA: ModelCapabilities = {
  model: "gemma-3-27b-it",
  supportsSystemInstruction: false,
  supportsJsonMode: false,
  supportsTools: false,
};
const GEMINI: ModelCapabilities = {
  model: "gemini-2.5-flash",
  supportsSystemInstruction: true,
  supportsJsonMode: true,
  supportsTools: true,
};

describe("adaptToModel", () => {
  it("folds the system prompt into the first user turn for Gemma", () => {
    const req = parseInvokeRequest({
      model: "gemma-3-27b",
      system: "Отвечай кратко.",
      messages: [{ role: "user", content: "Что сегодня?" }, { role: "assistant", content: "Концерт." }],
    });
    const out = adaptToModel(GEMMA, req);
    expect(out).toEqual({
      model: "gemma-3-27b-it",
      messages: [
        { role: "user", parts: [{ type: "text", text: "Отвечай кратко.\n\nЧто сегодня?" }] },
        { role: "assistant", parts: [{ type: "text", text: "Концерт." }] },
      ],
      options: {},
    });
    expect(out).not.toHaveProperty("system");
  });

  it("passes the system prompt as systemInstruction where supported", () => {
    const req = parseInvokeRequest({ model: "gemini-2.5-flash", system: "Be brief.", prompt: "Hi" });
    const out = adaptToModel(GEMINI, req);
    expect(out.system).toBe("Be brief.");
    expect(out.messages).toEqual([{ role: "user", parts: [{ type: "text", text: "Hi" }] }]);
  });

  it("uses the canonical model id from the capabilities, not the alias", () => {
    const req = parseInvokeRequest({ model: "gemma-3-27b", prompt: "Hi" });
    expect(adaptToModel(GEMMA, req).model).toBe("gemma-3-27b-it");
  });

  it("rejects JSON mode where unsupported, with unsupported_feature", () => {
    const req = parseInvokeRequest({
      model: "gemma-3-27b-it",
      prompt: "Hi",
      generationConfig: { responseMimeType: "application/json" },
    });
    expect(() => adaptToModel(GEMMA, req)).toThrow(GatewayError);
    try {
      adaptToModel(GEMMA, req);
    } catch (e) {
      expect((e as GatewayError).code).toBe("unsupported_feature");
      expect((e as GatewayError).message).toContain("application/json");
      // Advice in no route's words: text/plain is Gemini's, and this refusal is given on every route.
      expect((e as GatewayError).message).toContain("omit it and ask for JSON in the prompt");
      expect((e as GatewayError).message).not.toContain("text/plain");
      expect((e as GatewayError).details).toEqual({ model: "gemma-3-27b-it", feature: "responseMimeType" });
    }
  });

  it("allows text/plain on Gemma and JSON mode on Gemini", () => {
    const plain = parseInvokeRequest({
      model: "gemma-3-27b-it",
      prompt: "Hi",
      generationConfig: { responseMimeType: "text/plain" },
    });
    expect(adaptToModel(GEMMA, plain).dialectExtras?.options).toEqual({ responseMimeType: "text/plain" });
    const json = parseInvokeRequest({
      model: "gemini-2.5-flash",
      prompt: "Hi",
      generationConfig: { responseMimeType: "application/json" },
    });
    expect(adaptToModel(GEMINI, json).options.format).toEqual({ type: "json" });
  });
});

describe("what only another dialect's models take", () => {
  const GPT: ModelCapabilities & { dialect: string } = { ...GEMINI, model: "gpt-4o", dialect: "openai" };
  const refusal = (generationConfig: Record<string, unknown>) => {
    try {
      adaptToModel(GPT, parseInvokeRequest({ model: "gpt-4o", prompt: "Hi", generationConfig }));
    } catch (e) {
      return e as GatewayError;
    }
    throw new Error("not refused");
  };

  it("names at most 10 of the caller's fields, each cut and printable; the code and the first field stay", () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `k${i}\u0001${"x".repeat(200)}`);
    const e = refusal(Object.fromEntries(keys.map((k) => [k, 1])));
    expect(e.code).toBe("unsupported_feature");
    const details = e.details as { field: string; features: string[] };
    expect(details.features).toHaveLength(10);
    expect(details.field).toBe(details.features[0]);
    expect(details.field.startsWith("generationConfig.k0?xxx")).toBe(true);
    expect(details.field.length).toBeLessThan(80);
    expect(e.message).toContain("and 4990 more");
    expect(e.message.length).toBeLessThan(2000);
    expect([...e.message].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
  });

  it("names every field when there are at most 10, with no count of more", () => {
    const e = refusal({ mediaResolution: "LOW", responseModalities: ["TEXT"] });
    expect(e.details).toEqual({
      model: "gpt-4o",
      field: "generationConfig.mediaResolution",
      features: ["generationConfig.mediaResolution", "generationConfig.responseModalities"],
    });
    expect(e.message).not.toContain("more");
  });
});

describe("a Responses API body, by whether the model's provider row has the Responses API", () => {
  const responses = (body: Record<string, unknown>) =>
    parseResponses({ body: { input: "hi", ...body }, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS });
  const OPENAI = { ...GEMINI, model: "gpt-4o", dialect: "openai", hasResponsesApi: true };
  /** A compatible service of OpenAI's dialect whose row leaves has_responses_api false. */
  const COMPATIBLE = { ...GEMINI, model: "deepseek-chat", dialect: "openai" };

  it("goes as it came to a provider that has it, and is translated for one of the same dialect that has not", () => {
    expect(adaptToModel(OPENAI, responses({ model: "gpt-4o" })).dialectBody).toMatchObject({ endpoint: "responses" });
    const translated = adaptToModel(COMPATIBLE, responses({ model: "deepseek-chat" }));
    expect(translated.dialectBody).toBeUndefined();
    expect(translated.messages).toEqual([{ role: "user", parts: [{ type: "text", text: "hi" }] }]);
  });

  it.each([
    [{ tools: [{ type: "web_search" }] }, "tools[0].type"],
    [{ include: ["file_search_call.results"] }, "include"],
    [{ background: true }, "background"],
  ])("refuses %j by name for a provider without it, takes it for OpenAI's", (more, field) => {
    expect(adaptToModel(OPENAI, responses({ model: "gpt-4o", ...more })).dialectBody?.body).toMatchObject(more);
    let error: GatewayError | undefined;
    try {
      adaptToModel(COMPATIBLE, responses({ model: "deepseek-chat", ...more }));
    } catch (e) {
      error = e as GatewayError;
    }
    expect(error?.code).toBe("unsupported_feature");
    expect(error?.details).toMatchObject({ model: "deepseek-chat", field });
  });

  it("sends the compatible service a chat completion's body as it came (its chat completions are OpenAI's)", () => {
    const body = { model: "deepseek-chat", messages: [{ role: "user", content: "Hi" }], logprobs: true };
    const chat = parseChatCompletion({ body, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS });
    expect(adaptToModel(COMPATIBLE, chat).dialectBody).toMatchObject({ dialect: "openai", body: { logprobs: true } });
  });
});

describe("foldSystem", () => {
  it("adds a leading user turn when the conversation starts with the model", () => {
    expect(foldSystem("S", [{ role: "assistant", parts: [{ type: "text", text: "hello" }] }])).toEqual([
      { role: "user", parts: [{ type: "text", text: "S" }] },
      { role: "assistant", parts: [{ type: "text", text: "hello" }] },
    ]);
  });

  it("keeps the other parts of the first turn and does not mutate its input", () => {
    const messages = [{ role: "user" as const, parts: [{ type: "text" as const, text: "a" }, { type: "text" as const, text: "b" }] }];
    const out = foldSystem("S", messages);
    expect(out).toEqual([{ role: "user", parts: [{ type: "text", text: "S\n\na" }, { type: "text", text: "b" }] }]);
    expect(messages[0]?.parts[0]?.text).toBe("a");
  });
});

describe("capabilities come from the row", () => {
  const GEMMA4: ModelCapabilities = { ...GEMINI, model: "gemma-4-31b-it", supportsImages: null };
  const withImage = () =>
    parseInvokeRequest({
      model: "m",
      system: "Be brief.",
      contents: [{ role: "user", parts: [{ text: "what is this?" }, { inlineData: { mimeType: "image/png", data: base64(png(2, 2)) } }] }],
    });

  it("Gemma 4's row takes a system instruction: nothing is folded", () => {
    const out = adaptToModel(GEMMA4, parseInvokeRequest({ model: "gemma-4-31b-it", system: "Be brief.", prompt: "Hi" }));
    expect(out.system).toBe("Be brief.");
    expect(out.messages).toEqual([{ role: "user", parts: [{ type: "text", text: "Hi" }] }]);
  });

  it("a row that says no images refuses them with a clear 400; unknown (null) passes them on", () => {
    const error = (() => {
      try {
        adaptToModel({ ...GEMMA4, supportsImages: false }, withImage());
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe("unsupported_feature");
    expect((error as GatewayError).details).toEqual({ model: "gemma-4-31b-it", feature: "images" });
    expect(adaptToModel(GEMMA4, withImage()).messages[0]!.parts[1]!.type).toBe("media");
    expect(adaptToModel({ ...GEMMA4, supportsImages: true }, withImage()).messages[0]!.parts[1]!.type).toBe("media");
  });
});
