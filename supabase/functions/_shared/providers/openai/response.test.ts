// OpenAI's answers in Gemini's shape: a JSON answer asked wrapped in an object (a schema whose value is
// not an object's, schema.ts) comes back as the value it holds, whole or streamed.
import { describe, expect, it } from "vitest";
import { ChunkTranslator, CompletionFolder, completionToResponse } from "./response.ts";

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

describe("CompletionFolder", () => {
  const head = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 7, model: "gpt-4o-2024-08-06", system_fingerprint: "fp" };
  const lp = (token: string) => ({ token, logprob: -0.5, bytes: [], top_logprobs: [] });

  it("folds a stream into the completion it makes up: text with its logprobs in order, tool calls joined, finishes, usage", () => {
    const folder = new CompletionFolder();
    const chunks = [
      { ...head, choices: [{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }] },
      { ...head, choices: [{ index: 0, delta: { content: "Hel" }, logprobs: { content: [lp("Hel")], refusal: null }, finish_reason: null }] },
      { ...head, choices: [{ index: 0, delta: { content: "lo" }, logprobs: { content: [lp("lo")], refusal: null }, finish_reason: null }] },
      {
        ...head,
        choices: [{
          index: 1,
          delta: { role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] },
          logprobs: null,
          finish_reason: null,
        }],
      },
      { ...head, choices: [{ index: 1, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }, finish_reason: null }] },
      { ...head, choices: [{ index: 1, delta: { tool_calls: [{ index: 0, function: { arguments: "1}" } }] }, finish_reason: null }] },
      { ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] },
      { ...head, choices: [{ index: 1, delta: {}, logprobs: null, finish_reason: "tool_calls" }] },
      { ...head, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
    ];
    for (const c of chunks) folder.add(c);
    expect(folder.completion()).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 7,
      model: "gpt-4o-2024-08-06",
      system_fingerprint: "fp",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "Hello", refusal: null },
          logprobs: { content: [lp("Hel"), lp("lo")], refusal: null },
          finish_reason: "stop",
        },
        {
          index: 1,
          message: {
            role: "assistant",
            content: null,
            refusal: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
          },
          logprobs: null,
          finish_reason: "tool_calls",
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    });
  });
});
