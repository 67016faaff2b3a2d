// When a success's finalize is written before its answer, and the room finalize takes otherwise.
import { describe, expect, it } from "vitest";
import { lowersFollowed, roomUntil, WRITE_BEFORE_ANSWER_CALLS, writeBeforeAnswer } from "./room.ts";
import type { QuotaSnapshot } from "../contract.ts";

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

/** A booking's quota: the limits it counted against (rpm 12, tpm 100k), `followed` where the row follows its provider. */
const booked = (followed?: QuotaSnapshot["followed"]): QuotaSnapshot => ({
  model: "gpt-4.1-mini",
  quotaGroup: "org",
  rpm: 12,
  requestsLeft: 5,
  requestsResetMs: 1000,
  tpm: 100_000,
  tokensLeft: 50_000,
  tokensResetMs: 1000,
  rpd: null,
  dayLeft: null,
  dayResetMs: null,
  ...(followed === undefined ? {} : { followed }),
});

describe("lowersFollowed: a following row's lowering is written before its answer", () => {
  it("a figure below the one the booking followed, or below its counted limit before any was stated", () => {
    expect(lowersFollowed({ rpm: 6, tpm: 100_000 }, booked({ rpm: 12, tpm: 100_000 }))).toBe(true);
    expect(lowersFollowed({ rpm: 12, tpm: 90_000 }, booked({ rpm: 12, tpm: 100_000 }))).toBe(true);
    expect(lowersFollowed({ rpm: 6 }, booked({}))).toBe(true);
    expect(lowersFollowed({ itpm: 10 }, booked({}))).toBe(false);
  });

  it("a raise, the same figures, a row that keeps its own, or nothing stated: not", () => {
    expect(lowersFollowed({ rpm: 24, tpm: 100_000 }, booked({ rpm: 12, tpm: 100_000 }))).toBe(false);
    expect(lowersFollowed({ rpm: 12 }, booked({ rpm: 12 }))).toBe(false);
    expect(lowersFollowed({ rpm: 6 }, booked())).toBe(false);
    expect(lowersFollowed(undefined, booked({ rpm: 12 }))).toBe(false);
    expect(lowersFollowed({ rpm: 6 }, null)).toBe(false);
  });

  it("writeBeforeAnswer takes it with plenty of room left", () => {
    const roomy = { ...window(500, 1_000_000), limits: { rpm: 6 } };
    expect(writeBeforeAnswer(roomy, 100, booked({ rpm: 12 }))).toBe(true);
    expect(writeBeforeAnswer(roomy, 100, booked())).toBe(false);
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
