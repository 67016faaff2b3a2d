// Counts of what the simulated provider saw, so tests can assert "exactly N calls reached the
// provider" and "at most 3 attempts". Only API requests are counted; /__sim control calls are not.
// A record's `group` is the provider's quota group: Google's project, OpenAI's organization (each
// simulator names it so in the stats it shows).

import type { StreamCut, StreamOutcome } from './streaming.ts';

export interface Counter {
  /** Requests that arrived. */
  received: number;
  /** Requests that got a status line (a hanging request is received but never answered). */
  answered: number;
  /** Requests whose connection closed before any answer. */
  abandoned: number;
  /** Answered requests by HTTP status, e.g. {"200": 3, "429": 1}. */
  byStatus: Record<string, number>;
}

export interface RequestRecord<M extends string = string> {
  /** Simulator clock (ms) at arrival. */
  at: number;
  method: M | 'unknown';
  model: string | undefined;
  apiKey: string | undefined;
  /** The key's quota group (project, organization); undefined for an unknown key. */
  group: string | undefined;
  /** HTTP status, or undefined while the request has not been answered. */
  status: number | undefined;
  /** Set when a fault rule decided the answer. */
  faultId: number | undefined;
  /** The connection closed before an answer (client gave up, or the simulator closed). */
  abandoned: boolean;
  /**
   * Set when an answer was cut before its end: 'client' = the caller hung up mid-stream,
   * 'server' = a cut_stream fault cut it (on generateContent: before any byte of the answer).
   */
  streamCut: StreamCut | undefined;
  /** Streamed answers: SSE events written before the stream ended or was cut. */
  chunksSent: number | undefined;
  /** Generation calls: the input tokens counted for the request (its prompt tokens). */
  promptTokens: number | undefined;
  /**
   * The body as the simulator received it, so a test can say what the provider was sent: its JSON
   * parsed, else its text; undefined when empty. Only its first BODY_KEPT characters are kept.
   */
  body: unknown;
}

/** How much of a body a record keeps (bodies with images can be large; 1000 records are kept). */
export const BODY_KEPT = 256 * 1024;

/** Streamed answers that started (status 200 sent) and how they ended. */
export interface StreamCounts {
  /** Got their 200; `started - completed - clientAborted - serverCut` are still being written. */
  started: number;
  /** Ended with the final chunk. */
  completed: number;
  /** The caller hung up before the final chunk: "the caller aborted the provider's stream". */
  clientAborted: number;
  /** A cut_stream fault cut it. */
  serverCut: number;
}

export interface SimStats<M extends string = string> {
  total: Counter;
  byKey: Record<string, Counter>;
  byGroup: Record<string, Counter>;
  byModel: Record<string, Counter>;
  byMethod: Record<string, Counter>;
  /** Received, not yet answered and still connected. */
  inFlight: number;
  /** The most recent requests (up to 1000), oldest first. */
  recent: RequestRecord<M>[];
  streams: StreamCounts;
}

const RECENT_LIMIT = 1000;
/** Label used for requests that carried no key. */
export const NO_KEY = '(none)';

function emptyCounter(): Counter {
  return { received: 0, answered: 0, abandoned: 0, byStatus: {} };
}

export class StatsRecorder<M extends string = string> {
  private stats: SimStats<M> = StatsRecorder.empty<M>();
  /** Records of the current epoch; requests that straddle a reset are not counted after it. */
  private live = new WeakSet<RequestRecord<M>>();

  private static empty<M extends string>(): SimStats<M> {
    return {
      total: emptyCounter(),
      byKey: {},
      byGroup: {},
      byModel: {},
      byMethod: {},
      inFlight: 0,
      recent: [],
      streams: { started: 0, completed: 0, clientAborted: 0, serverCut: 0 },
    };
  }

  private counters(r: RequestRecord<M>): Counter[] {
    const s = this.stats;
    const out = [s.total, (s.byKey[r.apiKey ?? NO_KEY] ??= emptyCounter()), (s.byMethod[r.method] ??= emptyCounter())];
    if (r.group !== undefined) out.push((s.byGroup[r.group] ??= emptyCounter()));
    if (r.model !== undefined) out.push((s.byModel[r.model] ??= emptyCounter()));
    return out;
  }

  /** Records an arrival and returns the record to pass to `answered`. */
  received(
    r: Omit<RequestRecord<M>, 'status' | 'faultId' | 'abandoned' | 'streamCut' | 'chunksSent' | 'promptTokens' | 'body'>,
  ): RequestRecord<M> {
    const record: RequestRecord<M> = {
      ...r,
      status: undefined,
      faultId: undefined,
      abandoned: false,
      streamCut: undefined,
      chunksSent: undefined,
      promptTokens: undefined,
      body: undefined,
    };
    for (const c of this.counters(record)) c.received += 1;
    this.stats.inFlight += 1;
    this.live.add(record);
    this.stats.recent.push(record);
    if (this.stats.recent.length > RECENT_LIMIT) this.stats.recent.shift();
    return record;
  }

  /** The request's body arrived whole: kept on its record (`body`). */
  bodyReceived(record: RequestRecord<M>, text: string): void {
    if (text === '') return;
    const kept = text.length > BODY_KEPT ? text.slice(0, BODY_KEPT) : text;
    try {
      record.body = JSON.parse(kept);
    } catch {
      record.body = kept;
    }
  }

  answered(record: RequestRecord<M>, status: number): void {
    if (record.status !== undefined) return;
    record.status = status;
    if (!this.live.has(record)) return;
    for (const c of this.counters(record)) {
      c.answered += 1;
      c.byStatus[status] = (c.byStatus[status] ?? 0) + 1;
    }
    this.stats.inFlight -= 1;
  }

  abandoned(record: RequestRecord<M>): void {
    if (record.status !== undefined || record.abandoned || record.streamCut !== undefined) return;
    record.abandoned = true;
    if (!this.live.has(record)) return;
    for (const c of this.counters(record)) c.abandoned += 1;
    this.stats.inFlight -= 1;
  }

  /** A streamed answer got its 200 and starts writing chunks. */
  streamStarted(record: RequestRecord<M>): void {
    this.answered(record, 200);
    record.chunksSent = 0;
    if (this.live.has(record)) this.stats.streams.started += 1;
  }

  /** A started stream ended, whole or cut. */
  streamEnded(record: RequestRecord<M>, outcome: StreamOutcome): void {
    record.chunksSent = outcome.chunksSent;
    record.streamCut = outcome.cut;
    if (!this.live.has(record)) return;
    const s = this.stats.streams;
    if (outcome.cut === 'client') s.clientAborted += 1;
    else if (outcome.cut === 'server') s.serverCut += 1;
    else s.completed += 1;
  }

  /**
   * A cut_stream fault dropped a non-streamed call's connection before any answer: it is neither
   * answered (no status line) nor abandoned (the client did not give up).
   */
  cutBeforeAnswer(record: RequestRecord<M>): void {
    if (record.status !== undefined || record.abandoned) return;
    record.streamCut = 'server';
    record.chunksSent = 0;
    if (this.live.has(record)) this.stats.inFlight -= 1;
  }

  snapshot(): SimStats<M> {
    return structuredClone(this.stats);
  }

  reset(): void {
    this.stats = StatsRecorder.empty<M>();
    this.live = new WeakSet();
  }
}
