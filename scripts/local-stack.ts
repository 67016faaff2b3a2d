// The whole gateway on one machine, no Docker, no provider key: PostgreSQL (migrations + seed), the
// offline Google and OpenAI simulators (each unless a real key for it is configured), and every Edge
// Function served at http://127.0.0.1:54321/functions/v1/<name> — the paths `supabase functions serve` uses.
// `npm start` (scripts/start.ts) runs it; tests call startLocalStack({ functionsPort: 0, databaseUrl }).
//
// Documented local defaults (never use them anywhere else):
//   service key   sb_secret_eve_local_dev_only   (SUPABASE_SERVICE_ROLE_KEY and SUPABASE_SECRET_KEYS)
//   anon key      sb_publishable_eve_local_dev_only
//   functions     http://127.0.0.1:54321          (SUPABASE_URL for callers)
//   database      postgres://postgres@127.0.0.1:54322/postgres (trust auth on loopback; data: scripts/local-db.ts)
//   simulator     http://127.0.0.1:54329, the seeded key's GOOGLE_API_KEY = sim-key-a1
//   openai sim    http://127.0.0.1:54330 (OPENAI_BASE_URL), the seeded key's OPENAI_API_KEY = sk-sim-a1
import { gatewayRoleUrl } from "../shared/db/gateway-role.ts";
import { startLocalDatabase } from "./local-db.ts";
import { freePort } from "../shared/free-port.ts";
import { DEFAULT_FUNCTIONS_PORT, type FunctionsServer, startFunctionsServer } from "./serve-functions.ts";
import { type GoogleSimulator, type SimulatorOptions, startGoogleSimulator } from "../shared/google-sim/server.ts";
import { type OpenAISimulator, type OpenAISimulatorOptions, startOpenAISimulator } from "../shared/openai-sim/server.ts";

export const LOCAL_SERVICE_KEY = "sb_secret_eve_local_dev_only";
export const LOCAL_ANON_KEY = "sb_publishable_eve_local_dev_only";
export const LOCAL_SIMULATOR_PORT = 54329;
/** The simulator's dev key handed to the seeded key row (env var GOOGLE_API_KEY). */
export const LOCAL_SIMULATOR_KEY = "sim-key-a1";
export const LOCAL_OPENAI_SIMULATOR_PORT = 54330;
/** The OpenAI simulator's dev key handed to the seeded OpenAI key row (env var OPENAI_API_KEY; organization org-sim-a). */
export const LOCAL_OPENAI_SIMULATOR_KEY = "sk-sim-a1";

/** Whether a provider's calls go to its simulator or to the provider itself. */
export type ProviderMode = "auto" | "simulator" | "real";

export interface LocalStackOptions {
  /** Port of the functions server; default 54321, 0 picks a free one. */
  functionsPort?: number;
  /** Use this database (tests pass a fresh clone); default: the persistent local one on 54322. */
  databaseUrl?: string;
  /**
   * "simulator": always the offline simulator. "real": Google itself, with GOOGLE_API_KEY from `env`
   * or the environment (an error if none). "auto" (default): real if GOOGLE_API_KEY is set, else
   * the simulator.
   */
  google?: ProviderMode;
  /**
   * The same for OpenAI, with OPENAI_API_KEY: "real" (or "auto" with the key set) leaves
   * OPENAI_BASE_URL unset, so the functions call api.openai.com with that key.
   */
  openai?: ProviderMode;
  /** Extra environment for the functions (wins over everything else): e.g. each key row's secret. */
  env?: Record<string, string>;
  /** Passed to the simulator (port defaults to 54329, or a free one when functionsPort is 0). */
  simulatorOptions?: SimulatorOptions;
  /**
   * Passed to the OpenAI simulator (port defaults to 54330, or a free one when functionsPort is 0;
   * settle defaults to "usage": TPM settled on input + output, as the gateway settles a request).
   */
  openaiSimulatorOptions?: OpenAISimulatorOptions;
  /** Serve only these functions (default: every function folder). */
  only?: string[];
  /** Another folder of functions (tests). */
  functionsDir?: string;
  log?: (line: string) => void;
}

export interface LocalStack {
  /** Like SUPABASE_URL: functions are at `${functionsUrl}/functions/v1/<name>`. */
  functionsUrl: string;
  serviceKey: string;
  anonKey: string;
  databaseUrl: string;
  /** The local database's version and data directory, when the stack started it. */
  database?: { version: string; dataDir?: string };
  /** Present unless real Google is used. */
  simulator?: GoogleSimulator;
  /** Present unless real OpenAI is used; the functions' OPENAI_BASE_URL is its url. */
  openaiSimulator?: OpenAISimulator;
  functions: FunctionsServer;
  close(): Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = opts.env ?? {};
  const useReal = useRealProvider("google", opts.google, "GOOGLE_API_KEY", env);
  const useRealOpenAI = useRealProvider("openai", opts.openai, "OPENAI_API_KEY", env);

  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`local stack: ${(error as Error).message}`);
      }
    }
    cleanups.length = 0;
  };

  try {
    let databaseUrl = opts.databaseUrl;
    let database: LocalStack["database"];
    if (databaseUrl === undefined) {
      const local = await startLocalDatabase(log);
      cleanups.push(() => local.server.stop());
      databaseUrl = local.server.url;
      database = { version: local.version, ...(local.dataDir ? { dataDir: local.dataDir } : {}) };
      log(`database: PostgreSQL ${local.version} (${local.server.engine}) at ${redactPassword(databaseUrl)}; migrations applied now: ${local.applied.length}`);
    }

    let simulator: GoogleSimulator | undefined;
    const googleEnv: Record<string, string> = {};
    if (!useReal) {
      const ephemeral = opts.functionsPort === 0;
      simulator = await startGoogleSimulator({
        ...opts.simulatorOptions,
        port: opts.simulatorOptions?.port ?? (ephemeral ? 0 : LOCAL_SIMULATOR_PORT),
      });
      cleanups.push(() => simulator!.close());
      googleEnv.GOOGLE_AI_BASE_URL = simulator.url;
      googleEnv.GOOGLE_API_KEY = LOCAL_SIMULATOR_KEY;
      log(`google: offline simulator at ${simulator.url}`);
    } else {
      log("google: the real Gemini API with GOOGLE_API_KEY");
    }

    let openaiSimulator: OpenAISimulator | undefined;
    const openaiEnv: Record<string, string> = {};
    if (!useRealOpenAI) {
      const ephemeral = opts.functionsPort === 0;
      openaiSimulator = await startOpenAISimulator({
        settle: "usage",
        ...opts.openaiSimulatorOptions,
        port: opts.openaiSimulatorOptions?.port ?? (ephemeral ? 0 : LOCAL_OPENAI_SIMULATOR_PORT),
      });
      cleanups.push(() => openaiSimulator!.close());
      openaiEnv.OPENAI_BASE_URL = openaiSimulator.url;
      openaiEnv.OPENAI_API_KEY = LOCAL_OPENAI_SIMULATOR_KEY;
      log(`openai: offline simulator at ${openaiSimulator.url}`);
    } else {
      log("openai: the real OpenAI API with OPENAI_API_KEY");
    }

    // The functions learn their own URL (SUPABASE_URL), so the port is chosen before they start.
    const requested = opts.functionsPort ?? DEFAULT_FUNCTIONS_PORT;
    const port = requested === 0 ? await freePort() : requested;
    const functionsUrl = `http://127.0.0.1:${port}`;
    const functionEnv: Record<string, string> = {
      SUPABASE_URL: functionsUrl,
      // The functions' own least-privileged role, as in production (shared/db/gateway-role.ts).
      SUPABASE_DB_URL: await gatewayRoleUrl(databaseUrl),
      SUPABASE_SERVICE_ROLE_KEY: LOCAL_SERVICE_KEY,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: LOCAL_SERVICE_KEY }),
      SUPABASE_ANON_KEY: LOCAL_ANON_KEY,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: LOCAL_ANON_KEY }),
      ...googleEnv,
      ...openaiEnv,
      ...env,
    };
    // A pooler URL in the parent's environment would point the functions at another database.
    const functions = await startFunctionsServer({
      port,
      env: { GATEWAY_DB_URL: undefined, ...functionEnv },
      keepGoing: true,
      log,
      ...(opts.only === undefined ? {} : { only: opts.only }),
      ...(opts.functionsDir === undefined ? {} : { functionsDir: opts.functionsDir }),
    });
    cleanups.push(() => functions.close());
    const wanted = opts.only ?? ["llm-invoke"];
    if (wanted.includes("llm-invoke") && opts.functionsDir === undefined && !("llm-invoke" in functions.functions)) {
      throw new Error(`llm-invoke failed to start:\n${functions.failed["llm-invoke"] ?? "not found"}`);
    }

    return {
      functionsUrl,
      serviceKey: LOCAL_SERVICE_KEY,
      anonKey: LOCAL_ANON_KEY,
      databaseUrl,
      ...(database === undefined ? {} : { database }),
      ...(simulator === undefined ? {} : { simulator }),
      ...(openaiSimulator === undefined ? {} : { openaiSimulator }),
      functions,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Whether `provider`'s calls go to the provider itself: "real", or "auto" (the default) with its key set
 * in `env` or the environment. "real" without the key is an error.
 */
function useRealProvider(provider: string, mode: ProviderMode = "auto", keyName: string, env: Record<string, string>): boolean {
  const key = env[keyName] ?? process.env[keyName];
  const hasKey = key !== undefined && key.trim() !== "";
  if (mode === "real" && !hasKey) throw new Error(`${provider}: "real" needs ${keyName} (in env or the environment)`);
  return mode === "real" || (mode === "auto" && hasKey);
}

/** postgres://user:secret@host → postgres://user:***@host, for printing. */
export function redactPassword(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, "$1***@");
}

