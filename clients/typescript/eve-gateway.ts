// EVE LLM Gateway client for Node and Deno: a thin typed wrapper over @supabase/supabase-js
// `functions.invoke`, with the same behaviour and errors as the Python client (clients/python).
//
//   import { EveGateway } from "./eve-gateway.ts";
//   const gw = new EveGateway();                          // credential and URL from the environment
//   const r = await gw.generate("Summarise: ...", { model: "gemma-3-27b", generationConfig: { temperature: 0.2 } });
//   console.log(r.text, r.usage.total_tokens, r.rateLimit?.requests?.remaining);
//   const q = await gw.quota();                         // what is left per model, the queue, your budgets
//   for await (const piece of gw.stream("Summarise: ...", { onProgress: (q) => console.error(q) })) {
//     process.stdout.write(piece);                       // text as it is generated
//   }
//
// Credentials, first found wins: options.clientSecret / options.serviceKey, env EVE_GATEWAY_CLIENT_SECRET
// (a Kaggle client secret: tokens are minted at issue-kaggle-token, cached, renewed before expiry and
// once more when llm-invoke says a token expired, was revoked, is unknown or is used up), env
// SUPABASE_SERVICE_ROLE_KEY (a trusted server: llm-invoke is called with it directly).
// URL: options.url, the given supabase client's, env EVE_GATEWAY_URL, env SUPABASE_URL.
// Region: options.region, else env EVE_GATEWAY_REGION: the project database's region (e.g. "eu-central-1"),
// given to supabase-js's invoke on every call (the token's mint included) so Supabase runs the function
// next to its database (docs/llm-invoke.md, "Region"). Unset: Supabase picks the region nearest the caller.
//
// Deno: map "@supabase/supabase-js" to "npm:@supabase/supabase-js@2" in your import map (deno.json).
import {
  createClient,
  FunctionsFetchError,
  FunctionsHttpError,
  type FunctionRegion,
  FunctionsRelayError,
  type SupabaseClient,
} from "@supabase/supabase-js";

export const CLIENT_SECRET_ENV = "EVE_GATEWAY_CLIENT_SECRET";
export const SERVICE_KEY_ENV = "SUPABASE_SERVICE_ROLE_KEY";
export const REGION_ENV = "EVE_GATEWAY_REGION";
export const DEFAULT_MODEL = "gemma-3-27b";
/** llm-invoke may wait up to 60 s for capacity, then try up to 3 times within ~140 s. */
export const DEFAULT_TIMEOUT_MS = 180_000;
/** Renew a token this long before it expires (at most a fifth of its lifetime). */
export const DEFAULT_REFRESH_MARGIN_MS = 300_000;
const CLIENT_SECRET_PREFIX = "evegw_cs_";
/** Supabase's region names (us-east-1, eu-central-1, ap-southeast-2, ...): checked so a typo fails at once. */
const REGION = /^[a-z]{2}-[a-z]+-[0-9]+$/;
const RENEWABLE = new Set(["token_expired", "token_invalid", "token_revoked"]);
const CREDENTIAL = /evegw_(?:cs|tok)_[A-Za-z0-9_-]+|sb_secret_[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_.-]*/g;

// Errors -----------------------------------------------------------------------------------------

export interface ErrorInit {
  status?: number | null;
  code?: string | null;
  requestId?: string | null;
  body?: Record<string, unknown>;
  rateLimit?: RateLimit | null;
}

/** Any failure of a gateway call. `code` is the gateway's error code: branch on it, not on the message. */
export class GatewayError extends Error {
  readonly status: number | null;
  readonly code: string | null;
  readonly requestId: string | null;
  readonly body: Record<string, unknown>;
  /** The quota the answer reported (a 429 included), or null when it reported none. */
  readonly rateLimit: RateLimit | null;

  constructor(message: string, init: ErrorInit = {}) {
    super(redact(message));
    this.name = new.target.name;
    this.status = init.status ?? null;
    this.code = init.code ?? null;
    this.requestId = init.requestId ?? null;
    this.body = init.body ?? {};
    this.rateLimit = init.rateLimit ?? null;
  }
}

/** 401/403: wrong, revoked or expired credential, or not allowed this model or scope. */
export class AuthError extends GatewayError {}
/** Another 4xx: fix the request. */
export class BadRequest extends GatewayError {}
/** 5xx (Google failed, database down), a network failure, or an answer that is not the gateway's JSON. */
export class UpstreamError extends GatewayError {}
/**
 * 429. `retryAfter` in seconds (null when waiting cannot help). `limit` names what was used up and the
 * body's `cause` why: strings whose values docs/llm-invoke.md#errors lists (the gateway adds values
 * there; a client that meets one it does not know reads it as a 429 like any other).
 */
export class RateLimited extends GatewayError {
  readonly retryAfter: number | null;
  readonly limit: string | null;

  constructor(message: string, init: ErrorInit & { retryAfter?: number | null; limit?: string | null } = {}) {
    super(message, init);
    this.retryAfter = init.retryAfter ?? null;
    this.limit = init.limit ?? null;
  }
}

// Types ------------------------------------------------------------------------------------------

export interface Scope {
  models?: string[];
  ttl_seconds?: number;
  max_requests?: number;
  max_tokens?: number;
}

export interface EveGatewayOptions {
  /** An existing supabase-js client (e.g. the bot's); its URL and headers are used. */
  supabase?: SupabaseClient;
  /** Project URL (https://<ref>.supabase.co, or the local stack's http://127.0.0.1:54321). */
  url?: string;
  /** Publishable/anon key for the supabase-js client this wrapper creates (optional). */
  supabaseKey?: string;
  clientSecret?: string;
  serviceKey?: string;
  /** A name for the audit log (x-caller); token callers are logged by their client's name. */
  caller?: string;
  /**
   * The Supabase region to run the functions in: the database's, e.g. "eu-central-1" (default: env
   * EVE_GATEWAY_REGION; "" or "any": the region nearest the caller). supabase-js sends it as the
   * x-region header and the forceFunctionRegion query parameter.
   */
  region?: string;
  /** Narrows the tokens this client asks for. */
  scope?: Scope;
  timeoutMs?: number;
  refreshMarginMs?: number;
  /** Renew once when a token expired, was revoked, is unknown or is used up (default true). */
  renewTokens?: boolean;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** Gemini's generationConfig: the usual fields typed; any other Gemini field is sent as given. */
export interface GenerationConfig {
  temperature?: number;
  maxOutputTokens?: number;
  topP?: number;
  topK?: number;
  stopSequences?: string[];
  responseMimeType?: string;
  responseSchema?: Record<string, unknown>;
  responseJsonSchema?: Record<string, unknown>;
  candidateCount?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  thinkingConfig?: { thinkingBudget?: number; includeThoughts?: boolean; [field: string]: unknown };
  [field: string]: unknown;
}

/** One part of a Gemini turn: text, an inline image, a function call or its response. */
export interface Part {
  text?: string;
  inlineData?: { mimeType: string; data: string };
  functionCall?: { name: string; args?: Record<string, unknown>; [field: string]: unknown };
  functionResponse?: { name: string; response: Record<string, unknown>; [field: string]: unknown };
  [field: string]: unknown;
}

/** A Gemini turn (`contents` of the native request). */
export interface Content {
  role?: "user" | "model";
  parts: Part[];
}

/** An image to send: its bytes (PNG, JPEG or WebP; the type is read from them) or a ready inlineData part. */
export type ImageInput = Uint8Array | ArrayBuffer | Part;

/** What to generate from: a prompt, a chat, or Gemini's native contents. */
export type GenerateInput = string | { messages: ChatMessage[] } | { contents: Content[] };

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface GenerateOptions {
  model?: string;
  /**
   * Models to try, in order, when `model` cannot serve within the wait (day used up, cooling down,
   * retired); absent: the model row's own chain; []: none. The answer's `model` names the one that served.
   */
  fallbackModels?: string[];
  /** System prompt; folded into the first user turn for Gemma by the gateway. */
  system?: string;
  /** true (default): wait for capacity, bounded; false: answer 429 at once (NO_WAIT). */
  wait?: boolean;
  generationConfig?: GenerationConfig;
  /**
   * Images sent before the prompt's text (or in the last user message): PNG, JPEG or WebP bytes
   * (e.g. `await readFile(path)`), at most 7 MiB each (docs/images.md).
   */
  images?: ImageInput[];
  /** The answer also carries Google's raw `candidates`. */
  includeCandidates?: boolean;
  /** Gemini's function calling and safety settings, as given. */
  tools?: Record<string, unknown>[];
  toolConfig?: Record<string, unknown>;
  safetySettings?: Array<{ category: string; threshold: string }>;
  /**
   * A priority class (docs/llm-invoke.md lists them): "batch" to wait behind this credential's own class
   * (a higher class than the credential's is lowered to it; one the gateway does not know is a BadRequest).
   */
  priority?: string;
  maxWaitMs?: number;
  requestId?: string;
  metadata?: Record<string, unknown>;
  signal?: AbortSignal;
}

export interface StreamOptions extends GenerateOptions {
  /** Called with each queued event: the request waits for its turn (its place and expected time). */
  onProgress?: (event: QueuedEvent) => void;
}

/** The request waits for its turn (sent only when it has to wait; may repeat as its place changes). */
export interface QueuedEvent {
  type: "queued";
  position: number | null;
  /** ISO time the gateway expects the request's turn. */
  expected_at: string;
  model: string | null;
  priority: string | null;
}

/** A piece of the answer; `candidates` (Google's raw) only with includeCandidates. */
export interface ChunkEvent {
  type: "chunk";
  text: string;
  candidates?: unknown[];
}

/** The end of the stream: the whole answer, as generate() returns it. */
export interface DoneEvent {
  type: "done";
  result: GenerateResult;
}

export type StreamEvent = QueuedEvent | ChunkEvent | DoneEvent;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface GenerateResult {
  text: string;
  model: string;
  /** Only when a fallback served: the model asked for, and why each model before `model` was passed over. */
  requested_model?: string;
  fallback_from?: Array<{ model: string; limit: string; retry_after_ms: number | null }>;
  usage: Usage;
  request_id: string;
  attempts: number;
  waited_ms: number;
  finish_reason: string | null;
  key_alias: string;
  /** Google's raw candidates, only with includeCandidates. */
  candidates?: unknown[];
  /**
   * The quota of the quota group that served, as of this request's admission (x-ratelimit-* headers);
   * null when the answer reported none (a stream that began while it waited in line).
   */
  rateLimit: RateLimit | null;
}

/** One limit as an answer reported it: the quota group's limit, what is left, and when it next grows. */
export interface RateLimitWindow {
  limit: number;
  remaining: number;
  /** Milliseconds until `remaining` next grows (null if the header could not be read). */
  resetMs: number | null;
}

/**
 * The x-ratelimit-* headers of an llm-invoke answer: the sliding minute's requests and tokens and the
 * Pacific day's requests, each null when the model has no such limit.
 */
export interface RateLimit {
  requests: RateLimitWindow | null;
  tokens: RateLimitWindow | null;
  requestsDay: RateLimitWindow | null;
}

/** GET llm-invoke/v1/quota: per model the credential may use (see docs/llm-invoke.md, "Quota"). */
export interface QuotaReport {
  request_id: string;
  as_of: string;
  caller: { kind: "service" | "token"; client: string | null; priority_class: string };
  budget: {
    token_requests_left: number | null;
    token_tokens_left: number | null;
    token_expires_at: string | null;
    daily_requests_left: number | null;
    daily_tokens_left: number | null;
    daily_resets_at: string | null;
  };
  models: ModelQuota[];
  /** Models their provider withdrew (404) among those the credential may use (docs/models.md). */
  withdrawn?: WithdrawnModel[];
}

export interface WithdrawnModel {
  model: string;
  /** Who withdrew it: "google" or "openai". */
  provider: string;
  withdrawn_at: string;
  withdrawn_message: string | null;
  successor: string | null;
  /** The replacement Google's 404 named (a suggestion), or null. */
  google_successor: string | null;
  shutdown_date: string | null;
}

/** A quota group resting for a model after a Google 429, and why (docs/google-429s.md). */
export interface Cooldown {
  /** The group's name (a Google project id, key:<uuid>): for a service caller only; absent for a token. */
  quota_group?: string;
  /** Why Google answered 429: docs/google-429s.md lists the values. */
  cause: string | null;
  cooldown_until: string;
  retry_after_ms: number;
}

export interface ModelQuota {
  model: string;
  /** Who serves the model: "google" or "openai"; its quota groups are that provider's. */
  provider: string;
  /** Per quota group, after the safety margin. */
  limits: { rpm: number | null; tpm: number | null; rpd: number | null };
  quota_groups: number;
  cooling_down: number;
  /** Summed over the quota groups; null where the model has no such limit. */
  minute: { requests_left: number | null; requests_reset_ms: number | null; tokens_left: number | null; tokens_reset_ms: number | null };
  day: { requests_left: number | null; resets_at: string | null; reset_ms: number | null };
  /** Requests waiting now, per priority class. */
  queue: Record<string, number>;
  /** The quota groups resting for the model, with the cause of Google's 429. */
  cooldowns?: Cooldown[];
  /**
   * What the model's shares keep, per quota group: of its RPM and RPD, the requests kept for others
   * (this caller books only what their unused part leaves over) and those kept for this caller (its
   * class's share, e.g. the default share of `interactive`, and its own). Null where the model has
   * no such limit.
   */
  kept?: { rpm_for_others: number | null; rpm_for_you: number | null; rpd_for_others: number | null; rpd_for_you: number | null };
}

export interface Token {
  token: string;
  token_id: string;
  client: string;
  expires_at: string;
  expires_in: number;
  models: string[];
  budget: { max_requests: number | null; max_tokens: number | null };
  invoke_url: string;
}

interface CachedToken {
  value: Token;
  deadline: number;
  lifetimeMs: number;
}

// The client -------------------------------------------------------------------------------------

export class EveGateway {
  readonly credentialSource: string;
  private readonly supabase: SupabaseClient;
  private readonly secret: string | null;
  private readonly serviceKey: string | null;
  private readonly setApiKey: boolean;
  private readonly options: EveGatewayOptions;
  private readonly now: () => number;
  /** The region every call is pinned to, or null to let Supabase pick. */
  readonly region: string | null;
  private cached: CachedToken | null = null;
  private minting: Promise<CachedToken> | null = null;

  constructor(options: EveGatewayOptions = {}) {
    this.options = options;
    this.now = options.now ?? Date.now;
    const found = findCredential(options);
    this.secret = found.secret;
    this.serviceKey = found.serviceKey;
    this.credentialSource = found.source;
    this.region = regionOf(options.region ?? env(REGION_ENV));
    if (options.supabase !== undefined) {
      this.supabase = options.supabase;
      this.setApiKey = false;
    } else {
      const url = options.url ?? env("EVE_GATEWAY_URL") ?? env("SUPABASE_URL");
      if (url === undefined || url.trim() === "") {
        throw new GatewayError(
          "No gateway URL: pass { url } or { supabase }, or set EVE_GATEWAY_URL (or SUPABASE_URL).",
          { code: "no_url" },
        );
      }
      const base = url.trim().replace(/\/+$/, "").replace(/\/(rest|functions|storage|auth)\/v1(\/.*)?$/, "");
      // supabase-js needs a key; without a publishable key the call's own credential is sent as apikey.
      this.supabase = createClient(base, options.supabaseKey ?? found.secret ?? found.serviceKey!, {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
        // Realtime is never used; Node 20 has no WebSocket, and supabase-js refuses to start without one.
        realtime: { transport: NoRealtime as never },
      });
      this.setApiKey = options.supabaseKey === undefined;
    }
  }

  /** True with a client secret (tokens), false with a service key. */
  get usesToken(): boolean {
    return this.secret !== null;
  }

  /** The cached token, minted (once, however many calls wait) or renewed when missing or about to expire. */
  async token(): Promise<Token> {
    return (await this.currentToken()).value;
  }

  /** Drops the cached token so the next call mints a new one. */
  forgetToken(): void {
    this.cached = null;
  }

  async generate(input: GenerateInput, options: GenerateOptions = {}): Promise<GenerateResult> {
    const body = invokeBody(input, options);
    const { data, headers } = await this.withCredential((credential) =>
      this.request<Omit<GenerateResult, "rateLimit">>("llm-invoke", credential, body, options.signal)
    );
    return { ...data, rateLimit: parseRateLimit(headers) };
  }

  /**
   * generate() as server-sent events. `for await (const piece of gw.stream(...))` yields the text as
   * it is generated; `.events()` yields every event: queued (waiting for a turn; only when the request
   * had to wait), chunk, and last done with the whole answer. After the end, `.result` is that answer.
   * The request is sent when the iteration begins: errors before the stream began (a NO_WAIT 429, a
   * refused token) are thrown by the first step, as by generate(); an error event inside the stream
   * throws the same class with the status its code has as an HTTP error (a 429 is RateLimited with
   * retryAfter). Leaving the loop early ends the connection, and the gateway stops generating.
   * `timeoutMs` bounds the wait for the stream to begin; pass a `signal` to bound the whole stream.
   */
  stream(input: GenerateInput, options: StreamOptions = {}): GatewayStream {
    return new GatewayStream((credentialRenewed) => this.openStream(invokeBody(input, options), options, credentialRenewed), options.onProgress);
  }

  /** Sends a stream request (renewing a refused token once); the open response and the token it used. */
  private async openStream(
    body: Record<string, unknown>,
    options: StreamOptions,
    forgetToken: string | null,
  ): Promise<{ response: Response; token: string | null; requestId: string }> {
    if (forgetToken !== null && this.cached?.value.token === forgetToken) this.cached = null;
    let token: string | null = null;
    const { data } = await this.withCredential((credential) => {
      token = this.secret === null ? null : credential;
      return this.request<unknown>("llm-invoke", credential, { ...body, stream: true }, options.signal, "POST", "text/event-stream");
    });
    if (!(data instanceof Response) || data.body === null) {
      throw new UpstreamError("llm-invoke answered a stream request without a stream.", { status: 200 });
    }
    return { response: data, token, requestId: body.request_id as string };
  }

  /**
   * What is left of each model this credential may use (the minute and the Pacific day, summed over
   * the quota groups), the requests waiting per priority class, and this credential's own budgets.
   */
  async quota(options: { signal?: AbortSignal } = {}): Promise<QuotaReport> {
    const { data } = await this.withCredential((credential) =>
      this.request<QuotaReport>("llm-invoke/v1/quota", credential, undefined, options.signal, "GET")
    );
    return data;
  }

  /** Runs a call with the service key, or with the token (renewed once when llm-invoke refuses it). */
  private async withCredential<T>(work: (credential: string) => Promise<T>): Promise<T> {
    if (this.secret === null) return await work(this.serviceKey!);
    const first = await this.currentToken();
    try {
      return await work(first.value.token);
    } catch (error) {
      if (this.options.renewTokens === false || !renewable(error)) throw error;
      if (this.cached === first) this.cached = null;
    }
    const second = await this.currentToken();
    return await work(second.value.token);
  }

  private async currentToken(): Promise<CachedToken> {
    if (this.secret === null) {
      throw new AuthError("This client uses a service key; tokens are for client secrets.", { code: "no_client_secret" });
    }
    const cached = this.cached;
    if (cached !== null && !this.stale(cached)) return cached;
    if (this.minting === null) {
      const started = this.now();
      this.minting = this.request<Token>("issue-kaggle-token", this.secret, { ...this.options.scope })
        .then(({ data: value }) => {
          if (typeof value?.token !== "string") throw new UpstreamError("issue-kaggle-token answered without a token.");
          // Relative lifetime on our own clock (immune to skew); without expires_in, from expires_at.
          const lifetimeMs = Math.max(
            0,
            typeof value.expires_in === "number" ? value.expires_in * 1000 : Date.parse(value.expires_at) - Date.now() || 0,
          );
          const fresh = { value, lifetimeMs, deadline: started + lifetimeMs };
          this.cached = fresh;
          return fresh;
        })
        .finally(() => {
          this.minting = null;
        });
    }
    return await this.minting;
  }

  private stale(token: CachedToken): boolean {
    const margin = Math.min(this.options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS, token.lifetimeMs / 5);
    return token.deadline - this.now() <= margin;
  }

  private async request<T>(
    fn: string,
    credential: string,
    body: Record<string, unknown> | undefined,
    signal?: AbortSignal,
    method: "POST" | "GET" = "POST",
    accept = "application/json",
  ): Promise<{ data: T; headers: Headers | null }> {
    const headers: Record<string, string> = { Authorization: `Bearer ${credential}`, Accept: accept };
    if (this.setApiKey) headers.apikey = credential;
    if (this.options.caller !== undefined) headers["x-caller"] = this.options.caller;
    const { data, error, response } = await this.supabase.functions.invoke(fn, {
      method,
      ...(body === undefined ? {} : { body }),
      headers,
      timeout: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(this.region === null ? {} : { region: this.region as FunctionRegion }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (error === null || error === undefined) {
      if (typeof data !== "object" || data === null) {
        throw new UpstreamError(`${fn} answered without a JSON object.`, { status: 200 });
      }
      return { data: data as T, headers: response?.headers ?? null };
    }
    throw await toGatewayError(fn, error);
  }
}

// Streams ----------------------------------------------------------------------------------------

/** The status each gateway error code is answered with (supabase/functions/_shared/errors.ts). */
const ERROR_STATUS: Record<string, number> = {
  invalid_json: 400, invalid_request: 400, empty_input: 400, unknown_model: 400, unsupported_feature: 400,
  invalid_image: 400, upstream_rejected: 400, unauthorized: 401, invalid_secret: 401, client_revoked: 401,
  token_invalid: 401, token_expired: 401, token_revoked: 401, forbidden: 403, model_not_allowed: 403,
  scope_exceeded: 403, not_found: 404, model_withdrawn: 404, method_not_allowed: 405, request_in_progress: 409, body_too_large: 413,
  image_too_large: 413, unsupported_media_type: 415, rate_limited: 429, internal_error: 500, upstream_error: 502,
  unavailable: 503, upstream_timeout: 504,
};

type StreamOpener = (forgetToken: string | null) => Promise<{ response: Response; token: string | null; requestId: string }>;

/** EveGateway.stream(): iterate it for text, or `.events()` for every event. Iterated once. */
export class GatewayStream implements AsyncIterable<string> {
  /** The whole answer, once the done event came. */
  result: GenerateResult | null = null;
  /** The request's id (known once the request was sent). */
  requestId: string | null = null;
  private pieces: string[] = [];
  private started = false;

  constructor(private readonly open: StreamOpener, private readonly onProgress?: (event: QueuedEvent) => void) {}

  /** The text streamed so far. */
  get text(): string {
    return this.pieces.join("");
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for await (const event of this.events()) {
      if (event.type === "chunk" && event.text !== "") yield event.text;
    }
  }

  async *events(): AsyncGenerator<StreamEvent> {
    if (this.started) throw new Error("A GatewayStream is iterated once: for text or for events().");
    this.started = true;
    let forget: string | null = null;
    for (;;) {
      const { response, token, requestId } = await this.open(forget);
      this.requestId = requestId;
      const rateLimit = parseRateLimit(response.headers);
      let chunks = 0;
      let retry = false;
      const reader = response.body!.getReader();
      try {
        for await (const data of sseData(reader)) {
          const type = data.type;
          if (type === "queued") {
            const queued: QueuedEvent = {
              type: "queued",
              position: typeof data.position === "number" ? data.position : null,
              expected_at: String(data.expected_at ?? ""),
              model: typeof data.model === "string" ? data.model : null,
              priority: typeof data.priority === "string" ? data.priority : null,
            };
            this.onProgress?.(queued);
            yield queued;
          } else if (type === "chunk") {
            chunks += 1;
            const text = typeof data.text === "string" ? data.text : "";
            this.pieces.push(text);
            yield { type: "chunk", text, ...(Array.isArray(data.candidates) ? { candidates: data.candidates } : {}) };
          } else if (type === "done") {
            const { type: _type, ...answer } = data;
            this.result = { ...(answer as unknown as Omit<GenerateResult, "rateLimit">), rateLimit };
            yield { type: "done", result: this.result };
            return;
          } else if (type === "error") {
            const { type: _type, ...body } = data;
            const err = (typeof body.error === "object" && body.error !== null ? body.error : {}) as { code?: unknown };
            const error = errorFrom(ERROR_STATUS[String(err.code)] ?? 502, body);
            // A token refused after waiting in line: like generate(), renew it once and ask again, as
            // long as nothing of the answer was streamed yet.
            if (token !== null && forget === null && chunks === 0 && renewable(error)) {
              forget = token;
              retry = true;
              break;
            }
            throw error;
          }
        }
      } finally {
        // Also when the caller leaves the loop early: the connection ends and the gateway stops.
        await reader.cancel().catch(() => {});
      }
      if (!retry) throw new UpstreamError("The gateway's stream ended before its done event.", { requestId });
    }
  }
}

/** The parsed `data:` of each server-sent event, as it arrives. */
async function* sseData(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  for (;;) {
    let read: ReadableStreamReadResult<Uint8Array>;
    try {
      read = await reader.read();
    } catch (error) {
      throw new UpstreamError(`The gateway's stream broke off: ${error instanceof Error ? error.message : String(error)}`);
    }
    buffer += read.done ? decoder.decode() : decoder.decode(read.value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line !== "") {
        // event:, id:, retry: and comments carry nothing the gateway uses.
        if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        continue;
      }
      if (data.length === 0) continue;
      const payload = data.join("\n");
      data = [];
      let event: unknown;
      try {
        event = JSON.parse(payload);
      } catch {
        throw new UpstreamError("The gateway's stream carried an event that is not JSON.");
      }
      if (typeof event === "object" && event !== null && typeof (event as { type?: unknown }).type === "string") {
        yield event as Record<string, unknown>;
      }
    }
    if (read.done) return;
  }
}

/** The native request body of generate() and stream(). */
function invokeBody(input: GenerateInput, options: GenerateOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: options.model ?? DEFAULT_MODEL,
    mode: options.wait === false ? "NO_WAIT" : "WAIT",
  };
  let system = options.system;
  if (options.images !== undefined && options.images.length > 0) {
    if (typeof input === "object" && "contents" in input) {
      throw new BadRequest("With contents, put the images in its parts (imagePart()).", { code: "invalid_request" });
    }
    const withImages = contentsWithImages(input, system, options.images.map(imagePart));
    body.contents = withImages.contents;
    system = withImages.system;
  } else if (typeof input === "string") {
    body.prompt = input;
  } else if ("messages" in input) {
    body.messages = input.messages;
  } else {
    body.contents = input.contents;
  }
  if (options.fallbackModels !== undefined) body.fallback_models = options.fallbackModels;
  if (system !== undefined) body.system = system;
  if (options.generationConfig !== undefined) body.generationConfig = options.generationConfig;
  if (options.includeCandidates === true) body.include_candidates = true;
  if (options.tools !== undefined) body.tools = options.tools;
  if (options.toolConfig !== undefined) body.toolConfig = options.toolConfig;
  if (options.safetySettings !== undefined) body.safetySettings = options.safetySettings;
  if (options.priority !== undefined) body.priority = options.priority;
  if (options.maxWaitMs !== undefined) body.max_wait_ms = options.maxWaitMs;
  if (options.metadata !== undefined) body.metadata = options.metadata;
  // One id for the whole call, renewals included, so the audit log correlates them.
  body.request_id = options.requestId ?? `ts-${crypto.randomUUID()}`;
  return body;
}

/** The prompt or chat as contents, with the images before the text of its last user turn. */
function contentsWithImages(
  input: string | { messages: ChatMessage[] },
  system: string | undefined,
  images: Part[],
): { contents: Content[]; system: string | undefined } {
  if (typeof input === "string") {
    return { contents: [{ role: "user", parts: [...images, ...(input === "" ? [] : [{ text: input }])] }], system };
  }
  const systems = system === undefined ? [] : [system];
  const contents: Content[] = [];
  for (const m of input.messages) {
    if (m.role === "system") systems.push(m.content);
    else contents.push({ role: m.role === "assistant" ? "model" : "user", parts: [{ text: m.content }] });
  }
  const last = contents.map((c) => c.role).lastIndexOf("user");
  if (last < 0) throw new BadRequest("images go with a user message; messages has none.", { code: "empty_input" });
  contents[last] = { role: "user", parts: [...images, ...contents[last]!.parts] };
  const joined = systems.filter((s) => s.trim() !== "").join("\n\n");
  return { contents, system: joined === "" ? undefined : joined };
}

/**
 * A Gemini inlineData part from a PNG, JPEG or WebP image's bytes; the type is read from the bytes'
 * signature, never from a name. A ready part is returned as it is.
 */
export function imagePart(image: ImageInput): Part {
  if (!(image instanceof Uint8Array) && !(image instanceof ArrayBuffer)) return image;
  const bytes = image instanceof Uint8Array ? image : new Uint8Array(image);
  const mimeType = imageType(bytes);
  if (mimeType === null) {
    throw new BadRequest("Not a PNG, JPEG or WebP image (by its first bytes); those are the types the gateway takes.", {
      code: "invalid_image",
    });
  }
  return { inlineData: { mimeType, data: toBase64(bytes) } };
}

function imageType(b: Uint8Array): string | null {
  const starts = (sig: number[], at = 0) => sig.every((x, i) => b[at + i] === x);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
  if (b.length >= 12 && starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "image/webp";
  return null;
}

/** Standard base64 without Buffer (Deno has none without node:), in slices String.fromCharCode can take. */
function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

// Helpers ----------------------------------------------------------------------------------------

/** A WebSocket stand-in for supabase-js's Realtime, which this client never opens. */
class NoRealtime {
  constructor() {
    throw new Error("Realtime is not available in the EVE gateway client; pass your own { supabase } client to use it.");
  }
}

/** The region to pin calls to, or null to let Supabase pick (blank or "any"). */
function regionOf(raw: string | undefined): string | null {
  const region = (raw ?? "").trim().toLowerCase();
  if (region === "" || region === "any") return null;
  if (!REGION.test(region)) {
    throw new GatewayError(
      `The region must be a Supabase region such as eu-central-1 or us-east-1, got ${JSON.stringify(region.slice(0, 40))}.`,
      { code: "invalid_region" },
    );
  }
  return region;
}

function env(name: string): string | undefined {
  const g = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env: { get(name: string): string | undefined } };
  };
  try {
    const value = g.process?.env?.[name] ?? g.Deno?.env.get(name);
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  } catch {
    return undefined; // Deno without --allow-env
  }
}

function findCredential(o: EveGatewayOptions): { secret: string | null; serviceKey: string | null; source: string } {
  if (o.clientSecret !== undefined && o.serviceKey !== undefined) {
    throw new AuthError("Pass clientSecret or serviceKey, not both.", { code: "no_credential" });
  }
  if (o.clientSecret !== undefined) return { secret: checkSecret(o.clientSecret, "option"), serviceKey: null, source: "clientSecret option" };
  if (o.serviceKey !== undefined && o.serviceKey.trim() !== "") {
    return { secret: null, serviceKey: o.serviceKey.trim(), source: "serviceKey option" };
  }
  const secret = env(CLIENT_SECRET_ENV);
  if (secret !== undefined) return { secret: checkSecret(secret, `env ${CLIENT_SECRET_ENV}`), serviceKey: null, source: `env ${CLIENT_SECRET_ENV}` };
  const key = env(SERVICE_KEY_ENV);
  if (key !== undefined) return { secret: null, serviceKey: key, source: `env ${SERVICE_KEY_ENV}` };
  throw new AuthError(
    `No credential: set ${CLIENT_SECRET_ENV} (a client secret) or ${SERVICE_KEY_ENV} (trusted servers), or pass clientSecret/serviceKey.`,
    { code: "no_credential" },
  );
}

function checkSecret(secret: string, where: string): string {
  const s = secret.trim();
  if (!s.startsWith(CLIENT_SECRET_PREFIX)) {
    throw new AuthError(`The client secret from the ${where} does not start with ${CLIENT_SECRET_PREFIX}.`, { code: "invalid_secret" });
  }
  return s;
}

function renewable(error: unknown): boolean {
  if (error instanceof RateLimited) return error.limit === "token_budget";
  return error instanceof AuthError && error.code !== null && RENEWABLE.has(error.code);
}

async function toGatewayError(fn: string, error: unknown): Promise<GatewayError> {
  if (error instanceof FunctionsHttpError) {
    const response = error.context as Response;
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = await response.json();
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      // not JSON: handled below by status
    }
    return errorFrom(response.status, body, response.headers);
  }
  if (error instanceof FunctionsRelayError) {
    return new UpstreamError(`The Supabase relay failed to reach ${fn}.`, { status: (error.context as Response)?.status ?? null });
  }
  if (error instanceof FunctionsFetchError) {
    const cause = (error.context as { message?: string } | undefined)?.message ?? "network error";
    return new UpstreamError(`Cannot reach ${fn}: ${cause}`);
  }
  return new UpstreamError(`Calling ${fn} failed: ${error instanceof Error ? error.message : String(error)}`);
}

export function errorFrom(status: number, body: Record<string, unknown>, headers?: Headers): GatewayError {
  const err = (typeof body.error === "object" && body.error !== null ? body.error : {}) as { code?: unknown; message?: unknown };
  const code = typeof err.code === "string" ? err.code : null;
  const message = typeof err.message === "string" ? err.message : `The gateway answered HTTP ${status}.`;
  const requestId = typeof body.request_id === "string" ? body.request_id : headers?.get("x-request-id") ?? null;
  const init = { status, code, requestId, body, rateLimit: parseRateLimit(headers ?? null) };
  if (status === 429) {
    const ms = body.retry_after_ms;
    const header = headers?.get("retry-after");
    const retryAfter = typeof ms === "number" ? Math.max(0, ms / 1000) : header != null && header !== "" && !Number.isNaN(Number(header)) ? Number(header) : null;
    return new RateLimited(message, { ...init, retryAfter, limit: typeof body.limit === "string" ? body.limit : null });
  }
  if (status === 401 || status === 403) return new AuthError(message, init);
  if (status >= 400 && status < 500) return new BadRequest(message, init);
  return new UpstreamError(message, init);
}

/** The x-ratelimit-* headers of an answer, or null when it carries none. */
export function parseRateLimit(headers: Headers | null): RateLimit | null {
  if (headers === null) return null;
  const window = (suffix: string): RateLimitWindow | null => {
    const limit = Number(headers.get(`x-ratelimit-limit-${suffix}`) ?? NaN);
    const remaining = Number(headers.get(`x-ratelimit-remaining-${suffix}`) ?? NaN);
    if (!Number.isFinite(limit) || !Number.isFinite(remaining)) return null;
    return { limit, remaining, resetMs: parseDuration(headers.get(`x-ratelimit-reset-${suffix}`) ?? "") };
  };
  const rateLimit = { requests: window("requests"), tokens: window("tokens"), requestsDay: window("requests-day") };
  return rateLimit.requests === null && rateLimit.tokens === null && rateLimit.requestsDay === null ? null : rateLimit;
}

/** A reset as OpenAI writes it (Go's duration format: "12ms", "59.5s", "6m0s", "1h2m3.5s") in ms; null if unreadable. */
export function parseDuration(text: string): number | null {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, "us": 0.001, "µs": 0.001, ns: 0.000001 };
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  let total = 0;
  let rest = trimmed;
  while (rest !== "") {
    const m = /^(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/.exec(rest);
    if (m === null) return null;
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return trimmed === "" ? null : Math.round(total);
}

function redact(text: string): string {
  return text.replace(CREDENTIAL, "[redacted]");
}
