// Writes a streamed answer one SSE event at a time, optionally paced, and reports how it ended.
// Pacing makes "the caller hung up mid-stream" and "the provider cut the stream" observable: with every
// chunk written at once both would be invisible, because the whole answer sits in the socket buffer
// before the client can react.

import type { ServerResponse } from 'node:http';
import type { SseEol } from './http.ts';

/** Who ended a stream before its last chunk: the client hung up, or the simulator cut it (fault). */
export type StreamCut = 'client' | 'server';

export interface StreamOutcome {
  /** Events fully handed to the socket. */
  chunksSent: number;
  /** undefined when the stream ended normally (or the simulator was shutting down). */
  cut: StreamCut | undefined;
}

export interface PaceOptions {
  /** Pause before every event after the first. */
  delayMs: number;
  /** `data: <event>` ends with two of these: '\r\n' (Google) or '\n' (OpenAI). */
  eol: SseEol;
  /**
   * Writes one event's whole frame (Anthropic names its events: `event: <name>` before `data:`);
   * default `data: <event>` and two `eol`.
   */
  frame?: ((event: string) => string) | undefined;
  /** cut_stream fault: send this many events, never the last one, then destroy the socket. */
  cutAfter?: number | undefined;
  /** True while the whole simulator is closing; its cut connections are nobody's abort. */
  shuttingDown: () => boolean;
}

/** Resolves after `ms`, or as soon as the connection closes, whichever is first. */
function pause(res: ServerResponse, ms: number): Promise<void> {
  if (ms <= 0 || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once('close', done);
  });
}

/**
 * Writes one event and waits until it is handed to the socket (so a slow reader holds the stream
 * back, and a cut that follows cannot discard it), or until the connection closes.
 */
function writeEvent(res: ServerResponse, text: string): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('close', done);
      resolve();
    };
    res.once('close', done);
    res.write(text, done);
  });
}

/** Writes `data: <event>` events one at a time, `delayMs` apart; a cut never sends the last one. */
export async function writePacedSse(res: ServerResponse, events: string[], opts: PaceOptions): Promise<StreamOutcome> {
  if (res.destroyed || res.headersSent) return { chunksSent: 0, cut: opts.shuttingDown() ? undefined : 'client' };
  let closed = false;
  res.once('close', () => {
    closed = true;
  });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // A server cut never delivers the last event: that one ends the answer (finishReason, [DONE]).
  const limit = opts.cutAfter === undefined ? events.length : Math.max(0, Math.min(opts.cutAfter, events.length - 1));
  let sent = 0;
  for (; sent < limit; sent++) {
    if (sent > 0) await pause(res, opts.delayMs);
    if (closed || res.destroyed) return { chunksSent: sent, cut: opts.shuttingDown() ? undefined : 'client' };
    await writeEvent(res, opts.frame ? opts.frame(events[sent]!) : `data: ${events[sent]}${opts.eol}${opts.eol}`);
  }
  if (opts.cutAfter !== undefined) {
    // Flush what was written (headers at least), then close without the chunked-body terminator:
    // the client sees a 200 stream that breaks off.
    res.flushHeaders();
    if (res.socket) res.socket.destroySoon();
    else res.destroy();
    return { chunksSent: sent, cut: 'server' };
  }
  res.end();
  return { chunksSent: sent, cut: undefined };
}
