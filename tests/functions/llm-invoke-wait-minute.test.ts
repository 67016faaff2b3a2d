// WAIT behind a full window, in real time: the RPM is booked full (directly through the RPC, as other
// callers would), and a WAIT request sleeps until the time the refusal named — when the first of those
// admissions leaves the sliding window (60 s + the 1 s guard) — and is admitted then. This file takes
// about 61 s, so it is kept apart and runs alongside the other files.
import { afterAll, beforeAll, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

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

it("a WAIT request behind a full window sleeps until its oldest admission leaves it, and succeeds then", async () => {
  for (const i of [1, 2]) {
    const [{ r }] = await s.sql`select public.google_ai_reserve('gemma-3-27b-it', 10, 'other-caller', ${`fill-${i}`}) as r`;
    expect(r.ok).toBe(true);
  }
  const [{ first }] = await s.sql`select min(admitted_at) as first from public.google_ai_admissions`;

  const res = await s.call({ model: "gemma-3-27b", prompt: "after the window", mode: "WAIT", max_wait_ms: 65_000, request_id: "minute-wait" });
  expect(res.status).toBe(200);
  const rows = await s.sql`select status, limit_hit, wait_ms, retry_after_ms::int as retry_after_ms
                           from public.google_ai_attempts where request_id = 'minute-wait' order by id`;
  expect(rows.map((r) => [r.status, r.limit_hit])).toEqual([["refused", "rpm"], ["succeeded", null]]);
  // It slept exactly the time the refusal named, plus jitter below 250 ms (computed, not measured),
  // and was admitted only once the first admission had left the 61 s window.
  expect(res.body.waited_ms).toBeGreaterThanOrEqual(rows[0]!.retry_after_ms);
  expect(res.body.waited_ms).toBeLessThan(rows[0]!.retry_after_ms + 250);
  const [{ admitted }] = await s.sql`select a.admitted_at as admitted from public.google_ai_admissions a
    join public.google_ai_attempts t on t.reservation_id = a.reservation_id where t.request_id = 'minute-wait'`;
  expect((admitted as Date).getTime() - (first as Date).getTime()).toBeGreaterThanOrEqual(61_000);
  console.log(`WAIT behind a full window: waited ${res.body.waited_ms} ms (the refusal named ${rows[0]!.retry_after_ms} ms)`);
}, 100_000);
