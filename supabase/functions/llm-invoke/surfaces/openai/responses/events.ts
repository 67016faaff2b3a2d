// A streamed answer as the Responses API's named events over server-sent events: response.created and
// response.in_progress, then per output item its output_item.added, its pieces (a message's
// content_part.added, output_text.delta…, output_text.done, content_part.done; a function call's
// function_call_arguments.delta and .done; a reasoning item whole) and output_item.done, then
// response.completed with the same object a whole answer is. A failure after the 200 is said as an
// `error` event and response.failed. Every event has its sequence_number. A replayed (stored) answer
// is sent the same way, in one piece per item.
import { GatewayError } from "../../../../_shared/errors.ts";
import type { StreamAnswer } from "../../../../_shared/envelope.ts";
import type { HubPart } from "../../../../_shared/upstream/hub.ts";
import { type InvokeResult, type InvokeStream, isStream } from "../../../attempt/context.ts";
import { hubOf } from "../../shared/stored-answer.ts";
import { SSE_HEADERS, sseBody, sseFrame } from "../../shared/sse.ts";
import type { SurfaceContext } from "../../shared/surface.ts";
import { openAiErrorObject } from "../errors.ts";
import {
  callId,
  itemId,
  messageItem,
  type OutputItem,
  ownResponse,
  isOwnResponses,
  reasoningItem,
  responseHead,
  responseObject,
} from "./answer.ts";
import type { ResponsesRequest } from "./request.ts";

/** Writes the events of one response, and keeps which item is open. */
class EventWriter {
  private sequence = 0;
  private readonly items: OutputItem[] = [];
  private open: { kind: "message" | "reasoning"; index: number; id: string; text: string } | undefined;
  private calls = 0;

  constructor(private readonly ctx: SurfaceContext<ResponsesRequest>) {}

  event(type: string, fields: Record<string, unknown>): string {
    return sseFrame({ type, sequence_number: this.sequence++, ...fields }, type);
  }

  start(model: string): string[] {
    const response = responseHead(this.ctx, model, "in_progress");
    return [this.event("response.created", { response }), this.event("response.in_progress", { response })];
  }

  /** The events of some parts of the answer, as they come. */
  parts(parts: readonly HubPart[]): string[] {
    const frames: string[] = [];
    for (const part of parts) {
      if (part.type === "text") {
        const kind = part.thought === true ? "reasoning" : "message";
        if (part.text === "") continue;
        if (this.open?.kind !== kind) {
          frames.push(...this.close());
          frames.push(...this.openItem(kind));
        }
        this.open!.text += part.text;
        if (kind === "message") {
          frames.push(this.event("response.output_text.delta", {
            item_id: this.open!.id,
            output_index: this.open!.index,
            content_index: 0,
            delta: part.text,
            logprobs: [],
          }));
        }
      } else if (part.type === "tool_call") {
        frames.push(...this.close());
        const index = this.items.length;
        const id = itemId("fc", this.ctx.requestId, index);
        const call_id = part.id !== undefined && part.id !== "" ? part.id : callId(this.ctx.requestId, this.calls);
        this.calls++;
        const args = JSON.stringify(part.args);
        const item = { id, type: "function_call", status: "completed", call_id, name: part.name, arguments: args };
        this.items.push(item);
        frames.push(this.event("response.output_item.added", {
          output_index: index,
          item: { ...item, status: "in_progress", arguments: "" },
        }));
        frames.push(this.event("response.function_call_arguments.delta", { item_id: id, output_index: index, delta: args }));
        frames.push(this.event("response.function_call_arguments.done", {
          item_id: id,
          output_index: index,
          name: part.name,
          arguments: args,
        }));
        frames.push(this.event("response.output_item.done", { output_index: index, item }));
      }
    }
    return frames;
  }

  private openItem(kind: "message" | "reasoning"): string[] {
    const index = this.items.length;
    const id = itemId(kind === "message" ? "msg" : "rs", this.ctx.requestId, index);
    this.open = { kind, index, id, text: "" };
    this.items.push({});
    if (kind === "reasoning") return [];
    const item = { id, type: "message", status: "in_progress", role: "assistant", content: [] };
    return [
      this.event("response.output_item.added", { output_index: index, item }),
      this.event("response.content_part.added", {
        item_id: id,
        output_index: index,
        content_index: 0,
        part: { type: "output_text", text: "", annotations: [], logprobs: [] },
      }),
    ];
  }

  /** Ends the open item: a message's text done, a reasoning item said whole. */
  close(): string[] {
    const open = this.open;
    if (open === undefined) return [];
    this.open = undefined;
    if (open.kind === "reasoning") {
      const item = reasoningItem(open.id, open.text);
      this.items[open.index] = item;
      return [
        this.event("response.output_item.added", { output_index: open.index, item: { ...item, summary: [] } }),
        this.event("response.output_item.done", { output_index: open.index, item }),
      ];
    }
    const item = messageItem(open.id, open.text, "completed");
    this.items[open.index] = item;
    const where = { item_id: open.id, output_index: open.index, content_index: 0 };
    return [
      this.event("response.output_text.done", { ...where, text: open.text, logprobs: [] }),
      this.event("response.content_part.done", {
        ...where,
        part: { type: "output_text", text: open.text, annotations: [], logprobs: [] },
      }),
      this.event("response.output_item.done", { output_index: open.index, item }),
    ];
  }

  end(result: InvokeResult): string[] {
    const response = responseObject(result, this.ctx);
    const type = response.status === "incomplete" ? "response.incomplete" : "response.completed";
    return [...this.close(), this.event(type, { response })];
  }

  failed(error: GatewayError, model: string): string[] {
    const object = openAiErrorObject(error, this.ctx.requestId);
    return [
      this.event("error", { code: object.code, message: object.message, param: object.param }),
      this.event("response.failed", {
        response: {
          ...responseHead(this.ctx, model, "failed"),
          error: { code: error.status === 429 ? "rate_limit_exceeded" : "server_error", message: error.message },
        },
      }),
    ];
  }
}

async function* eventFrames(
  answer: InvokeStream | InvokeResult,
  ctx: SurfaceContext<ResponsesRequest>,
): AsyncGenerator<string> {
  const writer = new EventWriter(ctx);
  if (!isStream(answer)) {
    yield* writer.start(answer.model);
    const first = hubOf(answer).outputs.find((o) => o.index === 0);
    yield* writer.parts(first?.parts ?? []);
    yield* writer.end(answer);
    return;
  }
  /** An OpenAI model answered with its own events: they pass as they came, under the gateway's id. */
  let own = false;
  let started = false;
  try {
    for await (const chunk of answer.chunks) {
      if (isOwnResponses(chunk.own)) {
        own = true;
        const event = chunk.own.body;
        const response = event.response;
        const said = typeof response === "object" && response !== null
          ? { ...event, response: ownResponse(response as Record<string, unknown>, ctx) }
          : event;
        yield sseFrame(said, typeof event.type === "string" ? event.type : undefined);
        continue;
      }
      if (!started) {
        started = true;
        yield* writer.start(answer.model);
      }
      const first = chunk.answer?.outputs.find((o) => o.index === 0);
      if (first !== undefined) yield* writer.parts(first.parts);
    }
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    if (!started && !own) yield* writer.start(answer.model);
    yield* writer.failed(error, answer.model);
    return;
  }
  if (own) return;
  if (!started) yield* writer.start(answer.model);
  yield* writer.end(answer.result());
}

export function stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext<ResponsesRequest>): StreamAnswer {
  return { stream: sseBody(eventFrames(answer, ctx)), headers: { ...SSE_HEADERS } };
}
