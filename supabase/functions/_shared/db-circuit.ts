// Whether calls may reach the database now: a small circuit breaker, apart from the pool it guards.
//
//   - up: every call goes.
//   - down (the server did not answer): for `downForMs` every call is refused at once, so no caller
//     waits on a dead pool. After that the next call starts a probe (the pool's owner decides what a
//     probe is) and waits for its outcome; calls that arrive while it runs wait with it, so the burst
//     that comes after an outage is served together, not refused but for the one that probed.
//   - a probe that answers ends the down state; one that fails starts another `downForMs`.
//   - nobody waits on a probe for longer than `probeWaitMs` from the probe's start (nor past its own
//     deadline): a probe stuck on a frozen server leaves later callers refused at once again.
export interface CircuitOptions {
  /** After a failure (or a failed probe), calls are refused at once for this long. */
  downForMs: number;
  /** A caller waits for a probe's outcome at most this long after the probe began. */
  probeWaitMs: number;
  /** True when the server answered (an error it answered counts), false when it did not. */
  probe: () => Promise<boolean>;
  now?: () => number;
}

export class Circuit {
  #down = false;
  #retryAt = 0;
  #probe: { startedAt: number; outcome: Promise<boolean> } | null = null;
  #lastAnswerAt = Number.NEGATIVE_INFINITY;
  readonly #options: CircuitOptions;
  readonly #now: () => number;

  constructor(options: CircuitOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  state(): "up" | "down" | "probing" {
    return !this.#down ? "up" : this.#probe ? "probing" : "down";
  }

  /** Milliseconds until a caller refused now may try again (0 when up). */
  retryInMs(): number {
    return this.#down ? Math.max(0, this.#retryAt - this.#now()) : 0;
  }

  /**
   * Whether a call may go now. When down, it is refused at once during the down interval; after it,
   * the call waits for a probe (starting one if none runs) until `deadlineAt` at the latest.
   */
  async admit(deadlineAt: number = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (!this.#down) return true;
    const now = this.#now();
    if (this.#probe === null && now >= this.#retryAt) this.#startProbe();
    const probe = this.#probe;
    if (probe === null) return false;
    const waitMs = Math.min(probe.startedAt + this.#options.probeWaitMs, deadlineAt) - now;
    if (waitMs <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
    try {
      return await Promise.race([probe.outcome, gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The server answered a call (a result or an error of its own): it is up. */
  answered(): void {
    this.#lastAnswerAt = this.#now();
    this.#down = false;
  }

  /** Whether the server answered any call since `time` (a slow connect then is no outage). */
  answeredSince(time: number): boolean {
    return this.#lastAnswerAt >= time;
  }

  /** The server did not answer: refuse calls for a while. True when this began the down state. */
  failed(): boolean {
    const began = !this.#down;
    this.#down = true;
    this.#retryAt = Math.max(this.#retryAt, this.#now() + this.#options.downForMs);
    return began;
  }

  #startProbe(): void {
    const startedAt = this.#now();
    const outcome = this.#options.probe().catch(() => false).then((up) => {
      this.#probe = null;
      if (up) this.answered();
      else this.#retryAt = this.#now() + this.#options.downForMs;
      return up;
    });
    this.#probe = { startedAt, outcome };
  }
}
