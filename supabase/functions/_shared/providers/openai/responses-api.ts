// OpenAI's own Responses API (POST /v1/responses) for a caller of the gateway's Responses route whose
// model is OpenAI's: the caller's body as it came (built-in tools, include, … reach OpenAI), but the
// model and the stream the gateway's, and `store: false` (the gateway keeps the conversation itself, for
// any model). An output cap is sent only where the request has one (hub maxOutputTokens: the caller's,
// or where a scope or a budget in money sets one, the lesser of it and the caller's), as the chat door
// does (request.ts); never the row's booked answer, which is for providers that require a cap. Its answer
// and events come back as they came (pass-through, dialect `openai`, endpoint `responses`) and in the
// hub's words for the books and every other reader.
import {
  type CallGuard,
  failureOf,
  openStream,
  readJsonAnswer,
  sseEvents,
  thrownBy,
  timedCall,
  type WireRules,
} from "../../upstream/call.ts";
import type { DialectAnswer, HubAnswer, HubChunk, HubFinish, HubPart, HubRequest, HubUsage } from "../../upstream/hub.ts";
import { postOnce } from "../../upstream/post.ts";
import {
  type GenerateCall,
  type GenerateOutcome,
  StreamCut,
  type StreamOutcome,
  upstreamFailure,
} from "../../upstream/port.ts";
import { classifyOpenAiHttpError, roomOf } from "./errors.ts";

/** What an answer of OpenAI's Responses API is tagged with (the pass-through to the gateway's Responses route). */
export const RESPONSES_ANSWER = { dialect: "openai", endpoint: "responses" } as const;

type Json = Record<string, unknown>;

function headers(apiKey: string): Record<string, string> {
  return { "content-type": "application/json", authorization: `Bearer ${apiKey}` };
}

export function responsesBody(request: HubRequest, stream: boolean): Json {
  const body: Json = { ...request.dialectBody!.body, model: request.model, stream, store: false };
  const cap = request.options.maxOutputTokens;
  if (cap !== undefined) body.max_output_tokens = cap;
  return body;
}

/** A Responses API `usage` in the hub's words (its output_tokens include the reasoning). */
function usageOf(usage: unknown): HubUsage | null {
  if (typeof usage !== "object" || usage === null) return null;
  const u = usage as Json;
  const input = typeof u.input_tokens === "number" ? u.input_tokens : 0;
  const output = typeof u.output_tokens === "number" ? u.output_tokens : 0;
  const reasoning = Number((u.output_tokens_details as Json | undefined)?.reasoning_tokens) || 0;
  const cached = Number((u.input_tokens_details as Json | undefined)?.cached_tokens) || 0;
  return {
    inputTokens: input,
    outputTokens: Math.max(0, output - reasoning),
    thinkingTokens: reasoning,
    cachedInputTokens: cached,
    totalTokens: input + output,
  };
}

function argsOf(raw: unknown): Record<string, unknown> {
  try {
    const value = JSON.parse(typeof raw === "string" && raw !== "" ? raw : "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

/** An output item's parts: a message's texts, a reasoning item's summary (thoughts), a function call. */
function partsOf(item: Json): HubPart[] {
  if (item.type === "message" && Array.isArray(item.content)) {
    return (item.content as Json[]).flatMap((c): HubPart[] =>
      typeof c.text === "string" ? [{ type: "text", text: c.text }] : typeof c.refusal === "string" ? [{ type: "text", text: c.refusal }] : []
    );
  }
  if (item.type === "reasoning" && Array.isArray(item.summary)) {
    return (item.summary as Json[]).flatMap((s): HubPart[] =>
      typeof s.text === "string" ? [{ type: "text", text: s.text, thought: true }] : []
    );
  }
  if (item.type === "function_call" && typeof item.name === "string") {
    return [{ type: "tool_call", id: String(item.call_id ?? ""), name: item.name, args: argsOf(item.arguments) }];
  }
  return [];
}

function finishOf(response: Json, parts: readonly HubPart[]): HubFinish {
  const reason = (response.incomplete_details as Json | null | undefined)?.reason;
  if (response.status === "incomplete" && reason === "max_output_tokens") return { reason: "max_tokens", word: "max_output_tokens" };
  if (response.status === "incomplete" && reason === "content_filter") return { reason: "content_filter", word: "content_filter" };
  if (parts.some((p) => p.type === "tool_call")) return { reason: "tool_call", word: String(response.status ?? "") };
  return { reason: "stop", word: typeof response.status === "string" ? response.status : null };
}

export function responseToHub(response: Json): HubAnswer | null {
  if (!Array.isArray(response.output)) return null;
  const parts = (response.output as Json[]).flatMap(partsOf);
  return {
    outputs: [{ index: 0, parts, finish: finishOf(response, parts) }],
    usage: usageOf(response.usage),
    modelVersion: typeof response.model === "string" ? response.model : null,
    id: typeof response.id === "string" ? response.id : null,
  };
}

export function generateResponse(url: string, call: GenerateCall, rules: WireRules): Promise<GenerateOutcome> {
  return timedCall(call, rules, async (guard) => {
    const answer = await postOnce(url, headers(call.apiKey), responsesBody(call.request, false), guard.signal);
    const read = await readJsonAnswer(answer, rules, [call.apiKey], call.request.model);
    if (!read.ok) return read;
    const hub = responseToHub(read.body);
    if (hub === null) {
      const error = upstreamFailure("malformed", `${rules.upstream} answered without output.`, { httpStatus: 200 });
      return { ok: false, error: failureOf(rules, error) };
    }
    return {
      ok: true as const,
      answer: hub,
      dialectAnswer: { ...RESPONSES_ANSWER, body: read.body },
      room: roomOf(answer.headers),
    };
  });
}

export async function streamResponse(url: string, call: GenerateCall, rules: WireRules): Promise<StreamOutcome> {
  const opened = await openStream(url, { headers: headers(call.apiKey), body: responsesBody(call.request, true) }, call, rules);
  if (!opened.ok) return opened;
  const { response, guard, latencyMs } = opened;
  let last: Json = {};
  return {
    ok: true,
    latencyMs,
    servedTier: null,
    room: roomOf(response.headers),
    chunks: eventChunks(response.body, guard, call, rules, (r) => (last = r)),
    dialectAnswer: () => ({ ...RESPONSES_ANSWER, body: last }),
  };
}

const piece = (parts: HubPart[], finish: HubFinish | null = null, usage: HubUsage | null = null): HubAnswer => ({
  outputs: [{ index: 0, parts, finish }],
  usage,
  modelVersion: null,
  id: null,
});

/** OpenAI's named events, each as it came and in the hub's words; the last response is kept as the whole. */
async function* eventChunks(
  body: ReadableStream<Uint8Array>,
  guard: CallGuard,
  call: GenerateCall,
  rules: WireRules,
  whole: (response: Json) => void,
): AsyncGenerator<HubChunk, void, undefined> {
  const events = sseEvents(body, guard, call, rules, {
    errorOf: (event, secrets) => {
      if (event.type !== "error" && event.type !== "response.failed") return undefined;
      const error = (event.type === "error" ? event : (event.response as Json | undefined)?.error ?? {}) as Json;
      const status = error.code === "rate_limit_exceeded" ? 429 : 500;
      return classifyOpenAiHttpError(status, { error }, new Headers(), { secrets, model: call.request.model });
    },
  });
  try {
    for await (const event of events) {
      const own: DialectAnswer = { ...RESPONSES_ANSWER, body: event };
      const type = event.type;
      if (type === "response.output_text.delta" && typeof event.delta === "string") {
        yield { answer: piece([{ type: "text", text: event.delta }]), own };
      } else if (type === "response.output_item.done" && (event.item as Json | undefined)?.type === "function_call") {
        yield { answer: piece(partsOf(event.item as Json)), own };
      } else if ((type === "response.completed" || type === "response.incomplete") && typeof event.response === "object") {
        const response = event.response as Json;
        whole(response);
        const parts = Array.isArray(response.output) ? (response.output as Json[]).flatMap(partsOf) : [];
        yield { answer: piece([], finishOf(response, parts), usageOf(response.usage)), own };
      } else {
        yield { answer: null, own };
      }
    }
  } catch (error) {
    if (error instanceof StreamCut) throw error;
    throw new StreamCut(thrownBy(rules, error, guard, call));
  }
}
