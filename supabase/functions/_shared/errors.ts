// Error codes of the gateway's functions. The codes are a stable API: callers branch on `code`,
// never on `message` (which is for humans and may change).
//
// | code                   | HTTP | meaning / what the caller should do                                   |
// |------------------------|------|-----------------------------------------------------------------------|
// | invalid_json           | 400  | body is not valid JSON (or not a JSON object): fix the body           |
// | invalid_request        | 400  | a field is missing, has the wrong type or an unknown key; see details |
// | empty_input            | 400  | no prompt/messages/contents, or only empty text                       |
// | unknown_model          | 400  | the model is not in google_ai_model_limits (names and aliases)       |
// | unsupported_feature    | 400  | the model cannot do what was asked (e.g. JSON mode on Gemma)          |
// | upstream_rejected      | 400  | Google refused the request itself (other 4xx); not retried            |
// | unauthorized           | 401  | missing, malformed or unknown credential                              |
// | token_invalid          | 401  | a well-formed scoped token that the database does not know           |
// | token_expired          | 401  | the scoped token has expired: mint a new one at issue-kaggle-token    |
// | token_revoked          | 401  | the token or its client was revoked: ask the operator                 |
// | invalid_secret         | 401  | issue-kaggle-token: the client secret is missing, malformed or unknown |
// | client_revoked         | 401  | issue-kaggle-token: the client was revoked (its tokens with it)       |
// | scope_exceeded         | 403  | issue-kaggle-token: more than the client may have; see `allowed`      |
// | forbidden              | 403  | valid credential, but not allowed this scope                          |
// | model_not_allowed      | 403  | the scoped token may not use this model (see details.model)           |
// | not_found              | 404  | no such function (local functions server) or path                     |
// | method_not_allowed     | 405  | only POST is accepted                                                 |
// | body_too_large         | 413  | body exceeds the size limit (see details.limit_bytes)                 |
// | request_in_progress    | 409  | this request_id is being served now; Retry-After: end of its claim    |
// | unsupported_media_type | 415  | Content-Type must be application/json                                 |
// | client_closed          | 499  | the client closed the connection mid-request (logged; nobody to tell) |
// | rate_limited           | 429  | no capacity now; Retry-After header + retry_after_ms and limit fields |
// |                        |      | (limit token_budget: the token is used up, no Retry-After: mint anew;  |
// |                        |      |  limit client_budget: the client's daily budget, until Pacific midnight)|
// | internal_error         | 500  | a bug or an unexpected failure on our side; safe to retry later       |
// | upstream_error         | 502  | Google failed (5xx, bad key, malformed answer) after all attempts     |
// | unavailable            | 503  | the gateway cannot serve now (database down, no active key)           |
// | upstream_timeout       | 504  | Google did not answer in time after all attempts                      |

export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  empty_input: 400,
  unknown_model: 400,
  unsupported_feature: 400,
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
  method_not_allowed: 405,
  request_in_progress: 409,
  body_too_large: 413,
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
    message ?? (retryAfterMs === null
      ? `No capacity for this model now (limit: ${limit}).`
      : `No capacity for this model now (limit: ${limit}); retry in ${retryAfterMs} ms.`),
    { extra: { limit, retry_after_ms: retryAfterMs }, headers },
  );
}

export const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" } as const;

export function jsonResponse(body: unknown, status: number, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("content-type", JSON_HEADERS["content-type"]);
  return new Response(JSON.stringify(body), { status, headers: h });
}

/** Response for a GatewayError; `extraBody` adds e.g. the request_id. */
export function errorResponse(error: GatewayError, extraBody: Record<string, unknown> = {}): Response {
  return jsonResponse({ ...extraBody, ...error.toBody() }, error.status, error.headers);
}
