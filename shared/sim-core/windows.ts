// Counting in windows of time, the part of a provider's quota that does not depend on the provider:
// - `WindowCount`: requests and tokens admitted in a window of `lengthMs`, either fixed (calendar
//   windows that start at multiples of the length on the simulator's clock) or sliding (the length
//   before each arrival). A simulator checks and records in one synchronous step, so concurrent
//   requests cannot both slip into the last slot.
// - `arrivalsByMinute`: what a simulator saw per calendar minute (arrived, 200, 429), to compare the
//   provider's account of a minute with the gateway's (tests and the fidelity benchmark).

import type { RequestRecord } from './stats.ts';

/** How per-minute limits are counted. */
export type MinuteWindow = 'fixed' | 'sliding';
export const MINUTE_WINDOWS: readonly MinuteWindow[] = ['fixed', 'sliding'];
export const MINUTE_MS = 60_000;

export function minuteStart(t: number): number {
  return Math.floor(t / MINUTE_MS) * MINUTE_MS;
}

/** A limit on requests and on tokens within one window. */
export interface WindowLimits {
  requests: number;
  tokens: number;
}

/** One admission, as `add` returns it, so that unused tokens can be given back. */
export interface WindowEntry {
  at: number;
  tokens: number;
  /** Fixed mode: the window it was counted in. */
  start: number;
}

export class WindowCount {
  /** Fixed mode: start of the current window. */
  private start = Number.NEGATIVE_INFINITY;
  private count = 0;
  private sum = 0;
  /** Sliding mode: admissions inside the window, oldest first. */
  private readonly log: WindowEntry[] = [];

  constructor(
    readonly mode: MinuteWindow,
    readonly lengthMs: number = MINUTE_MS,
  ) {}

  /** Forgets what left the window at `t`. */
  private roll(t: number): void {
    if (this.mode === 'sliding') {
      let gone = 0;
      while (gone < this.log.length && this.log[gone]!.at <= t - this.lengthMs) gone++;
      if (gone === 0) return;
      for (const a of this.log.splice(0, gone)) {
        this.count -= 1;
        this.sum -= a.tokens;
      }
      return;
    }
    const start = Math.floor(t / this.lengthMs) * this.lengthMs;
    if (start !== this.start) {
      this.start = start;
      this.count = 0;
      this.sum = 0;
    }
  }

  /** Requests and tokens in the window at `t`. */
  used(t: number): { requests: number; tokens: number } {
    this.roll(t);
    return { requests: this.count, tokens: this.sum };
  }

  /** Which limits one more request of `tokens` would break at `t`. */
  over(t: number, tokens: number, limits: WindowLimits): { requests: boolean; tokens: boolean } {
    this.roll(t);
    return { requests: this.count + 1 > limits.requests, tokens: this.sum + tokens > limits.tokens };
  }

  add(t: number, tokens: number): WindowEntry {
    this.roll(t);
    const entry = { at: t, tokens, start: this.start };
    if (this.mode === 'sliding') this.log.push(entry);
    this.count += 1;
    this.sum += tokens;
    return entry;
  }

  /**
   * Takes back up to `tokens` of an admission's tokens while it is still counted (a provider that
   * settles on what the answer used); nothing once it has left the window.
   */
  giveBack(entry: WindowEntry, tokens: number): void {
    const back = Math.min(tokens, entry.tokens);
    if (back <= 0) return;
    if (this.mode === 'sliding' ? !this.log.includes(entry) : entry.start !== this.start) return;
    entry.tokens -= back;
    this.sum -= back;
  }

  /**
   * How long after `t` one more request of `tokens` fits. Fixed: to the next window. Sliding: until
   * enough admissions age out; the full length when nothing ages out in time (room already, or a
   * request larger than the limit itself).
   */
  retryAfter(t: number, tokens: number, limits: WindowLimits): number {
    this.roll(t);
    if (this.mode === 'fixed') return this.start + this.lengthMs - t;
    let requests = this.count;
    let used = this.sum;
    const fits = (): boolean => requests + 1 <= limits.requests && used + tokens <= limits.tokens;
    for (const a of this.log) {
      if (fits()) break;
      requests -= 1;
      used -= a.tokens;
      if (fits()) return Math.max(1, a.at + this.lengthMs - t);
    }
    return this.lengthMs;
  }

  /** How long after `t` the window is empty again (0 when it is empty now). */
  emptyAfter(t: number): number {
    this.roll(t);
    if (this.count === 0) return 0;
    if (this.mode === 'fixed') return this.start + this.lengthMs - t;
    return Math.max(1, this.log[this.log.length - 1]!.at + this.lengthMs - t);
  }
}

export interface ArrivalWindow {
  /** Start of the minute on the simulator's clock (offset included), ISO. */
  window: string;
  arrived: number;
  ok: number;
  refused429: number;
}

/** Records of `methods` for `model` (all models when omitted), grouped by the simulator's minute. */
export function arrivalsByMinute(
  records: readonly Pick<RequestRecord, 'at' | 'method' | 'model' | 'status'>[],
  methods: ReadonlySet<string>,
  model?: string,
): ArrivalWindow[] {
  const out = new Map<number, ArrivalWindow>();
  for (const r of records) {
    if (!methods.has(r.method) || (model !== undefined && r.model !== model)) continue;
    const start = minuteStart(r.at);
    let w = out.get(start);
    if (!w) {
      w = { window: new Date(start).toISOString(), arrived: 0, ok: 0, refused429: 0 };
      out.set(start, w);
    }
    w.arrived += 1;
    if (r.status === 200) w.ok += 1;
    if (r.status === 429) w.refused429 += 1;
  }
  return [...out.entries()].sort(([a], [b]) => a - b).map(([, w]) => w);
}

/** A simulator CLI's window variable (`name`, for its message): fixed when unset. */
export function parseMinuteWindow(name: string, raw: string | undefined): MinuteWindow {
  if (raw === undefined || raw.trim() === '') return 'fixed';
  if (!(MINUTE_WINDOWS as readonly string[]).includes(raw)) {
    throw new Error(`${name} must be one of ${MINUTE_WINDOWS.join(', ')}, got "${raw}"`);
  }
  return raw as MinuteWindow;
}
