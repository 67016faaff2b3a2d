import { describe, expect, it } from "vitest";
import { afterAdmissionMs, holderTimes, nextContactBy } from "./holder.ts";

const T = Date.parse("2026-11-24T10:00:00Z");
const OPTIONS = { attemptTimeoutMs: 45_000, backoffBaseMs: 250, jitterMs: 250 };

describe("holderTimes", () => {
  it("asks for the commit a margin before the caller gives up, and holds until the next statement has landed", () => {
    expect(holderTimes(T, 6_000, T + 60_000)).toEqual({
      reply_by: "2026-11-24T10:00:05.000Z",
      hold_until: "2026-11-24T10:01:12.000Z", // the next statement's send time + two deadlines
    });
  });

  it("names no hold for a request the caller did not name (it has no claim)", () => {
    expect(holderTimes(T, 6_000, null)).toEqual({ reply_by: "2026-11-24T10:00:05.000Z" });
  });

  it("keeps the margin within a quarter of a short deadline, and never holds for less than the reply", () => {
    expect(holderTimes(T, 2_000, T - 10_000)).toEqual({
      reply_by: "2026-11-24T10:00:01.500Z",
      hold_until: "2026-11-24T10:00:01.500Z",
    });
  });
});

describe("nextContactBy", () => {
  it("is after the time an admission allows, never after the invocation's end", () => {
    expect(nextContactBy(T, 50_000, T + 140_000)).toBe(T + 50_000);
    expect(nextContactBy(T, 50_000, T + 20_000)).toBe(T + 20_000);
  });
});

describe("afterAdmissionMs", () => {
  it("covers the call to Google, an error outcome's finalize tries and the longest backoff", () => {
    expect(afterAdmissionMs(OPTIONS, false, 3, 2_000)).toBe(45_000 + 2_000 + 1_000 + 250);
  });

  it("lets a stream run to the invocation's end", () => {
    expect(nextContactBy(T, afterAdmissionMs(OPTIONS, true, 3, 2_000), T + 140_000)).toBe(T + 140_000);
  });
});
