// answer: Google's whole answer → OpenAI's chat.completion.
import { describe, expect, it } from "vitest";
import { hubAnswerOf } from "../../../_shared/providers/google/answer.ts";
import { hubFinish } from "../../../_shared/upstream/hub.ts";
import { finishReasonOf, openAiSurface } from "../openai.ts";
import { ctx, NOW, result } from "./test-fixtures.ts";

describe("answer", () => {
  it("says a text answer as a chat.completion", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [{
          content: { role: "model", parts: [{ text: "thinking…", thought: true }, { text: "Hello!" }] },
          finishReason: "STOP",
          index: 0,
        }],
      }, { text: "Hello!" }),
      ctx(),
    );
    expect(answer.asIs).toBe(true);
    expect(answer.body).toEqual({
      id: "chatcmpl-req-1",
      object: "chat.completion",
      created: Math.floor(NOW / 1000),
      model: "gemini-2.5-flash",
      choices: [{
        index: 0,
        message: { role: "assistant", content: "Hello!", refusal: null },
        finish_reason: "stop",
        logprobs: null,
      }],
      usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
      system_fingerprint: null,
    });
  });

  it("says function calls as tool_calls, with Google's id or one of its own, and finish_reason tool_calls", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [{
          content: {
            role: "model",
            parts: [
              { functionCall: { name: "get_weather", args: { city: "Paris" }, id: "g-1" } },
              { functionCall: { name: "get_time" }, thoughtSignature: "sig-2" },
            ],
          },
          finishReason: "STOP",
        }],
      }),
      ctx(),
    );
    const choice = (answer.body.choices as Array<Record<string, unknown>>)[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "g-1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        {
          id: "call_req-1_0_1",
          type: "function",
          function: { name: "get_time", arguments: "{}" },
          extra_content: { google: { thought_signature: "sig-2" } },
        },
      ],
      refusal: null,
    });
  });

  it("gives a text answer's thought signature on the message, where Google's OpenAI endpoint puts it", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [{
          content: { role: "model", parts: [{ text: "Hel" }, { text: "lo", thoughtSignature: "sig-text" }] },
          finishReason: "STOP",
        }],
      }, { text: "Hello" }),
      ctx(),
    );
    expect((answer.body.choices as Array<Record<string, unknown>>)[0]!.message).toEqual({
      role: "assistant",
      content: "Hello",
      refusal: null,
      extra_content: { google: { thought_signature: "sig-text" } },
    });
  });

  it("says each candidate of n > 1 as its own choice", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [
          { content: { role: "model", parts: [{ text: "One" }] }, finishReason: "STOP", index: 0 },
          { content: { role: "model", parts: [{ text: "Two" }] }, finishReason: "MAX_TOKENS", index: 1 },
        ],
      }, { text: "One" }),
      ctx(),
    );
    const choices = answer.body.choices as Array<
      { index: number; message: { content: string }; finish_reason: string }
    >;
    expect(choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, "One", "stop"],
      [1, "Two", "length"],
    ]);
  });

  it("maps Google's finish reasons (read into the hub's) to OpenAI's", () => {
    const finishOf = (word: string | null) =>
      hubFinish(hubAnswerOf(
        word === null
          ? {}
          : word.startsWith("BLOCKED_")
          ? { promptFeedback: { blockReason: word.slice("BLOCKED_".length) } }
          : { candidates: [{ finishReason: word }] },
      ));
    const reasons: Array<[string | null, boolean, string]> = [
      ["STOP", false, "stop"],
      ["STOP", true, "tool_calls"],
      ["MAX_TOKENS", false, "length"],
      ["SAFETY", false, "content_filter"],
      ["RECITATION", false, "content_filter"],
      ["BLOCKLIST", false, "content_filter"],
      ["PROHIBITED_CONTENT", false, "content_filter"],
      ["SPII", false, "content_filter"],
      ["BLOCKED_SAFETY", false, "content_filter"],
      ["OTHER", false, "stop"],
      [null, false, "stop"],
    ];
    for (const [google, called, openai] of reasons) {
      expect([google, finishReasonOf(finishOf(google), called)]).toEqual([google, openai]);
    }

    const filtered = openAiSurface.answer(
      result({ candidates: [{ content: { role: "model", parts: [] }, finishReason: "SAFETY" }] }),
      ctx(),
    );
    expect((filtered.body.choices as Array<{ finish_reason: string }>)[0].finish_reason).toBe("content_filter");
  });

  it("answers a blocked prompt (no candidate) with one filtered choice", () => {
    const answer = openAiSurface.answer(
      result({ promptFeedback: { blockReason: "SAFETY" } }, { finish_reason: "BLOCKED_SAFETY" }),
      ctx(),
    );
    expect(answer.body.choices).toEqual([{
      index: 0,
      message: { role: "assistant", content: null, refusal: null },
      finish_reason: "content_filter",
      logprobs: null,
    }]);
  });

  it("answers a stored result without Google's response from the gateway's own fields", () => {
    const stored = result({}, { text: "Stored answer", finish_reason: "MAX_TOKENS" });
    delete stored.hub;
    const choices = openAiSurface.answer(stored, ctx()).body.choices as Array<Record<string, unknown>>;
    expect(choices).toEqual([{
      index: 0,
      message: { role: "assistant", content: "Stored answer", refusal: null },
      finish_reason: "length",
      logprobs: null,
    }]);
  });
});
