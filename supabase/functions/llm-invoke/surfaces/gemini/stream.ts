// :streamGenerateContent's two wire forms: server-sent events (`alt=sse`, what most SDKs ask for) and
// the JSON array Google's GAPIC REST clients read. Both carry Google's chunks as Google sent them and
// end with an error in Google's shape if the call fails after the first chunk.
import type { StreamAnswer } from "../../../_shared/envelope.ts";
import { GatewayError } from "../../../_shared/errors.ts";
import { type GeminiAnswer, geminiAnswerOf, GOOGLE_DIALECT } from "../../../_shared/providers/google/answer.ts";
import { type InvokeResult, type InvokeStream, isStream } from "../../attempt/context.ts";
import { geminiAnswerFor } from "./answer.ts";
import { sseBody } from "../shared/sse.ts";
import type { SurfaceContext } from "../shared/surface.ts";
import { googleError } from "./errors.ts";

// Google frames its server-sent events with CRLF ("data: {...}\r\n\r\n"); sseFrame writes "\n\n".
// Both are valid SSE, but a client written against Google's bytes may split on CRLF only.
const frame = (data: unknown) => `data: ${JSON.stringify(data)}\r\n\r\n`;

/**
 * Google's chunks of an answer: a live stream's as they come (a provider of Google's dialect's as it
 * sent them, another's said in Google's words), a replay's whole answer as one chunk.
 */
async function* googleChunks(answer: InvokeStream | InvokeResult): AsyncGenerator<GeminiAnswer, void, undefined> {
  if (!isStream(answer)) {
    yield geminiAnswerFor(answer);
    return;
  }
  for await (const chunk of answer.chunks) {
    if (chunk.own?.dialect === GOOGLE_DIALECT) yield chunk.own.body;
    else if (chunk.answer !== null) yield geminiAnswerOf(chunk.answer);
  }
}

/**
 * The items of a stream in Google's shape; an error after the first chunk (GatewayError) becomes a
 * last item in Google's error shape. Stopping early (the caller went away) returns the chunks'
 * iterator, which aborts the call to Google.
 */
async function* streamItems(
  answer: InvokeStream | InvokeResult,
  requestId: string,
): AsyncGenerator<unknown, void, undefined> {
  try {
    yield* googleChunks(answer);
  } catch (error) {
    // Anything else is a fault of the gateway: it ends the stream and is reported by the runtime.
    if (!(error instanceof GatewayError)) throw error;
    yield googleError(error, requestId);
  }
}

/** streamGenerateContent with `alt=sse`: each item as one server-sent event, framed as Google frames it. */
export async function* sseFrames(
  answer: InvokeStream | InvokeResult,
  requestId: string,
): AsyncGenerator<string, void, undefined> {
  for await (const item of streamItems(answer, requestId)) yield frame(item);
}

/**
 * streamGenerateContent without `alt=sse`: Google answers a JSON array written element by element. It
 * is what Google's GAPIC REST clients read (google.generativeai with transport="rest" asks for
 * `$alt=json;enum-encoding=int`); the route picks this or the SSE form by the query.
 */
export function geminiJsonArrayStream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
  async function* pieces(): AsyncGenerator<string, void, undefined> {
    let first = true;
    for await (const item of streamItems(answer, ctx.requestId)) {
      yield `${first ? "[" : ",\r\n"}${JSON.stringify(item)}`;
      first = false;
    }
    yield first ? "[]" : "]";
  }
  return {
    stream: sseBody(pieces()),
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  };
}
