// rate-limiter-flexible's RateLimiterPostgres, configured as its README shows (a pg Pool), with the
// same per-minute limit as ours: `points` = RPM, `duration` = 60 s, one key per quota group.
// Its window starts at the key's first hit (not at :00) and uses the caller's Date.now().
import pg, { type Pool } from "pg";
import { RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import type { TryResult } from "./wait-client.ts";

export const RLFLEX_TABLE = "bench_rlflex";

export interface RlflexHandle {
  pool: Pool;
  limiter: RateLimiterPostgres;
  tryOnce(key: string): Promise<TryResult>;
  close(): Promise<void>;
}

export async function createRlflex(url: string, connections: number, points: number): Promise<RlflexHandle> {
  const pool = new pg.Pool({ connectionString: url, max: connections, idleTimeoutMillis: 0 });
  const limiter = await new Promise<RateLimiterPostgres>((resolve, reject) => {
    const l: RateLimiterPostgres = new RateLimiterPostgres(
      { storeClient: pool, storeType: "pool", tableName: RLFLEX_TABLE, points, duration: 60, clearExpiredByTimeout: false },
      (err?: unknown) => (err ? reject(err) : resolve(l)),
    );
  });
  // Open the pool's connections before anything is measured.
  const clients = await Promise.all(Array.from({ length: connections }, () => pool.query("select 1")));
  void clients;
  return {
    pool,
    limiter,
    async tryOnce(key) {
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
