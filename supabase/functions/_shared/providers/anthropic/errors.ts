// Anthropic's failed answers, classified into the one shape the attempt loop acts on (the port's
// UpstreamError), by structure: the HTTP status, `error.type`, `error.details.error_code`, the
// `retry-after` and anthropic-ratelimit-* headers. Words are read in one case only, a 400
// invalid_request_error that is about money (docs/anthropic.md, "structure, or words"):
//   429 rate_limit_error + retry-after      the organization's limits (or its acceleration limit):
//                                           the pool rests retry-after
//   429 enforced_spend_limit_reached, or a  money: the tier's monthly spend limit (monthly_cap)
//     429 without retry-after
//   402, billing_error                      money: billing (billing_cap)
//   400 saying "credit balance"             money: no credit (credits_depleted)
//   400 saying "spend limit"/"usage limit"  money: a limit the organization set (monthly_cap)
//   529, overloaded_error, 5xx, 408, 409    Anthropic's load or fault: retried, the key's quota not cooled
//   401, 403                                the key itself (taken out of rotation)
//   404 not_found_error                     the model (confirmed by GET /v1/models/{id})
//   any other 4xx                           the request: answered to the caller
import type { WireRules } from "../../upstream/call.ts";
import { sanitize } from "../../sanitize.ts";
import { type ProviderRoom, someStated, type StatedLimits, type UpstreamError } from "../../upstream/port.ts";
import type { QuotaCause } from "../../vocabulary.ts";
import { isObject } from "../../json.ts";

const word = (v: unknown) => typeof v === "string" && v !== "" ? v.slice(0, 100) : null;

/** The words of a 400 that is about money (Anthropic gives it no structure of its own). */
const CREDIT_WORDS = /credit balance/i;
const LIMIT_WORDS = /\b(spend|usage) limits?\b/i;

/** `retry-after` in whole milliseconds (seconds, or an HTTP date); null when absent or unreadable. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | null {
  const raw = headers.get("retry-after")?.trim();
  if (!raw) return null;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.ceil(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** What the next request takes from Anthropic's input and output buckets (null: not known, not read). */
export interface NextRequest {
  input: number | null;
  output: number | null;
}

/** Anthropic rounds a bucket's reset to the second: it may be full up to a second after the time it names. */
const RESET_ROUNDING_MS = 1000;

/** A whole count in anthropic-ratelimit-`name`-`what` (remaining, limit); null when absent or not one. */
function countIn(headers: Headers, name: string, what: "remaining" | "limit"): number | null {
  const value = headers.get(`anthropic-ratelimit-${name}-${what}`)?.trim();
  return value !== undefined && /^\d{1,12}$/.test(value) ? Number(value) : null;
}

/**
 * What the anthropic-ratelimit-* headers say is left: requests, and the scarcer of input and output
 * tokens; ready again when the last of them is full (their resets are RFC 3339 times). Null when not said.
 * Anthropic's limits are buckets refilled continuously, so the rest they imply is `next`: how long until
 * the request bucket holds one more request, and the token buckets `next`'s tokens (this call's, the best
 * guess of the next one's), each by its refill (its limit a minute) from what is left, never past its
 * reset (plus the second Anthropic rounds it to); 0 when they hold it now.
 */
export function roomOf(headers: Headers, now = Date.now(), next: NextRequest = { input: null, output: null }): ProviderRoom | null {
  const count = (name: string) => countIn(headers, name, "remaining");
  const resetAt = (name: string) => Date.parse(headers.get(`anthropic-ratelimit-${name}-reset`) ?? "");
  const requests = count("requests");
  const tokensLeft = [count("input-tokens"), count("output-tokens"), count("tokens")].filter((v): v is number =>
    v !== null
  );
  const resets = ["requests", "input-tokens", "output-tokens", "tokens"]
    .map(resetAt)
    .filter((t) => !Number.isNaN(t))
    .map((t) => Math.max(0, t - now));
  if ((requests === null && tokensLeft.length === 0) || resets.length === 0) return null;
  /** Ms until bucket `name` holds `need` more (what is left is rounded down: never sooner than it does). */
  const untilHolds = (name: string, need: number | null): number => {
    const left = count(name);
    const limit = countIn(headers, name, "limit");
    if (need === null || left === null || left >= need || limit === null || limit === 0) return 0;
    const full = resetAt(name);
    const byReset = Number.isNaN(full) ? Number.POSITIVE_INFINITY : Math.max(0, full + RESET_ROUNDING_MS - now);
    return Math.min(Math.ceil(((need - left) * 60_000) / limit), byReset);
  };
  const limits = statedLimitsOf(headers);
  return {
    requests,
    tokens: tokensLeft.length === 0 ? null : Math.min(...tokensLeft),
    resetMs: Math.max(...resets),
    next: {
      requestsMs: untilHolds("requests", 1),
      tokensMs: Math.max(untilHolds("input-tokens", next.input), untilHolds("output-tokens", next.output)),
    },
    ...(limits === undefined ? {} : { limits }),
  };
}

/**
 * Anthropic's anthropic-ratelimit-*-limit as the model row's columns: requests a minute (rpm), input
 * and output tokens a minute (itpm, otpm); its combined tokens-limit is the row's tpm only where it
 * states neither of the other two (the limits of its older answers). Undefined: none stated.
 */
export function statedLimitsOf(headers: Headers): StatedLimits | undefined {
  const limit = (name: string) => countIn(headers, name, "limit") ?? undefined;
  const stated: StatedLimits = {};
  const figures = { rpm: limit("requests"), itpm: limit("input-tokens"), otpm: limit("output-tokens") };
  for (const [column, value] of Object.entries(figures) as [keyof typeof figures, number | undefined][]) {
    if (value !== undefined) stated[column] = value;
  }
  const combined = limit("tokens");
  if (combined !== undefined && figures.itpm === undefined && figures.otpm === undefined) stated.tpm = combined;
  return someStated(stated);
}

/** Which limit a 429 hit, by the header whose remaining count is 0 (requests, input_tokens, output_tokens). */
function spentLimit(headers: Headers): string | null {
  for (const name of ["requests", "input-tokens", "output-tokens"]) {
    if (headers.get(`anthropic-ratelimit-${name}-remaining`)?.trim() === "0") return name.replace("-", "_");
  }
  return null;
}

/** The money cause an answer carries, by structure first, by Anthropic's stable words for a 400. */
function moneyCause(
  status: number,
  type: string | null,
  code: string | null,
  message: string,
  wait: number | null,
  midStream: boolean,
): QuotaCause | null {
  if (status === 402 || type === "billing_error") return "billing_cap";
  if (status === 429) {
    if (code === "enforced_spend_limit_reached") return "monthly_cap";
    // A rate limit's answer always names its wait; one that names none is a limit waiting will not
    // lift. An error event after a 200 has no headers: there the structure alone says nothing of money.
    return wait === null && !midStream ? "monthly_cap" : null;
  }
  if (status === 400 && type === "invalid_request_error") {
    if (CREDIT_WORDS.test(message)) return "credits_depleted";
    if (LIMIT_WORDS.test(message)) return "monthly_cap";
  }
  return null;
}

/** Classifies an HTTP error answer; `body` is the parsed JSON, or the raw text if it was not JSON. */
export function classifyAnthropicHttpError(
  httpStatus: number,
  body: unknown,
  headers: Headers,
  options: { secrets?: readonly string[]; model?: string; upstream?: string; midStream?: boolean } = {},
): UpstreamError {
  const error = isObject(body) && isObject(body.error) ? body.error : undefined;
  const type = word(error?.type);
  const code = isObject(error?.details) ? word(error.details.error_code) : null;
  const rawMessage = typeof error?.message === "string"
    ? error.message
    : typeof body === "string"
    ? body
    : `HTTP ${httpStatus}`;
  const wait = retryAfterMs(headers);
  const money = moneyCause(httpStatus, type, code, rawMessage, wait, options.midStream === true);
  const limit = httpStatus === 429 && money === null ? spentLimit(headers) : null;
  const base = {
    kind: "http" as const,
    httpStatus,
    status: type,
    reason: code ?? type,
    quotaId: limit,
    quotaIds: limit === null ? [] : [limit],
    retryAfterMs: money === null && httpStatus === 429 ? wait : null,
    perDay: false,
    quotaCause: money ?? (httpStatus === 429 ? "minute" as const : null),
    spendWindowMs: null,
    message: sanitize(rawMessage, { secrets: options.secrets, maxLength: 500 }),
    upstream: options.upstream ?? ANTHROPIC_DISPLAY_NAME,
    room: roomOf(headers),
  };
  if (money !== null || httpStatus === 429) return { ...base, class: "rate_limited" };
  if (
    httpStatus >= 500 || httpStatus === 408 || httpStatus === 409 || type === "overloaded_error" || type === "api_error"
  ) {
    return { ...base, class: "retryable", overloaded: httpStatus === 529 || type === "overloaded_error" };
  }
  if (httpStatus === 401 || httpStatus === 403) return { ...base, class: "invalid_key" };
  if (httpStatus === 404 && options.model !== undefined) return { ...base, class: "model_withdrawn" };
  if (httpStatus >= 400) return { ...base, class: "client_error" };
  return { ...base, class: "retryable", kind: "malformed" };
}

/** The status an `error` event after a 200 stands for (it names only its type). */
export function statusOfErrorType(type: unknown): number {
  switch (type) {
    case "rate_limit_error":
      return 429;
    case "overloaded_error":
      return 529;
    case "billing_error":
      return 402;
    case "authentication_error":
      return 401;
    case "permission_error":
      return 403;
    case "invalid_request_error":
      return 400;
    case "not_found_error":
      return 404;
    default:
      return 500;
  }
}

export const ANTHROPIC_DISPLAY_NAME = "Anthropic";

/** A provider of Anthropic's dialect, its answers read by Anthropic's rules, under its row's display name (../../upstream/call.ts). */
export function anthropicRules(upstream: string = ANTHROPIC_DISPLAY_NAME): WireRules {
  return {
    upstream,
    classifyHttp: (status, body, headers, options) =>
      classifyAnthropicHttpError(status, body, headers, { ...options, upstream }),
  };
}
