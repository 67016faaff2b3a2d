// What compare-revisions.ts reads from a run's results and how it summarises them, and the wait sampler's
// averages: pure functions, checked on made-up figures.
import { describe, expect, it } from "vitest";
import { hotRowFigures, hotRowVerdicts, medianOf, overheadFigures, overheadVerdicts, type PartJson } from "../../bench/lib/compare-figures.ts";
import { summariseWaits } from "../../bench/lib/wait-sampler.ts";

const cell = (target: string, connections: number, p50: number, p99: number) => ({ target, connections, totalCalls: 100, addedMs: { p50, p99 } });

/** gateway-overhead's JSON as the part writes it, at the given concurrencies. */
function overheadJson(ratio16: number, concurrencies = [1, 16]): PartJson {
  const hi = Math.max(...concurrencies);
  return {
    checks: [],
    data: {
      cells: concurrencies.flatMap((n) => [cell("llm-invoke-edge", n, n === 1 ? 3 : 20, 60), cell("portkey", n, n === 1 ? 2 : 20 / ratio16, 30)]),
      ratios: concurrencies.map((n) => ({ concurrency: n, toPortkey: { p50: n === 1 ? 1.5 : ratio16 } })),
      cpu: { concurrency: hi, perRequest: [{ target: "llm-invoke-edge", postgresMs: 2, denoMs: 1 }, { target: "floor", postgresMs: 0.3, denoMs: 0.2 }] },
      waits: { concurrency: hi, active: 4, lock: 2.5, walSync: 0.5, walWriteLock: 0.25, cpu: 0.75 },
    },
  };
}

describe("compare-revisions' figures", () => {
  it("reads gateway-overhead at c=1 and c=16 by name", () => {
    const f = overheadFigures(overheadJson(2.5));
    expect(f.addedP50).toEqual({ c1: 3, c16: 20 });
    expect(f.toPortkey).toEqual({ c1: 1.5, c16: 2.5 });
    expect(f.addedP99c16).toBe(60);
    expect(f.postgresMs).toBe(2);
    expect(f.waits).toEqual({ active: 4, lock: 2.5, walSync: 0.5, walWriteLock: 0.25, cpu: 0.75 });
  });

  it("says nothing at c=16 for a run whose highest concurrency is another", () => {
    const f = overheadFigures(overheadJson(2.5, [1, 4]));
    expect(f.addedP50.c16).toBeNull();
    expect(f.postgresMs).toBeNull();
    expect(f.waits.lock).toBeNull();
    expect(f.addedP50.c1).toBe(3);
  });

  it("reads the hot row at 8 and 32 connections", () => {
    const cells = [8, 32].flatMap((n) => [
      { variant: "entry", connections: n, admissionsPerSecond: n * 10, toRlflex: 0.5, cpuMsPerAdmission: 1.5,
        ...(n === 8 ? { ofCpuLeftAllows: 0.85 } : {}) },
      { variant: "rlflex", connections: n, admissionsPerSecond: n * 20, toRlflex: null, cpuMsPerAdmission: 0.3 },
      ...(n === 8 ? [{ variant: "batch", connections: n, admissionsPerSecond: 120, toRlflex: 0.75, cpuMsPerAdmission: 1 }] : []),
    ]);
    expect(hotRowFigures({ checks: [], data: { entry: "call", cells } })).toEqual({
      entry: "call",
      at: {
        c8: { rate: 80, rlflex: 160, toRlflex: 0.5, cpuMs: 1.5, reachedLeft: 0.85, batch: 120, batchCpuMs: 1 },
        c32: { rate: 320, rlflex: 640, toRlflex: 0.5, cpuMs: 1.5, reachedLeft: null, batch: null, batchCpuMs: null },
      },
    });
  });

  it("says whether the hot row doubled, or else reached 80% of what its CPU allows on the cores the clients leave", () => {
    const at = (rate: number, reachedLeft: number | null) =>
      ({ rate, rlflex: 1000, toRlflex: rate / 1000, cpuMs: 4, reachedLeft, batch: null, batchCpuMs: null });
    const base = [{ entry: "statement", at: { c8: at(300, 0.7), c32: at(200, 0.7) } }];
    const verdict = (c8: number | null, c32: number | null) =>
      hotRowVerdicts(base, [{ entry: "call", at: { c8: at(400, c8), c32: at(250, c32) } }])[1];
    expect(verdict(0.85, 0.81)).toContain("≥ 2× base's at 8 and 32 connections: no; or, where the CPU cannot give it, ≥ 80% of what that CPU allows on the cores the clients leave at both: yes.");
    expect(verdict(0.85, 0.79)).toContain("at both: no.");
    expect(verdict(0.85, null)).toContain("at both: —.");
    expect(hotRowVerdicts(base, [{ entry: "call", at: { c8: at(600, null), c32: at(400, null) } }])[1]).toContain("connections: yes;");
  });

  it("takes each figure's median across rounds (of two, their mean), nulls left out", () => {
    const m = medianOf([{ a: 1, b: { c: null as number | null }, s: "call" }, { a: 3, b: { c: 5 }, s: "call" }, { a: 10, b: { c: 7 }, s: "call" }]);
    expect(m).toEqual({ a: 3, b: { c: 6 }, s: "call" });
  });

  it("says whether every round of head stays within 2× Portkey at c=16", () => {
    const base = [overheadFigures(overheadJson(2.7)), overheadFigures(overheadJson(2.3))];
    const ok = overheadVerdicts(base, [overheadFigures(overheadJson(1.5)), overheadFigures(overheadJson(1.9))]);
    expect(ok[1]).toContain("in every round: yes");
    const notYet = overheadVerdicts(base, [overheadFigures(overheadJson(1.5)), overheadFigures(overheadJson(2.1))]);
    expect(notYet[1]).toContain("in every round: no");
    expect(notYet[2]).toContain("base 3, head 3 (≤ 0.5: no)");
  });
});

describe("the wait sampler's averages", () => {
  it("divides each state's summed backends by the samples", () => {
    const counts = [
      { event: "Lock:transactionid", entry: "google_ai_finalize_call", blockedBy: "google_ai_reserve_calls", n: 4 },
      { event: "Lock:transactionid", entry: "google_ai_reserve_calls", blockedBy: "google_ai_finalize_call", n: 2 },
      { event: "Lock:advisory", entry: "other", blockedBy: "other", n: 2 },
      { event: "IO:WalSync", entry: "google_ai_reserve_calls", blockedBy: null, n: 2 },
      { event: "LWLock:WALWrite", entry: "google_ai_reserve_call", blockedBy: null, n: 4 },
      { event: "CPU", entry: "google_ai_reserve_calls", blockedBy: null, n: 3 },
      { event: "Client:ClientRead", entry: "other", blockedBy: null, n: 1 },
    ];
    const w = summariseWaits(counts, 4, 12);
    expect(w).toMatchObject({ samples: 4, meanIntervalMs: 3, active: 4.5, lock: 2, walSync: 0.5, walWriteLock: 1, cpu: 0.75 });
    expect(w.byEvent[0]).toEqual({ event: "Lock:transactionid", mean: 1.5 });
    expect(w.byStatement[0]).toEqual({ event: "Lock:transactionid", entry: "google_ai_finalize_call", blockedBy: "google_ai_reserve_calls", mean: 1 });
  });
});
