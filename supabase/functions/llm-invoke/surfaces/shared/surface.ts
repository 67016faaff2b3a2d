// What a route's surface must say, whatever API shape it speaks (the gateway's own, Google's, OpenAI's,
// Anthropic's): a whole port. Its front (the error shape, the 404 included, and where its SDKs send
// the key) is loaded with the handler, since an error may come before anything else is read; the rest
// (how its body becomes the one request the gateway runs, how the answer, a stream, a token count and
// the model list are said back in its shape) on its first use. An embedding route's surface is an
// EmbeddingSurface: its body into the one EmbeddingRequest, the vectors back in its shape (no output
// cap, no stream). Authentication, the reservation,
// attempts, audit, idempotency and WAIT/NO_WAIT are the same for all of them (handler.ts, invoke.ts).
import type { ErrorAnswer, JsonAnswer, StreamAnswer } from "../../../_shared/envelope.ts";
import type { GatewayError } from "../../../_shared/errors.ts";
import type { InvokeAnswer, InvokeResult, InvokeStream, QueueProgress } from "../../attempt/context.ts";
import type { CallRequest, EmbeddingRequest, ModelEntry, NormalizedRequest, RequestLimits } from "../../contract.ts";
import type { StoredResponse } from "../../store/store.ts";

export interface SurfaceContext<R extends CallRequest = NormalizedRequest> {
  requestId: string;
  /** The request as it was run (its model as the caller named it, and what only its surface reads back). */
  request: R;
  /** Epoch ms, for `created` fields. */
  now: number;
  /** The request's URL, whose query may say how to stream (Google's ?alt=sse); absent: the surface's usual form. */
  url?: URL;
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

/** The front of a surface: what is said before the body is read. */
export interface SurfaceFront {
  /**
   * An error before the answer started, in the surface's shape (status and headers stay the gateway's
   * but where its API answers another): a 404 of a path that is no route is one of them.
   */
  error(error: GatewayError, requestId: string): ErrorAnswer;
  /** The key its SDKs send beside `Authorization` (Google's `?key=`, Anthropic's `x-api-key`); null: none. */
  keyOf?(req: Request): string | null;
}

/** Where the model list is read and how it is paged: the request's URL and the clock. */
export interface ModelsContext {
  url: URL;
  now: number;
}

/** A native stream's places in line, told while it waits for its turn (the stream starts at once). */
export interface QueuedStream {
  push(progress: QueueProgress): void;
  /** Settles once a place was told. */
  started(): Promise<"queued">;
  /** The stream's frames: the places told, then the answer's own (or an error frame). */
  frames(
    running: Promise<InvokeAnswer>,
    context: () => SurfaceContext,
    scope: { note(message: string): void; annotate(fields: Record<string, unknown>): void },
  ): AsyncGenerator<string>;
}

/** A surface whole. `R`: the request as it parses it (what only it reads back beside the gateway's). */
export interface Surface<R extends NormalizedRequest = NormalizedRequest> extends SurfaceFront {
  /** The request as the gateway runs it; throws GatewayError for anything it cannot take. */
  parse(input: ParseInput): R;
  /** A whole answer. */
  answer(result: InvokeResult, ctx: SurfaceContext<R>): JsonAnswer;
  /**
   * A streamed answer. A replayed request (same request_id) has a stored InvokeResult instead of a
   * live stream: it is sent as a stream of one chunk. An error thrown by the chunks after the first
   * (GatewayError) is said in the stream, in the surface's shape.
   */
  stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext<R>): StreamAnswer;
  /** A stream that may wait for its turn says where it stands from the start; absent: it starts with the answer. */
  queued?(): QueuedStream;
  /** Its token-count route: the body as the request it would run, and the count in its shape; absent: none. */
  countTokens?: {
    parse(input: ParseInput): NormalizedRequest;
    answer(totalTokens: number): Record<string, unknown>;
  };
  /**
   * Its answers kept for a follow-up that names one (OpenAI's Responses API: store and
   * previous_response_id), and its stored answer read and deleted by id; absent: none kept.
   */
  keeps?: KeptAnswers<R>;
  /** Its model list and one model; `one` is undefined for a name the gateway does not serve. Absent: none. */
  models?: {
    list(models: ModelEntry[], at: ModelsContext): Record<string, unknown>;
    one(models: ModelEntry[], id: string, at: ModelsContext): Record<string, unknown> | undefined;
  };
}

/**
 * An embedding route's surface (its front is its generation surface's: SurfaceRow). `R`: the request as it parses
 * it (what only it reads back beside the gateway's: OpenAI's encoding, Google's one or batch).
 */
export interface EmbeddingSurface<R extends EmbeddingRequest = EmbeddingRequest> {
  /** The request as the gateway runs it; throws GatewayError for anything it cannot take. */
  parse(input: ParseInput): R;
  /** The vectors in its shape. */
  answer(result: InvokeResult, ctx: SurfaceContext<R>): JsonAnswer;
}

/** How a surface keeps answers for a follow-up (handler.ts reads and writes them through the store). */
export interface KeptAnswers<R extends NormalizedRequest = NormalizedRequest> {
  /** The stored answer the request continues (null: none). */
  continues(request: R): string | null;
  /** The request continued from what was stored; throws GatewayError when the stored turns cannot be read. */
  continue(request: R, stored: StoredResponse): R;
  /** What to keep of an answer and under which id; null: the request asked that nothing be kept. */
  keep(result: InvokeResult, ctx: SurfaceContext<R>): { id: string; stored: StoredResponse } | null;
  /** A stored answer as its GET says it. */
  shown(stored: StoredResponse): Record<string, unknown>;
  /** Its DELETE's answer. */
  deleted(id: string): Record<string, unknown>;
}
