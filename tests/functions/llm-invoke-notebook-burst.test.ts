// A Kaggle notebook's burst under the limit, over HTTP on the gateway as `npm start` starts it (every
// function under Deno, the offline simulator, a database built from the migrations and the seed,
// nothing configured after): 40 concurrent calls with one batch token, 20 for a Gemma model (RPM 30)
// and 20 for Gemini 2.5 Flash (RPM 5), in WAIT mode (the default) and in NO_WAIT. While nobody waits, a
// burst that fits the window goes at once: every Gemma call is served, and Flash serves what its window
// has beyond the one request the interactive share keeps for people; the bot still gets that one at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const GEMMA = "gemma-4-31b-it"; // seeded: 30 RPM per project, 6 kept for the interactive class
const FLASH = "gemini-2.5-flash"; // seeded: 5 RPM per project, 1 kept for the interactive class

let db: TestDatabase;
let stack: LocalStack;

beforeAll(async () => {
  db = await freshDatabase("llm_invoke_notebook_burst");
  stack = await startLocalStack({ functionsPort: 0, databaseUrl: db.url, google: "simulator", log: () => {} });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

async function notebookToken(name: string): Promise<string> {
  const [{ r }] = await db.sql<{ r: { secret: string } }[]>`
    select public.google_ai_create_client(${name}, array[${GEMMA}, ${FLASH}]) as r`;
  const minted = await fetch(`${stack.functionsUrl}/functions/v1/issue-kaggle-token`, {
    method: "POST",
    headers: { authorization: `Bearer ${r.secret}`, "content-type": "application/json" },
    body: "{}",
  });
  expect(minted.status).toBe(200);
  return ((await minted.json()) as { token: string }).token;
}

async function generate(auth: string, model: string, mode: "WAIT" | "NO_WAIT", headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/llm-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${auth}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, prompt: "parse this row", mode }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Active Google keys in the local stack (each key without a project is its own quota group). */
async function keys(): Promise<number> {
  const [{ n }] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from public.google_ai_api_keys where is_active and serves_provider = 'google'`;
  return n;
}

describe("a notebook's burst under the limit", () => {
  it("20 of 20 Gemma calls and Flash's window less the share kept for people, at once, WAIT and NO_WAIT alike", async () => {
    const token = await notebookToken("festival-parser");
    // The local stack has one Google key, one project: one quota group per Google model.
    expect(await keys()).toBe(1);
    // Half of each model's calls wait (WAIT, the default), half do not.
    const mode = (i: number) => (i % 2 === 0 ? "WAIT" : "NO_WAIT");
    const answers = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => generate(token, GEMMA, mode(i))),
      ...Array.from({ length: 20 }, (_, i) => generate(token, FLASH, mode(i))),
    ]);
    const gemma = answers.slice(0, 20);
    const flash = answers.slice(20);
    expect(gemma.map((a) => a.status)).toEqual(Array(20).fill(200));
    // Flash: 5 per project, 1 of them kept for the interactive class; the rest of the burst is told at
    // once (a WAIT call's turn, when the window reopens, lies beyond its 30 s wait).
    expect(flash.filter((a) => a.status === 200)).toHaveLength(4);
    for (const a of flash.filter((a) => a.status !== 200)) {
      expect(a.status).toBe(429);
      // The window has room for one more, but the interactive share keeps it: the body says so.
      expect(a.body).toMatchObject({ limit: "rpm", cause: "share_kept" });
    }
    // The person asks right after: the request the share kept is there.
    const bot = await generate(stack.serviceKey, FLASH, "NO_WAIT", { "x-caller": "telegram-bot" });
    expect(bot.status, JSON.stringify(bot.body)).toBe(200);
  }, 120_000);
});
