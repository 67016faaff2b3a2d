// Service tiers (README "Service tiers"): the request body's `serviceTier` ("flex", "standard",
// "priority"; absent: standard), as @google/genai sends it from GenerateContentConfig.serviceTier.
// - flex may be shed under load: while `shedFlex` is on (true, or a count of requests still to shed)
//   a flex request answers Google's capacity error, 503 UNAVAILABLE, without spending quota;
// - priority is served at standard, silently, when the project is over its own priority limit
//   (`priorityRpm` per fixed minute; default: no limit);
// - every successful answer says which tier served in the `x-gemini-service-tier` header.
import * as errors from './errors.ts';
import { minuteStart } from './quota.ts';

export type ServiceTier = 'flex' | 'standard' | 'priority';
export const SERVED_TIER_HEADER = 'x-gemini-service-tier';

export interface ServiceTierOptions {
  /** Shed flex requests: true until turned off, or this many more. Default false. */
  shedFlex?: boolean | number;
  /** Priority requests per project per minute before priority is served at standard. Default: no limit. */
  priorityRpm?: number | null;
}

export interface ServiceTierState {
  shedFlex: boolean | number;
  priorityRpm: number | null;
  /** generateContent/stream calls by the tier they asked for (absent: "standard"). */
  asked: Record<string, number>;
  /** Answers by the tier that served them. */
  served: Record<string, number>;
  /** Flex requests shed. */
  shed: number;
}

export type TierDecision = { ok: true; served: ServiceTier } | { ok: false; answer: errors.SimAnswer };

export class ServiceTiers {
  private shedFlex: boolean | number = false;
  private priorityRpm: number | null = null;
  private asked = new Map<string, number>();
  private served = new Map<string, number>();
  private shedCount = 0;
  /** project -> [minute start, priority requests served in it] */
  private priorityUse = new Map<string, [number, number]>();

  constructor(private readonly now: () => number, options: ServiceTierOptions = {}) {
    this.set(options);
  }

  set(options: ServiceTierOptions): void {
    const shed = options.shedFlex ?? false;
    if (!(typeof shed === 'boolean' || (Number.isInteger(shed) && shed >= 0))) {
      throw new Error('google-sim: shedFlex must be a boolean or a non-negative integer');
    }
    const rpm = options.priorityRpm ?? null;
    if (rpm !== null && !(Number.isFinite(rpm) && rpm >= 0)) {
      throw new Error('google-sim: priorityRpm must be a non-negative number or null');
    }
    this.shedFlex = shed;
    this.priorityRpm = rpm;
  }

  reset(): void {
    this.shedFlex = false;
    this.priorityRpm = null;
    this.asked.clear();
    this.served.clear();
    this.shedCount = 0;
    this.priorityUse.clear();
  }

  /** The tier that serves a request of `project` whose body asked for `asked`, or the answer refusing it. */
  decide(project: string, asked: unknown): TierDecision {
    const tier = parseTier(asked);
    if (tier === null) {
      return {
        ok: false,
        answer: errors.invalidJson(
          `Invalid value at 'service_tier' (type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), "${String(asked)}"`,
        ),
      };
    }
    bump(this.asked, tier);
    if (tier === 'flex' && this.shedFlex !== false && this.shedFlex !== 0) {
      if (typeof this.shedFlex === 'number') this.shedFlex--;
      this.shedCount++;
      return { ok: false, answer: errors.unavailable() };
    }
    let served: ServiceTier = tier;
    if (tier === 'priority' && this.priorityRpm !== null) {
      const minute = minuteStart(this.now());
      const use = this.priorityUse.get(project);
      const used = use !== undefined && use[0] === minute ? use[1] : 0;
      if (used >= this.priorityRpm) served = 'standard';
      else this.priorityUse.set(project, [minute, used + 1]);
    }
    return { ok: true, served };
  }

  /** Counts an answer a tier served (called when the 200 goes out). */
  answered(served: ServiceTier): void {
    bump(this.served, served);
  }

  state(): ServiceTierState {
    return {
      shedFlex: this.shedFlex,
      priorityRpm: this.priorityRpm,
      asked: Object.fromEntries(this.asked),
      served: Object.fromEntries(this.served),
      shed: this.shedCount,
    };
  }
}

function parseTier(value: unknown): ServiceTier | null {
  if (value === undefined || value === null) return 'standard';
  if (typeof value !== 'string') return null;
  const v = value.toLowerCase().replace(/^service_tier_/, '');
  if (v === 'unspecified' || v === 'standard') return 'standard';
  return v === 'flex' || v === 'priority' ? v : null;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** The control API's body: {shedFlex?, priorityRpm?}. */
export function parseServiceTierOptions(body: unknown): ServiceTierOptions {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Error('expected {shedFlex?: boolean | count, priorityRpm?: number | null}');
  }
  const o = body as Record<string, unknown>;
  return {
    ...(o.shedFlex === undefined ? {} : { shedFlex: o.shedFlex as boolean | number }),
    ...(o.priorityRpm === undefined ? {} : { priorityRpm: o.priorityRpm as number | null }),
  };
}
