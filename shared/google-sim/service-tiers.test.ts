// Service tiers over HTTP: the body's serviceTier, flex shed with Google's capacity error, priority
// served at standard over its own limit, the x-gemini-service-tier header on every answer.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { call, fakeClock } from './test-helpers.ts';

const clock = fakeClock('2026-11-23T12:00:10Z');
let sim: GoogleSimulator;
const FLASH = 'gemini-2.5-flash';
const generate = (serviceTier?: unknown, key = 'sim-key-a1') =>
  call(sim, 'POST', `/v1beta/models/${FLASH}:generateContent`, {
    key,
    body: { contents: [{ parts: [{ text: 'hi' }] }], ...(serviceTier === undefined ? {} : { serviceTier }) },
  });

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

describe('service tiers', () => {
  it('serves the tier asked and says so in x-gemini-service-tier (standard when none is asked)', async () => {
    expect((await generate()).headers.get('x-gemini-service-tier')).toBe('standard');
    expect((await generate('flex')).headers.get('x-gemini-service-tier')).toBe('flex');
    expect((await generate('priority')).headers.get('x-gemini-service-tier')).toBe('priority');
    expect(sim.serviceTiers()).toMatchObject({ asked: { standard: 1, flex: 1, priority: 1 }, shed: 0 });
  });

  it('sheds flex with Google capacity error while asked to, without spending quota', async () => {
    sim.setServiceTiers({ shedFlex: 2 });
    for (let i = 0; i < 2; i++) {
      const shed = await generate('flex');
      expect(shed.status).toBe(503);
      expect(shed.json.error).toEqual({ code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' });
    }
    expect((await generate('flex')).status).toBe(200);
    expect((await generate()).status).toBe(200);
    expect(sim.stats().quota['sim-project-a']?.[FLASH]?.minuteRequests).toBe(2);
    expect(sim.serviceTiers().shed).toBe(2);
  });

  it('serves priority at standard once the project is over its priority limit, per minute', async () => {
    sim.setServiceTiers({ priorityRpm: 1 });
    expect((await generate('priority')).headers.get('x-gemini-service-tier')).toBe('priority');
    expect((await generate('priority')).headers.get('x-gemini-service-tier')).toBe('standard');
    expect((await generate('priority', 'sim-key-b1')).headers.get('x-gemini-service-tier')).toBe('priority');
    clock.advance(60_000);
    expect((await generate('priority')).headers.get('x-gemini-service-tier')).toBe('priority');
  });

  it('refuses a tier Google does not have, and is set through the control API', async () => {
    const bad = await generate('scale');
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("Invalid value at 'service_tier'");
    const set = await call(sim, 'PUT', '/__sim/tiers', { body: { shedFlex: true } });
    expect(set.json).toMatchObject({ shedFlex: true, priorityRpm: null });
    expect((await generate('flex')).status).toBe(503);
    expect((await call(sim, 'PUT', '/__sim/tiers', { body: { shedFlex: -1 } })).status).toBe(400);
  });
});
