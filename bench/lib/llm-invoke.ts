// llm-invoke served for a benchmark part: one Deno process against the part's database and the
// simulator, authenticated by a fixed bench service key, its Google key read from BENCH_SIM_KEY.
// Two ways: as the local functions server runs it (plain Deno, behind the local proxy), and as
// Supabase's Edge Runtime runs it (EdgeRuntime.waitUntil defined, on its own Deno port).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_FUNCTIONS_DIR, startFunctionsServer, type FunctionsServer } from "../../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { startDenoServer, type DenoServer } from "./deno-server.ts";

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
