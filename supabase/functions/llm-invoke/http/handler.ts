// The HTTP side of llm-invoke, inside the shared envelope (_shared/envelope.ts: request id, method,
// log line, error answers): which route (routes.ts: one row per route), who is calling, the body, and the answer in the
// route's own shape (surfaces/). What happens to a valid request (reserve, call the provider, finalize) is
// the injected `invoke`, so tests and servers build the handler with their own dependencies. No Deno
// globals here: the module runs under Deno and under Node (vitest).
//
// Every route that generates or embeds goes through the same authentication, reservation, attempts,
// audit, idempotency and WAIT/NO_WAIT (an embedding is its own operation of the attempt loop:
// embedding/operation.ts); every such answer carries the quota its last reservation saw, as
// x-ratelimit-* headers (quota-headers.ts), and what the response cache did, as x-eve-cache-*
// (cache/ask.ts). Every answer of every route carries
// `Server-Timing` (_shared/server-timing.ts): here `auth` and `body`; invoke adds the rest.
import { authenticate, type Caller, type ServiceKeys } from "../../_shared/auth.ts";
import {
  type CallRequest,
  type EmbeddingRequest,
  type ModelEntry,
  type ReserveCaller,
  DEFAULT_REQUEST_LIMITS,
  type NormalizedRequest,
  type RequestLimits,
} from "../contract.ts";
import { embedding } from "../embedding/operation.ts";
import { type Answer, envelope, type RequestScope } from "../../_shared/envelope.ts";
import { GatewayError } from "../../_shared/errors.ts";
import { parseJson, readBody } from "../../_shared/http.ts";
import type { PhaseTimer } from "../../_shared/server-timing.ts";
import type { HubChunk } from "../../_shared/upstream/hub.ts";
import {
  type InvokeAnswer,
  type InvokeContext,
  type InvokeResult,
  type InvokeScope,
  isStream,
  type QueueProgress,
} from "../attempt/context.ts";
import { quotaHeaders } from "./quota-headers.ts";
import { CACHE_HEADER, cacheAskOf, cacheHeaders } from "../cache/ask.ts";
import { methodsOf, routeOf, type RouteRow, ROUTES, surfaceOf } from "./routes.ts";
import { SURFACES } from "./surfaces.ts";
import type { QuotaReport, StoredResponses, TokenCheck } from "../store/store.ts";
import { SSE_HEADERS, sseBody } from "../surfaces/shared/sse.ts";
import type { EmbeddingSurface, ParseInput, Surface, SurfaceContext } from "../surfaces/shared/surface.ts";
import { tokenStatusError } from "../attempt/refusals.ts";
import { capOutputTokens, reserveCallerOf, type Scope, scopeOf, visibleModels } from "../attempt/caller.ts";

export interface HandlerDeps {
  /** Service/secret keys accepted as trusted callers (see auth.ts serviceKeysFromEnv). */
  serviceKeys: ServiceKeys;
  /** Runs a validated request; throws GatewayError for answers other than 200. */
  invoke: (ctx: InvokeContext) => Promise<InvokeAnswer>;
  /** The quota route's answer for a credential (pg-store's quotaReport); without it the route is 404. */
  quota?: (caller: ReserveCaller) => Promise<QuotaReport>;
  /** The models callers can name (pg-store's modelList); without it the model routes are 404. */
  models?: () => Promise<ModelEntry[]>;
  /**
   * The provider's count of a request's input tokens (the count-tokens routes), for a scoped token
   * only on its own models; without it the route is 404.
   */
  countTokens?: (
    request: NormalizedRequest,
    signal: AbortSignal,
    scope?: Scope,
    timing?: PhaseTimer,
  ) => Promise<number>;
  /** Answers kept for a follow-up (OpenAI's Responses API); without it nothing is kept and the stored routes are 404. */
  storedResponses?: StoredResponses;
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
  /** The Server-Timing clock (default performance.now()). */
  timingNow?: () => number;
}

/** Room for one inline image at its cap (7 MiB decoded, ~9.4 MB as base64) and the rest of a request. */
export const DEFAULT_MAX_BODY_BYTES = 10_000_000;

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const limits = deps.requestLimits ?? DEFAULT_REQUEST_LIMITS;
  const now = deps.now ?? (() => Date.now());

  return envelope({
    name: "llm-invoke",
    newRequestId: deps.newRequestId,
    now: deps.now,
    logLine: deps.logRequest,
    note: deps.logError,
    serverTiming: true,
    timingNow: deps.timingNow,
    methods: (req) => methodsOf(routeOf(req.url)),
    errorShape: (req) => SURFACES[surfaceOf(routeOf(req.url), req.headers)].front.error,
  }, async (req, scope) => {
    const route = routeOf(req.url);
    scope.annotate({ route: route.kind });
    // Every answer to a request that may use the cache says what it did, an error's too: `bypass` until
    // invoke looks the cache up and reports what it did (a call under way is a `miss` until stored).
    const called = route.kind !== "unknown" && (route.operation === "generate" || route.operation === "embed");
    if (called || req.headers.has(CACHE_HEADER)) {
      scope.setHeaders(cacheHeaders({ status: "bypass" }));
    }
    // An unknown path costs nothing: no credential is checked, no body read.
    if (route.kind === "unknown") throw notFound("This path is not one of llm-invoke's routes.");
    const row = SURFACES[surfaceOf(route, req.headers)];
    const caller = await scope.timing.time("auth", () => identify(req, row.front.keyOf?.(req) ?? null, scope));
    // What the path names beside the body (Google's routes: the model, and whether it streams).
    const input = async (): Promise<ParseInput> => ({
      body: await readJsonBody(req),
      headers: req.headers,
      limits,
      ...(route.model === "" ? {} : { model: route.model }),
      ...(route.stream === undefined ? {} : { stream: route.stream }),
    });

    switch (route.operation) {
      case "quota":
        return quotaAnswer(caller);
      case "models":
        return modelsAnswer(await row.load(), route, new URL(req.url), caller.scope);
      case "countTokens": {
        const counting = (await row.load()).countTokens;
        if (deps.countTokens === undefined || counting === undefined) {
          throw notFound("This deployment does not count tokens.");
        }
        const request = await scope.timing.time("body", async () => counting.parse(await input()));
        const total = await deps.countTokens(request, req.signal, caller.scope, scope.timing);
        return { body: counting.answer(total), asIs: true };
      }
      case "stored":
        return storedAnswer(await row.load(), req.method, route.model, caller.caller);
      case "generate": {
        const surface = await row.load();
        const parsed = await scope.timing.time(
          "body",
          async () => capOutputTokens(surface.parse(await input()), caller.scope),
        );
        const request = await continued(surface, parsed, caller.caller);
        return generate(req, scope, surface, caller.caller, request);
      }
      case "embed": {
        const surface = await row.embeddings?.();
        if (surface === undefined) throw notFound("This API has no embedding route.");
        const request = await scope.timing.time("body", async () => surface.parse(await input()));
        return embed(req, scope, caller.caller, request, surface);
      }
    }
  });

  /** Who is calling (`key`: the one its route's SDKs send beside Authorization); a scoped token is checked (and its output cap read) before the body. */
  async function identify(
    req: Request,
    key: string | null,
    scope: RequestScope,
  ): Promise<{ caller: Caller; scope: Scope }> {
    const caller = await authenticate(req.headers, deps.serviceKeys, [key]);
    scope.annotate({ caller: caller.kind === "service" ? caller.label : "token" });
    if (caller.kind === "token" && deps.acceptTokens !== true) {
      throw new GatewayError("unauthorized", "Scoped tokens are not accepted by this deployment.");
    }
    if (caller.kind === "token" && deps.checkToken !== undefined) {
      const check = await deps.checkToken(caller.tokenHash);
      if (check.status !== "ok") throw tokenStatusError(check.status);
      return { caller, scope: scopeOf(check) };
    }
    return { caller, scope: {} };
  }

  async function readJsonBody(req: Request): Promise<unknown> {
    const contentType = req.headers.get("content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(contentType.trim())) {
      throw new GatewayError("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.");
    }
    return parseJson(await readBody(req, maxBodyBytes));
  }

  /** A request that continues a stored answer, continued from it (the caller's own only). */
  async function continued(surface: Surface, request: NormalizedRequest, caller: Caller): Promise<NormalizedRequest> {
    const id = surface.keeps?.continues(request) ?? null;
    if (id === null || surface.keeps === undefined) return request;
    const stored = await deps.storedResponses?.loadResponse(reserveCallerOf(caller), id) ?? null;
    if (stored === null) {
      throw new GatewayError("not_found", `No stored response ${id} of yours: it was not stored, was deleted, or expired.`, {
        details: { field: "previous_response_id" },
      });
    }
    return surface.keeps.continue(request, stored);
  }

  /** A stored answer of the caller's own, read (GET) or deleted (DELETE). */
  async function storedAnswer(surface: Surface, method: string, id: string, caller: Caller): Promise<Answer> {
    if (deps.storedResponses === undefined || surface.keeps === undefined) {
      throw notFound("This deployment keeps no answers.");
    }
    const who = reserveCallerOf(caller);
    const missing = () =>
      new GatewayError("not_found", `No stored response ${id} of yours: it was not stored, was deleted, or expired.`);
    if (method === "DELETE") {
      if (!await deps.storedResponses.deleteResponse(who, id)) throw missing();
      return { body: surface.keeps.deleted(id), asIs: true };
    }
    const stored = await deps.storedResponses.loadResponse(who, id);
    if (stored === null) throw missing();
    return { body: surface.keeps.shown(stored), asIs: true, headers: { "cache-control": "no-store" } };
  }

  /** Keeps an answer where its surface keeps them; a failure to keep it is noted, never the caller's error. */
  async function keep(
    surface: Surface,
    result: InvokeResult,
    context: SurfaceContext,
    caller: Caller,
    scope: RequestScope,
  ): Promise<void> {
    const kept = surface.keeps?.keep(result, context);
    if (kept === undefined || kept === null || deps.storedResponses === undefined || result.replayed === true) return;
    try {
      await deps.storedResponses.saveResponse(reserveCallerOf(caller), kept.id, kept.stored);
      scope.annotate({ stored: kept.id });
    } catch (error) {
      scope.annotate({ stored: false });
      deps.logError?.(`keeping ${kept.id} failed: ${error instanceof GatewayError ? error.code : "error"}`, scope.requestId);
    }
  }

  async function quotaAnswer(caller: { caller: Caller }): Promise<Answer> {
    if (deps.quota === undefined) throw notFound("This deployment has no quota route.");
    const answer = await deps.quota(reserveCallerOf(caller.caller));
    if (!answer.ok) throw tokenStatusError(answer.status);
    return { body: answer.report, headers: { "cache-control": "no-store" } };
  }

  /** The models a caller can name, in the route's surface: a scoped token sees only its own. */
  async function modelsAnswer(surface: Surface, route: RouteRow & { model: string }, url: URL, scope: Scope): Promise<Answer> {
    if (deps.models === undefined || surface.models === undefined) {
      throw notFound("This deployment has no model routes.");
    }
    const models = visibleModels(await deps.models(), scope);
    const at = { url, now: now() };
    if (route.kind.endsWith(".models")) return { body: surface.models.list(models, at), asIs: true };
    const one = surface.models.one(models, route.model, at);
    if (one === undefined) throw notFound(`No model ${route.model} here; GET …/v1/models lists them.`);
    return { body: one, asIs: true };
  }

  /** What every run of the attempt loop is told beside its request, whatever its operation. */
  function invokeScope(req: Request, scope: RequestScope, caller: Caller, request: CallRequest): InvokeScope {
    if (request.requestId !== undefined) scope.useRequestId(request.requestId);
    return {
      caller,
      requestId: scope.requestId,
      signal: req.signal,
      onQuota: (quota) => scope.setHeaders(quotaHeaders(quota)),
      cache: cacheAskOf(req.headers),
      onCache: (report) => {
        scope.setHeaders(cacheHeaders(report));
        if (report.status !== "bypass") scope.annotate({ cache: report.status });
      },
      timing: scope.timing,
    };
  }

  /** What a surface is told of the request it answers (`now` is read only by those that date their answers). */
  function surfaceContext<R extends CallRequest>(req: Request, scope: RequestScope, request: R): () => SurfaceContext<R> {
    const url = new URL(req.url);
    return () => ({
      requestId: scope.requestId,
      request,
      url,
      get now() {
        return now();
      },
    });
  }

  /** An embedding: run as its own operation, its vectors answered whole in its route's shape. */
  async function embed<R extends EmbeddingRequest>(
    req: Request,
    scope: RequestScope,
    caller: Caller,
    request: R,
    surface: EmbeddingSurface<R>,
  ): Promise<Answer> {
    const asked = invokeScope(req, scope, caller, request);
    scope.annotate({ model: request.model, mode: request.mode });
    const answer = await deps.invoke({ ...asked, request, operation: embedding(request) });
    logAnswer(scope, answer);
    scope.setHeaders(servedHeaders(answer));
    if (isStream(answer)) {
      await answer.cancel();
      throw new Error("a stream was answered to an embedding");
    }
    return surface.answer(answer, surfaceContext(req, scope, request)());
  }

  async function generate(
    req: Request,
    scope: RequestScope,
    surface: Surface,
    caller: Caller,
    request: NormalizedRequest,
  ): Promise<Answer> {
    const asked = invokeScope(req, scope, caller, request);
    scope.annotate({ model: request.model, mode: request.mode, ...(request.stream ? { stream: true } : {}) });
    const progress = request.stream ? surface.queued?.() ?? null : null;
    const running = deps.invoke({
      ...asked,
      request,
      ...(progress === null ? {} : { onQueued: (p: QueueProgress) => progress.push(p) }),
    });
    const context = surfaceContext(req, scope, request);

    // A native stream that has to wait for its turn starts at once and says where it stands.
    if (progress !== null) {
      const first = await Promise.race([
        running.then(() => "answer" as const, () => "answer" as const),
        progress.started(),
      ]);
      if (first === "queued") {
        scope.annotate({ queued: true });
        const watched = running.then((answer) => watchStream(answer, scope));
        return { stream: sseBody(progress.frames(watched, context, scope)), headers: SSE_HEADERS };
      }
    }

    const answer = watchStream(await running, scope);
    logAnswer(scope, answer);
    scope.setHeaders(servedHeaders(answer));
    if (request.stream) {
      const streamed = surface.keeps === undefined ? answer : keptAtEnd(answer, () => keep(surface, whole(answer), context(), caller, scope));
      return surface.stream(streamed, context());
    }
    if (isStream(answer)) {
      await answer.cancel();
      throw new Error("a stream was answered to a request that did not ask for one");
    }
    await keep(surface, answer, context(), caller, scope);
    return surface.answer(answer, context());
  }
}

/**
 * A stream's chunks as they were, but a failure among them is noted on the request's log line (which
 * is written when the stream ends): the line of a stream that broke off says so.
 */
function watchStream(answer: InvokeAnswer, scope: RequestScope): InvokeAnswer {
  if (!isStream(answer)) return answer;
  const source = answer.chunks;
  const chunks: AsyncIterable<HubChunk> = {
    [Symbol.asyncIterator]() {
      const inner = source[Symbol.asyncIterator]();
      return {
        next: async () => {
          try {
            return await inner.next();
          } catch (error) {
            scope.annotate({ stream_error: error instanceof GatewayError ? error.code : "internal_error" });
            throw error;
          }
        },
        return: async () => (await inner.return?.()) ?? { done: true, value: undefined },
      };
    },
  };
  return { ...answer, chunks };
}

/** A stream's whole answer once it ended; a whole answer as it is. */
function whole(answer: InvokeAnswer): InvokeResult {
  return isStream(answer) ? answer.result() : answer;
}

/** A stream whose answer is kept once its chunks ended normally (before its last event is written). */
function keptAtEnd(answer: InvokeAnswer, keepIt: () => Promise<void>): InvokeAnswer {
  if (!isStream(answer)) return answer;
  const source = answer.chunks;
  const chunks: AsyncIterable<HubChunk> = {
    async *[Symbol.asyncIterator]() {
      yield* source;
      await keepIt();
    },
  };
  return { ...answer, chunks };
}

function logAnswer(scope: RequestScope, answer: InvokeAnswer): void {
  scope.annotate({
    model: answer.model,
    // A fallback served: the log line says what was asked for.
    ...(answer.requested_model === undefined ? {} : { requested_model: answer.requested_model }),
    key_alias: answer.key_alias,
    attempts: answer.attempts,
    waited_ms: answer.waited_ms,
    ...(isStream(answer) ? {} : {
      prompt_tokens: answer.usage.prompt_tokens,
      completion_tokens: answer.usage.completion_tokens,
      replayed: answer.replayed === true,
    }),
  });
}

/**
 * What happened to the request, on every route's answer (a whole answer and a stream alike): whether
 * it is a replay of a stored answer (x-eve-replayed), the model and provider that served, and the
 * calls made to providers (x-eve-attempts: 0 for a replay).
 */
export function servedHeaders(answer: InvokeAnswer): Record<string, string> {
  const replayed = !isStream(answer) && answer.replayed === true;
  return {
    "x-eve-replayed": String(replayed),
    "x-eve-model": answer.model,
    ...(answer.provider === undefined ? {} : { "x-eve-provider": answer.provider }),
    "x-eve-attempts": String(replayed ? 0 : answer.attempts),
  };
}

/** A 404 that names the routes, in its message too (the other APIs' error shapes keep only the message). */
function notFound(message: string): GatewayError {
  return new GatewayError("not_found", `${message} Routes: ${ROUTES.join("; ")}.`, { details: { routes: ROUTES } });
}
