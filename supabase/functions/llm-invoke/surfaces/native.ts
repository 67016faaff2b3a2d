// The gateway's own shape (docs/llm-invoke.md): its request body, its answer, and with `"stream": true`
// server-sent events, one JSON object per event, told apart by `type`:
//   queued  {position, expected_at, model, priority, cause}  the request waits for its turn (may repeat)
//   chunk   {text, candidates?}                        a piece of the answer, as Google sent it
//   done    the whole answer's body, as without stream (its text included)
//   error   {error: {code, message, details?}, ...}    the request failed after the stream began
import type { ErrorAnswer, JsonAnswer, StreamAnswer } from "../../_shared/envelope.ts";
import { GatewayError } from "../../_shared/errors.ts";
import { responseText } from "../../_shared/upstream/answer.ts";
import type { UpstreamAnswer } from "../../_shared/upstream/shapes.ts";
import { type InvokeResult, type InvokeStream, isStream, type QueueProgress } from "../attempt/context.ts";
import { parseInvokeRequest } from "./native/request.ts";
import { SSE_HEADERS, sseBody, sseFrame } from "./sse.ts";
import type { GenerateSurface, SurfaceContext } from "./surface.ts";

/** The native body of an answer: everything but the provider's own shape of it (and who served: x-eve-provider). */
export function nativeBody(result: InvokeResult): Record<string, unknown> {
  // `openai`: where an answer stored for replay by an earlier release keeps the provider's own.
  const { response: _hub, dialectAnswer: _own, openai: _stored, provider: _provider, ...body } = result as
    & InvokeResult
    & { openai?: unknown };
  return body;
}

export function nativeErrorBody(error: GatewayError, requestId: string): Record<string, unknown> {
  return { ...error.extra, request_id: requestId, error: error.toBody().error };
}

export function queuedFrame(progress: QueueProgress): string {
  return sseFrame({
    type: "queued",
    position: progress.position,
    expected_at: progress.expectedAt,
    model: progress.model,
    priority: progress.priority,
    cause: progress.cause,
  });
}

function chunkFrame(chunk: UpstreamAnswer, ctx: SurfaceContext): string {
  return sseFrame({
    type: "chunk",
    text: responseText(chunk),
    ...(ctx.request.includeCandidates && Array.isArray(chunk.candidates) ? { candidates: chunk.candidates } : {}),
  });
}

/** The error event of a stream that has begun. */
export function errorFrame(error: GatewayError, requestId: string): string {
  return sseFrame({ type: "error", ...nativeErrorBody(error, requestId) });
}

/** The frames of an answer: its chunks, then done, or error if it broke off. */
export async function* nativeFrames(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): AsyncGenerator<string> {
  if (!isStream(answer)) {
    yield sseFrame({ type: "chunk", text: answer.text });
    yield sseFrame({ type: "done", ...nativeBody(answer), request_id: ctx.requestId });
    return;
  }
  try {
    for await (const chunk of answer.chunks) if (chunk.answer !== null) yield chunkFrame(chunk.answer, ctx);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    yield errorFrame(error, ctx.requestId);
    return;
  }
  yield sseFrame({ type: "done", ...nativeBody(answer.result()), request_id: ctx.requestId });
}

export const nativeSurface: GenerateSurface = {
  parse: ({ body, limits }) => parseInvokeRequest(body, limits),
  answer: (result): JsonAnswer => ({ body: nativeBody(result) }),
  stream: (answer, ctx): StreamAnswer => ({ stream: sseBody(nativeFrames(answer, ctx)), headers: SSE_HEADERS }),
  error: (error, requestId): ErrorAnswer => ({ body: nativeErrorBody(error, requestId) }),
};
