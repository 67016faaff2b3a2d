// Fault injection, the /__sim control API, stats, and shutdown with hanging requests.

import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { QUOTA_IDS, startGoogleSimulator, type GoogleSimulator, type SimulatorOptions } from './server.ts';
import { ask, call, detail, fakeClock, generate } from './test-helpers.ts';

const GEMMA = 'gemma-3-27b-it';
const FLASH = 'gemini-2.5-flash';
const A1 = 'sim-key-a1';

let sim: GoogleSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(opts: SimulatorOptions = {}): Promise<GoogleSimulator> {
  sim = await startGoogleSimulator(opts);
  return sim;
}

const control = (s: GoogleSimulator, method: string, path: string, body?: unknown) => call(s, method, `/__sim${path}`, { body });

describe('fault kinds', () => {
  it('http503 via the control API hits exactly `count` requests, then the rule is gone', async () => {
    const s = await start();
    const added = await control(s, 'POST', '/faults', { kind: 'http503', count: 2 });
    expect(added.status).toBe(200);
    expect(added.json.faults).toEqual([expect.objectContaining({ kind: 'http503', count: 2, id: expect.any(Number) })]);
    for (let i = 0; i < 2; i++) {
      const r = await generate(s, GEMMA, A1, ask('x'));
      expect(r.status).toBe(503);
      expect(r.json).toEqual({ error: { code: 503, message: expect.any(String), status: 'UNAVAILABLE' } });
    }
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200);
    expect((await control(s, 'GET', '/faults')).json).toEqual({ faults: [] });
  });

  it('http500 answers INTERNAL and does not spend quota', async () => {
    const s = await start({ models: { [GEMMA]: { rpm: 1 } } });
    s.addFault({ kind: 'http500', count: 1 });
    const r = await generate(s, GEMMA, A1, ask('x'));
    expect(r.status).toBe(500);
    expect(r.json.error.status).toBe('INTERNAL');
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200); // the only RPM slot was still free
  });

  it('malformed answers 200 with a body that is not JSON, on both generate endpoints', async () => {
    const s = await start();
    s.addFault({ kind: 'malformed', count: 2 });
    const r = await generate(s, GEMMA, A1, ask('x'));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/json');
    expect(r.json).toBeUndefined();
    expect(() => JSON.parse(r.text)).toThrow();
    const stream = await call(s, 'POST', `/v1beta/models/${GEMMA}:streamGenerateContent?alt=sse`, { key: A1, body: ask('x') });
    expect(stream.status).toBe(200);
    const data = stream.text.trim().replace(/^data: /, '');
    expect(() => JSON.parse(data)).toThrow();
  });

  it('rate_limited answers a 429 with the given quotaId and retryDelay', async () => {
    const s = await start();
    s.addFault({ kind: 'rate_limited', quotaId: QUOTA_IDS.tpm, retryDelay: '10.689924287s', count: 1 });
    const r = await generate(s, FLASH, A1, ask('x'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'QuotaFailure')?.violations).toEqual([
      expect.objectContaining({ quotaId: QUOTA_IDS.tpm, quotaValue: '250000', quotaDimensions: { location: 'global', model: FLASH } }),
    ]);
    expect(detail(r.json, 'RetryInfo')?.retryDelay).toBe('10.689924287s');
    expect(r.json.error.message).toMatch(/Please retry in 10\.689924287s\.$/);
    expect(s.stats().quota['sim-project-a']).toBeUndefined(); // nothing was admitted
  });

  it('rate_limited with retryDelay null leaves RetryInfo out', async () => {
    const s = await start();
    s.addFault({ kind: 'rate_limited', retryDelay: null });
    const r = await generate(s, FLASH, A1, ask('x'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'RetryInfo')).toBeUndefined();
    expect(detail(r.json, 'QuotaFailure')?.violations).toEqual([expect.objectContaining({ quotaId: QUOTA_IDS.rpm })]);
  });

  it('day_exhausted uses up one project\'s day for a model until Pacific midnight', async () => {
    const clock = fakeClock('2026-07-15T20:00:00Z'); // 13:00 PDT
    const s = await start({ now: clock.now });
    s.addFault({ kind: 'day_exhausted', project: 'sim-project-a', model: FLASH, count: 1 });
    const r = await generate(s, FLASH, 'sim-key-a2', ask('x'));
    expect(r.status).toBe(429);
    expect(detail(r.json, 'QuotaFailure')?.violations).toEqual([expect.objectContaining({ quotaId: QUOTA_IDS.rpd })]);
    clock.advance(120_000);
    expect((await generate(s, FLASH, A1, ask('x'))).status).toBe(429); // the rule is spent; the state stays
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200); // other model
    expect((await generate(s, FLASH, 'sim-key-b1', ask('x'))).status).toBe(200); // other project
    clock.set('2026-07-16T07:00:00Z'); // 00:00 PDT
    expect((await generate(s, FLASH, A1, ask('x'))).status).toBe(200);
  });

  it('invalid_key makes one valid key look revoked', async () => {
    const s = await start();
    s.addFault({ kind: 'invalid_key', apiKey: A1 });
    const r = await generate(s, GEMMA, A1, ask('x'));
    expect(r.status).toBe(400);
    expect(detail(r.json, 'ErrorInfo')).toMatchObject({ reason: 'API_KEY_INVALID' });
    expect((await generate(s, GEMMA, 'sim-key-a2', ask('x'))).status).toBe(200);
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(400); // no count: stays until cleared
    s.clearFaults();
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200);
  });

  it('bad_request answers 400 INVALID_ARGUMENT with the given message', async () => {
    const s = await start();
    s.addFault({ kind: 'bad_request', model: GEMMA, message: 'Request contains an invalid argument.' });
    const r = await generate(s, GEMMA, A1, ask('x'));
    expect(r.status).toBe(400);
    expect(r.json.error).toEqual({ code: 400, status: 'INVALID_ARGUMENT', message: 'Request contains an invalid argument.' });
    expect((await generate(s, FLASH, A1, ask('x'))).status).toBe(200); // other model untouched
  });
});

describe('matching', () => {
  it('applies to generate methods by default and to others only when listed', async () => {
    const s = await start();
    s.addFault({ kind: 'http500' });
    expect((await call(s, 'POST', `/v1beta/models/${GEMMA}:countTokens`, { key: A1, body: ask('x') })).status).toBe(200);
    expect((await call(s, 'GET', '/v1beta/models', { key: A1 })).status).toBe(200);
    s.setFaults([{ kind: 'http500', methods: ['models.list'] }]);
    expect((await call(s, 'GET', '/v1beta/models', { key: A1 })).status).toBe(500);
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200);
  });

  it('takes the first matching rule in order', async () => {
    const s = await start();
    s.setFaults([
      { kind: 'http503', apiKey: 'sim-key-b1', count: 1 },
      { kind: 'http500', count: 1 },
    ]);
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(500);
    expect((await generate(s, GEMMA, 'sim-key-b1', ask('x'))).status).toBe(503);
    expect(s.faults()).toEqual([]);
  });
});

describe('hang and close', () => {
  it('keeps a hanging request open until the client gives up, and counts it as abandoned', async () => {
    const s = await start();
    s.addFault({ kind: 'hang', count: 1 });
    const giveUp = AbortSignal.timeout(200);
    const started = Date.now();
    await expect(call(s, 'POST', `/v1beta/models/${GEMMA}:generateContent`, { key: A1, body: ask('x'), signal: giveUp })).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await new Promise((r) => setTimeout(r, 50)); // let the server see the socket close
    const stats = s.stats();
    expect(stats.total).toMatchObject({ received: 1, answered: 0, abandoned: 1 });
    expect(stats.inFlight).toBe(0);
  });

  it('close() ends hanging requests and frees the port quickly', async () => {
    const s = await start({ latencyMs: 60_000 });
    s.addFault({ kind: 'hang', model: GEMMA });
    const pending = [
      ...Array.from({ length: 20 }, () => generate(s, GEMMA, A1, ask('x')).then(() => 'answered', () => 'cut')),
      generate(s, FLASH, A1, ask('x')).then(() => 'answered', () => 'cut'), // stuck in latency
    ];
    // Wait until all 21 have arrived (a loaded machine may take a while), then close.
    for (let i = 0; i < 500 && s.stats().inFlight < 21; i++) await new Promise((r) => setTimeout(r, 20));
    expect(s.stats().inFlight).toBe(21);
    const started = Date.now();
    await s.close();
    sim = undefined;
    // Far below the 60 s the requests would otherwise hang: close() cut them, it did not wait.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await Promise.all(pending)).toEqual(Array(21).fill('cut'));
    // The port can be bound again at once.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(s.port, '127.0.0.1', resolve));
    await new Promise((r) => probe.close(r));
  });
});

describe('held answers', () => {
  it('wait until released, then answer 200; a call after the release is not held', async () => {
    const s = await start();
    const release = s.holdAnswers();
    let settled = false;
    const held = generate(s, GEMMA, A1, ask('x')).then((r) => ((settled = true), r));
    for (let i = 0; i < 500 && s.stats().inFlight < 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(s.stats().inFlight).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false);
    release();
    expect((await held).status).toBe(200);
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200);
  });

  it('end when the simulator closes', async () => {
    const s = await start();
    s.holdAnswers();
    const held = generate(s, GEMMA, A1, ask('x')).then(() => 'answered', () => 'cut');
    for (let i = 0; i < 500 && s.stats().inFlight < 1; i++) await new Promise((r) => setTimeout(r, 20));
    await s.close();
    sim = undefined;
    expect(await held).toBe('cut');
  });
});

describe('control API and stats', () => {
  it('counts what Google saw per key, project, model, method and status', async () => {
    const s = await start();
    s.addFault({ kind: 'http503', count: 2 });
    for (let i = 0; i < 3; i++) await generate(s, GEMMA, A1, ask('x'));
    await generate(s, FLASH, 'sim-key-b1', ask('x'));
    await generate(s, FLASH, 'bogus', ask('x'));
    const stats = (await control(s, 'GET', '/stats')).json;
    expect(stats.total).toMatchObject({ received: 5, answered: 5, byStatus: { 200: 2, 503: 2, 400: 1 } });
    expect(stats.byKey[A1]).toMatchObject({ received: 3, byStatus: { 503: 2, 200: 1 } });
    expect(stats.byKey.bogus).toMatchObject({ received: 1, byStatus: { 400: 1 } });
    expect(stats.byProject['sim-project-a'].received).toBe(3);
    expect(stats.byProject['sim-project-b'].received).toBe(1);
    expect(stats.byModel[GEMMA].received).toBe(3);
    expect(stats.byMethod.generateContent.received).toBe(5);
    expect(stats.recent.map((r: { status: number }) => r.status)).toEqual([503, 503, 200, 200, 400]);
    expect(stats.recent[0].faultId).toEqual(expect.any(Number));
  });

  it('does not count control calls, and reset clears stats, quota and faults', async () => {
    const s = await start({ models: { [GEMMA]: { rpm: 1 } } });
    await generate(s, GEMMA, A1, ask('x'));
    await control(s, 'PUT', '/faults', [{ kind: 'http500' }]);
    expect((await control(s, 'GET', '/health')).json).toEqual({ ok: true });
    expect(s.stats().total.received).toBe(1);
    expect((await control(s, 'POST', '/reset')).status).toBe(200);
    expect(s.stats().total.received).toBe(0);
    expect(s.faults()).toEqual([]);
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(200); // RPM window was cleared too
  });

  it('replaces keys and model limits at run time', async () => {
    const s = await start();
    const keys = await control(s, 'PUT', '/keys', { 'new-key': 'new-project' });
    expect(keys.json).toEqual({ 'new-key': 'new-project' });
    expect((await generate(s, GEMMA, A1, ask('x'))).status).toBe(400);
    expect((await generate(s, GEMMA, 'new-key', ask('x'))).status).toBe(200);
    const models = await control(s, 'PUT', '/models', { [GEMMA]: { rpm: 1 } });
    expect(models.json[GEMMA]).toMatchObject({ rpm: 1, tpm: 15_000 });
    expect((await generate(s, GEMMA, 'new-key', ask('x'))).status).toBe(429);
  });

  it('rejects nonsense with 400 and unknown control routes with 404', async () => {
    const s = await start();
    const bad = await control(s, 'POST', '/faults', { kind: 'explode' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('fault.kind must be one of');
    expect((await control(s, 'POST', '/faults', { kind: 'http500', count: 0 })).status).toBe(400);
    expect((await control(s, 'PUT', '/keys', { k: 42 })).status).toBe(400);
    expect((await control(s, 'PUT', '/models', { [GEMMA]: { rpm: -1 } })).status).toBe(400);
    expect((await control(s, 'GET', '/nope')).status).toBe(404);
    expect(s.faults()).toEqual([]);
  });
});
