// Paced streaming: chunks written one at a time, a caller hanging up mid-stream, and the
// cut_stream fault (Google's side breaking the stream).

import { afterEach, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator, type SimulatorOptions } from './server.ts';
import { ask, call } from './test-helpers.ts';

const FLASH = 'gemini-2.5-flash';
const KEY = 'sim-key-a1';
const STREAM = `/v1beta/models/${FLASH}:streamGenerateContent?alt=sse`;
const LIMITS = { [FLASH]: { rpm: 1000, rpd: 1000 } };

let sim: GoogleSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(opts: SimulatorOptions = {}): Promise<GoogleSimulator> {
  sim = await startGoogleSimulator({ models: LIMITS, ...opts });
  return sim;
}

/** Reads SSE events off a live response, one at a time, as the server writes them. */
class SseReader {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** The next event's JSON, or undefined when the stream ended cleanly. Rejects on a cut socket. */
  async next(): Promise<any> {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const event = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 4);
        expect(event.startsWith('data: ')).toBe(true);
        return JSON.parse(event.slice('data: '.length));
      }
      const { done, value } = await this.reader.read();
      if (done) return undefined;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }
}

async function openStream(s: GoogleSimulator, body: unknown, signal?: AbortSignal): Promise<SseReader> {
  const init: RequestInit = { method: 'POST', headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  if (signal) init.signal = signal;
  const res = await fetch(`${s.url}${STREAM}`, init);
  expect(res.status).toBe(200);
  return new SseReader(res.body!.getReader());
}

/** Polls the simulator's stats until `ok` holds (the server sees a closed socket a moment later). */
async function until(s: GoogleSimulator, ok: (st: ReturnType<GoogleSimulator['stats']>) => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(s.stats()); i++) await new Promise((r) => setTimeout(r, 10));
  expect(ok(s.stats())).toBe(true);
}

describe('paced streaming (streamChunkDelayMs)', () => {
  it('writes chunks one at a time: the first arrives while the stream is still being written', async () => {
    const s = await start({ streamChunks: 4, streamChunkDelayMs: 300 });
    const events = await openStream(s, ask('a paced answer, please'));
    const first = await events.next();
    // The client holds chunk 1 and the simulator has not finished the stream.
    expect(s.stats().streams).toEqual({ started: 1, completed: 0, clientAborted: 0, serverCut: 0 });
    const chunks = [first];
    for (let c = await events.next(); c !== undefined; c = await events.next()) chunks.push(c);
    expect(chunks).toHaveLength(4);

    // Every chunk carries the prompt count and the answer's tokens so far; only the last finishes.
    const plain = await call(s, 'POST', `/v1beta/models/${FLASH}:generateContent`, { key: KEY, body: ask('a paced answer, please') });
    const prompt = plain.json.usageMetadata.promptTokenCount;
    const counts = chunks.map((c) => c.usageMetadata.candidatesTokenCount);
    expect(chunks.every((c) => c.usageMetadata.promptTokenCount === prompt)).toBe(true);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts.at(-1)).toBe(plain.json.usageMetadata.candidatesTokenCount);
    expect(chunks.map((c) => c.candidates[0].finishReason)).toEqual([undefined, undefined, undefined, 'STOP']);

    await until(s, (st) => st.streams.completed === 1);
    const record = s.stats().recent.find((r) => r.method === 'streamGenerateContent');
    expect(record).toMatchObject({ status: 200, streamCut: undefined, chunksSent: 4 });
  });

  it('records that the caller aborted Google\'s stream, and how many chunks it had been sent', async () => {
    const s = await start({ streamChunks: 5, streamChunkDelayMs: 200 });
    const abort = new AbortController();
    const events = await openStream(s, ask('I will hang up early'), abort.signal);
    expect((await events.next()).candidates[0].finishReason).toBeUndefined();
    abort.abort();

    await until(s, (st) => st.streams.clientAborted === 1);
    const st = s.stats();
    expect(st.streams).toEqual({ started: 1, completed: 0, clientAborted: 1, serverCut: 0 });
    const [record] = st.recent;
    expect(record).toMatchObject({ method: 'streamGenerateContent', status: 200, streamCut: 'client' });
    expect(record!.chunksSent).toBeGreaterThanOrEqual(1);
    expect(record!.chunksSent).toBeLessThan(5);
    // It was answered (status 200 went out), so it is not an abandoned request.
    expect(st.total).toMatchObject({ received: 1, answered: 1, abandoned: 0 });
  });

  it('without a delay writes the whole answer and counts the stream as completed', async () => {
    const s = await start();
    const r = await call(s, 'POST', STREAM, { key: KEY, body: ask('all at once') });
    expect(r.text.split('\r\n\r\n').filter((e) => e !== '')).toHaveLength(3);
    await until(s, (st) => st.streams.completed === 1);
    expect(s.stats().recent[0]).toMatchObject({ chunksSent: 3, streamCut: undefined });
  });

  it('refuses a negative delay', async () => {
    await expect(startGoogleSimulator({ streamChunkDelayMs: -1 })).rejects.toThrow(/streamChunkDelayMs/);
  });
});

describe('cut_stream fault', () => {
  it('sends afterChunks chunks, never the final one, then drops the connection', async () => {
    const s = await start({ streamChunks: 4 });
    s.addFault({ kind: 'cut_stream', afterChunks: 2, count: 1 });
    const events = await openStream(s, ask('google breaks this one'));
    const got = [await events.next(), await events.next()];
    expect(got.every((c) => c.candidates[0].finishReason === undefined)).toBe(true);
    await expect(events.next()).rejects.toThrow();

    await until(s, (st) => st.streams.serverCut === 1);
    const st = s.stats();
    expect(st.streams).toEqual({ started: 1, completed: 0, clientAborted: 0, serverCut: 1 });
    expect(st.recent[0]).toMatchObject({ streamCut: 'server', chunksSent: 2, faultId: expect.any(Number) });
    // Google had accepted the request: it counts against the quota.
    expect(st.quota['sim-project-a']?.[FLASH]?.minuteRequests).toBe(1);
  });

  it('defaults to one chunk, can cut before any chunk, and never sends the final chunk', async () => {
    const s = await start({ streamChunks: 3 });
    s.setFaults([
      { kind: 'cut_stream', count: 1 },
      { kind: 'cut_stream', afterChunks: 0, count: 1 },
      { kind: 'cut_stream', afterChunks: 99, count: 1 },
    ]);
    for (const expected of [1, 0, 2]) {
      const events = await openStream(s, ask('cut me'));
      for (let i = 0; i < expected; i++) expect((await events.next()).candidates[0].finishReason).toBeUndefined();
      await expect(events.next()).rejects.toThrow();
    }
    await until(s, (st) => st.streams.serverCut === 3);
    expect(s.stats().recent.map((r) => r.chunksSent)).toEqual([1, 0, 2]);
  });

  it('drops a generateContent connection before any body, neither answered nor abandoned', async () => {
    const s = await start();
    await call(s, 'POST', '/__sim/faults', { body: { kind: 'cut_stream', methods: ['generateContent'], count: 1 } });
    await expect(call(s, 'POST', `/v1beta/models/${FLASH}:generateContent`, { key: KEY, body: ask('x') })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50)); // let the server see its own socket close
    const st = s.stats();
    expect(st.recent[0]).toMatchObject({ status: undefined, streamCut: 'server', chunksSent: 0, abandoned: false });
    expect(st.total).toMatchObject({ received: 1, answered: 0, abandoned: 0 });
    expect(st.inFlight).toBe(0);
    expect(st.streams.started).toBe(0);
    expect((await call(s, 'POST', `/v1beta/models/${FLASH}:generateContent`, { key: KEY, body: ask('x') })).status).toBe(200);
  });

  it('is validated by the control API', async () => {
    const s = await start();
    const bad = await call(s, 'POST', '/__sim/faults', { body: { kind: 'cut_stream', afterChunks: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('afterChunks');
    const ok = await call(s, 'POST', '/__sim/faults', { body: { kind: 'cut_stream', afterChunks: 0 } });
    expect(ok.json.faults[0]).toMatchObject({ kind: 'cut_stream', afterChunks: 0 });
  });
});
