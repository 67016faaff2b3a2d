// The clients CLI (npm run clients) against a real database: the secret is printed once and only
// its hash is stored; list shows no secret; revoke revokes.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const run = promisify(execFile);
let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("clients_cli");
});
afterAll(async () => {
  await db?.drop();
});

// Each call starts a TypeScript process (seconds on a loaded machine): the tests that make several
// in a row get more than the default minute.
const SEVERAL_PROCESSES_MS = 180_000;

const cli = (...args: string[]) =>
  run("npx", ["tsx", "scripts/clients.ts", ...args], { cwd: repoRoot, env: { ...process.env, SUPABASE_DB_URL: db.url } });

it("creates a client, printing its secret once and storing only its hash", async () => {
  const { stdout } = await cli("create", "festival-parser-kaggle", "--models", "gemma-3-27b", "--max-ttl", "6h", "--token-requests", "200");
  const secret = /evegw_cs_[A-Za-z0-9_-]{43}/.exec(stdout)?.[0];
  expect(secret).toBeDefined();
  expect(stdout).toContain("may use: gemma-3-27b-it");
  const rows = await db.sql`select max_token_ttl, token_max_requests, to_jsonb(c)::text as raw from public.google_ai_clients c`;
  expect(rows).toHaveLength(1);
  expect(rows[0].max_token_ttl).toBe("06:00:00");
  expect(rows[0].token_max_requests).toBe(200);
  expect(rows[0].raw).not.toContain(secret);

  const list = await cli("list");
  expect(list.stdout).toContain("festival-parser-kaggle");
  expect(list.stdout).not.toContain("evegw_cs_");

  const revoked = await cli("revoke", "festival-parser-kaggle", "--reason", "rotated");
  expect(revoked.stdout).toContain("revoked festival-parser-kaggle");
  const [{ revoked_at }] = await db.sql`select revoked_at from public.google_ai_clients`;
  expect(revoked_at).not.toBeNull();
}, SEVERAL_PROCESSES_MS);

it("refuses bad input with a message and a non-zero exit", async () => {
  await expect(cli("create", "x")).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining("create needs --models") });
  await expect(cli("create", "bad name!", "--models", "gemma-3-27b")).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining("client name must be") });
  await expect(cli("revoke", "nobody")).rejects.toMatchObject({ code: 2 });
  // One line a person can act on, never PostgreSQL's own wording.
  await cli("create", "twice-named", "--models", "gemma-3-27b");
  const twice = await cli("create", "twice-named", "--models", "gemma-3-27b").catch((e: { code: number; stderr: string }) => e);
  expect(twice).toMatchObject({
    code: 1,
    stderr: expect.stringContaining("error: a client named 'twice-named' already exists: choose another name, or revoke it first\n"),
  });
  expect((twice as { stderr: string }).stderr).not.toMatch(/duplicate key|violates/);
  const longTtl = await cli("create", "long-ttl", "--models", "gemma-3-27b", "--max-ttl", "13h").catch((e: { code: number; stderr: string }) => e);
  expect(longTtl).toMatchObject({ code: 2, stderr: expect.stringContaining("--max-ttl must be more than 0 and at most 12h") });
  expect((longTtl as { stderr: string }).stderr).not.toMatch(/violates|constraint/);
  const badId = await cli("revoke-token", "not-a-uuid").catch((e: { code: number; stderr: string }) => e);
  expect(badId).toMatchObject({ code: 2, stderr: expect.stringContaining("a token id looks like") });
  expect((badId as { stderr: string }).stderr).not.toMatch(/invalid input syntax/);
}, SEVERAL_PROCESSES_MS);
