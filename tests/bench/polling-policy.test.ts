import { describe, expect, it } from "vitest";
import { decideWait, HOPELESS_BEYOND_MS, UNKNOWN_REOPENING_POLL_MS } from "../../bench/lib/polling-policy.ts";

describe("decideWait", () => {
  it("sleeps until capacity reopens plus the jitter", () => {
    expect(decideWait({ retryAfterMs: 2_300, remainingMs: 60_000, jitterMs: 120 })).toEqual({ wait: true, sleepMs: 2_420 });
  });

  it("never sleeps beyond what is left of the wait budget", () => {
    expect(decideWait({ retryAfterMs: 30_000, remainingMs: 4_000, jitterMs: 0 })).toEqual({ wait: true, sleepMs: 4_000 });
  });

  it("polls when the refusal names no time", () => {
    expect(decideWait({ retryAfterMs: null, remainingMs: 60_000, jitterMs: 200 })).toEqual({
      wait: true,
      sleepMs: UNKNOWN_REOPENING_POLL_MS,
    });
  });

  it("gives up when the budget is spent", () => {
    expect(decideWait({ retryAfterMs: 10, remainingMs: 0, jitterMs: 0 })).toEqual({ wait: false });
  });

  it("answers at once a reopening beyond a minute that the budget cannot reach (a day quota)", () => {
    expect(decideWait({ retryAfterMs: HOPELESS_BEYOND_MS + 1, remainingMs: 60_000, jitterMs: 0 })).toEqual({ wait: false });
    // ...but waits for it when the budget does reach it.
    expect(decideWait({ retryAfterMs: 90_000, remainingMs: 120_000, jitterMs: 0 })).toEqual({ wait: true, sleepMs: 90_000 });
    // A full sliding window (60 s + guard) is waited for within the default budget.
    expect(decideWait({ retryAfterMs: 61_000, remainingMs: 65_000, jitterMs: 0 })).toEqual({ wait: true, sleepMs: 61_000 });
  });
});

describe("decideWait with capacity that may be given back", () => {
  it("asks again at the recheck time when it comes before the reopening", () => {
    expect(decideWait({ retryAfterMs: 45_000, recheckAfterMs: 2_000, remainingMs: 60_000, jitterMs: 50 })).toEqual({
      wait: true,
      sleepMs: 2_050,
    });
  });

  it("keeps the reopening when it is sooner", () => {
    expect(decideWait({ retryAfterMs: 500, recheckAfterMs: 2_000, remainingMs: 60_000, jitterMs: 0 })).toEqual({
      wait: true,
      sleepMs: 500,
    });
  });
});
