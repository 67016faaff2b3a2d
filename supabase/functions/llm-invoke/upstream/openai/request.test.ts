// The gateway's one request as a Chat Completions body: roles, images, the tool-call round trip,
// sampling and JSON output.
import { describe, expect, it } from "vitest";
import { chatCompletionBody } from "./request.ts";

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
});
