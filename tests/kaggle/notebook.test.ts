// End to end, as the product brief's journey 2: the operator creates a Kaggle client with the CLI,
// a notebook (tests/kaggle/notebook.py, real python3, real eve_gateway.py) finds its secret through
// kaggle_secrets, trades it for a token and runs 20 generations at once through the gateway
// (functions under Deno, PostgreSQL with the seeded limits, the Google simulator). Then every
// documented refusal, and a scan of every table and every log line for secrets and tokens.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { type KaggleStack, startKaggleStack } from "./stack.ts";

const CLIENT = "festival-parser-kaggle";
let db: TestDatabase;
let stack: KaggleStack;
let secret: string;
/** Every secret and token that existed in this test, to look for in tables and logs. */
const plaintexts = new Set<string>();

const cli = (...args: string[]) =>
  promisify(execFile)("npx", ["--no-install", "tsx", "scripts/clients.ts", ...args], {
    cwd: repoRoot,
    env: { ...process.env, SUPABASE_DB_URL: db.url },
  });

async function createClient(name: string, ...flags: string[]): Promise<string> {
  const { stdout } = await cli("create", name, ...flags);
  const found = /evegw_cs_[A-Za-z0-9_-]{43}/.exec(stdout)?.[0];
  if (found === undefined) throw new Error(`no secret in: ${stdout}`);
  plaintexts.add(found);
  return found;
}

async function call(fn: string, credential: string | null, body: unknown = {}) {
  const res = await fetch(`${stack.url}/functions/v1/${fn}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(credential === null ? {} : { authorization: `Bearer ${credential}` }) },
    body: JSON.stringify(body),
  });
  const json = await res.json() as Record<string, any>;
  if (typeof json.token === "string") plaintexts.add(json.token);
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: json };
}

async function mint(clientSecret: string, narrowing: Record<string, unknown> = {}): Promise<{ token: string; token_id: string }> {
  const r = await call("issue-kaggle-token", clientSecret, narrowing);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { token: string; token_id: string };
}

const invoke = (token: string, body: Record<string, unknown> = {}) =>
  call("llm-invoke", token, { model: "gemma-3-27b", prompt: "Привет", ...body });

function runNotebook(env: Record<string, string>): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.PYTHON ?? "python3", [path.join(repoRoot, "tests", "kaggle", "notebook.py")], {
      env: {
        PATH: process.env.PATH ?? "",
        PYTHONPATH: path.join(repoRoot, "tests", "kaggle", "fake_kaggle"),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`notebook exited ${code}:\n${err}`));
      resolve(JSON.parse(out.trim().split("\n").pop()!));
    });
  });
}

beforeAll(async () => {
  db = await freshDatabase("kaggle_e2e");
  // The notebook's path is tested here; the window's spread would pace its 20 concurrent generations
  // one per 2 s (tests/db/spread.test.ts tests the spread).
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  stack = await startKaggleStack({ databaseUrl: db.url });
  secret = await createClient(CLIENT, "--models", "gemma-3-27b", "--max-ttl", "12h", "--token-requests", "200");
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

describe("a Kaggle notebook through the gateway", () => {
  let notebook: Record<string, any>;

  it("secret from Kaggle Secrets -> one token -> 20 concurrent generations, all within the seeded limits", async () => {
    notebook = await runNotebook({
      EVE_GATEWAY_URL: stack.url,
      FAKE_KAGGLE_SECRETS: JSON.stringify({ EVE_GATEWAY_CLIENT_SECRET: secret }),
    });
    plaintexts.add(notebook.token_for_scan);
    expect(notebook.errors).toEqual([]);
    expect(notebook.ok).toBe(20);
    expect(notebook.credential_source).toBe("Kaggle secret EVE_GATEWAY_CLIENT_SECRET");
    expect(notebook.texts_match).toBe(true);
    expect(notebook.usage_total).toBeGreaterThan(0);

    // One token for the whole notebook, which booked exactly the 20 requests.
    const tokens = await db.sql`select t.id::text, t.requests_used, t.max_requests from public.google_ai_tokens t
      join public.google_ai_clients c on c.id = t.client_id where c.name = ${CLIENT}`;
    expect(tokens).toEqual([{ id: notebook.token_id, requests_used: 20, max_requests: 200 }]);

    // Within the limits: Gemma's 30 RPM in the seed; "Google" got exactly 20 calls and no 429.
    const [limits] = await db.sql`select rpm from public.google_ai_model_limits where model = 'gemma-3-27b-it'`;
    const [{ used }] = await db.sql`select coalesce(max(rpm_used), 0)::int as used from public.google_ai_usage_counters where model = 'gemma-3-27b-it'`;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(limits.rpm);
    expect(stack.simulator.stats().byModel["gemma-3-27b-it"]).toMatchObject({ received: 20, byStatus: { "200": 20 } });
  });

  it("the audit log names the client and the token (by id) for every one of the 20", async () => {
    const [client] = await db.sql`select id::text from public.google_ai_clients where name = ${CLIENT}`;
    const rows = await db.sql`select caller, client_id::text, token_id::text, status, attempt, wait_ms
      from public.google_ai_attempts where request_id = any(${notebook.request_ids})`;
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      expect(row).toEqual({
        caller: `client:${CLIENT}`,
        client_id: client.id,
        token_id: notebook.token_id,
        status: "succeeded",
        attempt: 1,
        wait_ms: 0,
      });
    }
  });
});

describe("refusals, with the documented codes", () => {
  it("issue-kaggle-token: wrong secret 401 invalid_secret, no secret 401, wider scope 403 scope_exceeded", async () => {
    const wrong = `evegw_cs_${randomBytes(32).toString("base64url")}`;
    plaintexts.add(wrong);
    expect(await call("issue-kaggle-token", wrong)).toMatchObject({ status: 401, body: { error: { code: "invalid_secret" } } });
    expect(await call("issue-kaggle-token", null)).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
    expect(await call("issue-kaggle-token", secret, { models: ["gemini-2.5-flash"] })).toMatchObject({
      status: 403,
      body: { error: { code: "scope_exceeded" }, allowed: { models: ["gemma-3-27b-it"], max_ttl_seconds: 43200, max_requests: 200 } },
    });
    expect(await call("issue-kaggle-token", secret, { ttl_seconds: 13 * 3600 })).toMatchObject({
      status: 403,
      body: { error: { code: "scope_exceeded" } },
    });
  });

  it("llm-invoke: forged 401 token_invalid, malformed 401, a client secret 401, expired 401 token_expired", async () => {
    const forged = `evegw_tok_${randomBytes(32).toString("base64url")}`;
    plaintexts.add(forged);
    expect(await invoke(forged)).toMatchObject({ status: 401, body: { error: { code: "token_invalid" } } });
    expect(await invoke("evegw_tok_short")).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
    expect(await invoke(secret)).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });

    const { token, token_id } = await mint(secret, { ttl_seconds: 60 });
    expect((await invoke(token)).status).toBe(200);
    await db.sql`update public.google_ai_tokens set expires_at = now() - interval '1 second' where id = ${token_id}`;
    expect(await invoke(token)).toMatchObject({ status: 401, body: { error: { code: "token_expired" } } });
  });

  it("llm-invoke: revoked token 401 token_revoked (CLI revoke-token), wrong model 403 model_not_allowed", async () => {
    const { token, token_id } = await mint(secret);
    expect(await invoke(token, { model: "gemini-2.5-flash" })).toMatchObject({
      status: 403,
      body: { error: { code: "model_not_allowed" } },
    });
    await cli("revoke-token", token_id);
    expect(await invoke(token)).toMatchObject({ status: 401, body: { error: { code: "token_revoked" } } });
  });

  it("llm-invoke: a used-up token 429 rate_limited limit token_budget, without Retry-After", async () => {
    const { token } = await mint(secret, { max_requests: 1 });
    expect((await invoke(token)).status).toBe(200);
    const refused = await invoke(token);
    expect(refused).toMatchObject({ status: 429, retryAfter: null, body: { error: { code: "rate_limited" }, limit: "token_budget" } });
  });

  it("a revoked client: its live tokens 401 token_revoked, minting 401 client_revoked", async () => {
    const other = await createClient("revoked-notebook", "--models", "gemma-3-27b");
    const { token } = await mint(other);
    expect((await invoke(token)).status).toBe(200);
    const { stdout } = await cli("revoke", "revoked-notebook", "--reason", "leaked");
    expect(stdout).toContain("1 live token(s) revoked");
    expect(await invoke(token)).toMatchObject({ status: 401, body: { error: { code: "token_revoked" } } });
    expect(await call("issue-kaggle-token", other)).toMatchObject({ status: 401, body: { error: { code: "client_revoked" } } });
  });
});

describe("no token or secret in clear, anywhere", () => {
  it("every table of every schema of the database, whole rows as text", async () => {
    expect(plaintexts.size).toBeGreaterThanOrEqual(8);
    const tables = await db.sql<{ schema: string; name: string }[]>`
      select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')`;
    expect(tables.map((t) => `${t.schema}.${t.name}`)).toEqual(
      expect.arrayContaining(["public.google_ai_attempts", "public.google_ai_tokens", "public.google_ai_clients", "public.token_usage"]),
    );
    let rows = 0;
    for (const { schema, name } of tables) {
      const found = await db.sql.unsafe(`select t::text as row from "${schema}"."${name}" t`);
      rows += found.length;
      for (const { row } of found) {
        for (const p of plaintexts) expect(row, `${schema}.${name}`).not.toContain(p);
        expect(row, `${schema}.${name}`).not.toMatch(/evegw_(cs|tok)_[A-Za-z0-9_-]{20}/);
      }
    }
    expect(rows).toBeGreaterThan(40);
  });

  it("every log line of every function and of the functions server", () => {
    expect(stack.logs.length).toBeGreaterThan(0);
    const text = stack.logs.join("\n");
    for (const p of plaintexts) expect(text).not.toContain(p);
    expect(text).not.toMatch(/evegw_(cs|tok)_[A-Za-z0-9_-]{8}/);
    expect(text).not.toContain(stack.serviceKey);
  });
});
