// The vocabulary every stage of llm-invoke speaks, at the bottom of its layers (README.md): the
// normalized request (in the hub's words), the limits a request is held to, a model's capabilities, and the shapes that
// cross the store port (a reservation, a refusal and its limits, a finalize, a model row). Types,
// constants and one pure look-up: nothing here imports a stage, so every stage can import this.
import type {
  DialectBody,
  DialectExtras,
  DialectTag,
  HubEmbed,
  HubMessage,
  HubOptions,
  HubRequest,
  HubTool,
  HubToolChoice,
} from "../_shared/upstream/hub.ts";
import type { Provider } from "../_shared/providers/registry.ts";
import type { StatedLimits } from "../_shared/upstream/port.ts";
import type {
  FinalizeOutcome,
  PriorityClass,
  QuotaCause,
  RefusalLimit,
  ServiceTier,
  TOKEN_REFUSALS,
} from "../_shared/vocabulary.ts";

// ---- The normalized request is in the hub's words (_shared/upstream/hub.ts): every route translates its
// caller's body into messages, a system text, options, tools and a tool choice, and carries what only
// its dialect has a word for keyed by that dialect (DialectExtras), which that dialect's translation
// sets as given and another dialect's model refuses by name (`only`).

/** The request as one model takes it (model/adapt.ts): the hub's request its provider is given. */
export type ModelRequest = HubRequest;

/** A field of the caller's body only one dialect's models honour, and why another provider's cannot. */
export interface OnlyField {
  field: string;
  why: string;
}

/** An option a model's row may refuse to be set (refuses_sampling, refuses_thinking_budget). */
export type RefusableOption = "temperature" | "topP" | "topK" | "thinkingBudget";

/** What a request asks that a model may lack, as the refusal names it. */
export interface Ask {
  /** The stable code of details.feature. */
  feature: string;
  /** The caller's own field, in its route's words, for the message. */
  words: string;
}

// The closed lists (limits, causes, statuses, classes, tiers) are _shared/vocabulary.ts's: one list each.
export {
  ADMISSION_CAUSES,
  type AdmissionCause,
  type FinalizeOutcome,
  PRIORITY_CLASSES,
  type PriorityClass,
  REFUSAL_LIMITS,
  type RefusalLimit,
  SERVICE_TIERS,
  type ServiceTier,
  TOKEN_LIMITS,
  type TokenLimit,
} from "../_shared/vocabulary.ts";

export type InvokeMode = "WAIT" | "NO_WAIT";

/**
 * What a request says whatever operation it asks (a generation, an embedding): the model and its
 * fallbacks, how it waits, who it is for. The attempt loop reads these; the operation reads the rest.
 */
export interface CallRequest {
  model: string;
  /**
   * Models to try, in order, when `model` cannot serve within the wait (absent: the model row's own
   * chain; empty: no fallback at all).
   */
  fallbackModels?: string[];
  /**
   * Fields of the caller's body only one dialect's models honour (at `endpoint`, where the dialect has
   * more than one), each with why another provider's cannot: a model of another dialect, or whose
   * provider lacks that endpoint, refuses the request naming them (model/adapt.ts).
   */
  only?: { dialect: DialectTag; endpoint?: string; fields: readonly OnlyField[] };
  mode: InvokeMode;
  /** Already capped by the wait budget; 0 for NO_WAIT. */
  maxWaitMs: number;
  requestId?: string;
  metadata: Record<string, unknown>;
  /** The class asked for (absent: the credential's own). */
  priority?: PriorityClass;
  /** The service tier the caller asked for (OpenAI's service_tier, Gemini's serviceTier); absent: its class's row decides. */
  serviceTier?: ServiceTier;
}

/** A generation: the request in the hub's words (messages, system, options, tools) beside the call's own fields. */
export interface NormalizedRequest extends CallRequest {
  messages: HubMessage[];
  /** System prompt, from `system` and any `messages[].role == "system"`; applied per model later. */
  system?: string;
  options: HubOptions;
  tools?: HubTool[];
  toolChoice?: HubToolChoice;
  /** What only one provider dialect has a word for, keyed by it (its models are sent it as given). */
  dialectExtras?: DialectExtras;
  /** What the request asks that a model may lack (model/adapt.ts refuses it where the model's row says so). */
  asks: { json?: Ask; tools?: Ask };
  /** Where the caller names the output cap: its route's words, and details.field's stable code. */
  outputCapField: { words: string; code: string };
  /**
   * The caller's own field, in its route's words, for each option a model may refuse to be set
   * (model/refused-options.ts); absent: the native body's field.
   */
  optionFields?: Partial<Record<RefusableOption, string>>;
  /** Estimated tokens of the request's inline images (images.ts), on top of the text's estimate. */
  imageTokens: number;
  /** Answer as server-sent events, chunk by chunk. */
  stream: boolean;
  /** A stream ends with the whole answer's usage (OpenAI's stream_options.include_usage). */
  streamUsage?: boolean;
  /**
   * A route that speaks a provider's dialect: the caller's body as sent. A model whose provider speaks
   * that dialect is sent this body (its model, stream and token cap set by the gateway), so every
   * field the dialect offers reaches it.
   */
  dialectBody?: DialectBody;
}

/**
 * An embedding (the embedding routes): the inputs a model embeds, in the hub's words, beside the call's
 * own fields. No messages, no output cap, no stream: its input is estimated and booked as any request's,
 * and no output is booked (embedding/operation.ts).
 */
export interface EmbeddingRequest extends CallRequest {
  embed: HubEmbed;
  /** Token ids among the inputs (OpenAI's), counted one each beside the texts' estimate. */
  tokenIds: number;
}

/** What only an embedding model's row says (google_ai_embedding_traits). */
export interface EmbeddingTraits {
  dimensions: number;
  /** A smaller vector may be asked (dimensions, outputDimensionality). */
  shortenable: boolean;
  /** Inputs its provider takes in one request. */
  maxBatch: number;
  maxInputTokens: number;
  /** Its provider counts each input of a batch as a request: a batch of N is booked as N requests at once. */
  countsEachInput: boolean;
}

export interface RequestLimits {
  /** Longest wait a caller may ask for; larger `max_wait_ms` is capped, not rejected. */
  maxWaitBudgetMs: number;
  /** Wait used in WAIT mode when the caller gives no `max_wait_ms`. */
  defaultMaxWaitMs: number;
  /** Size of `metadata` as JSON, in UTF-8 bytes. */
  maxMetadataBytes: number;
}

// The function's wall clock is 150 s on the Free plan: waiting may use at most 60 s of it, which
// leaves room for three attempts.
export const DEFAULT_REQUEST_LIMITS: RequestLimits = {
  // A whole sliding window (60 s + the 1 s guard) and the jitter: a waiter behind a full window gets in.
  maxWaitBudgetMs: 65_000,
  defaultMaxWaitMs: 30_000,
  // Kept in every audit row, refusals included: small, so refusals cannot grow the log by much.
  maxMetadataBytes: 1024,
};

export interface ModelCapabilities {
  /** Canonical id sent to the provider (an alias such as gemma-3-27b resolves to gemma-3-27b-it). */
  model: string;
  supportsSystemInstruction: boolean;
  supportsJsonMode: boolean;
  supportsTools: boolean;
  /** False: images are refused with a clear 400; null or absent: not known, the provider decides. */
  supportsImages?: boolean | null;
  /** True: a thinking budget is refused with a clear 400 (the model decides how long it thinks: Claude 5.x). */
  refusesThinkingBudget?: boolean;
  /** True: temperature, top-p and top-k other than their defaults are refused with a clear 400 (Claude 5.x). */
  refusesSampling?: boolean;
}

export type TokenStatus = "ok" | (typeof TOKEN_REFUSALS)[number];

/**
 * Who the reservation is for. A service caller names itself (its label goes to the audit row); a
 * scoped token is reserved by its hash (google_ai_reserve_models), which validates the token, names
 * its client and books its budget in the same transaction.
 */
export type ReserveCaller =
  | { kind: "service"; name: string }
  | { kind: "token"; /** SHA-256 hex of the token. */ tokenHash: string };

export interface ReserveParams {
  /** As the caller wrote it; the RPC resolves aliases. */
  model: string;
  /**
   * Canonical models to try after `model`, in order, in the same round trip (model-chain.ts); empty:
   * `model` alone.
   */
  fallbackModels: readonly string[];
  estimatedTokens: number;
  /**
   * The answer each model (`model`, then `fallbackModels`) is sent with, in tokens, which a budget in
   * money books (attempt/answer-size.ts); null (or none at all): not known, so a budget in money refuses
   * the request.
   */
  outputTokens: readonly (number | null)[];
  /**
   * How many requests the call is at its provider, booked at once (an embedding batch where the model's
   * row counts each input: embedding/operation.ts); absent: 1.
   */
  requests?: number;
  caller: ReserveCaller;
  requestId: string;
  /** The caller named the request (its own request_id): replay and in-flight checks apply. */
  idempotent: boolean;
  /** Keys that already failed for this request, so the next attempt prefers another. */
  excludeKeyIds: readonly string[];
  attempt: number;
  /** Time already spent waiting for capacity, for the audit row. */
  waitMs: number;
  metadata: Record<string, unknown>;
  /** The class the caller asks for (null: its credential's); the database never lets it rise above that. */
  priority: PriorityClass | null;
  /** The ticket an earlier refusal of this request gave (its place in the admission queue). */
  queueTicket: string | null;
  /** How much longer the caller will wait (0: it will not, so a refusal takes no ticket). */
  waitLeftMs: number;
  /**
   * The invocation holding the request's claim (its id, the end of its budget): the claim is its
   * own and held until that end plus two database deadlines (store/holder.ts). Null for a request
   * the caller did not name: it has no claim.
   */
  claim: ClaimHolder | null;
}

/** The invocation holding a named request's claim: its id, and the end of its budget (epoch ms). */
export interface ClaimHolder {
  id: string;
  invocationEnd: number;
}

/** A model the reservation passed over before the one that answered, and why (`retired`: see model-chain.ts). */
export interface FallbackStep {
  model: string;
  limit: string;
  /** Why this model refused (the reservation's cause; null: not said). */
  cause: string | null;
  retryAfterMs: number | null;
}

/** A model row as a request's chain needs it: what it can do, whether it serves, and its own fallbacks. */
export interface ModelProfile extends ModelCapabilities {
  /** False: the operator retired the row; it serves nobody but may still name fallbacks. */
  active: boolean;
  /** The row's chain (canonical names), used when the request names no fallback_models. */
  fallbackModels: readonly string[];
  /**
   * The provider answered 404 for the model (its row is marked): reservations refuse it. Absent:
   * served. Rows are cached per worker, so this may lag the row by one refresh.
   */
  withdrawn?: boolean;
  /** With `withdrawn` or `shutDown`: the model its provider names instead (null: not known). */
  successor?: string | null;
  /**
   * Past its row's shutdown date (the day in UTC): a reservation passes it to its successor, and so does
   * a count (attempt/counted-model.ts). Absent: not past it. Cached as `withdrawn` is.
   */
  shutDown?: boolean;
  /** Who serves the model (its row's provider): the upstream called and the keys read. */
  provider: Provider;
  /** The wire format its provider speaks (the provider row's dialect). */
  dialect: string;
  /** Its provider serves OpenAI's Responses API (the provider row's has_responses_api); absent: it does not. */
  hasResponsesApi?: boolean;
  /**
   * Set where the model's TPM counts an answer's tokens too (OpenAI): the output a request books when
   * it names no max_tokens. Absent: TPM counts input only (Google's rule).
   */
  bookedOutputTokens?: number;
  /** An embedding model's facts; absent: the model generates, and does not embed. */
  embedding?: EmbeddingTraits;
  /**
   * The answer a request that names no largest one is sent with where a budget in money books it
   * (`bookedOutputTokens`, else the model's output limit as its catalogue says). Absent: not known.
   */
  answerTokens?: number;
}

/** A row of google_ai_service_tiers: the tier asked for a (model, priority class). */
export interface ServiceTierRow {
  model: string;
  priorityClass: string;
  serviceTier: ServiceTier;
  /** A flex call the provider sheds is retried at standard. */
  standardOnShed: boolean;
}

/** A place in the admission queue: a WAIT refusal's ticket and when its turn comes. */
export interface QueuePlace {
  ticket: string;
  /** 1 = next. */
  position: number;
  /** ISO time of the turn, as the database computed it. */
  expectedAt: string;
  priority: string;
}

/**
 * The quota an answer reports (the x-ratelimit-* headers, quota-headers.ts): of the quota group that
 * was booked, as of the booking; for a refusal, of the model's best candidate group. Effective limits
 * (after the safety margin); a null limit means the model has none (its fields are null too).
 */
export interface QuotaSnapshot {
  model: string;
  quotaGroup: string;
  rpm: number | null;
  requestsLeft: number | null;
  /** Until the sliding window's requests next grow (its oldest admission leaves it, or a cooldown ends). */
  requestsResetMs: number | null;
  tpm: number | null;
  tokensLeft: number | null;
  tokensResetMs: number | null;
  rpd: number | null;
  dayLeft: number | null;
  /** Until the provider's day's count starts again (its midnight + the day guard). */
  dayResetMs: number | null;
  /** What the model's shares keep, for the class the answer names (absent: not known, e.g. a refusal answered at once). */
  kept?: QuotaKept | null;
  /**
   * A booking of a row that follows its provider's limits (provider_limits 'follow'): the limits the
   * provider last stated for the group as the booking applied them (absent figure: none stated yet).
   * Absent: the row keeps its own limits.
   */
  followed?: StatedLimits;
}

/**
 * Requests of the group's RPM and RPD that reserved shares keep (google_ai_quota_kept): for other
 * owners (this caller books only what their unused part leaves over) and for this caller's class or
 * itself. Share sizes, not what is unused of them; null where the model has no such limit.
 */
export interface QuotaKept {
  rpmForOthers: number | null;
  rpmForYou: number | null;
  rpdForOthers: number | null;
  rpdForYou: number | null;
}

export interface Reservation {
  ok: true;
  reservationId: string;
  keyId: string;
  keyAlias: string;
  /** Name of the Edge secret that holds the provider's key; the key itself never enters the database. */
  envVarName: string;
  quotaGroup: string;
  /** Canonical model id to send to the provider. */
  model: string;
  minuteBucket: string;
  dayBucket: string;
  /** The class the request was admitted in. */
  priority?: string;
  /** Models of the chain passed over before this one (absent or empty: the first model served). */
  fallbackFrom?: FallbackStep[];
  /** Read in the reservation's own statement (null: not known). */
  quota?: QuotaSnapshot | null;
  /**
   * The worst case booked in a budget in money (the token's, its client's or the service caller's);
   * absent: none. The answer it booked must then be the call's cap (answer-size.ts).
   */
  bookedUsd?: number;
}

/** The period of the budget that refused: a token's whole life, or a client's or service caller's Pacific day or month. */
export const BUDGET_PERIODS = ["life", "day", "month"] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export interface Refusal {
  ok: false;
  limit: RefusalLimit;
  retryAfterMs: number | null;
  /** ISO timestamp at which capacity is expected (null if unknown). */
  retryAt: string | null;
  /** For `duplicate`: the stored answer of the completed request. */
  response?: unknown;
  /** For `too_large`: the most input tokens one request may reserve (the model's effective TPM, else ITPM). */
  maxTokens?: number | null;
  /** For `too_large` of a model with an output limit (OTPM): the most output tokens one request may book. */
  maxOutputTokens?: number | null;
  /**
   * For `too_large` of a request of several requests (cause over_rpm, over_rpd): how many it is, and the
   * most the model's minute holds or any group has left of its day (`per`).
   */
  requests?: { count: number; max: number; per: "minute" | "day" };
  /**
   * Ask again after this long, before retryAfterMs: tokens of the blocking window are still in flight
   * and may be given back when their calls finish (null: nothing can come back before retryAfterMs).
   */
  recheckAfterMs?: number | null;
  /** A WAIT refusal that put the request in line: retryAfterMs is then the exact wait for its turn. */
  queue?: QueuePlace | null;
  /** The canonical model the refusal is about (in a chain: the one whose capacity comes back first). */
  model?: string | null;
  /** In a chain: the models passed over (queued: before the one it is queued on; refused: all tried). */
  fallbackFrom?: FallbackStep[];
  /** Read in the reservation's own statement (null: no model or quota group is known). */
  quota?: QuotaSnapshot | null;
  /** For `withdrawn`: the model the provider names instead, as the model's row says (null: not known). */
  successor?: string | null;
  /** For `cooldown`: why the group rests (a provider's 429's cause), read in the reservation's statement. */
  cause?: QuotaCause | null;
  /** Why the database refused (REFUSAL_CAUSES: an admission cause, or the limit itself for the request's own reasons). */
  refusalCause?: string | null;
  /** For a budget's refusal (token_budget, client_budget, caller_budget): whose period refused. */
  period?: BudgetPeriod | null;
}

// FinalizeOutcome: "cut", a streamed answer broke off after it started (FinalizeParams.cutBy says who
// cut it); "withdrawn", the provider answered that it does not serve the model: the reservation is
// given back and the model row marked withdrawn (google_ai_withdraw_attempt).

export interface FinalizeParams {
  reservationId: string;
  /**
   * The reservation's quota group and model (a success's): the counter row its finalize settles, so that
   * finalizes written together hold one counter row (store/finalize-queue.ts). Absent: written alone.
   */
  booked?: { quotaGroup: string; model: string };
  /**
   * A success written before its answer leaves (the provider's room at or below the margin:
   * attempt/room.ts): alone, its commit's flush waited for outside the counter row's lock
   * (google_ai_finalize_call). Absent: written with the others after the answer.
   */
  beforeAnswer?: boolean;
  outcome: FinalizeOutcome;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Of the input, what the provider read from its cache; of the output, its thinking (null: not said). */
  cachedInputTokens?: number | null;
  thinkingTokens?: number | null;
  /** Of the input, what the provider wrote to its cache for 5 minutes / an hour (null: none said). */
  cacheWrite5mTokens?: number | null;
  cacheWrite1hTokens?: number | null;
  httpStatus: number | null;
  errorCode: string | null;
  quotaId: string | null;
  /** Sanitized (sanitize.ts) before it gets here. */
  errorMessage: string | null;
  /** For `withdrawn`: the model the provider's answer names instead (its dialect read it); null: none. */
  successor?: string | null;
  latencyMs: number;
  /** Cool the key's quota group/model down until then (from RetryInfo). */
  cooldownUntil: Date | null;
  /** A per-day quota was hit: cool down until the provider's next midnight (its row's day_zone), computed by the database. */
  cooldownUntilProviderMidnight: boolean;
  /** A success's answer, kept for replay when the caller sent its own request_id (else null). */
  response: unknown | null;
  /**
   * The provider refused the key itself (the classifier's invalid_key: Google's API_KEY_INVALID, API_KEY_EXPIRED,
   * ...): the database takes it out of rotation. Decided here, once, not re-derived in SQL (absent:
   * the database falls back to API_KEY_INVALID alone).
   */
  keyRejected?: boolean;
  /** A cut stream: the caller went away ("client") or the stream broke off on the provider's side ("upstream"). */
  cutBy?: "client" | "upstream";
  /**
   * A provider's 429's cause (its dialect's reading, Google's quota-cause.ts): recorded on the attempt and on the cooldown it starts;
   * `spend_cap` and the money causes (monthly_cap, billing_cap, credits_depleted) rest every model of the
   * quota group. Null/absent: not a 429.
   */
  quotaCause?: QuotaCause | null;
  /** The service tier asked of the provider (flex, priority); null/absent: standard. */
  serviceTier?: string | null;
  /** The tier the provider says served (Google's x-gemini-service-tier header, OpenAI's service_tier); null/absent: not said. */
  servedTier?: string | null;
  /** Of the request's final attempt: Server-Timing's total less google and wait (ms); null when not known. */
  addedMs?: number | null;
  /** Of the request's final attempt: from arrival to the answer's first byte (ms); null when not known. */
  firstByteMs?: number | null;
  /**
   * What the provider says is left of the group's limits (OpenAI's x-ratelimit-*): the database rests
   * the model until `until` when no more is left than is already on its way. Null/absent: not said.
   */
  room?: { requests: number | null; tokens: number | null; until: Date } | null;
  /**
   * The group's limits as the provider's answer states them (a success's or a 429's): recorded on the
   * counter row, a lowering at once, a raise when two answers agree (google_ai_note_stated). Null/absent: not stated.
   */
  statedLimits?: StatedLimits | null;
  /**
   * A call the provider answered without usage: the tokens its window keeps of the booking. The input
   * for a call the provider refused before generating (a 4xx: the output booking goes back); null/absent:
   * the whole booking stays (a call that failed after it started may have been counted whole).
   */
  settledTokens?: number | null;
}

/** A model a caller can name (GET …/v1beta/models, …/v1/models): its row and what its provider lists of it. */
export interface ModelEntry {
  model: string;
  aliases: string[];
  displayName: string | null;
  inputTokenLimit: number | null;
  outputTokenLimit: number | null;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  supportsSystemInstruction: boolean;
  supportsJsonMode: boolean;
  supportsTools: boolean;
  /** Who serves it (its row's provider). */
  provider: Provider;
}

/** The model a name stands for: its id or one of its aliases. */
export function modelNamed(models: readonly ModelEntry[], name: string): ModelEntry | undefined {
  return models.find((m) => m.model === name || m.aliases.includes(name));
}
