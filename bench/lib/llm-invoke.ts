// llm-invoke served for a benchmark part: one Deno process against the part's database and the
// simulator, authenticated by a fixed bench service key, its Google key read from BENCH_SIM_KEY.
// Two ways: as the local functions server runs it (plain Deno, behind the local proxy), and as
// Supabase's Edge Runtime runs it (EdgeRuntime.waitUntil defined, on its own Deno port).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_FUNCTIONS_DIR, startFunctionsServer } from "../../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { parseServerTiming } from "../../supabase/functions/_shared/server-timing.ts";
import type { Sql } from "../../shared/db/migrate.ts";
import { startGoogleSimulator, type SimulatorOptions } from "../../shared/google-sim/server.ts";
import { type BenchDb, setKeys, setModel, UNBOUNDED } from "./db.ts";
import { startDenoServer, type ServerProcess } from "./server-process.ts";
import { type WaitRecord, waitRecord } from "./wait-client.ts";

export const BENCH_SERVICE_KEY = "bench-service-key-not-a-secret";
export const BENCH_SIM_KEY = "bench-sim-key";
/** The env var name the bench key rows carry (the function reads the simulator key from it). */
export const BENCH_SIM_KEY_VAR = "GOOGLE_BENCH_SIM_KEY";

export interface ServeOptions {
  dbUrl: string;
  simUrl: string;
  /** Extra environment, e.g. LLM_INVOKE_* tuning. */
  env?: Record<string, string>;
  /** Keeps the function's last output lines here, for error reports. */
  log?: string[];
}

/** The environment llm-invoke runs with in the benchmark. */
export async function functionEnv(dbUrl: string, simUrl: string, env?: Record<string, string>) {
  return {
    // As in production: the functions' own role, which may only call the RPCs.
    SUPABASE_DB_URL: await gatewayRoleUrl(dbUrl),
    SUPABASE_SERVICE_ROLE_KEY: BENCH_SERVICE_KEY,
    GOOGLE_AI_BASE_URL: simUrl,
    [BENCH_SIM_KEY_VAR]: BENCH_SIM_KEY,
    ...env,
  };
}

/** Appends `line` to `lines`, keeping the last `max`. */
export function keepLine(lines: string[] | undefined, line: string, max = 200): void {
  lines?.push(line);
  if (lines && lines.length > max) lines.shift();
}

/**
 * One model whose limits never bind, served by one key that reads BENCH_SIM_KEY, and a simulator for
 * it answering at once.
 */
export async function simulatorFor(db: BenchDb, model: string, project: string, options: SimulatorOptions = {}) {
  await setModel(db.sql, model, UNBOUNDED);
  await setKeys(db.sql, [{ alias: "bench", project, envVar: BENCH_SIM_KEY_VAR, models: [model] }]);
  const models = { [model]: UNBOUNDED };
  return startGoogleSimulator({ keys: { [BENCH_SIM_KEY]: project }, models, latencyMs: 0, ...options });
}

/**
 * llm-invoke as the local functions server runs it; `url` is the function's own Deno port (the local
 * Node proxy caps its socket pool).
 */
export async function serveLlmInvoke(opts: ServeOptions): Promise<{ url: string; close(): Promise<void> }> {
  const env = await functionEnv(opts.dbUrl, opts.simUrl, opts.env);
  const log = (line: string) => keepLine(opts.log, line);
  const fns = await startFunctionsServer({ port: 0, only: ["llm-invoke"], env, log });
  return { url: `http://127.0.0.1:${fns.functions["llm-invoke"]!.port}/`, close: () => fns.close() };
}

/**
 * llm-invoke's unchanged index.ts behind an entry that defines EdgeRuntime.waitUntil, so it takes its
 * production path (a success's finalize after the response). Served on its own Deno port, with the
 * environment, permissions, flags and deno.json of the local functions server. close() returns the
 * process's last output lines, which end with its waitUntil counts.
 */
export async function serveLlmInvokeAsOnSupabase(opts: ServeOptions): Promise<ServerProcess> {
  return startDenoServer({
    script: path.join(path.dirname(fileURLToPath(import.meta.url)), "edge-runtime-entry.ts"),
    config: path.join(DEFAULT_FUNCTIONS_DIR, "llm-invoke", "deno.json"),
    env: await functionEnv(opts.dbUrl, opts.simUrl, opts.env),
    log: (line) => keepLine(opts.log, `[llm-invoke as on Supabase] ${line}`),
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
  /** The answer's Server-Timing and Retry-After headers. */
  serverTiming?: string | null;
  retryAfter?: string | null;
}

/**
 * One native request with the bench service key, or `credential` (`caller`: its x-caller label). Not
 * thrown: a request cut off by `signal` answers status 0, a transport failure -1, the message as the body.
 */
export async function postInvoke(
  url: string,
  body: Record<string, unknown>,
  opts: { signal?: AbortSignal; caller?: string; credential?: string } = {},
): Promise<InvokeAnswer> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${opts.credential ?? BENCH_SERVICE_KEY}`,
        ...(opts.caller === undefined ? {} : { "x-caller": opts.caller }),
      },
      body: JSON.stringify(body),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const headers = { serverTiming: res.headers.get("server-timing"), retryAfter: res.headers.get("retry-after") };
    return { status: res.status, body: await res.text(), ...headers };
  } catch (error) {
    return { status: opts.signal?.aborted ? 0 : -1, body: error instanceof Error ? error.message : String(error) };
  }
}

/** A NO_WAIT request that must answer 200 (the function serves the model), or an error with its last lines. */
export async function probeInvoke(url: string, body: Record<string, unknown>, output: string[] = []): Promise<void> {
  const r = await postInvoke(url, { ...body, mode: "NO_WAIT" });
  const last = output.slice(-5).join(" | ");
  if (r.status !== 200) throw new Error(`probe of ${url}: HTTP ${r.status} ${r.body.slice(0, 300)} ${last}`);
}

/**
 * A WAIT request as a waiter's record: admitted (200; the time is the answer's until the caller puts
 * the database's booking time in), gave up (429: the sleep its Server-Timing names, and the refusal's
 * cause), still waiting when `signal` ended the run, or an error.
 */
export async function waitInLlmInvoke(
  id: number,
  url: string,
  body: Record<string, unknown>,
  opts: { signal: AbortSignal; caller?: string },
): Promise<WaitRecord> {
  const rec = waitRecord(id);
  const r = await postInvoke(url, { ...body, mode: "WAIT" }, opts);
  if (r.status === 200) rec.admittedAt = Date.now();
  else if (r.status === 429) rec.gaveUpAt = Date.now();
  else if (r.status === 0) rec.cutOff = true;
  else rec.error = `HTTP ${r.status} ${r.body.slice(0, 200)}`;
  // A 429 names no waited_ms: its sleep for a turn is the answer's Server-Timing `wait` (a lost turn).
  const slept = parseServerTiming(r.serverTiming ?? null).wait;
  try {
    const answer = JSON.parse(r.body) as { waited_ms?: number; cause?: unknown };
    rec.waitedMs = answer.waited_ms ?? (slept !== undefined && slept > 0 ? Math.round(slept) : 0);
    if (r.status === 429 && typeof answer.cause === "string") rec.cause = answer.cause;
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
 * Google), so it is not an admission; a booking names its quota group, which a refusal's row and a
 * lapsed ticket's abandoned row (google_ai_queue_lapse, written when the ticket lapses) do not.
 */
export async function bookings(sql: Sql, model: string): Promise<Map<string, Booking>> {
  const rows = await sql<{ request_id: string; booked_at: Date | null; window: Date | null; rows: number }[]>`
    select request_id,
           min(created_at) filter (where quota_group is not null and status <> 'released') as booked_at,
           min(minute_bucket) filter (where quota_group is not null and status <> 'released') as window,
           count(*)::int as rows
    from public.google_ai_attempts where model = ${model} group by request_id`;
  return new Map(rows.map((r) => [r.request_id, { bookedAt: r.booked_at, window: r.window, rows: r.rows }]));
}
