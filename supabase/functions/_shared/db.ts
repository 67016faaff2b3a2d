// The database connection of a function: one postgres.js pool per worker (an Edge Runtime worker
// serves many requests, so the pool is created on first use and reused), small, with short idle and
// connect timeouts so a dead database answers 503 quickly instead of hanging the caller.
//
//   GATEWAY_DB_URL   optional: a pooler URL (Supavisor transaction mode, port 6543). Transaction
//                    pooling cannot keep prepared statements, so they are turned off for it.
//   SUPABASE_DB_URL  the project's direct connection (set by Supabase for every Edge Function).
//   GATEWAY_DB_POOL_MAX  connections per worker (default 5).
// No Deno globals: the environment is passed in, so Node (vitest) can use this module too.
import postgres from "postgres";

export type Sql = postgres.Sql;

export interface DbConfig {
  url: string;
  /** False for transaction-mode poolers (GATEWAY_DB_URL, or any URL on port 6543). */
  prepare: boolean;
  max: number;
  /** Which variable the URL came from, for messages (never the URL itself: it holds a password). */
  source: "GATEWAY_DB_URL" | "SUPABASE_DB_URL";
}

export const DEFAULT_POOL_MAX = 5;
const POOLER_PORT = "6543";

/** The connection settings from the environment, or null when no database URL is set. */
export function dbConfigFromEnv(get: (name: string) => string | undefined): DbConfig | null {
  const gateway = get("GATEWAY_DB_URL")?.trim();
  const direct = get("SUPABASE_DB_URL")?.trim();
  const source = gateway ? "GATEWAY_DB_URL" : direct ? "SUPABASE_DB_URL" : null;
  if (source === null) return null;
  const url = (source === "GATEWAY_DB_URL" ? gateway : direct) as string;
  let port = "";
  try {
    port = new URL(url).port;
  } catch {
    // postgres.js reports a malformed URL on first use; the port only tunes `prepare`.
  }
  const rawMax = Number(get("GATEWAY_DB_POOL_MAX"));
  const max = Number.isInteger(rawMax) && rawMax >= 1 && rawMax <= 100 ? rawMax : DEFAULT_POOL_MAX;
  return { url, prepare: source === "SUPABASE_DB_URL" && port !== POOLER_PORT, max, source };
}

export function createPool(config: DbConfig, applicationName = "eve-llm-gateway"): Sql {
  return postgres(config.url, {
    max: config.max,
    prepare: config.prepare,
    // Seconds: idle connections go after 20 s (a worker may sleep), none lives beyond 30 min, and a
    // database that does not answer within 5 s counts as down for this request.
    idle_timeout: 20,
    max_lifetime: 60 * 30,
    connect_timeout: 5,
    connection: { application_name: applicationName },
    onnotice: () => {},
  });
}

let shared: { key: string; sql: Sql } | null = null;

/**
 * The worker's pool, created on first use. Returns null when no database is configured (the
 * function then answers 503 instead of failing at start-up).
 */
export function workerPool(get: (name: string) => string | undefined, applicationName?: string): Sql | null {
  const config = dbConfigFromEnv(get);
  if (config === null) return null;
  const key = `${config.url}|${config.prepare}|${config.max}`;
  if (shared === null || shared.key !== key) {
    const previous = shared;
    shared = { key, sql: createPool(config, applicationName) };
    void previous?.sql.end({ timeout: 5 }).catch(() => {});
  }
  return shared.sql;
}

/** Closes the worker's pool (tests, graceful shutdown). */
export async function closeWorkerPool(): Promise<void> {
  const current = shared;
  shared = null;
  await current?.sql.end({ timeout: 5 });
}
