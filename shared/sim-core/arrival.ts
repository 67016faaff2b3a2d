// The network between the caller and the provider: each request arrives `delayMs` ± `jitterMs`
// (uniform) after it was sent, and the provider counts it on arrival. A simulator sleeps that long
// before it records or counts a request, so a request sent at :59.95 with 100 ms of delay lands in
// the next minute, as it would on the provider.

export interface ArrivalOptions {
  /** Mean delay in ms before a request is counted. Default 0. */
  delayMs?: number | undefined;
  /** Uniform jitter in ms around the delay: the delay is drawn from [delay - jitter, delay + jitter]. */
  jitterMs?: number | undefined;
  /** Source of [0, 1) numbers for the jitter; inject one (or `seed`) for repeatable tests. */
  random?: (() => number) | undefined;
  /** Seeds a small deterministic generator when `random` is not given. */
  seed?: number | undefined;
}

/** mulberry32: a tiny seeded generator; good enough to spread jitter, not for anything secret. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function nonNegative(name: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!Number.isFinite(v) || v < 0) throw new Error(`sim: ${name} must be a non-negative number`);
  return v;
}

/** Returns the per-request delay function (ms, never negative) for these options. */
export function arrivalDelays(opts: ArrivalOptions = {}): () => number {
  const delay = nonNegative('arrivalDelayMs', opts.delayMs);
  const jitter = nonNegative('arrivalJitterMs', opts.jitterMs);
  if (jitter === 0) return () => delay;
  const random = opts.random ?? (opts.seed === undefined ? Math.random : seededRandom(opts.seed));
  return () => Math.max(0, Math.round(delay + (2 * random() - 1) * jitter));
}
