import { describe, expect, it } from "vitest";
import { MONEY_REST_MS } from "../../_shared/vocabulary.ts";
import { moneyRested, moneyRestMs, monthTurnAfter } from "./money-rest.ts";
import { failureRecord } from "./attempt-record.ts";
import type { UpstreamError } from "../../_shared/upstream/port.ts";

const at = (iso: string) => Date.parse(iso);
const PACIFIC = "America/Los_Angeles";

describe("the month's turn in the provider's zone", () => {
  it.each([
    ["2026-11-30T23:40:00Z", "UTC", "2026-12-01T00:00:00.000Z"],
    ["2026-11-30T23:40:00Z", PACIFIC, "2026-12-01T08:00:00.000Z"],
    ["2026-12-01T08:10:00Z", PACIFIC, "2027-01-01T08:00:00.000Z"],
    ["2026-12-31T23:59:59Z", "UTC", "2027-01-01T00:00:00.000Z"],
    // Summer time on the turn (PDT, UTC-7), and a zone ahead of UTC.
    ["2026-10-31T12:00:00Z", PACIFIC, "2026-11-01T07:00:00.000Z"],
    ["2026-03-31T12:00:00Z", "Europe/Riga", "2026-03-31T21:00:00.000Z"],
  ])("after %s in %s: %s", (now, zone, turn) => {
    expect(new Date(monthTurnAfter(at(now), zone)).toISOString()).toBe(turn);
  });
});

describe("a money refusal's rest", () => {
  it("a monthly cap rests until the month's turn where it comes within the hour, else the hour", () => {
    expect(moneyRestMs("monthly_cap", at("2026-11-30T23:40:00Z"), "UTC")).toBe(20 * 60_000);
    expect(moneyRestMs("billing_cap", at("2026-12-01T07:15:00Z"), PACIFIC)).toBe(45 * 60_000);
    expect(moneyRestMs("monthly_cap", at("2026-11-30T23:40:00Z"), PACIFIC)).toBe(MONEY_REST_MS);
    expect(moneyRestMs("monthly_cap", at("2026-11-15T12:00:00Z"), "UTC")).toBe(MONEY_REST_MS);
  });

  it("empty credits do not refill with the month: an hour", () => {
    expect(moneyRestMs("credits_depleted", at("2026-11-30T23:40:00Z"), "UTC")).toBe(MONEY_REST_MS);
  });

  it("finalize rests the group that long, and the caller is told the same end", () => {
    const now = at("2026-11-30T23:40:00Z");
    const error = {
      kind: "http", class: "rate_limited", quotaCause: "monthly_cap", retryAfterMs: 5_000, httpStatus: 429,
      status: "RESOURCE_EXHAUSTED", reason: null, quotaId: null, message: "spending cap",
    } as unknown as UpstreamError;
    const record = failureRecord({ reservationId: "r", latencyMs: 1, error, now, dayZone: "UTC", defaultCooldownMs: 30_000 });
    expect(record.cooldownUntil?.toISOString()).toBe("2026-12-01T00:00:00.000Z");
    expect(moneyRested(error, record.cooldownUntil, now).retryAfterMs).toBe(20 * 60_000);
    const minute = { ...error, quotaCause: "minute" } as UpstreamError;
    expect(moneyRested(minute, record.cooldownUntil, now)).toBe(minute);
  });
});
