// What the simulator saw, per calendar minute of its own clock, for Google's generation calls
// (sim-core/windows.ts does the counting).

import { arrivalsByMinute as byMinute, type ArrivalWindow } from '../sim-core/windows.ts';
import type { RequestRecord } from './stats.ts';

export type { ArrivalWindow } from '../sim-core/windows.ts';

const GENERATION: ReadonlySet<string> = new Set(['generateContent', 'streamGenerateContent']);

/** Generation requests for `model` (all models when omitted), grouped by the simulator's minute. */
export function arrivalsByMinute(records: readonly RequestRecord[], model?: string): ArrivalWindow[] {
  return byMinute(records, GENERATION, model);
}
