// The gateway as the Kaggle tests see it: every Edge Function under Deno (scripts/serve-functions.ts)
// in front of one database, with the offline Google simulator standing in for Google. Every line any
// function or server prints is kept in `logs`, so tests can prove no secret was ever logged.
import { randomBytes } from "node:crypto";
import { type FunctionsServer, startFunctionsServer } from "../../scripts/serve-functions.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../shared/google-sim/server.ts";

export interface KaggleStack {
  /** Like SUPABASE_URL: functions are at `${url}/functions/v1/<name>`. */
  url: string;
  /** The service key the functions accept (SUPABASE_SERVICE_ROLE_KEY). */
  serviceKey: string;
  databaseUrl: string;
  simulator: GoogleSimulator;
  /** Every line printed by the functions (and the functions server), in order. */
  logs: string[];
  close(): Promise<void>;
}

export interface KaggleStackOptions {
  databaseUrl: string;
  /** Extra environment for the functions. */
  env?: Record<string, string>;
  /** Also print each log line (e.g. to stderr). */
  echo?: (line: string) => void;
}

/** The simulator key the seeded key row (`default`, env GOOGLE_API_KEY) resolves to. */
export const SIM_GOOGLE_KEY = "sim-key-a1";

export async function startKaggleStack(options: KaggleStackOptions): Promise<KaggleStack> {
  const logs: string[] = [];
  const log = (line: string) => {
    logs.push(line);
    options.echo?.(line);
  };
  const serviceKey = `sb_secret_${randomBytes(24).toString("base64url")}`;
  const simulator = await startGoogleSimulator();
  let functions: FunctionsServer;
  try {
    functions = await startFunctionsServer({
      port: 0,
      log,
      env: {
        SUPABASE_DB_URL: options.databaseUrl,
        GATEWAY_DB_URL: "",
        SUPABASE_SERVICE_ROLE_KEY: serviceKey,
        SUPABASE_SECRET_KEYS: "",
        // invoke_url is derived from each request's origin, which is what a local caller reaches.
        SUPABASE_URL: "",
        EVE_GATEWAY_URL: "",
        GOOGLE_AI_BASE_URL: simulator.url,
        GOOGLE_API_KEY: SIM_GOOGLE_KEY,
        ...options.env,
      },
    });
  } catch (error) {
    await simulator.close();
    throw error;
  }
  return {
    url: functions.url,
    serviceKey,
    databaseUrl: options.databaseUrl,
    simulator,
    logs,
    async close() {
      await functions.close();
      await simulator.close();
    },
  };
}
