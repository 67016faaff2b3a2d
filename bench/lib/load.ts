// A closed-loop load generator: each worker owns one client (one connection) and issues its next
// call as soon as the previous one returns. Calls that start during the warm-up are not counted;
// calls that start in the measured window are counted with their latency.
import { performance } from "node:perf_hooks";
import { roundSummary, summarize } from "./stats.ts";

export interface LoadOptions<C> {
  clients: readonly C[];
  warmupMs: number;
  durationMs: number;
  /** Returns an outcome label, e.g. "admitted" / "refused". Throwing counts as an error. */
  call: (client: C, worker: number, seq: number) => Promise<string>;
}

export type LoadResult = Awaited<ReturnType<typeof closedLoop>>;

export async function closedLoop<C>(options: LoadOptions<C>) {
  const { clients, warmupMs, durationMs, call } = options;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const stopAt = measureFrom + durationMs;
  const latencies: number[] = [];
  const outcomes: Record<string, number> = {};
  let errors = 0;
  let firstError: string | undefined;
  let lastEnd = measureFrom;
  let totalCalls = 0;

  await Promise.all(
    clients.map(async (client, worker) => {
      for (let seq = 0; ; seq++) {
        const t0 = performance.now();
        if (t0 >= stopAt) return;
        let outcome: string;
        try {
          outcome = await call(client, worker, seq);
        } catch (error) {
          outcome = "error";
          errors++;
          firstError ??= error instanceof Error ? error.message : String(error);
          if (errors > 1000) throw new Error(`too many errors; first: ${firstError}`);
        }
        const t1 = performance.now();
        totalCalls++;
        if (t0 >= measureFrom) {
          latencies.push(t1 - t0);
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          if (t1 > lastEnd) lastEnd = t1;
        }
      }
    }),
  );

  // Calls started before stopAt may end a little after it: divide by the time they really took.
  const measuredMs = Math.max(durationMs, lastEnd - measureFrom);
  return {
    connections: clients.length,
    measuredMs: Math.round(measuredMs),
    calls: latencies.length,
    /** Every call that completed, warm-up included (for per-call costs such as WAL bytes). */
    totalCalls,
    callsPerSecond: Math.round((latencies.length / measuredMs) * 1000),
    /** Milliseconds per call, as seen by the client (one round trip + server time). */
    latencyMs: roundSummary(summarize(latencies), 3),
    outcomes,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    /** Raw latencies (ms) of the measured calls, for pooling rounds; never written to JSON. */
    samples: latencies,
  };
}

/**
 * Runs `each` on every item once per round, in an order rotated each round so that none always goes
 * first; returns each item's results in round order.
 */
export async function rotatedRounds<T, R>(items: readonly T[], rounds: number, each: (it: T, r: number) => Promise<R>) {
  const results = new Map<T, R[]>(items.map((it) => [it, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < items.length; i++) {
      const it = items[(i + r) % items.length]!;
      results.get(it)!.push(await each(it, r));
    }
  }
  return results;
}

/** Pools several rounds of the same cell: calls/s is the median round, latency over all calls. */
export function poolRounds(rounds: LoadResult[]): Omit<LoadResult, "samples"> & { rounds: number[] } {
  const samples = rounds.flatMap((r) => r.samples);
  const rates = rounds.map((r) => r.callsPerSecond).sort((a, b) => a - b);
  const outcomes: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
  const firstError = rounds.find((r) => r.firstError !== undefined)?.firstError;
  return {
    connections: rounds[0]!.connections,
    measuredMs: rounds.reduce((s, r) => s + r.measuredMs, 0),
    calls: samples.length,
    totalCalls: rounds.reduce((s, r) => s + r.totalCalls, 0),
    callsPerSecond: rates[Math.floor((rates.length - 1) / 2)]!,
    rounds: rounds.map((r) => r.callsPerSecond),
    latencyMs: roundSummary(summarize(samples), 3),
    outcomes,
    errors: rounds.reduce((s, r) => s + r.errors, 0),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
