// Why Google answered 429, read from its body, because each cause asks for a different rest:
//   minute     a per-minute quota (RPM/TPM): rest for Google's delay
//   day        a per-day quota (RPD): rest until Pacific midnight
//   limit_zero the project has no quota at all for the model ("limit: 0", the free tier of a model
//              the project may not use): waiting Google's 38 s never helps
//   spend_cap  the billing account's spend-based limit (a rolling window, 10 minutes as Google
//              documents it): every model of the project is refused, whatever its RPM/TPM/RPD
//   unknown    a 429 that names none of these (Google's bare "Resource has been exhausted (e.g.
//              check quota)." among them): Google's delay or the default
// The order of the checks is the order of certainty: a body that says "limit: 0" is limit_zero even
// when its quotaId is a per-day one (Google sends both for a model without quota). Spend caps are
// recognized by the word "spend" only: no verbatim spend-cap body is public (docs/google-429s.md),
// so a 429 that does not say so stays `unknown` rather than taking a wrong, longer rest.

export type QuotaCause = "minute" | "day" | "limit_zero" | "spend_cap" | "unknown";
export const QUOTA_CAUSES: readonly QuotaCause[] = ["minute", "day", "limit_zero", "spend_cap", "unknown"];

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
  /** For a spend cap: the rolling window the message names, else SPEND_CAP_WINDOW_MS. Null for the others. */
  windowMs: number | null;
}

const LIMIT_ZERO_LINE = /\blimit:\s*0(?![\d.])/i;
const SPEND = /\bspend(?:ing)?\b|spend-based/i;

export function quotaCauseOf(facts: QuotaCauseFacts): QuotaCauseReading {
  const ids = facts.violations.map((v) => v.quotaId ?? "");
  if (facts.violations.some((v) => v.quotaValue !== null && /^\s*0\s*$/.test(v.quotaValue)) ||
    LIMIT_ZERO_LINE.test(facts.message)) {
    return { cause: "limit_zero", windowMs: null };
  }
  if (SPEND.test(facts.message) || ids.some((id) => /spend/i.test(id)) || /SPEND/i.test(facts.reason ?? "")) {
    return { cause: "spend_cap", windowMs: spendWindowMs(facts.message) };
  }
  if (ids.some((id) => /per ?day/i.test(id))) return { cause: "day", windowMs: null };
  if (ids.some((id) => /per ?minute/i.test(id))) return { cause: "minute", windowMs: null };
  return { cause: "unknown", windowMs: null };
}

/** "… rolling 10-minute window …", "per 10 minutes": the window a spend cap names, else Google's documented 10 minutes. */
function spendWindowMs(message: string): number {
  const m = /(\d+(?:\.\d+)?)[-\s]?(minute|min|hour|second)s?\b/i.exec(message);
  if (m === null) return SPEND_CAP_WINDOW_MS;
  const value = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  const ms = unit === "hour" ? value * 3_600_000 : unit === "second" ? value * 1000 : value * 60_000;
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : SPEND_CAP_WINDOW_MS;
}
