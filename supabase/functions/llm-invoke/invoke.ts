// The attempt loop of llm-invoke: estimate -> reserve -> call Google -> finalize, at most
// MAX_ATTEMPTS calls to Google, each preceded by a reservation. Talks to the database only through
// GatewayStore and to Google only through GoogleClient, so it is tested with in-memory fakes.
//
// Per Google outcome:
//   success        finalize(succeeded) and answer (off the response path when waitUntil exists;
//                  finalize.ts retries it until it lands or the budget ends)
//   429            finalize with a cooldown (RetryInfo, or Pacific midnight for a per-day quota),
//                  then the next attempt reserves again, which skips the cooled-down group
//   invalid key    finalize, exclude that key, next attempt at once
//   5xx/timeout/   finalize, exclude that key, back off, next attempt (falls back to the excluded
//   network        keys if no other key exists)
//   other 4xx      finalize, no retry: 400 upstream_rejected with Google's (sanitized) message
// A reservation that never reached Google (e.g. its key's secret is missing) is released.
//
// WAIT vs NO_WAIT: a refusal names when capacity reopens. NO_WAIT answers 429 at once. WAIT sleeps
// until then (+ jitter, so waiters do not stampede at :00), capped by max_wait_ms and the wall-clock
// budget, then reserves again; at the cap it answers like NO_WAIT. A reopening more than a minute
// away (a day quota, a long cooldown) is answered at once: no minute window can free it sooner.
import { estimateInputTokens } from "./tokens.ts";
import { adaptToModel, type GoogleRequest, type ModelCapabilities } from "./gemma.ts";
import type { ClassifiedGoogleError } from "../_shared/google/errors.ts";
import type { GenerateOutcome, GoogleClient } from "../_shared/google/client.ts";
import { GatewayError, rateLimited } from "../_shared/errors.ts";
import type { InvokeContext, InvokeResult } from "./context.ts";
import {
  type FinalizeOutcome,
  type FinalizeParams,
  type GatewayStore,
  type RefusalLimit,
  type Reservation,
  TOKEN_LIMITS,
  type TokenLimit,
} from "./store.ts";
import { sanitizeError } from "../_shared/sanitize.ts";
import { tokenStatusError } from "./token-check.ts";
import { finalizeReliably } from "./finalize.ts";

export const MAX_ATTEMPTS = 3;
/** Key rows skipped because their secret is missing, per request, before giving up. */
const MAX_UNUSABLE_KEYS = 10;

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface InvokeOptions {
  /** Deadline of one call to Google. */
  attemptTimeoutMs: number;
  /** Whole budget of one invocation (waiting + attempts), under the function's wall clock. */
  budgetMs: number;
  /** Cooldown after a 429 that names no wait. */
  defaultCooldownMs: number;
  /** First backoff after a retryable failure; doubles per attempt. */
  backoffBaseMs: number;
  /** Upper bound of the random delay added to a wait. */
  jitterMs: number;
  /** How long a model's capabilities are cached per worker. */
  capabilitiesTtlMs: number;
}

export const DEFAULT_INVOKE_OPTIONS: InvokeOptions = {
  attemptTimeoutMs: 45_000,
  budgetMs: 140_000, // Free plan wall clock is 150 s
  defaultCooldownMs: 30_000,
  backoffBaseMs: 250,
  jitterMs: 250,
  capabilitiesTtlMs: 30_000,
};

export interface InvokeDeps {
  store: GatewayStore;
  google: GoogleClient;
  /** Reads a Google key from the Edge secret store by the key row's env_var_name. */
  secret: (envVarName: string) => string | undefined;
  options?: Partial<InvokeOptions>;
  clock?: Clock;
  random?: () => number;
  /** EdgeRuntime.waitUntil where available: lets the success's finalize run after the response. */
  waitUntil?: (promise: Promise<unknown>) => void;
  logError?: (message: string) => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

export function createInvoke(deps: InvokeDeps): (ctx: InvokeContext) => Promise<InvokeResult> {
  const options = { ...DEFAULT_INVOKE_OPTIONS, ...deps.options };
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const logError = deps.logError ?? ((m: string) => console.error(`[llm-invoke] ${m}`));
  const capabilities = cachedCapabilities(deps.store, clock, options.capabilitiesTtlMs);

  return async ({ caller, request, requestId, signal }) => {
    const started = clock.now();
    const deadline = started + options.budgetMs;
    const jitter = () => Math.floor(random() * options.jitterMs);

    const caps = await capabilities(request.model);
    if (caps === null) throw unknownModel(request.model);
    const googleRequest: GoogleRequest = adaptToModel(caps, request);
    const estimatedTokens = estimateInputTokens({
      contents: googleRequest.contents,
      system: googleRequest.systemInstruction,
    });
    // Service callers name themselves (x-caller); for a token the database names the client.
    const callerName = caller.kind === "service" ? caller.label : `token:${caller.label}`;
    const tokenHash = caller.kind === "token" ? caller.tokenHash : undefined;

    let waitedMs = 0;
    // Keys that cannot work (refused key, missing secret) stay out; keys that failed transiently
    // are only avoided, and tried again when nothing else is left.
    const broken: string[] = [];
    let avoided: string[] = [];
    let lastError: ClassifiedGoogleError | null = null;
    let unusableKeys = 0;

    // The caller named the request (its own request_id): the database keeps an idempotency record.
    const idempotent = request.requestId !== undefined;
    let lastReservationId: string | null = null;

    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        if (attempt > 1 && clock.now() >= deadline) break;
        // Reserve, waiting for capacity in WAIT mode.
        let reservation: Reservation | null = null;
        for (;;) {
          const r = await deps.store.reserve({
            model: request.model,
            estimatedTokens,
            caller: callerName,
            ...(tokenHash === undefined ? {} : { tokenHash }),
            requestId,
            excludeKeyIds: [...broken, ...avoided],
            attempt,
            waitMs: waitedMs,
            metadata: request.metadata,
            // Checked (and marked in flight) until this invocation holds its first reservation;
            // later reservations belong to the same request.
            idempotent: idempotent && lastReservationId === null,
          });
          if (r.ok) {
            reservation = r;
            lastReservationId = r.reservationId;
            break;
          }
          // The caller's own request_id was served before: answer from the stored result, no call.
          if (r.limit === "duplicate") return { ...(r.response as InvokeResult), replayed: true };
          if (r.limit === "in_progress") throw inProgress(requestId, r.retryAfterMs, r.retryAt);
          if (isTokenLimit(r.limit)) throw tokenRefusal(r.limit, r.retryAfterMs, request.model);
          if (r.limit === "unknown_model") throw unknownModel(request.model);
          if (r.limit === "too_large") {
            throw new GatewayError(
              "invalid_request",
              `The input is estimated at ${estimatedTokens} tokens, more than this model's per-minute token limit` +
                (r.maxTokens == null ? "." : ` (${r.maxTokens}).`) + " Shorten it or split it.",
              { details: { estimated_tokens: estimatedTokens, max_tokens: r.maxTokens ?? null } },
            );
          }
          if (r.limit === "no_active_key") {
            if (avoided.length > 0) {
              avoided = [];
              continue;
            }
            throw broken.length > 0 ? exhausted(lastError) : new GatewayError(
              "unavailable",
              "No active Google key serves this model.",
            );
          }
          const remaining = Math.min(request.maxWaitMs - waitedMs, deadline - clock.now());
          const wait = r.retryAfterMs === null ? 1000 : r.retryAfterMs + jitter();
          const hopeless = r.retryAfterMs !== null && r.retryAfterMs > remaining && r.retryAfterMs > 60_000;
          if (request.mode === "NO_WAIT" || remaining <= 0 || hopeless) {
            throw rateLimited(r.limit, r.retryAfterMs);
          }
          const slept = Math.min(wait, remaining);
          try {
            await clock.sleep(slept, signal);
          } catch {
            throw rateLimited(r.limit, r.retryAfterMs); // the caller went away while waiting
          }
          waitedMs += slept;
        }

        const apiKey = deps.secret(reservation.envVarName);
        if (apiKey === undefined || apiKey === "") {
          logError(`secret ${reservation.envVarName} of key ${reservation.keyAlias} is not set`);
          await deps.store.release(reservation.reservationId, "key secret not set");
          broken.push(reservation.keyId);
          // Google was not called, so this does not use up an attempt; the reservation is made again
          // with the same attempt number (which keeps a token's request budget counted once).
          if (++unusableKeys <= MAX_UNUSABLE_KEYS) attempt--;
          continue;
        }

        const timeoutMs = Math.max(1, Math.min(options.attemptTimeoutMs, deadline - clock.now()));
        let outcome: GenerateOutcome;
        try {
          outcome = await deps.google.generate({ apiKey, request: googleRequest, timeoutMs, signal });
        } catch (error) {
          // The Google client does not throw for failed calls; if it does anyway, give the booking back.
          await deps.store.release(reservation.reservationId, sanitizeError(error, { secrets: [apiKey] }));
          throw error;
        }

        if (outcome.ok) {
          const usage = outcome.usage;
          const completion = usage === null ? null : usage.candidatesTokens + usage.thoughtsTokens;
          const promptTokens = usage?.promptTokens ?? estimatedTokens;
          const completionTokens = completion ?? 0;
          const result: InvokeResult = {
            text: outcome.text,
            model: reservation.model,
            key_alias: reservation.keyAlias,
            usage: {
              prompt_tokens: promptTokens,
              completion_tokens: completionTokens,
              total_tokens: usage?.totalTokens || promptTokens + completionTokens,
            },
            attempts: attempt,
            waited_ms: waitedMs,
            finish_reason: outcome.finishReason,
            ...(request.includeCandidates ? { candidates: outcome.candidates } : {}),
          };
          // Kept for replay only when the caller named the request (its own request_id).
          const finalize = finalizeReliably(deps.store, logError, {
            ...emptyFinalize(reservation.reservationId, "succeeded", outcome.latencyMs),
            inputTokens: usage?.promptTokens ?? null,
            outputTokens: completion,
            httpStatus: 200,
            response: idempotent ? result : null,
          }, { deadline, clock });
          if (deps.waitUntil !== undefined) deps.waitUntil(finalize);
          else await finalize;
          return result;
        }

        const error = outcome.error;
        lastError = error;
        const now = clock.now();
        // Awaited: the next reservation must see this attempt's cooldown.
        await finalizeReliably(deps.store, logError, {
          ...emptyFinalize(reservation.reservationId, finalizeOutcome(error), outcome.latencyMs),
          httpStatus: error.httpStatus,
          errorCode: error.reason ?? error.status ?? error.kind,
          quotaId: error.quotaId,
          errorMessage: error.message,
          cooldownUntil: error.class === "rate_limited" && !error.perDay
            ? new Date(now + (error.retryAfterMs ?? options.defaultCooldownMs))
            : null,
          cooldownUntilPacificMidnight: error.class === "rate_limited" && error.perDay,
          keyRejected: error.class === "invalid_key",
        }, { deadline, clock });

        if (error.class === "client_error") {
          throw new GatewayError("upstream_rejected", `Google rejected the request: ${error.message}`, {
            details: { upstream_status: error.httpStatus, upstream_code: error.status },
          });
        }
        if (error.kind === "aborted") throw cancelled();
        if (error.class === "invalid_key") broken.push(reservation.keyId);
        else avoided.push(reservation.keyId);
        if (error.class === "retryable" && attempt < MAX_ATTEMPTS) {
          const backoff = options.backoffBaseMs * 2 ** (attempt - 1) + jitter();
          if (clock.now() + backoff >= deadline) break;
          await clock.sleep(backoff, signal).catch(() => {
            throw cancelled();
          });
        }
      }

      throw exhausted(lastError);
    } catch (error) {
      // A named request that fails frees its id at once (a success stores the answer instead).
      if (idempotent && lastReservationId !== null) {
        const end = deps.store.endRequest(lastReservationId).catch((e) =>
          logError(`end of request ${requestId} failed: ${sanitizeError(e)}`)
        );
        if (deps.waitUntil !== undefined) deps.waitUntil(end);
        else await end;
      }
      throw error;
    }
  };
}

function finalizeOutcome(error: ClassifiedGoogleError): FinalizeOutcome {
  if (error.kind === "timeout") return "timeout";
  if (error.kind === "network" || error.kind === "aborted") return "network_error";
  return "google_error";
}

function emptyFinalize(reservationId: string, outcome: FinalizeOutcome, latencyMs: number): FinalizeParams {
  return {
    reservationId,
    outcome,
    inputTokens: null,
    outputTokens: null,
    httpStatus: null,
    errorCode: null,
    quotaId: null,
    errorMessage: null,
    latencyMs,
    cooldownUntil: null,
    cooldownUntilPacificMidnight: false,
    keyRejected: false,
    response: null,
  };
}

/** The answer after the last attempt failed (null: no attempt reached Google). */
function exhausted(error: ClassifiedGoogleError | null): GatewayError {
  if (error === null) {
    return new GatewayError("unavailable", "No Google key could be used: a key's secret is not configured.");
  }
  switch (error.class) {
    case "rate_limited":
      return rateLimited(limitOfQuota(error), error.retryAfterMs);
    case "invalid_key":
      return new GatewayError("upstream_error", "Google refused the gateway's keys; the operator has to check them.");
    default:
      return error.kind === "timeout"
        ? new GatewayError("upstream_timeout", "Google did not answer in time.")
        : new GatewayError("upstream_error", `Google failed: ${error.message}`, {
          details: { upstream_status: error.httpStatus },
        });
  }
}

/** The limit a Google 429 names, in the reservation RPC's vocabulary. */
export function limitOfQuota(error: ClassifiedGoogleError): string {
  if (error.perDay) return "rpd";
  const id = error.quotaId ?? "";
  if (/token/i.test(id)) return "tpm";
  if (/request/i.test(id)) return "rpm";
  return "upstream";
}

function isTokenLimit(limit: RefusalLimit): limit is TokenLimit {
  return (TOKEN_LIMITS as readonly string[]).includes(limit);
}

/** A scoped token's refusal: never waited on (no minute window frees it). */
export function tokenRefusal(limit: TokenLimit, retryAfterMs: number | null, model: string): GatewayError {
  switch (limit) {
    case "token_invalid":
    case "token_expired":
    case "token_revoked":
      return tokenStatusError(limit);
    case "model_not_allowed":
      return new GatewayError("model_not_allowed", `This token may not use model ${model}.`, { details: { model } });
    case "token_budget":
      return rateLimited(
        "token_budget",
        null,
        "The token's request or token budget is used up: get a new token from issue-kaggle-token.",
      );
    case "client_budget":
      return rateLimited(
        "client_budget",
        retryAfterMs,
        "The client's daily budget is used up until midnight Pacific time" +
          (retryAfterMs === null ? "." : `; retry in ${retryAfterMs} ms.`),
      );
  }
}

/**
 * The same request_id is being served: the first request holds it until it answers (then a retry
 * gets its stored answer) or, if it died, until its claim runs out. Retry-After names that real
 * end of the claim, the latest moment the id is free again.
 */
function inProgress(requestId: string, retryAfterMs: number | null, retryAt: string | null): GatewayError {
  const waitMs = Math.max(1000, retryAfterMs ?? 1000);
  return new GatewayError(
    "request_in_progress",
    `A request with request_id ${requestId} is being served right now; retry it when it is done to get its ` +
      `answer (at the latest in ${Math.ceil(waitMs / 1000)} s, when its claim runs out).`,
    { extra: { retry_after_ms: waitMs, retry_at: retryAt }, headers: { "Retry-After": String(Math.ceil(waitMs / 1000)) } },
  );
}

function cancelled(): GatewayError {
  return new GatewayError("upstream_timeout", "The request was cancelled.");
}

function unknownModel(model: string): GatewayError {
  return new GatewayError("unknown_model", `Unknown model ${model}: use a model listed in google_ai_model_limits.`);
}

/**
 * Per-worker cache of model rows: they change rarely and cost a round trip. Unknown names are not
 * cached (a caller could fill the cache with them) and the cache is bounded.
 */
function cachedCapabilities(store: GatewayStore, clock: Clock, ttlMs: number) {
  const cache = new Map<string, { at: number; value: ModelCapabilities }>();
  return async (model: string): Promise<ModelCapabilities | null> => {
    const hit = cache.get(model);
    if (hit !== undefined && clock.now() - hit.at < ttlMs) return hit.value;
    const value = await store.modelCapabilities(model);
    if (value !== null) {
      if (cache.size >= 100) cache.clear();
      cache.set(model, { at: clock.now(), value });
    }
    return value;
  };
}
