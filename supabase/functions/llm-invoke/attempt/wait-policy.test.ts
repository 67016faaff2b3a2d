import { describe, expect, it } from "vitest";
import { nextTurn, waitLeftForDatabase } from "./wait-policy.ts";

const queued = (retryAfterMs: number) => ({
  retryAfterMs,
  queue: { ticket: "t-1", position: 3, expectedAt: "2026-11-22T10:00:00Z", priority: "batch" },
});

describe("nextTurn", () => {
  it("sleeps exactly until the turn the database named, without jitter, keeping the ticket", () => {
    expect(nextTurn(queued(6_800), 60_000)).toEqual({ wait: true, sleepMs: 6_800, ticket: "t-1" });
  });

  it("does not wait without a ticket: the refusal was final", () => {
    expect(nextTurn({ retryAfterMs: 6_800, queue: undefined }, 60_000)).toEqual({ wait: false });
  });

  it("does not wait for a turn beyond what is left of the wait", () => {
    expect(nextTurn(queued(6_800), 5_000)).toEqual({ wait: false });
    expect(nextTurn(queued(10), 0)).toEqual({ wait: false });
  });
});

describe("waitLeftForDatabase", () => {
  it("keeps back the round trip, never below zero", () => {
    expect(waitLeftForDatabase(5_000)).toBe(4_900);
    expect(waitLeftForDatabase(50)).toBe(0);
  });
});
