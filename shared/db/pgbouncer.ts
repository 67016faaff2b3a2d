// PgBouncer in transaction mode in front of one database: the stand-in for Supavisor (Supabase's
// pooler on port 6543) in tests and the bench, listening on loopback only, its config and auth file
// in a scratch dir, stopped by `close`. And a TCP proxy that counts network round trips in front of a
// PostgreSQL or a pooler: a client's "flight" is what it sends before it next hears from the server,
// so a statement answered in one exchange is one flight and a describe-then-execute is two. Each
// flight is booked under the SQL text the connection last sent (a Parse or Query message carries
// it), so flights can be counted per statement.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { startOnFreePort } from "../free-port.ts";
import { handToServer, scratchDir, serverUser } from "./server-user.ts";

export const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? "/usr/sbin/pgbouncer";

/** Whether PgBouncer is installed (CI installs it; a test fails, not skips, there without it). */
export function hasPgBouncer(): boolean {
  return existsSync(PGBOUNCER_BIN) && spawnSync(PGBOUNCER_BIN, ["--version"]).status === 0;
}

/** The prefix of a flight that prepares a named statement (Parse, Describe, Flush): once per connection. */
export const PREPARE = "(prepare) ";

export interface Flights {
  /**
   * Flights per statement text (as the client last sent it on that connection); a flight that
   * prepares a named statement is booked under PREPARE + its text.
   */
  byStatement: Map<string, number>;
  total: number;
}

export interface PgBouncer {
  /** `databaseUrl` with host and port replaced by PgBouncer's. */
  url: string;
  /** Stops PgBouncer (SIGTERM: its connections are cut, the port refuses new ones). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same settings. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface FlightCounter {
  /** The URL given, with host and port replaced by the proxy's. */
  url: string;
  flights: Flights;
  resetFlights(): void;
  close(): Promise<void>;
}

const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;

/**
 * The SQL of the statements in `chunk`'s messages: a Query ('Q') or Parse ('P') carries its text; a
 * Bind ('B') of a prepared statement names it, and `prepared` (the connection's Parses by name)
 * gives its text.
 */
function statementsIn(chunk: Buffer, prepared: Map<string, string>): { texts: string[]; prepares: boolean } {
  const found: string[] = [];
  let named = false;
  let sync = false;
  let i = 0;
  while (i + 5 <= chunk.length) {
    const type = String.fromCharCode(chunk[i]!);
    const length = chunk.readUInt32BE(i + 1);
    if (length < 4 || i + 1 + length > chunk.length) break; // not a whole message (or a startup packet)
    const body = chunk.subarray(i + 5, i + 1 + length);
    if (type === "Q") found.push(body.toString("utf8", 0, Math.max(0, body.indexOf(0))));
    if (type === "P") {
      const nameEnd = body.indexOf(0);
      const textEnd = body.indexOf(0, nameEnd + 1);
      const text = body.toString("utf8", nameEnd + 1, textEnd);
      if (nameEnd > 0) prepared.set(body.toString("utf8", 0, nameEnd), text);
      named ||= nameEnd > 0;
      found.push(text);
    }
    if (type === "B") {
      const portalEnd = body.indexOf(0);
      const name = body.toString("utf8", portalEnd + 1, body.indexOf(0, portalEnd + 1));
      const text = prepared.get(name);
      if (name !== "" && text !== undefined) found.push(text);
    }
    if (type === "S") sync = true;
    i += 1 + length;
  }
  return { texts: found, prepares: named && !sync };
}

export async function startPgBouncer(databaseUrl: string): Promise<PgBouncer> {
  const target = new URL(databaseUrl);
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  const dbname = decodeURIComponent(target.pathname.slice(1));
  const dir = await scratchDir("pgbouncer");
  let port = 0;
  writeFileSync(path.join(dir, "users.txt"), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  const writeConfig = () => writeFileSync(
    path.join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `${dbname} = host=${target.hostname} port=${target.port || 5432} dbname=${dbname}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      "pool_mode = transaction",
      "auth_type = scram-sha-256",
      `auth_file = ${path.join(dir, "users.txt")}`,
      "default_pool_size = 4",
      "max_client_conn = 200",
      // Supavisor accepts the driver's startup parameters; PgBouncer refuses those it does not know.
      "ignore_startup_parameters = statement_timeout,extra_float_digits",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
      "",
    ].join("\n"),
  );
  writeConfig();
  // PgBouncer refuses to run as root: then it runs as the database's own user (server-user.ts).
  for (const f of readdirSync(dir)) handToServer(path.join(dir, f));
  const runAs = serverUser();
  const owner = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  let child: ChildProcess | null = null;
  const launch = async () => {
    const started = spawn(PGBOUNCER_BIN, [path.join(dir, "pgbouncer.ini")], { stdio: ["ignore", "pipe", "pipe"], ...owner, cwd: dir });
    let output = "";
    started.stdout?.on("data", (d) => (output += d));
    started.stderr?.on("data", (d) => (output += d));
    child = started;
    await waitForPort(port, started, () => output);
  };
  const stop = async () => {
    const running = child;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  };
  // Its first start is on a port picked here, and again on another where that one was taken before
  // PgBouncer bound it (the pidfile a start that could not bind left goes first). A restart keeps its port.
  await startOnFreePort(async (picked) => {
    port = picked;
    writeConfig();
    rmSync(path.join(dir, "pgbouncer.pid"), { force: true });
    await launch();
  });

  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.toString(),
    stop,
    start: launch,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A proxy in front of the server of `databaseUrl` that counts the flights of every connection. */
export async function startFlightCounter(databaseUrl: string): Promise<FlightCounter> {
  const target = new URL(databaseUrl);
  const port = Number(target.port || 5432);
  const host = target.hostname;
  const flights: Flights = { byStatement: new Map(), total: 0 };
  const open = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const server = net.connect(port, host);
    open.add(client).add(server);
    let awaitingAnswer = false;
    let statement = "(startup)";
    const prepared = new Map<string, string>();
    client.on("data", (chunk: Buffer) => {
      const sent = statementsIn(chunk, prepared);
      if (sent.texts.length > 0) statement = sent.texts[sent.texts.length - 1]!;
      if (!awaitingAnswer) {
        awaitingAnswer = true;
        flights.total++;
        const key = sent.prepares ? PREPARE + statement : statement;
        flights.byStatement.set(key, (flights.byStatement.get(key) ?? 0) + 1);
      }
      server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      awaitingAnswer = false;
      client.write(chunk);
    });
    client.on("close", () => (open.delete(client), server.destroy()));
    server.on("close", () => (open.delete(server), client.destroy()));
    client.on("error", () => server.destroy());
    server.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(proxyPort);

  return {
    url: url.toString(),
    flights,
    resetFlights() {
      flights.byStatement.clear();
      flights.total = 0;
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      });
    },
  };
}

/** Ready: it says it listens on the port (else what answers there may be another process), and the port answers. */
async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${output()}`);
    const ok = output().includes(`listening on 127.0.0.1:${port}\n`) && await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pgbouncer did not listen on ${port}: ${output()}`);
}
