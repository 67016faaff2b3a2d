// POST /v1/embeddings on the simulator: deterministic unit vectors in input order, floats or base64,
// `dimensions` only up to the model's size, OpenAI's 400s for what it refuses, and its counting: one
// request of the RPM per call however many inputs, the inputs' tokens in TPM.

import { afterEach, describe, expect, it } from 'vitest';
import { startOpenAISimulator, type OpenAISimulator } from './server.ts';
import { call, fakeClock } from './test-helpers.ts';

const MODEL = 'text-embedding-3-small';
let sim: OpenAISimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const embed = (s: OpenAISimulator, body: unknown) => call(s, 'POST', '/v1/embeddings', { key: 'sk-a1', body });

describe('embeddings', () => {
  it('answers one unit vector per input, in order, the same for the same text; base64 says the same floats', async () => {
    sim = await startOpenAISimulator({ organizations: { 'org-a': { keys: ['sk-a1'] } } });
    const floats = await embed(sim, { model: MODEL, input: ['a', 'b', 'a'] });
    expect(floats.status).toBe(200);
    const data = floats.json.data as Array<{ index: number; embedding: number[] }>;
    expect(data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(data[0]!.embedding).toHaveLength(1536);
    expect(data[0]!.embedding).toEqual(data[2]!.embedding);
    expect(data[0]!.embedding).not.toEqual(data[1]!.embedding);
    expect(Math.hypot(...data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(floats.json.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    const b64 = await embed(sim, { model: MODEL, input: 'a', encoding_format: 'base64', dimensions: 8 });
    const bytes = Buffer.from(b64.json.data[0].embedding as string, 'base64');
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    const short = await embed(sim, { model: MODEL, input: 'a', dimensions: 8 });
    expect(decoded).toEqual(short.json.data[0].embedding);
  });

  it("refuses as OpenAI does: an empty input, over 2048 inputs, too many dimensions, a chat model", async () => {
    sim = await startOpenAISimulator({ organizations: { 'org-a': { keys: ['sk-a1'] } } });
    expect((await embed(sim, { model: MODEL, input: '' })).json.error.param).toBe('input');
    expect((await embed(sim, { model: MODEL, input: Array(2049).fill('x') })).status).toBe(400);
    expect((await embed(sim, { model: MODEL, input: 'x', dimensions: 4096 })).json.error.param).toBe('dimensions');
    const chat = await embed(sim, { model: 'gpt-4o', input: 'x' });
    expect(chat.status).toBe(400);
    const asChat = await call(sim, 'POST', '/v1/chat/completions', { key: 'sk-a1', body: { model: MODEL, messages: [{ role: 'user', content: 'x' }] } });
    expect(asChat.status).toBe(400);
  });

  it('counts one request per call whatever its inputs, and their tokens in TPM', async () => {
    const clock = fakeClock('2026-11-27T10:00:05Z');
    sim = await startOpenAISimulator({
      organizations: { 'org-a': { keys: ['sk-a1'], limits: { [MODEL]: { rpm: 2, tpm: 1_000_000 } } } },
      now: clock.now,
    });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await embed(sim, { model: MODEL, input: Array(100).fill(`text ${i}`) })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const tight = await startOpenAISimulator({
      organizations: { 'org-a': { keys: ['sk-a1'], limits: { [MODEL]: { rpm: 100, tpm: 10 } } } },
      now: clock.now,
    });
    try {
      expect((await embed(tight, { model: MODEL, input: 'a'.repeat(36) })).status).toBe(200);
      const over = await embed(tight, { model: MODEL, input: 'a'.repeat(8) });
      expect(over.status).toBe(429);
      expect(over.json.error.type).toBe('tokens');
    } finally {
      await tight.close();
    }
  });
});
