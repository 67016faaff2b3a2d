// A PostgreSQL that a test or a benchmark can take away and bring back: stopped (fast shutdown, the
// port refuses connections) and started again on the same port with the same data, or frozen
// (SIGSTOP on the postmaster and every backend: connections are accepted by the kernel and then
// nothing answers) and thawed. Migrated and seeded like the test template.
import { spawnSync } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { prepareDatabase } from "./migrate.ts";
import { type PostgresServer, startPostgres } from "./postgres-server.ts";
import { scratchDir } from "./server-user.ts";

export interface StoppablePostgres {
  /** Superuser URL of the migrated `postgres` database; the same across restarts. */
  url: string;
  running(): boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Every server process stopped with SIGSTOP; thaw() continues them. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Stops the server for good and removes its data. */
  close(): Promise<void>;
}

export async function startStoppablePostgres(log?: (line: string) => void): Promise<StoppablePostgres> {
  // Always a server of our own: one given by DATABASE_URL cannot be stopped from here.
  const base = await scratchDir("eve-pg-outage");
  // The first start picks its port (and picks again if another process takes it first); a restart keeps it.
  let port: number | undefined;
  const launch = () => startPostgres({ engine: "embedded", dataDir: base, port, durable: false, ...(log ? { log } : {}) });
  let server: PostgresServer | null = await launch();
  port = Number(new URL(server.url).port);
  const url = server.url;
  await prepareDatabase(url);
  let frozen: number[] = [];

  /** The postmaster (first line of postmaster.pid) and its children, backends first. */
  async function serverPids(): Promise<number[]> {
    const postmaster = Number((await readFile(path.join(base, "data", "postmaster.pid"), "utf8")).split("\n")[0]);
    const ps = spawnSync("ps", ["-o", "pid=", "--ppid", String(postmaster)], { encoding: "utf8" });
    const children = ps.stdout.split("\n").map((s) => Number(s.trim())).filter((n) => n > 0);
    return [...children, postmaster];
  }

  const handle: StoppablePostgres = {
    url,
    running: () => server !== null,
    async stop() {
      await server?.stop();
      server = null;
    },
    async start() {
      if (server === null) server = await launch();
    },
    async freeze() {
      frozen = [];
      for (const pid of await serverPids()) {
        try {
          process.kill(pid, "SIGSTOP");
          frozen.push(pid);
        } catch {
          // a backend that ended between the listing and the signal has nothing left to freeze
        }
      }
    },
    async thaw() {
      for (const pid of [...frozen].reverse()) {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // a backend that was stopped may have been ended meanwhile
        }
      }
      frozen = [];
    },
    async close() {
      if (frozen.length > 0) await handle.thaw();
      await server?.stop();
      server = null;
      await rm(base, { recursive: true, force: true });
    },
  };
  return handle;
}
