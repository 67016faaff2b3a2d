// rate-limiter-flexible's RateLimiterPostgres, configured as its README shows (a pg Pool), with the
// same per-minute limit as ours: `points` = RPM, `duration` = 60 s, one key per quota group.
// Its window starts at the key's first hit (not at :00) and uses the caller's Date.now().
import pg from "pg";
import { RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import type { TryResult } from "./wait-client.ts";

export const RLFLEX_TABLE = "bench_rlflex";

export type RlflexHandle = Awaited<ReturnType<typeof createRlflex>>;

/**
 * Creates the limiter's table (its own `CREATE TABLE IF NOT EXISTS`), once. Processes that each create
 * it at the same moment can fail with "relation already exists" (two creations of the same name race
 * in PostgreSQL's catalog), so the parent creates it before it starts the workers, which skip it.
 */
export async function createRlflexTable(url: string): Promise<void> {
  const rl = await createRlflex(url, 1, 1);
  await rl.close();
}

export async function createRlflex(url: string, connections: number, points: number, { tableCreated = false } = {}) {
  const pool = new pg.Pool({ connectionString: url, max: connections, idleTimeoutMillis: 0 });
  const options = { storeClient: pool, storeType: "pool", tableName: RLFLEX_TABLE, tableCreated, points, duration: 60, clearExpiredByTimeout: false };
  // With its table created, the limiter is ready at once; otherwise its callback says when the table is.
  const limiter = tableCreated ? new RateLimiterPostgres(options) : await new Promise<RateLimiterPostgres>((resolve, reject) => {
    const l: RateLimiterPostgres = new RateLimiterPostgres(options, (err?: unknown) => (err ? reject(err) : resolve(l)));
  });
  // Open the pool's connections before anything is measured.
  await Promise.all(Array.from({ length: connections }, () => pool.query("select 1")));
  return {
    pool,
    async tryOnce(key: string): Promise<TryResult> {
      try {
        await limiter.consume(key, 1);
        return { ok: true };
      } catch (res) {
        if (res instanceof RateLimiterRes) return { ok: false, retryAfterMs: res.msBeforeNext };
        throw res;
      }
    },
    close: () => pool.end(),
  };
}
