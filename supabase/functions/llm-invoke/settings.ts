// llm-invoke's settings from the environment (LLM_INVOKE_* tuning).
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
