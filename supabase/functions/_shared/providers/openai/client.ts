// OpenAI's Chat Completions REST over plain `fetch` (the call itself: ../../upstream/call.ts), the
// provider port's calls (../../upstream/port.ts), so the attempt loop runs it as any provider:
//   generate     POST /v1/chat/completions: the whole answer, in the hub's words (response.ts)
//   stream       the same with stream: true and the usage chunk; resolves when OpenAI's headers arrive
//   getModel     GET /v1/models/{id}: whether the key's organization sees a model (confirms a 404)
//   embed        POST /v1/embeddings (embeddings.ts)
//   a caller of the gateway's Responses route: POST /v1/responses, its own API (responses-api.ts)
//   (no countTokens: OpenAI offers no count, so the estimate stands)
// Each call has a deadline and none throws for a failed call: it returns the answer or a classified
// error (errors.ts) whose message is sanitized of the key.
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
import type { HubChunk } from "../../upstream/hub.ts";
import { postOnce } from "../../upstream/post.ts";
import { classifyOpenAiHttpError, openAiRules, roomOf } from "./errors.ts";
import { openAiApiUrl } from "./endpoint.ts";
import { embed } from "./embeddings.ts";
import { generateResponse, responsesBody, streamResponse } from "./responses-api.ts";
import { answerWrapped, chatCompletionBody } from "./request.ts";
import { ChunkTranslator, CompletionFolder, completionToHub } from "./response.ts";
import {
  type GenerateCall,
  type GenerateOutcome,
  StreamCut,
  type StreamOutcome,
  type UpstreamClient,
    upstreamFailure,
} from "../../upstream/port.ts";

/** `displayName`: who answers, in messages (the provider row's). */
export function createOpenAiClient(options: { baseUrl?: string; displayName?: string } = {}): UpstreamClient {
  const api = openAiApiUrl(options.baseUrl);
  const rules = openAiRules(options.displayName);
  return {
    // A caller of the gateway's Responses route: OpenAI's own Responses API (responses-api.ts).
    generate: (call) =>
      call.request.dialectBody?.endpoint === "responses"
        ? generateResponse(`${api}/responses`, call, rules)
        : generate(`${api}/chat/completions`, call, rules),
    stream: (call) =>
      call.request.dialectBody?.endpoint === "responses"
        ? streamResponse(`${api}/responses`, call, rules)
        : stream(`${api}/chat/completions`, call, rules),
    // What the response cache keys on: the body the call sends, at the endpoint it sends it to.
    wireBody: (request) =>
      request.dialectBody?.endpoint === "responses" ? responsesBody(request, false) : chatCompletionBody(request, false),
    getModel: (call) =>
      fetchModel(`${api}/models/${encodeURIComponent(call.model)}`, headers(call.apiKey), call, rules),
    embed: (call) => embed(`${api}/embeddings`, call, rules),
  };
}

function headers(apiKey: string): Record<string, string> {
  return { "content-type": "application/json", authorization: `Bearer ${apiKey}` };
}

/** OpenAI's service_tier as the answer names it (default, flex, priority, scale); null when absent. */
function servedTierOf(body: Record<string, unknown>): string | null {
  return typeof body.service_tier === "string" ? body.service_tier.slice(0, 20) : null;
}

function generate(url: string, call: GenerateCall, rules: WireRules): Promise<GenerateOutcome> {
  return timedCall(call, rules, async (guard) => {
    const answer = await postOnce(url, headers(call.apiKey), chatCompletionBody(call.request, false), guard.signal);
    const read = await readJsonAnswer(answer, rules, [call.apiKey], call.request.model);
    if (!read.ok) return read;
    const hub = completionToHub(read.body, answerWrapped(call.request));
    if (hub === null) {
      return {
        ok: false,
        error: failureOf(
          rules,
          upstreamFailure("malformed", `${rules.upstream} answered without choices.`, { httpStatus: 200 }),
        ),
      };
    }
    return {
      ok: true as const,
      answer: hub,
      servedTier: servedTierOf(read.body),
      dialectAnswer: { dialect: "openai", body: read.body },
      room: roomOf(answer.headers),
    };
  });
}

async function stream(url: string, call: GenerateCall, rules: WireRules): Promise<StreamOutcome> {
  const opened = await openStream(
    url,
    { headers: headers(call.apiKey), body: chatCompletionBody(call.request, true) },
    call,
    rules,
  );
  if (!opened.ok) return opened;
  const { response, guard, latencyMs } = opened;
  const folder = new CompletionFolder();
  return {
    ok: true,
    latencyMs,
    servedTier: null,
    room: roomOf(response.headers),
    chunks: streamChunks(response.body, guard, call, folder, rules, answerWrapped(call.request)),
    dialectAnswer: () => ({ dialect: "openai", body: folder.completion() }),
  };
}

/**
 * OpenAI's SSE events, each as it came and in the hub's words (for the books and for routes of another
 * dialect); `[DONE]` ends them, anything that breaks them is a StreamCut.
 */
async function* streamChunks(
  body: ReadableStream<Uint8Array>,
  guard: CallGuard,
  call: GenerateCall,
  folder: CompletionFolder,
  rules: WireRules,
  wrapped: boolean,
): AsyncGenerator<HubChunk, void, undefined> {
  const translator = new ChunkTranslator(wrapped);
  const events = sseEvents(body, guard, call, rules, {
    done: "[DONE]",
    errorOf: (event, secrets) => {
      if (event.error === undefined) return undefined;
      const error = event.error as { code?: unknown; type?: unknown };
      // A mid-stream error names no HTTP status: a rate limit or money by its type/code, else OpenAI's failure.
      const status = error.code === "rate_limit_exceeded" || error.type === "insufficient_quota" ? 429 : 500;
      return classifyOpenAiHttpError(status, event, new Headers(), { secrets, model: call.request.model });
    },
  });
  try {
    for await (const event of events) {
      folder.add(event);
      yield { answer: translator.translate(event), own: { dialect: "openai", body: event } };
    }
  } catch (error) {
    if (error instanceof StreamCut) throw error;
    throw new StreamCut(thrownBy(rules, error, guard, call));
  }
}
