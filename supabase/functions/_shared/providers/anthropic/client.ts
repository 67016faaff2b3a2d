// Anthropic's Messages REST over plain `fetch` (the call itself: ../../upstream/call.ts), the provider
// port's calls (../../upstream/port.ts):
//   generate     POST /v1/messages: the whole answer, in the hub's words (response.ts)
//   stream       the same with stream: true; its named events read in order, an `error` event after
//                the 200 or an end before message_stop is a cut; resolves when Anthropic's headers arrive
//   countTokens  POST /v1/messages/count_tokens: Anthropic's count of the input (free of the limits)
//   getModel     GET /v1/models/{id}: whether the key's organization sees a model (confirms a 404)
// The gateway speaks API version 2023-06-01 with the key in x-api-key (docs/anthropic.md: 2026-10-21
// refuses temperature, top_p and top_k, which the other routes' callers send). Each call has a deadline
// and none throws for a failed call: it returns the answer or a classified error (errors.ts) whose
// message is sanitized of the key.
import {
  type CallGuard,
  failureOf,
  fetchModel,
  openStream,
  readJsonAnswer,
  sseEvents,
  thrownBy,
  timedCall,
  type WireRules,
} from "../../upstream/call.ts";
import type { HubChunk, HubRequest } from "../../upstream/hub.ts";
import { postOnce } from "../../upstream/post.ts";
import {
  type CountTokensOutcome,
  type GenerateCall,
  type GenerateOutcome,
  StreamCut,
  type StreamOutcome,
  type UpstreamClient,
  type UpstreamError,
  upstreamFailure,
} from "../../upstream/port.ts";
import { anthropicRules, classifyAnthropicHttpError, type NextRequest, roomOf, statusOfErrorType } from "./errors.ts";
import { ANTHROPIC, AnthropicRequestError, asksJson, type Json, messagesBody } from "./request.ts";
import { messageToHub, StreamReader } from "./response.ts";
import { isObject } from "../../json.ts";

export const DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com";
/** The API version the gateway speaks. */
export const ANTHROPIC_VERSION = "2023-06-01";

/** The API root under a base URL: ".../v1", whether or not the base names /v1 or ends in a slash. */
export function anthropicApiUrl(baseUrl: string = DEFAULT_ANTHROPIC_BASE_URL): string {
  return `${baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1`;
}

export function anthropicHeaders(apiKey: string): Record<string, string> {
  return { "content-type": "application/json", "x-api-key": apiKey, "anthropic-version": ANTHROPIC_VERSION };
}

/** `displayName`: who answers, in messages (the provider row's). */
export function createAnthropicClient(options: { baseUrl?: string; displayName?: string } = {}): UpstreamClient {
  const api = anthropicApiUrl(options.baseUrl);
  const rules = anthropicRules(options.displayName);
  return {
    generate: (call) => generate(`${api}/messages`, call, rules),
    stream: (call) => stream(`${api}/messages`, call, rules),
    wireBody: (request) => messagesBody(request, false, request.bookedOutputTokens),
    countTokens: (call) => countTokens(`${api}/messages/count_tokens`, call, rules),
    getModel: (call) =>
      fetchModel(`${api}/models/${encodeURIComponent(call.model)}`, anthropicHeaders(call.apiKey), call, rules),
  };
}

/** The call's body, or the request's own fault said as Anthropic's 400 would be (nothing is sent). */
function bodyOf(
  call: GenerateCall,
  stream: boolean,
  rules: WireRules,
): { hub: HubRequest; body: Json } | { error: UpstreamError } {
  const hub = call.request;
  try {
    return { hub, body: messagesBody(hub, stream, call.request.bookedOutputTokens) };
  } catch (error) {
    if (!(error instanceof AnthropicRequestError)) throw error;
    return {
      error: {
        ...upstreamFailure("malformed", error.message),
        kind: "http",
        httpStatus: 400,
        class: "client_error",
        upstream: rules.upstream,
      },
    };
  }
}

/**
 * This call's take from Anthropic's input and output buckets, the guess of the next request's: the input
 * its usage counted (input and cache writes; unknown before a stream's end) and the max_tokens it booked.
 */
function nextLike(body: Json, usage: unknown): NextRequest {
  const n = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null;
  const read = isObject(usage) ? n(usage.input_tokens) : null;
  return {
    input: read === null ? null : read + (n((usage as Json).cache_creation_input_tokens) ?? 0),
    output: n(body.max_tokens),
  };
}

type Answered = Omit<Extract<GenerateOutcome, { ok: true }>, "latencyMs">;

function generate(url: string, call: GenerateCall, rules: WireRules): Promise<GenerateOutcome> {
  return timedCall<Answered>(call, rules, async (guard) => {
    const built = bodyOf(call, false, rules);
    if ("error" in built) return { ok: false, error: built.error };
    const answer = await postOnce(url, anthropicHeaders(call.apiKey), built.body, guard.signal);
    const read = await readJsonAnswer(answer, rules, [call.apiKey], call.request.model);
    if (!read.ok) return read;
    const hub = messageToHub(read.body, asksJson(built.hub));
    if (hub === null) {
      return {
        ok: false,
        error: failureOf(
          rules,
          upstreamFailure("malformed", `${rules.upstream} answered without content.`, { httpStatus: 200 }),
        ),
      };
    }
    return {
      ok: true as const,
      answer: hub,
      servedTier: typeof (read.body.usage as Json | undefined)?.service_tier === "string"
        ? String((read.body.usage as Json).service_tier).slice(0, 20)
        : null,
      dialectAnswer: { dialect: ANTHROPIC, body: read.body },
      room: roomOf(answer.headers, Date.now(), nextLike(built.body, read.body.usage)),
    };
  });
}

async function stream(url: string, call: GenerateCall, rules: WireRules): Promise<StreamOutcome> {
  const built = bodyOf(call, true, rules);
  if ("error" in built) return { ok: false, error: built.error, latencyMs: 0 };
  const opened = await openStream(
    url,
    { headers: anthropicHeaders(call.apiKey), body: built.body },
    call,
    rules,
  );
  if (!opened.ok) return opened;
  const { response, guard, latencyMs } = opened;
  const reader = new StreamReader(asksJson(built.hub));
  return {
    ok: true,
    latencyMs,
    servedTier: null,
    room: roomOf(response.headers, Date.now(), nextLike(built.body, undefined)),
    chunks: streamChunks(response.body, guard, call, reader, rules),
    dialectAnswer: () => ({ dialect: ANTHROPIC, body: reader.whole() }),
  };
}

/**
 * Anthropic's named events, each as it came and in the hub's words;
 * an `error` event, or an end before message_stop, is a StreamCut.
 */
async function* streamChunks(
  body: ReadableStream<Uint8Array>,
  guard: CallGuard,
  call: GenerateCall,
  reader: StreamReader,
  rules: WireRules,
): AsyncGenerator<HubChunk, void, undefined> {
  const events = sseEvents(body, guard, call, rules, {
    errorOf: (event, secrets) => {
      if (event.type !== "error") return undefined;
      const error = (event.error ?? {}) as { type?: unknown };
      return classifyAnthropicHttpError(statusOfErrorType(error.type), event, new Headers(), {
        secrets,
        model: call.request.model,
        midStream: true,
        upstream: rules.upstream,
      });
    },
  });
  try {
    for await (const event of events) {
      const piece = reader.read(event);
      yield { answer: piece, own: { dialect: ANTHROPIC, body: event } };
    }
  } catch (error) {
    if (error instanceof StreamCut) throw error;
    throw new StreamCut(thrownBy(rules, error, guard, call));
  }
  if (!reader.ended) {
    throw new StreamCut(
      failureOf(
        rules,
        upstreamFailure("network", `${rules.upstream}'s stream ended before message_stop.`, { httpStatus: 200 }),
      ),
    );
  }
}

function countTokens(url: string, call: GenerateCall, rules: WireRules): Promise<CountTokensOutcome> {
  return timedCall(call, rules, async (guard) => {
    const built = bodyOf(call, false, rules);
    if ("error" in built) return { ok: false, error: built.error };
    // The count takes the Messages body without what only generation reads.
    const {
      max_tokens: _m,
      stream: _s,
      temperature: _t,
      top_p: _p,
      top_k: _k,
      stop_sequences: _q,
      metadata: _d,
      ...counted
    } = built.body;
    const answer = await postOnce(url, anthropicHeaders(call.apiKey), counted, guard.signal);
    const read = await readJsonAnswer(answer, rules, [call.apiKey], call.request.model);
    if (!read.ok) return read;
    const n = read.body.input_tokens;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      return {
        ok: false,
        error: failureOf(
          rules,
          upstreamFailure("malformed", `${rules.upstream} counted no input_tokens.`, { httpStatus: 200 }),
        ),
      };
    }
    return { ok: true as const, totalTokens: n };
  });
}
