// Waiting by polling, the rule llm-invoke followed before its admission queue, kept as the baseline
// the benchmark measures the queue against (and the rule its clients of other limiters follow).
// A refusal names when capacity reopens (retryAfterMs); a waiter
// sleeps until then plus a random jitter (so waiters do not stampede), or sooner when the database
// says capacity may be given back before then (recheckAfterMs), never beyond what is
// left of its own wait budget. A reopening further away than a whole minute window (60 s + guard)
// that the budget cannot reach (a day quota, a long cooldown) is answered at once: nothing frees it sooner.

/** Sleep when the refusal names no time: poll again after this long. */
export const UNKNOWN_REOPENING_POLL_MS = 1_000;
/** Reopenings further away than this (a sliding window and its guard) are only waited for when the budget reaches them. */
export const HOPELESS_BEYOND_MS = 65_000;

export interface WaitQuestion {
  /** When the refused capacity reopens, as the database said (null: it does not know). */
  retryAfterMs: number | null;
  /** Sooner, when capacity may be given back before then (tokens of the window still in flight). */
  recheckAfterMs?: number | null;
  /** What is left of the caller's wait budget (max_wait_ms less what it slept, within the deadline). */
  remainingMs: number;
  /** This sleep's jitter, drawn by the caller from [0, jitterMs). */
  jitterMs: number;
}

export type WaitDecision = { wait: true; sleepMs: number } | { wait: false };

export function decideWait({ retryAfterMs, recheckAfterMs, remainingMs, jitterMs }: WaitQuestion): WaitDecision {
  if (remainingMs <= 0) return { wait: false };
  if (retryAfterMs !== null && retryAfterMs > remainingMs && retryAfterMs > HOPELESS_BEYOND_MS) return { wait: false };
  const reopening = retryAfterMs === null ? UNKNOWN_REOPENING_POLL_MS : retryAfterMs + jitterMs;
  const wanted = recheckAfterMs == null ? reopening : Math.min(reopening, recheckAfterMs + jitterMs);
  return { wait: true, sleepMs: Math.min(wanted, remainingMs) };
}
