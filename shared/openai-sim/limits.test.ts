// Per-organization limits with exact counts on a fake clock: RPM, TPM booked as input + max_tokens
// on arrival, keys of one organization sharing, another client spending the organization from
// outside, sub-minute slices, the daily cap, and the x-ratelimit-* headers.

import { afterEach, describe, expect, it } from 'vitest';
import { promptTokens, startOpenAISimulator, type OpenAISimulator, type OpenAISimulatorOptions } from './server.ts';
import { call, chat, complete, fakeClock } from './test-helpers.ts';

const MODEL = 'gpt-4o';
let sim: OpenAISimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(limits: { rpm?: number; tpm?: number; rpd?: number }, extra: Partial<OpenAISimulatorOptions> = {}): Promise<OpenAISimulator> {
  sim = await startOpenAISimulator({
    organizations: {
      'org-a': { keys: ['sk-a1', 'sk-a2'], limits: { [MODEL]: limits } },
      'org-b': { keys: ['sk-b1'], limits: { [MODEL]: limits } },
    },
    waitStyle: 'natural',
    ...extra,
  });
  return sim;
}

/** The tokens a one-message request books on arrival. */
function booked(text: string, maxTokens: number): number {
  return promptTokens({ messages: [{ role: 'user', content: text }], tools: [], format: { type: 'text' } }) + maxTokens;
}

describe('requests per minute', () => {
  it('admits exactly N in a minute window and answers the N+1th 429 requests/rate_limit_exceeded; the next window admits again', async () => {
    const clock = fakeClock('2026-11-27T10:00:05Z');
    const s = await start({ rpm: 5, tpm: 1_000_000 }, { now: clock.now });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await complete(s, 'sk-a1', chat(MODEL, `q${i}`, { max_tokens: 10 }))).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const refused = await complete(s, 'sk-a1', chat(MODEL, 'again', { max_tokens: 10 }));
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
    expect(refused.json.error.message).toContain('try again in 55s.'); // natural wording: to the next minute
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset-requests')).toBe('55s');
    expect(s.stats().byOrganization['org-a']!.byStatus).toEqual({ '200': 5, '429': 2 });

    clock.advance(55_000);
    expect((await complete(s, 'sk-a1', chat(MODEL, 'next minute', { max_tokens: 10 }))).status).toBe(200);
  });

  it('counts every key of an organization together, and organizations apart', async () => {
    const s = await start({ rpm: 3, tpm: 1_000_000 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    const a = await Promise.all(['sk-a1', 'sk-a2', 'sk-a1', 'sk-a2'].map((k) => complete(s, k, chat(MODEL, 'x', { max_tokens: 1 }))));
    expect(a.map((r) => r.status).sort()).toEqual([200, 200, 200, 429]);
    const b = await Promise.all([1, 2, 3].map(() => complete(s, 'sk-b1', chat(MODEL, 'x', { max_tokens: 1 }))));
    expect(b.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(s.stats().quota['org-a']![MODEL]!.minuteRequests).toBe(3);
  });

  it('admits exactly N of many concurrent requests', async () => {
    const s = await start({ rpm: 20, tpm: 10_000_000 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => complete(s, i % 2 ? 'sk-a1' : 'sk-a2', chat(MODEL, `c${i}`, { max_tokens: 5 }))));
    expect(all.filter((r) => r.status === 200)).toHaveLength(20);
    expect(all.filter((r) => r.status === 429)).toHaveLength(30);
  });
});

describe('tokens per minute, booked on arrival', () => {
  it('counts input + max_tokens when the request arrives, whatever the answer writes', async () => {
    const perRequest = booked('x', 400);
    const s = await start({ rpm: 1000, tpm: 2 * perRequest + 10 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    const first = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }));
    expect(first.status).toBe(200);
    expect(first.json.usage.completion_tokens).toBeLessThan(10); // the answer is short; the booking is not
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe(String(perRequest + 10));
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }))).status).toBe(200);
    const third = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }));
    expect(third.status).toBe(429);
    expect(third.json.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    // A smaller max_tokens still fits.
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
    expect(s.stats().quota['org-a']![MODEL]!.minuteTokens).toBe(2 * perRequest + booked('x', 1));
  });

  it("with settle 'usage', what the answer did not use goes back to the window once it is answered", async () => {
    const perRequest = booked('x', 400);
    const tpm = perRequest + 50;
    const s = await start({ rpm: 1000, tpm }, { now: fakeClock('2026-11-27T10:00:00Z').now, settle: 'usage' });
    const first = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }));
    const used = first.json.usage.total_tokens as number;
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe(String(tpm - used));
    // Each booking still needs its whole 400 on arrival: k answers fit while (k - 1) × used + perRequest ≤ tpm.
    let fits = 1;
    while (fits * used + perRequest <= tpm) fits += 1;
    const statuses = [];
    for (let i = 1; i <= fits; i++) statuses.push((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }))).status);
    expect(statuses).toEqual([...Array<number>(fits - 1).fill(200), 429]);
    expect(s.stats().quota['org-a']![MODEL]!.minuteTokens).toBe(fits * used);
    // The same requests without settling: the second is refused.
    const plain = await startOpenAISimulator({
      organizations: { 'org-a': { keys: ['sk-a1'], limits: { [MODEL]: { rpm: 1000, tpm } } } },
      now: fakeClock('2026-11-27T10:00:00Z').now,
    });
    try {
      expect((await complete(plain, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }))).status).toBe(200);
      expect((await complete(plain, 'sk-a1', chat(MODEL, 'x', { max_tokens: 400 }))).status).toBe(429);
    } finally {
      await plain.close();
    }
  });

  it('books max_completion_tokens over max_tokens, the default when neither is sent, and × n', async () => {
    const s = await start({ rpm: 1000, tpm: 1_000_000 }, { now: fakeClock('2026-11-27T10:00:00Z').now, defaultMaxTokens: 700 });
    await complete(s, 'sk-a1', chat(MODEL, 'x', { max_completion_tokens: 50, max_tokens: 9 }));
    expect(s.stats().quota['org-a']![MODEL]!.minuteTokens).toBe(booked('x', 50));
    await complete(s, 'sk-a1', chat(MODEL, 'x'));
    expect(s.stats().quota['org-a']![MODEL]!.minuteTokens).toBe(booked('x', 50) + booked('x', 700));
    await complete(s, 'sk-b1', chat(MODEL, 'x', { max_tokens: 20, n: 3 }));
    expect(s.stats().quota['org-b']![MODEL]!.minuteTokens).toBe(booked('x', 0) + 60);
  });

  it('a request larger than the whole TPM is refused 429 tokens', async () => {
    const s = await start({ rpm: 1000, tpm: 100 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    const r = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 500 }));
    expect(r.status).toBe(429);
    expect(r.json.error.type).toBe('tokens');
  });
});

describe('another client of the organization', () => {
  it('spends the same limits: what it takes, the gateway cannot have, and the headers show it', async () => {
    const s = await start({ rpm: 10, tpm: 1_000_000 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    expect(s.spend({ organization: 'org-a', model: MODEL, requests: 4, tokensEach: 100 })).toEqual({ admitted: 4, refused: 0 });
    const first = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }));
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('5');
    const rest = [];
    for (let i = 0; i < 6; i++) rest.push((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status);
    expect(rest).toEqual([200, 200, 200, 200, 200, 429]);
    // The other client is refused too once the organization is spent, and counted apart.
    expect(s.spend({ organization: 'org-a', model: MODEL, requests: 2 })).toEqual({ admitted: 0, refused: 2 });
    expect(s.stats().outside['org-a']![MODEL]).toEqual({ admitted: 4, refused: 2 });
    expect(s.stats().total.received).toBe(7);
  });

  it('over HTTP: POST /__sim/spend', async () => {
    const s = await start({ rpm: 2, tpm: 1_000_000 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    const res = await fetch(`${s.url}/__sim/spend`, { method: 'POST', body: JSON.stringify({ organization: 'org-a', model: MODEL, requests: 2 }) });
    expect(await res.json()).toEqual({ admitted: 2, refused: 0 });
    expect((await complete(s, 'sk-a2', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(429);
  });
});

describe('sub-minute enforcement', () => {
  it('with 1 s slices, 120 RPM admits 2 per second and the rest of the minute later', async () => {
    const clock = fakeClock('2026-11-27T10:00:00Z');
    const s = await start({ rpm: 120, tpm: 1_000_000 }, { now: clock.now, sliceMs: 1000 });
    const burst = [];
    for (let i = 0; i < 3; i++) burst.push(await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 })));
    expect(burst.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(burst[2]!.json.error.type).toBe('requests');
    expect(burst[2]!.json.error.message).toContain('try again in 1s.'); // natural wording: the wait to the next slice
    clock.advance(1000);
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
  });

  it('without slices the same burst is admitted', async () => {
    const s = await start({ rpm: 120, tpm: 1_000_000 }, { now: fakeClock('2026-11-27T10:00:00Z').now });
    const burst = [];
    for (let i = 0; i < 3; i++) burst.push((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status);
    expect(burst).toEqual([200, 200, 200]);
  });
});

describe('daily cap and windows', () => {
  it('a daily cap refuses 429 requests until the next UTC day', async () => {
    const clock = fakeClock('2026-11-27T23:58:00Z');
    const s = await start({ rpm: 100, tpm: 1_000_000, rpd: 2 }, { now: clock.now });
    for (let i = 0; i < 2; i++) expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
    clock.advance(60_000);
    const r = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }));
    expect(r.status).toBe(429);
    expect(r.json.error.type).toBe('requests');
    expect(r.json.error.message).toContain('try again in 60s.');
    clock.advance(60_000);
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
  });

  it('sliding windows free a slot 60 s after the admission that took it', async () => {
    const clock = fakeClock('2026-11-27T10:00:30Z');
    const s = await start({ rpm: 2, tpm: 1_000_000 }, { now: clock.now, window: 'sliding' });
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
    clock.advance(20_000);
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
    clock.advance(35_000); // 10:01:25, past the fixed minute, inside the sliding one
    const r = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }));
    expect(r.status).toBe(429);
    expect(r.headers.get('x-ratelimit-reset-requests')).toBe('25s');
    clock.advance(5_000);
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
  });
});

describe('x-ratelimit-* headers', () => {
  it('are on every answer of a known organization and model, in OpenAI\'s duration format', async () => {
    const clock = fakeClock('2026-11-27T10:00:00.000Z');
    const s = await start({ rpm: 60, tpm: 50_000 }, { now: clock.now });
    const ok = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 10 }));
    expect(Object.fromEntries([...ok.headers].filter(([k]) => k.startsWith('x-ratelimit-')))).toEqual({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-limit-tokens': '50000',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-remaining-tokens': String(50_000 - booked('x', 10)),
      'x-ratelimit-reset-requests': '1m0s',
      'x-ratelimit-reset-tokens': '1m0s',
    });
    clock.advance(59_980);
    const bad = await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: -1 }));
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-ratelimit-reset-requests')).toBe('20ms');
    expect(bad.headers.get('x-ratelimit-remaining-requests')).toBe('59');
  });
});

describe('the wait in the message', () => {
  it("'mixed' words it in seconds, then milliseconds, then not at all, answer after answer", async () => {
    const s = await start({ rpm: 1, tpm: 1_000_000 }, { now: fakeClock('2026-11-27T10:00:59.500Z').now, waitStyle: 'mixed' });
    expect((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).status).toBe(200);
    const messages = [];
    for (let i = 0; i < 3; i++) messages.push((await complete(s, 'sk-a1', chat(MODEL, 'x', { max_tokens: 1 }))).json.error.message as string);
    expect(messages[0]).toContain('try again in 0.5s.');
    expect(messages[1]).toContain('try again in 500ms.');
    expect(messages[2]).not.toMatch(/try again/i);
  });
});

describe('what it was sent', () => {
  it('keeps each request body as received, its JSON parsed, on the stats record', async () => {
    const s = await start({ rpm: 5, tpm: 1_000_000 });
    const body = chat(MODEL, 'what was I sent?', { max_tokens: 7, service_tier: 'flex' });
    expect((await complete(s, 'sk-a1', body)).status).toBe(200);
    expect((await call(s, 'POST', '/v1/chat/completions', { key: 'sk-a1', rawBody: '{not json' })).status).toBe(400);
    expect(s.stats().recent.map((r) => r.body)).toEqual([body, '{not json']);
  });
});
