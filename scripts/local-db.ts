// The local stack's database: a PostgreSQL whose data is kept across restarts (keys and logs survive),
// on the port the Supabase CLI uses for its local database, with the Supabase bootstrap, pending
// migrations and the seed applied. The data lives in .data/postgres inside the checkout or, as root,
// under SERVER_HOME (shared/db/server-user.ts: the server's user may not enter the checkout);
// EVE_DB_DIR picks another directory, DATABASE_URL an existing server.
import { createHash } from "node:crypto";
import { existsSync, realpathSync } from "node:fs";
import path from "node:path";
import { startPostgres, type PostgresServer } from "../shared/db/postgres-server.ts";
import { ensureEmbeddedExtensions } from "../shared/db/embedded-extensions.ts";
import { prepareDatabase, repoRoot, serverVersion } from "../shared/db/migrate.ts";
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
  return path.join(publicDir(path.join(SERVER_HOME, "checkouts", id)), "postgres");
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
  // The same engine as `npm test`'s: PostgreSQL 17 with pg_cron and pgTAP, installed on the first run
  // where the machine can fetch them (else it runs without them, and says so).
  log(`PostgreSQL: ${await ensureEmbeddedExtensions()}`);
  const dataDir = process.env.DATABASE_URL ? undefined : localDataDir();
  const server = await startPostgres({ port: LOCAL_DB_PORT, ...(dataDir ? { dataDir } : {}), durable: true, log });
  try {
    // A real Supabase database already has its roles and schemas: bootstrap only our own servers.
    const applied = await prepareDatabase(server.url, { bootstrap: server.engine !== "external" });
    return { server, applied, version: await serverVersion(server.url), ...(dataDir ? { dataDir } : {}) };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
