// CPU time from the kernel's own accounting (/proc/<pid>/stat). One process's (all its threads):
// user + system time. PostgreSQL's: the postmaster's, that of its live children (backends, WAL
// writer, checkpointer, autovacuum...), and that of its children that have exited (the kernel adds a
// reaped child's time to its parent's cutime/cstime), so backends that come and go inside a measured
// interval are counted too.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import type { Sql } from "../../shared/db/migrate.ts";

const TICKS_PER_SECOND = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && n > 0 ? n : 100;
})();

interface ProcStat {
  ppid: number;
  /** utime + stime, in clock ticks */
  own: number;
  /** cutime + cstime: reaped children, in clock ticks */
  children: number;
}

/** A file of /proc (`<pid>/stat`), or undefined when its process is gone or this is not Linux. */
export function readProc(file: string): string | undefined {
  try {
    return readFileSync(`/proc/${file}`, "utf8");
  } catch {
    return undefined;
  }
}

function readStat(pid: number): ProcStat | undefined {
  const text = readProc(`${pid}/stat`);
  if (text === undefined) return undefined;
  // Fields after the command name (which may hold spaces and parentheses): state is field 3.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const at = (field: number) => Number(f[field - 3]);
  return { ppid: at(4), own: at(14) + at(15), children: at(16) + at(17) };
}

/** CPU seconds one process (all its threads) has used so far; undefined when it is gone or off Linux. */
export function processCpuSeconds(pid: number): number | undefined {
  const s = readStat(pid);
  return s === undefined ? undefined : s.own / TICKS_PER_SECOND;
}

/**
 * The postmaster's pid, found as the parent of one of `sql`'s backends; undefined when the server
 * is not a process of this machine (an external DATABASE_URL).
 */
export async function postmasterPid(sql: Sql): Promise<number | undefined> {
  const [{ pid }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const backend = readStat(pid);
  if (!backend) return undefined;
  const comm = readProc(`${backend.ppid}/comm`)?.trim() ?? "";
  return comm.startsWith("postgres") || comm.startsWith("postmaster") ? backend.ppid : undefined;
}

/** CPU seconds the whole server has used so far (postmaster + children, live and exited). */
export function serverCpuSeconds(postmaster: number): number {
  const pm = readStat(postmaster);
  if (!pm) throw new Error(`postmaster ${postmaster} is gone`);
  let ticks = pm.own + pm.children;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (s && s.ppid === postmaster) ticks += s.own + s.children;
  }
  return ticks / TICKS_PER_SECOND;
}
