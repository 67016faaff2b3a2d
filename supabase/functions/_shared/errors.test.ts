// The one table of error codes for people (docs/errors.md) must say what the code says: every code
// of ERROR_STATUS, with its status, and nothing else.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_STATUS, GatewayError, rateLimited } from "./errors.ts";

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
});
