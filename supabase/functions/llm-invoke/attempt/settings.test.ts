import { describe, expect, it } from "vitest";
import { invokeOptionsFromEnv, requestLimitsFromEnv } from "./settings.ts";
import { DEFAULT_INVOKE_OPTIONS } from "./settings.ts";
import { DEFAULT_REQUEST_LIMITS } from "../contract.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

describe("invokeOptionsFromEnv / requestLimitsFromEnv", () => {
  it("keeps the defaults without variables, and for invalid values", () => {
    expect(invokeOptionsFromEnv(envOf({}))).toEqual(DEFAULT_INVOKE_OPTIONS);
    expect(invokeOptionsFromEnv(envOf({ LLM_INVOKE_ATTEMPT_TIMEOUT_MS: "-5", LLM_INVOKE_BUDGET_MS: "abc" })))
      .toEqual(DEFAULT_INVOKE_OPTIONS);
    expect(requestLimitsFromEnv(envOf({}), DEFAULT_INVOKE_OPTIONS)).toEqual(DEFAULT_REQUEST_LIMITS);
  });

  it("reads the tuning variables and never lets a wait exceed the budget", () => {
    const options = invokeOptionsFromEnv(
      envOf({ LLM_INVOKE_ATTEMPT_TIMEOUT_MS: "1500", LLM_INVOKE_BUDGET_MS: "20000" }),
    );
    expect(options).toMatchObject({ attemptTimeoutMs: 1500, budgetMs: 20000 });
    const limits = requestLimitsFromEnv(envOf({ LLM_INVOKE_MAX_WAIT_MS: "90000" }), options);
    expect(limits.maxWaitBudgetMs).toBe(20000);
    expect(limits.defaultMaxWaitMs).toBe(20000);
  });
});
