// Finalize that does not lose a paid answer: the outcome of a call to a provider is written with
// google_ai_finalize, retried with backoff while the database cannot take it, until it lands or the
// invocation's wall-clock budget ends. A success runs this after the response where the runtime
// allows (EdgeRuntime.waitUntil), so the caller does not wait for the retries (one written before its
// answer, the provider's room near its end, is waited for WRITTEN_FIRST_WAIT_MS at most); an error
// outcome is awaited (the next reservation must see its cooldown) and so retries only briefly.
//
// What could still not be written is logged as one structured line, `finalize_lost {json}`, with
// everything google_ai_finalize (google_ai_finalize_cut for a cut stream) needs to replay it: never
// a key, never the answer text.
import { sanitizeError } from "../../_shared/sanitize.ts";
import type { FinalizeParams } from "../contract.ts";
import { settledWithin } from "../clock.ts";
import type { GatewayStore } from "../store/store.ts";

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

/** The replay record of a finalize that never landed (logged as `finalize_lost {json}`). */
export interface LostFinalize {
  reservation_id: string;
  outcome: FinalizeParams["outcome"];
  input_tokens: number | null;
  output_tokens: number | null;
  cached_input_tokens: number | null;
  thinking_tokens: number | null;
  cache_write_5m_tokens: number | null;
  cache_write_1h_tokens: number | null;
  /** A call answered without usage: the tokens its window keeps (google_ai_finalize's p_settled_tokens). */
  settled_tokens: number | null;
  http_status: number | null;
  error_code: string | null;
  quota_id: string | null;
  latency_ms: number;
  cooldown_until: string | null;
  /** The provider's midnight (its row's day_zone), under google_ai_finalize's parameter name. */
  cooldown_until_pacific_midnight: boolean;
  key_rejected: boolean | null;
  /** A provider's 429's cause (a spend cap rests every model of the group when replayed). */
  quota_cause: FinalizeParams["quotaCause"];
  service_tier: string | null;
  served_tier: string | null;
  /** What the gateway added and the time to the first byte (the metrics' histograms). */
  added_ms: number | null;
  first_byte_ms: number | null;
  /** A cut stream (outcome "cut"): who cut it; replayed with google_ai_finalize_cut, not google_ai_finalize. */
  cut_by?: "client" | "upstream";
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
  return {
    reservation_id: params.reservationId,
    outcome: params.outcome,
    input_tokens: params.inputTokens,
    output_tokens: params.outputTokens,
    cached_input_tokens: params.cachedInputTokens ?? null,
    thinking_tokens: params.thinkingTokens ?? null,
    cache_write_5m_tokens: params.cacheWrite5mTokens ?? null,
    cache_write_1h_tokens: params.cacheWrite1hTokens ?? null,
    settled_tokens: params.settledTokens ?? null,
    http_status: params.httpStatus,
    error_code: params.errorCode,
    quota_id: params.quotaId,
    latency_ms: params.latencyMs,
    cooldown_until: params.cooldownUntil === null ? null : params.cooldownUntil.toISOString(),
    cooldown_until_pacific_midnight: params.cooldownUntilProviderMidnight,
    key_rejected: params.keyRejected ?? null,
    quota_cause: params.quotaCause ?? null,
    service_tier: params.serviceTier ?? null,
    served_tier: params.servedTier ?? null,
    added_ms: params.addedMs ?? null,
    first_byte_ms: params.firstByteMs ?? null,
    ...(params.cutBy === undefined ? {} : { cut_by: params.cutBy }),
    replay_answer_lost: params.response != null,
    tries,
    last_error: lastError,
  };
}
