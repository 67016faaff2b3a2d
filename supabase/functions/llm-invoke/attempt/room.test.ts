// When a success's finalize is written before its answer, and the room finalize takes otherwise.
import { describe, expect, it } from "vitest";
import { roomUntil, WRITE_BEFORE_ANSWER_CALLS, writeBeforeAnswer } from "./room.ts";

const window = (requests: number | null, tokens: number | null) => ({ requests, tokens, resetMs: 20_000 });

describe("writeBeforeAnswer", () => {
  it("a sliding window: within three calls of this one, by requests or by its booking in tokens", () => {
    expect(WRITE_BEFORE_ANSWER_CALLS).toBe(3);
    expect([0, 1, 3, 4].map((r) => writeBeforeAnswer(window(r, 1_000_000), 100))).toEqual([true, true, true, false]);
    expect([300, 301].map((t) => writeBeforeAnswer(window(50, t), 100))).toEqual([true, false]);
    expect(writeBeforeAnswer(window(null, 301), 100)).toBe(false);
  });

  it("a bucket's word: before the answer when it rests the model, never when the buckets hold the next request", () => {
    expect(writeBeforeAnswer({ ...window(0, 10), next: { requestsMs: 1500, tokensMs: 0 } }, 100)).toBe(true);
    expect(writeBeforeAnswer({ ...window(4, 10), next: { requestsMs: 0, tokensMs: 0 } }, 100)).toBe(false);
  });

  it("no word, no write before the answer", () => {
    expect(writeBeforeAnswer(null, 100)).toBe(false);
    expect(writeBeforeAnswer(undefined, 100)).toBe(false);
  });
});

describe("roomUntil", () => {
  it("the answer left first: the provider's room less the caller's next call (a request, this call's booking)", () => {
    expect(roomUntil(window(10, 5_000), 0, { bookedTokens: 700 })).toEqual({
      requests: 9,
      tokens: 4_300,
      until: new Date(20_000),
    });
    expect(roomUntil(window(null, 500), 0, { bookedTokens: 700 })).toEqual({
      requests: null,
      tokens: 0,
      until: new Date(20_000),
    });
  });

  it("written before the answer: the room as the provider said it", () => {
    expect(roomUntil(window(1, 5_000), 0)).toEqual({ requests: 1, tokens: 5_000, until: new Date(20_000) });
  });
});
