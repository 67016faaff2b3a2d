// Anthropic's counting: per organization and pool of models, three separate limits (requests, input
// tokens, output tokens per minute), each a token bucket that refills continuously at limit/60 s up
// to its capacity ("your capacity is continuously replenished up to your maximum limit, rather than
// being reset at fixed intervals"). A request is admitted only if all three buckets hold what it
// needs, and then takes from all three at once (checked and taken in one synchronous step). Output
// is taken as max_tokens on arrival and the unused part given back when the answer ends.

import type { BucketSizes, PoolLimits } from './config.ts';

export type LimitName = 'requests' | 'input_tokens' | 'output_tokens';
const MINUTE_MS = 60_000;

class Bucket {
  level: number;
  at: number;

  constructor(
    public size: number,
    public perMs: number,
    t: number,
  ) {
    this.level = size;
    this.at = t;
  }

  refill(t: number): void {
    if (t > this.at) this.level = Math.min(this.size, this.level + (t - this.at) * this.perMs);
    this.at = Math.max(this.at, t);
  }

  /** Ms after `t` until `n` fits; Infinity when `n` is more than the bucket holds. */
  waitFor(n: number): number {
    if (n > this.size) return Number.POSITIVE_INFINITY;
    if (this.level >= n) return 0;
    return this.perMs > 0 ? Math.ceil((n - this.level) / this.perMs) : Number.POSITIVE_INFINITY;
  }

  /** Ms after `at` until the bucket is full again. */
  fullAfter(): number {
    return this.perMs > 0 ? Math.ceil((this.size - this.level) / this.perMs) : 0;
  }
}

interface PoolBuckets {
  requests: Bucket;
  input_tokens: Bucket;
  output_tokens: Bucket;
}

export interface Need {
  input: number;
  output: number;
}

export type Admission =
  | { ok: true; booking: Booking }
  | { ok: false; limit: LimitName; limitValue: number; retryAfterMs: number };

export interface Booking {
  pool: PoolBuckets;
  output: number;
}

export interface BucketSnapshot {
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

export class BucketTracker {
  private pools = new Map<string, PoolBuckets>();

  constructor(private readonly now: () => number) {}

  private buckets(org: string, pool: string, limits: PoolLimits, sizes: BucketSizes): PoolBuckets {
    const key = `${org}\u0000${pool}`;
    const t = this.now();
    let b = this.pools.get(key);
    if (!b) {
      b = {
        requests: new Bucket(sizes.requests, limits.rpm / MINUTE_MS, t),
        input_tokens: new Bucket(sizes.inputTokens, limits.itpm / MINUTE_MS, t),
        output_tokens: new Bucket(sizes.outputTokens, limits.otpm / MINUTE_MS, t),
      };
      this.pools.set(key, b);
    }
    // Limits may change at run time (setOrganizations); the level stays, capped by the new size.
    const set = (x: Bucket, size: number, perMinute: number): void => {
      x.refill(t);
      x.size = size;
      x.perMs = perMinute / MINUTE_MS;
      x.level = Math.min(x.level, size);
    };
    set(b.requests, sizes.requests, limits.rpm);
    set(b.input_tokens, sizes.inputTokens, limits.itpm);
    set(b.output_tokens, sizes.outputTokens, limits.otpm);
    return b;
  }

  /** Admits one request needing `need`, all or nothing; refused, names the limit that binds longest. */
  admit(org: string, pool: string, limits: PoolLimits, sizes: BucketSizes, need: Need): Admission {
    const b = this.buckets(org, pool, limits, sizes);
    const asks: [LimitName, number, number][] = [
      ['requests', 1, limits.rpm],
      ['input_tokens', need.input, limits.itpm],
      ['output_tokens', need.output, limits.otpm],
    ];
    let worst: { limit: LimitName; limitValue: number; wait: number } | undefined;
    for (const [name, n, limitValue] of asks) {
      const wait = b[name].waitFor(n);
      if (wait > 0 && (worst === undefined || wait > worst.wait)) worst = { limit: name, limitValue, wait };
    }
    if (worst) return { ok: false, limit: worst.limit, limitValue: worst.limitValue, retryAfterMs: Number.isFinite(worst.wait) ? worst.wait : MINUTE_MS };
    b.requests.level -= 1;
    b.input_tokens.level -= need.input;
    b.output_tokens.level -= need.output;
    return { ok: true, booking: { pool: b, output: need.output } };
  }

  /** The answer is over: output tokens booked and not written go back (up to the bucket's size). */
  settle(booking: Booking, outputUsed: number): void {
    const back = booking.output - outputUsed;
    if (back <= 0) return;
    const bucket = booking.pool.output_tokens;
    bucket.refill(this.now());
    bucket.level = Math.min(bucket.size, bucket.level + back);
  }

  /** anthropic-ratelimit-* for this organization and pool, as they stand now. */
  headers(org: string, pool: string, limits: PoolLimits, sizes: BucketSizes): Record<string, string> {
    const b = this.buckets(org, pool, limits, sizes);
    const t = this.now();
    const out: Record<string, string> = {};
    const reset = (x: Bucket): string => new Date(t + x.fullAfter()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const put = (prefix: string, x: Bucket, limit: number): void => {
      out[`anthropic-ratelimit-${prefix}-limit`] = String(limit);
      out[`anthropic-ratelimit-${prefix}-remaining`] = String(Math.max(0, Math.floor(x.level)));
      out[`anthropic-ratelimit-${prefix}-reset`] = reset(x);
    };
    put('requests', b.requests, limits.rpm);
    put('input-tokens', b.input_tokens, limits.itpm);
    put('output-tokens', b.output_tokens, limits.otpm);
    // "tokens": the most restrictive of the two token limits in effect now.
    const inputShare = b.input_tokens.level / Math.max(1, b.input_tokens.size);
    const outputShare = b.output_tokens.level / Math.max(1, b.output_tokens.size);
    const [x, limit] = inputShare <= outputShare ? [b.input_tokens, limits.itpm] : [b.output_tokens, limits.otpm];
    put('tokens', x, limit);
    return out;
  }

  snapshot(): Record<string, Record<string, BucketSnapshot>> {
    const out: Record<string, Record<string, BucketSnapshot>> = {};
    const t = this.now();
    for (const [key, b] of this.pools) {
      const [org, pool] = key.split('\u0000') as [string, string];
      for (const x of [b.requests, b.input_tokens, b.output_tokens]) x.refill(t);
      (out[org] ??= {})[pool] = { requests: b.requests.level, inputTokens: b.input_tokens.level, outputTokens: b.output_tokens.level };
    }
    return out;
  }

  reset(): void {
    this.pools.clear();
  }
}
