// The gateway's answers in Anthropic's shapes: a whole `message`, a stream of named events, an error
// `{type: "error", error: {type, message}}`, and the model list. A Claude model served: its own
// message and its own events pass as Anthropic sent them (cache usage, citations, server tools'
// blocks), the message under the gateway's id. Another provider served: its answer (the hub shape)
// is said in Anthropic's words: text, signed thoughts as thinking blocks, calls as tool_use blocks,
// the stop reason, the usage.
import type { JsonAnswer, StreamAnswer } from "../../../_shared/envelope.ts";
import { GatewayError } from "../../../_shared/errors.ts";
import { type HubAnswer, type HubFinish, hubFinish, type HubPart } from "../../../_shared/upstream/hub.ts";
import { type InvokeResult, type InvokeStream, isStream } from "../../attempt/context.ts";
import { withCacheMark, withUsageMarked } from "../shared/cache-mark.ts";
import { hubOf } from "../shared/stored-answer.ts";
import type { ModelEntry } from "../../contract.ts";
import { SSE_HEADERS, sseBody, sseFrame } from "../shared/sse.ts";
import { errorObject } from "./errors.ts";
import type { SurfaceContext } from "../shared/surface.ts";
import { isObject } from "../../../_shared/json.ts";

type Json = Record<string, unknown>;


/** The message's id, the same on a stream's message_start. */
export function messageId(requestId: string): string {
  return `msg_${requestId.replace(/[^A-Za-z0-9]/g, "")}`;
}

/** Anthropic's stop_reason for the hub's finish. */
function stopReasonOf(finish: HubFinish | null, calls: boolean): string {
  if (calls) return "tool_use";
  switch (finish?.reason) {
    case "max_tokens":
      return "max_tokens";
    case "content_filter":
      return "refusal";
    default:
      return "end_turn";
  }
}

/** The first output's parts, and why the answer ended. */
function firstOutput(answer: HubAnswer): { parts: HubPart[]; finish: HubFinish | null } {
  return { parts: answer.outputs.find((o) => o.index === 0)?.parts ?? [], finish: hubFinish(answer) };
}

/** Hub parts as Anthropic's content blocks. */
function blocksOf(parts: readonly HubPart[], requestId: string, first = 0): Json[] {
  const blocks: Json[] = [];
  let calls = first;
  for (const p of parts) {
    if (p.type === "tool_call") {
      const id = p.id ?? `toolu_${messageId(requestId)}_${calls}`;
      calls++;
      blocks.push({ type: "tool_use", id, name: p.name, input: p.args });
    } else if (p.type === "text" && p.thought === true) {
      const last = blocks.at(-1);
      if (last?.type === "thinking" && last.signature === "") last.thinking = String(last.thinking) + p.text;
      else blocks.push({ type: "thinking", thinking: p.text, signature: "" });
      if (p.signature !== undefined) blocks.at(-1)!.signature = p.signature;
    } else if (p.type === "text") {
      const last = blocks.at(-1);
      if (last?.type === "text") last.text = String(last.text) + p.text;
      else if (p.text !== "") blocks.push({ type: "text", text: p.text });
    }
  }
  return blocks;
}

function usageOf(result: InvokeResult): Json {
  return withCacheMark({
    input_tokens: result.usage.prompt_tokens,
    output_tokens: result.usage.completion_tokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  }, result);
}

/** A Claude model's own message, where it served. */
function ownMessage(result: InvokeResult): Json | undefined {
  return result.dialectAnswer?.dialect === "anthropic"
    ? withUsageMarked(result.dialectAnswer.body, "usage", result)
    : undefined;
}

function messageOf(result: InvokeResult, ctx: SurfaceContext): Json {
  const own = ownMessage(result);
  if (own !== undefined) return { ...own, id: messageId(ctx.requestId) };
  const { parts, finish } = firstOutput(hubOf(result));
  const content = blocksOf(parts, ctx.requestId);
  if (content.length === 0 && result.text !== "") content.push({ type: "text", text: result.text });
  return {
    id: messageId(ctx.requestId),
    type: "message",
    role: "assistant",
    model: result.model,
    content,
    stop_reason: stopReasonOf(finish, content.some((b) => b.type === "tool_use")),
    stop_sequence: null,
    usage: usageOf(result),
  };
}

export function answer(result: InvokeResult, ctx: SurfaceContext): JsonAnswer {
  return { body: messageOf(result, ctx), asIs: true };
}

const frame = (event: Json) => sseFrame(event, String(event.type));

/** A whole message as the events that stream it: each block whole in one delta. */
function* wholeAsEvents(message: Json): Generator<string> {
  const { content, stop_reason, stop_sequence, usage, ...head } = message;
  yield frame({
    type: "message_start",
    message: { ...head, content: [], stop_reason: null, stop_sequence: null, usage },
  });
  for (const [index, b] of (Array.isArray(content) ? content as Json[] : []).entries()) {
    if (b.type === "text") {
      yield frame({ type: "content_block_start", index, content_block: { type: "text", text: "" } });
      yield frame({ type: "content_block_delta", index, delta: { type: "text_delta", text: b.text } });
    } else if (b.type === "thinking") {
      yield frame({
        type: "content_block_start",
        index,
        content_block: { type: "thinking", thinking: "", signature: "" },
      });
      yield frame({ type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: b.thinking } });
      yield frame({ type: "content_block_delta", index, delta: { type: "signature_delta", signature: b.signature } });
    } else if (b.type === "tool_use") {
      yield frame({ type: "content_block_start", index, content_block: { ...b, input: {} } });
      yield frame({
        type: "content_block_delta",
        index,
        delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input ?? {}) },
      });
    } else {
      yield frame({ type: "content_block_start", index, content_block: b });
    }
    yield frame({ type: "content_block_stop", index });
  }
  yield frame({ type: "message_delta", delta: { stop_reason, stop_sequence }, usage });
  yield frame({ type: "message_stop" });
}

/** An error after the stream began, as Anthropic says one: an `error` event, then the end. */
function errorEvent(error: GatewayError, requestId: string): string {
  return sseFrame({ type: "error", error: errorObject(error), request_id: requestId }, "error");
}

async function* events(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): AsyncGenerator<string> {
  if (!isStream(answer)) {
    yield* wholeAsEvents(messageOf(answer, ctx));
    return;
  }
  const id = messageId(ctx.requestId);
  let started = false;
  let passedOn = false;
  /** Another provider's stream: the block open now (its index and type), and how many came before. */
  let open: { index: number; type: string } | null = null;
  let next = 0;
  const close = function* (): Generator<string> {
    if (open !== null) yield frame({ type: "content_block_stop", index: open.index });
    open = null;
  };
  try {
    for await (const chunk of answer.chunks) {
      if (chunk.own?.dialect === "anthropic") {
        // Claude's own events, as it sent them; its message under the gateway's id.
        passedOn = true;
        const event = chunk.own.body;
        yield frame(
          event.type === "message_start" && isObject(event.message)
            ? { ...event, message: { ...event.message, id } }
            : event,
        );
        continue;
      }
      if (!started) {
        started = true;
        yield frame({
          type: "message_start",
          message: {
            id,
            type: "message",
            role: "assistant",
            model: answer.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 0, output_tokens: 0 },
          },
        });
      }
      if (chunk.answer === null) continue;
      for (const b of blocksOf(firstOutput(chunk.answer).parts, ctx.requestId, next)) {
        const kind = String(b.type);
        if (kind === "text" && open?.type === "text") {
          yield frame({ type: "content_block_delta", index: open.index, delta: { type: "text_delta", text: b.text } });
          continue;
        }
        yield* close();
        open = { index: next++, type: kind };
        if (kind === "text") {
          yield frame({ type: "content_block_start", index: open.index, content_block: { type: "text", text: "" } });
          yield frame({ type: "content_block_delta", index: open.index, delta: { type: "text_delta", text: b.text } });
        } else if (kind === "thinking") {
          yield frame({
            type: "content_block_start",
            index: open.index,
            content_block: { type: "thinking", thinking: "", signature: "" },
          });
          yield frame({
            type: "content_block_delta",
            index: open.index,
            delta: { type: "thinking_delta", thinking: b.thinking },
          });
          if (b.signature !== "") {
            yield frame({
              type: "content_block_delta",
              index: open.index,
              delta: { type: "signature_delta", signature: b.signature },
            });
          }
        } else {
          yield frame({ type: "content_block_start", index: open.index, content_block: { ...b, input: {} } });
          yield frame({
            type: "content_block_delta",
            index: open.index,
            delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input) },
          });
        }
      }
    }
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    yield errorEvent(error, ctx.requestId);
    return;
  }
  if (passedOn) return;
  yield* close();
  const whole = answer.result();
  const { parts, finish } = firstOutput(hubOf(whole));
  const calls = parts.some((p) => p.type === "tool_call");
  yield frame({
    type: "message_delta",
    delta: { stop_reason: stopReasonOf(finish, calls), stop_sequence: null },
    usage: usageOf(whole),
  });
  yield frame({ type: "message_stop" });
}

export function stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
  return { stream: sseBody(events(answer, ctx)), headers: { ...SSE_HEADERS } };
}

/** GET /v1/models in Anthropic's shape (asked with anthropic-version): each model under its id and aliases. */
export function anthropicModels(models: ModelEntry[], url: URL): Json {
  const all: Json[] = [];
  const seen = new Set<string>();
  for (const entry of models) {
    for (const id of [entry.model, ...entry.aliases]) {
      if (seen.has(id)) continue;
      seen.add(id);
      all.push(anthropicModel(id, entry));
    }
  }
  const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get("limit")) || 20));
  const after = url.searchParams.get("after_id");
  const start = after === null ? 0 : all.findIndex((m) => m.id === after) + 1;
  const data = all.slice(start, start + limit);
  return {
    data,
    has_more: start + limit < all.length,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
  };
}

export function anthropicModel(id: string, entry: ModelEntry): Json {
  return {
    type: "model",
    id,
    display_name: entry.displayName ?? id,
    created_at: "1970-01-01T00:00:00Z",
    ...(entry.inputTokenLimit === null ? {} : { max_input_tokens: entry.inputTokenLimit }),
    ...(entry.outputTokenLimit === null ? {} : { max_tokens: entry.outputTokenLimit }),
  };
}

/** count_tokens's answer. */
export function countTokensAnswer(total: number): Json {
  return { input_tokens: total };
}
