// Per-project, per-model quota windows. Google does not publish how it counts, so the minute
// windows are a choice (`MinuteWindow`):
// - "fixed" (default): RPM and TPM in calendar minutes that start at second :00 of the clock given;
// - "sliding": a request is admitted when the requests (and input tokens) admitted in the 60 s
//   before it, plus this one, fit;
// - TPM counts input tokens only;
// - RPD in calendar days that end at midnight America/Los_Angeles, so DST moves the reset in UTC.
// Admission is checked and recorded in one synchronous step, so concurrent requests cannot both
// slip into the last slot; a refused request records nothing.

import type { ModelSpec } from './config.ts';
import type { QuotaViolation } from './errors.ts';

export const PACIFIC_TZ = 'America/Los_Angeles';

export const QUOTA_IDS = {
  rpm: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
  tpm: 'GenerateContentInputTokensPerModelPerMinute-FreeTier',
  rpd: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier',
} as const;

const REQUESTS_METRIC = 'generativelanguage.googleapis.com/generate_content_free_tier_requests';
const TOKENS_METRIC = 'generativelanguage.googleapis.com/generate_content_free_tier_input_token_count';

const pacificFormat = new Intl.DateTimeFormat('en-US', {
  timeZone: PACIFIC_TZ,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

function pacificParts(t: number): { year: number; month: number; day: number; hour: number; minute: number } {
  const parts: Record<string, number> = {};
  for (const p of pacificFormat.formatToParts(t)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute! };
}

/** The Pacific calendar date of instant `t`, as "YYYY-MM-DD". */
export function pacificDay(t: number): string {
  const { year, month, day } = pacificParts(t);
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** The first instant after `t` at which the Pacific date changes (00:00 PST or PDT). */
export function nextPacificMidnight(t: number): number {
  const { year, month, day } = pacificParts(t);
  // Midnight is 07:00 UTC under PDT and 08:00 UTC under PST; DST switches at 02:00 local, so
  // midnight itself is never skipped or repeated and one of the two candidates is exact.
  for (const utcHour of [7, 8]) {
    const candidate = Date.UTC(year, month - 1, day + 1, utcHour);
    const p = pacificParts(candidate);
    if (p.hour === 0 && p.minute === 0) return candidate;
  }
  throw new Error(`google-sim: no Pacific midnight found after ${new Date(t).toISOString()}`);
}

/** How RPM and TPM are counted. */
export type MinuteWindow = 'fixed' | 'sliding';
export const MINUTE_WINDOWS: readonly MinuteWindow[] = ['fixed', 'sliding'];
const MINUTE_MS = 60_000;

export function minuteStart(t: number): number {
  return Math.floor(t / 60_000) * 60_000;
}

/** Builds one QuotaFailure violation; unknown quota ids are treated as request quotas. */
export function violation(quotaId: string, model: string, quotaValue: number | string): QuotaViolation {
  return {
    quotaMetric: quotaId === QUOTA_IDS.tpm ? TOKENS_METRIC : REQUESTS_METRIC,
    quotaId,
    quotaDimensions: { location: 'global', model },
    quotaValue: String(quotaValue),
  };
}

/** One admitted request in a sliding window. */
interface Admitted {
  at: number;
  tokens: number;
}

interface Usage {
  minute: number;
  minuteRequests: number;
  minuteTokens: number;
  /** Sliding mode: admissions of the last 60 s, oldest first (empty in fixed mode). */
  log: Admitted[];
  day: string;
  dayRequests: number;
  /** Set by the `day_exhausted` fault; cleared when the Pacific day rolls over. */
  dayExhausted: boolean;
}

export type Admission =
  | { ok: true }
  | {
    ok: false;
    violations: QuotaViolation[];
    /** Fixed: time to the next minute window. Sliding: time until enough admissions age out. */
    retryAfterMs: number;
  };

export interface UsageSnapshot {
  /** Requests in the current minute (fixed) or the last 60 s (sliding). */
  minuteRequests: number;
  minuteTokens: number;
  dayRequests: number;
  dayExhausted: boolean;
  /** ISO instant at which the per-day counter resets (next Pacific midnight). */
  dayResetsAt: string;
}

export class QuotaTracker {
  private readonly usage = new Map<string, Usage>();

  /** `now` is the simulator's clock (offset included); `window` how RPM/TPM are counted. */
  constructor(
    private readonly now: () => number,
    private readonly window: MinuteWindow = 'fixed',
  ) {}

  private current(project: string, model: string): Usage {
    const t = this.now();
    const minute = minuteStart(t);
    const day = pacificDay(t);
    const key = `${project}\u0000${model}`;
    let u = this.usage.get(key);
    if (!u) {
      u = { minute, minuteRequests: 0, minuteTokens: 0, log: [], day, dayRequests: 0, dayExhausted: false };
      this.usage.set(key, u);
    }
    if (this.window === 'sliding') {
      // Drop what left the window; the counters then cover (t - 60 s, t].
      let gone = 0;
      while (gone < u.log.length && u.log[gone]!.at <= t - MINUTE_MS) gone++;
      if (gone > 0) u.log.splice(0, gone);
      u.minuteRequests = u.log.length;
      u.minuteTokens = u.log.reduce((sum, a) => sum + a.tokens, 0);
    } else if (u.minute !== minute) {
      Object.assign(u, { minute, minuteRequests: 0, minuteTokens: 0 });
    }
    if (u.day !== day) Object.assign(u, { day, dayRequests: 0, dayExhausted: false });
    return u;
  }

  /** Sliding mode: how long until the window has room for one more request of `tokens`. */
  private slidingRetryAfter(u: Usage, spec: ModelSpec, tokens: number, t: number): number {
    let requests = u.minuteRequests;
    let used = u.minuteTokens;
    for (const a of u.log) {
      if (requests + 1 <= spec.rpm && used + tokens <= spec.tpm) break;
      requests -= 1;
      used -= a.tokens;
      if (requests + 1 <= spec.rpm && used + tokens <= spec.tpm) return Math.max(1, a.at + MINUTE_MS - t);
    }
    // Room already (only the day quota refused), or a request larger than the TPM itself.
    return MINUTE_MS;
  }

  /** Checks every limit; records the request only when all of them allow it. */
  admit(project: string, model: string, spec: ModelSpec, inputTokens: number): Admission {
    const u = this.current(project, model);
    const violations: QuotaViolation[] = [];
    if (u.minuteRequests + 1 > spec.rpm) violations.push(violation(QUOTA_IDS.rpm, model, spec.rpm));
    if (u.minuteTokens + inputTokens > spec.tpm) violations.push(violation(QUOTA_IDS.tpm, model, spec.tpm));
    if (u.dayExhausted || u.dayRequests + 1 > spec.rpd) violations.push(violation(QUOTA_IDS.rpd, model, spec.rpd));
    if (violations.length > 0) {
      // Google reports a short delay even for the per-day quota; the simulator does the same
      // (time to the next minute), so the gateway must read the quotaId, not just the delay.
      const t = this.now();
      const retryAfterMs = this.window === 'sliding'
        ? this.slidingRetryAfter(u, spec, inputTokens, t)
        : u.minute + MINUTE_MS - t;
      return { ok: false, violations, retryAfterMs };
    }
    if (this.window === 'sliding') u.log.push({ at: this.now(), tokens: inputTokens });
    u.minuteRequests += 1;
    u.minuteTokens += inputTokens;
    u.dayRequests += 1;
    return { ok: true };
  }

  /** Treats the project's day quota for `model` as used up until the next Pacific midnight. */
  exhaustDay(project: string, model: string): void {
    this.current(project, model).dayExhausted = true;
  }

  snapshot(): Record<string, Record<string, UsageSnapshot>> {
    const out: Record<string, Record<string, UsageSnapshot>> = {};
    const dayResetsAt = new Date(nextPacificMidnight(this.now())).toISOString();
    for (const key of this.usage.keys()) {
      const [project, model] = key.split('\u0000') as [string, string];
      const u = this.current(project, model);
      (out[project] ??= {})[model] = {
        minuteRequests: u.minuteRequests,
        minuteTokens: u.minuteTokens,
        dayRequests: u.dayRequests,
        dayExhausted: u.dayExhausted,
        dayResetsAt,
      };
    }
    return out;
  }

  reset(): void {
    this.usage.clear();
  }
}
