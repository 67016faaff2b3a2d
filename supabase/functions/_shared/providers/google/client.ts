// Google's Gemini REST over plain `fetch` (no SDK: one POST needs none of google-auth-library, ws or
// gaxios, and the function boots faster without them). Four calls, each with a deadline (../../upstream/call.ts),
// none of which throws for a failed call: each returns Google's answer or a classified error
// (errors.ts) whose message is sanitized of the key.
//   generate     generateContent: the whole answer, in the hub's words (answer.ts) and as Google sent it
//   stream       streamGenerateContent?alt=sse: resolves when Google's headers arrive; its chunks are
//                passed on as they come, and a stream Google cuts ends with a StreamCut error
//   countTokens  Google's exact count of an input (free, with its own quota), for the whole request
//   getModel     models.get: whether a key sees a model (confirms a 404 before the model is marked withdrawn)
// Retries are the attempt loop's job.
import { embed } from "./embeddings.ts";
import { classifyGoogleHttpError } from "./errors.ts";
import { foldGeminiChunks, type GeminiAnswer, GOOGLE_DIALECT, hubAnswerOf, isEmptyAnswer } from "./answer.ts";
import type { HubChunk } from "../../upstream/hub.ts";
import { postOnce } from "../../upstream/post.ts";
import { countTokensBody, generateContentBody } from "./request.ts";
import {
  type CountTokensOutcome,
  type GenerateCall,
  type GenerateOutcome,
  type StreamOutcome,
  type UpstreamClient,
  type UpstreamError,
  upstreamFailure,
} from "../../upstream/port.ts";
import {
  type CallGuard,
  failureOf,
  fetchModel,
  openStream,
  readJsonAnswer,
  sseEvents,
  timedCall,
  type WireRules,
} from "../../upstream/call.ts";

/** The display name of Google's own row. */
export const GOOGLE_DISPLAY_NAME = "Google";

/** A provider of Google's dialect, its answers read by Google's rules (errors.ts), under its row's display name. */
export function googleRules(upstream: string = GOOGLE_DISPLAY_NAME): WireRules {
  return { upstream, classifyHttp: (status, body, _headers, options) => classifyGoogleHttpError(status, body, options) };
}

export const DEFAULT_GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com";
// Gemma and Google's docs for the Gemini API use v1beta (v1 lacks systemInstruction and JSON schema).
export const GOOGLE_API_VERSION = "v1beta";

export interface GoogleClientOptions {
  /** Google's endpoint or a compatible server (the offline simulator); no trailing path. */
  baseUrl?: string;
  apiVersion?: string;
  /** Who answers, in messages: the provider row's display name. */
  displayName?: string;
}

/** Google's client: the port's calls, the exact token count included. */
export type GoogleClient = Required<UpstreamClient>;

export function createGoogleClient(options: GoogleClientOptions = {}): GoogleClient {
  const apiBase = `${(options.baseUrl ?? DEFAULT_GOOGLE_BASE_URL).replace(/\/+$/, "")}/${
    options.apiVersion ?? GOOGLE_API_VERSION
  }`;
  const url = (model: string, method: string) => `${apiBase}/models/${encodeURIComponent(model)}:${method}`;
  const rules = googleRules(options.displayName);
  return {
    generate: (call) => generate(url(call.request.model, "generateContent"), call, rules),
    stream: (call) => stream(url(call.request.model, "streamGenerateContent") + "?alt=sse", call, rules),
    wireBody: (request) => ({ model: request.model, ...generateContentBody(request) }),
    countTokens: (call) => countTokens(url(call.request.model, "countTokens"), call, rules),
    embed: (call) => embed((method) => url(call.request.model, method), call, rules),
    getModel: (call) =>
      fetchModel(
        `${apiBase}/models/${encodeURIComponent(call.model)}`,
        { "x-goog-api-key": call.apiKey },
        call,
        rules,
      ),
  };
}

function post(url: string, call: GenerateCall, body: unknown, signal: AbortSignal): Promise<Response> {
  return postOnce(url, { "content-type": "application/json", "x-goog-api-key": call.apiKey }, body, signal);
}

function countTokens(url: string, call: GenerateCall, rules: WireRules): Promise<CountTokensOutcome> {
  return timedCall(call, rules, async (guard) => {
    const read = await readJsonAnswer(
      await post(url, call, countTokensBody(call.request), guard.signal),
      rules,
      [call.apiKey],
      call.request.model,
    );
    if (!read.ok) return read;
    const total = (read.body as { totalTokens?: unknown }).totalTokens;
    if (typeof total !== "number" || !Number.isInteger(total) || total < 0) {
      return { ok: false, error: malformed(rules, `${rules.upstream}'s countTokens answered without totalTokens.`) };
    }
    return { ok: true as const, totalTokens: total };
  });
}

function generate(url: string, call: GenerateCall, rules: WireRules): Promise<GenerateOutcome> {
  return timedCall(call, rules, async (guard) => {
    const answer = await post(url, call, generateContentBody(call.request), guard.signal);
    const read = await readJsonAnswer(answer, rules, [call.apiKey], call.request.model);
    if (!read.ok) return read;
    const own = read.body as GeminiAnswer;
    if (isEmptyAnswer(own)) {
      return { ok: false, error: malformed(rules, `${rules.upstream} answered without candidates or promptFeedback.`) };
    }
    return {
      ok: true as const,
      answer: hubAnswerOf(own),
      servedTier: servedTierOf(answer),
      dialectAnswer: { dialect: GOOGLE_DIALECT, body: own },
    };
  });
}

/** The provider answered 200 with something that is not the answer asked for. */
function malformed(rules: WireRules, message: string): UpstreamError {
  return failureOf(rules, upstreamFailure("malformed", message, { httpStatus: 200 }));
}

async function stream(url: string, call: GenerateCall, rules: WireRules): Promise<StreamOutcome> {
  const opened = await openStream(
    url,
    {
      headers: { "content-type": "application/json", "x-goog-api-key": call.apiKey },
      body: generateContentBody(call.request),
    },
    call,
    rules,
  );
  if (!opened.ok) return opened;
  const { response, guard, latencyMs } = opened;
  // Google's own chunks, folded into its whole answer only when that is asked for (once, at the end).
  const own: GeminiAnswer[] = [];
  return {
    ok: true,
    latencyMs,
    servedTier: servedTierOf(response),
    chunks: streamChunks(response.body, guard, call, rules, own),
    dialectAnswer: () => ({ dialect: GOOGLE_DIALECT, body: foldGeminiChunks(own) }),
  };
}

/** Google's x-gemini-service-tier header (flex, standard, priority), length-capped; null when absent. */
export function servedTierOf(response: Response): string | null {
  const value = response.headers.get("x-gemini-service-tier")?.trim().toLowerCase();
  return value === undefined || value === "" ? null : value.slice(0, 20);
}

/**
 * Google's SSE events as chunks, each in the hub's words and as Google sent it (kept in `own`);
 * anything that breaks the stream off becomes a StreamCut.
 */
async function* streamChunks(
  body: ReadableStream<Uint8Array>,
  guard: CallGuard,
  call: GenerateCall,
  rules: WireRules,
  own: GeminiAnswer[],
): AsyncGenerator<HubChunk, void, undefined> {
  const events = sseEvents(body, guard, call, rules, {
    // An error event is Google's error body, its code the HTTP status it stands for.
    errorOf: (event, secrets) => {
      const error = (event as { error?: { code?: unknown } }).error;
      if (error === undefined) return undefined;
      const status = typeof error.code === "number" ? error.code : 500;
      return classifyGoogleHttpError(status, event, { secrets, model: call.request.model });
    },
  });
  for await (const event of events) {
    own.push(event);
    yield { answer: hubAnswerOf(event), own: { dialect: GOOGLE_DIALECT, body: event } };
  }
}
