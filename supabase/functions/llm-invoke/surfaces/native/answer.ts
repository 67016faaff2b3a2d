// The native answer: its body (the gateway's fields, its finish_reason and, where asked, its candidates
// in Google's words), its error body, and the events of its stream.
import { GatewayError } from "../../../_shared/errors.ts";
import {
  geminiAnswerOf,
  geminiCandidates,
  geminiFinishReason,
  GOOGLE_DIALECT,
} from "../../../_shared/providers/google/answer.ts";
import { type HubChunk, hubText } from "../../../_shared/upstream/hub.ts";
import { type InvokeResult, type InvokeStream, isStream, type QueueProgress } from "../../attempt/context.ts";
import { geminiAnswerFor } from "../gemini/answer.ts";
import type { NativeRequest } from "./request.ts";
import { sseFrame } from "../shared/sse.ts";
import type { SurfaceContext } from "../shared/surface.ts";

/**
 * The native body of an answer: the gateway's fields (not the hub's or the provider's own shape of it,
 * nor who served: x-eve-provider), and its finish_reason and, where asked, its candidates in Google's
 * words (the bot's contract).
 */
export function nativeBody(result: InvokeResult, includeCandidates: boolean): Record<string, unknown> {
  // Fields an answer stored for replay by an earlier release may hold: `response` (the answer in
  // Google's shape), `openai` (the provider's own), `finish_reason` and `candidates` (said again here).
  const {
    hub: _hub,
    dialectAnswer: _own,
    provider: _provider,
    response: _response,
    openai: _stored,
    finish_reason: _finish,
    candidates: _candidates,
    ...body
  } = result as InvokeResult & { response?: unknown; openai?: unknown; finish_reason?: unknown; candidates?: unknown };
  const google = geminiAnswerFor(result);
  return {
    ...body,
    finish_reason: geminiFinishReason(google),
    ...(includeCandidates ? { candidates: geminiCandidates(google) } : {}),
  };
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

function chunkFrame(
  chunk: HubChunk & { answer: NonNullable<HubChunk["answer"]> },
  ctx: SurfaceContext<NativeRequest>,
): string {
  if (!ctx.request.includeCandidates) return sseFrame({ type: "chunk", text: hubText(chunk.answer) });
  const google = chunk.own?.dialect === GOOGLE_DIALECT ? chunk.own.body : geminiAnswerOf(chunk.answer);
  return sseFrame({ type: "chunk", text: hubText(chunk.answer), candidates: geminiCandidates(google) });
}

/** The error event of a stream that has begun. */
export function errorFrame(error: GatewayError, requestId: string): string {
  return sseFrame({ type: "error", ...nativeErrorBody(error, requestId) });
}

/** The frames of an answer: its chunks, then done, or error if it broke off. */
export async function* nativeFrames(
  answer: InvokeStream | InvokeResult,
  ctx: SurfaceContext<NativeRequest>,
): AsyncGenerator<string> {
  if (!isStream(answer)) {
    yield sseFrame({ type: "chunk", text: answer.text });
    yield sseFrame({ type: "done", ...nativeBody(answer, ctx.request.includeCandidates), request_id: ctx.requestId });
    return;
  }
  try {
    for await (const chunk of answer.chunks) if (chunk.answer !== null) yield chunkFrame({ ...chunk, answer: chunk.answer }, ctx);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    yield errorFrame(error, ctx.requestId);
    return;
  }
  yield sseFrame({
    type: "done",
    ...nativeBody(answer.result(), ctx.request.includeCandidates),
    request_id: ctx.requestId,
  });
}

