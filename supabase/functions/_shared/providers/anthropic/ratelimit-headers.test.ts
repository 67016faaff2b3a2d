// The rest Anthropic's anthropic-ratelimit-* headers imply (roomOf's next, as roomUntil hands it to
// finalize): its limits are buckets refilled continuously, so a model rests until the buckets hold the
// next request (by each bucket's refill from what is left, never past its reset plus the second
// Anthropic rounds it to), not until a bucket is full again.
import { describe, expect, it } from "vitest";
import { roomOf, statedLimitsOf } from "./errors.ts";
import { roomUntil } from "../../../llm-invoke/attempt/room.ts";

const NOW = Date.parse("2026-11-28T12:00:00.400Z");
const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z"); // to the second, as Anthropic says it

function headers(h: Record<string, [limit: number, left: number, fullInMs: number]>): Headers {
  const out = new Headers();
  for (const [name, [limit, left, fullInMs]] of Object.entries(h)) {
    out.set(`anthropic-ratelimit-${name}-limit`, String(limit));
    out.set(`anthropic-ratelimit-${name}-remaining`, String(left));
    out.set(`anthropic-ratelimit-${name}-reset`, at(NOW + fullInMs));
  }
  return out;
}

describe("the rest a bucket's headers imply", () => {
  it("after a burst that emptied a bucket of 6 at RPM 6: the next request's refill (10 s), not the full bucket's minute", () => {
    const room = roomOf(headers({ requests: [6, 0, 59_800] }), NOW)!;
    expect(room.resetMs).toBeGreaterThan(58_000);
    expect(room.next).toEqual({ requestsMs: 10_000, tokensMs: 0 });
    // Nothing left in the request bucket until then (the database weighs it against its own bucket).
    expect(roomUntil(room, NOW)).toEqual({ requests: 0, tokens: null, until: new Date(NOW + 10_000) });
  });

  it("a bucket that holds the next request asks no rest, whatever its reset", () => {
    const room = roomOf(headers({ requests: [6, 1, 50_000] }), NOW)!;
    expect(room.next).toEqual({ requestsMs: 0, tokensMs: 0 });
    expect(roomUntil(room, NOW)).toBeNull();
  });

  it("never past the reset plus the second Anthropic rounds it to", () => {
    // A bucket of one, full again at 12:00:05 as said (4.6 s from now): until 12:00:06, not a refill's 10 s.
    expect(roomOf(headers({ requests: [6, 0, 4_600] }), NOW)!.next!.requestsMs).toBe(5_600);
  });

  it("tokens: until the input and output buckets hold what this call took", () => {
    const h = headers({ requests: [50, 40, 1_000], "input-tokens": [600, 20, 6_000], "output-tokens": [1_200, 500, 1_000] });
    // 100 input tokens: 80 more at 10 a second; 300 output fits.
    expect(roomOf(h, NOW, { input: 100, output: 300 })!.next).toEqual({ requestsMs: 0, tokensMs: 6_600 }); // its reset first
    expect(roomOf(h, NOW, { input: 50, output: 300 })!.next!.tokensMs).toBe(3_000);
    expect(roomOf(h, NOW, { input: 10, output: 300 })!.next!.tokensMs).toBe(0);
    expect(roomUntil(roomOf(h, NOW, { input: 50, output: 300 }), NOW)).toEqual({ requests: null, tokens: 0,
      until: new Date(NOW + 3_000) });
    // Not known (a stream's input): not read.
    expect(roomOf(h, NOW, { input: null, output: 300 })!.next!.tokensMs).toBe(0);
  });
});

describe("the limits an answer states (anthropic-ratelimit-*-limit)", () => {
  it("requests, input and output tokens a minute, on the room", () => {
    const h = headers({ requests: [50, 49, 1_000], "input-tokens": [30_000, 29_000, 1_000], "output-tokens": [8_000, 7_900, 1_000] });
    expect(statedLimitsOf(h)).toEqual({ rpm: 50, itpm: 30_000, otpm: 8_000 });
    expect(roomOf(h, NOW)!.limits).toEqual({ rpm: 50, itpm: 30_000, otpm: 8_000 });
  });

  it("the combined tokens-limit is tpm only where input and output are not stated", () => {
    expect(statedLimitsOf(headers({ requests: [50, 49, 1_000], tokens: [40_000, 39_000, 1_000] })))
      .toEqual({ rpm: 50, tpm: 40_000 });
    expect(statedLimitsOf(headers({ "input-tokens": [30_000, 29_000, 1_000], tokens: [40_000, 39_000, 1_000] })))
      .toEqual({ itpm: 30_000 });
    expect(statedLimitsOf(new Headers())).toBeUndefined();
  });
});
