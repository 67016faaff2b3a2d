// The issue-kaggle-token handler with a fake `mint`: every answer it documents, what reaches the
// database (digests only), and that no input yields a 500 or echoes a secret.
import { createHash } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import {
  createIssueTokenHandler,
  invokeUrl,
  type IssueTokenDeps,
  type MintParams,
  type MintResult,
} from "./handler.ts";
import { toMintResult } from "./store.ts";
import { isKaggleToken, newKaggleToken, redactCredentials } from "../_shared/credentials.ts";

const SECRET = `evegw_cs_${"A".repeat(40)}abc`;
const OTHER_SECRET = `evegw_cs_${"B".repeat(43)}`;
const TOKEN = `evegw_tok_${"t".repeat(43)}`;
const NOW = Date.parse("2026-11-21T10:00:00Z");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

const MINTED: MintResult = {
  ok: true,
  token_id: "6f1c1c52-1b7e-4c1f-9d7a-1f0e2f1b1a11",
  client: "festival-parser-kaggle",
  expires_at: "2026-11-21T11:00:00.123+00:00",
  models: ["gemma-3-27b-it"],
  budget: { max_requests: 200, max_tokens: null },
};

function build(result: MintResult | (() => Promise<MintResult>) = MINTED, overrides: Partial<IssueTokenDeps> = {}) {
  const mint = vi.fn((_p: MintParams) => typeof result === "function" ? result() : Promise.resolve(result));
  const lines: string[] = [];
  const handler = createIssueTokenHandler({
    mint,
    publicUrl: "https://abc.supabase.co",
    newToken: () => TOKEN,
    newRequestId: () => "rid-1",
    log: (l) => lines.push(l),
    now: () => NOW,
    ...overrides,
  });
  return { handler, mint, lines };
}

function post(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request("http://127.0.0.1:9999/issue-kaggle-token", {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });
}

const bearer = (s: string) => ({ authorization: `Bearer ${s}` });

interface Answer {
  [field: string]: unknown;
  error: { code: string; message: string; details?: unknown };
}

async function read(res: Response) {
  const text = await res.text();
  return { text, body: JSON.parse(text) as Answer };
}

describe("issue-kaggle-token: minting", () => {
  it("trades a bearer secret for a token; only digests reach the database", async () => {
    const { handler, mint, lines } = build();
    const res = await handler(post({}, bearer(SECRET)));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const { text, body } = await read(res);
    expect(body).toEqual({
      token: TOKEN,
      token_id: MINTED.ok && MINTED.token_id,
      client: "festival-parser-kaggle",
      expires_at: "2026-11-21T11:00:00.123Z",
      expires_in: 3600,
      models: ["gemma-3-27b-it"],
      budget: { max_requests: 200, max_tokens: null },
      invoke_url: "https://abc.supabase.co/functions/v1/llm-invoke",
      request_id: "rid-1",
    });
    expect(text).not.toContain(SECRET);
    expect(mint).toHaveBeenCalledWith({
      secretHash: sha256(SECRET),
      tokenHash: sha256(TOKEN),
      models: null,
      ttlSeconds: null,
      maxRequests: null,
      maxTokens: null,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("minted token 6f1c1c52");
    expect(lines.join("\n")).not.toMatch(/evegw_(cs|tok)_[A-Za-z0-9]/);
  });

  it("accepts the secret in the body next to supabase-js's default anon bearer, and passes the narrowing on", async () => {
    const { handler, mint } = build();
    const res = await handler(post(
      { client_secret: SECRET, models: ["models/gemma-3-27b"], ttl_seconds: 600, max_requests: 5, max_tokens: 9000 },
      bearer("eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.sig"),
    ));
    expect(res.status).toBe(200);
    expect(mint.mock.calls[0]![0]).toMatchObject({
      secretHash: sha256(SECRET),
      models: ["gemma-3-27b"],
      ttlSeconds: 600,
      maxRequests: 5,
      maxTokens: 9000,
    });
  });

  it("accepts the secret as apikey, and an empty body without a content type", async () => {
    const { handler } = build();
    const req = new Request("http://x/issue-kaggle-token", { method: "POST", headers: { apikey: SECRET } });
    expect((await handler(req)).status).toBe(200);
  });

  it("mints real tokens: prefixed, 256 random bits, all different", () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newKaggleToken()));
    expect(tokens.size).toBe(1000);
    for (const t of tokens) expect(isKaggleToken(t)).toBe(true);
    expect(() => newKaggleToken(() => new Uint8Array(16))).toThrow();
  });
});

describe("issue-kaggle-token: refusals", () => {
  it.each(
    [
      ["invalid_secret", 401],
      ["client_revoked", 401],
    ] as const,
  )("%s -> %i", async (error, status) => {
    const { handler } = build({ ok: false, error });
    const res = await handler(post({}, bearer(SECRET)));
    expect(res.status).toBe(status);
    const { text, body } = await read(res);
    expect(body.error.code).toBe(error);
    expect(body.request_id).toBe("rid-1");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(TOKEN);
  });

  it("over scope: 403 with what is allowed", async () => {
    const allowed = { models: ["gemma-3-27b-it"], max_ttl_seconds: 21600, max_requests: 100, max_tokens: null };
    const { handler } = build({ ok: false, error: "scope_exceeded", allowed });
    const res = await handler(post({ models: ["gemini-2.5-flash"] }, bearer(SECRET)));
    expect(res.status).toBe(403);
    const { body } = await read(res);
    expect(body).toMatchObject({ allowed, error: { code: "scope_exceeded" } });
  });

  it("minting rate limited: 429 with Retry-After (whole seconds, rounded up) and retry_after_ms", async () => {
    const { handler } = build({ ok: false, error: "mint_rate_limited", retry_after_ms: 1_234_567 });
    const res = await handler(post({}, bearer(SECRET)));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("1235");
    const { body } = await read(res);
    expect(body).toMatchObject({
      error: { code: "rate_limited" },
      limit: "mint_rate",
      retry_after_ms: 1_234_567,
    });
  });

  it("missing secret: 401 without asking the database", async () => {
    const { handler, mint } = build();
    const res = await handler(post({}, bearer("eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.sig")));
    expect(res.status).toBe(401);
    expect((await read(res)).body.error.code).toBe("unauthorized");
    expect(mint).not.toHaveBeenCalled();
  });

  it.each([
    ["a token instead of a secret", `evegw_tok_${"x".repeat(43)}`],
    ["a cut secret", SECRET.slice(0, 30)],
    ["a secret with a bad character", SECRET.slice(0, -1) + "!"],
  ])("malformed secret (%s): 401 invalid_secret without asking the database", async (_label, presented) => {
    const { handler, mint } = build();
    const res = await handler(post({ client_secret: presented }));
    expect(res.status).toBe(401);
    const { text, body } = await read(res);
    expect(body.error.code).toBe("invalid_secret");
    expect(text).not.toContain(presented);
    expect(mint).not.toHaveBeenCalled();
  });

  it("two different secrets: 400", async () => {
    const { handler, mint } = build();
    const res = await handler(post({ client_secret: OTHER_SECRET }, bearer(SECRET)));
    expect(res.status).toBe(400);
    const { text, body } = await read(res);
    expect(body.error.code).toBe("invalid_request");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(OTHER_SECRET);
    expect(mint).not.toHaveBeenCalled();
  });

  it.each([
    ["an unknown key", { scopes: ["all"] }],
    ["a secret as an unknown key", { [SECRET]: true }],
    ["a lifetime under a minute", { ttl_seconds: 59 }],
    ["a fractional lifetime", { ttl_seconds: 90.5 }],
    ["a lifetime as a string", { ttl_seconds: "3600" }],
    ["no models", { models: [] }],
    ["models null", { models: null }],
    ["a model that is no model id", { models: ["../etc"] }],
    ["zero requests", { max_requests: 0 }],
    ["a budget beyond int4", { max_tokens: 2 ** 31 }],
  ])("bad input (%s): 400 invalid_request", async (_label, body) => {
    const { handler, mint } = build();
    const res = await handler(post(body, bearer(SECRET)));
    expect(res.status).toBe(400);
    const { text, body: answer } = await read(res);
    expect(answer.error.code).toBe("invalid_request");
    expect(text).not.toContain(SECRET);
    expect(mint).not.toHaveBeenCalled();
  });

  it.each([
    ["not JSON", "{oops", "application/json", 400, "invalid_json"],
    ["a JSON array", "[1]", "application/json", 400, "invalid_json"],
    ["JSON null", "null", "application/json", 400, "invalid_json"],
    ["text/plain", "{}", "text/plain", 415, "unsupported_media_type"],
    ["too large", JSON.stringify({ client_secret: "x".repeat(20_000) }), "application/json", 413, "body_too_large"],
  ])("malformed body (%s)", async (_label, body, contentType, status, code) => {
    const { handler } = build();
    const res = await handler(post(body, { ...bearer(SECRET), "content-type": contentType }));
    expect(res.status).toBe(status);
    expect((await read(res)).body.error.code).toBe(code);
  });

  it("only POST", async () => {
    const { handler } = build();
    const res = await handler(new Request("http://x/issue-kaggle-token", { method: "GET", headers: bearer(SECRET) }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });

  it("a database failure is 503 with Retry-After, logged without the secret or the token", async () => {
    const { handler, lines } = build(() =>
      Promise.reject(
        Object.assign(new Error(`connection to postgres://postgres:pw@db/x failed while sending ${SECRET} ${TOKEN}`), {
          code: "ECONNREFUSED",
        }),
      )
    );
    const res = await handler(post({}, bearer(SECRET)));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    const { text, body } = await read(res);
    expect(body.error.code).toBe("unavailable");
    expect(text).not.toContain(SECRET);
    expect(lines.join("\n")).toContain("database error");
    expect(lines.join("\n")).not.toContain(SECRET);
    expect(lines.join("\n")).not.toContain(TOKEN);
    expect(lines.join("\n")).not.toContain(":pw@");
  });

  it("an unforeseen failure (a bug) is 500 internal_error, like every function's", async () => {
    const { handler } = build(MINTED, {
      newToken: () => {
        throw new Error("no entropy");
      },
    });
    const res = await handler(post({}, bearer(SECRET)));
    expect(res.status).toBe(500);
    expect((await res.json()).error.code).toBe("internal_error");
  });

  it("never answers 500 nor echoes a secret, whatever arrives (randomised)", async () => {
    const { handler } = build();
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const values = [null, 0, -1, 1.5, 60, 43200, 43201, 2 ** 40, "", "x", SECRET, [], [SECRET], {}, { a: 1 }, true];
    const keys = ["client_secret", "models", "ttl_seconds", "max_requests", "max_tokens", "extra", SECRET];
    for (let i = 0; i < 300; i++) {
      const body: Record<string, unknown> = {};
      for (let k = Math.floor(rnd() * 4); k > 0; k--) body[pick(keys)] = pick(values);
      const headers: Record<string, string> = { "content-type": pick(["application/json", "text/plain", ""]) };
      if (rnd() < 0.7) {
        headers.authorization = pick([`Bearer ${SECRET}`, `Bearer ${OTHER_SECRET}`, "Bearer x", "Basic abc", SECRET]);
      }
      const method = pick(["POST", "POST", "POST", "PUT", "GET"]);
      const res = await handler(
        new Request("http://x/issue-kaggle-token", {
          method,
          headers,
          ...(method === "GET" || rnd() < 0.1 ? {} : { body: rnd() < 0.1 ? "{]" : JSON.stringify(body) }),
        }),
      );
      expect([200, 400, 401, 403, 405, 413, 415, 429]).toContain(res.status);
      const text = await res.text();
      if (res.status !== 200) {
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(OTHER_SECRET);
      }
    }
  });
});

describe("invoke_url", () => {
  const req = (headers: Record<string, string> = {}) =>
    new Request("http://127.0.0.1:54321/issue-kaggle-token", { method: "POST", headers });

  it("comes from the configured public URL, whatever its suffix", () => {
    for (const base of ["https://abc.supabase.co", "https://abc.supabase.co/", "https://abc.supabase.co/rest/v1/"]) {
      expect(invokeUrl(base, req())).toBe("https://abc.supabase.co/functions/v1/llm-invoke");
    }
  });

  it("falls back to the request's origin, honouring forwarding headers", () => {
    expect(invokeUrl(undefined, req())).toBe("http://127.0.0.1:54321/functions/v1/llm-invoke");
    expect(invokeUrl("", req({ "x-forwarded-host": "gw.example.org", "x-forwarded-proto": "https" })))
      .toBe("https://gw.example.org/functions/v1/llm-invoke");
  });
});

describe("store: the RPC's answer", () => {
  it("accepts each documented answer and rejects anything else", () => {
    expect(toMintResult(MINTED)).toEqual(MINTED);
    expect(toMintResult(JSON.stringify({ ok: false, error: "invalid_secret" }))).toEqual({
      ok: false,
      error: "invalid_secret",
    });
    expect(toMintResult({ ok: false, error: "mint_rate_limited", retry_after_ms: 5 }))
      .toEqual({ ok: false, error: "mint_rate_limited", retry_after_ms: 5 });
    expect(() => toMintResult(null)).toThrow();
    expect(() => toMintResult({ ok: true, token_id: 1 })).toThrow();
    expect(() => toMintResult({ ok: false, error: "surprise" })).toThrow();
  });
});

describe("redactCredentials", () => {
  it("hides secrets and tokens, whole or cut", () => {
    expect(redactCredentials(`a ${SECRET} b ${TOKEN} c evegw_tok_abc`)).toBe("a [redacted] b [redacted] c [redacted]");
  });
});
