// The gateway's errors in Anthropic's shape, `{type: "error", error: {type, message}, request_id}`:
// the type by status (what Anthropic's SDKs raise on), the gateway's stable code and details beside
// it, and a 429's retry-after in seconds, which those SDKs wait on before retrying. Loaded with the
// handler: an error however early is said in its route's shape.
import type { ErrorAnswer } from "../../../_shared/envelope.ts";
import type { GatewayError } from "../../../_shared/errors.ts";
import type { SurfaceFront } from "../shared/surface.ts";

type Json = Record<string, unknown>;

/** Anthropic's error `type` for a status. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 402) return "billing_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503 || status === 529) return "overloaded_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** The error object: Anthropic's type and message, the gateway's stable code and details beside them. */
export function errorObject(error: GatewayError): Json {
  return {
    type: errorType(error.status),
    message: error.message,
    code: error.code,
    ...(error.details === undefined ? {} : { details: error.details }),
    ...error.extra,
  };
}

/**
 * An error before the answer began: `{type: "error", error, request_id}`, a 429's retry-after in
 * seconds. A model the gateway does not know is Anthropic's 404 not_found_error (its SDKs raise
 * NotFoundError), as Anthropic answers one.
 */
export function error(error: GatewayError, requestId: string): ErrorAnswer {
  const headers: Record<string, string> = {};
  const retryAfterMs = error.extra?.retry_after_ms;
  if (error.status === 429 && typeof retryAfterMs === "number") {
    headers["Retry-After"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
  const unknownModel = error.code === "unknown_model";
  const body = {
    type: "error",
    error: { ...errorObject(error), ...(unknownModel ? { type: "not_found_error" } : {}) },
    request_id: requestId,
  };
  return { ...(unknownModel ? { status: 404 } : {}), body, headers };
}

/** Anthropic's routes before their body is read: the error shape, and the key its SDKs send as `x-api-key` (1.x as a Bearer token, read by auth). */
export const anthropicFront: SurfaceFront = { error, keyOf: (req) => req.headers.get("x-api-key") };
