// Where a request's time went, as the standard `Server-Timing` header (W3C Server Timing):
// `auth;dur=0.21, body;dur=0.08, reserve;dur=1.52, upstream;dur=3.1, total;dur=5.4`, durations in
// milliseconds. One recorder per request, a fixed array of sums: a phase timed more than once (a
// reservation per attempt, a call to the provider per attempt) is summed. Only phase names and
// durations ever go in the header: never a name, an id or a secret.

/** The phases a request may spend time in, in the order the header lists them. */
export const PHASES = ["auth", "body", "reserve", "wait", "upstream", "finalize"] as const;
export type Phase = (typeof PHASES)[number];

const INDEX: Record<Phase, number> = { auth: 0, body: 1, reserve: 2, wait: 3, upstream: 4, finalize: 5 };

/** What the code being timed sees: take a mark, then add the time since it to a phase. */
export interface PhaseTimer {
  /** Now, as a start mark for `add`. */
  mark(): number;
  /** Adds the time since `mark` to `phase`; the phase then appears in the header (0 included). */
  add(phase: Phase, mark: number): void;
  /** Runs `work` and adds its time to `phase`, however it ends. */
  time<T>(phase: Phase, work: () => Promise<T>): Promise<T>;
  /** The request's time so far and what the provider and the wait for capacity took of it (absent: not recorded). */
  soFar?(): TimeSoFar;
}

/** For the attempt row's added_ms and first_byte_ms (milliseconds). */
export interface TimeSoFar {
  totalMs: number;
  upstreamMs: number;
  waitMs: number;
}

/** For code called without a request's recorder (unit tests, callers that time nothing): records nothing. */
export const untimed: PhaseTimer = { mark: () => 0, add: () => {}, time: (_phase, work) => work() };

// performance.now() is monotonic and sub-millisecond, under Deno and Node alike.
const monotonicNow = () => performance.now();

export class ServerTiming implements PhaseTimer {
  private readonly now: () => number;
  private readonly started: number;
  private readonly sums = new Float64Array(PHASES.length);
  /** Bit i set: PHASES[i] was reached. */
  private reached = 0;

  constructor(now: () => number = monotonicNow) {
    this.now = now;
    this.started = now();
  }

  mark(): number {
    return this.now();
  }

  add(phase: Phase, mark: number): void {
    const i = INDEX[phase];
    const ms = this.now() - mark;
    if (ms > 0) this.sums[i]! += ms;
    this.reached |= 1 << i;
  }

  async time<T>(phase: Phase, work: () => Promise<T>): Promise<T> {
    const start = this.now();
    try {
      return await work();
    } finally {
      this.add(phase, start);
    }
  }

  soFar(): TimeSoFar {
    return {
      totalMs: Math.max(0, this.now() - this.started),
      upstreamMs: this.sums[INDEX.upstream]!,
      waitMs: this.sums[INDEX.wait]!,
    };
  }

  /** The header's value now: the phases reached, in PHASES order, then `total` since the recorder began. */
  header(): string {
    let value = "";
    for (let i = 0; i < PHASES.length; i++) {
      if ((this.reached & (1 << i)) === 0) continue;
      value += `${PHASES[i]};dur=${ms(this.sums[i]!)}, `;
    }
    return `${value}total;dur=${ms(this.now() - this.started)}`;
  }
}

/** Milliseconds with at most two decimals, never negative. */
function ms(value: number): string {
  return String(Math.round(Math.max(0, value) * 100) / 100);
}

/** A Server-Timing value read back: phase name → duration (ms); for tests and the benchmark. */
export function parseServerTiming(value: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (value === null) return out;
  for (const entry of value.split(",")) {
    const [name, ...params] = entry.trim().split(";");
    if (name === undefined || name === "") continue;
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    out[name] = dur === undefined ? NaN : Number(dur.slice(4));
  }
  return out;
}
