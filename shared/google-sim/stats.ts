// What Google saw (sim-core/stats.ts), with the quota group named as Google names it: the project.

import type { RequestRecord as CoreRecord, SimStats as CoreStats } from '../sim-core/stats.ts';
import type { ApiMethod } from './faults.ts';

export type { Counter, StreamCounts } from '../sim-core/stats.ts';

export type RequestRecord = Omit<CoreRecord<ApiMethod>, 'group'> & {
  /** The key's Google Cloud project; undefined for an unknown key. */
  project: string | undefined;
};

export interface SimStats extends Omit<CoreStats<ApiMethod>, 'byGroup' | 'recent'> {
  byProject: CoreStats['byGroup'];
  /** The most recent requests (up to 1000), oldest first. */
  recent: RequestRecord[];
}

export function googleStats(stats: CoreStats<ApiMethod>): SimStats {
  const { byGroup, recent, ...rest } = stats;
  return { ...rest, byProject: byGroup, recent: recent.map(({ group, ...r }) => ({ ...r, project: group })) };
}
