// What the OpenAI simulator saw (sim-core/stats.ts), with the quota group named as OpenAI names it:
// the organization.

import type { RequestRecord as CoreRecord, SimStats as CoreStats } from '../sim-core/stats.ts';
import type { ApiMethod } from './faults.ts';

export type { Counter, StreamCounts } from '../sim-core/stats.ts';

export type RequestRecord = Omit<CoreRecord<ApiMethod>, 'group'> & {
  /** The key's organization; undefined for an unknown key. */
  organization: string | undefined;
};

export interface SimStats extends Omit<CoreStats<ApiMethod>, 'byGroup' | 'recent'> {
  byOrganization: CoreStats['byGroup'];
  /** The most recent requests (up to 1000), oldest first. */
  recent: RequestRecord[];
}

export function openaiStats(stats: CoreStats<ApiMethod>): SimStats {
  const { byGroup, recent, ...rest } = stats;
  return { ...rest, byOrganization: byGroup, recent: recent.map(({ group, ...r }) => ({ ...r, organization: group })) };
}
