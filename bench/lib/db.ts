// One PostgreSQL for the whole benchmark run: started by the shared harness, migrations and seed
// applied once to a template database, then a fresh copy of it for each part (so one part's
// counters, attempt rows and table bloat never touch another's figures).
import { startPostgres, type PostgresServer } from "../../shared/db/postgres-server.ts";
import { cloneDatabase, connect, databaseUrl, dropDatabase, prepareDatabase, quoteIdent, type Sql } from "../../shared/db/migrate.ts";

export interface BenchServer {
  server: PostgresServer;
  /** `select version()` */
  version: string;
  settings: Record<string, string>;
  /** A fresh copy of the migrated, seeded template. */
  fresh(name: string): Promise<BenchDb>;
  /** Subscribe to server log lines (statement logging for round-trip counts). */
  onLog(listener: (line: string) => void): () => void;
  stop(): Promise<void>;
}

export interface BenchDb {
  name: string;
  url: string;
  /** Small admin pool for setup and read-backs (not used for measured traffic). */
  sql: Sql;
  /** Ends its pool and drops the database. */
  close(): Promise<void>;
}

const TEMPLATE = "eve_bench_template";

/** The server as in production: fsync and synchronous_commit on. */
export async function startBenchServer(): Promise<BenchServer> {
  const listeners = new Set<(line: string) => void>();
  const server = await startPostgres({
    durable: true,
    log: (line) => {
      for (const l of listeners) l(line);
    },
  });
  try {
    await dropDatabase(server.url, TEMPLATE);
    const admin = connect(server.url, { max: 1 });
    let version: string;
    let settings: Record<string, string>;
    try {
      await admin.unsafe(`create database ${quoteIdent(TEMPLATE)}`);
      [{ version }] = await admin<{ version: string }[]>`select version()`;
      const rows = await admin<{ name: string; setting: string }[]>`
        select name, setting from pg_settings
        where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections', 'server_version')`;
      settings = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    } finally {
      await admin.end();
    }
    await prepareDatabase(databaseUrl(server.url, TEMPLATE));
    return {
      server,
      version,
      settings,
      onLog(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      async fresh(name) {
        const dbName = `eve_bench_${name.replace(/[^a-z0-9_]/gi, "_")}`;
        await dropDatabase(server.url, dbName);
        const url = await cloneDatabase(server.url, TEMPLATE, dbName);
        const sql = connect(url, { max: 4 });
        return {
          name: dbName,
          url,
          sql,
          async close() {
            await sql.end({ timeout: 5 });
            await dropDatabase(server.url, dbName);
          },
        };
      },
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

export interface ModelLimits {
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
}

/** A limit that never binds. */
export const HUGE = 2_000_000_000;
/** Limits that never bind (a model row's, or the simulator's): every call is admitted. */
export const UNBOUNDED = { rpm: HUGE, tpm: HUGE, rpd: HUGE };

/** Adds (or replaces) a model row. Limits are per quota group, as in production. */
export async function setModel(sql: Sql, model: string, limits: ModelLimits): Promise<void> {
  await sql`
    insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
    values (${model}, ${limits.rpm}, ${limits.tpm}, ${limits.rpd})
    on conflict (model) do update set rpm = excluded.rpm, tpm = excluded.tpm, rpd = excluded.rpd`;
}

/**
 * Adds (or replaces) an OpenAI model row whose limits never bind, booking its output as OpenAI counts
 * TPM (booked_output_tokens), with the chain's next models.
 */
export async function setOpenAIModel(sql: Sql, model: string, fallbackModels: string[] = []): Promise<void> {
  await sql`
    insert into public.google_ai_model_limits (model, provider, rpm, tpm, rpd, booked_output_tokens, fallback_models, is_active)
    values (${model}, 'openai', ${UNBOUNDED.rpm}, ${UNBOUNDED.tpm}, ${UNBOUNDED.rpd}, 4096, ${fallbackModels}, true)
    on conflict (model) do update set provider = excluded.provider, rpm = excluded.rpm, tpm = excluded.tpm,
      rpd = excluded.rpd, booked_output_tokens = excluded.booked_output_tokens,
      fallback_models = excluded.fallback_models, is_active = true`;
}

export interface KeySpec {
  alias: string;
  /** Google Cloud project = quota group. */
  project: string;
  envVar?: string;
  /** Models this key serves (null: all). */
  models?: string[] | null;
}

/** Replaces the key pool. */
export async function setKeys(sql: Sql, keys: KeySpec[]): Promise<void> {
  await sql`delete from public.google_ai_api_keys`;
  for (const k of keys) {
    await sql`
      insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, models, priority, is_active)
      values (${k.alias}, ${k.envVar ?? `GOOGLE_BENCH_KEY_${k.alias.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`},
              ${k.project}, ${k.models ?? null}, 100, true)`;
  }
}

/** Opens `n` single-connection clients and waits until every one of them is connected. */
export async function openClients(url: string, n: number): Promise<Sql[]> {
  const clients = Array.from({ length: n }, () => connect(url, { max: 1, idle_timeout: 0, connect_timeout: 60 }));
  // Open them a few at a time: hundreds of simultaneous forks make a 2-core machine stall.
  for (let i = 0; i < clients.length; i += 25) {
    await Promise.all(clients.slice(i, i + 25).map((c) => c`select 1`));
  }
  return clients;
}

export async function closeClients(clients: Sql[]): Promise<void> {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
}

export async function walLsn(sql: Sql): Promise<string> {
  const [{ lsn }] = await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  return lsn;
}

export async function walBytesSince(sql: Sql, lsn: string): Promise<number> {
  const [{ bytes }] = await sql<{ bytes: string }[]>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::text as bytes`;
  return Number(bytes);
}

export async function relationBytes(sql: Sql, relation: string): Promise<number> {
  const [{ bytes }] = await sql<{ bytes: string }[]>`select pg_total_relation_size(${relation}::regclass)::text as bytes`;
  return Number(bytes);
}

/** A batch of finalizes: its calls are counted under google_ai_finalize_attempt (see TOP_LEVEL_RPCS). */
export const FINALIZE_BATCH_RPC = "google_ai_finalize_calls";

/**
 * The RPCs a function can call (the nested helpers they call are not counted). Every finalize passes
 * google_ai_finalize_attempt once, whether written alone (google_ai_finalize) or among the successes
 * that met in one worker (google_ai_finalize_calls): finalizes are counted there (track_functions counts
 * nested calls), the batch once under its name.
 */
export const TOP_LEVEL_RPCS = [
  "google_ai_reserve_models",
  "google_ai_finalize_attempt",
  FINALIZE_BATCH_RPC,
  "google_ai_release",
  "google_ai_cooldown",
];

/** Counts calls of every function in `db` from the next connection on (pg_stat_user_functions). */
export async function trackFunctions(db: BenchDb): Promise<void> {
  await db.sql.unsafe(`alter database ${quoteIdent(db.name)} set track_functions = 'all'`);
}

/** Calls so far of the top-level RPCs, by name (connections opened after trackFunctions). */
export async function rpcCalls(db: BenchDb): Promise<Record<string, number>> {
  const rows = await db.sql<{ name: string; calls: string }[]>`
    select funcname as name, calls::text as calls from pg_stat_user_functions
    where schemaname = 'public' and funcname = any(${TOP_LEVEL_RPCS})`;
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.calls)]));
}
