// Classification of a failed Google call, so the attempt loop knows whether to cool a quota group
// down (and for how long), retry elsewhere, take a key out, or give the error back to the caller.
//
// Google's 429 carries its wait only in the JSON body (no Retry-After header): details[] is a list
// of typed entries in no fixed order, so we look them up by "@type":
//   google.rpc.RetryInfo      retryDelay "22s" | "10.689924287s"
//   google.rpc.QuotaFailure   violations[].quotaId, e.g. GenerateRequestsPerDayPerProjectPerModel-FreeTier
//   google.rpc.ErrorInfo      reason, e.g. API_KEY_INVALID
// and fall back to the message text "Please retry in 10.689924287s.". A per-day quota means
// "exhausted until midnight Pacific", which the database computes: we only raise a flag.
// What kind of 429 it was (minute, day, limit: 0, spend cap, unknown) is read in quota-cause.ts.
import { sanitize } from "../../sanitize.ts";
import type { UpstreamError } from "../../upstream/port.ts";
import { isPerDayQuota, quotaCauseOf, statedLimitsOf } from "./quota-cause.ts";
import { isObject } from "../../json.ts";

export type { QuotaCause } from "./quota-cause.ts";
export { isPerDayQuota } from "./quota-cause.ts";

const TYPE_PREFIX = "type.googleapis.com/google.rpc.";

// ErrorInfo reasons (and canonical statuses) that mean "this key cannot be used", not "this request".
const KEY_REASONS = new Set([
  "API_KEY_INVALID",
  "API_KEY_EXPIRED",
  "API_KEY_SERVICE_BLOCKED",
  "API_KEY_HTTP_REFERRER_BLOCKED",
  "API_KEY_IP_ADDRESS_BLOCKED",
  "API_KEY_ANDROID_APP_BLOCKED",
  "API_KEY_IOS_APP_BLOCKED",
  "SERVICE_DISABLED",
  "CONSUMER_SUSPENDED",
  "BILLING_DISABLED",
]);

/** Protobuf JSON Duration ("22s", "10.689924287s", "0.5s") to whole milliseconds, rounded up. */
export function parseDuration(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const m = /^\s*(\d+)(?:\.(\d{1,9}))?s\s*$/.exec(value);
  if (m === null) return null;
  const nanos = Number((m[2] ?? "").padEnd(9, "0"));
  return Number(m[1]) * 1000 + Math.ceil(nanos / 1e6);
}

/** "Please retry in 10.689924287s." (or "in 53ms") in a message, as milliseconds rounded up. */
export function retryDelayFromMessage(message: string): number | null {
  const m = /retry in (\d+(?:\.\d+)?)\s*(ms|s)\b/i.exec(message);
  if (m === null) return null;
  const value = Number(m[1]);
  return Math.ceil(m[2]?.toLowerCase() === "ms" ? value : value * 1000);
}

/** Classifies an HTTP error answer; `body` is the parsed JSON, or the raw text if it was not JSON. */
export function classifyGoogleHttpError(
  httpStatus: number,
  body: unknown,
  options: { secrets?: readonly string[]; model?: string } = {},
): UpstreamError {
  const error = asRecord(asRecord(body)?.error);
  const details = Array.isArray(error?.details) ? error.details.map(asRecord) : [];
  const byType = (name: string) => details.filter((d) => d?.["@type"] === TYPE_PREFIX + name);

  const rawMessage = typeof error?.message === "string"
    ? error.message
    : typeof body === "string"
    ? body
    : `HTTP ${httpStatus}`;
  const status = typeof error?.status === "string" ? error.status : null;

  const reason = byType("ErrorInfo")
    .map((d) => d?.reason)
    .find((r): r is string => typeof r === "string") ?? null;

  const violations = byType("QuotaFailure").flatMap((d) =>
    (Array.isArray(d?.violations) ? d.violations : []).map((v) => {
      const record = asRecord(v);
      return {
        quotaId: typeof record?.quotaId === "string" ? record.quotaId : null,
        quotaValue: typeof record?.quotaValue === "string" || typeof record?.quotaValue === "number"
          ? String(record.quotaValue)
          : null,
      };
    })
  );
  const quotaIds = violations.map((v) => v.quotaId).filter((q): q is string => q !== null);
  const perDayId = quotaIds.find(isPerDayQuota);

  // RetryInfo may be truncated to whole seconds while the message has the fraction: take the later.
  const delays = [
    ...byType("RetryInfo").map((d) => parseDuration(d?.retryDelay)),
    retryDelayFromMessage(rawMessage),
  ].filter((d): d is number => d !== null);
  const retryAfterMs = delays.length > 0 ? Math.max(...delays) : null;

  const cause = httpStatus === 429 ? quotaCauseOf({ message: rawMessage, violations, reason }) : null;
  const base = {
    kind: "http" as const,
    httpStatus,
    status,
    reason,
    quotaId: perDayId ?? quotaIds[0] ?? null,
    quotaIds,
    retryAfterMs,
    perDay: cause?.cause === "day",
    quotaCause: cause?.cause ?? null,
    spendWindowMs: cause?.windowMs ?? null,
    message: sanitize(rawMessage, { secrets: options.secrets, maxLength: 500 }),
  };

  if (httpStatus === 429) {
    // The one answer of Google's that states a limit: the quota it refused for, and its value.
    const stated = statedLimitsOf(violations);
    return { ...base, class: "rate_limited", ...(stated === undefined ? {} : { stated }) };
  }
  if (httpStatus >= 500 || httpStatus === 408) return { ...base, class: "retryable" };
  if (
    httpStatus === 401 || httpStatus === 403 || (reason !== null && KEY_REASONS.has(reason))
  ) {
    return { ...base, class: "invalid_key" };
  }
  if (options.model !== undefined && isModelNotFound(httpStatus, status)) {
    return { ...base, class: "model_withdrawn", successor: namedSuccessor(base.message, options.model) };
  }
  if (httpStatus >= 400) return { ...base, class: "client_error" };
  // A non-error status should never reach here; treat it as a broken answer.
  return { ...base, class: "retryable", kind: "malformed" };
}

/**
 * Google's answer for a model it does not serve (never did, or withdrew), told by its structure: HTTP
 * 404 with Google's JSON error whose status is NOT_FOUND, to a call that names one model (generate,
 * stream, countTokens, models.get). Google words it differently from method to method and from month to
 * month ("models/x is not found for API version v1beta, …", "Model is not found: models/x for api
 * version v1beta", "… is no longer available …"), so the message is never read for it. A 404 that is
 * not Google's JSON error (a proxy's or a load balancer's page, a wrong path under a base URL that
 * ends in a version: Google answers those with an HTML page) or carries another status is a plain
 * client error. Only a candidate: the attempt loop confirms it with models.get on the same key.
 */
export function isModelNotFound(httpStatus: number, status: string | null): boolean {
  return httpStatus === 404 && status === "NOT_FOUND";
}

/**
 * The replacement Google's message names for a withdrawn model ("… use models/X"): the first model it
 * names other than the one called, lower-cased; null when it names none. Only a suggestion for the
 * operator (the model row's google_successor): the one sentence read, and never for a decision.
 */
export function namedSuccessor(message: string, model: string): string | null {
  for (const m of message.matchAll(/models\/([A-Za-z0-9][A-Za-z0-9._-]{0,99})/g)) {
    const name = m[1]!.replace(/\.+$/, "").toLowerCase();
    if (name !== model.toLowerCase()) return name;
  }
  return null;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isObject(value) ? value : undefined;
}
