// Where a database's active backends wait: `pg_stat_activity` sampled every few milliseconds on a
// connection of its own, while a load runs. Each sample counts the database's client backends that are
// running a statement (state 'active'; the sampler's own excluded) by what they wait on: a lock (any
// `Lock:*`, advisory locks included), the WAL flush (`IO:WalSync`, the backend that flushes; those whose
// commit waits for that flush wait on `LWLock:WALWrite`), nothing (on CPU, or runnable), or anything
// else. The averages over the samples are the mean number of backends in each state; each is also told by the
// function its backend's statement calls (the first public.google_ai_… name in it) and, for a lock wait, the one
// the backend it waits for is running (the first of pg_blocking_pids): who waits for whom. (Its first row: on
// 4da7385, under heavy lock waits, the view once listed a blocker's pid on two rows and the sample failed.)
// (lib/wait-analysis.ts is the WAIT part's admission accounting, not this.)
import { connect } from "../../shared/db/migrate.ts";

export interface WaitSummary {
  samples: number;
  /** Milliseconds the sampling took, and per sample on average. */
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
  /**
   * The same by the function the backend's statement calls ("other": none of the gateway's) and, for a lock wait,
   * the one the blocking backend's statement calls, largest first.
   */
  byStatement: { event: string; entry: string; blockedBy: string | null; mean: number }[];
}

/** One state's summed count over the samples: its event, the backend's entry, for a lock wait the blocker's. */
export interface WaitCount {
  event: string;
  entry: string;
  blockedBy: string | null;
  n: number;
}

// The sampling loop runs in the server, in one call on the sampler's own connection: its pace is the
// backend's, not that of the load's Node process (whose event loop, busy with the load, stretched 3 ms to
// 25 ms on a loaded machine). Each sample clears the backend's snapshot of pg_stat_activity (a
// transaction otherwise reads one snapshot throughout) and adds its counts to a jsonb; nothing is written.
const SAMPLER = `
create function pg_temp.eve_bench_sample_waits(p_ms double precision, p_every_ms double precision)
returns table (event text, entry text, blocked_by text, n bigint, samples integer, span_ms double precision)
language plpgsql as $$
declare
  t0 timestamptz := clock_timestamp();
  acc jsonb := '{}';
  k integer := 0;
  r record;
begin
  while clock_timestamp() < t0 + p_ms * interval '1 millisecond' loop
    perform pg_catalog.pg_stat_clear_snapshot();
    for r in
      select coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') || chr(31)
               || coalesce(substring(a.query from 'public\\.(google_ai_[a-z_]+)'), 'other') || chr(31)
               || case when a.wait_event_type = 'Lock' then coalesce((
                    select substring(b.query from 'public\\.(google_ai_[a-z_]+)') from pg_catalog.pg_stat_activity b
                    where b.pid = (pg_catalog.pg_blocking_pids(a.pid))[1] limit 1), 'other') else '' end as e,
             count(*)::int as c
      from pg_catalog.pg_stat_activity a
      where a.datname = current_database() and a.state = 'active' and a.backend_type = 'client backend'
        and a.pid <> pg_catalog.pg_backend_pid()
      group by 1
    loop
      acc := acc || jsonb_build_object(r.e, coalesce((acc ->> r.e)::int, 0) + r.c);
    end loop;
    k := k + 1;
    -- The next sample at its slot (t0 + k × every), never two at once.
    perform pg_catalog.pg_sleep(greatest(0, extract(epoch from (t0 + k * p_every_ms * interval '1 millisecond') - clock_timestamp())));
  end loop;
  return query select split_part(j.key, chr(31), 1), split_part(j.key, chr(31), 2), nullif(split_part(j.key, chr(31), 3), ''),
      j.value::bigint, k, (extract(epoch from clock_timestamp() - t0) * 1000)::double precision
    from jsonb_each_text(acc) j
    union all select null::text, null::text, null::text, null::bigint, k, (extract(epoch from clock_timestamp() - t0) * 1000)::double precision;
end
$$`;

/**
 * Connects to the database at `url` (a role that sees other roles' wait events: pg_monitor or
 * pg_read_all_stats; the bench's `postgres` has pg_monitor) and creates the sampling function there
 * (in the session's pg_temp), so that `sample()` starts at once.
 */
export async function openWaitSampler(url: string) {
  const sql = connect(url, { max: 1, idle_timeout: 0, connection: { application_name: "eve-bench-wait-sampler" } });
  try {
    await sql.unsafe(SAMPLER);
  } catch (error) {
    await sql.end({ timeout: 5 });
    throw error;
  }
  return {
    /** Samples for `durationMs`, about every `intervalMs`; then disconnects. */
    async sample(durationMs: number, intervalMs = 3): Promise<WaitSummary> {
      try {
        const rows = await sql.unsafe<
          { event: string | null; entry: string | null; blocked_by: string | null; n: string | null; samples: number; span_ms: number }[]
        >("select * from pg_temp.eve_bench_sample_waits($1, $2)", [durationMs, intervalMs]);
        const counts = rows.filter((r) => r.event !== null)
          .map((r) => ({ event: r.event!, entry: r.entry ?? "other", blockedBy: r.blocked_by, n: Number(r.n) }));
        return summariseWaits(counts, rows[0]?.samples ?? 0, rows[0]?.span_ms ?? 0);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

/** The mean backends per state, from the summed counts of `samples` samples taken over `spanMs`. */
export function summariseWaits(counts: WaitCount[], samples: number, spanMs: number): WaitSummary {
  const totals = new Map<string, number>();
  for (const c of counts) totals.set(c.event, (totals.get(c.event) ?? 0) + c.n);
  const mean = (n: number) => (samples > 0 ? n / samples : NaN);
  const sum = (pick: (event: string) => boolean) => [...totals].filter(([e]) => pick(e)).reduce((s, [, n]) => s + n, 0);
  return {
    samples,
    spanMs: Math.round(spanMs),
    meanIntervalMs: samples > 0 ? Number((spanMs / samples).toFixed(2)) : NaN,
    active: mean(sum(() => true)),
    lock: mean(sum((e) => e.startsWith("Lock:"))),
    walSync: mean(sum((e) => e === "IO:WalSync")),
    walWriteLock: mean(sum((e) => e === "LWLock:WALWrite")),
    cpu: mean(sum((e) => e === "CPU")),
    byEvent: [...totals].map(([event, n]) => ({ event, mean: mean(n) })).sort((a, b) => b.mean - a.mean),
    byStatement: counts.map((c) => ({ event: c.event, entry: c.entry, blockedBy: c.blockedBy, mean: mean(c.n) }))
      .sort((a, b) => b.mean - a.mean),
  };
}
