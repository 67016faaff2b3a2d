// Where a database's active backends wait: `pg_stat_activity` sampled every few milliseconds on a
// connection of its own, while a load runs. Each sample counts the database's client backends that are
// running a statement (state 'active'; the sampler's own excluded) by what they wait on: a lock (any
// `Lock:*`, advisory locks included), the WAL flush (`IO:WalSync`, the backend that flushes; those whose
// commit waits for that flush wait on `LWLock:WALWrite`), nothing (on CPU, or runnable), or anything else. The averages over the samples are the mean number of backends in each state.
// (lib/wait-analysis.ts is the WAIT part's admission accounting, not this.)
import { performance } from "node:perf_hooks";
import { connect } from "../../shared/db/migrate.ts";

export interface WaitSummary {
  samples: number;
  /** Milliseconds from the first sample to the last, and between samples on average. */
  spanMs: number;
  meanIntervalMs: number;
  /** Mean active backends of the database (the sampler excluded), and of them: */
  active: number;
  /** in any `Lock:*` wait (row, tuple, transactionid, advisory, relation, ...); */
  lock: number;
  /** flushing the WAL for their commit (`IO:WalSync`); */
  walSync: number;
  /** waiting for another backend's WAL flush to cover theirs (`LWLock:WALWrite`: a commit's flush shared); */
  walWriteLock: number;
  /** in no wait (on CPU, or waiting for one); */
  cpu: number;
  /** every wait event seen, `type:event` ("CPU" for none), mean backends, largest first. */
  byEvent: { event: string; mean: number }[];
}

// One statement per sample; grouped in the server so a sample is one short row set.
const SAMPLE = `
  select coalesce(wait_event_type || ':' || wait_event, 'CPU') as event, count(*)::int as n
  from pg_catalog.pg_stat_activity
  where datname = current_database() and state = 'active' and backend_type = 'client backend'
    and pid <> pg_catalog.pg_backend_pid()
  group by 1`;

/**
 * Connects to the database at `url` (a role that sees other roles' wait events: pg_monitor or
 * pg_read_all_stats; the bench's `postgres` has pg_monitor), so that `start()` samples at once; it then
 * samples about every `intervalMs` until `stop()`, which returns the averages (and always disconnects).
 */
export async function openWaitSampler(url: string, intervalMs = 3) {
  const sql = connect(url, { max: 1, idle_timeout: 0, connection: { application_name: "eve-bench-wait-sampler" } });
  await sql.unsafe(SAMPLE, [], { prepare: true }); // connected and prepared before the first timed sample
  const totals = new Map<string, number>();
  let samples = 0;
  let first = NaN;
  let last = NaN;
  let stopping = false;
  let loop: Promise<void> = Promise.resolve();
  const sampleUntilStopped = async () => {
    const start = performance.now();
    for (let k = 1; !stopping; k++) {
      const rows = await sql.unsafe<{ event: string; n: number }[]>(SAMPLE, [], { prepare: true });
      const at = performance.now();
      if (samples === 0) first = at;
      last = at;
      samples++;
      for (const r of rows) totals.set(r.event, (totals.get(r.event) ?? 0) + r.n);
      // The next sample at its slot (start + k × interval), never two at once.
      const wait = start + k * intervalMs - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };
  return {
    start(): void {
      loop = sampleUntilStopped();
    },
    async stop(): Promise<WaitSummary> {
      stopping = true;
      try {
        await loop;
      } finally {
        await sql.end({ timeout: 5 });
      }
      return summariseWaits(totals, samples, last - first);
    },
  };
}

/** The mean backends per state, from the summed counts of `samples` samples over `spanMs`. */
export function summariseWaits(totals: Map<string, number>, samples: number, spanMs: number): WaitSummary {
  const mean = (n: number) => (samples > 0 ? n / samples : NaN);
  const sum = (pick: (event: string) => boolean) => [...totals].filter(([e]) => pick(e)).reduce((s, [, n]) => s + n, 0);
  return {
    samples,
    spanMs: Math.round(samples > 1 ? spanMs : 0),
    meanIntervalMs: samples > 1 ? Number((spanMs / (samples - 1)).toFixed(2)) : NaN,
    active: mean(sum(() => true)),
    lock: mean(sum((e) => e.startsWith("Lock:"))),
    walSync: mean(sum((e) => e === "IO:WalSync")),
    walWriteLock: mean(sum((e) => e === "LWLock:WALWrite")),
    cpu: mean(sum((e) => e === "CPU")),
    byEvent: [...totals].map(([event, n]) => ({ event, mean: mean(n) })).sort((a, b) => b.mean - a.mean),
  };
}
