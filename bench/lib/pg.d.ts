// The few parts of `pg` (node-postgres) the benchmark uses: it is here only because
// rate-limiter-flexible's RateLimiterPostgres takes a pg Pool. (No @types/pg dependency for that.)
declare module "pg" {
  export interface PoolConfig {
    connectionString?: string;
    max?: number;
    idleTimeoutMillis?: number;
  }
  export class Pool {
    constructor(config?: PoolConfig);
    query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;
    end(): Promise<void>;
  }
  const pg: { Pool: typeof Pool };
  export default pg;
}
