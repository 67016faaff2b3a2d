// The local stack's database: a PostgreSQL kept in .data/postgres (so keys and logs survive a
// restart) on the port the Supabase CLI uses for its local database, with the Supabase bootstrap,
// pending migrations and the seed applied. DATABASE_URL points it at an existing server instead.
import path from "node:path";
import { startPostgres, type PostgresServer } from "../shared/db/postgres-server.ts";
import { prepareDatabase, repoRoot } from "../shared/db/migrate.ts";

export const LOCAL_DB_PORT = Number(process.env.EVE_DB_PORT ?? 54322);

export async function startLocalDatabase(log: (line: string) => void = () => {}): Promise<{ server: PostgresServer; applied: string[] }> {
  const server = await startPostgres({
    port: LOCAL_DB_PORT,
    dataDir: process.env.EVE_DB_DIR ?? path.join(repoRoot, ".data", "postgres"),
    durable: true,
    log,
  });
  try {
    // A real Supabase database already has its roles and schemas: bootstrap only our own servers.
    const applied = await prepareDatabase(server.url, { bootstrap: server.engine !== "external" });
    return { server, applied };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
