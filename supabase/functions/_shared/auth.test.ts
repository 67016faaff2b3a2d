import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { authenticate, callerLabel, constantTimeEqual, presentedCredentials, serviceKeysFromEnv } from "./auth.ts";
import { GatewayError } from "./errors.ts";

const LEGACY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig";
const SECRET = "sb_secret_local_0123456789";
const KEYS = [LEGACY, SECRET];

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    if (e instanceof GatewayError) return e.code;
    throw e;
  }
}

describe("serviceKeysFromEnv", () => {
  it("takes the legacy key and every value of SUPABASE_SECRET_KEYS", () => {
    const env: Record<string, string> = {
      SUPABASE_SERVICE_ROLE_KEY: LEGACY,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET, ci: "sb_secret_ci", bad: 5 }),
    };
    expect(serviceKeysFromEnv((n) => env[n])).toEqual([LEGACY, SECRET, "sb_secret_ci"]);
  });

  it("drops blank keys and survives malformed JSON", () => {
    const env: Record<string, string> = { SUPABASE_SERVICE_ROLE_KEY: "  ", SUPABASE_SECRET_KEYS: "{not json" };
    expect(serviceKeysFromEnv((n) => env[n])).toEqual([]);
    expect(serviceKeysFromEnv(() => undefined)).toEqual([]);
  });
});

describe("presentedCredentials", () => {
  it("reads Bearer (any case) and apikey, without duplicates", () => {
    const h = new Headers({ authorization: `bearer ${SECRET}`, apikey: SECRET });
    expect(presentedCredentials(h)).toEqual([SECRET]);
    const two = new Headers({ authorization: "Bearer a", apikey: "b" });
    expect(presentedCredentials(two)).toEqual(["a", "b"]);
    expect(presentedCredentials(new Headers({ authorization: "Basic a" }))).toEqual([]);
  });
});

describe("authenticate", () => {
  it("accepts the legacy service role key as a bearer token", async () => {
    const caller = await authenticate(new Headers({ authorization: `Bearer ${LEGACY}` }), KEYS);
    expect(caller).toEqual({ kind: "service", label: "service" });
  });

  it("accepts a secret key in the apikey header, with the caller's label", async () => {
    const caller = await authenticate(new Headers({ apikey: SECRET, "x-caller": "eve-bot-prod" }), KEYS);
    expect(caller).toEqual({ kind: "service", label: "eve-bot-prod" });
  });

  it("accepts the service key in apikey even when Authorization carries something else", async () => {
    const h = new Headers({ authorization: "Bearer some-user-jwt", apikey: SECRET });
    expect((await authenticate(h, KEYS)).kind).toBe("service");
  });

  it.each<[string, Record<string, string>]>([
    ["no credential", {}],
    ["a wrong key", { authorization: "Bearer sb_secret_wrong" }],
    ["a key prefix", { apikey: SECRET.slice(0, -1) }],
    ["a key with a suffix", { apikey: `${SECRET}x` }],
    ["an empty bearer", { authorization: "Bearer " }],
    ["a malformed token", { authorization: "Bearer evegw_tok_short" }],
    ["a token one character too long", { authorization: `Bearer evegw_tok_${"a".repeat(44)}` }],
    ["the old eve_tok_ prefix", { authorization: `Bearer eve_tok_${"a".repeat(43)}` }],
    ["a client secret (only issue-kaggle-token takes those)", { authorization: `Bearer evegw_cs_${"a".repeat(43)}` }],
    ["a token with bad characters", { authorization: `Bearer evegw_tok_${"a".repeat(40)}'--` }],
  ])("rejects %s", async (_name, headers) => {
    expect(await codeOf(authenticate(new Headers(headers), KEYS))).toBe("unauthorized");
  });

  it("says so when the Authorization scheme is not Bearer", async () => {
    const error = await authenticate(new Headers({ authorization: `Basic ${btoa("u:p")}` }), KEYS).catch((e) => e);
    expect((error as Error).message).toMatch(/^Unsupported Authorization scheme/);
  });

  it("never lets an empty key list or blank credential through", async () => {
    expect(await codeOf(authenticate(new Headers({ apikey: "x" }), []))).toBe("unauthorized");
    expect(await codeOf(authenticate(new Headers({ apikey: " " }), [""]))).toBe("unauthorized");
  });

  it("reduces a scoped token to its sha256 and keeps the token itself out of the result", async () => {
    const token = `evegw_tok_${"A1b2".repeat(10)}xyz`;
    const caller = await authenticate(new Headers({ authorization: `Bearer ${token}`, "x-caller": "kaggle-nb" }), KEYS);
    expect(caller).toEqual({
      kind: "token",
      tokenHash: createHash("sha256").update(token).digest("hex"),
      label: "kaggle-nb",
    });
    expect(JSON.stringify(caller)).not.toContain(token);
  });

  it("does not echo the presented credential in its error", async () => {
    try {
      await authenticate(new Headers({ apikey: "sb_secret_guess" }), KEYS);
    } catch (e) {
      expect((e as Error).message).not.toContain("sb_secret_guess");
    }
  });
});

describe("callerLabel", () => {
  it("keeps safe names and replaces the rest", () => {
    expect(callerLabel("kaggle:fest-parser.v2")).toBe("kaggle:fest-parser.v2");
    expect(callerLabel("bot prod'; drop")).toBe("bot_prod___drop");
    expect(callerLabel("x".repeat(100))).toHaveLength(64);
    expect(callerLabel("   ")).toBe("service");
    expect(callerLabel("<>")).toBe("service");
    expect(callerLabel(null)).toBe("service");
  });

  it("never yields a name in the clients' namespace", () => {
    expect(callerLabel("client:fest-parser")).toBe("service:client:fest-parser");
    expect(callerLabel("CLIENT:x")).toBe("service:CLIENT:x");
    expect(callerLabel("bot:client:x")).toBe("bot:client:x");
  });
});

describe("constantTimeEqual", () => {
  it("is plain equality in effect", async () => {
    expect(await constantTimeEqual("abc", "abc")).toBe(true);
    expect(await constantTimeEqual("abc", "abd")).toBe(false);
    expect(await constantTimeEqual("abc", "abcd")).toBe(false);
    expect(await constantTimeEqual("", "")).toBe(true);
  });
});
