// OpenAI's answers in Gemini's shape: a JSON answer asked wrapped in an object (a schema whose value is
// not an object's, schema.ts) comes back as the value it holds, whole or streamed.
import { describe, expect, it } from "vitest";
import { ChunkTranslator, completionToResponse } from "./response.ts";

const completion = (content: string) => ({
  id: "chatcmpl-1",
  model: "gpt-4o",
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
});

const partsOf = (response: Record<string, unknown> | null) =>
  (response?.candidates as Array<{ content: { parts: unknown[] } }>)[0]!.content.parts;

describe("completionToResponse", () => {
  it("a wrapped answer is the value it holds; unwrapped, the text as sent", () => {
    const wrapped = completionToResponse(completion('{"value": ["red", "green", "blue"]}'), true);
    expect(partsOf(wrapped)).toEqual([{ text: '["red","green","blue"]' }]);
    expect(wrapped).toMatchObject({
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 },
      modelVersion: "gpt-4o",
    });
    expect(partsOf(completionToResponse(completion('{"value": 3}')))).toEqual([{ text: '{"value": 3}' }]);
    // Text that is not the wrapping object (a refusal, a cut answer) is kept as it came.
    expect(partsOf(completionToResponse(completion('{"value": [1,'), true))).toEqual([{ text: '{"value": [1,' }]);
  });
});

describe("ChunkTranslator", () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id: "chatcmpl-1",
    model: "gpt-4o",
    choices: [{ index: 0, delta, finish_reason: finish }],
  });

  it("passes text deltas at once; a wrapped answer's text once whole, as the value it holds", () => {
    const plain = new ChunkTranslator();
    expect(plain.translate(chunk({ content: '{"value": ' }))).toMatchObject({
      candidates: [{ content: { parts: [{ text: '{"value": ' }] } }],
    });

    const wrapped = new ChunkTranslator(true);
    expect(wrapped.translate(chunk({ role: "assistant", content: "" }))).toBeNull();
    expect(wrapped.translate(chunk({ content: '{"value": ["red", ' }))).toBeNull();
    expect(wrapped.translate(chunk({ content: '"blue"]}' }))).toBeNull();
    expect(wrapped.translate(chunk({}, "stop"))).toMatchObject({
      candidates: [{ index: 0, content: { parts: [{ text: '["red","blue"]' }] }, finishReason: "STOP" }],
    });
    const usage = wrapped.translate({
      id: "chatcmpl-1",
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 7 },
    });
    expect(usage).toMatchObject({ candidates: [], usageMetadata: { totalTokenCount: 12 } });
  });
});
