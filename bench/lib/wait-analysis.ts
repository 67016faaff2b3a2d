// The WAIT part's accounting, per limiter: admissions per calendar minute against the limit, utilisation
// of the whole windows, over-admission, the spread of waits, and who gave up and why.
import { minuteOf } from "./clock.ts";
import { roundSummary, summarize } from "./stats.ts";
import type { WaitRecord } from "./wait-client.ts";

export type LimiterResult = ReturnType<typeof analyse>;

/**
 * `spanMs`: the limiter's own window when it slides (ours: 60 s + guard). Then "capacity left" means its
 * window held fewer than the limit for a whole second (two samples 1 s apart), not a calendar minute left
 * short: a sliding window never fills every calendar minute to the limit, by design.
 */
export function analyse(
  id: "ours" | "rlflex" | "naive",
  label: string,
  records: WaitRecord[],
  cfg: { limitRpm: number },
  fullWindows: number[],
  spanMs?: number,
) {
  const admitted = records.filter((r) => r.admittedAt !== null);
  const perWindowMap = new Map<number, number>();
  for (const r of admitted) perWindowMap.set(r.window!, (perWindowMap.get(r.window!) ?? 0) + 1);
  const windows = [...perWindowMap.keys()].sort((a, b) => a - b);
  const perWindow = windows.map((w) => ({ window: new Date(w).toISOString(), admitted: perWindowMap.get(w)!, full: fullWindows.includes(w) }));
  const overAdmission = perWindow.reduce((s, w) => s + Math.max(0, w.admitted - cfg.limitRpm), 0);
  const utilisation = fullWindows.map((w) => ({
    window: new Date(w).toISOString(),
    admitted: perWindowMap.get(w) ?? 0,
    ratio: (perWindowMap.get(w) ?? 0) / cfg.limitRpm,
  }));
  const straddling = admitted.filter((r) => minuteOf(r.admitCallStartedAt!) !== minuteOf(r.admittedAt!)).length;
  const gaveUp = records.filter((r) => r.gaveUpAt !== null && r.error === undefined);
  // Starved: gave up although a window it waited through had capacity left.
  const spare = (w: number) => (perWindowMap.get(w) ?? 0) < cfg.limitRpm;
  const admittedTimes = admitted.map((r) => r.admittedAt!).sort((a, b) => a - b);
  const inSpan = (t: number) => countBetween(admittedTimes, t - spanMs!, t);
  const spareAt = (t: number) => inSpan(t) < cfg.limitRpm && inSpan(t + 1000) < cfg.limitRpm;
  const starved = gaveUp.filter((r) => {
    if (spanMs !== undefined) {
      for (let t = r.arrivedAt; t + 1000 <= r.gaveUpAt!; t += 1000) if (spareAt(t)) return true;
      return false;
    }
    for (let w = minuteOf(r.arrivedAt); w <= minuteOf(r.gaveUpAt!); w += 60_000) if (spare(w)) return true;
    return false;
  }).length;
  // Overtaken: gave up while someone who arrived later had been admitted (admission is not FIFO).
  const overtaken = gaveUp.filter((r) => admitted.some((a) => a.arrivedAt > r.arrivedAt && a.admittedAt! <= r.gaveUpAt!)).length;
  const errors = records.filter((r) => r.error !== undefined);
  return {
    id,
    label,
    arrivals: records.length,
    admitted: admitted.length,
    gaveUp: gaveUp.length,
    cutOff: records.filter((r) => r.cutOff).length,
    errors: errors.length,
    ...(errors[0] ? { firstError: errors[0].error } : {}),
    perWindow,
    utilisation,
    overAdmission,
    windowsAboveLimit: perWindow.filter((w) => w.admitted > cfg.limitRpm).length,
    /** Admissions whose call straddled a minute boundary (counted by when the answer came back). */
    straddling,
    waitMs: roundSummary(summarize(admitted.map((r) => r.admittedAt! - r.arrivedAt)), 0),
    starvedWhileCapacityFree: starved,
    overtakenGaveUp: overtaken,
  };
}

/** How many of the sorted times lie in (from, to]. */
export function countBetween(sorted: number[], from: number, to: number): number {
  const firstAfter = (x: number) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return firstAfter(to) - firstAfter(from);
}
