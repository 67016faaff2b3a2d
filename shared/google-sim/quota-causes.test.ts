// limit: 0 per (project, model) and spend caps per project, over HTTP, and read back by the gateway's
// own classifier (the simulator's bodies must be the ones the gateway is written for).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyGoogleHttpError } from '../../supabase/functions/_shared/providers/google/errors.ts';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { call, fakeClock } from './test-helpers.ts';

const clock = fakeClock('2026-11-23T12:00:10Z');
let sim: GoogleSimulator;
const FLASH = 'gemini-2.5-flash';
const LITE = 'gemini-2.5-flash-lite';
const generate = (key: string, model: string) =>
  call(sim, 'POST', `/v1beta/models/${model}:generateContent`, { key, body: { contents: [{ parts: [{ text: 'hi' }] }] } });

beforeAll(async () => {
  sim = await startGoogleSimulator({ now: clock.now });
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => {
  sim.reset();
  clock.set('2026-11-23T12:00:10Z');
});

describe('limit: 0', () => {
  it('answers Google free-tier limit: 0 body for that (project, model) only, and counts every call', async () => {
    sim.setQuotaCauses({ limitZero: [{ project: 'sim-project-a', model: FLASH }] });
    const refused = await generate('sim-key-a1', FLASH);
    expect(refused.status).toBe(429);
    // Worded as drawn for the run; the QuotaFailure below says limit 0 in every wording.
    expect(refused.json.error.message).toMatch(/limit: ?0\b/i);
    expect(refused.json.error.message).toContain('Please retry in 38.2s.');
    expect(refused.json.error.details).toContainEqual({
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [{
        quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
        quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
        quotaDimensions: { location: 'global', model: FLASH },
        quotaValue: '0',
      }],
    });
    expect(refused.json.error.details).toContainEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '38s' });
    expect(classifyGoogleHttpError(429, refused.json).quotaCause).toBe('limit_zero');

    // Two minutes later it still refuses; the other model of the project and the other project serve.
    clock.advance(120_000);
    expect((await generate('sim-key-a2', FLASH)).status).toBe(429);
    expect((await generate('sim-key-a1', LITE)).status).toBe(200);
    expect((await generate('sim-key-b1', FLASH)).status).toBe(200);
    expect(sim.stats().calls).toEqual({
      'sim-project-a': { [FLASH]: 2, [LITE]: 1 },
      'sim-project-b': { [FLASH]: 1 },
    });
  });
});

describe('spend caps', () => {
  it('refuses every model of the project for its rolling window, with the time left as RetryInfo', async () => {
    sim.setQuotaCauses({ spendCaps: [{ project: 'sim-project-a', windowMs: 600_000 }] });
    clock.advance(200_000);
    for (const model of [FLASH, LITE]) {
      const refused = await generate('sim-key-a1', model);
      expect(refused.status).toBe(429);
      expect(refused.json.error.status).toBe('RESOURCE_EXHAUSTED');
      expect(refused.json.error.details).toContainEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '400s' });
      expect(classifyGoogleHttpError(429, refused.json)).toMatchObject({
        quotaCause: 'spend_cap',
        spendWindowMs: 600_000,
        retryAfterMs: 400_000,
      });
    }
    expect((await generate('sim-key-b1', FLASH)).status).toBe(200);
    clock.advance(400_000);
    expect((await generate('sim-key-a1', FLASH)).status).toBe(200);
    expect(sim.quotaCauses().spendCaps).toEqual([]);
  });

  it('the bare shape is Google 429 without details, which the gateway cannot tell apart: unknown', async () => {
    sim.setQuotaCauses({ spendCaps: [{ project: 'sim-project-a', shape: 'bare' }] });
    const refused = await generate('sim-key-a1', FLASH);
    expect(refused.json).toEqual({
      error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' },
    });
    expect(classifyGoogleHttpError(429, refused.json).quotaCause).toBe('unknown');
  });

  it('is set through the control API, and a bad rule is a 400', async () => {
    const set = await call(sim, 'PUT', '/__sim/causes', {
      body: { limitZero: [{ project: 'sim-project-c', model: LITE }], spendCaps: [{ project: 'sim-project-b' }] },
    });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({
      limitZero: [{ project: 'sim-project-c', model: LITE }],
      spendCaps: [{ project: 'sim-project-b', windowMs: 600_000, shape: 'documented' }],
    });
    expect((await generate('sim-key-c1', LITE)).status).toBe(429);
    expect((await generate('sim-key-b1', LITE)).status).toBe(429);
    expect((await call(sim, 'PUT', '/__sim/causes', { body: { spendCaps: [{ windowMs: 5 }] } })).status).toBe(400);
    expect((await call(sim, 'GET', '/__sim/causes')).json.calls).toEqual({
      'sim-project-c': { [LITE]: 1 },
      'sim-project-b': { [LITE]: 1 },
    });
  });

  it('is off by default: the simulator answers as before', async () => {
    expect((await generate('sim-key-a1', FLASH)).status).toBe(200);
    expect(sim.quotaCauses()).toEqual({ limitZero: [], spendCaps: [], moneyOut: [], calls: { 'sim-project-a': { [FLASH]: 1 } } });
  });
});
