// What a route that generates must say, whatever API shape it speaks (the gateway's own, Google's,
// OpenAI's): how its body becomes the one request the gateway runs, and how the gateway's answer, a
// stream, or an error is said back in its shape. Authentication, the reservation, attempts, audit,
// idempotency and WAIT/NO_WAIT are the same for all of them (handler.ts, invoke.ts).
import type { ErrorAnswer, JsonAnswer, StreamAnswer } from "../../_shared/envelope.ts";
import type { GatewayError } from "../../_shared/errors.ts";
import type { InvokeResult, InvokeStream } from "../attempt/context.ts";
import type { NormalizedRequest, RequestLimits } from "../contract.ts";

export interface SurfaceContext {
  requestId: string;
  /** The request as it was run (its model as the caller named it, options such as include_candidates). */
  request: NormalizedRequest;
  /** Epoch ms, for `created` fields. */
  now: number;
}

export interface ParseInput {
  /** The parsed JSON body. */
  body: unknown;
  headers: Headers;
  limits: RequestLimits;
  /** From the path, where the route names them (Google's routes: the model, and whether it streams). */
  model?: string;
  stream?: boolean;
}

export interface GenerateSurface {
  /** The request as the gateway runs it; throws GatewayError for anything it cannot take. */
  parse(input: ParseInput): NormalizedRequest;
  /** A whole answer. */
  answer(result: InvokeResult, ctx: SurfaceContext): JsonAnswer;
  /**
   * A streamed answer, as server-sent events. A replayed request (same request_id) has a stored
   * InvokeResult instead of a live stream: it is sent as a stream of one chunk. An error thrown by
   * the chunks after the first (GatewayError) is said in the stream, in the surface's shape.
   */
  stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer;
  /** An error before the answer started, in the surface's shape (status and headers stay the gateway's). */
  error(error: GatewayError, requestId: string): ErrorAnswer;
}
