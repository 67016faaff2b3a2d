// Per-project, per-model quota windows. Google does not publish how it counts, so the minute
// windows are a choice (`MinuteWindow`):
// - "fixed" (default): RPM and TPM in calendar minutes that start at second :00 of the clock given;
// - "sliding": a request is admitted when the requests (and input tokens) admitted in the 60 s
//   before it, plus this one, fit;
// - TPM counts input tokens only;
// - RPD in calendar days that end at midnight America/Los_Angeles, so DST moves the reset in UTC.
// Admission is checked and recorded in one synchronous step, so concurrent requests cannot both
// slip into the last slot; a refused request records nothing.

import { WindowCount, type MinuteWindow } from '../sim-core/windows.ts';
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

export { MINUTE_WINDOWS, minuteStart, type MinuteWindow } from '../sim-core/windows.ts';

/** Builds one QuotaFailure violation; unknown quota ids are treated as request quotas. */
export function violation(quotaId: string, model: string, quotaValue: number | string): QuotaViolation {
  return {
    quotaMetric: quotaId === QUOTA_IDS.tpm ? TOKENS_METRIC : REQUESTS_METRIC,
    quotaId,
    quotaDimensions: { location: 'global', model },
    quotaValue: String(quotaValue),
  };
}

interface Usage {
  /** RPM and TPM: requests and input tokens in the minute window. */
  minute: WindowCount;
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
    const day = pacificDay(this.now());
    const key = `${project}\u0000${model}`;
    let u = this.usage.get(key);
    if (!u) {
      u = { minute: new WindowCount(this.window), day, dayRequests: 0, dayExhausted: false };
      this.usage.set(key, u);
    }
    if (u.day !== day) Object.assign(u, { day, dayRequests: 0, dayExhausted: false });
    return u;
  }

  /** Checks every limit; records the request only when all of them allow it. */
  admit(project: string, model: string, spec: ModelSpec, inputTokens: number): Admission {
    const u = this.current(project, model);
    const t = this.now();
    const limits = { requests: spec.rpm, tokens: spec.tpm };
    const over = u.minute.over(t, inputTokens, limits);
    const violations: QuotaViolation[] = [];
    if (over.requests) violations.push(violation(QUOTA_IDS.rpm, model, spec.rpm));
    if (over.tokens) violations.push(violation(QUOTA_IDS.tpm, model, spec.tpm));
    if (u.dayExhausted || u.dayRequests + 1 > spec.rpd) violations.push(violation(QUOTA_IDS.rpd, model, spec.rpd));
    if (violations.length > 0) {
      // Google reports a short delay even for the per-day quota; the simulator does the same
      // (time to the next minute), so the gateway must read the quotaId, not just the delay.
      return { ok: false, violations, retryAfterMs: u.minute.retryAfter(t, inputTokens, limits) };
    }
    u.minute.add(t, inputTokens);
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
      const minute = u.minute.used(this.now());
      (out[project] ??= {})[model] = {
        minuteRequests: minute.requests,
        minuteTokens: minute.tokens,
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
