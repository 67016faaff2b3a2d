// llm-invoke's settings from the environment (LLM_INVOKE_* tuning).
// Pure (the environment is passed in), so vitest covers it; index.ts passes Deno.env.get.
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from "../contract.ts";

export interface InvokeOptions {
  /** Deadline of one call to a provider. */
  attemptTimeoutMs: number;
  /** Whole budget of one invocation (waiting + attempts), under the function's wall clock. */
  budgetMs: number;
  /** Cooldown after a 429 that names no wait. */
  defaultCooldownMs: number;
  /** First backoff after a retryable failure; doubles per attempt. */
  backoffBaseMs: number;
  /** Upper bound of the random delay added to a backoff between attempts. */
  jitterMs: number;
  /** A cached model row older than this is refreshed in the background; the active keys are kept this long. */
  capabilitiesTtlMs: number;
}

export const DEFAULT_INVOKE_OPTIONS: InvokeOptions = {
  attemptTimeoutMs: 45_000,
  budgetMs: 140_000, // Free plan wall clock is 150 s
  defaultCooldownMs: 30_000,
  backoffBaseMs: 250,
  jitterMs: 250,
  capabilitiesTtlMs: 30_000,
};

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
