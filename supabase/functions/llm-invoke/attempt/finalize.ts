// Finalize that does not lose a paid answer: the outcome of a call to a provider is written with
// google_ai_finalize, retried with backoff while the database cannot take it, until it lands or the
// invocation's wall-clock budget ends. A success runs this after the response where the runtime
// allows (EdgeRuntime.waitUntil), so the caller does not wait for the retries (one written before its
// answer, the provider's room near its end, is waited for WRITTEN_FIRST_WAIT_MS at most); an error
// outcome is awaited (the next reservation must see its cooldown) and so retries only briefly.
//
// What could still not be written is logged as one structured line, `finalize_lost {json}`, with
// everything google_ai_finalize needs to replay it (the reservation and its outcome record): never
// a key, never the answer text.
import { sanitizeError } from "../../_shared/sanitize.ts";
import type { FinalizeParams } from "../contract.ts";
import { settledWithin } from "../clock.ts";
import type { GatewayStore } from "../store/store.ts";
import { type AttemptOutcome, attemptOutcome } from "../store/attempt-outcome.ts";

export interface FinalizeClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface FinalizeRetry {
  /** Epoch ms after which no further try starts (the invocation's wall-clock budget). */
  deadline: number;
  clock: FinalizeClock;
  /** First pause between tries; doubles up to maxBackoffMs. */
  backoffBaseMs?: number;
  maxBackoffMs?: number;
  /** How long an error outcome (awaited by the caller) keeps trying. */
  errorOutcomeBudgetMs?: number;
}

export const FINALIZE_BACKOFF_BASE_MS = 250;
export const FINALIZE_MAX_BACKOFF_MS = 4_000;
export const ERROR_OUTCOME_BUDGET_MS = 2_000;
/**
 * How long an answer waits for a success's finalize written before it (room.ts); past that it leaves,
 * the write going on after it: a database that cannot take the write now must not hold a paid answer
 * (nor, while it cannot, commit the caller's next reservation).
 */
export const WRITTEN_FIRST_WAIT_MS = ERROR_OUTCOME_BUDGET_MS;

/** True once `write` settles, false after `ms` of wall time (the write goes on). */
export function landsWithin(write: Promise<unknown>, ms: number): Promise<boolean> {
  return settledWithin(write.then(() => true), ms, false);
}

/**
 * The replay record of a finalize that never landed (logged as `finalize_lost {json}`): the reservation
 * and its outcome as the store sends them (attemptOutcome), without the answer. Replayed as logged:
 * `select public.google_ai_finalize_calls(jsonb_build_array('<json>'::jsonb))` (a line logged before 1.0.0
 * is converted first: CHANGELOG.md).
 */
export interface LostFinalize {
  reservation_id: string;
  outcome: Omit<AttemptOutcome, "response">;
  /** The caller named the request: its stored answer (for replay by request_id) is lost too. */
  replay_answer_lost: boolean;
  tries: number;
  last_error: string;
}

/**
 * Writes the outcome, retrying until it lands or the budget ends; never throws. Resolves true when
 * the row was written, false when the loss was logged.
 */
export async function finalizeReliably(
  store: GatewayStore,
  logError: (message: string) => void,
  params: FinalizeParams,
  retry: FinalizeRetry,
): Promise<boolean> {
  const base = retry.backoffBaseMs ?? FINALIZE_BACKOFF_BASE_MS;
  const cap = retry.maxBackoffMs ?? FINALIZE_MAX_BACKOFF_MS;
  // A success or a cut stream holds the provider's count of billed tokens: worth the whole budget.
  const until = params.outcome === "succeeded" || params.outcome === "cut"
    ? retry.deadline
    : Math.min(retry.deadline, retry.clock.now() + (retry.errorOutcomeBudgetMs ?? ERROR_OUTCOME_BUDGET_MS));
  let lastError = "";
  for (let tries = 1;; tries++) {
    try {
      await store.finalize(params);
      if (tries > 1) logError(`finalize ${params.reservationId} landed on try ${tries}`);
      return true;
    } catch (error) {
      lastError = sanitizeError(error, { maxLength: 200 });
      const pause = Math.min(cap, base * 2 ** (tries - 1));
      if (retry.clock.now() + pause > until) {
        logError(`finalize_lost ${JSON.stringify(lostRecord(params, tries, lastError))}`);
        return false;
      }
      logError(`finalize ${params.reservationId} failed (try ${tries}): ${lastError}; retrying in ${pause} ms`);
      await retry.clock.sleep(pause);
    }
  }
}

export function lostRecord(params: FinalizeParams, tries: number, lastError: string): LostFinalize {
  const { response: _answer, ...outcome } = attemptOutcome(params);
  return {
    reservation_id: params.reservationId,
    outcome,
    replay_answer_lost: params.response != null,
    tries,
    last_error: lastError,
  };
}
