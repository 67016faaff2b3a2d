import { describe, expect, it } from "vitest";
import { formatResetDuration, parseResetDuration, quotaHeaders } from "./quota-headers.ts";
import type { QuotaSnapshot } from "../contract.ts";

const snapshot = (extra: Partial<QuotaSnapshot> = {}): QuotaSnapshot => ({
  model: "gemini-2.5-flash",
  quotaGroup: "proj-1",
  rpm: 5,
  requestsLeft: 3,
  requestsResetMs: 59_500,
  tpm: 250_000,
  tokensLeft: 249_120,
  tokensResetMs: 59_500,
  rpd: 20,
  dayLeft: 18,
  dayResetMs: 25_445_000,
  ...extra,
});

describe("quotaHeaders", () => {
  it("writes the minute's requests and tokens and the day's requests, with OpenAI's reset format", () => {
    expect(quotaHeaders(snapshot())).toEqual({
      "x-ratelimit-limit-requests": "5",
      "x-ratelimit-remaining-requests": "3",
      "x-ratelimit-reset-requests": "59.5s",
      "x-ratelimit-limit-tokens": "250000",
      "x-ratelimit-remaining-tokens": "249120",
      "x-ratelimit-reset-tokens": "59.5s",
      "x-ratelimit-limit-requests-day": "20",
      "x-ratelimit-remaining-requests-day": "18",
      "x-ratelimit-reset-requests-day": "7h4m5s",
    });
  });

  it("leaves out a limit the model does not have, with its remaining and reset", () => {
    const h = quotaHeaders(
      snapshot({ tpm: null, tokensLeft: null, tokensResetMs: null, rpd: null, dayLeft: null, dayResetMs: null }),
    );
    expect(Object.keys(h).sort()).toEqual([
      "x-ratelimit-limit-requests",
      "x-ratelimit-remaining-requests",
      "x-ratelimit-reset-requests",
    ]);
  });

  it("says what reserved shares keep for others and for this caller, only where they keep something", () => {
    const batch = quotaHeaders(snapshot({ kept: { rpmForOthers: 1, rpmForYou: 0, rpdForOthers: 2, rpdForYou: 0 } }));
    expect(batch["x-ratelimit-kept-others-requests"]).toBe("1");
    expect(batch["x-ratelimit-kept-others-requests-day"]).toBe("2");
    expect(batch["x-ratelimit-kept-own-requests"]).toBeUndefined();
    expect(batch["x-ratelimit-kept-own-requests-day"]).toBeUndefined();
    const person = quotaHeaders(snapshot({ kept: { rpmForOthers: 0, rpmForYou: 6, rpdForOthers: null, rpdForYou: null } }));
    expect(Object.keys(person).filter((h) => h.includes("kept"))).toEqual(["x-ratelimit-kept-own-requests"]);
    expect(person["x-ratelimit-kept-own-requests"]).toBe("6");
    // Not known (a refusal answered at once, or no share): no such header.
    expect(Object.keys(quotaHeaders(snapshot({ kept: null }))).filter((h) => h.includes("kept"))).toEqual([]);
    expect(Object.keys(quotaHeaders(snapshot())).filter((h) => h.includes("kept"))).toEqual([]);
  });

  it("never says less than 0 remaining", () => {
    expect(quotaHeaders(snapshot({ requestsLeft: -2 }))["x-ratelimit-remaining-requests"]).toBe("0");
  });
});

describe("formatResetDuration", () => {
  it("prints what Go's time.Duration prints, to the millisecond", () => {
    const cases: [number, string][] = [
      [0, "0s"],
      [-5, "0s"],
      [12, "12ms"],
      [999, "999ms"],
      [1000, "1s"],
      [1500, "1.5s"],
      [1001, "1.001s"],
      [59_500, "59.5s"],
      [61_000, "1m1s"],
      [360_000, "6m0s"],
      [3_600_000, "1h0m0s"],
      [25_445_250, "7h4m5.25s"],
      [12.2, "13ms"], // rounded up: a caller that waits that long is never early
    ];
    for (const [ms, text] of cases) expect(formatResetDuration(ms), String(ms)).toBe(text);
  });

  it("parses back what it prints", () => {
    for (const ms of [0, 7, 999, 1000, 1500, 59_999, 61_000, 360_000, 3_600_000, 25_445_250, 86_405_000]) {
      expect(parseResetDuration(formatResetDuration(ms)), String(ms)).toBe(ms);
    }
    expect(parseResetDuration("")).toBeNull();
    expect(parseResetDuration("soon")).toBeNull();
  });
});
