// The database connection of a function: one postgres.js pool per worker (an Edge Runtime worker
// serves many requests, so the pool is created on first use and reused), wrapped so that an outage
// is answered in milliseconds instead of hanging the caller:
//
//   - connect timeout: a database that does not accept a connection within GATEWAY_DB_CONNECT_TIMEOUT_MS
//     counts as down;
//   - statement timeout: every statement carries the server-side `statement_timeout`, and a client-side
//     deadline just above it, so a frozen server (or a dead network path) cannot hold a request;
//   - "down" state (db-circuit.ts): after a connection failure or a missed deadline the pool is thrown
//     away (postgres.js backs reconnects off up to 20 s per pool: a fresh pool starts without that
//     history) and for GATEWAY_DB_DOWN_MS every call fails at once with DatabaseUnavailable, without a
//     connect attempt; then the next call starts a probe (`select 1` on a fresh pool) and the calls
//     that come meanwhile wait with it (up to GATEWAY_DB_PROBE_WAIT_MS from its start): when it
//     answers they all go on, so the burst after an outage is served; when it fails, down again;
//   - "down" needs a server that does not answer: a call that times out (connect or deadline) while
//     the server answered other calls since it began is answered 503 alone, the others go on;
//   - one retry of a call that failed on a stale pooled connection (the server restarted, a socket was
//     reset): the next connection is fresh, so the caller gets its answer instead of a 503.
//
//   GATEWAY_DB_URL   optional: a pooler URL (Supavisor transaction mode, port 6543), the one to use
//                    on Supabase (the eve_gateway role; Supabase's advice for Edge Functions, which
//                    open connections per worker). Transaction pooling cannot keep prepared
//                    statements, so they are off for it, and each statement goes out as one text
//                    statement (one-statement.ts): one round trip, as a prepared one is direct.
//   SUPABASE_DB_URL  the project's direct connection (set by Supabase for every Edge Function).
//   GATEWAY_DB_POOL_MAX  connections per worker (default 5).
//   GATEWAY_DB_CONNECT_TIMEOUT_MS, GATEWAY_DB_STATEMENT_TIMEOUT_MS, GATEWAY_DB_DEADLINE_MS,
//   GATEWAY_DB_DOWN_MS, GATEWAY_DB_PROBE_WAIT_MS  see DEFAULT_DB_TIMEOUTS.
// No Deno globals: the environment is passed in, so Node (vitest) can use this module too.
import postgres from "postgres";
import { Circuit } from "./db-circuit.ts";
import { oneStatementSql } from "./one-statement.ts";
import { ARRAY_PARAMETER_TYPES } from "./pg-arrays.ts";
import { sanitizeError } from "./sanitize.ts";

export type Sql = postgres.Sql;
type Env = (name: string) => string | undefined;

export interface DbConfig {
  url: string;
  /** False for transaction-mode poolers (GATEWAY_DB_URL, or any URL on port 6543). */
  prepare: boolean;
  max: number;
  /** Which variable the URL came from, for messages (never the URL itself: it holds a password). */
  source: "GATEWAY_DB_URL" | "SUPABASE_DB_URL";
}

export interface DbTimeouts {
  /** A new connection that is not ready (TCP + startup) by then fails. */
  connectTimeoutMs: number;
  /** Server-side `statement_timeout` of every statement. */
  statementTimeoutMs: number;
  /** Client-side bound of one call (pool queue, connect, statement): a frozen server cannot hold it longer. */
  deadlineMs: number;
  /** After a connection failure, calls fail at once for this long (no connect attempt). */
  downForMs: number;
  /** After the down interval, callers wait this long at most (from its start) for a probe's outcome. */
  probeWaitMs: number;
}

export const DEFAULT_POOL_MAX = 5;
/**
 * Measured (docs/benchmarks.md, part "outage"): a reservation takes a few milliseconds, so 5 s of
 * statement time is only reached by a stuck database; a healthy connect takes under 50 ms locally.
 * The down interval is short (a repeat half a second after the database's return is served); a
 * probe is waited for up to 1 s, ample for a connect over the network to Supabase, short enough
 * that a probe stuck on a frozen server holds no caller long.
 */
export const DEFAULT_DB_TIMEOUTS: DbTimeouts = {
  connectTimeoutMs: 3_000,
  statementTimeoutMs: 5_000,
  deadlineMs: 6_000,
  downForMs: 500,
  probeWaitMs: 1_000,
};
export const DB_TIMEOUT_VARIABLES = {
  GATEWAY_DB_CONNECT_TIMEOUT_MS: "connectTimeoutMs",
  GATEWAY_DB_STATEMENT_TIMEOUT_MS: "statementTimeoutMs",
  GATEWAY_DB_DEADLINE_MS: "deadlineMs",
  GATEWAY_DB_DOWN_MS: "downForMs",
  GATEWAY_DB_PROBE_WAIT_MS: "probeWaitMs",
} as const satisfies Record<string, keyof DbTimeouts>;

const POOLER_PORT = "6543";

/** The connection settings from the environment, or null when no database URL is set. */
export function dbConfigFromEnv(get: Env): DbConfig | null {
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

/**
 * The timeouts: `base` (a function's own defaults), each overridden by its variable when that is an
 * integer of milliseconds in range. The deadline is kept above the statement timeout, so a slow
 * statement is ended by the server (which then frees its locks) before the client gives up.
 */
export function dbTimeoutsFromEnv(get: Env, base: DbTimeouts = DEFAULT_DB_TIMEOUTS): DbTimeouts {
  const t = { ...base };
  for (const [name, field] of Object.entries(DB_TIMEOUT_VARIABLES)) {
    const raw = get(name)?.trim();
    const n = raw ? Number(raw) : NaN;
    if (Number.isInteger(n) && n >= 1 && n <= 600_000) t[field] = n;
  }
  if (t.deadlineMs <= t.statementTimeoutMs) t.deadlineMs = t.statementTimeoutMs + 1_000;
  return t;
}

/**
 * The pool's postgres.js options (tests open a pool with exactly these to count what it sends).
 * `givenUp`: true once the pool is dropped after a failure.
 */
export function poolOptions(
  config: DbConfig,
  applicationName = "eve-llm-gateway",
  timeouts: DbTimeouts = DEFAULT_DB_TIMEOUTS,
  givenUp: () => boolean = () => false,
): postgres.Options<Record<string, postgres.PostgresType>> {
  return {
    max: config.max,
    prepare: config.prepare,
    // postgres.js otherwise reads pg_type on every new connection, a round trip before its first
    // statement (a request's reservation, when the worker is cold or a connection was recycled).
    // The look-up only teaches it arrays: parameters are written by pg-arrays.ts, and statements
    // return array columns as jsonb.
    fetch_types: false,
    types: ARRAY_PARAMETER_TYPES,
    // Seconds: idle connections go after 20 s (a worker may sleep), none lives beyond 30 min.
    idle_timeout: 20,
    max_lifetime: 60 * 30,
    connect_timeout: timeouts.connectTimeoutMs / 1000,
    // postgres.js waits up to 20 s between reconnects of a pool that keeps failing; the down state
    // below already keeps callers off a dead database, so a reconnect waits at most half a second,
    // and none once the pool is dropped: the calls still queued in it (nothing sent yet) each try
    // one connection at once and end, instead of waiting a backoff step apiece.
    backoff: (retries: number) => (givenUp() ? 0 : Math.min(0.5, 3 ** retries / 100)),
    // Startup parameters: every statement of every connection is bounded by the server too.
    connection: { application_name: applicationName, statement_timeout: timeouts.statementTimeoutMs },
    onnotice: () => {},
  };
}

export function createPool(
  config: DbConfig,
  applicationName = "eve-llm-gateway",
  timeouts: DbTimeouts = DEFAULT_DB_TIMEOUTS,
  givenUp: () => boolean = () => false,
): Sql {
  const sql = postgres(config.url, poolOptions(config, applicationName, timeouts, givenUp));
  // Without prepared statements postgres.js describes a parameterized statement before running it
  // (two round trips): on a pooler each statement goes out as one text statement instead.
  return config.prepare ? sql : oneStatementSql(sql);
}

/** The database cannot serve now: answer 503 with Retry-After (retryAfterMs, whole seconds rounded up). */
export class DatabaseUnavailable extends Error {
  override readonly name = "DatabaseUnavailable";
  readonly retryAfterMs: number;
  /** not_configured: no URL; down: failing fast; connection: a connect just failed; timeout: no answer in time. */
  readonly reason: "not_configured" | "down" | "connection" | "timeout";
  constructor(message: string, retryAfterMs: number, reason: DatabaseUnavailable["reason"]) {
    super(message);
    this.retryAfterMs = retryAfterMs;
    this.reason = reason;
  }
}

/** Retry-After seconds for a DatabaseUnavailable (at least 1). */
export function retryAfterSeconds(error: DatabaseUnavailable): string {
  return String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
}

// The server or the path to it is gone: no connection could be made.
const CONNECT_FAILURES = new Set([
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "57P03", // cannot_connect_now (starting up or shutting down)
  "08001", // sqlclient_unable_to_establish_sqlconnection
  "08004", // sqlserver_rejected_establishment_of_sqlconnection
  "3D000", // invalid_catalog_name (wrong database)
  "28P01", // invalid_password
  "28000", // invalid_authorization_specification
]);
// A pooled connection died under the call (server restarted, socket reset): a fresh one may work.
const CONNECTION_LOST = new Set([
  "ECONNRESET",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown: the backend was terminated
  "57P02", // crash_shutdown
  "08003", // connection_does_not_exist
  "08006", // connection_failure
]);
// The server is alive but could not serve this call in time or at all.
const BUSY = new Set([
  "57014", // query_canceled: statement_timeout
  "53300", // too_many_connections
  "53000", // insufficient_resources
  "55P03", // lock_not_available
]);

export type FailureKind = "connect" | "lost" | "busy" | "query";

/** What a driver error says about the database (anything else is a query error: the caller's business). */
export function classifyDbError(error: unknown): FailureKind {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "query";
  if (CONNECT_FAILURES.has(code)) return "connect";
  if (CONNECTION_LOST.has(code)) return "lost";
  if (BUSY.has(code)) return "busy";
  return "query";
}

/** A failure that says the database cannot serve now (503), as opposed to an error in a statement. */
export function isDatabaseUnreachable(error: unknown): boolean {
  return error instanceof DatabaseUnavailable || classifyDbError(error) !== "query";
}

export interface Database {
  /**
   * Runs `work` on the pool under the deadline. Database failures become DatabaseUnavailable (the
   * sanitized cause is logged); an error the server answered to the statement itself is rethrown.
   */
  run<T>(what: string, work: (sql: Sql) => Promise<T>): Promise<T>;
  /** "up", "down" (failing fast) or "probing" (a probe runs; callers wait for it), for tests and logs. */
  state(): "up" | "down" | "probing";
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Null: no database configured (every call answers DatabaseUnavailable). */
  config: DbConfig | null;
  applicationName: string;
  timeouts?: DbTimeouts;
  log?: (message: string) => void;
  now?: () => number;
  /** Makes the pool (tests inject failing ones). */
  createPool?: (config: DbConfig, applicationName: string, timeouts: DbTimeouts, givenUp: () => boolean) => Sql;
}

class DeadlineExceeded extends Error {}

/** A failure that only says the answer was slow (a frozen server, or one slow new connection). */
const SLOW = new Set(["CONNECT_TIMEOUT", "ETIMEDOUT"]);

export function createDatabase(options: DatabaseOptions): Database {
  const timeouts = options.timeouts ?? DEFAULT_DB_TIMEOUTS;
  const log = options.log ?? ((m: string) => console.error(`[${options.applicationName}] ${m}`));
  const now = options.now ?? Date.now;
  const makePool = options.createPool ?? createPool;
  let pool: Sql | null = null;
  const dropped = new WeakSet<Sql>();

  function current(): Sql {
    if (pool !== null) return pool;
    const made: Sql = makePool(options.config!, options.applicationName, timeouts, () => dropped.has(made));
    return (pool = made);
  }

  /** A probe after a down interval: one trivial statement on a fresh pool. */
  async function probe(): Promise<boolean> {
    const sql = current();
    try {
      await attempt(sql, (s) => s`select 1`);
      return true;
    } catch (error) {
      if (!(error instanceof DeadlineExceeded) && classifyDbError(error) === "query") return true;
      dropPool(sql);
      return false;
    }
  }
  const circuit = new Circuit({ downForMs: timeouts.downForMs, probeWaitMs: timeouts.probeWaitMs, probe, now });

  /**
   * Stops using `failed`. Statements already sent on it keep their own deadline (the pool closes once
   * they are answered, at most a deadline later): a statement is given up only at its deadline, never
   * earlier because another call failed, so a write the server commits after the caller stopped
   * waiting can be told apart by its deadline (llm-invoke's reply_by, supabase/schemas/55_claims.sql).
   */
  function dropPool(failed: Sql) {
    if (pool !== failed) return;
    pool = null;
    dropped.add(failed);
    void failed.end({ timeout: timeouts.deadlineMs / 1000 }).catch(() => {});
  }

  function markDown(failed: Sql, why: string) {
    dropPool(failed);
    if (circuit.failed()) log(`database down (calls refused for ${timeouts.downForMs} ms, then probed): ${why}`);
  }

  function unavailable(what: string, reason: DatabaseUnavailable["reason"]): DatabaseUnavailable {
    const retryAfterMs = Math.max(1_000, circuit.retryInMs());
    return new DatabaseUnavailable(`${what}: the database is not reachable now`, retryAfterMs, reason);
  }

  async function attempt<T>(sql: Sql, work: (sql: Sql) => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded()), timeouts.deadlineMs);
    });
    try {
      return await Promise.race([work(sql), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async run(what, work) {
      if (options.config === null) {
        log(`${what}: no database configured (SUPABASE_DB_URL or GATEWAY_DB_URL)`);
        throw new DatabaseUnavailable(`${what}: no database is configured`, 30_000, "not_configured");
      }
      const startedAt = now();
      if (!(await circuit.admit(startedAt + timeouts.deadlineMs))) throw unavailable(what, "down");
      for (let tries = 1;; tries++) {
        const sql = current();
        try {
          const result = await attempt(sql, work);
          circuit.answered();
          return result;
        } catch (error) {
          const slow = error instanceof DeadlineExceeded || SLOW.has(String((error as { code?: unknown }).code));
          // No answer in time while the server answers others: this call was unlucky (a slow new
          // connection, a long queue), the database is not down.
          if (slow && circuit.answeredSince(startedAt)) {
            log(`${what}: no answer in time while the database answers others; not an outage`);
            throw unavailable(what, "timeout");
          }
          if (error instanceof DeadlineExceeded) {
            // A pool already given up tells nothing new: the down state it began is not extended.
            if (pool === sql) markDown(sql, `${what}: no answer within ${timeouts.deadlineMs} ms`);
            throw unavailable(what, "timeout");
          }
          const kind = classifyDbError(error);
          if (kind === "query") {
            circuit.answered(); // the server answered: it is up
            throw error;
          }
          const cause = sanitizeError(error, { maxLength: 300 });
          if (kind === "busy") {
            log(`${what} failed: ${cause}`);
            throw unavailable(what, "timeout");
          }
          // A stale connection: retry once on a fresh one, unless another call already found the
          // database down (then this pool is being thrown away and its calls end with it).
          if (kind === "lost" && tries === 1 && pool === sql && circuit.state() === "up") {
            log(`${what}: connection lost (${cause}); retrying once`);
            continue;
          }
          if (pool !== sql || circuit.state() !== "up") throw unavailable(what, "down");
          markDown(sql, `${what}: ${cause}`);
          throw unavailable(what, "connection");
        }
      }
    },
    state: () => circuit.state(),
    async close() {
      const p = pool;
      pool = null;
      await p?.end({ timeout: 5 });
    },
  };
}

let shared: { key: string; db: Database } | null = null;

/**
 * The worker's database, created on first use (each function is its own worker, so the name is the
 * function's). With no URL configured every call answers DatabaseUnavailable instead of the
 * function failing at start-up. `base` sets the function's own default timeouts.
 */
export function workerDatabase(get: Env, applicationName: string, base?: DbTimeouts): Database {
  const config = dbConfigFromEnv(get);
  const timeouts = dbTimeoutsFromEnv(get, base);
  const key = JSON.stringify([config, timeouts, applicationName]);
  if (shared === null || shared.key !== key) {
    const previous = shared;
    shared = { key, db: createDatabase({ config, applicationName, timeouts }) };
    void previous?.db.close().catch(() => {});
  }
  return shared.db;
}
