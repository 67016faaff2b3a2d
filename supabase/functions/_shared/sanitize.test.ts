import { describe, expect, it } from "vitest";
import { REDACTED, sanitize, sanitizeError } from "./sanitize.ts";

const GOOGLE_KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q";
const SB_SECRET = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE";

describe("sanitize", () => {
  it.each([
    ["a Google key", `request failed for key ${GOOGLE_KEY} (400)`, GOOGLE_KEY],
    ["a Google key in a query string", `GET /v1beta/models?key=${GOOGLE_KEY}&alt=sse`, GOOGLE_KEY],
    [
      "an OpenAI key",
      "Incorrect API key provided: sk-proj-AbCdEf0123456789xyz. Find yours",
      "sk-proj-AbCdEf0123456789xyz",
    ],
    [
      "an OpenAI service account key",
      "key sk-svcacct-0123456789abcdef_XYZ rejected",
      "sk-svcacct-0123456789abcdef_XYZ",
    ],
    ["a Supabase secret key", `apikey header was ${SB_SECRET}`, SB_SECRET],
    ["a JWT", `service role ${JWT} rejected`, JWT],
    ["a bearer token", "Authorization: Bearer abc.def-123_opaque", "abc.def-123_opaque"],
    ["a scoped token", "token evegw_tok_0123456789abcdefABCDEF not found", "evegw_tok_0123456789abcdefABCDEF"],
    ["a client secret", "secret evegw_cs_0123456789abcdef-_ABCDEF leaked", "evegw_cs_0123456789abcdef-_ABCDEF"],
    ["a DB password", "connect postgres://postgres:hunter2pass@db.local:5432/postgres", "hunter2pass"],
    ["a JSON secret field", '{"apiKey":"sim-local-key-1","model":"gemma"}', "sim-local-key-1"],
    ["a key= assignment", "GOOGLE_API_KEY=plainvalue123 in env", "plainvalue123"],
    ["a password: field", "password: correct-horse", "correct-horse"],
  ])("redacts %s", (_name, input, secret) => {
    const out = sanitize(input);
    expect(out).not.toContain(secret);
    expect(out).toContain(REDACTED);
  });

  it("keeps ordinary Google error text readable", () => {
    const text =
      "Resource has been exhausted. Please retry in 10.689924287s. quotaId GenerateRequestsPerDayPerProjectPerModel-FreeTier";
    expect(sanitize(text)).toBe(text);
    expect(sanitize("API key not valid. Please pass a valid API key.")).toBe(
      "API key not valid. Please pass a valid API key.",
    );
    expect(sanitize('{"promptTokenCount": 12, "totalTokens": 30}')).toBe(
      '{"promptTokenCount": 12, "totalTokens": 30}',
    );
  });

  it("redacts explicitly named secrets that match no pattern", () => {
    const out = sanitize("upstream said: bad key sim-key-7", { secrets: ["sim-key-7"] });
    expect(out).toBe(`upstream said: bad key ${REDACTED}`);
  });

  it("caps the length after redacting, so a cut cannot leave half a key", () => {
    const out = sanitize(`${GOOGLE_KEY} ${"x".repeat(5000)}`, { maxLength: 40 });
    expect(out.length).toBe(40);
    expect(out.startsWith(REDACTED)).toBe(true);
    expect(out.endsWith("[truncated]")).toBe(true);
    expect(out).not.toContain("AIza");
  });

  it("removes NUL bytes that Postgres text cannot store", () => {
    expect(sanitize("a\u0000b\nc")).toBe("ab\nc");
  });
});

describe("sanitizeError", () => {
  it("uses name and message of an Error and never its stack", () => {
    const error = new TypeError(`fetch failed for ${GOOGLE_KEY}`);
    const out = sanitizeError(error);
    expect(out).toBe(`TypeError: fetch failed for ${REDACTED}`);
    expect(out).not.toContain("at ");
  });

  it("handles non-Error values", () => {
    expect(sanitizeError({ token: "x" })).toBe(`{"token":"${REDACTED}"}`);
    expect(sanitizeError(42)).toBe("42");
  });
});

describe("sanitize on hostile input", () => {
  // Inputs that made the old unbounded patterns backtrack quadratically. The output must stay
  // bounded and every pattern must finish: the guard is generous (a quadratic run of 1 MB took ~30 s).
  const megabyte = 1024 * 1024;
  const inputs: Array<[string, string]> = [
    ["url-password shape", "a://b:".repeat(megabyte / 6)],
    ["letter run before key=", "a".repeat(megabyte) + "key"],
    ["key-token assignments", "keykeykey=".repeat(megabyte / 10)],
    ["jwt-looking run", "eyJ".repeat(megabyte / 3)],
    ["bearer spaces", "bearer" + " ".repeat(megabyte)],
    ["json field names", '"aaaa'.repeat(megabyte / 5)],
  ];
  it.each(inputs)("%s: bounded output", (_name, text) => {
    const started = performance.now();
    const out = sanitize(text, { maxLength: 200 });
    expect(out.length).toBeLessThanOrEqual(200);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("still redacts a secret that straddles the cut", () => {
    const text = "x".repeat(190) + " sb_secret_" + "s".repeat(40);
    expect(sanitize(text, { maxLength: 200 })).not.toContain("sb_secret_ss");
  });
});
