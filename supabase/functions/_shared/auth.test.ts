import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  authenticate,
  callerLabel,
  type Digest,
  presentedCredentials,
  ServiceKeys,
  serviceKeysFromEnv,
  serviceKeyValuesFromEnv,
} from "./auth.ts";
import { GatewayError } from "./errors.ts";

const LEGACY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig";
const SECRET = "sb_secret_local_0123456789";
const KEY_VALUES = [LEGACY, SECRET];
const KEYS = new ServiceKeys(KEY_VALUES);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    if (e instanceof GatewayError) return e.code;
    throw e;
  }
}

/** SHA-256 that counts the texts it digests, so a test can say how much hashing a request cost. */
function countingDigest(): { digest: Digest; hashed: string[] } {
  const hashed: string[] = [];
  const digest: Digest = (text) => {
    hashed.push(text);
    return Promise.resolve(new Uint8Array(createHash("sha256").update(text).digest()));
  };
  return { digest, hashed };
}

describe("serviceKeyValuesFromEnv", () => {
  it("takes the legacy key and every value of SUPABASE_SECRET_KEYS", () => {
    const env: Record<string, string> = {
      SUPABASE_SERVICE_ROLE_KEY: LEGACY,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET, ci: "sb_secret_ci", bad: 5 }),
    };
    expect(serviceKeyValuesFromEnv((n) => env[n])).toEqual([LEGACY, SECRET, "sb_secret_ci"]);
  });

  it("drops blank keys and survives malformed JSON", () => {
    const env: Record<string, string> = { SUPABASE_SERVICE_ROLE_KEY: "  ", SUPABASE_SECRET_KEYS: "{not json" };
    expect(serviceKeyValuesFromEnv((n) => env[n])).toEqual([]);
    expect(serviceKeyValuesFromEnv(() => undefined)).toEqual([]);
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
    expect(await codeOf(authenticate(new Headers({ apikey: "x" }), new ServiceKeys([])))).toBe("unauthorized");
    expect(await codeOf(authenticate(new Headers({ apikey: " " }), new ServiceKeys([""])))).toBe("unauthorized");
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

describe("ServiceKeys: the keys are hashed once per worker", () => {
  const env: Record<string, string> = {
    SUPABASE_SERVICE_ROLE_KEY: LEGACY,
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET, ci: "sb_secret_ci" }),
  };

  it("hashes nothing at boot, every key once on the first request, and only the credential after", async () => {
    const { digest, hashed } = countingDigest();
    const keys = serviceKeysFromEnv((n) => env[n], digest);
    expect(keys.count).toBe(3);
    expect(hashed).toEqual([]);

    await authenticate(new Headers({ apikey: SECRET }), keys);
    expect(hashed.filter((t) => t === LEGACY || t === "sb_secret_ci")).toHaveLength(2);
    expect(hashed).toHaveLength(4); // three keys + the presented credential

    for (let i = 0; i < 50; i++) {
      hashed.length = 0;
      const presented = i % 2 === 0 ? "sb_secret_wrong" : LEGACY;
      const code = await codeOf(authenticate(new Headers({ authorization: `Bearer ${presented}` }), keys));
      expect(code).toBe(i % 2 === 0 ? "unauthorized" : "ok");
      expect(hashed).toEqual([presented]); // one digest per request, whatever the number of keys
    }
  });

  it("hashes the keys once when the first requests arrive together", async () => {
    const { digest, hashed } = countingDigest();
    const keys = new ServiceKeys(KEY_VALUES, digest);
    const callers = await Promise.all(
      Array.from({ length: 16 }, () => authenticate(new Headers({ apikey: LEGACY }), keys)),
    );
    expect(callers.every((c) => c.kind === "service")).toBe(true);
    expect(hashed.filter((t) => t === SECRET)).toHaveLength(1);
    expect(hashed.filter((t) => t === LEGACY)).toHaveLength(1 + 16); // the key once, each request's credential once
  });

  it("hashes a scoped token once: the same digest is compared and becomes the token hash", async () => {
    const { digest, hashed } = countingDigest();
    const keys = new ServiceKeys(KEY_VALUES, digest);
    await authenticate(new Headers({ apikey: SECRET }), keys); // keys hashed
    hashed.length = 0;
    const token = `evegw_tok_${"A1b2".repeat(10)}xyz`;
    const caller = await authenticate(new Headers({ authorization: `Bearer ${token}` }), keys);
    expect(caller).toMatchObject({ kind: "token", tokenHash: createHash("sha256").update(token).digest("hex") });
    expect(hashed).toEqual([token]);
  });

  it("matches by value against every configured key, whichever header carries it", async () => {
    const many = Array.from({ length: 5 }, (_, i) => `sb_secret_key_${i}_${"z".repeat(i * 7)}`);
    const keys = new ServiceKeys(many);
    for (const key of many) {
      // A fresh string with the same value, so identity plays no part.
      const copy = [...key].join("");
      expect((await authenticate(new Headers({ "x-goog-api-key": copy }), keys)).kind).toBe("service");
      expect(await codeOf(authenticate(new Headers({ apikey: `${key}x` }), keys))).toBe("unauthorized");
      expect(await codeOf(authenticate(new Headers({ apikey: key.slice(0, -1) }), keys))).toBe("unauthorized");
    }
  });

  it("drops blank keys, so an empty value never matches", async () => {
    const keys = new ServiceKeys(["", "  ", SECRET]);
    expect(keys.count).toBe(1);
    expect(await codeOf(authenticate(new Headers({ authorization: "Bearer " }), keys))).toBe("unauthorized");
  });

  it("retries the keys' hashing after a failed digest instead of locking every later request out", async () => {
    let fail = true;
    const keys = new ServiceKeys(KEY_VALUES, (text) => {
      if (fail && text === SECRET) return Promise.reject(new Error("digest unavailable"));
      return Promise.resolve(new Uint8Array(createHash("sha256").update(text).digest()));
    });
    await expect(authenticate(new Headers({ apikey: LEGACY }), keys)).rejects.toThrow("digest unavailable");
    fail = false;
    expect((await authenticate(new Headers({ apikey: LEGACY }), keys)).kind).toBe("service");
  });
});
