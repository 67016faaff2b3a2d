// Google's embedding methods on the simulator: embedContent and batchEmbedContents answer unit vectors
// in order (the same for the same text), of outputDimensionality's size; a batch over 100 is Google's
// 400; each request of a batch is a request of the RPM (as Google counts it), and a generation method
// on an embedding model is a 404 as Google answers it.

import { afterEach, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { call, fakeClock } from './test-helpers.ts';

const MODEL = 'gemini-embedding-001';
const KEY = 'sim-key-e';
let sim: GoogleSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const request = (text: string, extra: Record<string, unknown> = {}) =>
  ({ model: `models/${MODEL}`, content: { parts: [{ text }] }, ...extra });

describe('embeddings', () => {
  it('embedContent and batchEmbedContents answer unit vectors in order, of the size asked', async () => {
    sim = await startGoogleSimulator({ keys: { [KEY]: 'proj-e' } });
    const one = await call(sim, 'POST', `/v1beta/models/${MODEL}:embedContent`, { key: KEY, body: request('a') });
    expect(one.status).toBe(200);
    expect(one.json.embedding.values).toHaveLength(3072);
    expect(Math.hypot(...(one.json.embedding.values as number[]))).toBeCloseTo(1, 5);
    const batch = await call(sim, 'POST', `/v1beta/models/${MODEL}:batchEmbedContents`, {
      key: KEY,
      body: { requests: [request('a', { outputDimensionality: 768 }), request('b', { outputDimensionality: 768 })] },
    });
    expect(batch.json.embeddings.map((e: { values: number[] }) => e.values.length)).toEqual([768, 768]);
    expect(batch.json.embeddings[0].values).not.toEqual(batch.json.embeddings[1].values);
    expect(one.json.usageMetadata).toBeUndefined();
  });

  it("refuses as Google does: over 100 in a batch, a size over the model's, generation on an embedding model", async () => {
    sim = await startGoogleSimulator({ keys: { [KEY]: 'proj-e' } });
    const many = await call(sim, 'POST', `/v1beta/models/${MODEL}:batchEmbedContents`, {
      key: KEY,
      body: { requests: Array.from({ length: 101 }, (_, i) => request(`t${i}`)) },
    });
    expect(many.status).toBe(400);
    expect(many.json.error.message).toContain('at most 100 requests can be in one batch');
    const big = await call(sim, 'POST', `/v1beta/models/${MODEL}:embedContent`, { key: KEY, body: request('a', { outputDimensionality: 4096 }) });
    expect(big.status).toBe(400);
    const generate = await call(sim, 'POST', `/v1beta/models/${MODEL}:generateContent`, {
      key: KEY,
      body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
    });
    expect(generate.status).toBe(404);
  });

  it('counts each request of a batch as a request of the RPM', async () => {
    const clock = fakeClock('2026-11-27T10:00:05Z');
    sim = await startGoogleSimulator({ keys: { [KEY]: 'proj-e' }, now: clock.now, models: { [MODEL]: { rpm: 5 } } });
    const batch = (n: number) =>
      call(sim!, 'POST', `/v1beta/models/${MODEL}:batchEmbedContents`, {
        key: KEY,
        body: { requests: Array.from({ length: n }, (_, i) => request(`t${i}`)) },
      });
    expect((await batch(3)).status).toBe(200);
    const refused = await batch(3);
    expect(refused.status).toBe(429);
    expect(refused.json.error.status).toBe('RESOURCE_EXHAUSTED');
  });
});
