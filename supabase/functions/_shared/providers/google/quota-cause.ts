// Why Google answered 429, read from its body, because each cause asks for a different rest:
//   minute            a per-minute quota (RPM/TPM): rest for Google's delay
//   day               a per-day quota (RPD): rest until Pacific midnight
//   limit_zero        the project has no quota at all for the model ("limit: 0", the free tier of a
//                     model the project may not use): waiting Google's 38 s never helps
//   spend_cap         the spend-based rate limit of the project's tier (a rolling window, 10 minutes
//                     as Google documents it): every model of the project rests for that window
//   monthly_cap       the project's own monthly spending cap,
//   billing_cap       the billing account's monthly cap, or
//   credits_depleted  its prepaid credits are used up: money, not quota. The project is out until its
//                     owner acts (or the month turns): every model of it rests for MONEY_REST_MS, and
//                     the first call after that is the one probe of the hour
//   unknown           a 429 that names none of these (Google's bare "Resource has been exhausted (e.g.
//                     check quota)." among them): Google's delay or the default
// Structure first: a QuotaFailure's quotaValue "0" is limit_zero, its quotaIds say minute or day. The
// money answers carry no QuotaFailure, no RetryInfo and no reason, so for them the message is the only
// carrier of the fact and is read, loosely and in this order (google-errors.md has Google's bodies;
// the simulator draws other wordings of each): prepaid credits, a rate over a rolling window, a
// billing account's cap, a monthly cap, any other spend limit. A 429 whose message says none of it
// stays `unknown` rather than taking a wrong, longer rest.

import { type QuotaCause, SPEND_CAP_MAX_REST_MS } from "../../vocabulary.ts";
import { someStated, type StatedLimits } from "../../upstream/port.ts";

// The causes are one list, QUOTA_CAUSES in vocabulary.ts (the database's copies are held to it), and
// so are the longest rests a cause gives (MONEY_REST_MS, SPEND_CAP_MAX_REST_MS).
export type { QuotaCause } from "../../vocabulary.ts";
export { MONEY_REST_MS, SPEND_CAP_MAX_REST_MS } from "../../vocabulary.ts";

/** The rolling window a spend cap rests for when Google's message names none (Google's documented 10 minutes). */
export const SPEND_CAP_WINDOW_MS = 10 * 60_000;

export interface QuotaViolationFacts {
  quotaId: string | null;
  /** QuotaFailure's quotaValue, a string of digits ("0", "30"), when Google sent one. */
  quotaValue: string | null;
}

export interface QuotaCauseFacts {
  message: string;
  violations: readonly QuotaViolationFacts[];
  /** ErrorInfo.reason, when Google sent one. */
  reason: string | null;
}

export interface QuotaCauseReading {
  cause: QuotaCause;
  /** For a spend cap: the rolling window the message names (at most SPEND_CAP_MAX_REST_MS), else SPEND_CAP_WINDOW_MS. Null for the others. */
  windowMs: number | null;
}

/** A quotaId of a per-day quota (GenerateRequestsPerDayPerProjectPerModel-FreeTier). */
export function isPerDayQuota(quotaId: string): boolean {
  return /per ?day/i.test(quotaId);
}

const LIMIT_ZERO_LINE = /\blimit:\s*0(?![\d.])/i;
const SPEND = /\bspend(?:ing)?\b|spend-based/i;
const CREDITS = /\bpre-?pa(?:y|id|yment)\b|\bcredits?\b/i;
const RATE_WINDOW = /\brolling\b|\brate[- ]limit|\bper[- ](?:\d+[- ])?minutes?\b|\d+[- ]minutes?\b/i;
const BILLING_ACCOUNT = /\bbilling account\b/i;
const MONTHLY_CAP = /\bmonth(?:ly)?\b[\s\S]*\b(?:cap|limit)\b|\bspending cap\b/i;

export function quotaCauseOf(facts: QuotaCauseFacts): QuotaCauseReading {
  const ids = facts.violations.map((v) => v.quotaId ?? "");
  if (
    facts.violations.some((v) => v.quotaValue !== null && /^\s*0\s*$/.test(v.quotaValue)) ||
    LIMIT_ZERO_LINE.test(facts.message)
  ) {
    return { cause: "limit_zero", windowMs: null };
  }
  if (ids.some((id) => /spend/i.test(id)) || /SPEND/i.test(facts.reason ?? "")) {
    return { cause: "spend_cap", windowMs: spendWindowMs(facts.message) };
  }
  if (ids.some(isPerDayQuota)) return { cause: "day", windowMs: null };
  if (ids.some((id) => /per ?minute/i.test(id))) return { cause: "minute", windowMs: null };
  const money = moneyCauseOf(facts.message);
  return { cause: money ?? "unknown", windowMs: money === "spend_cap" ? spendWindowMs(facts.message) : null };
}

/** A quota that names no quota: money, told apart by what the message says (the only carrier). */
function moneyCauseOf(message: string): QuotaCause | null {
  if (CREDITS.test(message)) return "credits_depleted";
  if (SPEND.test(message) && RATE_WINDOW.test(message)) return "spend_cap";
  if (BILLING_ACCOUNT.test(message) && (SPEND.test(message) || MONTHLY_CAP.test(message))) return "billing_cap";
  if (MONTHLY_CAP.test(message)) return "monthly_cap";
  if (SPEND.test(message)) return "spend_cap";
  return null;
}

/** "… rolling 10-minute window …", "per 10 minutes": the window a spend cap names (capped), else Google's documented 10 minutes. */
function spendWindowMs(message: string): number {
  const m = /(\d+(?:\.\d+)?)[-\s]?(minute|min|hour|second)s?\b/i.exec(message);
  if (m === null) return SPEND_CAP_WINDOW_MS;
  const value = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  const ms = unit === "hour" ? value * 3_600_000 : unit === "second" ? value * 1000 : value * 60_000;
  return Number.isFinite(ms) && ms > 0 ? Math.min(SPEND_CAP_MAX_REST_MS, Math.ceil(ms)) : SPEND_CAP_WINDOW_MS;
}

/**
 * The limits a 429's QuotaFailure states (quotaValue beside its quotaId), as the model row's columns: a
 * per-day quota of requests is rpd, a per-minute one rpm, a per-minute one of tokens tpm. A value of 0
 * is limit_zero's (the project has no quota for the model), no limit to record. Google states a limit
 * only when it refuses: read, it can only ever show a row above Google's. Undefined: none stated.
 */
export function statedLimitsOf(violations: readonly QuotaViolationFacts[]): StatedLimits | undefined {
  const stated: StatedLimits = {};
  for (const v of violations) {
    const value = v.quotaValue === null || !/^\s*\d{1,12}\s*$/.test(v.quotaValue) ? 0 : Number(v.quotaValue);
    const id = v.quotaId ?? "";
    if (value <= 0) continue;
    const column = /token/i.test(id)
      ? (/per ?minute/i.test(id) ? "tpm" : null)
      : isPerDayQuota(id)
      ? "rpd"
      : /per ?minute/i.test(id)
      ? "rpm"
      : null;
    if (column !== null) stated[column] = Math.min(value, stated[column] ?? value);
  }
  return someStated(stated);
}
