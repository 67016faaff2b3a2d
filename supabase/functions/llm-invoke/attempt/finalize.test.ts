// finalizeReliably with a fake clock and a store whose finalize fails a given number of times.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import type { FinalizeParams } from "../contract.ts";
import { type FinalizeClock, finalizeReliably, landsWithin } from "./finalize.ts";
import type { GatewayStore } from "../store/store.ts";

function fakeClock(): FinalizeClock & { slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
  };
}

function storeFailing(times: number) {
  const calls: FinalizeParams[] = [];
  const store = {
    finalize: (p: FinalizeParams) => {
      calls.push(p);
      return calls.length <= times
        ? Promise.reject(new GatewayError("unavailable", "The gateway's database is not reachable now; retry shortly."))
        : Promise.resolve();
    },
  } as unknown as GatewayStore;
  return { store, calls };
}

const success = (extra: Partial<FinalizeParams> = {}): FinalizeParams => ({
  reservationId: "5b0c0000-0000-4000-8000-0000000000e1",
  outcome: "succeeded",
  inputTokens: 377,
  outputTokens: 96,
  httpStatus: 200,
  errorCode: null,
  quotaId: null,
  errorMessage: null,
  latencyMs: 845,
  cooldownUntil: null,
  cooldownUntilProviderMidnight: false,
  response: { text: "the paid answer, never logged" },
  ...extra,
});

describe("finalizeReliably", () => {
  it("writes at once when the database is up", async () => {
    const { store, calls } = storeFailing(0);
    const clock = fakeClock();
    const logs: string[] = [];
    expect(await finalizeReliably(store, (m) => logs.push(m), success(), { deadline: 140_000, clock })).toBe(true);
    expect(calls).toHaveLength(1);
    expect(clock.slept).toEqual([]);
    expect(logs).toEqual([]);
  });

  it("retries a success with growing pauses until it lands", async () => {
    const { store, calls } = storeFailing(5);
    const clock = fakeClock();
    const logs: string[] = [];
    expect(await finalizeReliably(store, (m) => logs.push(m), success(), { deadline: 140_000, clock })).toBe(true);
    expect(calls).toHaveLength(6);
    expect(clock.slept).toEqual([250, 500, 1000, 2000, 4000]);
    expect(calls.every((p) => p.reservationId === success().reservationId)).toBe(true);
    expect(logs.at(-1)).toMatch(/landed on try 6/);
  });

  it("logs one replayable line, without the answer, when the budget ends first", async () => {
    const { store, calls } = storeFailing(Infinity);
    const clock = fakeClock();
    const logs: string[] = [];
    expect(await finalizeReliably(store, (m) => logs.push(m), success(), { deadline: 20_000, clock })).toBe(false);
    const lost = logs.filter((l) => l.startsWith("finalize_lost "));
    expect(lost).toHaveLength(1);
    const record = JSON.parse(lost[0]!.slice("finalize_lost ".length));
    expect(record).toMatchObject({
      reservation_id: success().reservationId,
      outcome: { kind: "succeeded", input_tokens: 377, output_tokens: 96, http_status: 200, latency_ms: 845 },
      replay_answer_lost: true,
      tries: calls.length,
    });
    expect(record.outcome).not.toHaveProperty("response");
    expect(record.last_error).toMatch(/not reachable/);
    expect(logs.join("\n")).not.toContain("paid answer");
    expect(clock.now()).toBeLessThanOrEqual(20_000);
    expect(calls.length).toBeGreaterThan(3);
  });

  it("keeps a cut stream's tiers and times in the replay line", async () => {
    const { store } = storeFailing(Infinity);
    const logs: string[] = [];
    const cut = success({
      outcome: "cut",
      cutBy: "upstream",
      response: null,
      serviceTier: "flex",
      servedTier: "standard",
      addedMs: 9,
      firstByteMs: 410,
    });
    expect(await finalizeReliably(store, (m) => logs.push(m), cut, { deadline: 20_000, clock: fakeClock() })).toBe(false);
    const record = JSON.parse(logs.find((l) => l.startsWith("finalize_lost "))!.slice(14));
    expect(record.outcome).toMatchObject({
      kind: "cut",
      cut_by: "upstream",
      service_tier: "flex",
      served_tier: "standard",
      added_ms: 9,
      first_byte_ms: 410,
    });
  });

  it("keeps the limits a cut stream's answer stated in the replay line", async () => {
    const { store } = storeFailing(Infinity);
    const logs: string[] = [];
    const cut = success({ outcome: "cut", cutBy: "client", response: null, statedLimits: { rpm: 50, tpm: 40_000 } });
    expect(await finalizeReliably(store, (m) => logs.push(m), cut, { deadline: 20_000, clock: fakeClock() })).toBe(false);
    const record = JSON.parse(logs.find((l) => l.startsWith("finalize_lost "))!.slice(14));
    expect(record.outcome.stated_limits?.slice(0, 2)).toEqual([50, 40_000]);
  });

  it("keeps an error outcome (which the caller awaits) to a short retry", async () => {
    const { store, calls } = storeFailing(Infinity);
    const clock = fakeClock();
    const logs: string[] = [];
    const rateLimited = success({
      outcome: "upstream_error",
      httpStatus: 429,
      errorCode: "RESOURCE_EXHAUSTED",
      quotaId: "GenerateRequestsPerMinutePerProjectPerModel",
      cooldownUntil: new Date("2026-11-21T10:16:00Z"),
      response: null,
    });
    expect(await finalizeReliably(store, (m) => logs.push(m), rateLimited, { deadline: 140_000, clock })).toBe(false);
    expect(clock.now()).toBeLessThanOrEqual(2_000);
    expect(calls.length).toBeGreaterThan(1);
    const record = JSON.parse(logs.find((l) => l.startsWith("finalize_lost "))!.slice(14));
    expect(record).toMatchObject({
      outcome: { kind: "upstream_error", http_status: 429, cooldown_until: "2026-11-21T10:16:00.000Z" },
      replay_answer_lost: false,
    });
  });
});

describe("landsWithin (a finalize written before its answer)", () => {
  it("true once the write lands; false when it has not by the bound, the write going on", async () => {
    expect(await landsWithin(Promise.resolve(true), 1_000)).toBe(true);
    let land!: () => void;
    const slow = new Promise<void>((resolve) => land = resolve);
    expect(await landsWithin(slow, 5)).toBe(false);
    land();
    await slow;
  });
});
