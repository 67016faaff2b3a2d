// The whole gateway on one machine, no Docker, no provider key: PostgreSQL (migrations + seed), the
// offline Google, OpenAI and Anthropic simulators (each unless a real key for it is configured), and every
// Edge Function served at http://127.0.0.1:54321/functions/v1/<name> — the paths `supabase functions serve` uses.
// `npm start` (scripts/start.ts) runs it; tests call startLocalStack({ functionsPort: 0, databaseUrl }).
//
// Documented local defaults (never use them anywhere else):
//   service key   sb_secret_eve_local_dev_only   (SUPABASE_SERVICE_ROLE_KEY and SUPABASE_SECRET_KEYS)
//   anon key      sb_publishable_eve_local_dev_only
//   functions     http://127.0.0.1:54321          (SUPABASE_URL for callers)
//   database      postgres://postgres@127.0.0.1:54322/postgres (trust auth on loopback; data: scripts/local-db.ts)
//   simulator     http://127.0.0.1:54329, the seeded key's GOOGLE_API_KEY = sim-key-a1
//   openai sim    http://127.0.0.1:54330 (OPENAI_BASE_URL), the seeded key's OPENAI_API_KEY = sk-sim-a1
//   anthropic sim http://127.0.0.1:54331 (ANTHROPIC_BASE_URL), the local key row's ANTHROPIC_API_KEY = sk-ant-sim-a1
import { gatewayRoleUrl } from "../shared/db/gateway-role.ts";
import { connect } from "../shared/db/migrate.ts";
import { startLocalDatabase } from "./local-db.ts";
import { freePort } from "../shared/free-port.ts";
import { DEFAULT_FUNCTIONS_PORT, type FunctionsServer, startFunctionsServer } from "./serve-functions.ts";
import { type GoogleSimulator, type SimulatorOptions, startGoogleSimulator } from "../shared/google-sim/server.ts";
import { type AnthropicSimulator, type AnthropicSimulatorOptions, startAnthropicSimulator } from "../shared/anthropic-sim/server.ts";
import { type OpenAISimulator, type OpenAISimulatorOptions, startOpenAISimulator } from "../shared/openai-sim/server.ts";

export const LOCAL_SERVICE_KEY = "sb_secret_eve_local_dev_only";
export const LOCAL_ANON_KEY = "sb_publishable_eve_local_dev_only";
export const LOCAL_SIMULATOR_PORT = 54329;
/** The simulator's dev key handed to the seeded key row (env var GOOGLE_API_KEY). */
export const LOCAL_SIMULATOR_KEY = "sim-key-a1";
export const LOCAL_OPENAI_SIMULATOR_PORT = 54330;
/** The OpenAI simulator's dev key handed to the seeded OpenAI key row (env var OPENAI_API_KEY; organization org-sim-a). */
export const LOCAL_OPENAI_SIMULATOR_KEY = "sk-sim-a1";
export const LOCAL_ANTHROPIC_SIMULATOR_PORT = 54331;
/** The Anthropic simulator's dev key (organization org-sim-a), handed to the local Anthropic key row (ANTHROPIC_API_KEY). */
export const LOCAL_ANTHROPIC_SIMULATOR_KEY = "sk-ant-sim-a1";
/**
 * The seed has no Anthropic key row (the owner adds the organization's): the local stack adds this one,
 * secret ANTHROPIC_API_KEY, to its own database when that has no Anthropic key row yet.
 */
export const LOCAL_ANTHROPIC_KEY_ALIAS = "anthropic-local";

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
  /** The same for Anthropic, with ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL. */
  anthropic?: ProviderMode;
  /**
   * Add the key row LOCAL_ANTHROPIC_KEY_ALIAS (secret ANTHROPIC_API_KEY) when the database has no
   * Anthropic key row. Default: only to the stack's own database (no `databaseUrl`, as `npm start`);
   * a caller's database keeps the key rows its caller wrote.
   */
  anthropicKeyRow?: boolean;
  /** Extra environment for the functions (wins over everything else): e.g. each key row's secret. */
  env?: Record<string, string>;
  /** Passed to the simulator (port defaults to 54329, or a free one when functionsPort is 0). */
  simulatorOptions?: SimulatorOptions;
  /**
   * Passed to the OpenAI simulator (port defaults to 54330, or a free one when functionsPort is 0;
   * settle defaults to "usage": TPM settled on input + output, as the gateway settles a request).
   */
  openaiSimulatorOptions?: OpenAISimulatorOptions;
  /** Passed to the Anthropic simulator (port defaults to 54331, or a free one when functionsPort is 0). */
  anthropicSimulatorOptions?: AnthropicSimulatorOptions;
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
  /** Present unless real Anthropic is used; the functions' ANTHROPIC_BASE_URL is its url. */
  anthropicSimulator?: AnthropicSimulator;
  functions: FunctionsServer;
  close(): Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = opts.env ?? {};
  const useReal = useRealProvider("google", opts.google, "GOOGLE_API_KEY", env);
  const useRealOpenAI = useRealProvider("openai", opts.openai, "OPENAI_API_KEY", env);
  const useRealAnthropic = useRealProvider("anthropic", opts.anthropic, "ANTHROPIC_API_KEY", env);

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

    let anthropicSimulator: AnthropicSimulator | undefined;
    const anthropicEnv: Record<string, string> = {};
    if (!useRealAnthropic) {
      const ephemeral = opts.functionsPort === 0;
      anthropicSimulator = await startAnthropicSimulator({
        ...opts.anthropicSimulatorOptions,
        port: opts.anthropicSimulatorOptions?.port ?? (ephemeral ? 0 : LOCAL_ANTHROPIC_SIMULATOR_PORT),
      });
      cleanups.push(() => anthropicSimulator!.close());
      anthropicEnv.ANTHROPIC_BASE_URL = anthropicSimulator.url;
      anthropicEnv.ANTHROPIC_API_KEY = LOCAL_ANTHROPIC_SIMULATOR_KEY;
      log(`anthropic: offline simulator at ${anthropicSimulator.url}`);
    } else {
      log("anthropic: the real Anthropic API with ANTHROPIC_API_KEY");
    }
    if (opts.anthropicKeyRow ?? opts.databaseUrl === undefined) await addLocalAnthropicKey(databaseUrl, log);

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
      ...anthropicEnv,
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
      ...(anthropicSimulator === undefined ? {} : { anthropicSimulator }),
      functions,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The key row LOCAL_ANTHROPIC_KEY_ALIAS, unless the database already has an Anthropic key row. */
async function addLocalAnthropicKey(databaseUrl: string, log: (line: string) => void): Promise<void> {
  const sql = connect(databaseUrl, { max: 1, connect_timeout: 5 });
  try {
    const added = await sql`
      insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, is_active, priority, notes)
      select ${LOCAL_ANTHROPIC_KEY_ALIAS}, 'anthropic', 'ANTHROPIC_API_KEY', 'org-default', true, 100,
             'Added by the local stack (scripts/local-stack.ts): the local ANTHROPIC_API_KEY.'
      where not exists (select 1 from public.google_ai_api_keys k where k.serves_provider = 'anthropic')
      on conflict (key_alias) do nothing`;
    if (added.count > 0) log(`anthropic: key row ${LOCAL_ANTHROPIC_KEY_ALIAS} added (secret ANTHROPIC_API_KEY)`);
  } catch (error) {
    // A database that is down on purpose: the functions answer 503 themselves (see gatewayRoleUrl).
    log(`anthropic: no local key row added: ${(error as Error).message}`);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
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

