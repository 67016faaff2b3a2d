// The gateway books fixed minutes at :00 on the database clock; Google counts a request when it
// arrives. With 100 ms of network delay between llm-invoke and the simulator, a burst booked in the
// last 300 ms of a minute plus a burst at :00.5 can put more than the limit into Google's minute
// although the gateway's own counters never pass it. This test reproduces that straddle over HTTP
// and checks that the simulator's account of it is right: it counted each arrival in its own
// minute and answered 429 to exactly the arrivals over the limit — and that the gateway's guarded
// sliding window admits so that Google answers none of the admitted calls 429.
// This file waits for a minute boundary (up to a minute), so it is kept apart.
import { afterAll, beforeAll, expect, it } from "vitest";
import { arrivalsByMinute } from "../../shared/google-sim/server.ts";
import { type CallResult, type InvokeStack, sleep, startInvokeStack } from "./llm-invoke-helpers.ts";

const MODEL = "gemma-3-27b-it";
const LIMIT = 40;
const DELAY_MS = 100;

let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("fidelity_straddle", {
    keys: [{ alias: "straddle-key", project: "proj-straddle", priority: 1, simKey: "sim-key-straddle" }],
    limits: [{ model: MODEL, rpm: LIMIT, tpm: 10_000_000, rpd: 1_000_000 }],
    simulator: {
      arrivalDelayMs: DELAY_MS,
      models: { [MODEL]: { rpm: LIMIT, tpm: 100_000_000, rpd: 1_000_000 } },
    },
  });
});

afterAll(async () => {
  await s?.close();
});

const ask = (id: string): Promise<CallResult> =>
  s.call({ model: MODEL, prompt: `straddle ${id}`, mode: "NO_WAIT", request_id: id });

it("boundary straddle with 100 ms network delay: no Google 429 for any admitted call, though Google counts arrivals in its own minute", async () => {
  // Warm the function (first request compiles and connects), then start from clean counters.
  expect((await ask("warm-up")).status).toBe(200);
  let boundary = Math.ceil(Date.now() / 60_000) * 60_000;
  if (boundary - Date.now() < 3000) boundary += 60_000;
  await sleep(boundary - Date.now() - 2000);
  await s.reset();

  // 40 booked in the last 300 ms of the minute (sent from :59.700, 5 ms apart), 40 at :00.5.
  const calls: Promise<CallResult>[] = [];
  for (let i = 0; i < LIMIT; i++) {
    await sleep(boundary - 300 + i * 5 - Date.now());
    calls.push(ask(`straddle-late-${i}`));
  }
  await sleep(boundary + 500 - Date.now());
  for (let i = 0; i < LIMIT; i++) calls.push(ask(`straddle-early-${i}`));
  const answers = await Promise.all(calls);
  await sleep(300); // finalizes run after the answers

  // The gateway's own account: bookings per minute never above the limit.
  const booked = await s.sql<{ window: Date; n: number }[]>`
    select minute_bucket as window, count(*)::int as n from public.google_ai_attempts
    where request_id like 'straddle-%' and status not in ('refused', 'released')
    group by 1 order by 1`;
  for (const b of booked) expect(b.n).toBeLessThanOrEqual(LIMIT);
  const reachedGoogle = booked.reduce((sum, b) => sum + b.n, 0);

  // Google's account: every arrival counted in the simulator's minute; 429s exactly the excess.
  const stats = s.sim.stats();
  const windows = arrivalsByMinute(stats.recent, MODEL);
  for (const w of windows) {
    expect(w.ok).toBe(Math.min(w.arrived, LIMIT));
    expect(w.refused429).toBe(Math.max(0, w.arrived - LIMIT));
  }
  const google429 = windows.reduce((sum, w) => sum + w.refused429, 0);
  expect(google429).toBe(0);
  expect(stats.byModel[MODEL]?.byStatus["429"] ?? 0).toBe(google429);
  expect(windows.reduce((sum, w) => sum + w.arrived, 0)).toBe(reachedGoogle);
  for (const r of stats.recent) expect(r.at - (boundary - 300)).toBeGreaterThanOrEqual(DELAY_MS - 1);

  // Every caller is answered: 200 when Google accepted its call, 429 otherwise (gateway or Google).
  const ok = answers.filter((a) => a.status === 200).length;
  expect(answers.filter((a) => a.status !== 200 && a.status !== 429)).toEqual([]);
  expect(ok).toBe(windows.reduce((sum, w) => sum + w.ok, 0));

  console.log(
    `boundary straddle (limit ${LIMIT}, delay ${DELAY_MS} ms): gateway booked ` +
      booked.map((b) => `${b.n} in ${b.window.toISOString().slice(11, 16)}`).join(", ") +
      `; Google received ${windows.map((w) => `${w.arrived} in ${w.window.slice(11, 16)}`).join(", ")}` +
      `; Google 429s for admitted requests: ${google429}; callers answered 200: ${ok}/${answers.length}`,
  );
}, 120_000);
