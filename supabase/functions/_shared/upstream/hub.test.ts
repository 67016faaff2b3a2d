import { describe, expect, it } from "vitest";
import { billedOutputTokens, EMPTY_ANSWER, type HubAnswer, hubFinish, hubText, mergeHubChunk } from "./hub.ts";

const piece = (parts: HubAnswer["outputs"][number]["parts"], extra: Partial<HubAnswer> = {}): HubAnswer => ({
  ...EMPTY_ANSWER,
  outputs: [{ index: 0, parts, finish: null }],
  ...extra,
});

describe("hub answers", () => {
  it("reads the first output's text without its thoughts, and its finish", () => {
    const answer: HubAnswer = {
      ...EMPTY_ANSWER,
      outputs: [
        { index: 1, parts: [{ type: "text", text: "other" }], finish: null },
        {
          index: 0,
          parts: [{ type: "text", text: "hm", thought: true }, { type: "text", text: "Hi" }],
          finish: { reason: "stop", word: "STOP" },
        },
      ],
    };
    expect(hubText(answer)).toBe("Hi");
    expect(hubFinish(answer)).toEqual({ reason: "stop", word: "STOP" });
    expect(hubFinish({ ...EMPTY_ANSWER, promptBlocked: { word: "SAFETY" } }))
      .toEqual({ reason: "prompt_blocked", word: "SAFETY" });
  });

  it("merges streamed pieces: text joined until a signature closes it, the latest usage and finish", () => {
    let whole = mergeHubChunk(EMPTY_ANSWER, piece([{ type: "text", text: "Hel" }]));
    whole = mergeHubChunk(whole, piece([{ type: "text", text: "lo", signature: "s1" }]));
    whole = mergeHubChunk(
      whole,
      {
        ...piece([{ type: "text", text: "!" }]),
        outputs: [{ index: 0, parts: [{ type: "text", text: "!" }], finish: { reason: "max_tokens", word: "length" } }],
        usage: { inputTokens: 3, outputTokens: 2, thinkingTokens: 1, cachedInputTokens: 0, totalTokens: 6 },
      },
    );
    expect(whole.outputs[0].parts).toEqual([{ type: "text", text: "Hello", signature: "s1" }, { type: "text", text: "!" }]);
    expect(whole.outputs[0].finish?.reason).toBe("max_tokens");
    expect(billedOutputTokens(whole.usage!)).toBe(3);
    expect(EMPTY_ANSWER.outputs).toEqual([]);
  });
});
