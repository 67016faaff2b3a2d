// Google's error shape ({error: {code, message, status, details}}) for every refusal and failure of
// the gateway, so Google's SDKs raise their own error types and read the wait from RetryInfo.
import type { ErrorAnswer } from "../../../_shared/envelope.ts";
import type { GatewayError } from "../../../_shared/errors.ts";
import type { SurfaceFront } from "../shared/surface.ts";

/**
 * The canonical status Google's errors name for each HTTP status the gateway answers with. 405 has no
 * canonical twin: UNIMPLEMENTED ("not supported by this service") says what it means; 413 and 415 are
 * what Google itself answers as INVALID_ARGUMENT. A status missing here would read UNKNOWN (a test
 * walks ERROR_STATUS so that cannot happen unnoticed).
 */
export const GOOGLE_STATUS: Readonly<Record<number, string>> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  405: "UNIMPLEMENTED",
  409: "ABORTED",
  413: "INVALID_ARGUMENT",
  415: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** A protobuf Duration in JSON, to the millisecond: 3500 → "3.5s", 61000 → "61s". */
export function retryDelay(ms: number): string {
  const millis = Math.max(0, Math.round(ms));
  const fraction = millis % 1000;
  const seconds = (millis - fraction) / 1000;
  return fraction === 0 ? `${seconds}s` : `${seconds}.${String(fraction).padStart(3, "0").replace(/0+$/, "")}s`;
}

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details: Array<Record<string, unknown>> };
}

/**
 * Google's error shape. ErrorInfo carries the gateway's stable code (callers branch on it, as on the
 * native route's `error.code`); RetryInfo carries the gateway's exact wait where it knows one (429, and
 * 409 of a request being served), finer than the whole seconds of Retry-After.
 */
export function googleError(error: GatewayError, requestId: string): GoogleErrorBody {
  const limit = error.extra?.limit;
  const cause = error.extra?.cause;
  const details: Array<Record<string, unknown>> = [{
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    reason: error.code.toUpperCase(),
    domain: "eve-llm-gateway",
    // ErrorInfo.metadata is a map of strings.
    metadata: { code: error.code, request_id: requestId, ...(typeof limit === "string" ? { limit } : {}),
      ...(typeof cause === "string" ? { cause } : {}) },
  }];
  const wait = error.extra?.retry_after_ms;
  if (typeof wait === "number" && Number.isFinite(wait)) {
    details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: retryDelay(wait) });
  }
  const field = error.details?.field;
  if (typeof field === "string") {
    details.push({
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      fieldViolations: [{ field, description: error.message }],
    });
  }
  return {
    error: { code: error.status, message: error.message, status: GOOGLE_STATUS[error.status] ?? "UNKNOWN", details },
  };
}

/** An error of the gateway as Google's routes answer it. */
export function geminiErrorAnswer(error: GatewayError, requestId: string): ErrorAnswer {
  return { body: googleError(error, requestId) };
}

/** Google's route before its body is read: its error shape, and the key its SDKs may send as `?key=`. */
export const geminiFront: SurfaceFront = {
  error: geminiErrorAnswer,
  keyOf: (req) => new URL(req.url).searchParams.get("key"),
};
