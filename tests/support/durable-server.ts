// A PostgreSQL of the durability tests' own, started as the bench starts it (bench/lib/db.ts: fsync
// and synchronous_commit on; the test server runs with both off) and with DURABLE_SETTINGS, so that an
// asynchronous commit reaches the disk only when a backend flushes the WAL for itself. It can be
// crashed (an immediate stop: SIGQUIT to the postmaster, which ends every process without writing
// anything more) and started again on the same data; and its WAL writer can be frozen (SIGSTOP) for a
// measurement, so that nothing flushes on a timer. One database, migrated and seeded, not `postgres`:
// pg_cron's jobs (whose history rows commit synchronously, flushing everything before them) run there.
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { connect, databaseUrl, prepareDatabase, quoteIdent, superuserUrl, type Sql } from "../../shared/db/migrate.ts";
import { startPostgres, type PostgresServer } from "../../shared/db/postgres-server.ts";
import { scratchDir } from "../../shared/db/server-user.ts";

/**
 * Besides the bench's settings: no WAL flush on the WAL writer's timer for 10 s, and no autovacuum (an
 * ANALYZE commits synchronously, in any database, and its flush would cover a control's bookings).
 */
export const DURABLE_SETTINGS = { wal_writer_delay: "10s", autovacuum: "off" };

export interface DurableServer {
  /** The migrated database as its owner `postgres`; the same across restarts. */
  url: string;
  /** The same database as the cluster's superuser (pg_walinspect, CHECKPOINT, the settings). */
  adminUrl: string;
  /** SIGSTOP to the WAL writer; thawWalWriter() continues it. */
  freezeWalWriter(): Promise<void>;
  thawWalWriter(): void;
  /** An immediate stop: nothing more is written; WAL still in the server's buffers is lost. */
  crash(): Promise<void>;
  /** Starts it again on the same data and port (crash recovery replays the WAL on disk). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startDurableServer(name = "durability"): Promise<DurableServer> {
  const base = await scratchDir("eve-pg-durable");
  // The first start picks its port (and picks again if another process takes it first); a restart keeps it.
  let port: number | undefined;
  const launch = () => startPostgres({ engine: "embedded", dataDir: base, port, durable: true, settings: DURABLE_SETTINGS });
  let server: PostgresServer | null = await launch();
  port = Number(new URL(server.url).port);
  const admin = connect(server.url, { max: 1 });
  try {
    await admin.unsafe(`create database ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(server.url, name);
  await prepareDatabase(url);
  const adminUrl = superuserUrl(url);
  let frozen: number | null = null;

  const postmasterPid = async () => Number((await readFile(path.join(base, "data", "postmaster.pid"), "utf8")).split("\n")[0]);
  const walWriterPid = () => withSql(adminUrl, async (sql) => {
    const [row] = await sql<{ pid: number }[]>`select pid from pg_stat_activity where backend_type = 'walwriter'`;
    if (!row) throw new Error("no WAL writer in pg_stat_activity");
    return row.pid;
  });

  const handle: DurableServer = {
    url,
    adminUrl,
    async freezeWalWriter() {
      frozen = await walWriterPid();
      process.kill(frozen, "SIGSTOP");
    },
    thawWalWriter() {
      if (frozen !== null) process.kill(frozen, "SIGCONT");
      frozen = null;
    },
    async crash() {
      const postmaster = await postmasterPid();
      // A frozen WAL writer is told to quit before it runs again: continued first, it would write the
      // WAL its latch was woken for before the postmaster's SIGQUIT reached it.
      if (frozen !== null) process.kill(frozen, "SIGQUIT");
      process.kill(postmaster, "SIGQUIT");
      handle.thawWalWriter();
      await exited(postmaster);
      await server?.stop(); // the process is gone: only forgets it (and keeps the data)
      server = null;
    },
    async restart() {
      if (server === null) server = await launch();
    },
    async close() {
      handle.thawWalWriter();
      await server?.stop();
      server = null;
      await rm(base, { recursive: true, force: true });
    },
  };
  return handle;
}

async function withSql<T>(url: string, work: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = connect(url, { max: 1 });
  try {
    return await work(sql);
  } finally {
    await sql.end();
  }
}

/** Until `pid` is gone (a postmaster ends its children first; 30 s at most). */
async function exited(pid: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`postmaster ${pid} did not stop within 30 s of SIGQUIT`);
}

/**
 * Makes `public.<procedure>_unflushed` (a commit-then-flush procedure: google_ai_reserve_call,
 * google_ai_finalize_call): the procedure as the database holds it, less its flushing step (its last two
 * statements: synchronous_commit back on and the WAL record under an xid), granted as the real one is.
 * Built from the real definition, so it follows it; throws when that step is not where this expects it
 * (the real procedure changed: the control must be looked at again). Answers the control's name.
 */
export async function createUnflushedControl(ownerSql: Sql, procedure: string): Promise<string> {
  const control = `${procedure}_unflushed`;
  const [{ def }] = await ownerSql<{ def: string }[]>`
    select pg_get_functiondef(${`public.${procedure}`}::regproc) as def`;
  // Each statement performed or taken by an assignment (which costs less: 85_reserve_call.sql).
  const flushing = [
    /^ {2}(?:perform|\w+ :=) pg_catalog\.set_config\('synchronous_commit', 'on', true\);\n/gm,
    /^ {2}(?:perform|\w+ :=) pg_catalog\.pg_logical_emit_message\(true, 'eve', ''\);\n/gm,
  ];
  let text = def.replace(`PROCEDURE public.${procedure}(`, `PROCEDURE public.${control}(`);
  for (const line of flushing) {
    if ((text.match(line) ?? []).length !== 1) throw new Error(`${procedure} no longer has a line ${line} once`);
    text = text.replace(line, "");
  }
  if (!text.includes(`PROCEDURE public.${control}(`)) throw new Error(`the control of ${procedure} was not renamed`);
  await ownerSql.unsafe(text);
  await ownerSql.unsafe(`grant execute on procedure public.${control} to eve_gateway`);
  return control;
}
