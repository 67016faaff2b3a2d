// What the simulator saw, per calendar minute of its own clock: how many generation requests
// arrived, and how many it answered 200 and 429. Used to compare Google's account of a minute with
// the gateway's (tests and the fidelity benchmark).

import { minuteStart } from './quota.ts';
import type { RequestRecord } from './stats.ts';

export interface ArrivalWindow {
  /** Start of the minute on the simulator's clock (offset included), ISO. */
  window: string;
  arrived: number;
  ok: number;
  refused429: number;
}

const GENERATION = new Set(['generateContent', 'streamGenerateContent']);

/** Generation requests for `model` (all models when omitted), grouped by the simulator's minute. */
export function arrivalsByMinute(records: readonly RequestRecord[], model?: string): ArrivalWindow[] {
  const out = new Map<number, ArrivalWindow>();
  for (const r of records) {
    if (!GENERATION.has(r.method) || (model !== undefined && r.model !== model)) continue;
    const start = minuteStart(r.at);
    let w = out.get(start);
    if (!w) {
      w = { window: new Date(start).toISOString(), arrived: 0, ok: 0, refused429: 0 };
      out.set(start, w);
    }
    w.arrived += 1;
    if (r.status === 200) w.ok += 1;
    if (r.status === 429) w.refused429 += 1;
  }
  return [...out.entries()].sort(([a], [b]) => a - b).map(([, w]) => w);
}
