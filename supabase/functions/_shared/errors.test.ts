// The one table of error codes for people (docs/errors.md) must say what the code says: every code
// of ERROR_STATUS, with its status, and nothing else.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_STATUS, GatewayError, rateLimited, retryCannotCure } from "./errors.ts";

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/errors.md");

describe("error codes", () => {
  it("docs/errors.md lists exactly the codes of ERROR_STATUS, each with its status", () => {
    const rows = [...readFileSync(DOC, "utf8").matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)];
    expect(Object.fromEntries(rows.map((m) => [m[1], Number(m[2])]))).toEqual(ERROR_STATUS);
    expect(rows).toHaveLength(Object.keys(ERROR_STATUS).length);
  });

  it("a GatewayError carries its code's status and a body of code, message and details", () => {
    const e = new GatewayError("scope_exceeded", "Too much.", { extra: { allowed: { models: [] } } });
    expect(e.status).toBe(403);
    expect(e.toBody()).toEqual({ allowed: { models: [] }, error: { code: "scope_exceeded", message: "Too much." } });
  });

  it("rateLimited rounds Retry-After up to whole seconds and omits it when no time is known", () => {
    expect(rateLimited("rpm", 1_001).headers).toEqual({ "Retry-After": "2" });
    expect(rateLimited("token_budget", null).headers).toEqual({});
    expect(rateLimited("rpm", 10).extra).toEqual({ limit: "rpm", retry_after_ms: 10 });
  });

  it("says a retry cannot cure money, a day, a budget, a long rest and the request's own 4xx; waiting may cure the rest", () => {
    const withCause = (error: GatewayError, cause: string) =>
      new GatewayError(error.code, error.message, { extra: { ...error.extra, cause }, headers: error.headers });
    const cannot = [
      withCause(rateLimited("cooldown", 3_600_000), "credits_depleted"),
      withCause(rateLimited("upstream", null), "monthly_cap"),
      withCause(rateLimited("cooldown", 30_000), "billing_cap"),
      rateLimited("rpd", 5_000_000),
      rateLimited("token_budget", null),
      rateLimited("client_budget", 40_000),
      withCause(rateLimited("cooldown", 900_000), "spend_cap"),
      new GatewayError("invalid_request", "bad"),
      new GatewayError("unknown_model", "no such model"),
      new GatewayError("token_expired", "old"),
      new GatewayError("model_withdrawn", "gone"),
    ];
    const may = [
      withCause(rateLimited("rpm", 61_500), "window_full"),
      withCause(rateLimited("cooldown", 12_000), "minute"),
      rateLimited("tpm", null),
      new GatewayError("request_in_progress", "busy"),
      new GatewayError("unavailable", "down"),
      new GatewayError("upstream_error", "5xx"),
      new GatewayError("upstream_timeout", "slow"),
    ];
    expect(cannot.map(retryCannotCure)).toEqual(cannot.map(() => true));
    expect(may.map(retryCannotCure)).toEqual(may.map(() => false));
  });
});
