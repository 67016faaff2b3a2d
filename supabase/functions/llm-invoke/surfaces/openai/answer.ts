// A whole answer as OpenAI's chat.completion: one choice per candidate (a blocked prompt still gets
// choices[0]), usage, and the id and created that the stream's chunks share.
import type { JsonAnswer } from "../../../_shared/envelope.ts";
import { hubFinish } from "../../../_shared/upstream/hub.ts";
import type { InvokeResult } from "../../attempt/context.ts";
import { withCacheMark, withUsageMarked } from "../shared/cache-mark.ts";
import { hubOf } from "../shared/stored-answer.ts";
import type { SurfaceContext } from "../shared/surface.ts";
import { finishReasonOf, googleExtra, textOfParts, textSignatureOf, toolCallsOf } from "./outputs.ts";
import { isObject } from "../../../_shared/json.ts";

/** OpenAI's `created`, in Unix seconds: the completion, its chunks and /v1/models all carry it. */
export function created(now: number): number {
  return Math.floor(now / 1000);
}

/** The completion's id, the same on every chunk of a stream. */
export function completionId(requestId: string): string {
  return `chatcmpl-${requestId}`;
}

export function usageOf(result: InvokeResult): Record<string, unknown> {
  const { prompt_tokens, completion_tokens, total_tokens } = result.usage;
  return withCacheMark({ prompt_tokens, completion_tokens, total_tokens }, result);
}

/** The choices of a whole answer (a replay of a streamed one included). */
export function choicesOf(result: InvokeResult, requestId: string): Array<Record<string, unknown>> {
  const hub = hubOf(result);
  if (hub.outputs.length === 0) {
    // A blocked prompt has no output; OpenAI's clients expect choices[0].
    return [{
      index: 0,
      message: { role: "assistant", content: result.text === "" ? null : result.text, refusal: null },
      finish_reason: finishReasonOf(hubFinish(hub), false),
      logprobs: null,
    }];
  }
  return hub.outputs.map((output) => {
    const { index, parts } = output;
    const text = textOfParts(parts);
    const calls = toolCallsOf(parts, requestId, index, 0);
    return {
      index,
      message: {
        role: "assistant",
        content: text === "" && calls.length > 0 ? null : text,
        ...(calls.length === 0 ? {} : { tool_calls: calls }),
        refusal: null,
        ...googleExtra(textSignatureOf(parts)),
      },
      finish_reason: finishReasonOf(output.finish ?? (index === 0 ? hubFinish(hub) : null), calls.length > 0),
      logprobs: null,
    };
  });
}

/**
 * A provider of this dialect served: its own completion (logprobs, refusals, annotations, its usage
 * details; a stream's folded from its chunks). (`openai`: where an answer stored for replay by an
 * earlier release keeps it.)
 */
export function ownCompletion(result: InvokeResult): Record<string, unknown> | undefined {
  const own = result.dialectAnswer?.dialect === "openai" ? result.dialectAnswer.body : legacyOwn(result);
  return own === undefined ? undefined : withUsageMarked(own, "usage", result);
}

export function answer(result: InvokeResult, ctx: SurfaceContext): JsonAnswer {
  // A provider of this dialect served: its own completion, under the gateway's id.
  const own = ownCompletion(result);
  if (own !== undefined) {
    return { body: { ...own, id: completionId(ctx.requestId) }, asIs: true };
  }
  return {
    body: {
      id: completionId(ctx.requestId),
      object: "chat.completion",
      created: created(ctx.now),
      model: result.model,
      choices: choicesOf(result, ctx.requestId),
      usage: usageOf(result),
      system_fingerprint: null,
    },
    asIs: true,
  };
}

/** The completion an answer stored for replay by an earlier release keeps under `openai`. */
function legacyOwn(result: InvokeResult): Record<string, unknown> | undefined {
  const stored = (result as { openai?: unknown }).openai;
  return isObject(stored) ? stored : undefined;
}
