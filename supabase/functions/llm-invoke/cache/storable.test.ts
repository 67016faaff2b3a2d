import { describe, expect, it } from "vitest";
import type { FinishReason, HubAnswer, HubOutput } from "../../_shared/upstream/hub.ts";
import { storableFinish } from "./storable.ts";

const output = (reason: FinishReason, index = 0): HubOutput => ({
  index,
  parts: [{ type: "text", text: "an answer" }],
  finish: { reason, word: null },
});
const answer = (...outputs: HubOutput[]): HubAnswer => ({ outputs, usage: null, modelVersion: null, id: null });

describe("which answers the response cache keeps", () => {
  it("a whole answer: stop, max_tokens, a tool call; several outputs when each is whole", () => {
    expect(storableFinish(answer(output("stop")))).toBe("stop");
    expect(storableFinish(answer(output("max_tokens")))).toBe("max_tokens");
    expect(storableFinish(answer({ index: 0, parts: [{ type: "tool_call", name: "f", args: {} }], finish: { reason: "tool_call", word: null } })))
      .toBe("tool_call");
    expect(storableFinish(answer(output("stop"), output("stop", 1)))).toBe("stop");
  });

  it("never a blocked answer, a filtered one, a refusal, an unfinished one, an empty one or one with an output that is not whole", () => {
    expect(storableFinish({ ...answer(), promptBlocked: { word: "SAFETY" } })).toBeNull();
    expect(storableFinish(answer(output("content_filter")))).toBeNull();
    expect(storableFinish(answer(output("other")))).toBeNull();
    expect(storableFinish(answer({ index: 0, parts: [{ type: "text", text: "I can't.", refusal: true }], finish: { reason: "stop", word: "stop" } })))
      .toBeNull();
    expect(storableFinish(answer({ index: 0, parts: [{ type: "text", text: "half" }], finish: null }))).toBeNull();
    expect(storableFinish(answer({ index: 0, parts: [], finish: { reason: "stop", word: null } }))).toBeNull();
    expect(storableFinish(answer(output("stop"), output("content_filter", 1)))).toBeNull();
    expect(storableFinish(undefined)).toBeNull();
  });
});
