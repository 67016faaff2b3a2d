// The admission queue over HTTP, in real time (about 65 s, so it runs alongside the other files):
// the window is booked full, then batch requests queue (the first of them is cut off by its client),
// then the bot's interactive requests queue behind them. When the window reopens the bot goes first,
// the turn of the waiter that went away passes to the next batch request once its ticket lapses (the
// first request of another notebook: it took the turn behind the head, before the first notebook's
// second), a
// request whose turn lies beyond its max_wait_ms is answered at once with the time, and the window
// never admits more than its limit.
import { afterAll, beforeAll, expect, it } from "vitest";
import { type CallResult, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const MODEL = "gemma-3-27b-it";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_queue", {
    keys: [{ alias: "queue-key", project: "proj-queue", priority: 1, simKey: "sim-key-queue" }],
    limits: [{ model: MODEL, rpm: 3, tpm: 15000, rpd: 14400 }],
  });
  // The queue's order is tested here: no share kept for a class (it would keep 1 of the 3).
  await s.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
});

afterAll(async () => {
  await s?.close();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ask(caller: string, requestId: string, extra: Record<string, unknown> = {}): Promise<CallResult> {
  return s.call({ model: "gemma-3-27b", prompt: `from ${caller}`, mode: "WAIT", max_wait_ms: 65_000, request_id: requestId, ...extra },
    { headers: { "x-caller": caller } });
}

async function ticketCount(requestId: string): Promise<number> {
  const [{ n }] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue where request_id = ${requestId}`;
  return n;
}

it("serves the bot first when the window reopens, passes a vanished waiter's turn on, and never exceeds the limit", async () => {
  for (const i of [1, 2, 3]) {
    const [{ r }] = await s.sql`select public.google_ai_reserve_models(array[${MODEL}], 10, 'earlier', null, ${`fill-${i}`}) as r`;
    expect(r.ok).toBe(true);
  }
  const [{ first }] = await s.sql<{ first: Date }[]>`select min(admitted_at) as first from public.google_ai_attempts`;

  // A notebook's request whose client goes away while it waits: first in line among the batch.
  const cutOff = new AbortController();
  const vanished = fetch(s.url, {
    method: "POST",
    signal: cutOff.signal,
    headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, "x-caller": "notebook-a" },
    body: JSON.stringify({ model: "gemma-3-27b", prompt: "gone", mode: "WAIT", max_wait_ms: 65_000, request_id: "vanished", priority: "batch" }),
  }).catch(() => "aborted");
  while ((await ticketCount("vanished")) === 0) await pause(50);
  const batch = [ask("notebook-a", "batch-1", { priority: "batch" })];
  while ((await ticketCount("batch-1")) === 0) await pause(50);
  batch.push(ask("notebook-b", "batch-2", { priority: "batch" }));
  while ((await ticketCount("batch-2")) === 0) await pause(50);
  cutOff.abort();
  expect(await vanished).toBe("aborted");

  // Its turn lies two windows away, beyond its 5 s: answered at once, with the time, no sleep.
  const impatient = await ask("notebook-c", "impatient", { priority: "batch", max_wait_ms: 5_000 });
  expect(impatient.status).toBe(429);
  expect(impatient.body).toMatchObject({ error: { code: "rate_limited" }, limit: "rpm" });
  expect(impatient.body.retry_after_ms).toBeGreaterThan(5_000);
  const [refused] = await s.sql`select status, wait_ms from public.google_ai_attempts where request_id = 'impatient'`;
  expect(refused).toMatchObject({ status: "refused", wait_ms: 0 });
  expect(await ticketCount("impatient")).toBe(0);

  // The bot asks last, and is in line first.
  const bot = [ask("bot", "bot-1"), ask("bot", "bot-2")];
  while ((await ticketCount("bot-1")) + (await ticketCount("bot-2")) < 2) await pause(50);
  const places = await s.sql<{ request_id: string; position: number; priority_class: string }[]>`
    select request_id, position, priority_class from public.google_ai_queue order by class_rank, turn, enqueued_at`;
  expect(places.map((p) => [p.request_id, p.priority_class])).toEqual([
    [expect.stringMatching(/^bot-/), "interactive"],
    [expect.stringMatching(/^bot-/), "interactive"],
    ["vanished", "batch"],
    ["batch-2", "batch"], // notebook-b's first takes the turn of the head (notebook-a's), behind it
    ["batch-1", "batch"],
  ]);

  const [bot1, bot2] = await Promise.all(bot);
  const [b1, b2] = await Promise.all(batch);
  expect([bot1!.status, bot2!.status]).toEqual([200, 200]);
  // batch-2 is served once the vanished waiter's ticket lapses (3 s after its turn), within its wait;
  // batch-1's turn then lies a window further, beyond its wait: answered with the time.
  expect(b2!.status, JSON.stringify(b2!.body)).toBe(200);
  expect(b1!.status).toBe(429);
  expect(b1!.body.retry_after_ms).toBeGreaterThan(0);

  const admitted = await s.sql<{ request_id: string; admitted_at: Date; priority_class: string; wait_ms: number }[]>`
    select t.request_id, t.admitted_at, t.priority_class, t.wait_ms from public.google_ai_attempts t
    where t.request_id in ('bot-1', 'bot-2', 'batch-2') and t.admitted_at is not null order by t.admitted_at`;
  expect(admitted.map((a) => a.request_id).slice(0, 2).sort()).toEqual(["bot-1", "bot-2"]);
  expect(admitted.map((a) => a.priority_class)).toEqual(["interactive", "interactive", "batch"]);
  for (const a of admitted) expect(a.admitted_at.getTime() - first.getTime()).toBeGreaterThanOrEqual(61_000);
  // Nobody polled: one attempt row per request, the wait recorded on it.
  const rows = await s.sql<{ request_id: string; n: number }[]>`
    select request_id, count(*)::int as n from public.google_ai_attempts
    where request_id in ('bot-1', 'bot-2', 'batch-1', 'batch-2', 'vanished') group by request_id order by request_id`;
  expect(rows).toEqual([
    { request_id: "batch-1", n: 1 },
    { request_id: "batch-2", n: 1 },
    { request_id: "bot-1", n: 1 },
    { request_id: "bot-2", n: 1 },
    { request_id: "vanished", n: 1 },
  ]);
  const [gone] = await s.sql`select status, limit_hit, priority_class from public.google_ai_attempts where request_id = 'vanished'`;
  expect(gone).toMatchObject({ status: "abandoned", limit_hit: "rpm", priority_class: "batch" });
  // The window of 61 s never held more than the limit.
  const [{ worst }] = await s.sql<{ worst: number }[]>`
    select max(n)::int as worst from (
      select count(*) over (order by admitted_at range between interval '60.999 seconds' preceding and current row) as n
      from public.google_ai_attempts a where a.admitted_at is not null and a.status not in ('released', 'withdrawn')) w`;
  expect(worst).toBeLessThanOrEqual(3);
  console.log(`queue over HTTP: bot waited ${bot1!.body.waited_ms}/${bot2!.body.waited_ms} ms, batch-2 ${b2!.body.waited_ms} ms`);
}, 150_000);
