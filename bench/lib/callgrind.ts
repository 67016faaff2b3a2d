// Instructions a transaction costs PostgreSQL, counted rather than timed: the database is made by a
// plain server, then served again from the same directory under valgrind's callgrind; each script runs
// through pgbench on one connection for n1 and then n2 transactions, and the two backends'
// instructions differ by n2 - n1 transactions (the connection's start cancels out). The count is the
// same on any machine under any load, where CPU time here moves by a third between runs. User space
// only: the commit's flush and the kernel's work are not in it.
import { spawnSync } from "node:child_process";
import { chmod, mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { startPostgres, type Engine } from "../../shared/db/postgres-server.ts";
import { scratchDir } from "../../shared/db/server-user.ts";
import { connect, connectAsBootstrap, databaseUrl, prepareDatabase, type Sql } from "../../shared/db/migrate.ts";
import { sleep } from "./clock.ts";
import { findPgbench, runPgbench } from "./pgbench.ts";

/** Whether this machine can count: valgrind installed, and a server of our own (not DATABASE_URL's). */
export const canCount = (engine: Engine) => engine !== "external" && spawnSync("valgrind", ["--version"]).status === 0;

/** Instructions per transaction of each script (name → pgbench script path) in a database `prepare` makes. */
export async function countInstructions(engine: Engine, prepare: (sql: Sql) => Promise<void>,
  scripts: Record<string, string>, [n1, n2]: [number, number], after: (sql: Sql, name: string, transactions: number) => Promise<void>) {
  const base = await scratchDir("eve-bench-callgrind");
  const out = path.join(base, "callgrind");
  const withDb = async (url: string, use: (sql: Sql) => Promise<void>) => {
    const sql = connect(url, { max: 1 });
    await use(sql).finally(() => sql.end());
  };
  try {
    const plain = await startPostgres({ engine, dataDir: base, durable: true });
    try {
      // No autovacuum: its analyze would make the backend plan every statement again, in a count or not.
      // ALTER SYSTEM is the cluster superuser's (postgres is not one, as on a hosted project).
      await withDb(plain.url, async (sql) => void (await sql`create database counted`));
      const admin = connectAsBootstrap(plain.url);
      await admin`alter system set autovacuum = off`.finally(() => admin.end());
      await prepareDatabase(databaseUrl(plain.url, "counted"));
      await withDb(databaseUrl(plain.url, "counted"), prepare);
    } finally {
      await plain.stop();
    }
    await mkdir(out);
    await chmod(out, 0o777); // the server may run as another user (postgres, when we are root)
    const server = await startPostgres({ engine, dataDir: base, durable: true, wrapper: ["valgrind", "--tool=callgrind",
      `--callgrind-out-file=${out}/%p`, "--dump-instr=no", "--dump-line=no"] });
    const url = databaseUrl(server.url, "counted");
    const backend = async (scriptPath: string, transactions: number) => {
      const before = new Set(await readdir(out));
      const r = await runPgbench(findPgbench()!, { url, scriptPath, clients: 1, threads: 1, durationSec: 0, transactions });
      if (r.exitCode !== 0 || r.failed > 0) throw new Error(`pgbench under callgrind: ${r.problem}`);
      return await countSince(out, before);
    };
    const per: Record<string, number> = {};
    try {
      for (const [name, scriptPath] of Object.entries(scripts)) {
        await backend(scriptPath, 2); // the first backend after a start writes the relation cache's file
        const first = await backend(scriptPath, n1);
        per[name] = ((await backend(scriptPath, n2)) - first) / (n2 - n1);
        await withDb(url, (sql) => after(sql, name, 2 + n1 + n2));
      }
    } finally {
      await server.stop();
    }
    return per;
  } finally {
    await rm(base, { recursive: true, force: true, maxRetries: 5 });
  }
}

/**
 * The backend's count: two profiles come from a pgbench run (its check connection's and its client's,
 * each written when the backend exits), so wait for both and take the larger; each is removed once read.
 */
async function countSince(dir: string, before: Set<string>): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const added = (await readdir(dir)).filter((f) => !before.has(f));
    const texts = await Promise.all(added.map((f) => readFile(path.join(dir, f), "utf8")));
    const counts = texts.map((t) => Number(/^(?:totals|summary): (\d+)/m.exec(t)?.[1] ?? NaN));
    if (added.length >= 2 && !counts.some(Number.isNaN)) {
      await Promise.all(added.map((f) => rm(path.join(dir, f))));
      return Math.max(...counts);
    }
    await sleep(100);
  }
  throw new Error("callgrind did not write the pgbench run's two profiles within 60 s");
}
