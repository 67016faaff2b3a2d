// What llm-invoke answers when it cannot serve a request: the database's refusals (quota, token,
// idempotency) and the end of the attempts, each turned into the caller's error once, here.
import { GatewayError, rateLimited } from "../../_shared/errors.ts";
import type { QuotaCause } from "../../_shared/vocabulary.ts";
import type { FallbackStep, Refusal, TokenStatus } from "../contract.ts";
import {
  admissionCauseWords,
  isOneOf,
  MONEY_CAUSES,
  MONEY_REST_MS,
  quotaCauseWords,
  type RateLimit,
  TOKEN_LIMITS,
  type TokenLimit,
  WAITABLE_LIMITS,
} from "../../_shared/vocabulary.ts";
import { unknownModel } from "../model/model-chain.ts";
import { type UpstreamError, whoAnswered } from "../../_shared/upstream/port.ts";
import type { KeyRefusal } from "../../_shared/providers/key-reader.ts";

/**
 * Refusals that may be waited on: a minute window, a day, a cooldown or the pace of a day frees them
 * (the wait itself follows the queue's ticket: a refusal without one is answered at once).
 */
export type WaitableLimit = (typeof WAITABLE_LIMITS)[number];

export function isWaitable(limit: Refusal["limit"]): limit is WaitableLimit {
  return isOneOf(WAITABLE_LIMITS, limit);
}

/** What a refusal says of a provider's cause after "Cause: " (the serving provider's Upstream.causeWords). */
export type CauseWords = (cause: QuotaCause) => string;

export interface RefusalContext {
  model: string;
  /**
   * The words of the provider serving a model the refusal names (null: the request's own model) for
   * a provider's cause; absent: the gateway's own (vocabulary.ts).
   */
  causeWords?: (model: string | null) => CauseWords;
  requestId: string;
  estimatedTokens: number;
  /** The provider's exact count of the input, when it was asked (exact-count.ts). */
  countedTokens?: number | null;
  /** Who counted them (the provider's name). */
  countedBy?: string | null;
  /** Output tokens booked on top of the input (OpenAI's max_tokens); 0/absent where TPM counts input only. */
  bookedOutputTokens?: number;
  /** Of the input, the tokens its images count. */
  imageTokens?: number;
}

/**
 * The answer to a refusal that no waiting can change (a token's, an unknown model, an input too large
 * for the model, the same request in progress); null for the others, which the admission handles
 * (waitable limits, no active key, a stored answer to replay).
 */
export function finalRefusal(r: Refusal, ctx: RefusalContext): GatewayError | null {
  const error = finalError(r, ctx);
  return error === null ? null : withRefusalCause(error, r.refusalCause ?? r.limit);
}

function finalError(r: Refusal, ctx: RefusalContext): GatewayError | null {
  if (isBudgetLimit(r.limit)) return budgetRefusal({ ...r, limit: r.limit });
  if (isTokenLimit(r.limit)) return tokenRefusal(r.limit, ctx.model);
  switch (r.limit) {
    case "in_progress":
      return inProgress(ctx.requestId, r.retryAfterMs, r.retryAt);
    case "unknown_model":
      return unknownModel(ctx.model);
    case "withdrawn":
      return modelWithdrawn(r.model ?? ctx.model, r.successor ?? null);
    case "too_large":
      if (r.requests !== undefined) {
        return r.requests.per === "minute" ? tooManyForTheMinute(r.requests, ctx) : tooManyForTheDay(r.requests, r, ctx);
      }
      return r.maxOutputTokens == null
        ? tooLarge(r.maxTokens ?? null, ctx)
        : tooLargeForBuckets(r.maxTokens ?? null, r.maxOutputTokens, ctx);
    // The admission's to answer: waiting or another model may lift these, or a stored answer is replayed.
    case "rpm":
    case "tpm":
    case "rpd":
    case "cooldown":
    case "pace":
    case "no_active_key":
    case "duplicate":
      return null;
    default:
      // A limit added to the vocabulary is a compile error here until its answer is chosen.
      return r.limit satisfies never;
  }
}

/**
 * The 429 of a refusal that waiting did not (or may not) lift. For a chain of models it says which
 * model's capacity comes back first (the one `limit` and `retry_after_ms` are about) and, in
 * `fallback_from`, why each model of the chain refused.
 */
export function quotaRefusal(
  r: Pick<Refusal, "limit" | "retryAfterMs" | "model" | "fallbackFrom" | "cause" | "refusalCause">,
  words: CauseWords = quotaCauseWords,
): GatewayError {
  // A cooldown's cause is the provider's when it is known (finer than upstream_cooldown); else the database's.
  const limited = rateLimited(r.limit, r.retryAfterMs);
  const error = r.cause ? withCause(limited, r.cause, words) : withRefusalCause(limited, r.refusalCause ?? null);
  if (r.fallbackFrom === undefined || r.fallbackFrom.length === 0) return error;
  const retry = r.retryAfterMs === null ? "" : `; retry in ${r.retryAfterMs} ms`;
  // The first-back model's provider cause, in its words (money names what its owner must do).
  const why = r.cause ? ` Cause: ${words(r.cause)}` : "";
  return new GatewayError(
    "rate_limited",
    `No model of the chain has capacity now (first back: ${r.model ?? "?"}, limit: ${r.limit})${retry}.${why}`,
    {
      extra: { ...error.extra, model: r.model ?? null, fallback_from: fallbackSteps(r.fallbackFrom) },
      headers: error.headers,
    },
  );
}

/**
 * A refusal that comes from a cooldown (or a provider's 429) names its cause in the body (`cause`, every
 * surface: the native body and OpenAI's error object carry `extra`, Google's ErrorInfo its metadata),
 * and in the message in the serving provider's words (`words`: money is said as that provider says it,
 * naming it and what its owner must do).
 */
export function withCause(
  error: GatewayError,
  cause: QuotaCause | null,
  words: CauseWords = quotaCauseWords,
): GatewayError {
  if (cause === null) return error;
  const why = words(cause);
  return new GatewayError(error.code, `${error.message} Cause: ${why}`, {
    extra: { ...error.extra, cause },
    headers: error.headers,
    ...(error.details === undefined ? {} : { details: error.details }),
  });
}

/** The chain's steps as the caller reads them (snake_case, like the rest of the answer). */
export function fallbackSteps(
  steps: readonly FallbackStep[],
): Array<{ model: string; limit: string; cause: string | null; retry_after_ms: number | null }> {
  return steps.map((s) => ({ model: s.model, limit: s.limit, cause: s.cause, retry_after_ms: s.retryAfterMs }));
}

/**
 * The database's cause of a refusal in the body (`cause`, every surface, like a provider's cause) and,
 * for an admission cause, in the message; the request's own reasons are their limit and say why already.
 */
export function withRefusalCause(error: GatewayError, cause: string | null): GatewayError {
  if (cause === null || error.extra?.cause !== undefined) return error;
  const why = admissionCauseWords(cause);
  return new GatewayError(error.code, why === null ? error.message : `${error.message} Cause: ${why}`, {
    extra: { ...error.extra, cause },
    headers: error.headers,
    ...(error.details === undefined ? {} : { details: error.details }),
  });
}

/**
 * The request books more than one minute of the model's tokens (`tpm`). Names what is too large, as
 * OpenAI's `param` names a field (details.field): `max_tokens` when the input fits and the output
 * booked on top of it (OpenAI's models) does not, `image_url` when the text alone would fit, else the
 * input (`messages`), by the provider's count when it was asked.
 */
function tooLarge(tpm: number | null, ctx: RefusalContext): GatewayError {
  const limit = `this model's per-minute token limit${tpm === null ? "" : ` (${tpm})`}`;
  const counted = ctx.countedTokens ?? null;
  const input = counted ?? ctx.estimatedTokens;
  const output = ctx.bookedOutputTokens ?? 0;
  const images = ctx.imageTokens ?? 0;
  const figures = {
    estimated_tokens: ctx.estimatedTokens,
    ...(counted === null ? {} : { counted_tokens: counted }),
    ...(output === 0 ? {} : { booked_output_tokens: output }),
    ...(images === 0 ? {} : { image_tokens: images }),
    tpm_limit: tpm,
  };
  if (output > 0 && tpm !== null && input < tpm) {
    return new GatewayError(
      "invalid_request",
      `The request books ${input + output} tokens (the input, ${input}, plus ${output} asked for the answer), ` +
        `more than ${limit}. Ask for at most ${tpm - input} output tokens (max_tokens).`,
      { details: { field: "max_tokens", ...figures } },
    );
  }
  const size = counted === null
    ? `The input is estimated at ${ctx.estimatedTokens} tokens`
    : `${ctx.countedBy ?? "The provider"} counts the input at ${counted} tokens`;
  if (images > 0 && tpm !== null && input - images < tpm) {
    return new GatewayError(
      "invalid_request",
      `${size}, ${images} of them for its images, more than ${limit}. Send fewer or smaller images.`,
      { details: { field: "image_url", ...figures } },
    );
  }
  return new GatewayError("invalid_request", `${size}, more than ${limit}. Shorten it or split it.`, {
    details: { field: "messages", ...figures },
  });
}

/**
 * A batch of more requests at its provider than the model's minute holds: it can never be sent whole,
 * so the request is invalid as it is (400), the limit and the count named.
 */
function tooManyForTheMinute(requests: NonNullable<Refusal["requests"]>, ctx: RefusalContext): GatewayError {
  return new GatewayError(
    "invalid_request",
    `${requests.count} inputs are ${requests.count} requests at ${ctx.model}'s provider, booked together, and ` +
      `${ctx.model} takes ${requests.max} requests a minute: send at most ${requests.max} inputs in one request.`,
    { details: { field: "input", inputs: requests.count, max_inputs: requests.max, per: requests.per } },
  );
}

/**
 * A batch of more requests at its provider than any key's group has left of its day: the day's turn
 * lifts it, so it is the 429 a single request's day refusal is (limit rpd, Retry-After at the turn the
 * database names), the room left and the count named. Not a field's fault: no `field` in its details.
 */
function tooManyForTheDay(
  requests: NonNullable<Refusal["requests"]>,
  r: Pick<Refusal, "retryAfterMs" | "retryAt">,
  ctx: RefusalContext,
): GatewayError {
  const turn = r.retryAt ?? "its midnight";
  const room = requests.max === 0
    ? `${ctx.model} has no requests left of its provider's day: the day has no room until its turn (${turn}); ` +
      "send them then."
    : `${ctx.model} has ${requests.max} requests left of its provider's day (until ${turn}): send at most ` +
      `${requests.max} inputs in one request, or all ${requests.count} after the day turns.`;
  const limited = rateLimited(
    "rpd",
    r.retryAfterMs,
    `${requests.count} inputs are ${requests.count} requests at ${ctx.model}'s provider, booked together, and ${room}`,
  );
  return new GatewayError(limited.code, limited.message, {
    extra: limited.extra,
    headers: limited.headers,
    details: {
      inputs: requests.count,
      max_inputs: requests.max,
      per: requests.per,
      ...(r.retryAt === null ? {} : { retry_at: r.retryAt }),
    },
  });
}

/**
 * The request's input is more than one minute of the model's input tokens (`itpm`), or its answer
 * (max_tokens) more than one minute of its output tokens (`otpm`): the model counts them apart
 * (Anthropic's), so the answer is blamed on its own.
 */
function tooLargeForBuckets(itpm: number | null, otpm: number, ctx: RefusalContext): GatewayError {
  const counted = ctx.countedTokens ?? null;
  const output = ctx.bookedOutputTokens ?? 0;
  const figures = {
    estimated_tokens: ctx.estimatedTokens,
    ...(counted === null ? {} : { counted_tokens: counted }),
    ...(output === 0 ? {} : { booked_output_tokens: output }),
    itpm_limit: itpm,
    otpm_limit: otpm,
  };
  if (output > otpm) {
    return new GatewayError(
      "invalid_request",
      `The request asks for ${output} output tokens, more than this model's per-minute output token limit ` +
        `(${otpm}). Ask for at most ${otpm} (max_tokens).`,
      { details: { field: "max_tokens", ...figures } },
    );
  }
  const size = counted === null
    ? `The input is estimated at ${ctx.estimatedTokens} tokens`
    : `${ctx.countedBy ?? "The provider"} counts the input at ${counted} tokens`;
  const limit = `this model's per-minute input token limit${itpm === null ? "" : ` (${itpm})`}`;
  return new GatewayError("invalid_request", `${size}, more than ${limit}. Shorten it or split it.`, {
    details: { field: "messages", ...figures },
  });
}

function isTokenLimit(limit: Refusal["limit"]): limit is TokenLimit {
  return isOneOf(TOKEN_LIMITS, limit);
}

export function modelNotAllowed(model: string): GatewayError {
  return new GatewayError("model_not_allowed", `This token may not use model ${model}.`, { details: { model } });
}

/** A scoped token's own refusal (its state or its models): never waited on. */
export function tokenRefusal(
  limit: Exclude<TokenLimit, "token_budget" | "client_budget">,
  model: string,
): GatewayError {
  switch (limit) {
    case "token_invalid":
    case "token_expired":
    case "token_revoked":
      return tokenStatusError(limit);
    case "model_not_allowed":
      return modelNotAllowed(model);
  }
}

type BudgetLimit = "token_budget" | "client_budget" | "caller_budget";

function isBudgetLimit(limit: Refusal["limit"]): limit is BudgetLimit {
  return limit === "token_budget" || limit === "client_budget" || limit === "caller_budget";
}

const BUDGET_OWNER = {
  token_budget: "The token's",
  client_budget: "The client's",
  caller_budget: "This service caller's",
} as const;

const BUDGET_PERIOD_WORDS = {
  life: " for its whole life",
  day: " for the Pacific day",
  month: " for the Pacific month",
} as const;

/**
 * A budget's refusal, naming the one budget that refused: whose (limit), of what (the cause: money, or
 * requests and tokens) and its period (`period`: a token's life, a client's or service caller's Pacific
 * day or month), and when it reopens (`retry_at`; a token's never does: get a new one).
 */
export function budgetRefusal(
  r: Pick<Refusal, "retryAfterMs" | "retryAt" | "refusalCause" | "period"> & { limit: BudgetLimit },
): GatewayError {
  const kind = r.refusalCause === "spend_budget" ? "budget in money" : "budget of requests and tokens";
  const period = r.period == null ? "" : BUDGET_PERIOD_WORDS[r.period];
  const reopens = r.limit === "token_budget"
    ? ": get a new token from issue-kaggle-token."
    : r.retryAfterMs === null
    ? "."
    : `; it reopens at ${r.retryAt ?? "Pacific midnight"} (in ${r.retryAfterMs} ms).`;
  const error = rateLimited(r.limit, r.limit === "token_budget" ? null : r.retryAfterMs,
    `${BUDGET_OWNER[r.limit]} ${kind}${period} is used up${reopens}`);
  return new GatewayError(error.code, error.message, {
    extra: { ...error.extra, retry_at: r.limit === "token_budget" ? null : r.retryAt, period: r.period ?? null },
    headers: error.headers,
  });
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
    {
      extra: { retry_after_ms: waitMs, retry_at: retryAt },
      headers: { "Retry-After": String(Math.ceil(waitMs / 1000)) },
    },
  );
}

/** The model's provider no longer serves it and the request has no other model left to try. */
export function modelWithdrawn(model: string, successor: string | null): GatewayError {
  const instead = successor === null
    ? "name another model, or give the request fallback_models."
    : `Its successor is ${successor}: name it, or give the request fallback_models.`;
  return new GatewayError(
    "model_withdrawn",
    `Model ${model} is withdrawn: its provider no longer serves it. ${instead}`,
    { details: { model, successor } },
  );
}

export function noActiveKey(): GatewayError {
  return new GatewayError("unavailable", "No active key of the model's provider serves this model.");
}

export function cancelled(): GatewayError {
  return new GatewayError("upstream_timeout", "The request was cancelled.");
}

/** Why no key could be read, in the caller's words: none names a secret (key-reader.ts's KeyRefusal). */
const UNREAD_KEY: Record<KeyRefusal | "no_row", string> = {
  overlap: "a key's secret name is taken by two providers' key-secret patterns, so it is read for neither; " +
    "the operator has to narrow one of them.",
  outside: "a key row names a secret outside its provider's key-secret pattern.",
  never: "a key row names a secret that is never read as a provider's key.",
  no_pattern: "the provider's key-secret pattern is not a regular expression.",
  unset: "a key's secret is not configured.",
  no_row: "the model's provider row cannot be used (the gateway's log says why).",
};

/**
 * The answer after the last attempt failed (null: no attempt reached the provider). `withdrawn`: the
 * model the request found withdrawn, with its successor, for when that was the last call it had.
 * `unreadKey`: why the last key that could not be used was not.
 */
export function exhausted(
  error: UpstreamError | null,
  withdrawn: { model: string; successor: string | null } | null = null,
  unreadKey: KeyRefusal | "no_row" | null = null,
  words: CauseWords = quotaCauseWords,
): GatewayError {
  if (error === null) {
    return new GatewayError(
      "unavailable",
      `No key of the model's provider could be used: ${UNREAD_KEY[unreadKey ?? "unset"]}`,
    );
  }
  const provider = whoAnswered(error);
  switch (error.class) {
    case "rate_limited": {
      // Money names no wait: the group rests an hour (attempt-record.ts), when the provider is asked again.
      const money = error.quotaCause !== null && isOneOf(MONEY_CAUSES, error.quotaCause);
      const wait = error.retryAfterMs ?? (money ? MONEY_REST_MS : null);
      return withCause(rateLimited(limitOfQuota(error), wait), error.quotaCause, words);
    }
    case "invalid_key":
      return new GatewayError(
        "upstream_error",
        `${provider} refused the gateway's keys; the operator has to check them.`,
      );
    case "client_error":
      return rejectedByProvider(error);
    case "model_withdrawn":
      if (withdrawn !== null) return modelWithdrawn(withdrawn.model, withdrawn.successor);
      return new GatewayError("model_withdrawn", `${provider} no longer serves the model: ${error.message}`, {
        details: { upstream_status: error.httpStatus },
      });
    default:
      return error.kind === "timeout"
        ? new GatewayError("upstream_timeout", `${provider} did not answer in time.`)
        : new GatewayError("upstream_error", `${provider} failed: ${error.message}`, {
          details: { upstream_status: error.httpStatus },
        });
  }
}

/** The model's provider refused the request itself (a 4xx other than 429): not retried. */
export function rejectedByProvider(error: UpstreamError): GatewayError {
  return new GatewayError("upstream_rejected", `${whoAnswered(error)} rejected the request: ${error.message}`, {
    details: { upstream_status: error.httpStatus, upstream_code: error.status },
  });
}

/**
 * The limit a provider's 429 names, in the reservation RPC's vocabulary, read from its cause (one truth):
 * a per-day or per-minute quota is rpd, tpm or rpm; a limit: 0, a spend cap or an unplaced 429 is
 * `upstream` (its `cause` says which), whatever quota id the provider sent beside it.
 */
export function limitOfQuota(error: UpstreamError): RateLimit {
  if (error.quotaCause === "day") return "rpd";
  if (error.quotaCause !== "minute") return "upstream";
  const id = error.quotaId ?? "";
  if (/token/i.test(id)) return "tpm";
  if (/request/i.test(id)) return "rpm";
  return "upstream";
}

/** The answer to a token that can never be admitted. */
export function tokenStatusError(status: Exclude<TokenStatus, "ok">): GatewayError {
  switch (status) {
    case "token_invalid":
      return new GatewayError("token_invalid", "Unknown token: get one from issue-kaggle-token.");
    case "token_expired":
      return new GatewayError("token_expired", "The token has expired: get a new one from issue-kaggle-token.");
    case "token_revoked":
      return new GatewayError("token_revoked", "The token or its client has been revoked.");
  }
}
