// Waiting by polling, for any limiter: try; when refused, ask the polling rule (polling-policy.ts,
// llm-invoke's rule before its admission queue: the retry time the limiter named plus a random
// jitter of up to `jitterMs`, never beyond `maxWaitMs` of accumulated sleep), sleep, try again; give up
// when it says so. The same loop drives our RPC, the naive limiter and rate-limiter-flexible, so the
// three are compared under one client behaviour.
import { setMaxListeners } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { decideWait } from "./polling-policy.ts";
import { minuteOf } from "./clock.ts";

export type TryResult = { ok: true; window?: number } | { ok: false; retryAfterMs: number | null };

export interface WaitRecord {
  id: number;
  arrivedAt: number;
  /** When the admitting call returned (client clock, epoch ms). */
  admittedAt: number | null;
  /** When the admitting call was sent: the decision lies between this and admittedAt. */
  admitCallStartedAt: number | null;
  /** Minute window the limiter booked the admission in (epoch ms), when it says. */
  window: number | null;
  gaveUpAt: number | null;
  /** Still waiting when the run ended. */
  cutOff: boolean;
  /** Sleep accumulated, as llm-invoke accounts it (waited_ms). */
  waitedMs: number;
  /** Why a WAIT request was refused in the end, as the 429 says (llm-invoke's refusal cause). */
  cause?: string;
  error?: string;
}

export interface WaitPolicy {
  jitterMs: number;
  maxWaitMs: number;
  /** Ends every sleeping waiter (the run is over). */
  signal: AbortSignal;
}

/** A waiter's record as it arrives (now). */
export function waitRecord(id: number): WaitRecord {
  const unset = { admittedAt: null, admitCallStartedAt: null, window: null, gaveUpAt: null };
  return { id, arrivedAt: Date.now(), ...unset, cutOff: false, waitedMs: 0 };
}

/** A signal that ends the run at `stopAt` (epoch ms); `clear()` once the run is over before it. */
export function abortAt(stopAt: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per sleeping waiter
  const timer = setTimeout(() => controller.abort(), Math.max(0, stopAt - Date.now()));
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Sleeps `ms`; false when the signal ended the sleep first. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return delay(Math.max(0, ms), true, { signal }).catch(() => false);
}

export async function waitForAdmission(id: number, tryOnce: () => Promise<TryResult>, policy: WaitPolicy): Promise<WaitRecord> {
  const rec = waitRecord(id);
  for (;;) {
    if (policy.signal.aborted) {
      rec.cutOff = true;
      return rec;
    }
    const started = Date.now();
    let r: TryResult;
    try {
      r = await tryOnce();
    } catch (error) {
      rec.error = error instanceof Error ? error.message : String(error);
      rec.gaveUpAt = Date.now();
      return rec;
    }
    if (r.ok) {
      rec.admittedAt = Date.now();
      rec.admitCallStartedAt = started;
      rec.window = r.window ?? minuteOf(rec.admittedAt);
      return rec;
    }
    const decision = decideWait({
      retryAfterMs: r.retryAfterMs,
      remainingMs: policy.maxWaitMs - rec.waitedMs,
      jitterMs: Math.floor(Math.random() * policy.jitterMs),
    });
    if (!decision.wait) {
      rec.gaveUpAt = Date.now();
      return rec;
    }
    const slept = decision.sleepMs;
    if (!(await abortableSleep(slept, policy.signal))) {
      rec.cutOff = true;
      return rec;
    }
    rec.waitedMs += slept;
  }
}

/** Starts one waiter per arrival time (epoch ms) and resolves with all records. */
export async function driveArrivals(
  arrivals: readonly number[],
  start: (id: number) => Promise<WaitRecord>,
  ids: readonly number[] = arrivals.map((_, i) => i),
): Promise<WaitRecord[]> {
  const running: Promise<WaitRecord>[] = [];
  for (const [k, at] of arrivals.entries()) {
    const delay = at - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    running.push(start(ids[k]!));
  }
  return Promise.all(running);
}

/** `callers` calls of `tryOnce` fired at once: how many were admitted, refused, or failed (and the first failure). */
export async function fireAtOnce(callers: number, tryOnce: (i: number) => Promise<TryResult>) {
  let admitted = 0;
  let refused = 0;
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(Array.from({ length: callers }, async (_, i) => {
    try {
      if ((await tryOnce(i)).ok) admitted++;
      else refused++;
    } catch (error) {
      errors++;
      firstError ??= String(error);
    }
  }));
  return { admitted, refused, errors, ...(firstError ? { firstError } : {}) };
}

export type Burst = Awaited<ReturnType<typeof fireAtOnce>>;
