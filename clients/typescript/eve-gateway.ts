// EVE LLM Gateway client for Node and Deno: a thin typed wrapper over @supabase/supabase-js
// `functions.invoke`, with the same behaviour and errors as the Python client (clients/python).
//
//   import { EveGateway } from "./eve-gateway.ts";
//   const gw = new EveGateway();                          // credential and URL from the environment
//   const r = await gw.generate("Summarise: ...", { model: "gemma-3-27b", generationConfig: { temperature: 0.2 } });
//   console.log(r.text, r.usage.total_tokens, r.rateLimit?.requests?.remaining);
//   const q = await gw.quota();                         // what is left per model, the queue, your budgets
//
// Credentials, first found wins: options.clientSecret / options.serviceKey, env EVE_GATEWAY_CLIENT_SECRET
// (a Kaggle client secret: tokens are minted at issue-kaggle-token, cached, renewed before expiry and
// once more when llm-invoke says a token expired, was revoked, is unknown or is used up), env
// SUPABASE_SERVICE_ROLE_KEY (a trusted server: llm-invoke is called with it directly).
// URL: options.url, the given supabase client's, env EVE_GATEWAY_URL, env SUPABASE_URL.
//
// Deno: map "@supabase/supabase-js" to "npm:@supabase/supabase-js@2" in your import map (deno.json).
import {
  createClient,
  FunctionsFetchError,
  FunctionsHttpError,
  FunctionsRelayError,
  type SupabaseClient,
} from "@supabase/supabase-js";

export const CLIENT_SECRET_ENV = "EVE_GATEWAY_CLIENT_SECRET";
export const SERVICE_KEY_ENV = "SUPABASE_SERVICE_ROLE_KEY";
export const DEFAULT_MODEL = "gemma-3-27b";
/** llm-invoke may wait up to 60 s for capacity, then try up to 3 times within ~140 s. */
export const DEFAULT_TIMEOUT_MS = 180_000;
/** Renew a token this long before it expires (at most a fifth of its lifetime). */
export const DEFAULT_REFRESH_MARGIN_MS = 300_000;
const CLIENT_SECRET_PREFIX = "evegw_cs_";
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
/** 429. `retryAfter` in seconds (null when waiting cannot help); `limit`: rpm, tpm, rpd, cooldown,
 * upstream, pace, caller_budget, token_budget, client_budget or mint_rate. */
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
  /** Narrows the tokens this client asks for. */
  scope?: Scope;
  timeoutMs?: number;
  refreshMarginMs?: number;
  /** Renew once when a token expired, was revoked, is unknown or is used up (default true). */
  renewTokens?: boolean;
  /** Clock in ms, for tests. */
  now?: () => number;
}

export interface GenerationConfig {
  temperature?: number;
  maxOutputTokens?: number;
  topP?: number;
  topK?: number;
  stopSequences?: string[];
  responseMimeType?: string;
}

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
  maxWaitMs?: number;
  requestId?: string;
  metadata?: Record<string, unknown>;
  signal?: AbortSignal;
}

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
  /** The quota of the quota group that served, as of this request's admission (x-ratelimit-* headers). */
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
}

export interface ModelQuota {
  model: string;
  /** Per quota group, after the safety margin. */
  limits: { rpm: number | null; tpm: number | null; rpd: number | null };
  quota_groups: number;
  cooling_down: number;
  /** Summed over the quota groups; null where the model has no such limit. */
  minute: { requests_left: number | null; requests_reset_ms: number | null; tokens_left: number | null; tokens_reset_ms: number | null };
  day: { requests_left: number | null; resets_at: string | null; reset_ms: number | null };
  /** Requests waiting now, per priority class. */
  queue: Record<string, number>;
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
  private cached: CachedToken | null = null;
  private minting: Promise<CachedToken> | null = null;

  constructor(options: EveGatewayOptions = {}) {
    this.options = options;
    this.now = options.now ?? Date.now;
    const found = findCredential(options);
    this.secret = found.secret;
    this.serviceKey = found.serviceKey;
    this.credentialSource = found.source;
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

  async generate(input: string | { messages: ChatMessage[] }, options: GenerateOptions = {}): Promise<GenerateResult> {
    const body: Record<string, unknown> = {
      model: options.model ?? DEFAULT_MODEL,
      mode: options.wait === false ? "NO_WAIT" : "WAIT",
      ...(typeof input === "string" ? { prompt: input } : { messages: input.messages }),
      request_id: options.requestId ?? `ts-${crypto.randomUUID()}`,
    };
    if (options.fallbackModels !== undefined) body.fallback_models = options.fallbackModels;
    if (options.system !== undefined) body.system = options.system;
    if (options.generationConfig !== undefined) body.generationConfig = options.generationConfig;
    if (options.maxWaitMs !== undefined) body.max_wait_ms = options.maxWaitMs;
    if (options.metadata !== undefined) body.metadata = options.metadata;

    const { data, headers } = await this.withCredential((credential) =>
      this.request<Omit<GenerateResult, "rateLimit">>("llm-invoke", credential, body, options.signal)
    );
    return { ...data, rateLimit: parseRateLimit(headers) };
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
  ): Promise<{ data: T; headers: Headers | null }> {
    const headers: Record<string, string> = { Authorization: `Bearer ${credential}` };
    if (this.setApiKey) headers.apikey = credential;
    if (this.options.caller !== undefined) headers["x-caller"] = this.options.caller;
    const { data, error, response } = await this.supabase.functions.invoke(fn, {
      method,
      ...(body === undefined ? {} : { body }),
      headers,
      timeout: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
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

// Helpers ----------------------------------------------------------------------------------------

/** A WebSocket stand-in for supabase-js's Realtime, which this client never opens. */
class NoRealtime {
  constructor() {
    throw new Error("Realtime is not available in the EVE gateway client; pass your own { supabase } client to use it.");
  }
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
