import { describe, expect, it } from "vitest";
import { EMPTY_ANSWER, hubFinish, hubText, mergeHubChunk } from "../../upstream/hub.ts";
import {
  type GeminiAnswer,
  geminiAnswerOf,
  geminiFinishReason,
  geminiUsage,
  hubAnswerOf,
  mergeGeminiChunk,
} from "./answer.ts";

describe("mergeGeminiChunk: a stream's chunks make the whole answer", () => {
  it("joins text pieces per candidate, keeps function calls and thoughts apart, takes the latest usage and reason", () => {
    const chunks: GeminiAnswer[] = [
      { candidates: [{ index: 0, content: { role: "model", parts: [{ text: "think", thought: true }] } }] },
      {
        candidates: [{ index: 0, content: { role: "model", parts: [{ text: "Hel" }] } }, {
          index: 1,
          content: { parts: [{ text: "B" }] },
        }],
      },
      {
        candidates: [{ index: 0, content: { parts: [{ text: "lo" }] } }, {
          index: 1,
          content: { parts: [{ functionCall: { name: "f" } }] },
        }],
      },
      {
        candidates: [{ index: 0, content: { parts: [{ text: "!" }] }, finishReason: "STOP" }],
        usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 4, totalTokenCount: 7 },
        modelVersion: "m",
      },
    ];
    const whole = chunks.reduce(mergeGeminiChunk, {});
    expect(whole.candidates).toEqual([
      {
        index: 0,
        content: { role: "model", parts: [{ text: "think", thought: true }, { text: "Hello!" }] },
        finishReason: "STOP",
      },
      { index: 1, content: { role: "model", parts: [{ text: "B" }, { functionCall: { name: "f" } }] } },
    ]);
    expect(hubText(hubAnswerOf(whole))).toBe("Hello!");
    expect(geminiFinishReason(whole)).toBe("STOP");
    expect(hubFinish(hubAnswerOf(whole))).toEqual({ reason: "stop", word: "STOP" });
    // The hub's fold of the same chunks says what Google's whole does.
    expect(chunks.map(hubAnswerOf).reduce(mergeHubChunk, EMPTY_ANSWER)).toEqual(hubAnswerOf(whole));
    expect(geminiUsage(whole)).toEqual({ inputTokens: 3, outputTokens: 4, thinkingTokens: 0, cachedInputTokens: 0, totalTokens: 7 });
    expect(whole.modelVersion).toBe("m");
    // The chunks themselves are left as they were.
    expect(chunks[1]!.candidates).toHaveLength(2);
    expect((chunks[1]!.candidates as Array<{ content: { parts: unknown[] } }>)[0]!.content.parts).toEqual([{
      text: "Hel",
    }]);
  });

  it("keeps thought signatures: on the text they end, and on the function call they came with", () => {
    const chunks: GeminiAnswer[] = [
      { candidates: [{ index: 0, content: { role: "model", parts: [{ text: "Hel" }] } }] },
      { candidates: [{ index: 0, content: { parts: [{ text: "lo" }] } }] },
      { candidates: [{ index: 0, content: { parts: [{ text: "", thoughtSignature: "sig-text" }] } }] },
      { candidates: [{ index: 0, content: { parts: [{ text: " again" }] } }] },
      {
        candidates: [{
          index: 0,
          content: {
            parts: [{ functionCall: { name: "f", args: {} }, thoughtSignature: "sig-call" }, {
              functionCall: { name: "g", args: {} },
            }],
          },
          finishReason: "STOP",
        }],
      },
    ];
    const whole = chunks.reduce(mergeGeminiChunk, {});
    expect((whole.candidates as Array<{ content: { parts: unknown[] } }>)[0]!.content.parts).toEqual([
      { text: "Hello", thoughtSignature: "sig-text" },
      { text: " again" },
      { functionCall: { name: "f", args: {} }, thoughtSignature: "sig-call" },
      { functionCall: { name: "g", args: {} } },
    ]);
    expect(hubText(hubAnswerOf(whole))).toBe("Hello again");
    expect(chunks.map(hubAnswerOf).reduce(mergeHubChunk, EMPTY_ANSWER)).toEqual(hubAnswerOf(whole));
  });
});

describe("hubAnswerOf and geminiAnswerOf: Google's answer and the hub's", () => {
  it("reads parts, finish, usage, version, id and a blocked prompt, and writes them back as Google would", () => {
    const google: GeminiAnswer = {
      candidates: [{
        index: 0,
        content: {
          role: "model",
          parts: [
            { text: "hm", thought: true },
            { text: "Hi", thoughtSignature: "s" },
            { inlineData: { mimeType: "image/png", data: "AAAA" } },
            { functionCall: { name: "f", args: { a: 1 }, id: "c1" } },
          ],
        },
        finishReason: "MAX_TOKENS",
      }],
      usageMetadata: {
        promptTokenCount: 5,
        candidatesTokenCount: 3,
        thoughtsTokenCount: 2,
        cachedContentTokenCount: 1,
        totalTokenCount: 10,
      },
      modelVersion: "gemini-x",
      responseId: "r1",
    };
    const hub = hubAnswerOf(google);
    expect(hub.outputs[0]!.finish).toEqual({ reason: "max_tokens", word: "MAX_TOKENS" });
    expect(hub.usage).toEqual({ inputTokens: 5, outputTokens: 3, thinkingTokens: 2, cachedInputTokens: 1, totalTokens: 10 });
    expect(geminiAnswerOf(hub)).toEqual(google);
    expect(hubAnswerOf({ promptFeedback: { blockReason: "SAFETY" } })).toMatchObject({
      outputs: [],
      promptBlocked: { word: "SAFETY" },
    });
    expect(geminiFinishReason({ promptFeedback: { blockReason: "SAFETY" } })).toBe("BLOCKED_SAFETY");
    expect(hubAnswerOf({ candidates: [{ finishReason: "RECITATION" }] }).outputs[0]!.finish!.reason).toBe("content_filter");
  });
});
