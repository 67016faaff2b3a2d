import { describe, expect, it } from "vitest";
import { mergeChunk, responseFinishReason, responseText, responseUsage } from "./answer.ts";
import type { UpstreamAnswer } from "./shapes.ts";

describe("mergeChunk: a stream's chunks make the whole answer", () => {
  it("joins text pieces per candidate, keeps function calls and thoughts apart, takes the latest usage and reason", () => {
    const chunks: UpstreamAnswer[] = [
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
    const whole = chunks.reduce(mergeChunk, {});
    expect(whole.candidates).toEqual([
      {
        index: 0,
        content: { role: "model", parts: [{ text: "think", thought: true }, { text: "Hello!" }] },
        finishReason: "STOP",
      },
      { index: 1, content: { role: "model", parts: [{ text: "B" }, { functionCall: { name: "f" } }] } },
    ]);
    expect(responseText(whole)).toBe("Hello!");
    expect(responseFinishReason(whole)).toBe("STOP");
    expect(responseUsage(whole)).toEqual({ inputTokens: 3, outputTokens: 4, thinkingTokens: 0, cachedInputTokens: 0, totalTokens: 7 });
    expect(whole.modelVersion).toBe("m");
    // The chunks themselves are left as they were.
    expect(chunks[1]!.candidates).toHaveLength(2);
    expect((chunks[1]!.candidates as Array<{ content: { parts: unknown[] } }>)[0]!.content.parts).toEqual([{
      text: "Hel",
    }]);
  });

  it("keeps thought signatures: on the text they end, and on the function call they came with", () => {
    const chunks: UpstreamAnswer[] = [
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
    const whole = chunks.reduce(mergeChunk, {});
    expect((whole.candidates as Array<{ content: { parts: unknown[] } }>)[0]!.content.parts).toEqual([
      { text: "Hello", thoughtSignature: "sig-text" },
      { text: " again" },
      { functionCall: { name: "f", args: {} }, thoughtSignature: "sig-call" },
      { functionCall: { name: "g", args: {} } },
    ]);
    expect(responseText(whole)).toBe("Hello again");
  });
});
