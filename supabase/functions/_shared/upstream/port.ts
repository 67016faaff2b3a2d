// The provider port: what the gateway asks of a provider and what it gets back, in the gateway's own
// words. Each provider (../providers/<dialect>/) implements it once and registers in
// ../providers/registry.ts; the attempt loop, the token count and maintenance speak only this.
// Nothing here knows a provider: the request and the answer are the hub's (hub.ts), each provider's
// own beside them where a route of its dialect gives or takes it (pass-through); a failure is one
// classified shape whatever its dialect (the provider's classifier reads its own answers into it).
import { sanitize } from "../sanitize.ts";
import type { MoneyCause, QuotaCause } from "../vocabulary.ts";
import type { DialectAnswer, HubAnswer, HubChunk, HubEmbedding, HubEmbedRequest, HubRequest } from "./hub.ts";

// ---- A failed call, classified by what the gateway does next ------------------------------------------

export type UpstreamErrorClass =
  /** 429: cool the quota group down until retryAfterMs (or the provider's midnight if perDay) and try another key. */
  | "rate_limited"
  /** 5xx, network error, timeout, malformed answer: retry with backoff, preferably on another key. */
  | "retryable"
  /** The key itself is refused (invalid, expired, blocked, API disabled): take it out, try another. */
  | "invalid_key"
  /** Any other 4xx: the request is at fault; never retried, reported to the caller. */
  | "client_error"
  /**
   * The provider's own answer that it does not serve the model called (its dialect says how it tells
   * that, never its words). The attempt loop confirms it with a model look-up on the same key (the
   * same kind of answer) before the model is marked withdrawn.
   */
  | "model_withdrawn";

export type UpstreamFailureKind = "http" | "network" | "timeout" | "malformed" | "aborted";

export interface UpstreamError {
  class: UpstreamErrorClass;
  kind: UpstreamFailureKind;
  httpStatus: number | null;
  /** The provider's status word for the error (Google's RESOURCE_EXHAUSTED, OpenAI's `type`). */
  status: string | null;
  /** The provider's finer reason (Google's ErrorInfo.reason, OpenAI's `code`). */
  reason: string | null;
  /** The quota that decides the cooldown: a per-day one if any, else the first. */
  quotaId: string | null;
  quotaIds: string[];
  /** Wait the provider asked for, rounded up to whole ms; null when it named none. */
  retryAfterMs: number | null;
  /**
   * The 429's cause is `day` (quotaCause): the group is out until the provider's midnight (its row's
   * day_zone). Derived from the cause, never read apart from it.
   */
  perDay: boolean;
  /** For a 429: why the provider refused; null for every other answer. */
  quotaCause: QuotaCause | null;
  /** For a spend cap: the rolling window the provider names; null otherwise. */
  spendWindowMs: number | null;
  /** Sanitized, length-capped message for logs and callers. */
  message: string;
  /** Who answered, for the caller's message (the provider's display name); absent: not known. */
  upstream?: string;
  /** What the failed answer's rate-limit headers say is left of the group's limits, where the provider says so. */
  room?: ProviderRoom | null;
  /**
   * The limits a failed answer states without a room (Google's 429: its QuotaFailure's quotaValue);
   * absent: none stated, or stated in `room.limits`.
   */
  stated?: StatedLimits | null;
  /** For model_withdrawn: the model the provider's answer names instead, as its dialect reads it; null: none. */
  successor?: string | null;
  /**
   * For retryable: the provider says the model is overloaded (its load, not the group's quota, as its
   * dialect tells by structure): the chain's next model is tried before this one again, with no cooldown.
   */
  overloaded?: boolean;
}

/** A failure without a usable HTTP answer: network error, our timeout, a caller abort, bad JSON. */
export function upstreamFailure(
  kind: Exclude<UpstreamFailureKind, "http">,
  message: string,
  options: { secrets?: readonly string[]; httpStatus?: number } = {},
): UpstreamError {
  return {
    class: "retryable",
    kind,
    httpStatus: options.httpStatus ?? null,
    status: null,
    reason: null,
    quotaId: null,
    quotaIds: [],
    retryAfterMs: null,
    perDay: false,
    quotaCause: null,
    spendWindowMs: null,
    message: sanitize(message, { secrets: options.secrets, maxLength: 500 }),
  };
}

/** Who answered an error, in a caller's message: the provider's display name, else "the provider". */
export function whoAnswered(error: Pick<UpstreamError, "upstream">): string {
  return error.upstream ?? "the provider";
}

// ---- Generation ----------------------------------------------------------------------------------------

export interface GenerateCall {
  apiKey: string;
  request: HubRequest;
  /** Deadline of this attempt (a stream: until the provider's headers); on expiry the outcome is a `timeout` failure. */
  timeoutMs: number;
  /** A stream's deadline for all of it, counted from the call (default: timeoutMs). */
  streamTimeoutMs?: number;
  /** Caller-side cancellation (e.g. the caller went away); gives an `aborted` failure. */
  signal?: AbortSignal;
}

/**
 * What a provider's answer says is left of its limits for the key's group, counting every user of it:
 * requests and tokens left (null: not said), and in how many ms its counts are full again.
 */
export interface ProviderRoom {
  requests: number | null;
  tokens: number | null;
  resetMs: number;
  /**
   * A provider whose limits are buckets (Anthropic): ms until its request bucket holds one more request,
   * and until its token buckets hold the next request's tokens (0: now). Set, it is the whole rest they
   * imply: the provider counted every call as it arrived, and the gateway's own buckets pace the ones
   * after. Absent: a sliding window (OpenAI's), read as above.
   */
  next?: { requestsMs: number; tokensMs: number };
  /** The group's limits as the same answer states them (absent: it states none). */
  limits?: StatedLimits;
}

/**
 * A group's limits as a provider's answer states them, each mapped to the model row's column it
 * matches (requests a minute, tokens a minute, requests a day, input and output tokens a minute);
 * absent: not stated. OpenAI's and Anthropic's every answer states them; Google's only a 429.
 */
export interface StatedLimits {
  rpm?: number;
  tpm?: number;
  rpd?: number;
  itpm?: number;
  otpm?: number;
}

/** The stated limits' columns, in the order the database takes them (the outcome's stated_limits, google_ai_attempt_outcome). */
export const STATED_LIMIT_COLUMNS = ["rpm", "tpm", "rpd", "itpm", "otpm"] as const;

/** Stated limits with at least one figure, else undefined (nothing stated). */
export function someStated(limits: StatedLimits): StatedLimits | undefined {
  return STATED_LIMIT_COLUMNS.some((c) => limits[c] !== undefined) ? limits : undefined;
}

export type GenerateOutcome =
  | {
    ok: true;
    /** The answer in the hub's words (its usage null when the provider sent none: the caller keeps its estimate). */
    answer: HubAnswer;
    latencyMs: number;
    /** The tier the provider says served; null: not said. */
    servedTier?: string | null;
    /** The provider's own answer as it came (a route of its dialect returns it). */
    dialectAnswer?: DialectAnswer;
    /** What the provider says is left of the group's limits, where it says so. */
    room?: ProviderRoom | null;
  }
  | { ok: false; error: UpstreamError; latencyMs: number };

export type StreamOutcome =
  | {
    ok: true;
    /**
     * The answer's chunks as they arrive (each in the hub's words, and as the provider sent it). Ends after the last one, or throws StreamCut when the stream
     * breaks off (network, deadline, an error event, a chunk that is not JSON). Stopping early
     * (`return()`) aborts the call.
     */
    chunks: AsyncGenerator<HubChunk, void, undefined>;
    /** Time to the provider's response headers. */
    latencyMs: number;
    /** The tier the provider says served; null: not said. */
    servedTier?: string | null;
    /** What the provider says is left of the group's limits, where it says so. */
    room?: ProviderRoom | null;
    /**
     * The provider's own whole answer, folded from its chunks so far: a stored streamed answer is
     * replayed from it on a route of its dialect.
     */
    dialectAnswer?: () => DialectAnswer;
  }
  | { ok: false; error: UpstreamError; latencyMs: number };

/**
 * A whole answer as a stream of one chunk, a failure as the stream's failure: the `stream` of a wire
 * format that has none (`stream: async (call) => wholeAnswerAsStream(await generate(call))`).
 */
export function wholeAnswerAsStream(outcome: GenerateOutcome): StreamOutcome {
  if (!outcome.ok) return outcome;
  const { answer, dialectAnswer: own } = outcome;
  async function* chunks(): AsyncGenerator<HubChunk, void, undefined> {
    yield own === undefined ? { answer } : { answer, own };
  }
  return {
    ok: true,
    chunks: chunks(),
    latencyMs: outcome.latencyMs,
    servedTier: outcome.servedTier ?? null,
    room: outcome.room ?? null,
    ...(own === undefined ? {} : { dialectAnswer: () => own }),
  };
}

/** A stream that broke off after it started: what went wrong, classified like any failed call. */
export class StreamCut extends Error {
  constructor(readonly error: UpstreamError) {
    super(error.message);
    this.name = "StreamCut";
  }
}

// ---- Embedding -------------------------------------------------------------------------------------------

/** One embedding call: its own request, no stream. */
export interface EmbedCall {
  apiKey: string;
  request: HubEmbedRequest;
  /** Deadline of this attempt; on expiry the outcome is a `timeout` failure. */
  timeoutMs: number;
  /** Caller-side cancellation; gives an `aborted` failure. */
  signal?: AbortSignal;
}

export type EmbedOutcome =
  | {
    ok: true;
    /** The vectors, one per input in order, and the provider's count where it sent one. */
    answer: HubEmbedding;
    latencyMs: number;
    /** What the provider says is left of the group's limits, where it says so. */
    room?: ProviderRoom | null;
  }
  | { ok: false; error: UpstreamError; latencyMs: number };

export type CountTokensOutcome =
  | { ok: true; totalTokens: number; latencyMs: number }
  | { ok: false; error: UpstreamError; latencyMs: number };

// ---- Models ---------------------------------------------------------------------------------------------

/** A call about one model (a model look-up): whether a key sees it. */
export interface ModelCall {
  apiKey: string;
  model: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type ModelOutcome =
  | { ok: true; latencyMs: number }
  | { ok: false; error: UpstreamError; latencyMs: number };

/** One model as the catalogue stores it (google_ai_record_key_check's p_models). */
export interface CatalogueModel {
  /** The provider's id of the model, e.g. gemma-3-27b-it. */
  model: string;
  display_name: string | null;
  version: string | null;
  input_token_limit: number | null;
  output_token_limit: number | null;
  supported_methods: string[];
}

export type ListOutcome =
  | { ok: true; models: CatalogueModel[]; latencyMs: number }
  | { ok: false; error: UpstreamError; latencyMs: number };

/** Lists the models one key sees (maintenance's key check); never throws for a failed call. */
export interface ModelLister {
  list(apiKey: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<ListOutcome>;
}

/** Deadline of one key's listing, all pages included. */
export const DEFAULT_LIST_TIMEOUT_MS = 15_000;

// ---- The client --------------------------------------------------------------------------------------

/** One provider's client. No call throws for a failed call: each returns a classified error. */
export interface UpstreamClient {
  generate(call: GenerateCall): Promise<GenerateOutcome>;
  /** Resolves when the provider's headers arrive; its chunks follow. */
  stream(call: GenerateCall): Promise<StreamOutcome>;
  /**
   * The provider's exact count of the input tokens `call.request` would be billed for, where the
   * provider offers one (free of its generation quota); absent: the estimate stands.
   */
  countTokens?(call: GenerateCall): Promise<CountTokensOutcome>;
  /** Whether a key sees a model: ok when it does; the provider's not-served answer is model_withdrawn. */
  getModel(call: ModelCall): Promise<ModelOutcome>;
  /** Embeds `call.request`'s inputs, where the provider has embedding models; absent: none. */
  embed?(call: EmbedCall): Promise<EmbedOutcome>;
  /**
   * The body a whole call of `request` sends (the model in it, where the path names it): what the
   * response cache keys on (llm-invoke/cache/key.ts). Throws where the request cannot be sent.
   */
  wireBody?(request: HubRequest): unknown;
}

// ---- A provider, as the registry holds it ------------------------------------------------------------

/** A google_ai_providers row, as google_ai_provider_list() answers it. */
export interface ProviderRow {
  name: string;
  dialect: string;
  /** The provider's name in every message and log line (metric labels keep `name`). */
  display_name: string;
  /** Null: the dialect's own row, reached at its variable's URL, else its default. */
  base_url: string | null;
  /** Null: GATEWAY_<NAME>_KEY_ENV_PATTERN, else the dialect's pattern. */
  key_env_pattern: string | null;
  /** The IANA zone the provider's day turns in (its per-day quotas, its spend per day). */
  day_zone: string;
  /**
   * It serves OpenAI's Responses API as OpenAI does: the Responses route's body goes to it as it came.
   * False: that body is translated through the hub (chat completions), OpenAI's own fields refused.
   */
  has_responses_api: boolean;
}

/** A provider row as its dialect is given it: the row whole, and where it is reached (checked: registry's baseUrlOf). */
export interface ReachedProvider {
  row: ProviderRow;
  baseUrl: string;
}

/** What the registry (../providers/registry.ts) knows of one dialect: how its providers are reached and spoken to. */
export interface ProviderModule {
  /** The display name of its own seeded row ("Google"); every provider's own is its row's. */
  displayName: string;
  /** The zone its own seeded row's day turns in (an IANA name); every provider's own is its row's. */
  dayZone: string;
  /**
   * Where its own provider row is reached unless `baseUrlVariable` says otherwise. None for a wire format
   * with no public endpoint: then every row of it carries its base_url (its own row too).
   */
  defaultBaseUrl?: string;
  /** The environment variable that points its own provider row at another server (a compatible one, a simulator). */
  baseUrlVariable: string;
  /** The secrets its own provider row's key rows may name by default (a regular expression the whole name must match). */
  keyEnvPattern: string;
  /**
   * What a refusal for money says after "Cause: ", in the provider's own words: what it calls the limit
   * and where its owner acts (`who`: the provider row's display name, which the words name). Every other
   * cause is said in the gateway's words (vocabulary.ts).
   */
  moneyWords: Record<MoneyCause, (who: string) => string>;
  /** The client of one provider row (its display name in every failure it returns). */
  createClient(provider: ReachedProvider): UpstreamClient;
  createLister(provider: ReachedProvider, options?: { timeoutMs?: number }): ModelLister;
}
