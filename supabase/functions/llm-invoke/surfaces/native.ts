// The gateway's own shape (docs/llm-invoke.md): its request body, its answer, and with `"stream": true`
// server-sent events, one JSON object per event, told apart by `type`:
//   queued  {position, expected_at, model, priority, cause}  the request waits for its turn (may repeat)
//   chunk   {text, candidates?}                        a piece of the answer (candidates in Google's shape)
//   done    the whole answer's body, as without stream (its text included)
//   error   {error: {code, message, details?}, ...}    the request failed after the stream began
import type { ErrorAnswer, JsonAnswer, StreamAnswer } from "../../_shared/envelope.ts";
import { nativeBody, nativeErrorBody, nativeFrames } from "./native/answer.ts";
import { Progress } from "./native/progress.ts";
import { type NativeRequest, parseInvokeRequest } from "./native/request.ts";
import { SSE_HEADERS, sseBody } from "./shared/sse.ts";
import type { Surface } from "./shared/surface.ts";

/**
 * The gateway's own route: its answers and errors, a stream that says its place in line while it
 * waits, and none of the other APIs' count-tokens or model routes (the quota route is its own).
 */
export const nativeSurface: Surface<NativeRequest> = {
  parse: ({ body, limits }) => parseInvokeRequest(body, limits),
  answer: (result, ctx): JsonAnswer => ({ body: nativeBody(result, ctx.request.includeCandidates) }),
  stream: (answer, ctx): StreamAnswer => ({ stream: sseBody(nativeFrames(answer, ctx)), headers: SSE_HEADERS }),
  queued: () => new Progress(),
  error: (error, requestId): ErrorAnswer => ({ body: nativeErrorBody(error, requestId) }),
};
