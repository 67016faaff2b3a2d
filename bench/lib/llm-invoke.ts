// llm-invoke served for a benchmark part: one Deno process against the part's database and the
// simulator, authenticated by a fixed bench service key, its Google key read from BENCH_SIM_KEY.
import { startFunctionsServer, type FunctionsServer } from "../../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";

export const BENCH_SERVICE_KEY = "bench-service-key-not-a-secret";
export const BENCH_SIM_KEY = "bench-sim-key";
/** The env var name the bench key rows carry (the function reads the simulator key from it). */
export const BENCH_SIM_KEY_VAR = "GOOGLE_BENCH_SIM_KEY";

export async function serveLlmInvoke(opts: {
  dbUrl: string;
  simUrl: string;
  /** Extra environment, e.g. LLM_INVOKE_* tuning. */
  env?: Record<string, string>;
  /** Keeps the function's last `keep` output lines here, for error reports. */
  log: string[];
  keep: number;
}): Promise<FunctionsServer> {
  return startFunctionsServer({
    port: 0,
    only: ["llm-invoke"],
    env: {
      // As in production: the functions' own role, which may only call the RPCs.
      SUPABASE_DB_URL: await gatewayRoleUrl(opts.dbUrl),
      SUPABASE_SERVICE_ROLE_KEY: BENCH_SERVICE_KEY,
      GOOGLE_AI_BASE_URL: opts.simUrl,
      [BENCH_SIM_KEY_VAR]: BENCH_SIM_KEY,
      ...opts.env,
    },
    log: (line) => {
      opts.log.push(line);
      if (opts.log.length > opts.keep) opts.log.shift();
    },
  });
}
