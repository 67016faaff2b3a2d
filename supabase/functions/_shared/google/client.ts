// One generateContent call through @google/genai, with a deadline, that never throws for a failed
// call: it returns the text and usage, or a classified error (errors.ts) whose message is
// sanitized of the key. Retries are the attempt loop's job, so the SDK's own retry stays off
// (it is off unless httpOptions.retryOptions is set).
// countTokens (Google's exact count of an input; free, with its own quota) is a plain fetch with the
// same discipline: the SDK's countTokens drops systemInstruction on the Gemini API, so it would
// count a different input than the one generateContent is sent.
import { GoogleGenAI } from "@google/genai";
import type { GoogleRequest } from "./types.ts";
import { type ClassifiedGoogleError, classifyGoogleFailure, classifyGoogleHttpError } from "./errors.ts";
import { sanitizeError } from "../sanitize.ts";

export const DEFAULT_GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com";
// Newer @google/genai versions default to v1; Gemma and the research notes (and the simulator) use v1beta.
export const GOOGLE_API_VERSION = "v1beta";

export interface Usage {
  promptTokens: number;
  candidatesTokens: number;
  /** Gemini 2.5 "thinking" tokens: billed as output, not part of candidatesTokens. */
  thoughtsTokens: number;
  totalTokens: number;
}

export type GenerateOutcome =
  | {
    ok: true;
    text: string;
    finishReason: string | null;
    /** null when Google sent no usageMetadata (the caller then keeps its estimate). */
    usage: Usage | null;
    candidates: unknown[];
    modelVersion: string | null;
    latencyMs: number;
  }
  | { ok: false; error: ClassifiedGoogleError; latencyMs: number };

export interface GenerateCall {
  apiKey: string;
  request: GoogleRequest;
  /** Deadline of this attempt; on expiry the outcome is a `timeout` failure. */
  timeoutMs: number;
  /** Caller-side cancellation (e.g. the function's wall-clock budget); gives an `aborted` failure. */
  signal?: AbortSignal;
}

export type CountTokensOutcome =
  | { ok: true; totalTokens: number; latencyMs: number }
  | { ok: false; error: ClassifiedGoogleError; latencyMs: number };

export interface GoogleClient {
  generate(call: GenerateCall): Promise<GenerateOutcome>;
  /** Google's count of the input tokens `call.request` would be billed for (contents + system instruction). */
  countTokens(call: GenerateCall): Promise<CountTokensOutcome>;
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
  const baseUrl = options.baseUrl ?? DEFAULT_GOOGLE_BASE_URL;
  const apiVersion = options.apiVersion ?? GOOGLE_API_VERSION;
  // One SDK client per key: keys are few and the client holds no connection state of its own.
  const clients = new Map<string, GoogleGenAI>();
  const clientFor = (apiKey: string): GoogleGenAI => {
    let client = clients.get(apiKey);
    if (client === undefined) {
      // vertexai: false so that GOOGLE_GENAI_USE_VERTEXAI in the environment cannot redirect calls.
      client = new GoogleGenAI({ apiKey, vertexai: false, httpOptions: { baseUrl, apiVersion } });
      clients.set(apiKey, client);
    }
    return client;
  };
  return {
    generate: (call) => generate(clientFor(call.apiKey), call),
    countTokens: (call) => countTokens(`${baseUrl.replace(/\/+$/, "")}/${apiVersion}`, call),
  };
}

/** The countTokens body: the whole generateContentRequest, so the system instruction is counted too. */
export function countTokensBody(request: GoogleRequest): Record<string, unknown> {
  return {
    generateContentRequest: {
      model: `models/${request.model}`,
      contents: request.contents,
      ...(request.systemInstruction === undefined
        ? {}
        : { systemInstruction: { parts: [{ text: request.systemInstruction }] } }),
    },
  };
}

async function countTokens(apiBase: string, call: GenerateCall): Promise<CountTokensOutcome> {
  const started = Date.now();
  const secrets = [call.apiKey];
  const guard = callGuard(call.timeoutMs, call.signal);
  try {
    const response = await guard.recordingFetch(
      `${apiBase}/models/${encodeURIComponent(call.request.model)}:countTokens`,
      {
        method: "POST",
        headers: { "content-type": "application/json", "x-goog-api-key": call.apiKey },
        body: JSON.stringify(countTokensBody(call.request)),
        signal: guard.signal,
      },
    );
    const text = await response.text();
    const latencyMs = Date.now() - started;
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: an error is classified on its status and raw text; a 200 is malformed.
    }
    if (!response.ok) return { ok: false, latencyMs, error: classifyGoogleHttpError(response.status, body, { secrets }) };
    const total = (body as { totalTokens?: unknown } | null)?.totalTokens;
    if (typeof total !== "number" || !Number.isInteger(total) || total < 0) {
      return {
        ok: false,
        latencyMs,
        error: classifyGoogleFailure("malformed", "countTokens answered without totalTokens.", {
          httpStatus: response.status,
        }),
      };
    }
    return { ok: true, totalTokens: total, latencyMs };
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: classifyThrown(error, thrownContext(guard, call)) };
  } finally {
    guard.done();
  }
}

async function generate(client: GoogleGenAI, call: GenerateCall): Promise<GenerateOutcome> {
  const started = Date.now();
  const guard = callGuard(call.timeoutMs, call.signal);
  const { signal, recordingFetch } = guard;

  const { request } = call;
  try {
    const response = await client.models.generateContent({
      model: request.model,
      contents: request.contents,
      config: {
        ...request.generationConfig,
        ...(request.systemInstruction === undefined ? {} : { systemInstruction: request.systemInstruction }),
        abortSignal: signal,
        httpOptions: { fetch: recordingFetch },
      },
    });
    const latencyMs = Date.now() - started;
    const candidates: unknown[] = response.candidates ?? [];
    const first = response.candidates?.[0];
    const blockReason = response.promptFeedback?.blockReason ?? null;
    if (first === undefined && blockReason === null) {
      return {
        ok: false,
        latencyMs,
        error: classifyGoogleFailure("malformed", "Google answered without candidates or promptFeedback.", {
          httpStatus: guard.httpStatus() ?? 200,
        }),
      };
    }
    const text = (first?.content?.parts ?? [])
      .filter((p) => typeof p.text === "string" && p.thought !== true)
      .map((p) => p.text)
      .join("");
    const u = response.usageMetadata;
    const usage: Usage | null = u === undefined ? null : {
      promptTokens: u.promptTokenCount ?? 0,
      candidatesTokens: u.candidatesTokenCount ?? 0,
      thoughtsTokens: u.thoughtsTokenCount ?? 0,
      totalTokens: u.totalTokenCount ?? 0,
    };
    return {
      ok: true,
      text,
      finishReason: first?.finishReason ?? (blockReason === null ? null : `BLOCKED_${blockReason}`),
      usage,
      candidates,
      modelVersion: response.modelVersion ?? null,
      latencyMs,
    };
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: classifyThrown(error, thrownContext(guard, call)) };
  } finally {
    guard.done();
  }
}

/** What is known about a call that threw: whose deadline ran out, the status seen, what to redact. */
function thrownContext(guard: ReturnType<typeof callGuard>, call: GenerateCall): ThrownContext {
  return {
    timedOut: guard.timedOut(),
    callerAborted: call.signal?.aborted === true,
    httpStatus: guard.httpStatus(),
    secrets: [call.apiKey],
    timeoutMs: call.timeoutMs,
  };
}

interface ThrownContext {
  timedOut: boolean;
  callerAborted: boolean;
  httpStatus: number | undefined;
  secrets: string[];
  timeoutMs: number;
}

/**
 * What every call to Google through the SDK needs: a deadline (aborting with the caller's own
 * signal too, and remembering that it fired) and a fetch that records the HTTP status, which the SDK
 * loses when an error body is not valid JSON. Call done() when the call is over.
 */
export function callGuard(timeoutMs: number, callerSignal?: AbortSignal): {
  signal: AbortSignal;
  recordingFetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  httpStatus: () => number | undefined;
  timedOut: () => boolean;
  done: () => void;
} {
  const deadline = new AbortController();
  let fired = false;
  let status: number | undefined;
  const timer = setTimeout(() => {
    fired = true;
    deadline.abort();
  }, timeoutMs);
  return {
    signal: callerSignal === undefined ? deadline.signal : AbortSignal.any([deadline.signal, callerSignal]),
    recordingFetch: async (input, init) => {
      const response = await fetch(input, init);
      status = response.status;
      return response;
    },
    httpStatus: () => status,
    timedOut: () => fired,
    done: () => clearTimeout(timer),
  };
}

/** Maps whatever the SDK or fetch threw to a classified error. */
export function classifyThrown(error: unknown, ctx: ThrownContext): ClassifiedGoogleError {
  const { secrets } = ctx;
  // Checked first, by our own flags: an aborted fetch rejects with whatever reason the signal
  // carries (AbortError, TimeoutError or any value), so the error itself cannot tell.
  if (ctx.timedOut) {
    return classifyGoogleFailure("timeout", `Google did not answer within ${ctx.timeoutMs} ms.`, { secrets });
  }
  if (ctx.callerAborted || isAbort(error)) {
    return classifyGoogleFailure("aborted", "The call to Google was cancelled.", { secrets });
  }
  // ApiError: status plus the error body serialized as JSON in the message.
  const status = apiErrorStatus(error);
  if (status !== undefined) {
    const message = (error as Error).message;
    let body: unknown = message;
    try {
      body = JSON.parse(message);
    } catch {
      // Not JSON: classify on the status and the raw text.
    }
    return classifyGoogleHttpError(status, body, { secrets });
  }
  if (error instanceof SyntaxError) {
    // The body (of an answer or of an error) was not JSON. Keep the status when we saw one.
    if (ctx.httpStatus !== undefined && ctx.httpStatus >= 400) {
      return classifyGoogleHttpError(ctx.httpStatus, `Malformed error body: ${sanitizeError(error, { secrets })}`, {
        secrets,
      });
    }
    return classifyGoogleFailure("malformed", sanitizeError(error, { secrets }), {
      secrets,
      httpStatus: ctx.httpStatus,
    });
  }
  return classifyGoogleFailure("network", sanitizeError(error, { secrets }), { secrets });
}

function apiErrorStatus(error: unknown): number | undefined {
  if (!(error instanceof Error) || error.name !== "ApiError") return undefined;
  const status = (error as Error & { status?: unknown }).status;
  return typeof status === "number" ? status : undefined;
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
}
