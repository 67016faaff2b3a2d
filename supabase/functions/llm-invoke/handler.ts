// The HTTP side of llm-invoke: method, credentials, content type, body size, JSON, validation,
// and the mapping of every failure to a JSON error. What happens to a valid request (reserve, call
// Google, finalize) is the injected `invoke`, so tests and servers build the handler with their own
// dependencies. No Deno globals here: the module runs under Deno and under Node (vitest).
import { authenticate, type Caller } from "../_shared/auth.ts";
import { errorResponse, GatewayError, jsonResponse } from "../_shared/errors.ts";
import { parseJson, readBody } from "../_shared/http.ts";
import { sanitizeError } from "../_shared/sanitize.ts";
import { type TokenCheck, tokenStatusError } from "./token-check.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest, parseInvokeRequest, type RequestLimits } from "./request.ts";

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
  /**
   * Checks a scoped token before the body is read (token-check.ts: cached per worker). Without it a
   * token goes straight to the reservation, which validates it too.
   */
  checkToken?: (tokenHash: string) => Promise<TokenCheck>;
  maxBodyBytes?: number;
  requestLimits?: RequestLimits;
  /** Where unexpected errors are reported (already sanitized). */
  logError?: (message: string, requestId: string) => void;
  /** Where the one JSON line per request goes (default: console.log). */
  logRequest?: (line: string) => void;
  now?: () => number;
  newRequestId?: () => string;
}

export const DEFAULT_MAX_BODY_BYTES = 1_000_000;

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const limits = deps.requestLimits ?? DEFAULT_REQUEST_LIMITS;
  const newRequestId = deps.newRequestId ?? (() => crypto.randomUUID());
  const logError = deps.logError ?? ((message, requestId) => console.error(`[llm-invoke ${requestId}] ${message}`));

  const logRequest = deps.logRequest ?? ((line: string) => console.log(line));
  const now = deps.now ?? (() => Date.now());

  return async (req: Request): Promise<Response> => {
    const started = now();
    let requestId = newRequestId();
    const entry: RequestLogEntry = { function: "llm-invoke", request_id: requestId, method: req.method };
    let response: Response;
    try {
      if (req.method !== "POST") {
        throw new GatewayError("method_not_allowed", "Use POST with a JSON body.", { headers: { allow: "POST" } });
      }
      // Credentials before the body: an anonymous caller must not make us read a megabyte.
      const caller = await authenticate(req.headers, deps.serviceKeys);
      entry.caller = caller.kind === "service" ? caller.label : "token";
      if (caller.kind === "token" && deps.acceptTokens !== true) {
        throw new GatewayError("unauthorized", "Scoped tokens are not accepted by this deployment.");
      }
      let outputCap: number | undefined;
      if (caller.kind === "token" && deps.checkToken !== undefined) {
        const check = await deps.checkToken(caller.tokenHash);
        if (check.status !== "ok") throw tokenStatusError(check.status);
        outputCap = check.maxOutputTokens;
      }
      const contentType = req.headers.get("content-type") ?? "";
      if (!/^application\/json\s*(;|$)/i.test(contentType.trim())) {
        throw new GatewayError(
          "unsupported_media_type",
          "Send the body as JSON with 'Content-Type: application/json'.",
        );
      }
      const body = parseJson(await readBody(req, maxBodyBytes));
      const request = capOutputTokens(parseInvokeRequest(body, limits), outputCap);
      requestId = request.requestId ?? requestId;
      entry.request_id = requestId;
      entry.model = request.model;
      entry.mode = request.mode;
      const result = await deps.invoke({ caller, request, requestId, signal: req.signal });
      Object.assign(entry, {
        model: result.model,
        key_alias: result.key_alias,
        attempts: result.attempts,
        waited_ms: result.waited_ms,
        prompt_tokens: result.usage.prompt_tokens,
        completion_tokens: result.usage.completion_tokens,
        replayed: result.replayed === true,
      });
      response = jsonResponse({ ...result, request_id: requestId }, 200, { "x-request-id": requestId });
      entry.outcome = "ok";
    } catch (error) {
      const gatewayError = error instanceof GatewayError ? error : unexpected(error, requestId, logError);
      response = errorResponse(gatewayError, { request_id: requestId });
      response.headers.set("x-request-id", requestId);
      entry.outcome = gatewayError.code;
      const limit = gatewayError.extra?.limit;
      if (typeof limit === "string") entry.limit = limit;
    }
    entry.status = response.status;
    entry.latency_ms = now() - started;
    logRequest(JSON.stringify(entry));
    return response;
  };
}

/**
 * One line per request, for the Supabase log explorer: who, what, how it ended, how long, how many
 * tokens. Never a credential, never the prompt or the answer.
 */
export interface RequestLogEntry {
  function: "llm-invoke";
  request_id: string;
  method: string;
  /** The service caller's label, or "token" (the audit row names the client). */
  caller?: string;
  model?: string;
  mode?: string;
  /** "ok" or the error code of the answer. */
  outcome?: string;
  status?: number;
  limit?: string;
  key_alias?: string;
  attempts?: number;
  waited_ms?: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  replayed?: boolean;
  latency_ms?: number;
}

/**
 * A client's scope caps output tokens (budgets count input only): a request above the cap is refused,
 * one that names no maxOutputTokens is sent with the cap.
 */
function capOutputTokens(request: NormalizedRequest, cap: number | undefined): NormalizedRequest {
  if (cap === undefined) return request;
  const asked = request.generationConfig.maxOutputTokens;
  if (asked === undefined || asked === 0) {
    return { ...request, generationConfig: { ...request.generationConfig, maxOutputTokens: cap } };
  }
  if (asked > cap) {
    throw new GatewayError(
      "invalid_request",
      `generationConfig.maxOutputTokens is ${asked}; this client may ask for at most ${cap}.`,
      { details: { field: "generationConfig.maxOutputTokens", max_output_tokens: cap } },
    );
  }
  return request;
}

function unexpected(error: unknown, requestId: string, log: (m: string, id: string) => void): GatewayError {
  log(sanitizeError(error), requestId);
  return new GatewayError("internal_error", "Unexpected error; it has been logged with this request_id.");
}
