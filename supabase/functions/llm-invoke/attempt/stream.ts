// A streamed answer: the provider's chunks passed to the caller as they arrive (each as the provider
// sent it and in the hub shape: the caller's route takes the form it speaks), with exact accounting.
//   openStream    opens the provider's stream and reads its first chunk, so that anything failing
//                 before the caller has seen a byte is an ordinary failed attempt (retried by the loop)
//   relayStream   passes the chunks on, keeping the provider's latest usage and the text so far (read
//                 from the hub shape); when the stream ends it finalizes the attempt: a success with
//                 the provider's last count, or 'cut' (the caller went away, or the provider broke off)
//                 with the tokens so far. No database write stands between a chunk and the caller, but
//                 where little is left at the provider (room.ts) the success's, before the last event.
import { GatewayError } from "../../_shared/errors.ts";
import {
  billedOutputTokens,
  EMPTY_ANSWER,
  type HubAnswer,
  type HubChunk,
  hubFinish,
  hubText,
  type HubUsage,
  mergeHubChunk,
} from "../../_shared/upstream/hub.ts";
import { sanitizeError } from "../../_shared/sanitize.ts";
import { successRecord, usageCounts } from "./attempt-record.ts";
import { landsWithin, WRITTEN_FIRST_WAIT_MS } from "./finalize.ts";
import type { Clock } from "../clock.ts";
import { answerUsage, type InvokeResult, type InvokeStream, type StreamHead } from "./context.ts";
import type { FinalizeParams } from "../contract.ts";
import { estimateTextTokens } from "../model/tokens.ts";
import {
  type GenerateCall,
  StreamCut,
  type StreamOutcome,
  type UpstreamClient,
  type UpstreamError,
  upstreamFailure,
} from "../../_shared/upstream/port.ts";

type OpenedStream = Extract<StreamOutcome, { ok: true }>;

/**
 * Opens the stream and waits for the provider's first chunk (`upstream`: its name, for messages); a
 * stream that fails before it is a failed call.
 */
export async function openStream(client: UpstreamClient, upstream: string, call: GenerateCall): Promise<StreamOutcome> {
  const opened = await client.stream(call);
  if (!opened.ok) return opened;
  try {
    const first = await opened.chunks.next();
    if (first.done === true) {
      return {
        ok: false,
        latencyMs: opened.latencyMs,
        error: {
          ...upstreamFailure("malformed", `${upstream}'s stream ended before its first chunk.`, { httpStatus: 200 }),
          upstream,
        },
      };
    }
    return {
      ok: true,
      latencyMs: opened.latencyMs,
      servedTier: opened.servedTier ?? null,
      room: opened.room ?? null,
      chunks: prepend(first.value, opened.chunks),
      ...(opened.dialectAnswer === undefined ? {} : { dialectAnswer: opened.dialectAnswer }),
    };
  } catch (error) {
    if (error instanceof StreamCut) return { ok: false, latencyMs: opened.latencyMs, error: error.error };
    throw error;
  }
}

/** `first`, then the rest; stopping it (even before its first step) stops the provider's stream. */
function prepend(
  first: HubChunk,
  rest: AsyncGenerator<HubChunk, void, undefined>,
): AsyncGenerator<HubChunk, void, undefined> {
  let pending: HubChunk | null = first;
  const iterator = {
    next: (): Promise<IteratorResult<HubChunk, void>> => {
      if (pending === null) return rest.next();
      const value = pending;
      pending = null;
      return Promise.resolve({ done: false, value });
    },
    return: (): Promise<IteratorResult<HubChunk, void>> => {
      pending = null;
      return rest.return(undefined);
    },
    throw: (error: unknown) => rest.throw(error),
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator as unknown as AsyncGenerator<HubChunk, void, undefined>;
}

export interface RelayOptions {
  head: StreamHead;
  reservationId: string;
  /** Who streams (the provider's name), for the caller's messages. */
  upstream: string;
  /** Booked at reservation: counted when the provider's stream names no usage at all. */
  estimatedInputTokens: number;
  /** The caller named the request: the whole answer is stored for replay, a cut frees its id. */
  idempotent: boolean;
  finalize: (record: FinalizeParams) => Promise<unknown>;
  /**
   * The finalize of a stream that ends whole lands before its last event reaches the caller (room.ts:
   * little left at the provider): each chunk is passed on once the next has come, the last once written.
   */
  writeFirst?: boolean;
  endRequest: () => Promise<void>;
  /** Off the response path where the runtime allows it, else awaited. */
  afterAnswer: (work: Promise<unknown>) => Promise<void>;
  /** After the finalize: the whole answer once the stream ended whole, null once it broke off (the response cache's). */
  settled?: (whole: InvokeResult | null) => Promise<unknown>;
  clock: Clock;
  logError: (message: string) => void;
  /**
   * Aborts when the caller goes away. The stream is then ended here too, not only when the runtime
   * cancels the response body: a relay parked between chunks would otherwise wait for that alone.
   */
  signal?: AbortSignal;
}

/** What was streamed so far: the chunks merged into the whole answer (the hub's), and what is read from it. */
class StreamTally {
  /** The whole answer in the hub's words, as the provider's whole answer would have said it. */
  whole: HubAnswer = EMPTY_ANSWER;

  add(chunk: HubChunk): void {
    if (chunk.answer !== null) this.whole = mergeHubChunk(this.whole, chunk.answer);
  }

  get text(): string {
    return hubText(this.whole);
  }

  /** The provider's latest count (every chunk may carry one; the last carries the final one). */
  get usage(): HubUsage | null {
    return this.whole.usage;
  }

  /**
   * Output tokens so far: the provider's count, but never below our estimate of the text streamed (a chunk
   * before the last may carry a usage without the output's count yet).
   */
  outputTokens(): number {
    const usage = this.usage;
    return Math.max(usage === null ? 0 : billedOutputTokens(usage), estimateTextTokens(this.text));
  }
}

export function relayStream(opened: OpenedStream, options: RelayOptions): InvokeStream {
  const { clock } = options;
  const startedAt = clock.now() - opened.latencyMs;
  const tally = new StreamTally();
  let whole: InvokeResult | null = null;

  const result = (): InvokeResult => ({
    text: tally.text,
    ...options.head,
    usage: answerUsage(tally.usage, options.estimatedInputTokens),
    hub: tally.whole,
    ...(opened.dialectAnswer === undefined ? {} : { dialectAnswer: opened.dialectAnswer() }),
  });

  async function* chunks(): AsyncGenerator<HubChunk, void, undefined> {
    let ended: "done" | "client" | "upstream" = "client";
    let cut: UpstreamError | null = null;
    /**
     * Under writeFirst, from the chunk that says the answer's end (its finish) on: the latest
     * chunk, held until the next comes (or, the last, until written). The text before it flows as it comes.
     */
    let held: HubChunk | null = null;
    try {
      for await (const chunk of opened.chunks) {
        tally.add(chunk);
        if (options.writeFirst !== true || (held === null && !saysTheEnd(chunk))) {
          yield chunk;
          continue;
        }
        if (held !== null) yield held;
        held = chunk;
      }
      ended = "done";
      if (held !== null) {
        writtenFirst = await landsWithin(finalizeWhole(), WRITTEN_FIRST_WAIT_MS);
        const last = held;
        held = null;
        yield last;
      }
    } catch (error) {
      if (!(error instanceof StreamCut)) throw error;
      cut = error.error;
      // Our caller's own signal aborted the call: the caller went away.
      ended = cut.kind === "aborted" ? "client" : "upstream";
    } finally {
      await finish(ended, cut);
    }
    // The provider broke off: what came before the break is the caller's too.
    if (ended === "upstream" && held !== null) yield held;
    // Only a break-off gets here (a caller that stops reading ends the generator at its yield):
    // the stream must not look whole to whoever reads it.
    if (ended === "client") {
      throw new GatewayError("client_closed", `The call to ${options.upstream} was aborted: the caller went away.`);
    }
    if (ended === "upstream") {
      throw new GatewayError(
        "upstream_error",
        `${options.upstream}'s stream broke off after it started (${cut?.message ?? "no reason given"}); ` +
          "the part already sent is all there is.",
        { details: { cut_by: "upstream" } },
      );
    }
  }

  /** The stream ended whole: its success written (once). */
  let written: Promise<unknown> | null = null;
  /** Under writeFirst: the success landed before the last event. */
  let writtenFirst = false;
  function finalizeWhole(): Promise<unknown> {
    if (written !== null) return written;
    const answer = whole = result();
    return written = options.finalize(successRecord({
      reservationId: options.reservationId,
      latencyMs: clock.now() - startedAt,
      ...usageCounts(tally.usage),
      response: options.idempotent ? answer : null,
    }));
  }

  async function finish(ended: "done" | "client" | "upstream", cut: UpstreamError | null): Promise<void> {
    options.signal?.removeEventListener("abort", onAbort);
    const latencyMs = clock.now() - startedAt;
    if (ended === "done") {
      // Written before the last event under writeFirst: then only the response cache's part is left.
      const landed = finalizeWhole();
      const answer = whole!;
      if (writtenFirst && options.settled === undefined) return;
      await options.afterAnswer(landed.then(() => options.settled?.(answer)));
      return;
    }
    const record: FinalizeParams = {
      ...successRecord({
        reservationId: options.reservationId,
        latencyMs,
        inputTokens: tally.usage?.inputTokens ?? options.estimatedInputTokens,
        outputTokens: tally.outputTokens(),
        cachedInputTokens: tally.usage?.cachedInputTokens ?? null,
        thinkingTokens: tally.usage?.thinkingTokens ?? null,
        cacheWrite5mTokens: tally.usage?.cacheWrite5mTokens ?? null,
        cacheWrite1hTokens: tally.usage?.cacheWrite1hTokens ?? null,
        response: null,
      }),
      outcome: "cut",
      cutBy: ended,
      errorMessage: ended === "client" ? "the caller went away mid-stream" : (cut?.message ?? null),
    };
    const work = options.finalize(record).then(() =>
      options.idempotent
        ? options.endRequest().catch((e) => options.logError(`end of request failed: ${sanitizeError(e)}`))
        : undefined
    ).then(() => options.settled?.(null));
    await options.afterAnswer(work);
  }

  // A generator's body does not run if it is stopped before its first step, so a caller that goes
  // away before reading anything is finalized here instead of in the body's `finally`.
  const body = chunks();
  let started = false;
  const iterator: AsyncIterableIterator<HubChunk> = {
    next: () => {
      started = true;
      return body.next();
    },
    return: async () => {
      if (!started) {
        started = true;
        await opened.chunks.return(undefined);
        await finish("client", null);
      }
      return body.return(undefined);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };

  // The caller went away: end the stream now (see RelayOptions.signal); a second end does nothing.
  const onAbort = () => {
    iterator.return!().catch((e) => options.logError(`ending a stream failed: ${sanitizeError(e)}`));
  };
  if (options.signal?.aborted === true) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });

  return {
    kind: "stream",
    ...options.head,
    chunks: iterator,
    cancel: async () => {
      await iterator.return!();
    },
    result: () => {
      if (whole === null) throw new Error("the stream has not ended yet");
      return whole;
    },
  };
}

/**
 * A chunk that carries the answer's finish: what every provider sends as its stream ends (its usage can
 * come earlier too: Anthropic's opening event, Google's every chunk).
 */
function saysTheEnd(chunk: HubChunk): boolean {
  return chunk.answer !== null && hubFinish(chunk.answer) !== null;
}
