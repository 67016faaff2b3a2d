// What finalize writes for one call to Google: the outcome, tokens, Google's error, the cooldown a
// 429 asks for, and whether Google refused the key itself (decided here, once: finalize takes it
// out of rotation on that word, without re-deriving it from the error code).
import type { ClassifiedGoogleError } from "../_shared/google/errors.ts";
import { outputTokens, type Usage } from "../_shared/google/response.ts";
import type { FinalizeOutcome, FinalizeParams } from "./store.ts";

const EMPTY = {
  inputTokens: null,
  outputTokens: null,
  httpStatus: null,
  errorCode: null,
  quotaId: null,
  errorMessage: null,
  cooldownUntil: null,
  cooldownUntilPacificMidnight: false,
  keyRejected: false,
  response: null,
} as const;

export interface SuccessRecord {
  reservationId: string;
  latencyMs: number;
  /** Google's counts; null when Google sent no usage (the reservation's estimate stays booked). */
  inputTokens: number | null;
  outputTokens: number | null;
  /** Kept for replay when the caller named the request (its own request_id), else null. */
  response: unknown | null;
}

/** Google's counts for finalize: null where Google sent none (the booked estimate then stays). */
export function googleCounts(usage: Usage | null): Pick<SuccessRecord, "inputTokens" | "outputTokens"> {
  return usage === null
    ? { inputTokens: null, outputTokens: null }
    : { inputTokens: usage.promptTokens, outputTokens: outputTokens(usage) };
}

export function successRecord(s: SuccessRecord): FinalizeParams {
  return { ...EMPTY, ...s, outcome: "succeeded", httpStatus: 200 };
}

export interface FailureRecord {
  reservationId: string;
  latencyMs: number;
  error: ClassifiedGoogleError;
  /** Now, on the loop's clock: a 429's cooldown runs from here. */
  now: number;
  /** Cooldown after a 429 that names no wait. */
  defaultCooldownMs: number;
}

export function failureRecord(
  { reservationId, latencyMs, error, now, defaultCooldownMs }: FailureRecord,
): FinalizeParams {
  const perMinute429 = error.class === "rate_limited" && !error.perDay;
  return {
    ...EMPTY,
    reservationId,
    latencyMs,
    outcome: finalizeOutcome(error),
    httpStatus: error.httpStatus,
    errorCode: error.reason ?? error.status ?? error.kind,
    quotaId: error.quotaId,
    errorMessage: error.message,
    cooldownUntil: perMinute429 ? new Date(now + (error.retryAfterMs ?? defaultCooldownMs)) : null,
    cooldownUntilPacificMidnight: error.class === "rate_limited" && error.perDay,
    keyRejected: error.class === "invalid_key",
  };
}

function finalizeOutcome(error: ClassifiedGoogleError): FinalizeOutcome {
  if (error.class === "model_withdrawn") return "withdrawn";
  if (error.kind === "timeout") return "timeout";
  if (error.kind === "network" || error.kind === "aborted") return "network_error";
  return "google_error";
}
