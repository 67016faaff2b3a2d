// Google's Gemini REST over plain `fetch` (no SDK: one POST needs none of google-auth-library, ws or
// gaxios, and the function boots faster without them). Four calls, each with a deadline (../upstream/call.ts),
// none of which throws for a failed call: each returns Google's answer or a classified error
// (errors.ts) whose message is sanitized of the key.
//   generate     generateContent: the whole answer, read (text, usage) and kept as Google sent it
//   stream       streamGenerateContent?alt=sse: resolves when Google's headers arrive; its chunks are
//                passed on as they come, and a stream Google cuts ends with a StreamCut error
//   countTokens  Google's exact count of an input (free, with its own quota), for the whole request
//   getModel     models.get: whether a key sees a model (confirms a 404 before the model is marked withdrawn)
// Retries are the attempt loop's job.
import { type ClassifiedGoogleError, classifyGoogleFailure, classifyGoogleHttpError } from "./errors.ts";
import { isEmptyResponse, responseFinishReason, responseText, responseUsage, type Usage } from "./response.ts";
import { sseData } from "./sse.ts";
import { generateContentBody, type GoogleRequest, type GoogleResponse } from "./types.ts";
import {
  type CallGuard,
  callGuard,
  type Dialect,
  fetchModel,
  type ModelCall,
  type ModelOutcome,
  openStream,
  readJsonAnswer,
  thrownBy,
} from "../upstream/call.ts";

/** Google's answers, read by its own rules (errors.ts): the dialect of every call to Google. */
export const GOOGLE_DIALECT: Dialect = {
  classifyHttp: (status, body, _headers, options) => classifyGoogleHttpError(status, body, options),
};

export type { Usage } from "./response.ts";

export const DEFAULT_GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com";
// Gemma and Google's docs for the Gemini API use v1beta (v1 lacks systemInstruction and JSON schema).
export const GOOGLE_API_VERSION = "v1beta";

export type GenerateOutcome =
  | {
    ok: true;
    text: string;
    finishReason: string | null;
    /** null when Google sent no usageMetadata (the caller then keeps its estimate). */
    usage: Usage | null;
    candidates: unknown[];
    modelVersion: string | null;
    /** Google's answer as it came, for callers that speak Google's shape. */
    response: GoogleResponse;
    latencyMs: number;
    /** The tier Google says served (its x-gemini-service-tier header); null: not said. */
    servedTier?: string | null;
    /** OpenAI's own chat.completion, when OpenAI answered (its route returns it as it came). */
    openai?: Record<string, unknown>;
    /** What the provider says is left of the group's limits, where it says so (OpenAI). */
    room?: ProviderRoom | null;
  }
  | { ok: false; error: ClassifiedGoogleError; latencyMs: number };

export type StreamOutcome =
  | {
    ok: true;
    /**
     * Google's chunks as they arrive. Ends after the last one, or throws StreamCut when the stream
     * breaks off (network, deadline, an error event, a chunk that is not JSON). Stopping early
     * (`return()`) aborts the call to Google.
     */
    chunks: AsyncGenerator<GoogleResponse, void, undefined>;
    /** Time to Google's response headers. */
    latencyMs: number;
    /** The tier Google says served (its x-gemini-service-tier header); null: not said. */
    servedTier?: string | null;
    /** What the provider says is left of the group's limits, where it says so (OpenAI). */
    room?: ProviderRoom | null;
  }
  | { ok: false; error: ClassifiedGoogleError; latencyMs: number };

/**
 * What a provider's answer says is left of its limits for the key's group, counting every user of it
 * (OpenAI's x-ratelimit-remaining-* and -reset-*): requests and tokens left (null: not said), and in
 * how many ms its counts are full again.
 */
export interface ProviderRoom {
  requests: number | null;
  tokens: number | null;
  resetMs: number;
}

/** A stream that broke off after it started: what went wrong, classified like any failed call. */
export class StreamCut extends Error {
  constructor(readonly error: ClassifiedGoogleError) {
    super(error.message);
    this.name = "StreamCut";
  }
}

export interface GenerateCall {
  apiKey: string;
  request: GoogleRequest;
  /** Deadline of this attempt (a stream: until Google's headers); on expiry the outcome is a `timeout` failure. */
  timeoutMs: number;
  /** A stream's deadline for all of it, counted from the call (default: timeoutMs). */
  streamTimeoutMs?: number;
  /** Caller-side cancellation (e.g. the caller went away); gives an `aborted` failure. */
  signal?: AbortSignal;
}

export type CountTokensOutcome =
  | { ok: true; totalTokens: number; latencyMs: number }
  | { ok: false; error: ClassifiedGoogleError; latencyMs: number };

export interface GoogleClient {
  generate(call: GenerateCall): Promise<GenerateOutcome>;
  stream(call: GenerateCall): Promise<StreamOutcome>;
  /** Google's count of the input tokens `call.request` would be billed for (contents + system instruction). */
  countTokens(call: GenerateCall): Promise<CountTokensOutcome>;
  /** models.get for one model on one key: ok when the key sees it; a 404 naming it is model_withdrawn. */
  getModel(call: ModelCall): Promise<ModelOutcome>;
}

export interface GoogleClientOptions {
  /** Google's endpoint or a compatible server (the offline simulator); no trailing path. */
  baseUrl?: string;
  apiVersion?: string;
}

/** Base URL from GOOGLE_AI_BASE_URL, else Google's. */
export function googleBaseUrlFromEnv(get: (name: string) => string | undefined): string {
  const value = get("GOOGLE_AI_BASE_URL")?.trim();
  return value === undefined || value === "" ? DEFAULT_GOOGLE_BASE_URL : value;
}

export function createGoogleClient(options: GoogleClientOptions = {}): GoogleClient {
  const apiBase = `${(options.baseUrl ?? DEFAULT_GOOGLE_BASE_URL).replace(/\/+$/, "")}/${
    options.apiVersion ?? GOOGLE_API_VERSION
  }`;
  const url = (model: string, method: string) => `${apiBase}/models/${encodeURIComponent(model)}:${method}`;
  return {
    generate: (call) => generate(url(call.request.model, "generateContent"), call),
    stream: (call) => stream(url(call.request.model, "streamGenerateContent") + "?alt=sse", call),
    countTokens: (call) => countTokens(url(call.request.model, "countTokens"), call),
    getModel: (call) =>
      fetchModel(
        `${apiBase}/models/${encodeURIComponent(call.model)}`,
        { "x-goog-api-key": call.apiKey },
        call,
        GOOGLE_DIALECT,
      ),
  };
}

/** The countTokens body: the whole generateContentRequest, so the system instruction is counted too. */
export function countTokensBody(request: GoogleRequest): Record<string, unknown> {
  return { generateContentRequest: { model: `models/${request.model}`, ...generateContentBody(request) } };
}

function post(url: string, call: GenerateCall, body: unknown, signal: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-goog-api-key": call.apiKey },
    body: JSON.stringify(body),
    signal,
  });
}

async function countTokens(url: string, call: GenerateCall): Promise<CountTokensOutcome> {
  const started = Date.now();
  const guard = callGuard(call.timeoutMs, call.signal);
  try {
    const read = await readJsonAnswer(
      await post(url, call, countTokensBody(call.request), guard.signal),
      GOOGLE_DIALECT,
      [call.apiKey],
      call.request.model,
    );
    const latencyMs = Date.now() - started;
    if (!read.ok) return { ok: false, latencyMs, error: read.error };
    const total = (read.body as { totalTokens?: unknown }).totalTokens;
    if (typeof total !== "number" || !Number.isInteger(total) || total < 0) {
      return {
        ok: false,
        latencyMs,
        error: classifyGoogleFailure("malformed", "countTokens answered without totalTokens.", { httpStatus: 200 }),
      };
    }
    return { ok: true, totalTokens: total, latencyMs };
  } catch (error) {
    return {
      ok: false,
      latencyMs: Date.now() - started,
      error: thrownBy(GOOGLE_DIALECT, error, guard, call),
    };
  } finally {
    guard.done();
  }
}

async function generate(url: string, call: GenerateCall): Promise<GenerateOutcome> {
  const started = Date.now();
  const guard = callGuard(call.timeoutMs, call.signal);
  try {
    const answer = await post(url, call, generateContentBody(call.request), guard.signal);
    const servedTier = servedTierOf(answer);
    const read = await readJsonAnswer(answer, GOOGLE_DIALECT, [call.apiKey], call.request.model);
    const latencyMs = Date.now() - started;
    if (!read.ok) return { ok: false, latencyMs, error: read.error };
    const response = read.body as GoogleResponse;
    if (isEmptyResponse(response)) {
      return {
        ok: false,
        latencyMs,
        error: classifyGoogleFailure("malformed", "Google answered without candidates or promptFeedback.", {
          httpStatus: 200,
        }),
      };
    }
    return {
      ok: true,
      text: responseText(response),
      finishReason: responseFinishReason(response),
      usage: responseUsage(response),
      candidates: Array.isArray(response.candidates) ? response.candidates : [],
      modelVersion: typeof response.modelVersion === "string" ? response.modelVersion : null,
      response,
      latencyMs,
      servedTier,
    };
  } catch (error) {
    return {
      ok: false,
      latencyMs: Date.now() - started,
      error: thrownBy(GOOGLE_DIALECT, error, guard, call),
    };
  } finally {
    guard.done();
  }
}

async function stream(url: string, call: GenerateCall): Promise<StreamOutcome> {
  const opened = await openStream(
    url,
    {
      headers: { "content-type": "application/json", "x-goog-api-key": call.apiKey },
      body: generateContentBody(call.request),
    },
    call,
    GOOGLE_DIALECT,
  );
  if (!opened.ok) return opened;
  const { response, guard, latencyMs } = opened;
  return { ok: true, latencyMs, servedTier: servedTierOf(response), chunks: streamChunks(response.body, guard, call) };
}

/** Google's x-gemini-service-tier header (flex, standard, priority), length-capped; null when absent. */
export function servedTierOf(response: Response): string | null {
  const value = response.headers.get("x-gemini-service-tier")?.trim().toLowerCase();
  return value === undefined || value === "" ? null : value.slice(0, 20);
}

/** Google's SSE events as answers; anything that breaks the stream off becomes a StreamCut. */
async function* streamChunks(
  body: ReadableStream<Uint8Array>,
  guard: CallGuard,
  call: GenerateCall,
): AsyncGenerator<GoogleResponse, void, undefined> {
  const secrets = [call.apiKey];
  try {
    for await (const data of sseData(body)) {
      let chunk: unknown;
      try {
        chunk = JSON.parse(data);
      } catch {
        throw new StreamCut(classifyGoogleFailure("malformed", "Google sent a stream event that is not JSON.", {
          httpStatus: 200,
          secrets,
        }));
      }
      if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk)) {
        throw new StreamCut(classifyGoogleFailure("malformed", "Google sent a stream event that is not an object.", {
          httpStatus: 200,
          secrets,
        }));
      }
      const error = (chunk as { error?: { code?: unknown } }).error;
      if (error !== undefined) {
        const status = typeof error.code === "number" ? error.code : 500;
        throw new StreamCut(classifyGoogleHttpError(status, chunk, { secrets, model: call.request.model }));
      }
      yield chunk as GoogleResponse;
    }
  } catch (error) {
    if (error instanceof StreamCut) throw error;
    throw new StreamCut(thrownBy(GOOGLE_DIALECT, error, guard, call));
  } finally {
    guard.done();
  }
}
