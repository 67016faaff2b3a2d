import { describe, expect, it } from 'vitest';
import { DEFAULT_MODELS, type ModelSpec } from './config.ts';
import { QUOTA_IDS, QuotaTracker, nextPacificMidnight, pacificDay } from './quota.ts';
import { fakeClock } from './test-helpers.ts';

const spec: ModelSpec = { ...DEFAULT_MODELS['gemma-3-27b-it']!, rpm: 2, tpm: 100, rpd: 3 };
const iso = (t: number): string => new Date(t).toISOString();

describe('Pacific day boundaries', () => {
  it('uses the Pacific date, not the UTC date', () => {
    // 05:00 UTC on 15 Jan is still 14 Jan, 21:00 PST.
    expect(pacificDay(Date.parse('2026-01-15T05:00:00Z'))).toBe('2026-01-14');
    expect(pacificDay(Date.parse('2026-01-15T08:00:00Z'))).toBe('2026-01-15');
  });

  it('finds midnight at 08:00Z in winter and 07:00Z in summer', () => {
    expect(iso(nextPacificMidnight(Date.parse('2026-01-15T12:00:00Z')))).toBe('2026-01-16T08:00:00.000Z');
    expect(iso(nextPacificMidnight(Date.parse('2026-07-15T12:00:00Z')))).toBe('2026-07-16T07:00:00.000Z');
  });

  it('is DST-correct on the switch days', () => {
    // 2026-03-08: clocks spring forward at 02:00; that day started at 08:00Z (PST), the next at 07:00Z.
    expect(iso(nextPacificMidnight(Date.parse('2026-03-08T09:00:00Z')))).toBe('2026-03-09T07:00:00.000Z');
    // 2026-11-01: clocks fall back at 02:00; that day started at 07:00Z (PDT), the next at 08:00Z.
    expect(iso(nextPacificMidnight(Date.parse('2026-11-01T08:00:00Z')))).toBe('2026-11-02T08:00:00.000Z');
    // One millisecond before midnight, the next midnight is one millisecond away.
    expect(nextPacificMidnight(Date.parse('2026-11-02T07:59:59.999Z'))).toBe(Date.parse('2026-11-02T08:00:00Z'));
  });
});

describe('QuotaTracker', () => {
  it('refuses the request over RPM without counting it, and reports time to the next :00', () => {
    const clock = fakeClock('2026-01-15T12:00:37.500Z');
    const q = new QuotaTracker(clock.now);
    expect(q.admit('p', 'm', spec, 1).ok).toBe(true);
    expect(q.admit('p', 'm', spec, 1).ok).toBe(true);
    const refused = q.admit('p', 'm', spec, 1);
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 22_500 });
    if (refused.ok) throw new Error('unreachable');
    expect(refused.violations.map((v) => v.quotaId)).toEqual([QUOTA_IDS.rpm]);
    expect(q.snapshot().p!.m!.minuteRequests).toBe(2);
  });

  it('uses calendar minutes: the window opens at second :00, not 60 s after the first call', () => {
    const clock = fakeClock('2026-01-15T12:00:59.000Z');
    const q = new QuotaTracker(clock.now);
    q.admit('p', 'm', spec, 1);
    q.admit('p', 'm', spec, 1);
    clock.advance(999);
    expect(q.admit('p', 'm', spec, 1).ok).toBe(false);
    clock.advance(1); // 12:01:00.000
    expect(q.admit('p', 'm', spec, 1).ok).toBe(true);
  });

  it('counts input tokens against TPM and keeps projects and models apart', () => {
    const q = new QuotaTracker(fakeClock('2026-01-15T12:00:00Z').now);
    expect(q.admit('p', 'm', spec, 60).ok).toBe(true);
    const refused = q.admit('p', 'm', spec, 41);
    expect(!refused.ok && refused.violations.map((v) => v.quotaId)).toEqual([QUOTA_IDS.tpm]);
    expect(q.admit('p', 'm', spec, 40).ok).toBe(true);
    expect(q.admit('other-project', 'm', spec, 100).ok).toBe(true);
    expect(q.admit('p', 'other-model', spec, 100).ok).toBe(true);
  });

  it('resets the day at Pacific midnight and clears day exhaustion with it', () => {
    const clock = fakeClock('2026-07-15T06:58:00Z'); // 23:58 PDT
    const q = new QuotaTracker(clock.now);
    for (let i = 0; i < 3; i++) {
      expect(q.admit('p', 'm', spec, 1).ok).toBe(true);
      clock.advance(30_000);
    }
    const refused = q.admit('p', 'm', spec, 1);
    expect(!refused.ok && refused.violations.map((v) => v.quotaId)).toEqual([QUOTA_IDS.rpd]);
    q.exhaustDay('p', 'm2');
    expect(q.admit('p', 'm2', spec, 1).ok).toBe(false);
    clock.set('2026-07-15T07:00:00Z'); // 00:00 PDT: a new Pacific day
    expect(q.admit('p', 'm', spec, 1).ok).toBe(true);
    expect(q.admit('p', 'm2', spec, 1).ok).toBe(true);
  });
});
