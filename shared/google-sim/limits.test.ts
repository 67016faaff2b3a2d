// Quotas over HTTP: per project (not per key), per model, calendar minutes, Pacific days,
// Google's 429 body, and admission under many concurrent requests.

import { afterEach, describe, expect, it } from 'vitest';
import { QUOTA_IDS, startGoogleSimulator, type GoogleSimulator, type SimulatorOptions } from './server.ts';
import { ask, detail, fakeClock, generate } from './test-helpers.ts';

const GEMMA = 'gemma-3-27b-it';
const FLASH = 'gemini-2.5-flash';

let sim: GoogleSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(opts: SimulatorOptions): Promise<GoogleSimulator> {
  sim = await startGoogleSimulator(opts);
  return sim;
}

describe('the 429 answer', () => {
  it('has Google\'s shape: QuotaFailure, Help, RetryInfo, message with the delay, no Retry-After', async () => {
    const clock = fakeClock('2026-01-15T12:00:37.310Z');
    const s = await start({ now: clock.now, models: { [FLASH]: { rpm: 1 } } });
    expect((await generate(s, FLASH, 'sim-key-a1', ask('one'))).status).toBe(200);
    const r = await generate(s, FLASH, 'sim-key-a1', ask('two'));
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBeNull();
    expect(r.json.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
    expect(detail(r.json, 'QuotaFailure')).toEqual({
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [
        {
          quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
          quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
          quotaDimensions: { location: 'global', model: FLASH },
          quotaValue: '1',
        },
      ],
    });
    expect(detail(r.json, 'Help')).toBeDefined();
    expect(detail(r.json, 'RetryInfo')).toEqual({
      '@type': 'type.googleapis.com/google.rpc.RetryInfo',
      retryDelay: '22.690s',
    });
    expect(r.json.error.message).toMatch(/You exceeded your current quota/);
    expect(r.json.error.message).toMatch(/Please retry in 22\.690s\.$/);
  });

  it('truncates RetryInfo to whole seconds when asked, keeping the full delay in the message', async () => {
    const clock = fakeClock('2026-01-15T12:00:37.500Z');
    const s = await start({ now: clock.now, models: { [FLASH]: { rpm: 0 } }, retryDelayWholeSeconds: true });
    const r = await generate(s, FLASH, 'sim-key-a1', ask('x'));
    expect(detail(r.json, 'RetryInfo')?.retryDelay).toBe('22s');
    expect(r.json.error.message).toMatch(/Please retry in 22\.500s\.$/);
  });
});

describe('per project, per model, per calendar minute', () => {
  it('shares the limit between keys of one project and not across projects', async () => {
    const s = await start({ now: fakeClock('2026-01-15T12:00:00Z').now, models: { [GEMMA]: { rpm: 2 } } });
    expect((await generate(s, GEMMA, 'sim-key-a1', ask('x'))).status).toBe(200);
    expect((await generate(s, GEMMA, 'sim-key-a2', ask('x'))).status).toBe(200);
    expect((await generate(s, GEMMA, 'sim-key-a2', ask('x'))).status).toBe(429); // same project A
    expect((await generate(s, GEMMA, 'sim-key-b1', ask('x'))).status).toBe(200); // project B
    expect((await generate(s, FLASH, 'sim-key-a1', ask('x'))).status).toBe(200); // another model
    expect(s.stats().quota['sim-project-a']![GEMMA]!.minuteRequests).toBe(2);
  });

  it('does not let refused requests consume quota, and reopens at second :00', async () => {
    const clock = fakeClock('2026-01-15T12:00:58Z');
    const s = await start({ now: clock.now, models: { [GEMMA]: { rpm: 1 } } });
    expect((await generate(s, GEMMA, 'sim-key-a1', ask('x'))).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await generate(s, GEMMA, 'sim-key-a1', ask('x'))).status).toBe(429);
    clock.set('2026-01-15T12:01:00Z');
    expect((await generate(s, GEMMA, 'sim-key-a1', ask('x'))).status).toBe(200);
    expect(s.stats().quota['sim-project-a']![GEMMA]).toMatchObject({ minuteRequests: 1, dayRequests: 2 });
  });

  it('counts input tokens (not output) against TPM', async () => {
    const s = await start({ now: fakeClock('2026-01-15T12:00:00Z').now, models: { [GEMMA]: { tpm: 10 } } });
    // 32 bytes = 8 input tokens; the answer is longer than that and must not count.
    const first = await generate(s, GEMMA, 'sim-key-a1', ask('x'.repeat(32)));
    expect(first.json.usageMetadata).toMatchObject({ promptTokenCount: 8 });
    expect(first.json.usageMetadata.candidatesTokenCount).toBeGreaterThan(2);
    expect((await generate(s, GEMMA, 'sim-key-a1', ask('x'.repeat(8)))).status).toBe(200); // 10 of 10
    const r = await generate(s, GEMMA, 'sim-key-a1', ask('x'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'QuotaFailure')?.violations).toEqual([
      expect.objectContaining({
        quotaId: QUOTA_IDS.tpm,
        quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_input_token_count',
        quotaValue: '10',
      }),
    ]);
  });
});

describe('per day', () => {
  it('refuses with the per-day quotaId, still gives a short delay, and resets at Pacific midnight', async () => {
    const clock = fakeClock('2026-03-08T07:50:00Z'); // 23:50 PST on 7 March; DST starts at 02:00 on the 8th
    const s = await start({ now: clock.now, models: { [FLASH]: { rpm: 100, rpd: 2 } } });
    expect((await generate(s, FLASH, 'sim-key-a1', ask('x'))).status).toBe(200);
    expect((await generate(s, FLASH, 'sim-key-a2', ask('x'))).status).toBe(200);
    const r = await generate(s, FLASH, 'sim-key-a1', ask('x'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'QuotaFailure')?.violations).toEqual([expect.objectContaining({ quotaId: QUOTA_IDS.rpd, quotaValue: '2' })]);
    expect(detail(r.json, 'RetryInfo')?.retryDelay).toBe('60s'); // like Google: not the hours to midnight
    expect(s.stats().quota['sim-project-a']![FLASH]!.dayResetsAt).toBe('2026-03-08T08:00:00.000Z');

    clock.set('2026-03-08T07:59:59.999Z');
    expect((await generate(s, FLASH, 'sim-key-a1', ask('x'))).status).toBe(429);
    clock.set('2026-03-08T08:00:00Z'); // 00:00 PST, 8 March
    expect((await generate(s, FLASH, 'sim-key-a1', ask('x'))).status).toBe(200);
    // The next reset is 24 hours minus the hour DST removes.
    expect(s.stats().quota['sim-project-a']![FLASH]!.dayResetsAt).toBe('2026-03-09T07:00:00.000Z');
  });
});

describe('concurrency', () => {
  it('admits exactly the limit out of 300 simultaneous requests and answers them all', async () => {
    const s = await start({ now: fakeClock('2026-01-15T12:00:10Z').now, models: { [GEMMA]: { rpm: 50 } }, latencyMs: 50 });
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => generate(s, GEMMA, i % 2 ? 'sim-key-a1' : 'sim-key-a2', ask(`req ${i}`))),
    );
    const counts = results.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
    expect(counts).toEqual({ 200: 50, 429: 250 });
    const stats = s.stats();
    expect(stats.total).toMatchObject({ received: 300, answered: 300, byStatus: { 200: 50, 429: 250 } });
    expect(stats.byProject['sim-project-a']!.received).toBe(300);
    expect(stats.inFlight).toBe(0);
  });
});
