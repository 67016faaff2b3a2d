// The local stack's database: a PostgreSQL whose data is kept across restarts (keys and logs survive),
// on the port the Supabase CLI uses for its local database, shaped as a hosted project's (postgres-server.ts),
// with the pending migrations and the seed applied by Supabase's CLI as a deploy applies them:
// `supabase db push --db-url ... --include-seed` (the seed runs again only when its file changed). The data lives in .data/postgres inside the checkout or, as root,
// under SERVER_HOME (shared/db/server-user.ts: the server's user may not enter the checkout);
// EVE_DB_DIR picks another directory, DATABASE_URL an existing server.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startPostgres, type PostgresServer } from "../shared/db/postgres-server.ts";
import { ensureEmbeddedExtensions } from "../shared/db/embedded-extensions.ts";
import { repoRoot, serverVersion } from "../shared/db/migrate.ts";
import { dbPush } from "../shared/db/supabase-cli.ts";
import { publicDir, SERVER_HOME, serverCanReach, serverUser } from "../shared/db/server-user.ts";

export const LOCAL_DB_PORT = Number(process.env.EVE_DB_PORT ?? 54322);

/** Where the local database keeps its data: one directory per checkout. */
export function localDataDir(): string {
  if (process.env.EVE_DB_DIR) return path.resolve(process.env.EVE_DB_DIR);
  const inCheckout = path.join(repoRoot, ".data", "postgres");
  // As root, a database the server's user can reach in the checkout is kept where it is.
  if (!serverUser() || (existsSync(path.join(inCheckout, "data", "PG_VERSION")) && serverCanReach(path.join(inCheckout, "data")))) {
    return inCheckout;
  }
  const checkout = realpathSync(repoRoot);
  const id = `${path.basename(checkout)}-${createHash("sha256").update(checkout).digest("hex").slice(0, 8)}`;
  const home = publicDir(path.join(SERVER_HOME, "checkouts", id));
  recordCheckout(home, checkout);
  return path.join(home, "postgres");
}

/** The file beside a checkout's database (SERVER_HOME/checkouts/<id>) naming the checkout it belongs to. */
const CHECKOUT_RECORD = "checkout";

/** Notes which checkout a database under SERVER_HOME belongs to, so `npm run db -- clean` can tell when it is gone. */
export function recordCheckout(home: string, checkout: string): void {
  const record = path.join(home, CHECKOUT_RECORD);
  if (!existsSync(record)) writeFileSync(record, `${checkout}\n`);
}

export interface CleanedDatabase {
  dir: string;
  checkout: string | null;
  outcome: "removed" | "kept: its checkout is there" | "kept: no record of its checkout" | "kept: its server is running";
}

/** Whether the PostgreSQL whose data directory is `dataDir` runs (its postmaster.pid names a live process). */
function serverRunning(dataDir: string): boolean {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * `npm run db -- clean`: removes the local databases under `home`/checkouts whose checkout is gone
 * (a worktree or clone deleted). A database whose checkout is there, that names no checkout (made before
 * the record was kept), or whose server still runs is kept and said. `dryRun` only says.
 */
export function cleanLocalDatabases(home: string = SERVER_HOME, dryRun = false): CleanedDatabase[] {
  const root = path.join(home, "checkouts");
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e): CleanedDatabase => {
    const dir = path.join(root, e.name);
    const record = path.join(dir, CHECKOUT_RECORD);
    const checkout = existsSync(record) ? readFileSync(record, "utf8").trim() || null : null;
    if (checkout === null) return { dir, checkout, outcome: "kept: no record of its checkout" };
    if (existsSync(path.join(checkout, "package.json"))) return { dir, checkout, outcome: "kept: its checkout is there" };
    if (serverRunning(path.join(dir, "postgres", "data"))) return { dir, checkout, outcome: "kept: its server is running" };
    if (!dryRun) rmSync(dir, { recursive: true, force: true });
    return { dir, checkout, outcome: "removed" };
  });
}

export interface LocalDatabase {
  server: PostgresServer;
  applied: string[];
  /** The server's version ("17.6"). */
  version: string;
  /** Where its data is kept; undefined for DATABASE_URL's server. */
  dataDir?: string;
}

export async function startLocalDatabase(log: (line: string) => void = () => {}): Promise<LocalDatabase> {
  // The same engine as `npm test`'s: PostgreSQL 17 with pg_cron, pgTAP and plpgsql_check, installed on the first run
  // where the machine can fetch them (else it runs without them, and says so).
  log(`PostgreSQL: ${await ensureEmbeddedExtensions()}`);
  const dataDir = process.env.DATABASE_URL ? undefined : localDataDir();
  const server = await startPostgres({ port: LOCAL_DB_PORT, ...(dataDir ? { dataDir } : {}), durable: true, log });
  try {
    // Our own server has its bootstrap from startPostgres; a real Supabase database has its own.
    const applied = await dbPush(server.url, { includeSeed: true });
    return { server, applied, version: await serverVersion(server.url), ...(dataDir ? { dataDir } : {}) };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
