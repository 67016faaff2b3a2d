// Google's Gemini REST over plain `fetch` (no SDK: one POST needs none of google-auth-library, ws or
// gaxios, and the function boots faster without them). Four calls, each with a deadline (../../upstream/call.ts),
// none of which throws for a failed call: each returns Google's answer or a classified error
// (errors.ts) whose message is sanitized of the key.
//   generate     generateContent: the whole answer, read (text, usage) and kept as Google sent it
//   stream       streamGenerateContent?alt=sse: resolves when Google's headers arrive; its chunks are
//                passed on as they come, and a stream Google cuts ends with a StreamCut error
//   countTokens  Google's exact count of an input (free, with its own quota), for the whole request
//   getModel     models.get: whether a key sees a model (confirms a 404 before the model is marked withdrawn)
// Retries are the attempt loop's job.
import { classifyGoogleHttpError } from "./errors.ts";
import { isEmptyResponse, responseFinishReason, responseText, responseUsage } from "../../upstream/answer.ts";
import { sseData } from "../../upstream/sse.ts";
import type { UpstreamAnswer, UpstreamRequest } from "../../upstream/shapes.ts";
import {
  type CountTokensOutcome,
  type GenerateCall,
  type GenerateOutcome,
  StreamCut,
  type StreamOutcome,
  type UpstreamClient,
  upstreamFailure,
} from "../../upstream/port.ts";
import {
  type CallGuard,
  callGuard,
  type Dialect,
  failureOf,
  fetchModel,
  openStream,
  readJsonAnswer,
  thrownBy,
} from "../../upstream/call.ts";

/** Google's answers, read by its own rules (errors.ts): the dialect of every call to Google. */
export const GOOGLE_DIALECT: Dialect = {
  upstream: "Google",
  classifyHttp: (status, body, _headers, options) => classifyGoogleHttpError(status, body, options),
};

export const DEFAULT_GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com";
// Gemma and Google's docs for the Gemini API use v1beta (v1 lacks systemInstruction and JSON schema).
export const GOOGLE_API_VERSION = "v1beta";

export interface GoogleClientOptions {
  /** Google's endpoint or a compatible server (the offline simulator); no trailing path. */
  baseUrl?: string;
  apiVersion?: string;
}

/** Google's client: the port's calls, the exact token count included. */
export type GoogleClient = Required<UpstreamClient>;

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

/** The generateContent body of a request (everything but the model, which is in the path). */
export function generateContentBody(request: UpstreamRequest): Record<string, unknown> {
  return {
    contents: request.contents,
    ...(request.systemInstruction === undefined
      ? {}
      : { systemInstruction: { parts: [{ text: request.systemInstruction }] } }),
    ...(Object.keys(request.generationConfig).length === 0 ? {} : { generationConfig: request.generationConfig }),
    ...(request.tools === undefined ? {} : { tools: request.tools }),
    ...(request.toolConfig === undefined ? {} : { toolConfig: request.toolConfig }),
    ...(request.safetySettings === undefined ? {} : { safetySettings: request.safetySettings }),
    ...(request.serviceTier === undefined ? {} : { serviceTier: request.serviceTier }),
  };
}

/** The countTokens body: the whole generateContentRequest, so the system instruction is counted too. */
export function countTokensBody(request: UpstreamRequest): Record<string, unknown> {
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
        error: failureOf(
          GOOGLE_DIALECT,
          upstreamFailure("malformed", "countTokens answered without totalTokens.", { httpStatus: 200 }),
        ),
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
    const response = read.body as UpstreamAnswer;
    if (isEmptyResponse(response)) {
      return {
        ok: false,
        latencyMs,
        error: failureOf(
          GOOGLE_DIALECT,
          upstreamFailure("malformed", "Google answered without candidates or promptFeedback.", {
            httpStatus: 200,
          }),
        ),
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
): AsyncGenerator<UpstreamAnswer, void, undefined> {
  const secrets = [call.apiKey];
  try {
    for await (const data of sseData(body)) {
      let chunk: unknown;
      try {
        chunk = JSON.parse(data);
      } catch {
        throw new StreamCut(
          failureOf(
            GOOGLE_DIALECT,
            upstreamFailure("malformed", "Google sent a stream event that is not JSON.", {
              httpStatus: 200,
              secrets,
            }),
          ),
        );
      }
      if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk)) {
        throw new StreamCut(
          failureOf(
            GOOGLE_DIALECT,
            upstreamFailure("malformed", "Google sent a stream event that is not an object.", {
              httpStatus: 200,
              secrets,
            }),
          ),
        );
      }
      const error = (chunk as { error?: { code?: unknown } }).error;
      if (error !== undefined) {
        const status = typeof error.code === "number" ? error.code : 500;
        throw new StreamCut(classifyGoogleHttpError(status, chunk, { secrets, model: call.request.model }));
      }
      yield chunk as UpstreamAnswer;
    }
  } catch (error) {
    if (error instanceof StreamCut) throw error;
    throw new StreamCut(thrownBy(GOOGLE_DIALECT, error, guard, call));
  } finally {
    guard.done();
  }
}
