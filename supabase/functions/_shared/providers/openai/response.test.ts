// OpenAI's answers in the hub's words: a JSON answer asked wrapped in an object (a schema whose value is
// not an object's, schema.ts) comes back as the value it holds, whole or streamed.
import { describe, expect, it } from "vitest";
import type { HubAnswer } from "../../upstream/hub.ts";
import { ChunkTranslator, CompletionFolder, completionToHub } from "./response.ts";

const completion = (content: string) => ({
  id: "chatcmpl-1",
  model: "gpt-4o",
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
});

const partsOf = (answer: HubAnswer | null) => answer!.outputs[0]!.parts;

describe("completionToHub", () => {
  it("a wrapped answer is the value it holds; unwrapped, the text as sent", () => {
    const wrapped = completionToHub(completion('{"value": ["red", "green", "blue"]}'), true);
    expect(partsOf(wrapped)).toEqual([{ type: "text", text: '["red","green","blue"]' }]);
    expect(wrapped).toMatchObject({
      usage: { inputTokens: 5, outputTokens: 7, thinkingTokens: 0, cachedInputTokens: 0, totalTokens: 12 },
      modelVersion: "gpt-4o",
      id: "chatcmpl-1",
    });
    expect(partsOf(completionToHub(completion('{"value": 3}')))).toEqual([{ type: "text", text: '{"value": 3}' }]);
    // Text that is not the wrapping object (a refusal, a cut answer) is kept as it came.
    expect(partsOf(completionToHub(completion('{"value": [1,'), true))).toEqual([{ type: "text", text: '{"value": [1,' }]);
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
      outputs: [{ index: 0, parts: [{ type: "text", text: '{"value": ' }], finish: null }],
    });

    const wrapped = new ChunkTranslator(true);
    expect(wrapped.translate(chunk({ role: "assistant", content: "" }))).toBeNull();
    expect(wrapped.translate(chunk({ content: '{"value": ["red", ' }))).toBeNull();
    expect(wrapped.translate(chunk({ content: '"blue"]}' }))).toBeNull();
    expect(wrapped.translate(chunk({}, "stop"))).toMatchObject({
      outputs: [{ index: 0, parts: [{ type: "text", text: '["red","blue"]' }], finish: { reason: "stop", word: "stop" } }],
    });
    const usage = wrapped.translate({
      id: "chatcmpl-1",
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 7 },
    });
    expect(usage).toMatchObject({ outputs: [], usage: { totalTokens: 12 } });
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
