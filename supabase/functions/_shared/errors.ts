// Error codes of the gateway's functions. The codes are a stable API: callers branch on `code`,
// never on `message` (which is for humans and may change). ERROR_STATUS is the one place a code's
// HTTP status is defined; docs/errors.md says what each means and what to do (a test keeps the two
// equal). Every function answers them through _shared/envelope.ts.
import { BUDGET_LIMITS, isOneOf, MONEY_CAUSES } from "./vocabulary.ts";

export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  empty_input: 400,
  unknown_model: 400,
  unsupported_feature: 400,
  invalid_image: 400,
  upstream_rejected: 400,
  unauthorized: 401,
  invalid_secret: 401,
  client_revoked: 401,
  token_invalid: 401,
  token_expired: 401,
  token_revoked: 401,
  forbidden: 403,
  model_not_allowed: 403,
  scope_exceeded: 403,
  not_found: 404,
  model_withdrawn: 404,
  method_not_allowed: 405,
  request_in_progress: 409,
  body_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  client_closed: 499,
  internal_error: 500,
  upstream_error: 502,
  unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
  [extra: string]: unknown;
}

export interface GatewayErrorOptions {
  details?: Record<string, unknown>;
  /** Extra top-level body fields, e.g. `limit` and `retry_after_ms` of a 429. */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An error that is meant for the caller: it carries its code, status and safe message. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  readonly extra?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message);
    this.name = "GatewayError";
    this.code = code;
    this.details = options.details;
    this.extra = options.extra;
    this.headers = options.headers;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return { ...this.extra, error };
  }
}

/** A 429 in the shape NO_WAIT and an exhausted WAIT both answer with. */
export function rateLimited(limit: string, retryAfterMs: number | null, message?: string): GatewayError {
  const headers: Record<string, string> = {};
  // Retry-After is whole seconds; round up so a client that honours it never comes back early.
  if (retryAfterMs !== null) headers["Retry-After"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  return new GatewayError(
    "rate_limited",
    message ??
      (retryAfterMs === null
        ? `No capacity for this model now (limit: ${limit}).`
        : `No capacity for this model now (limit: ${limit}); retry in ${retryAfterMs} ms.`),
    { extra: { limit, retry_after_ms: retryAfterMs }, headers },
  );
}

/**
 * The longest wait a client's own retries are meant to sit out: a sliding minute's turn (61 s and its
 * guard) lies within it; a rest beyond it (a spend cap's window, a day, money) is not a retry's to cure.
 */
export const RETRY_HORIZON_MS = 120_000;

/**
 * A refusal no client's own retry can cure, which every surface answers with `x-should-retry: false`
 * (the header Anthropic's and OpenAI's SDKs obey before their own rules, so they raise at once
 * instead of sleeping on a Retry-After of an hour): a 4xx of the request or the caller (a bad request,
 * an unknown model, a credential, a scope; not 408, 409 or 429, which waiting may lift, nor 499, which
 * no client reads), and a 429 for money (its `cause`), a day's limit or a budget, or whose time lies
 * beyond RETRY_HORIZON_MS.
 */
export function retryCannotCure(error: GatewayError): boolean {
  const status = error.status;
  if (status === 429) {
    const { limit, cause, retry_after_ms: wait } = error.extra ?? {};
    return isOneOf(MONEY_CAUSES, cause) || limit === "rpd" || isOneOf(BUDGET_LIMITS, limit) ||
      (typeof wait === "number" && wait > RETRY_HORIZON_MS);
  }
  return status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 499;
}

export const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" } as const;

/** A JSON answer; its content type is JSON's (`headers` carry no content type of their own). */
export function jsonResponse(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...headers, ...JSON_HEADERS } });
}
