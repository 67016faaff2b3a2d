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

it("creates a client with its budgets in money and lists them with its spend; refuses an amount that is not dollars", async () => {
  const { stdout } = await cli("create", "money-notebook", "--models", "gemma-3-27b", "--daily-usd", "0.50",
    "--monthly-usd", "5", "--token-usd", "0.05");
  expect(stdout).toContain("budgets in money: $0.50 a Pacific day, $5 a Pacific month, $0.05 per token");
  const [row] = await db.sql`select daily_max_usd::text as daily, monthly_max_usd::text as monthly,
                               token_max_usd::text as token from public.google_ai_clients where name = 'money-notebook'`;
  expect(row).toEqual({ daily: "0.50", monthly: "5", token: "0.05" });
  await db.sql`update public.google_ai_clients set spent_today_usd = 0.125, day_bucket = public.google_ai_pacific_day(now()),
                 spent_month_usd = 1.25, month_bucket = date_trunc('month', public.google_ai_pacific_day(now()))::date
               where name = 'money-notebook'`;
  const list = await cli("list");
  const line = list.stdout.split("\n").find((l) => l.includes("money-notebook"))!;
  for (const figure of ["0.50", "5", "0.05", "0.125", "1.25"]) expect(line).toContain(`'${figure}'`);

  const bad = await cli("create", "bad-money", "--models", "gemma-3-27b", "--daily-usd", "half").catch(
    (e: { code: number; stderr: string }) => e,
  );
  expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining("--daily-usd must be US dollars") });
  // Created whole or not at all.
  expect(await db.sql`select 1 from public.google_ai_clients where name = 'bad-money'`).toHaveLength(0);
}, SEVERAL_PROCESSES_MS);
