// A hub answer as OpenAI's `response` object: its output items (reasoning, the message's output_text,
// each function call), its status (incomplete where the output cap or a filter cut it), and usage with
// cached and reasoning tokens. The whole answer and the stream's last event (response.completed) are
// the same object, so the two agree.
import type { JsonAnswer } from "../../../../_shared/envelope.ts";
import { type DialectAnswer, type HubAnswer, type HubPart, hubFinish } from "../../../../_shared/upstream/hub.ts";
import type { InvokeResult } from "../../../attempt/context.ts";
import { withCacheMark, withUsageMarked } from "../../shared/cache-mark.ts";
import { hubOf } from "../../shared/stored-answer.ts";
import type { SurfaceContext } from "../../shared/surface.ts";
import type { ResponsesRequest } from "./request.ts";

/** The response's id: the gateway's request id, as OpenAI's shape (resp_ and letters and digits). */
export function responseId(requestId: string): string {
  return `resp_${requestId.replace(/[^A-Za-z0-9]/g, "")}`;
}

/** An output item's id within the response: its kind's prefix, the response's id, its place. */
export function itemId(prefix: "msg" | "fc" | "rs", requestId: string, index: number): string {
  return `${prefix}_${requestId.replace(/[^A-Za-z0-9]/g, "")}_${index}`;
}

export type OutputItem = Record<string, unknown>;

/** The output items of one answer's parts, in the order the model said them (texts joined in one message). */
export function outputItemsOf(parts: readonly HubPart[], requestId: string, status = "completed"): OutputItem[] {
  const items: OutputItem[] = [];
  parts = withCallIds(parts, requestId);
  let message: { text: string } | undefined;
  let thought: { text: string } | undefined;
  for (const part of parts) {
    if (part.type === "text" && part.thought === true) {
      if (thought === undefined) {
        thought = { text: "" };
        items.push({ id: itemId("rs", requestId, items.length), type: "reasoning", summary: [], thought });
      }
      thought.text += part.text;
    } else if (part.type === "text") {
      if (message === undefined) {
        message = { text: "" };
        items.push({ id: itemId("msg", requestId, items.length), type: "message", message });
      }
      message.text += part.text;
    } else if (part.type === "tool_call") {
      items.push({
        id: itemId("fc", requestId, items.length),
        type: "function_call",
        status: "completed",
        call_id: part.id!,
        name: part.name,
        arguments: JSON.stringify(part.args),
      });
    }
  }
  return items.map((item) => {
    if (item.type === "message") return messageItem(item.id as string, (item.message as { text: string }).text, status);
    if (item.type === "reasoning") {
      return reasoningItem(item.id as string, (item.thought as { text: string }).text);
    }
    return item;
  });
}

/**
 * The parts with every tool call's id: the provider's, else the gateway's (`call_` and the response's
 * request id and the call's place), which a function_call_output names and a stored conversation keeps.
 */
export function withCallIds(parts: readonly HubPart[], requestId: string): HubPart[] {
  let n = 0;
  return parts.map((part) => {
    if (part.type !== "tool_call") return part;
    const k = n++;
    return part.id !== undefined && part.id !== "" ? part : { ...part, id: callId(requestId, k) };
  });
}

export function callId(requestId: string, k: number): string {
  return `call_${requestId.replace(/[^A-Za-z0-9]/g, "")}_${k}`;
}

export function messageItem(id: string, text: string, status: string): OutputItem {
  return {
    id,
    type: "message",
    status,
    role: "assistant",
    content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
  };
}

/** The model's thoughts, where it shows them, as a reasoning item's summary. */
export function reasoningItem(id: string, text: string): OutputItem {
  return { id, type: "reasoning", summary: [{ type: "summary_text", text }] };
}

export function usageOf(result: InvokeResult, hub: HubAnswer): Record<string, unknown> {
  return withCacheMark({
    input_tokens: result.usage.prompt_tokens,
    input_tokens_details: { cached_tokens: hub.usage?.cachedInputTokens ?? 0 },
    // Thinking is billed as output: inside output_tokens, as OpenAI counts reasoning.
    output_tokens: result.usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: hub.usage?.thinkingTokens ?? 0 },
    total_tokens: result.usage.prompt_tokens + result.usage.completion_tokens,
  }, result);
}

/** Why a response is incomplete (null: it is not). */
export function incompleteOf(hub: HubAnswer): { reason: string } | null {
  const finish = hubFinish(hub);
  if (finish?.reason === "max_tokens") return { reason: "max_output_tokens" };
  if (finish?.reason === "content_filter" || finish?.reason === "prompt_blocked") return { reason: "content_filter" };
  return null;
}

/** The response object's head: what it says before and after it is generated. */
export function responseHead(
  ctx: SurfaceContext<ResponsesRequest>,
  model: string,
  status: string,
): Record<string, unknown> {
  return {
    id: responseId(ctx.requestId),
    object: "response",
    created_at: Math.floor(ctx.now / 1000),
    status,
    background: false,
    error: null,
    incomplete_details: null,
    model,
    output: [],
    ...ctx.request.responses.echo,
    service_tier: "default",
    truncation: "disabled",
    usage: null,
    user: null,
  };
}

/** The whole response of a result. */
export function responseObject(result: InvokeResult, ctx: SurfaceContext<ResponsesRequest>): Record<string, unknown> {
  const hub = hubOf(result);
  const incomplete = incompleteOf(hub);
  const output = hub.outputs.find((o) => o.index === 0);
  return {
    ...responseHead(ctx, result.model, incomplete === null ? "completed" : "incomplete"),
    completed_at: Math.floor(ctx.now / 1000),
    incomplete_details: incomplete,
    output: outputItemsOf(output?.parts ?? [], ctx.requestId),
    usage: usageOf(result, hub),
  };
}

/** OpenAI's own Responses API answered (an OpenAI model): its answer or event, passed through as it came. */
export function isOwnResponses(own: DialectAnswer | null | undefined): own is DialectAnswer {
  return own?.dialect === "openai" && own.endpoint === "responses";
}

/**
 * An OpenAI model's own response object as it came, under the gateway's id and with what the caller
 * asked of storing (the gateway asks OpenAI to store nothing: it keeps the conversation itself).
 */
export function ownResponse(body: Record<string, unknown>, ctx: SurfaceContext<ResponsesRequest>): Record<string, unknown> {
  return {
    ...body,
    id: responseId(ctx.requestId),
    store: ctx.request.responses.store,
    previous_response_id: ctx.request.responses.previousResponseId,
  };
}

/** The response a result says: an OpenAI model's own, else the gateway's from the hub's answer. */
export function wholeResponse(result: InvokeResult, ctx: SurfaceContext<ResponsesRequest>): Record<string, unknown> {
  const own = result.dialectAnswer;
  return isOwnResponses(own) && Array.isArray(own.body.output)
    ? withUsageMarked(ownResponse(own.body, ctx), "usage", result)
    : responseObject(result, ctx);
}

export function answer(result: InvokeResult, ctx: SurfaceContext<ResponsesRequest>): JsonAnswer {
  return { body: wholeResponse(result, ctx), asIs: true };
}
