// The gateway's one request (written in Gemini's shape, said in the hub's by its route's translation) as
// a Chat Completions body: roles, images, the tool-call round trip, sampling and JSON output (OpenAPI schemas as JSON Schema, a
// value that is not an object wrapped in one, the word "json" OpenAI's json_object needs).
import { describe, expect, it } from "vitest";
import type { GeminiRequest as ModelRequest } from "../../../llm-invoke/surfaces/gemini/test-fixtures.ts";
import { hubRequestOf } from "../../../llm-invoke/surfaces/gemini/test-fixtures.ts";
import * as fromHub from "./request.ts";

const chatCompletionBody = (request: ModelRequest, stream: boolean) =>
  fromHub.chatCompletionBody(hubRequestOf(request), stream);
const answerWrapped = (request: ModelRequest) => fromHub.answerWrapped(hubRequestOf(request));

describe("chatCompletionBody", () => {
  it("writes the system prompt first, turns as user/assistant, and the sampling fields", () => {
    const body = chatCompletionBody({
      model: "gpt-4o",
      systemInstruction: "Be brief.",
      contents: [
        { role: "user", parts: [{ text: "Hi " }, { text: "there" }] },
        { role: "model", parts: [{ text: "Hello.", thought: false }, { text: "(thinking)", thought: true }] },
        { role: "user", parts: [{ text: "Look:" }, { inlineData: { mimeType: "image/png", data: "AAAA" } }] },
      ],
      generationConfig: { temperature: 0.2, topP: 0.9, maxOutputTokens: 64, stopSequences: ["END"], topK: 5, seed: 7 },
    }, false);
    expect(body).toEqual({
      model: "gpt-4o",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi there" },
        { role: "assistant", content: "Hello." },
        {
          role: "user",
          content: [{ type: "text", text: "Look:" }, {
            type: "image_url",
            image_url: { url: "data:image/png;base64,AAAA" },
          }],
        },
      ],
      temperature: 0.2,
      top_p: 0.9,
      max_completion_tokens: 64,
      stop: ["END"],
      seed: 7,
    });
  });

  it("pairs each function response with its call's id, given or made", () => {
    const body = chatCompletionBody({
      model: "gpt-4o",
      contents: [
        { role: "user", parts: [{ text: "Weather in Oslo and Rome?" }] },
        {
          role: "model",
          parts: [
            { functionCall: { name: "weather", args: { city: "Oslo" } } },
            { functionCall: { name: "weather", args: { city: "Rome" }, id: "call_abc" } },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "weather", response: { c: 3 } } },
            { functionResponse: { name: "weather", response: { c: 18 }, id: "call_abc" } },
          ],
        },
      ],
      generationConfig: {},
      tools: [{ functionDeclarations: [{ name: "weather", parametersJsonSchema: { type: "object" } }] }],
      toolConfig: { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["weather"] } },
    }, true);
    const messages = body.messages as Array<Record<string, unknown>>;
    const calls = messages[1]!.tool_calls as Array<{ id: string; function: { arguments: string } }>;
    expect(messages[1]!.content).toBeNull();
    expect(calls.map((c) => c.function.arguments)).toEqual(['{"city":"Oslo"}', '{"city":"Rome"}']);
    expect(messages[2]).toEqual({ role: "tool", tool_call_id: calls[0]!.id, content: '{"c":3}' });
    expect(messages[3]).toEqual({ role: "tool", tool_call_id: "call_abc", content: '{"c":18}' });
    expect(body.tools).toEqual([{ type: "function", function: { name: "weather", parameters: { type: "object" } } }]);
    expect(body.tool_choice).toEqual({ type: "function", function: { name: "weather" } });
    expect(body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("asks for JSON as OpenAI's response_format: a schema, or any object", () => {
    const schema = { type: "object", properties: { a: { type: "string" } } };
    const withSchema = chatCompletionBody({
      model: "gpt-4o",
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { responseMimeType: "application/json", responseJsonSchema: schema },
    }, false);
    expect(withSchema.response_format).toEqual({ type: "json_schema", json_schema: { name: "response", schema } });
    const anyObject = chatCompletionBody({
      model: "gpt-4o",
      contents: [{ role: "user", parts: [{ text: "x" }] }],
      generationConfig: { responseMimeType: "application/json" },
    }, false);
    expect(anyObject.response_format).toEqual({ type: "json_object" });
  });

  it("sends Gemini's OpenAPI schemas as JSON Schema: lower-case types, nullable as a type, counts as numbers", () => {
    const geminiSchema = {
      type: "OBJECT",
      properties: {
        name: { type: "STRING", nullable: true, description: "who" },
        tags: { type: "ARRAY", items: { type: "STRING", format: "enum", enum: ["a", "b"] }, maxItems: "3" },
        kind: { type: "STRING", enum: ["x", "y"], nullable: true },
      },
      required: ["name"],
      propertyOrdering: ["name", "tags", "kind"],
    };
    const jsonSchema = {
      type: "object",
      properties: {
        name: { type: ["string", "null"], description: "who" },
        tags: { type: "array", items: { type: "string", enum: ["a", "b"] }, maxItems: 3 },
        kind: { type: ["string", "null"], enum: ["x", "y", null] },
      },
      required: ["name"],
    };
    const request = {
      model: "gpt-4o",
      contents: [{ role: "user" as const, parts: [{ text: "x" }] }],
      generationConfig: { responseMimeType: "application/json", responseSchema: geminiSchema },
      tools: [{ functionDeclarations: [{ name: "tag", parameters: geminiSchema }] }],
    };
    const body = chatCompletionBody(request, false);
    expect(body.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "response", schema: jsonSchema },
    });
    expect(body.tools).toEqual([{ type: "function", function: { name: "tag", parameters: jsonSchema } }]);
    expect(answerWrapped(request)).toBe(false);
  });

  it("asks for a list (or any value that is not an object) as an object holding it, as OpenAI takes objects only", () => {
    const request = {
      model: "gpt-4o",
      contents: [{ role: "user" as const, parts: [{ text: "three colours" }] }],
      generationConfig: {
        responseMimeType: "application/json",
        responseSchema: { type: "ARRAY", items: { type: "STRING" } },
      },
    };
    expect(chatCompletionBody(request, false).response_format).toEqual({
      type: "json_schema",
      json_schema: {
        name: "response",
        schema: {
          type: "object",
          properties: { value: { type: "array", items: { type: "string" } } },
          required: ["value"],
          additionalProperties: false,
        },
      },
    });
    expect(answerWrapped(request)).toBe(true);
    const jsonSchema = { ...request, generationConfig: { responseJsonSchema: { type: "integer" } } };
    expect(answerWrapped(jsonSchema)).toBe(true);
    // OpenAI's route passes the caller's own body: nothing is wrapped there.
    expect(answerWrapped({ ...request, dialectBody: { dialect: "openai", body: { messages: [] } } })).toBe(false);
  });

  it('says "json" for json_object when no message does (OpenAI refuses it otherwise), after the system prompt', () => {
    const asked = (text: string, systemInstruction?: string) =>
      chatCompletionBody({
        model: "gpt-4o",
        systemInstruction,
        contents: [{ role: "user", parts: [{ text }] }],
        generationConfig: { responseMimeType: "application/json" },
      }, false).messages;
    expect(asked("three colours", "Be brief.")).toEqual([
      { role: "system", content: "Be brief." },
      { role: "system", content: "Answer in JSON." },
      { role: "user", content: "three colours" },
    ]);
    expect(asked("three colours")).toEqual([
      { role: "system", content: "Answer in JSON." },
      { role: "user", content: "three colours" },
    ]);
    expect(asked("three colours as Json")).toEqual([{ role: "user", content: "three colours as Json" }]);
    // An image's data is no word of the caller's, even where its base64 happens to spell "json".
    const withImage = chatCompletionBody({
      model: "gpt-4o",
      contents: [{
        role: "user",
        parts: [{ text: "the colours" }, { inlineData: { mimeType: "image/png", data: "aGVsbG8JSONx" } }],
      }],
      generationConfig: { responseMimeType: "application/json" },
    }, false).messages;
    expect((withImage as unknown[])[0]).toEqual({ role: "system", content: "Answer in JSON." });
  });
});
