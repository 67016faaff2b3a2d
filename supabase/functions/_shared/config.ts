// llm-invoke's settings from the environment, and the one place that reads a Google key.
// Pure (the environment is passed in), so vitest covers it; index.ts passes Deno.env.get.
import { DEFAULT_INVOKE_OPTIONS, type InvokeOptions } from "./invoke.ts";
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from "./request.ts";

type Env = (name: string) => string | undefined;

/** Optional tuning, in milliseconds. Unset or invalid values keep the defaults. */
export const TUNING_VARIABLES = {
  LLM_INVOKE_ATTEMPT_TIMEOUT_MS: "attemptTimeoutMs",
  LLM_INVOKE_BUDGET_MS: "budgetMs",
  LLM_INVOKE_DEFAULT_COOLDOWN_MS: "defaultCooldownMs",
  LLM_INVOKE_BACKOFF_BASE_MS: "backoffBaseMs",
} as const satisfies Record<string, keyof InvokeOptions>;

function positiveInt(raw: string | undefined, max: number): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : undefined;
}

export function invokeOptionsFromEnv(get: Env): InvokeOptions {
  const options: InvokeOptions = { ...DEFAULT_INVOKE_OPTIONS };
  for (const [name, field] of Object.entries(TUNING_VARIABLES)) {
    const value = positiveInt(get(name), 3_600_000);
    if (value !== undefined) options[field] = value;
  }
  return options;
}

/** LLM_INVOKE_MAX_WAIT_MS caps a caller's max_wait_ms (default 60 s); never above the budget. */
export function requestLimitsFromEnv(get: Env, options: InvokeOptions): RequestLimits {
  const cap = positiveInt(get("LLM_INVOKE_MAX_WAIT_MS"), 3_600_000) ?? DEFAULT_REQUEST_LIMITS.maxWaitBudgetMs;
  const maxWaitBudgetMs = Math.min(cap, options.budgetMs);
  return {
    ...DEFAULT_REQUEST_LIMITS,
    maxWaitBudgetMs,
    defaultMaxWaitMs: Math.min(DEFAULT_REQUEST_LIMITS.defaultMaxWaitMs, maxWaitBudgetMs),
  };
}

// Secrets that are never a Google key, whatever a key row says: the function must not send the
// project's own credentials to the Google endpoint (or to whatever GOOGLE_AI_BASE_URL names).
const NOT_A_GOOGLE_KEY = /^(SUPABASE_|GATEWAY_DB_|DATABASE_URL$|PG[A-Z]*$|DENO_|PATH$|HOME$)/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * The Google key named by a key row's env_var_name, or undefined when the secret is not set or the
 * name is one the gateway refuses to treat as a Google key (then the reservation is released and
 * another key is tried).
 */
export function googleKeyReader(get: Env): (envVarName: string) => string | undefined {
  return (name) => {
    if (!ENV_NAME.test(name) || NOT_A_GOOGLE_KEY.test(name)) return undefined;
    const value = get(name)?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
}
