// Where a transaction's commit lies in the WAL, read with pg_walinspect (the cluster's superuser), and
// how far the WAL is on disk. LSNs as byte offsets (bigint), so that they compare exactly.
import type { Sql } from "../../shared/db/migrate.ts";

/** pg_current_wal_flush_lsn(): the WAL on disk reaches this far. */
export async function flushLsn(admin: Sql): Promise<bigint> {
  const [{ n }] = await admin<{ n: string }[]>`select (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::text as n`;
  return BigInt(n);
}

/** pg_current_wal_insert_lsn(): the WAL written so far, in the server's buffers or on disk. */
export async function insertLsn(admin: Sql): Promise<bigint> {
  const [{ n }] = await admin<{ n: string }[]>`select (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::text as n`;
  return BigInt(n);
}

/**
 * Flushes the WAL written so far: a WAL record under a transaction id, committed synchronously (the
 * server's synchronous_commit is on). pg_walinspect reads only WAL that is on disk.
 */
export async function flushWal(admin: Sql): Promise<void> {
  await admin`select pg_logical_emit_message(true, 'eve-test-flush', '')`;
}

export interface CommitRecord {
  xid: string;
  /** The end of the COMMIT record: the transaction is durable once the WAL on disk reaches it. */
  end: bigint;
  /** The subtransactions it commits with it (its description's "subxacts: …"). */
  subxacts: string[];
}

/** The COMMIT records between `from` and the WAL on disk, in WAL order. */
export async function commitRecords(admin: Sql, from: bigint): Promise<CommitRecord[]> {
  const rows = await admin<{ xid: string; end: string; description: string }[]>`
    select xid::text as xid, (end_lsn - '0/0'::pg_lsn)::text as end, description
    from pg_get_wal_records_info('0/0'::pg_lsn + ${from.toString()}::numeric, pg_current_wal_flush_lsn())
    where resource_manager = 'Transaction' and record_type = 'COMMIT'
    order by start_lsn`;
  return rows.map((r) => ({
    xid: r.xid,
    end: BigInt(r.end),
    subxacts: /subxacts: ([0-9 ]+)/.exec(r.description)?.[1]!.trim().split(/\s+/) ?? [],
  }));
}

/** The commit of the transaction that wrote a row whose xmin is `xmin` (its own id or a subtransaction's). */
export function commitOf(commits: CommitRecord[], xmin: string): CommitRecord | undefined {
  return commits.find((c) => c.xid === xmin || c.subxacts.includes(xmin));
}
