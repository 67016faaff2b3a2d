// Google's counting as configuration: sliding windows, a clock offset, network delay before a
// request is counted. Each mode is shown where it differs from the default fixed minute at :00.

import { afterEach, describe, expect, it } from 'vitest';
import { arrivalDelays, seededRandom } from '../sim-core/arrival.ts';
import { DEFAULT_MODELS, type ModelSpec } from './config.ts';
import { QUOTA_IDS, QuotaTracker } from './quota.ts';
import { startGoogleSimulator, type GoogleSimulator, type SimulatorOptions } from './server.ts';
import { ask, call, detail, fakeClock, generate } from './test-helpers.ts';

const FLASH = 'gemini-2.5-flash';
const KEY = 'sim-key-a1';
const spec40: ModelSpec = { ...DEFAULT_MODELS['gemma-3-27b-it']!, rpm: 40, tpm: 1_000_000, rpd: 1_000_000 };

let sim: GoogleSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});
async function start(opts: SimulatorOptions): Promise<GoogleSimulator> {
  sim = await startGoogleSimulator(opts);
  return sim;
}

describe('sliding window', () => {
  it('refuses the 41st request in a 60 s span even across :00, where fixed minutes admit 80', () => {
    const clock = fakeClock('2026-01-15T12:00:59.700Z');
    const sliding = new QuotaTracker(clock.now, 'sliding');
    const fixed = new QuotaTracker(clock.now, 'fixed');
    let slidingOk = 0;
    let fixedOk = 0;
    for (let i = 0; i < 40; i++) {
      if (sliding.admit('p', 'm', spec40, 1).ok) slidingOk++;
      if (fixed.admit('p', 'm', spec40, 1).ok) fixedOk++;
    }
    clock.set('2026-01-15T12:01:00.500Z');
    const refused = sliding.admit('p', 'm', spec40, 1);
    for (let i = 0; i < 40; i++) {
      if (sliding.admit('p', 'm', spec40, 1).ok) slidingOk++;
      if (fixed.admit('p', 'm', spec40, 1).ok) fixedOk++;
    }
    expect(fixedOk).toBe(80);
    expect(slidingOk).toBe(40);
    // The refusal names when the oldest admission leaves the window: 12:01:59.700.
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 59_200 });
    expect(!refused.ok && refused.violations.map((v) => v.quotaId)).toEqual([QUOTA_IDS.rpm]);
    clock.set('2026-01-15T12:01:59.699Z');
    expect(sliding.admit('p', 'm', spec40, 1).ok).toBe(false);
    clock.advance(1);
    expect(sliding.admit('p', 'm', spec40, 1).ok).toBe(true);
    expect(sliding.snapshot().p!.m!.minuteRequests).toBe(1); // all 40 of :59.700 left together;
  });

  it('never holds more than the limit in any 60 s span, and refuses only when the span is full', () => {
    const clock = fakeClock('2026-01-15T12:00:00Z');
    const q = new QuotaTracker(clock.now, 'sliding');
    const random = seededRandom(7);
    const admitted: number[] = [];
    let refusals = 0;
    for (let i = 0; i < 600; i++) {
      clock.advance(Math.floor(random() * 1500)); // ~80 attempts a minute, 2x the limit, in clumps
      const t = clock.now();
      const inSpan = admitted.filter((a) => a > t - 60_000).length;
      if (q.admit('p', 'm', spec40, 1).ok) {
        expect(inSpan).toBeLessThan(40);
        admitted.push(t);
      } else {
        expect(inSpan).toBe(40);
        refusals++;
      }
    }
    expect(refusals).toBeGreaterThan(100);
    for (const t of admitted) expect(admitted.filter((a) => a > t - 60_000 && a <= t).length).toBeLessThanOrEqual(40);
  });

  it('counts input tokens over the last 60 s and names when enough of them age out', () => {
    const clock = fakeClock('2026-01-15T12:00:50Z');
    const q = new QuotaTracker(clock.now, 'sliding');
    const small: ModelSpec = { ...spec40, tpm: 100 };
    expect(q.admit('p', 'm', small, 60).ok).toBe(true);
    clock.advance(20_000); // 12:01:10
    expect(q.admit('p', 'm', small, 30).ok).toBe(true);
    const refused = q.admit('p', 'm', small, 50);
    expect(!refused.ok && refused.violations.map((v) => v.quotaId)).toEqual([QUOTA_IDS.tpm]);
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 40_000 }); // the 60 tokens leave at 12:01:50
    clock.advance(40_000);
    expect(q.admit('p', 'm', small, 50).ok).toBe(true);
  });

  it('is served over HTTP with the sliding delay in RetryInfo', async () => {
    const clock = fakeClock('2026-01-15T12:00:59.000Z');
    const s = await start({ now: clock.now, window: 'sliding', models: { [FLASH]: { rpm: 2 } } });
    expect((await generate(s, FLASH, KEY, ask('a'))).status).toBe(200);
    expect((await generate(s, FLASH, KEY, ask('b'))).status).toBe(200);
    clock.set('2026-01-15T12:01:00.500Z');
    const r = await generate(s, FLASH, KEY, ask('c'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'RetryInfo')?.retryDelay).toBe('58.500s');
    expect(s.stats().quota['sim-project-a']![FLASH]!.minuteRequests).toBe(2);
    expect(s.counting()).toEqual({ window: 'sliding', clockOffsetMs: 0, arrivalDelayMs: 0, arrivalJitterMs: 0 });
  });
});

describe('clock offset', () => {
  it('moves the minute boundary: +2 s opens the next window 2 s before our :00', async () => {
    const clock = fakeClock('2026-01-15T12:00:57.900Z'); // Google: 12:00:59.900
    const s = await start({ now: clock.now, clockOffsetMs: 2000, models: { [FLASH]: { rpm: 1, rpd: 100 } } });
    expect((await generate(s, FLASH, KEY, ask('a'))).status).toBe(200);
    clock.set('2026-01-15T12:00:58.500Z'); // Google: 12:01:00.500, a new window
    expect((await generate(s, FLASH, KEY, ask('b'))).status).toBe(200);
    const r = await generate(s, FLASH, KEY, ask('c'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'RetryInfo')?.retryDelay).toBe('59.500s'); // to Google's 12:02:00
    expect(s.stats().recent.map((x) => new Date(x.at).toISOString())).toEqual([
      '2026-01-15T12:00:59.900Z',
      '2026-01-15T12:01:00.500Z',
      '2026-01-15T12:01:00.500Z',
    ]);
  });

  it('-2 s keeps our first 2 s of a minute in Google\'s previous window', async () => {
    const clock = fakeClock('2026-01-15T12:00:30.000Z');
    const s = await start({ now: clock.now, clockOffsetMs: -2000, models: { [FLASH]: { rpm: 1, rpd: 100 } } });
    expect((await generate(s, FLASH, KEY, ask('a'))).status).toBe(200);
    clock.set('2026-01-15T12:01:01.500Z'); // ours: a new minute; Google: 12:00:59.500
    const r = await generate(s, FLASH, KEY, ask('b'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'RetryInfo')?.retryDelay).toBe('0.500s');
    clock.set('2026-01-15T12:01:02.000Z');
    expect((await generate(s, FLASH, KEY, ask('c'))).status).toBe(200);
  });

  it('moves the Pacific day boundary with it', async () => {
    const clock = fakeClock('2026-07-15T06:59:57.000Z'); // 23:59:57 PDT; Google: 23:59:59
    const s = await start({ now: clock.now, clockOffsetMs: 2000, models: { [FLASH]: { rpm: 100, rpd: 1 } } });
    expect((await generate(s, FLASH, KEY, ask('a'))).status).toBe(200);
    const refused = await generate(s, FLASH, KEY, ask('b'));
    expect(detail(refused.json, 'QuotaFailure')?.violations).toMatchObject([{ quotaId: QUOTA_IDS.rpd }]);
    clock.set('2026-07-15T06:59:58.000Z'); // ours still 23:59:58 PDT; Google: 00:00:00, a new day
    expect((await generate(s, FLASH, KEY, ask('c'))).status).toBe(200);
    expect(s.stats().quota['sim-project-a']![FLASH]).toMatchObject({ dayRequests: 1, dayResetsAt: '2026-07-16T07:00:00.000Z' });

    const plain = await startGoogleSimulator({ now: clock.now, models: { [FLASH]: { rpm: 100, rpd: 1 } } });
    try {
      expect((await generate(plain, FLASH, KEY, ask('a'))).status).toBe(200);
      expect((await generate(plain, FLASH, KEY, ask('b'))).status).toBe(429); // same day without the offset
    } finally {
      await plain.close();
    }
  });
});

describe('arrival delay', () => {
  it('counts a request when it arrives: sent at :59.65 with 400 ms of delay, it lands in the next minute', async () => {
    // Real time under a shifted origin, so the delay (a real sleep) moves the arrival on this clock.
    const origin = Date.now();
    const base = Date.parse('2026-01-15T12:00:59.650Z');
    const now = (): number => base + (Date.now() - origin);
    const s = await start({ now, arrivalDelayMs: 400, models: { [FLASH]: { rpm: 1, rpd: 100 } } });
    const sentAt = now();
    expect((await generate(s, FLASH, KEY, ask('a'))).status).toBe(200);
    const [arrival] = s.stats().recent;
    expect(arrival!.at).toBeGreaterThanOrEqual(sentAt + 399); // timers may fire a millisecond early
    expect(new Date(arrival!.at).toISOString().slice(0, 16)).toBe('2026-01-15T12:01');
  });

  it('draws a uniform jitter around the delay, repeatable with a seed or an injected random', () => {
    const a = arrivalDelays({ delayMs: 100, jitterMs: 50, seed: 42 });
    const b = arrivalDelays({ delayMs: 100, jitterMs: 50, seed: 42 });
    const drawsA = Array.from({ length: 200 }, a);
    expect(Array.from({ length: 200 }, b)).toEqual(drawsA);
    expect(Math.min(...drawsA)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...drawsA)).toBeLessThanOrEqual(150);
    expect(new Set(drawsA).size).toBeGreaterThan(50);
    expect(arrivalDelays({ delayMs: 100, jitterMs: 50, random: () => 0 })()).toBe(50);
    expect(arrivalDelays({ delayMs: 10, jitterMs: 50, random: () => 0 })()).toBe(0); // never negative
    expect(arrivalDelays({ delayMs: 100 })()).toBe(100);
    expect(() => arrivalDelays({ delayMs: -1 })).toThrow(/arrivalDelayMs/);
  });

  it('applies the injected jitter per request on the server', async () => {
    const draws = [0, 0.5, 0.99];
    const s = await start({ arrivalDelayMs: 60, arrivalJitterMs: 50, random: () => draws.shift() ?? 0.5 });
    for (const text of ['a', 'b', 'c']) expect((await generate(s, FLASH, KEY, ask(text))).status).toBe(200);
    expect(draws).toEqual([]); // one draw per request
  });
});

describe('defaults and countTokens', () => {
  it('defaults to fixed minutes, no offset, no delay; refuses an unknown window', async () => {
    const s = await start({});
    expect(s.counting()).toEqual({ window: 'fixed', clockOffsetMs: 0, arrivalDelayMs: 0, arrivalJitterMs: 0 });
    await expect(startGoogleSimulator({ window: 'leaky' as never })).rejects.toThrow(/window must be one of fixed, sliding/);
  });

  it('countTokens counts what generateContent counts and spends no quota, in every mode', async () => {
    const clock = fakeClock('2026-01-15T12:00:30Z');
    const s = await start({ now: clock.now, window: 'sliding', clockOffsetMs: -2000, models: { [FLASH]: { rpm: 1 } } });
    const request = ask('twelve bytes and then some ünïcödé', { systemInstruction: { parts: [{ text: 'be brief' }] } });
    const counted = await call(s, 'POST', `/v1beta/models/${FLASH}:countTokens`, { key: KEY, body: { generateContentRequest: request } });
    const plain = await call(s, 'POST', `/v1beta/models/${FLASH}:countTokens`, { key: KEY, body: ask('twelve bytes and then some ünïcödé') });
    const generated = await generate(s, FLASH, KEY, request);
    expect(generated.status).toBe(200);
    expect(counted.json.totalTokens).toBe(generated.json.usageMetadata.promptTokenCount);
    expect(plain.json.totalTokens).toBeLessThan(counted.json.totalTokens);
    expect(s.stats().quota['sim-project-a']![FLASH]!.minuteRequests).toBe(1);
  });
});
