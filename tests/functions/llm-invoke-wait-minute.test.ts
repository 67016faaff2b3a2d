// WAIT across a real minute boundary: the minute's RPM is booked full (directly through the RPC, as
// other callers would), and a WAIT request sleeps until second :00 — the time the refusal named —
// and is admitted in the new minute. This file takes as long as the time to the next :00 (up to a
// minute), so it is kept apart and runs alongside the other files.
import { afterAll, beforeAll, expect, it } from "vitest";
import { type InvokeStack, msToNextMinute, sleep, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_wait_minute", {
    keys: [{ alias: "minute-key", project: "proj-minute", priority: 1, simKey: "sim-key-minute" }],
    limits: [{ model: "gemma-3-27b-it", rpm: 2, tpm: 15000, rpd: 14400 }],
  });
});

afterAll(async () => {
  await s?.close();
});

it("a WAIT request behind a full minute sleeps until :00 and succeeds in the next minute", async () => {
  // Too close to :00 and the booking below could land in the next minute already.
  if (msToNextMinute() < 3000) await sleep(msToNextMinute() + 300);
  for (const i of [1, 2]) {
    const [{ r }] = await s.sql`select public.google_ai_reserve('gemma-3-27b-it', 10, 'other-caller', ${`fill-${i}`}) as r`;
    expect(r.ok).toBe(true);
  }
  const [{ minute }] = await s.sql`select public.google_ai_minute_window(now()) as minute`;
  const expectedWait = msToNextMinute();

  const res = await s.call({ model: "gemma-3-27b", prompt: "after the minute", mode: "WAIT", max_wait_ms: 60_000, request_id: "minute-wait" });
  expect(res.status).toBe(200);
  const rows = await s.sql`select status, limit_hit, minute_bucket, wait_ms, retry_after_ms::int as retry_after_ms
                           from public.google_ai_attempts where request_id = 'minute-wait' order by id`;
  expect(rows.map((r) => [r.status, r.limit_hit])).toEqual([["refused", "rpm"], ["succeeded", null]]);
  // It slept exactly until the :00 the refusal named, plus jitter below 250 ms (computed, not measured).
  expect(res.body.waited_ms).toBeGreaterThanOrEqual(rows[0]!.retry_after_ms);
  expect(res.body.waited_ms).toBeLessThan(rows[0]!.retry_after_ms + 250);
  expect((rows[1]!.minute_bucket as Date).getTime()).toBe((minute as Date).getTime() + 60_000);
  console.log(`WAIT across :00: waited ${res.body.waited_ms} ms for a refusal that named ${expectedWait} ms`);
}, 90_000);
