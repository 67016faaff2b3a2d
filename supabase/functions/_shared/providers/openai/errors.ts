// OpenAI's failed answers, classified into the one shape the attempt loop acts on (the port's
// UpstreamError, ../../upstream/port.ts), by structure: the HTTP status, `error.type`,
// `error.code` and the x-ratelimit-* headers. The message is read for one fact only, the wait of a
// rate limit, and only when no header carries it (research: openai-errors.md).
//   429 insufficient_quota   money: the organization has no credit (credits_depleted: it rests an
//                            hour, then one call asks again)
//   429 otherwise            a rate limit: the group rests for the wait (headers, else the message
//                            in seconds or milliseconds, else the gateway's default)
//   401                      the key itself (taken out of rotation)
//   404 model_not_found      the model, for this organization: confirmed by GET /v1/models/{id}
//   408, 409, 5xx            retried
//   any other 4xx            the request: answered to the caller
import type { WireRules } from "../../upstream/call.ts";
import { sanitize } from "../../sanitize.ts";
import { type ProviderRoom, someStated, type StatedLimits, type UpstreamError } from "../../upstream/port.ts";
import { isObject } from "../../json.ts";

/** OpenAI's durations ("120ms", "1s", "18.642s", "6m0s", "1h0m0s") in whole milliseconds, rounded up. */
export function parseOpenAiDuration(value: string | null | undefined): number | null {
  const text = value?.trim();
  if (!text || text.length > 40) return null;
  let ms = 0;
  let consumed = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    if (m.index !== consumed) return null;
    consumed += m[0].length;
    const n = Number(m[1]);
    ms += m[2] === "h" ? n * 3_600_000 : m[2] === "m" ? n * 60_000 : m[2] === "s" ? n * 1000 : n;
  }
  return consumed === text.length && consumed > 0 ? Math.ceil(ms) : null;
}

/** "Please try again in 18.642s." or "… in 174ms." in a message, as milliseconds rounded up. */
export function waitFromMessage(message: string): number | null {
  const m = /try again in (\d+(?:\.\d+)?)\s*(ms|s)\b/i.exec(message);
  if (m === null) return null;
  const n = Number(m[1]);
  return Math.ceil(m[2]!.toLowerCase() === "ms" ? n : n * 1000);
}

type Which = "requests" | "tokens";

/**
 * The wait of a rate limit from x-ratelimit-reset-*: of the limit the answer names (`type`), else of
 * the one whose remaining count is 0, else the later of the two. Null when no header says.
 */
export function waitFromHeaders(headers: Headers, type: string | null): number | null {
  const reset = (w: Which) => parseOpenAiDuration(headers.get(`x-ratelimit-reset-${w}`));
  const spent = (w: Which) => headers.get(`x-ratelimit-remaining-${w}`)?.trim() === "0";
  const named: Which | null = type === "requests" || type === "tokens"
    ? type
    : spent("tokens")
    ? "tokens"
    : spent("requests")
    ? "requests"
    : null;
  if (named !== null && reset(named) !== null) return reset(named);
  const both = [reset("requests"), reset("tokens")].filter((v): v is number => v !== null);
  return both.length === 0 ? null : Math.max(...both);
}

/** A whole count in header `name` (x-ratelimit-remaining-*, -limit-*); null when absent or not one. */
function countIn(headers: Headers, name: string): number | null {
  const value = headers.get(name)?.trim();
  return value !== undefined && /^\d{1,12}$/.test(value) ? Number(value) : null;
}

/** OpenAI's x-ratelimit-* on any answer: what is left, and when all of it is back; null when not said. */
export function roomOf(headers: Headers): ProviderRoom | null {
  const requests = countIn(headers, "x-ratelimit-remaining-requests");
  const tokens = countIn(headers, "x-ratelimit-remaining-tokens");
  const resets = [headers.get("x-ratelimit-reset-requests"), headers.get("x-ratelimit-reset-tokens")]
    .map(parseOpenAiDuration).filter((v): v is number => v !== null);
  if ((requests === null && tokens === null) || resets.length === 0) return null;
  const limits = statedLimitsOf(headers);
  return { requests, tokens, resetMs: Math.max(...resets), ...(limits === undefined ? {} : { limits }) };
}

/** A reset further away than this (an hour) is not a minute's: the limit it belongs to is a day's. */
const MINUTE_RESET_MAX_MS = 60 * 60_000;

/**
 * OpenAI's x-ratelimit-limit-* as the model row's columns, each mapped by its reset: a request limit
 * whose reset is minutes away at most is the minute's (rpm), one hours away the day's (rpd: OpenAI's
 * free and first tiers state their day there); a token limit the minute's (tpm), never a day's (the
 * row has no day of tokens). A limit without a readable reset is taken as the minute's. Undefined: none stated.
 */
export function statedLimitsOf(headers: Headers): StatedLimits | undefined {
  const limit = (name: string) => countIn(headers, `x-ratelimit-limit-${name}`) ?? undefined;
  const daily = (name: string) => (parseOpenAiDuration(headers.get(`x-ratelimit-reset-${name}`)) ?? 0) > MINUTE_RESET_MAX_MS;
  const requests = limit("requests");
  const tokens = limit("tokens");
  const stated: StatedLimits = {};
  if (requests !== undefined) stated[daily("requests") ? "rpd" : "rpm"] = requests;
  if (tokens !== undefined && !daily("tokens")) stated.tpm = tokens;
  return someStated(stated);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isObject(value) ? value : undefined;
}

const text = (value: unknown) => typeof value === "string" && value !== "" ? value.slice(0, 100) : null;

/** Classifies an HTTP error answer; `body` is the parsed JSON, or the raw text if it was not JSON. */
export function classifyOpenAiHttpError(
  httpStatus: number,
  body: unknown,
  headers: Headers,
  options: { secrets?: readonly string[]; model?: string } = {},
): UpstreamError {
  const error = asRecord(asRecord(body)?.error);
  const type = text(error?.type);
  const code = text(error?.code);
  const rawMessage = typeof error?.message === "string"
    ? error.message
    : typeof body === "string"
    ? body
    : `HTTP ${httpStatus}`;
  const money = httpStatus === 429 && (code === "insufficient_quota" || type === "insufficient_quota");
  const retryAfterMs = httpStatus === 429 && !money
    ? waitFromHeaders(headers, type) ?? waitFromMessage(rawMessage)
    : null;
  const base = {
    kind: "http" as const,
    httpStatus,
    status: type,
    reason: code ?? type,
    // Which limit a rate limit hit ("requests" or "tokens": rpm or tpm), as Google's quotaId says it.
    quotaId: httpStatus === 429 && (type === "requests" || type === "tokens") ? type : null,
    quotaIds: httpStatus === 429 && (type === "requests" || type === "tokens") ? [type] : [],
    retryAfterMs,
    perDay: false,
    quotaCause: httpStatus === 429 ? (money ? "credits_depleted" as const : "minute" as const) : null,
    spendWindowMs: null,
    message: sanitize(rawMessage, { secrets: options.secrets, maxLength: 500 }),
    // Every answer of OpenAI's carries the organization's room, a refusal's too: the books follow it.
    room: roomOf(headers),
  };
  if (httpStatus === 429) return { ...base, class: "rate_limited" };
  if (httpStatus >= 500 || httpStatus === 408 || httpStatus === 409) return { ...base, class: "retryable" };
  if (httpStatus === 401) return { ...base, class: "invalid_key" };
  if (httpStatus === 404 && code === "model_not_found" && options.model !== undefined) {
    return { ...base, class: "model_withdrawn" };
  }
  if (httpStatus >= 400) return { ...base, class: "client_error" };
  return { ...base, class: "retryable", kind: "malformed" };
}

/** The display name of OpenAI's own row. */
export const OPENAI_DISPLAY_NAME = "OpenAI";

/** A provider of OpenAI's dialect, its answers read by OpenAI's rules, under its row's display name (../../upstream/call.ts). */
export function openAiRules(upstream: string = OPENAI_DISPLAY_NAME): WireRules {
  return { upstream, classifyHttp: classifyOpenAiHttpError };
}
