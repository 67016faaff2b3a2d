// A streamed answer as OpenAI's chat.completion.chunk frames over server-sent events. A provider of
// this dialect served: its chunks pass as it sent them (logprobs, tool-call pieces as they come, its
// usage details), with the gateway's id, and its usage chunk only when the caller asked for it. Another
// provider served: its chunks (the hub shape) are said in OpenAI's words, the role in a choice's first
// delta, tool calls numbered per choice, one finish per choice, the usage chunk when
// stream_options.include_usage asked for it. Then [DONE]. A replayed (stored) answer is sent the same way.
import { GatewayError } from "../../../_shared/errors.ts";
import type { StreamAnswer } from "../../../_shared/envelope.ts";
import { type HubFinish, type HubOutput, hubFinish } from "../../../_shared/upstream/hub.ts";
import { type InvokeResult, type InvokeStream, isStream } from "../../attempt/context.ts";
import { hubOf } from "../shared/stored-answer.ts";
import { SSE_HEADERS, sseBody, sseFrame } from "../shared/sse.ts";
import type { SurfaceContext } from "../shared/surface.ts";
import { choicesOf, completionId, created, ownCompletion, usageOf } from "./answer.ts";
import {
  finishReasonOf,
  type GoogleExtra,
  googleExtra,
  textOfParts,
  textSignatureOf,
  type ToolCall,
  toolCallsOf,
} from "./outputs.ts";
import { openAiErrorObject } from "./errors.ts";
import { includesUsage } from "./request.ts";

/** Writes OpenAI's chunk frames of one answer, and remembers what each choice has said so far. */
class ChunkWriter {
  /** Per choice index: its tool calls so far (their stream index), and whether it has finished. */
  private readonly choices = new Map<number, { toolCalls: number; finished: boolean }>();

  constructor(
    private readonly ctx: SurfaceContext,
    /** The `model` every chunk names: the model that served. */
    private readonly model: string,
    private readonly includeUsage: boolean,
  ) {}

  frame(choices: unknown[], usage?: Record<string, unknown>): string {
    return sseFrame({
      id: completionId(this.ctx.requestId),
      object: "chat.completion.chunk",
      created: created(this.ctx.now),
      model: this.model,
      system_fingerprint: null,
      choices,
      // With include_usage, every chunk but the last says `usage: null`, as OpenAI's do.
      ...(this.includeUsage ? { usage: usage ?? null } : {}),
    });
  }

  /** A delta of a choice; its first one says the role. */
  delta(index: number, delta: Record<string, unknown>): string {
    const first = !this.choices.has(index);
    if (first) this.choices.set(index, { toolCalls: 0, finished: false });
    return this.frame([{
      index,
      delta: { ...(first ? { role: "assistant" } : {}), ...delta },
      finish_reason: null,
      logprobs: null,
    }]);
  }

  /** The chunk that ends a choice (once), opening it first if it said nothing. */
  finish(index: number, reason: string): string[] {
    const frames = this.choices.has(index) ? [] : [this.delta(index, { content: "" })];
    const state = this.choices.get(index)!;
    if (state.finished) return frames;
    state.finished = true;
    return [...frames, this.frame([{ index, delta: {}, finish_reason: reason, logprobs: null }])];
  }

  /** The frames of one output of a hub chunk: its text and calls, then its finish if it has one. */
  output(output: HubOutput): string[] {
    const { index, parts } = output;
    const text = textOfParts(parts);
    const before = this.choices.get(index)?.toolCalls ?? 0;
    const calls = toolCallsOf(parts, this.ctx.requestId, index, before).map((call, k) => ({
      index: before + k,
      ...call,
    }));
    // A text answer's signature comes with its last piece, which may hold no text: said all the same.
    const signature = textSignatureOf(parts);
    const frames: string[] = [];
    if (text !== "" || calls.length > 0 || signature !== undefined || !this.choices.has(index)) {
      frames.push(this.delta(index, {
        ...(text === "" && calls.length > 0 ? {} : { content: text }),
        ...(calls.length === 0 ? {} : { tool_calls: calls }),
        ...googleExtra(signature),
      }));
      this.choices.get(index)!.toolCalls += calls.length;
    }
    if (output.finish !== null) {
      frames.push(...this.finish(index, finishReasonOf(output.finish, this.choices.get(index)!.toolCalls > 0)));
    }
    return frames;
  }

  /** Ends what the provider left open: every choice finishes, and a stream without any says one. */
  end(finish: HubFinish | null): string[] {
    if (this.choices.size === 0) return this.finish(0, finishReasonOf(finish, false));
    const frames: string[] = [];
    for (const [index, state] of this.choices) {
      if (!state.finished) frames.push(...this.finish(index, finishReasonOf(null, state.toolCalls > 0)));
    }
    return frames;
  }
}

/** OpenAI's chunk frames of a stream (or of a replayed whole answer), then `[DONE]`. */
async function* chunkFrames(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): AsyncGenerator<string> {
  const includeUsage = includesUsage(ctx.request);
  const writer = new ChunkWriter(ctx, answer.model, includeUsage);

  if (!isStream(answer)) {
    const own = ownCompletion(answer);
    if (own !== undefined && Array.isArray(own.choices)) {
      yield* ownReplay(own, ctx, includeUsage);
      return;
    }
    // A replay: each choice whole in one chunk, then its finish.
    for (const choice of choicesOf(answer, ctx.requestId)) {
      const index = choice.index as number;
      const message = choice.message as { content: string | null; tool_calls?: ToolCall[] } & GoogleExtra;
      const calls = (message.tool_calls ?? []).map((call, k) => ({ index: k, ...call }));
      yield writer.delta(index, {
        ...(message.content === null ? {} : { content: message.content }),
        ...(calls.length === 0 ? {} : { tool_calls: calls }),
        ...(message.extra_content === undefined ? {} : { extra_content: message.extra_content }),
      });
      for (const f of writer.finish(index, choice.finish_reason as string)) yield f;
    }
    if (includeUsage) yield writer.frame([], usageOf(answer));
    yield sseFrame("[DONE]");
    return;
  }

  /** A provider of this dialect served: its chunks were passed as it sent them, and it said all. */
  let passedOn = false;
  try {
    for await (const chunk of answer.chunks) {
      if (chunk.own?.dialect === "openai") {
        passedOn = true;
        const frame = ownFrame(chunk.own.body, ctx, includeUsage);
        if (frame !== null) yield frame;
        continue;
      }
      if (chunk.answer === null) continue;
      for (const output of chunk.answer.outputs) for (const f of writer.output(output)) yield f;
      if (chunk.answer.outputs.length === 0 && chunk.answer.promptBlocked !== undefined) {
        for (const f of writer.finish(0, "content_filter")) yield f;
      }
    }
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    // The headers are sent: the error is said in the stream, where OpenAI's clients read it (a frame
    // with `error`), and no [DONE] follows, so no client takes the answer for complete.
    yield sseFrame({ error: openAiErrorObject(error, ctx.requestId) });
    return;
  }
  if (!passedOn) {
    const whole = answer.result();
    for (const f of writer.end(hubFinish(hubOf(whole)))) yield f;
    if (includeUsage) yield writer.frame([], usageOf(whole));
  }
  yield sseFrame("[DONE]");
}

/**
 * A replay of a provider of this dialect's completion (a stored answer, whole or folded from its
 * stream): each choice's message whole in one chunk with its logprobs, then its finish; the usage
 * chunk when asked; [DONE]. The chunks name what the completion names (snapshot, time, fingerprint),
 * under the gateway's id.
 */
function* ownReplay(own: Record<string, unknown>, ctx: SurfaceContext, includeUsage: boolean): Generator<string> {
  const { id: _id, object: _object, choices, usage, ...head } = own;
  const frame = (choices: unknown[], usageOf: unknown = null) =>
    sseFrame({
      id: completionId(ctx.requestId),
      object: "chat.completion.chunk",
      ...head,
      choices,
      ...(includeUsage ? { usage: usageOf } : {}),
    });
  for (const [position, choice] of (choices as Array<Record<string, unknown>>).entries()) {
    const index = typeof choice.index === "number" ? choice.index : position;
    const message = (choice.message ?? {}) as Record<string, unknown>;
    const calls = Array.isArray(message.tool_calls)
      ? (message.tool_calls as Array<Record<string, unknown>>).map((call, k) => ({ index: k, ...call }))
      : undefined;
    yield frame([{
      index,
      delta: { ...message, ...(calls === undefined ? {} : { tool_calls: calls }) },
      logprobs: choice.logprobs ?? null,
      finish_reason: null,
    }]);
    yield frame([{ index, delta: {}, logprobs: null, finish_reason: choice.finish_reason ?? "stop" }]);
  }
  if (includeUsage) yield frame([], usage ?? null);
  yield sseFrame("[DONE]");
}

/**
 * A chunk of a provider of this dialect, as it sent it but for the gateway's fields: the completion's
 * id (the gateway's, as on the whole answer), and the usage, which the gateway always asks for (its
 * books need it) but the caller sees only if it asked (stream_options.include_usage): null when the
 * chunk is then empty (the usage chunk).
 */
function ownFrame(chunk: Record<string, unknown>, ctx: SurfaceContext, includeUsage: boolean): string | null {
  const id = completionId(ctx.requestId);
  if (includeUsage || !("usage" in chunk)) return sseFrame({ ...chunk, id });
  const { usage, ...rest } = chunk;
  if (usage !== null && Array.isArray(rest.choices) && rest.choices.length === 0) return null;
  return sseFrame({ ...rest, id });
}

export function stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
  return { stream: sseBody(chunkFrames(answer, ctx)), headers: { ...SSE_HEADERS } };
}
