// issue-kaggle-token as deployed: the real function under Deno (scripts/serve-functions.ts) over a
// real migrated database. Secrets and tokens cross the wire only; the database holds digests.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FunctionsServer, startFunctionsServer } from "../../scripts/serve-functions.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { echoDatabaseTrouble, TEST_STACK_DB_ENV } from "../support/stack-env.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
let db: TestDatabase;
let server: FunctionsServer;
let url: string;
const logs: string[] = [];
const secrets: Record<string, string> = {};

async function createClient(name: string, models: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const [{ r }] = await db.sql`select public.google_ai_create_client(${name}, ${models},
    p_max_token_ttl => ${String(extra.ttl ?? "12 hours")}::interval,
    p_token_max_requests => ${(extra.tokenRequests as number | undefined) ?? null}::integer,
    p_mint_per_hour => ${(extra.mintPerHour as number | undefined) ?? 60}) as r`;
  secrets[name] = r.secret;
  return r.secret as string;
}

function mint(body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  db = await freshDatabase("issue_token");
  await createClient("festival-parser-kaggle", ["gemma-3-27b"], { ttl: "6 hours", tokenRequests: 200 });
  await createClient("two-per-hour", ["gemma-3-27b"], { mintPerHour: 2 });
  await createClient("revoked-one", ["gemma-3-27b"]);
  await db.sql`select public.google_ai_revoke_client('revoked-one', 'test')`;
  server = await startFunctionsServer({
    port: 0,
    only: ["issue-kaggle-token"],
    env: { ...TEST_STACK_DB_ENV, SUPABASE_DB_URL: db.url, GATEWAY_DB_URL: "", SUPABASE_URL: "", EVE_GATEWAY_URL: "" },
    log: (line) => {
      logs.push(line);
      echoDatabaseTrouble("issue-kaggle-token", line);
    },
  });
  url = `${server.url}/functions/v1/issue-kaggle-token`;
}, 120_000);

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

describe("issue-kaggle-token over a real database", () => {
  it("mints a token for a bearer secret; the database stores its digest only", async () => {
    const secret = secrets["festival-parser-kaggle"]!;
    const res = await mint({}, { authorization: `Bearer ${secret}` });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.token).toMatch(/^evegw_tok_[A-Za-z0-9_-]{43}$/);
    expect(body).toMatchObject({
      client: "festival-parser-kaggle",
      models: ["gemma-3-27b-it"],
      budget: { max_requests: 200, max_tokens: null },
      invoke_url: `${server.url}/functions/v1/llm-invoke`,
    });
    expect(body.expires_in).toBeGreaterThan(3590);
    expect(body.expires_in).toBeLessThanOrEqual(3600);
    const [row] = await db.sql`select id, token_hash, models, max_requests, expires_at - created_at as ttl
                               from public.google_ai_tokens where id = ${body.token_id}`;
    expect(row).toMatchObject({ token_hash: sha256(body.token), models: ["gemma-3-27b-it"], max_requests: 200, ttl: "01:00:00" });
  });

  it("narrows models, lifetime and budget from the body (secret in the body too)", async () => {
    const res = await mint({
      client_secret: secrets["festival-parser-kaggle"],
      models: ["gemma-3-27b"],
      ttl_seconds: 6 * 3600,
      max_requests: 20,
      max_tokens: 50_000,
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    // (This client has no budget in money: the token's own and what is left of its client's are null.)
    expect(body.budget).toEqual({ max_requests: 20, max_tokens: 50_000, max_usd: null, daily_usd_left: null,
      monthly_usd_left: null });
    expect(body.expires_in).toBeGreaterThan(6 * 3600 - 10);
  });

  it.each([
    ["a model outside the client's scope", { models: ["gemini-2.5-flash"] }],
    ["an unknown model", { models: ["gpt-4o"] }],
    ["a longer lifetime than the client's 6 h", { ttl_seconds: 6 * 3600 + 1 }],
    ["more than 12 h", { ttl_seconds: 13 * 3600 }],
    ["a bigger request budget", { max_requests: 201 }],
  ])("refuses %s with 403 scope_exceeded and what is allowed", async (_label, narrowing) => {
    const res = await mint(narrowing, { authorization: `Bearer ${secrets["festival-parser-kaggle"]}` });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({
      error: { code: "scope_exceeded" },
      allowed: { models: ["gemma-3-27b-it"], max_ttl_seconds: 6 * 3600, max_requests: 200, max_tokens: null },
    });
  });

  it("refuses a wrong secret, a revoked client and a missing secret with 401", async () => {
    const wrong = `evegw_cs_${"Z".repeat(43)}`;
    let res = await mint({}, { authorization: `Bearer ${wrong}` });
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe("invalid_secret");
    res = await mint({}, { authorization: `Bearer ${secrets["revoked-one"]}` });
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe("client_revoked");
    res = await mint({});
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe("unauthorized");
  });

  it("rate-limits minting per client: 429 with Retry-After until the oldest token is an hour old", async () => {
    const auth = { authorization: `Bearer ${secrets["two-per-hour"]}` };
    expect((await mint({}, auth)).status).toBe(200);
    expect((await mint({}, auth)).status).toBe(200);
    const res = await mint({}, auth);
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await res.json()).toMatchObject({ error: { code: "rate_limited" }, limit: "mint_rate" });
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_tokens t
      join public.google_ai_clients c on c.id = t.client_id where c.name = 'two-per-hour'`;
    expect(n).toBe(2);
  });

  it("answers 503 (not 500) when its database is down", async () => {
    const down = await startFunctionsServer({
      port: 0,
      only: ["issue-kaggle-token"],
      env: { SUPABASE_DB_URL: "postgres://postgres:hunter2@127.0.0.1:1/none", GATEWAY_DB_URL: "" },
      log: (line) => logs.push(line),
    });
    try {
      const res = await fetch(`${down.url}/functions/v1/issue-kaggle-token`, {
        method: "POST",
        headers: { authorization: `Bearer ${secrets["festival-parser-kaggle"]}` },
      });
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe("unavailable");
    } finally {
      await down.close();
    }
    expect(logs.some((l) => l.includes("database error"))).toBe(true);
    expect(logs.join("\n")).not.toContain("hunter2");
  });

  it("logged one line per request, naming clients and token ids, never a secret or token", () => {
    const text = logs.join("\n");
    expect(text).toContain("minted token");
    expect(text).toContain("client:festival-parser-kaggle");
    expect(text).not.toMatch(/evegw_(cs|tok)_[A-Za-z0-9_-]{10}/);
    for (const s of Object.values(secrets)) expect(text).not.toContain(s);
  });
});
