// Wall-clock helpers for parts that must line up with minute windows.
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Waits until the current second of the minute is within [from, to) (seconds). */
export async function waitForSecondOfMinute(from: number, to: number): Promise<void> {
  for (;;) {
    const s = (Date.now() % 60_000) / 1000;
    if (s >= from && s < to) return;
    const target = s < from ? from - s : 60 - s + from;
    await sleep(Math.min(target * 1000, 1000));
  }
}

export function minuteOf(ms: number): number {
  return Math.floor(ms / 60_000) * 60_000;
}
