// The port's one helper for a dialect: a wire format with no stream streams its whole answer as one chunk.
import { describe, expect, it } from "vitest";
import type { HubAnswer } from "./hub.ts";
import { type GenerateOutcome, upstreamFailure, wholeAnswerAsStream } from "./port.ts";

const answer: HubAnswer = {
  outputs: [{ index: 0, parts: [{ type: "text", text: "hi" }], finish: { reason: "stop", word: "done" } }],
  usage: null,
  modelVersion: "m",
  id: null,
};
const whole = (over: Partial<GenerateOutcome & { ok: true }> = {}): GenerateOutcome => ({
  ok: true,
  answer,
  latencyMs: 12,
  ...over,
});

describe("wholeAnswerAsStream", () => {
  it("yields the whole answer as one chunk, with the provider's own answer where there is one", async () => {
    const own = { dialect: "google" as const, body: { output: "hi" } };
    const stream = wholeAnswerAsStream(whole({ dialectAnswer: own, servedTier: "standard" }));
    if (!stream.ok) throw new Error("a whole answer streams");
    expect([stream.latencyMs, stream.servedTier, stream.room, stream.dialectAnswer?.()]).toEqual([12, "standard", null, own]);
    const chunks = [];
    for await (const chunk of stream.chunks) chunks.push(chunk);
    expect(chunks).toEqual([{ answer, own }]);

    const hub = wholeAnswerAsStream(whole());
    if (!hub.ok) throw new Error("a whole answer streams");
    expect(hub.dialectAnswer).toBeUndefined();
    const only = [];
    for await (const chunk of hub.chunks) only.push(chunk);
    expect(only).toEqual([{ answer }]);
  });

  it("gives a failed call as the stream's failure", () => {
    const failed: GenerateOutcome = { ok: false, error: upstreamFailure("timeout", "no answer"), latencyMs: 5 };
    expect(wholeAnswerAsStream(failed)).toBe(failed);
  });
});
