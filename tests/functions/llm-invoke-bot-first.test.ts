// The bot first, with the seed as `npm start` has it: gemma-3-27b-it spread one request per 61 s / 30
// while requests wait, and 20% of its RPM kept for the interactive class. Over HTTP (the served
// function, a real PostgreSQL, the simulator), counted on the attempt rows the database wrote: a
// notebook's flood does not hold a person's request, and while requests wait the notebooks go at the
// schedule's pace while the bot, first class, is not held by it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CallResult, type InvokeStack, mintToken, someoneWaits, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let notebook: string;
const MODEL = "gemma-3-27b-it";
const STEP_MS = 61_000 / 30;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_bot_first", {
    keys: [{ alias: "first-key", project: "proj-first", priority: 1, simKey: "sim-key-first" }],
    spread: "as seeded",
  });
  // A Kaggle client: batch, as every client is unless its row says otherwise.
  notebook = (await mintToken(s.sql, "parser", { models: [MODEL] })).token;
}, 120_000);

afterAll(async () => {
  await s?.close();
});

interface Row {
  request_id: string;
  caller: string;
  priority_class: string;
  wait_ms: number;
  booked: number;
}

/** The succeeded attempts of one test (its request ids name it), in booking order. */
async function admissions(tags: string[]): Promise<Row[]> {
  const rows = await s.sql<(Omit<Row, "booked"> & { created_at: Date })[]>`
    select request_id, caller, priority_class, wait_ms, created_at from public.google_ai_attempts
    where model = ${MODEL} and status = 'succeeded' and split_part(request_id, '-', 1) = any(${tags}::text[])
    order by created_at, request_id`;
  return rows.map((r) => ({ ...r, booked: r.created_at.getTime() }));
}

const flood = (n: number, tag: string, maxWaitMs: number): Promise<CallResult>[] =>
  Array.from({ length: n }, (_, i) =>
    s.call({ model: MODEL, prompt: `row ${i}`, max_wait_ms: maxWaitMs, request_id: `${tag}-${i}` }, { auth: notebook }));

const fromBot = (id: string) =>
  s.call({ model: MODEL, prompt: "hi", max_wait_ms: 30_000, request_id: id }, { headers: { "x-caller": "bot" } });

async function untilBooked(n: number) {
  for (let i = 0; i < 200; i++) {
    const [{ count }] = await s.sql<{ count: number }[]>`
      select count(*)::int as count from public.google_ai_attempts where model = ${MODEL} and status <> 'refused'`;
    if (count >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${n} bookings`);
}

describe("with the seed's spread and share", () => {
  it("a notebook's flood that fills the window does not hold the bot: its share is there at its first call", async () => {
    await s.reset();
    // Nobody waits yet: the flood takes what the window has beyond the share (24 of 30) at once; the
    // rest are told at once that their turn (when the window reopens) lies beyond their 20 s.
    const notebooks = flood(30, "nb1", 20_000);
    await untilBooked(24);
    const bot = await fromBot("bot-1");
    expect(bot.status).toBe(200);
    expect((await Promise.all(notebooks)).filter((r) => r.status === 200)).toHaveLength(24);
    const mine = (await admissions(["bot"])).find((r) => r.request_id === "bot-1")!;
    // Its share kept room for it: booked at its first call.
    expect(mine.wait_ms).toBe(0);
  }, 60_000);

  it("while requests wait, the notebooks go at the schedule's pace and the bot is not held by it", async () => {
    await s.reset();
    const leave = await someoneWaits(s.sql, MODEL);
    try {
      const notebooks = flood(10, "nb2", 40_000);
      await untilBooked(1); // the first notebook request has its slot; the rest are queued on the schedule
      // Ten requests of the person, one after the other: its share's six and four more, none held.
      const burst: Promise<CallResult>[] = [];
      for (let i = 0; i < 10; i++) {
        burst.push(fromBot(`burst-${i}`));
        await new Promise((r) => setTimeout(r, 30));
      }
      expect((await Promise.all(burst)).map((r) => r.status)).toEqual(Array(10).fill(200));
      await Promise.all(notebooks);
      const rows = await admissions(["nb2", "burst"]);
      expect(rows.filter((r) => r.caller === "bot").map((r) => r.wait_ms)).toEqual(Array(10).fill(0));
      // The notebooks are spread: never two of their bookings within half a step.
      const theirs = rows.filter((r) => r.caller !== "bot").map((r) => r.booked);
      for (let i = 1; i < theirs.length; i++) expect(theirs[i]! - theirs[i - 1]!).toBeGreaterThanOrEqual(STEP_MS / 2 - 50);
      // The notebooks were not shut out: they booked after the bot's burst too, and the window held 30.
      const lastBot = Math.max(...rows.filter((r) => r.caller === "bot").map((r) => r.booked));
      expect(rows.filter((r) => r.caller !== "bot" && r.booked > lastBot).length).toBeGreaterThanOrEqual(1);
      expect(rows.length).toBeLessThanOrEqual(30);
    } finally {
      await leave();
    }
  }, 90_000);
});
