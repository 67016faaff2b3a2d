// Runs PostgreSQL's own load driver, pgbench, against a bench database: a C client with one
// connection per client and prepared statements, so what it measures is the server, not our Node
// client. Used where a figure is compared with a floor that must be driven the same way.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";

export type PgbenchRun = Awaited<ReturnType<typeof runPgbench>>;

export interface PgbenchOptions {
  /** Superuser URL of the database to drive (postgres://user@host:port/db). */
  url: string;
  scriptPath: string;
  clients: number;
  threads: number;
  durationSec: number;
  /** A fixed number of transactions per client instead (pgbench -t). */
  transactions?: number;
}

/** pgbench's path: beside the newest Debian server, beside pg_config, or on PATH. */
export function findPgbench(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, "bin", "pgbench")));
    versions.sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(root, versions[0], "bin", "pgbench");
  }
  const bindir = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (bindir.status === 0) {
    const p = path.join(bindir.stdout.trim(), "pgbench");
    if (existsSync(p)) return p;
  }
  const which = spawnSync("sh", ["-c", "command -v pgbench"], { encoding: "utf8" });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

export function pgbenchVersion(bin: string): string {
  const v = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return v.status === 0 ? v.stdout.trim() : "unknown";
}

/** The command line, as a person would type it (also what runPgbench executes). */
export function pgbenchArgs(o: Omit<PgbenchOptions, "url"> & { database: string }): string[] {
  const length = o.transactions ? ["-t", String(o.transactions)] : ["-T", String(o.durationSec)];
  return ["-n", "-M", "prepared", "-c", String(o.clients), "-j", String(o.threads), ...length, "-f", o.scriptPath, o.database];
}

export async function runPgbench(bin: string, o: PgbenchOptions) {
  const u = new URL(o.url);
  // Host, port and user through the environment: the command line stays the one documented.
  const env = {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port || "5432",
    PGUSER: decodeURIComponent(u.username || "postgres"),
    ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}),
  };
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  const child = spawn(bin, pgbenchArgs({ ...o, database }), { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")));
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code ?? -1));
  });
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : null;
  };
  const transactions = num(/number of transactions actually processed: (\d+)/);
  const failed = num(/number of failed transactions: (\d+)/) ?? 0;
  const tps = num(/tps = ([\d.]+)/);
  const aborted = /aborted|error/i.test(out);
  const ok = exitCode === 0 && transactions !== null && tps !== null && failed === 0 && !aborted;
  return {
    /** Transactions pgbench completed (its "actually processed" count). */
    transactions: transactions ?? 0,
    /** Failed transactions as pgbench reports them (0 when the line is absent and it exited 0). */
    failed,
    /** tps without the initial connection time, as pgbench prints it. */
    tps: tps ?? 0,
    exitCode,
    /** The tail of pgbench's output when something went wrong (empty otherwise). */
    problem: ok ? "" : out.trim().split("\n").slice(-8).join("\n"),
  };
}
