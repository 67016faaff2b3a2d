// The HTTP side of llm-invoke: credentials, content type, body size, JSON, validation, inside the
// shared envelope (_shared/envelope.ts: request id, method, log line, error answers). What happens to a valid request (reserve, call
// Google, finalize) is the injected `invoke`, so tests and servers build the handler with their own
// dependencies. No Deno globals here: the module runs under Deno and under Node (vitest).
//
// Routes: POST (any path) generates; GET …/v1/quota answers the caller's quota (the injected
// `quota`, one round trip). Every answer of a generation carries the quota its last reservation saw,
// as x-ratelimit-* headers (quota-headers.ts).
import { authenticate } from "../_shared/auth.ts";
import { GatewayError } from "../_shared/errors.ts";
import { envelope } from "../_shared/envelope.ts";
import { parseJson, readBody } from "../_shared/http.ts";
import type { InvokeContext, InvokeResult } from "./context.ts";
import { quotaHeaders } from "./quota-headers.ts";
import type { QuotaReport, ReserveCaller } from "./store.ts";
import { type TokenCheck, tokenStatusError } from "./token-check.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest, parseInvokeRequest, type RequestLimits } from "./request.ts";

export interface HandlerDeps {
  /** Service/secret keys accepted as trusted callers (see auth.ts serviceKeysFromEnv). */
  serviceKeys: readonly string[];
  /** Runs a validated request; throws GatewayError for answers other than 200. */
  invoke: (ctx: InvokeContext) => Promise<InvokeResult>;
  /** The quota route's answer for a credential (pg-store's quotaReport); without it the route is 404. */
  quota?: (caller: ReserveCaller) => Promise<QuotaReport>;
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

/** GET …/functions/v1/llm-invoke/v1/quota: the function sees the path from /llm-invoke on. */
const QUOTA_ROUTE = /\/v1\/quota\/?$/;

export function isQuotaRoute(req: Request): boolean {
  return QUOTA_ROUTE.test(new URL(req.url).pathname);
}

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const limits = deps.requestLimits ?? DEFAULT_REQUEST_LIMITS;

  return envelope({
    name: "llm-invoke",
    newRequestId: deps.newRequestId,
    now: deps.now,
    logLine: deps.logRequest,
    note: deps.logError,
    methods: (req) => (isQuotaRoute(req) ? ["GET"] : ["POST"]),
  }, async (req, scope) => {
    // Credentials before the body: an anonymous caller must not make us read a megabyte.
    const caller = await authenticate(req.headers, deps.serviceKeys);
    scope.annotate({ caller: caller.kind === "service" ? caller.label : "token" });
    if (caller.kind === "token" && deps.acceptTokens !== true) {
      throw new GatewayError("unauthorized", "Scoped tokens are not accepted by this deployment.");
    }
    let outputCap: number | undefined;
    if (caller.kind === "token" && deps.checkToken !== undefined) {
      const check = await deps.checkToken(caller.tokenHash);
      if (check.status !== "ok") throw tokenStatusError(check.status);
      outputCap = check.maxOutputTokens;
    }
    if (isQuotaRoute(req)) {
      scope.annotate({ route: "quota" });
      if (deps.quota === undefined) throw new GatewayError("not_found", "This deployment has no quota route.");
      const answer = await deps.quota(
        caller.kind === "service" ? { kind: "service", name: caller.label } : { kind: "token", tokenHash: caller.tokenHash },
      );
      if (!answer.ok) throw tokenStatusError(answer.status);
      return { body: answer.report, headers: { "cache-control": "no-store" } };
    }
    const contentType = req.headers.get("content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(contentType.trim())) {
      throw new GatewayError("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.");
    }
    const body = parseJson(await readBody(req, maxBodyBytes));
    const request = capOutputTokens(parseInvokeRequest(body, limits), outputCap);
    if (request.requestId !== undefined) scope.useRequestId(request.requestId);
    scope.annotate({ model: request.model, mode: request.mode });
    const result = await deps.invoke({
      caller,
      request,
      requestId: scope.requestId,
      signal: req.signal,
      onQuota: (quota) => scope.setHeaders(quotaHeaders(quota)),
    });
    scope.annotate({
      model: result.model,
      // A fallback served: the log line says what was asked for.
      ...(result.requested_model === undefined ? {} : { requested_model: result.requested_model }),
      key_alias: result.key_alias,
      attempts: result.attempts,
      waited_ms: result.waited_ms,
      prompt_tokens: result.usage.prompt_tokens,
      completion_tokens: result.usage.completion_tokens,
      replayed: result.replayed === true,
    });
    return { body: { ...result } };
  });
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
