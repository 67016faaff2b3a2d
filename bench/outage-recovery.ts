// The recovery half of part 6: after an outage (a freeze, a fast restart of PostgreSQL, a restart of
// the pooler) cut the requests in flight, how soon is llm-invoke serving again?
//   - repeats: the callers cut by the outage repeat their request_id every 100 ms from the moment
//     the database answers again: the time to the last 503 and to the last repeat served;
//   - bursts: after a quiet pause (1, 3, 10 s) the first burst of concurrent fresh requests: its 503s.
// Counts are checked (0 503s in a burst; every cut caller served, none answered anything but 200
// later than 1 s after the return), times are reported.
import { randomBytes } from "node:crypto";
import { sleep } from "./lib/clock.ts";
import { countBy } from "./lib/stats.ts";

export interface RecoveryCall {
  status: number;
  code: string | null;
  /** performance.now() when the answer arrived. */
  at: number;
}

/** How the database (or the pooler) is taken away and brought back. */
export interface Cut {
  down: () => Promise<unknown>;
  /** It answers again when this resolves. */
  up: () => Promise<unknown>;
}

export interface Outage extends Cut {
  id: string;
  title: string;
  /** The least time it stays away (the requests in flight may end sooner). */
  holdMs?: number;
}

export interface RecoveryConfig {
  /** Concurrent requests cut by the outage, and of each burst. */
  crowd: number;
  /** Quiet pauses between the database's return and a burst. */
  pausesMs: number[];
}

export type RecoveryResult = Awaited<ReturnType<typeof measureRecovery>>;

/** Answers by status and error code: "200", "503 unavailable". */
export const tally = (calls: Pick<RecoveryCall, "status" | "code">[]) =>
  countBy(calls, (c) => `${c.status} ${c.code ?? ""}`.trim());
const REPEAT_EVERY_MS = 100;
const REPEAT_FOR_MS = 15_000;

/** Runs `work` while `cut` has taken the database away, then brings it back. */
export async function during<T>(cut: Cut, work: () => Promise<T>): Promise<T> {
  await cut.down();
  try {
    return await work();
  } finally {
    await cut.up();
  }
}

/** `inFlight` run during the outage, and when the database answered again (performance.now()). */
async function cut<T>(outage: Outage, inFlight: () => Promise<T>) {
  const [result] = await during(outage, () => Promise.all([inFlight(), sleep(outage.holdMs ?? 0)]));
  return { result, returnedAt: performance.now() };
}

export async function measureRecovery(
  cfg: RecoveryConfig,
  outage: Outage,
  invoke: (requestId?: string) => Promise<RecoveryCall>,
  healthy: () => Promise<void>,
  log: (s: string) => void,
) {
  // Repeats: each cut caller repeats its request_id until served.
  await healthy();
  const ids = Array.from({ length: cfg.crowd }, (_, i) => `recovery-${outage.id}-${i}-${randomBytes(4).toString("hex")}`);
  const { result: cutCalls, returnedAt } = await cut(outage, () => Promise.all(ids.map((id) => invoke(id))));
  const repeatAnswers: RecoveryCall[] = [];
  const callers = await Promise.all(ids.map(async (id) => {
    let lastFailedMs = 0;
    while (performance.now() - returnedAt < REPEAT_FOR_MS) {
      const answer = await invoke(id);
      repeatAnswers.push(answer);
      if (answer.status === 200) return { servedMs: answer.at - returnedAt, lastFailedMs };
      lastFailedMs = answer.at - returnedAt;
      await sleep(REPEAT_EVERY_MS);
    }
    return { servedMs: null, lastFailedMs };
  }));
  const servedAt = callers.map((c) => c.servedMs);
  const unavailable = repeatAnswers.filter((a) => a.status === 503).map((a) => a.at - returnedAt);
  const repeats = {
    /** Answers to the requests the outage cut (expected: every one 503). */
    cut: tally(cutCalls),
    /** Milliseconds from the return to the last 503 any repeat got (0: none after the return). */
    lastUnavailableMs: Math.max(0, ...unavailable),
    /** Milliseconds from the return to the last repeat served (null: one was never served); the
     * served call's own time (the model's answer included) is in it. */
    allServedMs: servedAt.some((t) => t === null) ? null : Math.max(...(servedAt as number[])),
    /** Callers answered anything but 200 more than 1 s after the return, or never served: the
     * gateway's part of coming back, without the time a served call itself takes (which a busy
     * machine stretches). */
    failedLate: callers.filter((c) => c.servedMs === null || c.lastFailedMs > 1_000).length,
    answers: tally(repeatAnswers),
  };
  log(`   ${outage.title}, ${cfg.crowd} cut callers repeating: last 503 ${Math.round(repeats.lastUnavailableMs)} ms after the return, all served by ${repeats.allServedMs === null ? "never" : `${Math.round(repeats.allServedMs)} ms`}; answers ${JSON.stringify(repeats.answers)}`);

  // Bursts: the first burst after a quiet pause.
  const bursts: { pauseMs: number; burst: Record<string, number>; unavailable: number }[] = [];
  for (const pauseMs of cfg.pausesMs) {
    await healthy();
    await cut(outage, () => Promise.all(Array.from({ length: cfg.crowd }, () => invoke())));
    await sleep(pauseMs);
    const burst = await Promise.all(Array.from({ length: cfg.crowd }, () => invoke()));
    bursts.push({ pauseMs, burst: tally(burst), unavailable: burst.filter((c) => c.status === 503).length });
    log(`   ${outage.title}, first burst of ${cfg.crowd} after ${pauseMs / 1000} s quiet: ${JSON.stringify(tally(burst))}`);
  }
  return { outage: outage.id, title: outage.title, repeats, bursts };
}
