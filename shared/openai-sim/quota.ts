// Per-organization, per-model rate limits, counted the way OpenAI documents it: a request counts
// against RPM as one and against TPM as its input plus its max_tokens (× n) the moment it arrives,
// whatever it later writes. Optionally:
// - a daily cap (RPD) per UTC day;
// - sub-minute enforcement: OpenAI "may enforce a limit over shorter periods" (60 000 RPM as 1 000
//   per second). With `sliceMs`, each slice of that length admits ceil(limit × slice / 60 s) requests
//   and tokens; a request always fits an empty slice (else a request larger than a slice's tokens
//   could never pass).
// Minute windows are fixed or sliding (sim-core/windows.ts). A check and its record are one
// synchronous step; a refused request records nothing. Whether OpenAI later gives back what the
// answer did not use is not documented: `settle` does it for a simulator told to (option `settle`).

import { MINUTE_MS, WindowCount, type MinuteWindow, type WindowEntry } from '../sim-core/windows.ts';
import type { Limits } from './config.ts';

const DAY_MS = 86_400_000;

export interface RateLimitHeaders {
  'x-ratelimit-limit-requests': string;
  'x-ratelimit-limit-tokens': string;
  'x-ratelimit-remaining-requests': string;
  'x-ratelimit-remaining-tokens': string;
  'x-ratelimit-reset-requests': string;
  'x-ratelimit-reset-tokens': string;
}

export type Refusal = {
  ok: false;
  kind: 'requests' | 'tokens';
  per: 'min' | 'day';
  limit: number;
  used: number;
  requested: number;
  retryAfterMs: number;
};
/** What an admission booked, for `settle`. */
export interface Booking {
  usage: Usage;
  minute: WindowEntry;
  slice: WindowEntry | undefined;
}
export type Admission = { ok: true; booking: Booking } | Refusal;

export interface Usage {
  minute: WindowCount;
  slice: WindowCount | undefined;
  day: number;
  dayRequests: number;
}

export interface UsageSnapshot {
  /** In the current minute window (fixed) or the last 60 s (sliding). */
  minuteRequests: number;
  minuteTokens: number;
  /** Requests of the current UTC day. */
  dayRequests: number;
}

/** Per-slice limit under sub-minute enforcement. */
function sliceLimit(perMinute: number, sliceMs: number): number {
  return Math.max(1, Math.ceil((perMinute * sliceMs) / MINUTE_MS));
}

export class QuotaTracker {
  private readonly usage = new Map<string, Usage>();

  constructor(
    private readonly now: () => number,
    private readonly window: MinuteWindow,
    /** Sub-minute enforcement: the slice length in ms, or undefined for none. */
    private readonly sliceMs: number | undefined,
  ) {}

  private current(org: string, model: string): Usage {
    const key = `${org}\u0000${model}`;
    const day = Math.floor(this.now() / DAY_MS);
    let u = this.usage.get(key);
    if (!u) {
      const slice = this.sliceMs === undefined ? undefined : new WindowCount('fixed', this.sliceMs);
      u = { minute: new WindowCount(this.window), slice, day, dayRequests: 0 };
      this.usage.set(key, u);
    }
    if (u.day !== day) Object.assign(u, { day, dayRequests: 0 });
    return u;
  }

  /** Checks every limit for a request that books `tokens`; records it only when all allow it. */
  admit(org: string, model: string, limits: Limits, tokens: number): Admission {
    const u = this.current(org, model);
    const t = this.now();
    const perMinute = { requests: limits.rpm, tokens: limits.tpm };
    const used = u.minute.used(t);
    const over = u.minute.over(t, tokens, perMinute);
    if (over.requests) {
      return { ok: false, kind: 'requests', per: 'min', limit: limits.rpm, used: used.requests, requested: 1, retryAfterMs: u.minute.retryAfter(t, tokens, perMinute) };
    }
    if (over.tokens) {
      return { ok: false, kind: 'tokens', per: 'min', limit: limits.tpm, used: used.tokens, requested: tokens, retryAfterMs: u.minute.retryAfter(t, tokens, perMinute) };
    }
    if (limits.rpd !== undefined && u.dayRequests + 1 > limits.rpd) {
      return { ok: false, kind: 'requests', per: 'day', limit: limits.rpd, used: u.dayRequests, requested: 1, retryAfterMs: (u.day + 1) * DAY_MS - t };
    }
    if (u.slice && this.sliceMs !== undefined) {
      const perSlice = { requests: sliceLimit(limits.rpm, this.sliceMs), tokens: sliceLimit(limits.tpm, this.sliceMs) };
      const inSlice = u.slice.used(t);
      const sliceOver = u.slice.over(t, tokens, perSlice);
      if (inSlice.requests > 0 && (sliceOver.requests || sliceOver.tokens)) {
        // OpenAI words a sub-minute refusal as the per-minute limit it enforces.
        const kind = sliceOver.requests ? 'requests' : 'tokens';
        return {
          ok: false,
          kind,
          per: 'min',
          limit: kind === 'requests' ? limits.rpm : limits.tpm,
          used: kind === 'requests' ? used.requests : used.tokens,
          requested: kind === 'requests' ? 1 : tokens,
          retryAfterMs: u.slice.retryAfter(t, tokens, perSlice),
        };
      }
    }
    const slice = u.slice?.add(t, tokens);
    const minute = u.minute.add(t, tokens);
    u.dayRequests += 1;
    return { ok: true, booking: { usage: u, minute, slice } };
  }

  /** Gives back `unused` tokens of a booking while its windows still count it. */
  settle(booking: Booking, unused: number): void {
    booking.usage.minute.giveBack(booking.minute, unused);
    if (booking.slice && booking.usage.slice) booking.usage.slice.giveBack(booking.slice, unused);
  }

  /** The x-ratelimit-* values for this organization and model, now. */
  headers(org: string, model: string, limits: Limits, format: (ms: number) => string): RateLimitHeaders {
    const u = this.current(org, model);
    const t = this.now();
    const used = u.minute.used(t);
    const reset = format(u.minute.emptyAfter(t));
    return {
      'x-ratelimit-limit-requests': String(limits.rpm),
      'x-ratelimit-limit-tokens': String(limits.tpm),
      'x-ratelimit-remaining-requests': String(Math.max(0, limits.rpm - used.requests)),
      'x-ratelimit-remaining-tokens': String(Math.max(0, limits.tpm - used.tokens)),
      'x-ratelimit-reset-requests': reset,
      'x-ratelimit-reset-tokens': reset,
    };
  }

  snapshot(): Record<string, Record<string, UsageSnapshot>> {
    const out: Record<string, Record<string, UsageSnapshot>> = {};
    const t = this.now();
    for (const key of this.usage.keys()) {
      const [org, model] = key.split('\u0000') as [string, string];
      const u = this.current(org, model);
      const used = u.minute.used(t);
      (out[org] ??= {})[model] = { minuteRequests: used.requests, minuteTokens: used.tokens, dayRequests: u.dayRequests };
    }
    return out;
  }

  reset(): void {
    this.usage.clear();
  }
}
