// What finalize writes for one call to a provider: the outcome, tokens, the provider's error, the
// cooldown a 429 asks for, and whether the provider refused the key itself (decided here, once: finalize takes it
// out of rotation on that word, without re-deriving it from the error code).
//
// The cooldown follows the 429's cause (quota-cause.ts): minute and unknown rest for the provider's delay
// (or the default); day and limit_zero until the provider's midnight (its row's day_zone) (a key check ends a limit_zero rest
// sooner, in the database); spend_cap for the provider's delay but at least the rolling window it names,
// never more than an hour (SPEND_CAP_MAX_REST_MS); money (monthly_cap, billing_cap, credits_depleted)
// an hour (MONEY_REST_MS), or a monthly cap until the month turns where it turns first (money-rest.ts),
// whatever delay the provider names, and the first call after it is the hour's one
// probe. For spend_cap and money the database rests every model of the group.
import { isOneOf, MONEY_CAUSES, SPEND_CAP_MAX_REST_MS } from "../../_shared/vocabulary.ts";
import { moneyRestMs } from "./money-rest.ts";
import type { PhaseTimer } from "../../_shared/server-timing.ts";
import { billedOutputTokens, type HubUsage } from "../../_shared/upstream/hub.ts";
import type { FinalizeOutcome, FinalizeParams } from "../contract.ts";
import { type UpstreamError } from "../../_shared/upstream/port.ts";
import { roomUntil } from "./room.ts";

const EMPTY = {
  inputTokens: null,
  outputTokens: null,
  cachedInputTokens: null,
  thinkingTokens: null,
  cacheWrite5mTokens: null,
  cacheWrite1hTokens: null,
  httpStatus: null,
  errorCode: null,
  quotaId: null,
  errorMessage: null,
  cooldownUntil: null,
  cooldownUntilProviderMidnight: false,
  keyRejected: false,
  response: null,
  quotaCause: null,
  serviceTier: null,
  servedTier: null,
  addedMs: null,
  firstByteMs: null,
  room: null,
  settledTokens: null,
} as const;

export interface SuccessRecord {
  reservationId: string;
  latencyMs: number;
  /** The provider's counts; null when it sent no usage (the reservation's estimate stays booked). */
  inputTokens: number | null;
  outputTokens: number | null;
  /** Of those, the input read from the provider's cache and the output spent thinking (the call's cost). */
  cachedInputTokens?: number | null;
  thinkingTokens?: number | null;
  /** Of the input, what the provider wrote to its cache for 5 minutes / an hour (each priced apart). */
  cacheWrite5mTokens?: number | null;
  cacheWrite1hTokens?: number | null;
  /** Kept for replay when the caller named the request (its own request_id), else null. */
  response: unknown | null;
  /** The tier asked for and the tier the provider says served; the request's added and first-byte times. */
  serviceTier?: string | null;
  servedTier?: string | null;
  addedMs?: number | null;
  firstByteMs?: number | null;
  /** What the provider says is left of the group's limits (OpenAI's x-ratelimit-*). */
  room?: FinalizeParams["room"];
}

/** The provider's counts for finalize: null where it sent none (the booked estimate then stays). */
export function usageCounts(
  usage: HubUsage | null,
): Pick<
  SuccessRecord,
  "inputTokens" | "outputTokens" | "cachedInputTokens" | "thinkingTokens" | "cacheWrite5mTokens" | "cacheWrite1hTokens"
> {
  return usage === null
    ? {
      inputTokens: null,
      outputTokens: null,
      cachedInputTokens: null,
      thinkingTokens: null,
      cacheWrite5mTokens: null,
      cacheWrite1hTokens: null,
    }
    : {
      inputTokens: usage.inputTokens,
      outputTokens: billedOutputTokens(usage),
      cachedInputTokens: usage.cachedInputTokens,
      thinkingTokens: usage.thinkingTokens,
      cacheWrite5mTokens: usage.cacheWrite5mTokens ?? null,
      cacheWrite1hTokens: usage.cacheWrite1hTokens ?? null,
    };
}

/**
 * Read when the answer's first byte leaves (a stream's first chunk): what the gateway added to the
 * request (Server-Timing's total less upstream and wait) and the time to that byte. Null where the
 * request's time is not recorded.
 */
export function answerTimes(timing: PhaseTimer): { addedMs: number | null; firstByteMs: number | null } {
  const t = timing.soFar?.();
  if (t === undefined) return { addedMs: null, firstByteMs: null };
  return { addedMs: Math.max(0, t.totalMs - t.upstreamMs - t.waitMs), firstByteMs: t.totalMs };
}

export function successRecord(s: SuccessRecord): FinalizeParams {
  return { ...EMPTY, ...s, outcome: "succeeded", httpStatus: 200 };
}

export interface FailureRecord {
  reservationId: string;
  latencyMs: number;
  error: UpstreamError;
  /** Now, on the loop's clock: a 429's cooldown runs from here. */
  now: number;
  /** The zone the provider's day and month turn in (its row's day_zone): a monthly cap lifts at the month's turn. */
  dayZone: string;
  /** Cooldown after a 429 that names no wait. */
  defaultCooldownMs: number;
  /** The booking's input tokens: what a call refused before generating keeps (refusedBeforeGenerating). */
  inputTokens?: number;
}

/**
 * The provider answered with a refusal (a 4xx, a 429 too): nothing was generated, so at most the
 * input was counted. A 5xx, a timeout (a 408 too) or a conflict (409), which a provider answers when
 * it may have started, and a cut connection keep the whole booking: the classifier calls those
 * retryable.
 */
export function refusedBeforeGenerating(error: UpstreamError): boolean {
  return error.kind === "http" && error.class !== "retryable" && error.httpStatus !== null &&
    error.httpStatus >= 400 && error.httpStatus < 500;
}

export function failureRecord(
  { reservationId, latencyMs, error, now, dayZone, defaultCooldownMs, inputTokens }: FailureRecord,
): FinalizeParams {
  const limited = error.class === "rate_limited";
  const cause = limited ? error.quotaCause ?? "unknown" : null;
  const untilMidnight = cause === "day" || cause === "limit_zero";
  const delayMs = error.retryAfterMs ?? defaultCooldownMs;
  const restMs = cause === "spend_cap"
    ? Math.min(SPEND_CAP_MAX_REST_MS, Math.max(delayMs, error.spendWindowMs ?? 0))
    : cause !== null && isOneOf(MONEY_CAUSES, cause)
    ? moneyRestMs(cause, now, dayZone)
    : delayMs;
  return {
    ...EMPTY,
    reservationId,
    latencyMs,
    outcome: finalizeOutcome(error),
    httpStatus: error.httpStatus,
    errorCode: error.reason ?? error.status ?? error.kind,
    quotaId: error.quotaId,
    errorMessage: error.message,
    ...(error.successor == null ? {} : { successor: error.successor }),
    cooldownUntil: limited && !untilMidnight ? new Date(now + restMs) : null,
    cooldownUntilProviderMidnight: untilMidnight,
    keyRejected: error.class === "invalid_key",
    quotaCause: cause,
    room: roomUntil(error.room, now),
    statedLimits: error.room?.limits ?? error.stated ?? null,
    settledTokens: inputTokens !== undefined && refusedBeforeGenerating(error) ? inputTokens : null,
  };
}

function finalizeOutcome(error: UpstreamError): FinalizeOutcome {
  if (error.class === "model_withdrawn") return "withdrawn";
  if (error.kind === "timeout") return "timeout";
  if (error.kind === "network" || error.kind === "aborted") return "network_error";
  return "upstream_error";
}
