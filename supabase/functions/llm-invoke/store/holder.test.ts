import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import type { FinalizeParams } from "../contract.ts";
import { finalizeReliably } from "../attempt/finalize.ts";
import type { GatewayStore } from "./store.ts";
import { claimEnd, holderTimes } from "./holder.ts";

const T = Date.parse("2026-11-24T10:00:00Z");
const HOLDER = "6f1c0000-0000-4000-8000-000000000027";

describe("holderTimes", () => {
  it("asks for the commit a margin before the caller gives up, and holds until the invocation's end + two deadlines", () => {
    expect(holderTimes(T, 6_000, { id: HOLDER, invocationEnd: T + 140_000 })).toEqual({
      reply_by: "2026-11-24T10:00:05.000Z",
      hold_until: "2026-11-24T10:02:32.000Z", // 140 s + 2 × 6 s
      holder: HOLDER,
    });
  });

  it("names no hold and no holder for a request the caller did not name (it has no claim)", () => {
    expect(holderTimes(T, 6_000, null)).toEqual({ reply_by: "2026-11-24T10:00:05.000Z" });
  });

  it("keeps the margin within a quarter of a short deadline, and never holds for less than the reply", () => {
    expect(holderTimes(T, 2_000, { id: HOLDER, invocationEnd: T - 10_000 })).toEqual({
      reply_by: "2026-11-24T10:00:01.500Z",
      hold_until: "2026-11-24T10:00:01.500Z",
      holder: HOLDER,
    });
  });
});

describe("the claim of an invocation whose success is still being finalized", () => {
  it("outlasts the last finalize try of a success, each try taking its whole database deadline", async () => {
    // Google answered at once; the database then answers nothing: every try runs into its deadline.
    const deadlineMs = 6_000;
    const invocationEnd = T + 140_000;
    let now = T + 1_000;
    const starts: number[] = [];
    const store = {
      finalize: (_p: FinalizeParams) => {
        starts.push(now);
        now += deadlineMs;
        return Promise.reject(new GatewayError("unavailable", "The gateway's database is not reachable now."));
      },
    } as unknown as GatewayStore;
    const clock = { now: () => now, sleep: (ms: number) => (now += ms, Promise.resolve()) };
    const success = {
      reservationId: "5b0c0000-0000-4000-8000-0000000000e1",
      outcome: "succeeded",
      inputTokens: 3,
      outputTokens: 4,
      httpStatus: 200,
      errorCode: null,
      quotaId: null,
      errorMessage: null,
      latencyMs: 800,
      cooldownUntil: null,
      cooldownUntilProviderMidnight: false,
      response: { text: "paid" },
    } satisfies FinalizeParams;
    expect(await finalizeReliably(store, () => {}, success, { deadline: invocationEnd, clock })).toBe(false);

    // The reservation's claim, as its statement (made before the call to Google) named it.
    const holdUntil = Date.parse(holderTimes(T, deadlineMs, { id: HOLDER, invocationEnd }).hold_until!);
    const lastTry = Math.max(...starts);
    expect(lastTry).toBeGreaterThan(T + 60_000); // the finalize did go on past a minute
    // The last try's statement may commit up to one deadline after it was sent, and its commit
    // may take one more: the claim is still held then.
    expect(holdUntil).toBeGreaterThanOrEqual(lastTry + 2 * deadlineMs);
    expect(holdUntil).toBe(claimEnd(invocationEnd, deadlineMs));
  });
});
