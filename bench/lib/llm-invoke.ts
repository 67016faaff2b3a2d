// llm-invoke served for a benchmark part: one Deno process against the part's database and the
// simulator, authenticated by a fixed bench service key, its Google key read from BENCH_SIM_KEY.
// Two ways: as the local functions server runs it (plain Deno, behind the local proxy), and as
// Supabase's Edge Runtime runs it (EdgeRuntime.waitUntil defined, on its own Deno port).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_FUNCTIONS_DIR, startFunctionsServer, type FunctionsServer } from "../../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import type { Sql } from "../../shared/db/migrate.ts";
import { startDenoServer, type DenoServer } from "./deno-server.ts";
import type { WaitRecord } from "./wait-client.ts";

export const BENCH_SERVICE_KEY = "bench-service-key-not-a-secret";
export const BENCH_SIM_KEY = "bench-sim-key";
/** The env var name the bench key rows carry (the function reads the simulator key from it). */
export const BENCH_SIM_KEY_VAR = "GOOGLE_BENCH_SIM_KEY";

export interface ServeOptions {
  dbUrl: string;
  simUrl: string;
  /** Extra environment, e.g. LLM_INVOKE_* tuning. */
  env?: Record<string, string>;
  /** Keeps the function's last `keep` output lines here, for error reports. */
  log: string[];
  keep: number;
}

async function functionEnv(opts: ServeOptions): Promise<Record<string, string>> {
  return {
    // As in production: the functions' own role, which may only call the RPCs.
    SUPABASE_DB_URL: await gatewayRoleUrl(opts.dbUrl),
    SUPABASE_SERVICE_ROLE_KEY: BENCH_SERVICE_KEY,
    GOOGLE_AI_BASE_URL: opts.simUrl,
    [BENCH_SIM_KEY_VAR]: BENCH_SIM_KEY,
    ...opts.env,
  };
}

function keeper(opts: ServeOptions): (line: string) => void {
  return (line) => {
    opts.log.push(line);
    if (opts.log.length > opts.keep) opts.log.shift();
  };
}

export async function serveLlmInvoke(opts: ServeOptions): Promise<FunctionsServer> {
  return startFunctionsServer({ port: 0, only: ["llm-invoke"], env: await functionEnv(opts), log: keeper(opts) });
}

/**
 * llm-invoke's unchanged index.ts behind an entry that defines EdgeRuntime.waitUntil, so it takes its
 * production path (a success's finalize after the response). Served on its own Deno port, with the
 * environment, permissions, flags and deno.json of the local functions server. close() returns the
 * process's last output lines, which end with its waitUntil counts.
 */
export async function serveLlmInvokeAsOnSupabase(opts: ServeOptions): Promise<DenoServer> {
  const log = keeper(opts);
  return startDenoServer({
    script: path.join(path.dirname(fileURLToPath(import.meta.url)), "edge-runtime-entry.ts"),
    config: path.join(DEFAULT_FUNCTIONS_DIR, "llm-invoke", "deno.json"),
    env: await functionEnv(opts),
    log: (line) => log(`[llm-invoke as on Supabase] ${line}`),
  });
}

/** The waitUntil counts the entry prints when it stops, or null if it printed none. */
export function waitUntilCounts(output: string[]): { handed: number; settled: number; rejected: number } | null {
  for (const line of [...output].reverse()) {
    const m = /^waitUntil (\{.*\})$/.exec(line.trim());
    if (m) return JSON.parse(m[1]!) as { handed: number; settled: number; rejected: number };
  }
  return null;
}

export interface InvokeAnswer {
  status: number;
  body: string;
}

/**
 * One native request with the bench service key (`caller`: its x-caller label). Not thrown: a request
 * cut off by `signal` answers status 0, a transport failure -1, the message as the body.
 */
export async function postInvoke(
  url: string,
  body: Record<string, unknown>,
  opts: { signal?: AbortSignal; caller?: string } = {},
): Promise<InvokeAnswer> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${BENCH_SERVICE_KEY}`,
        ...(opts.caller === undefined ? {} : { "x-caller": opts.caller }),
      },
      body: JSON.stringify(body),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { status: res.status, body: await res.text() };
  } catch (error) {
    return { status: opts.signal?.aborted ? 0 : -1, body: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * A WAIT request as a waiter's record: admitted (200; the time is the answer's until the caller puts
 * the database's booking time in), gave up (429, after the `waited_ms` the answer names), still
 * waiting when `signal` ended the run, or an error.
 */
export async function waitInLlmInvoke(
  id: number,
  url: string,
  body: Record<string, unknown>,
  opts: { signal: AbortSignal; caller?: string },
): Promise<WaitRecord> {
  const rec: WaitRecord = { id, arrivedAt: Date.now(), admittedAt: null, admitCallStartedAt: null, window: null, gaveUpAt: null, cutOff: false, calls: 0, waitedMs: 0 };
  const r = await postInvoke(url, { ...body, mode: "WAIT" }, opts);
  if (r.status === 200) rec.admittedAt = Date.now();
  else if (r.status === 429) rec.gaveUpAt = Date.now();
  else if (r.status === 0) rec.cutOff = true;
  else rec.error = `HTTP ${r.status} ${r.body.slice(0, 200)}`;
  try {
    rec.waitedMs = (JSON.parse(r.body) as { waited_ms?: number }).waited_ms ?? 0;
  } catch {
    // not JSON
  }
  return rec;
}

export interface Booking {
  /** When the database booked the request (null: never admitted, or its booking was released). */
  bookedAt: Date | null;
  window: Date | null;
  /** Attempt rows the request left (each reservation call that was answered with a row). */
  rows: number;
}

/**
 * The database's account of each request to `model`, by request_id: when it was booked, in which
 * window, and its attempt rows. A released booking gave its slot back (the call never reached
 * Google), so it is not an admission.
 */
export async function bookings(sql: Sql, model: string): Promise<Map<string, Booking>> {
  const rows = await sql<{ request_id: string; booked_at: Date | null; window: Date | null; rows: number }[]>`
    select request_id,
           min(created_at) filter (where status not in ('refused', 'released')) as booked_at,
           min(minute_bucket) filter (where status not in ('refused', 'released')) as window,
           count(*)::int as rows
    from public.google_ai_attempts where model = ${model} group by request_id`;
  return new Map(rows.map((r) => [r.request_id, { bookedAt: r.booked_at, window: r.window, rows: r.rows }]));
}
