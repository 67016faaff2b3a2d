// WindowCount, the counting both simulators stand on: fixed and sliding windows, retry and reset
// times, and giving back tokens while an admission is still counted.

import { describe, expect, it } from 'vitest';
import { WindowCount } from './windows.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const limits = { requests: 2, tokens: 100 };

describe('WindowCount', () => {
  it('fixed: counts within the calendar window and starts again at the next', () => {
    const w = new WindowCount('fixed');
    w.add(T0 + 10_000, 40);
    w.add(T0 + 20_000, 40);
    expect(w.over(T0 + 30_000, 10, limits)).toEqual({ requests: true, tokens: false });
    expect(w.retryAfter(T0 + 30_000, 10, limits)).toBe(30_000);
    expect(w.emptyAfter(T0 + 30_000)).toBe(30_000);
    expect(w.used(T0 + 60_000)).toEqual({ requests: 0, tokens: 0 });
    expect(w.emptyAfter(T0 + 60_000)).toBe(0);
  });

  it('sliding: a slot frees 60 s after the admission that took it', () => {
    const w = new WindowCount('sliding');
    w.add(T0 + 10_000, 40);
    w.add(T0 + 20_000, 40);
    expect(w.retryAfter(T0 + 65_000, 10, limits)).toBe(5_000);
    expect(w.emptyAfter(T0 + 65_000)).toBe(15_000);
    expect(w.used(T0 + 70_000)).toEqual({ requests: 1, tokens: 40 });
    expect(w.over(T0 + 70_000, 60, limits)).toEqual({ requests: false, tokens: false });
    expect(w.over(T0 + 70_000, 61, limits)).toEqual({ requests: false, tokens: true });
  });

  it('sub-minute slices are windows of another length', () => {
    const w = new WindowCount('fixed', 1000);
    w.add(T0 + 250, 1);
    expect(w.retryAfter(T0 + 400, 1, { requests: 1, tokens: 10 })).toBe(600);
    expect(w.used(T0 + 1000)).toEqual({ requests: 0, tokens: 0 });
  });

  it('giveBack: tokens return while the admission is counted, never more than it booked, nothing after', () => {
    for (const mode of ['fixed', 'sliding'] as const) {
      const w = new WindowCount(mode);
      const a = w.add(T0 + 1000, 50);
      w.giveBack(a, 30);
      expect(w.used(T0 + 2000)).toEqual({ requests: 1, tokens: 20 });
      w.giveBack(a, 500);
      expect(w.used(T0 + 2000)).toEqual({ requests: 1, tokens: 0 });
      const b = w.add(T0 + 2000, 50);
      w.used(T0 + 70_000); // both left the window
      w.giveBack(b, 50);
      expect(w.used(T0 + 70_000)).toEqual({ requests: 0, tokens: 0 });
      w.add(T0 + 70_000, 10);
      expect(w.used(T0 + 70_000)).toEqual({ requests: 1, tokens: 10 });
    }
  });
});
