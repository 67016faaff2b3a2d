// The gateway's errors in OpenAI's shape: the error object OpenAI's SDKs expose (type by status, the
// field as param, the gateway's stable code), and a 429's retry-after-ms and Retry-After headers, which
// those SDKs wait on before retrying.
import type { ErrorAnswer } from "../../../_shared/envelope.ts";
import type { GatewayError } from "../../../_shared/errors.ts";
import { isObject } from "../../../_shared/json.ts";
import type { SurfaceFront } from "../shared/surface.ts";

/** OpenAI's error `type` for a status. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** The field an error is about, as OpenAI's `param`: the gateway's details name it (or its first issue). */
function paramOf(error: GatewayError): string | null {
  const details = error.details ?? {};
  if (typeof details.field === "string") return details.field;
  if (typeof details.header === "string") return details.header;
  const issues = details.issues;
  if (Array.isArray(issues) && isObject(issues[0]) && typeof issues[0].path === "string" && issues[0].path !== "") {
    return issues[0].path;
  }
  return null;
}

/**
 * OpenAI's error object. `code` is the gateway's stable code (docs/errors.md), except a 429's, which is
 * OpenAI's own "rate_limit_exceeded" (the limit that refused is in `limit`). The gateway's details and a
 * 429's limit and retry_after_ms ride along: OpenAI's SDKs expose this object as the error's body.
 */
export function openAiErrorObject(error: GatewayError, requestId: string): Record<string, unknown> {
  return {
    // First, so that none of them can hide the fields OpenAI's clients read.
    ...error.extra,
    message: error.message,
    type: errorType(error.status),
    param: paramOf(error),
    code: error.status === 429 ? "rate_limit_exceeded" : error.code,
    ...(error.details === undefined ? {} : { details: error.details }),
    request_id: requestId,
  };
}

/**
 * A model the gateway does not know, as OpenAI says it: 404 `model_not_found` (OpenAI's SDKs raise
 * NotFoundError), pointing at the list of the models served.
 */
function modelNotFound(error: GatewayError, requestId: string): ErrorAnswer {
  const model = typeof error.details?.model === "string" ? error.details.model : null;
  return {
    status: 404,
    body: {
      error: {
        message: `The model \`${model ?? "?"}\` does not exist or is not served here: ` +
          "GET /functions/v1/llm-invoke/v1/models lists the models you can use.",
        type: "invalid_request_error",
        param: "model",
        code: "model_not_found",
        ...(model === null ? {} : { details: { model } }),
        request_id: requestId,
      },
    },
  };
}

export function error(error: GatewayError, requestId: string): ErrorAnswer {
  if (error.code === "unknown_model") return modelNotFound(error, requestId);
  const headers: Record<string, string> = {};
  const retryAfterMs = error.extra?.retry_after_ms;
  if (error.status === 429 && typeof retryAfterMs === "number") {
    // OpenAI's SDKs read retry-after-ms before retry-after: the exact wait, then whole seconds rounded up.
    // "Retry-After" is spelled as the gateway's own header, so the two merge into one, not "2, 2".
    headers["retry-after-ms"] = String(retryAfterMs);
    headers["Retry-After"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
  return { body: { error: openAiErrorObject(error, requestId) }, headers };
}

/** OpenAI's route before its body is read: its error shape (the key comes as a Bearer token, read by auth). */
export const openAiFront: SurfaceFront = { error };
