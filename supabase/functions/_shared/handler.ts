// The HTTP side of llm-invoke: method, credentials, content type, body size, JSON, validation,
// and the mapping of every failure to a JSON error. What happens to a valid request (reserve, call
// Google, finalize) is the injected `invoke`, so tests and servers build the handler with their own
// dependencies. No Deno globals here: the module runs under Deno and under Node (vitest).
import { authenticate, type Caller } from "./auth.ts";
import { errorResponse, GatewayError, jsonResponse } from "./errors.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest, parseInvokeRequest, type RequestLimits } from "./request.ts";
import { sanitizeError } from "./sanitize.ts";

export interface InvokeContext {
  caller: Caller;
  request: NormalizedRequest;
  /** The caller's request_id, or one generated here. */
  requestId: string;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
}

/** The success body (request_id is added by the handler). Never contains a key. */
export interface InvokeResult {
  text: string;
  model: string;
  key_alias: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  attempts: number;
  waited_ms: number;
  finish_reason: string | null;
  candidates?: unknown[];
  /** True when the answer is a replay of an earlier request with the same request_id. */
  replayed?: boolean;
}

export interface HandlerDeps {
  /** Service/secret keys accepted as trusted callers (see auth.ts serviceKeysFromEnv). */
  serviceKeys: readonly string[];
  /** Runs a validated request; throws GatewayError for answers other than 200. */
  invoke: (ctx: InvokeContext) => Promise<InvokeResult>;
  /** Scoped tokens are accepted only once something validates them (the Kaggle issue). */
  acceptTokens?: boolean;
  maxBodyBytes?: number;
  requestLimits?: RequestLimits;
  /** Where unexpected errors are reported (already sanitized). */
  logError?: (message: string, requestId: string) => void;
  newRequestId?: () => string;
}

export const DEFAULT_MAX_BODY_BYTES = 1_000_000;

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const limits = deps.requestLimits ?? DEFAULT_REQUEST_LIMITS;
  const newRequestId = deps.newRequestId ?? (() => crypto.randomUUID());
  const logError = deps.logError ?? ((message, requestId) => console.error(`[llm-invoke ${requestId}] ${message}`));

  return async (req: Request): Promise<Response> => {
    let requestId = newRequestId();
    try {
      if (req.method !== "POST") {
        throw new GatewayError("method_not_allowed", "Use POST with a JSON body.", { headers: { allow: "POST" } });
      }
      // Credentials before the body: an anonymous caller must not make us read a megabyte.
      const caller = await authenticate(req.headers, deps.serviceKeys);
      if (caller.kind === "token" && deps.acceptTokens !== true) {
        throw new GatewayError("unauthorized", "Scoped tokens are not accepted by this deployment.");
      }
      const contentType = req.headers.get("content-type") ?? "";
      if (!/^application\/json\s*(;|$)/i.test(contentType.trim())) {
        throw new GatewayError(
          "unsupported_media_type",
          "Send the body as JSON with 'Content-Type: application/json'.",
        );
      }
      const body = parseJson(await readBody(req, maxBodyBytes));
      const request = parseInvokeRequest(body, limits);
      requestId = request.requestId ?? requestId;
      const result = await deps.invoke({ caller, request, requestId, signal: req.signal });
      return jsonResponse({ ...result, request_id: requestId }, 200, { "x-request-id": requestId });
    } catch (error) {
      const gatewayError = error instanceof GatewayError ? error : unexpected(error, requestId, logError);
      const response = errorResponse(gatewayError, { request_id: requestId });
      response.headers.set("x-request-id", requestId);
      return response;
    }
  };
}

function unexpected(error: unknown, requestId: string, log: (m: string, id: string) => void): GatewayError {
  log(sanitizeError(error), requestId);
  return new GatewayError("internal_error", "Unexpected error; it has been logged with this request_id.");
}

/** Reads the body as text, refusing (without reading it all) anything over `limit` bytes. */
export async function readBody(req: Request, limit: number): Promise<string> {
  const tooLarge = () =>
    new GatewayError("body_too_large", `The body exceeds ${limit} bytes.`, { details: { limit_bytes: limit } });
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new GatewayError("invalid_json", "The body is not valid UTF-8.");
  }
}

/**
 * The body of a function whose fields are all optional: `{}` when empty, else a JSON object sent
 * as application/json (415, 400 invalid_json otherwise). Size-limited like readBody.
 */
export async function readOptionalJsonObject(req: Request, limit: number): Promise<Record<string, unknown>> {
  const text = await readBody(req, limit);
  if (text.trim() === "") return {};
  const contentType = (req.headers.get("content-type") ?? "").trim();
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new GatewayError("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_json", "The body is not valid JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new GatewayError("invalid_json", "The body must be a JSON object.");
  }
  return body as Record<string, unknown>;
}

function parseJson(text: string): unknown {
  if (text.trim() === "") throw new GatewayError("invalid_json", "The body is empty; send a JSON object.");
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : "";
    throw new GatewayError("invalid_json", `The body is not valid JSON: ${sanitizeError(detail, { maxLength: 200 })}`);
  }
}
