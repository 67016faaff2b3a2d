// WAIT behind a full window, in real time: the RPM is booked full (directly through the RPC, as other
// callers would), and a WAIT request takes its place in the queue and sleeps until the time its
// refusal named — when the first of those admissions leaves the sliding window (60 s + the 1 s
// guard) — and is admitted then, by its next call. This file takes about 61 s, so it is kept apart
// and runs alongside the other files.
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
    const [{ r }] = await s.sql`select public.google_ai_reserve_models(array['gemma-3-27b-it'], 10, 'other-caller', null, ${`fill-${i}`}) as r`;
    expect(r.ok).toBe(true);
  }
  const [{ first }] = await s.sql`select min(admitted_at) as first from public.google_ai_attempts`;

  const res = await s.call({ model: "gemma-3-27b", prompt: "after the window", mode: "WAIT", max_wait_ms: 65_000, request_id: "minute-wait" });
  expect(res.status).toBe(200);
  // One attempt row: the queued refusal wrote none, the admission records the wait.
  const rows = await s.sql`select status, limit_hit, wait_ms from public.google_ai_attempts where request_id = 'minute-wait'`;
  expect(rows.map((r) => [r.status, r.limit_hit, r.wait_ms])).toEqual([["succeeded", null, res.body.waited_ms]]);
  // It was admitted only once the first admission had left the 61 s window, and it slept no longer
  // than the time it was given (the turn, counted from the call that queued it).
  const [{ admitted }] = await s.sql`select a.admitted_at as admitted from public.google_ai_attempts a
    where a.request_id = 'minute-wait'`;
  expect((admitted as Date).getTime() - (first as Date).getTime()).toBeGreaterThanOrEqual(61_000);
  expect(res.body.waited_ms).toBeLessThanOrEqual(61_000);
  console.log(`WAIT behind a full window: waited ${res.body.waited_ms} ms in the queue`);
}, 100_000);
