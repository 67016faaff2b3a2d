// Gemini's request in the hub's words: Google's translation of them gives the caller's fields back as
// given (what the hub lacks rides as Google's DialectExtras), and what would change another provider's
// answer is listed to be refused by name.
import { describe, expect, it } from "vitest";
import { generateContentBody } from "../../../_shared/providers/google/request.ts";
import { type GeminiFields, geminiInHub } from "./hub.ts";

/** What Google is sent of the fields, through the hub. */
function sentToGoogle(fields: GeminiFields): Record<string, unknown> {
  const hub = geminiInHub(fields);
  return generateContentBody({ model: "m", ...hub });
}

describe("geminiInHub", () => {
  it.each<[string, GeminiFields]>([
    ["text, signed text and thoughts", {
      contents: [
        { role: "user", parts: [{ text: "a" }] },
        { role: "model", parts: [{ text: "t", thought: true }, { text: "b", thought: false, thoughtSignature: "s" }] },
      ],
    }],
    ["a call without arguments, ids and a part's own field", {
      contents: [
        { role: "model", parts: [{ functionCall: { name: "f", id: "1" } }, { functionCall: { name: "g", args: {} } }] },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "f", response: { text: "plain" }, id: "1" } },
            { inlineData: { mimeType: "image/png", data: "AAAA" }, videoMetadata: { fps: 1 } },
          ],
        },
      ],
    }],
    ["tool results of a text ({output}, {error}) and of an object with those keys and others", {
      contents: [
        { role: "model", parts: [{ functionCall: { name: "f", id: "1" } }, { functionCall: { name: "f", id: "2" } }] },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "f", response: { output: "42" }, id: "1" } },
            { functionResponse: { name: "f", response: { error: "boom" }, id: "2" } },
            { functionResponse: { name: "f", response: { output: { n: 42 } } } },
            { functionResponse: { name: "f", response: { output: "42", error: "late" } } },
          ],
        },
      ],
    }],
    ["a schema without a MIME type, a MIME type the hub lacks, an option the hub lacks", {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { responseSchema: { type: "OBJECT" }, mediaResolution: "LOW", thinkingConfig: { thinkingLevel: "low" } },
    }],
    ["text/plain and an enum", {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { responseMimeType: "text/x.enum", candidateCount: 2, stopSequences: ["END"] },
    }],
    ["tools in snake_case, a search tool, a validated mode, safety settings", {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      tools: [{ function_declarations: [{ name: "f", parameters_json_schema: { type: "object" } }] }, { googleSearch: {} }],
      toolConfig: { functionCallingConfig: { mode: "VALIDATED" }, retrievalConfig: { languageCode: "en" } },
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
    }],
    ["toolConfig in snake_case", {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      tools: [{ functionDeclarations: [{ name: "f" }, { name: "g" }] }],
      toolConfig: { function_calling_config: { mode: "ANY", allowed_function_names: ["f"] } },
    }],
    ["function tools the hub says exactly: no extras at all", {
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { maxOutputTokens: 5, responseMimeType: "application/json", responseJsonSchema: { type: "object" } },
      tools: [{ functionDeclarations: [{ name: "f", description: "d", parameters: { type: "OBJECT" } }] }],
      toolConfig: { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["f"] } },
    }],
  ])("gives Google its fields back as given: %s", (_, fields) => {
    expect(sentToGoogle(fields)).toEqual(fields);
  });

  it("carries nothing for Google where the hub's words say it all", () => {
    const hub = geminiInHub({
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { maxOutputTokens: 5, responseMimeType: "application/json" },
      tools: [{ functionDeclarations: [{ name: "f" }] }],
      toolConfig: { functionCallingConfig: { mode: "AUTO" } },
    });
    expect(hub.dialectExtras).toBeUndefined();
    expect(hub.only).toBeUndefined();
    expect(hub.messages[0]!.parts[0]!.extras).toBeUndefined();
    expect(hub).toMatchObject({
      options: { maxOutputTokens: 5, format: { type: "json" } },
      tools: [{ name: "f" }],
      toolChoice: { mode: "auto" },
    });
  });

  it("holds a tool result of {output} or {error} of a text as that text, any other response as its object", () => {
    const hub = geminiInHub({
      contents: [
        { role: "model", parts: [{ functionCall: { name: "f", id: "1" } }, { functionCall: { name: "f", id: "2" } }] },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "f", response: { output: "42" }, id: "1" } },
            { functionResponse: { name: "f", response: { error: "boom" }, id: "2" } },
            { functionResponse: { name: "f", response: { output: { n: 42 } } } },
          ],
        },
      ],
    });
    expect(hub.messages[1]!.parts).toEqual([
      { type: "tool_result", id: "1", name: "f", result: "42" },
      { type: "tool_result", id: "2", name: "f", result: "boom", error: true },
      { type: "tool_result", name: "f", result: { output: { n: 42 } } },
    ]);
  });

  it("reads toolConfig in snake_case as in camelCase: nothing only Google's, the allowed names kept", () => {
    const hub = geminiInHub({
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      tools: [{ functionDeclarations: [{ name: "f" }, { name: "g" }] }],
      toolConfig: { function_calling_config: { mode: "ANY", allowed_function_names: ["f"] } },
    });
    expect(hub.only).toBeUndefined();
    expect(hub.toolChoice).toEqual({ mode: "required", only: ["f"] });
  });

  it("lists what only Google's models take, by the caller's field; not safety settings, nor a schema's form", () => {
    const hub = geminiInHub({
      contents: [{ role: "user", parts: [{ text: "x", videoMetadata: {} }] }],
      generationConfig: { responseSchema: { type: "OBJECT" }, responseMimeType: "text/x.enum", mediaResolution: "LOW" },
      tools: [{ functionDeclarations: [{ name: "f", behavior: "NON_BLOCKING" }] }, { codeExecution: {} }],
      toolConfig: { retrievalConfig: {} },
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
    });
    expect(hub.only?.dialect).toBe("google");
    expect(hub.only?.fields.map((f) => f.field)).toEqual([
      "contents[0].parts[0].videoMetadata",
      "generationConfig.responseMimeType",
      "generationConfig.mediaResolution",
      "tools[0].functionDeclarations[0].behavior",
      "tools[1].codeExecution",
      "toolConfig.retrievalConfig",
    ]);
    expect(hub.asks).toEqual({
      json: { feature: "responseMimeType", words: "responseMimeType text/x.enum" },
      tools: { feature: "tools", words: "tools (function calling)" },
    });
  });
});
