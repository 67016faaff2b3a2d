// Admission over HTTP with one quota group: NO_WAIT answers 429 at once naming the limit (RPM, TPM,
// RPD) with Retry-After and retry_after_ms; WAIT takes its place in line and sleeps until the time the
// database named, then succeeds, or is answered at once when that time lies beyond max_wait_ms; a burst of 100 concurrent NO_WAIT requests against RPM 30
// gets exactly 30 answers from Google.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { awayFromMinuteEdge, type CallResult, type InvokeStack, startInvokeStack, windowFreesAt } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const GEMMA = "gemma-3-27b-it";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_limits", {
    keys: [{ alias: "only-key", project: "proj-one", priority: 1, simKey: "sim-key-one" }],
  });
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.setLimit({ model: GEMMA, rpm: 30, tpm: 15000, rpd: 14400 });
});

function expectRateLimited(res: CallResult, limit: string) {
  expect(res.status).toBe(429);
  expect(res.body).toMatchObject({ error: { code: "rate_limited" }, limit });
  const retryAfterMs = res.body.retry_after_ms as number;
  expect(retryAfterMs).toBeGreaterThan(0);
  expect(res.headers.get("retry-after")).toBe(String(Math.ceil(retryAfterMs / 1000)));
  return retryAfterMs;
}

describe("NO_WAIT", () => {
  it("over RPM: 429 at once with Retry-After and retry_after_ms until the window's oldest admission leaves it, limit rpm", async () => {
    await s.setLimit({ model: GEMMA, rpm: 2 });
    await awayFromMinuteEdge(5000);
    for (let i = 0; i < 2; i++) expect((await s.call({ model: GEMMA, prompt: `p${i}`, mode: "NO_WAIT" })).status).toBe(200);
    const res = await s.call({ model: GEMMA, prompt: "third", mode: "NO_WAIT", request_id: "nowait-rpm" });
    const retryAfterMs = expectRateLimited(res, "rpm");
    // The window is the last 60 s plus the 1 s guard: it has room when the first admission leaves it.
    const left = (await windowFreesAt(s.sql, GEMMA)).requests.getTime() - Date.now();
    expect(Math.abs(retryAfterMs - Number(left))).toBeLessThan(1000);
    expect(res.body.request_id).toBe("nowait-rpm");
    const rows = await s.sql`select status, limit_hit, retry_after_ms::int as retry_after_ms, attempt
                             from public.google_ai_attempts where request_id = 'nowait-rpm'`;
    expect(rows).toEqual([{ status: "refused", limit_hit: "rpm", retry_after_ms: retryAfterMs, attempt: 1 }]);
    expect(s.sim.stats().total.received).toBe(2);
  });

  it("over TPM: limit tpm; over RPD: limit rpd with the wait until Pacific midnight (WAIT does not sit on it)", async () => {
    await s.setLimit({ model: GEMMA, rpm: null, tpm: 40 });
    await awayFromMinuteEdge(5000);
    let res: CallResult | undefined;
    for (let i = 0; i < 10; i++) {
      res = await s.call({ model: GEMMA, prompt: "twenty bytes of text", mode: "NO_WAIT" });
      if (res.status !== 200) break;
    }
    expectRateLimited(res!, "tpm");

    await s.reset();
    await s.setLimit({ model: GEMMA, rpm: null, tpm: null, rpd: 1 });
    expect((await s.call({ model: GEMMA, prompt: "first of the day" })).status).toBe(200);
    const waited = await s.call({ model: GEMMA, prompt: "second", mode: "WAIT", max_wait_ms: 60_000 });
    const retryAfterMs = expectRateLimited(waited, "rpd");
    // A reopening hours away is answered at once: a generous bound, it would otherwise sit 60 s.
    expect(waited.ms).toBeLessThan(30_000);
    // Pacific midnight plus the day guard (5 s): the first seconds of a day still count for the day before.
    const [{ ms }] = await s.sql`select (extract(epoch from public.google_ai_pacific_midnight_after(now()) + interval '5 seconds' - now()) * 1000)::bigint as ms`;
    expect(Math.abs(retryAfterMs - Number(ms))).toBeLessThan(2000);
  });

  it("a request larger than the model's TPM is a 400 (waiting cannot help)", async () => {
    await s.setLimit({ model: GEMMA, tpm: 50 });
    const res = await s.call({ model: GEMMA, prompt: "x".repeat(2000) });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "invalid_request", details: { field: "messages", tpm_limit: 50, counted_tokens: 500 } });
    // Google's count was asked (once) and is still too large: generateContent is never called.
    expect(s.sim.stats().byMethod["countTokens"]?.received).toBe(1);
    expect(s.sim.stats().byMethod["generateContent"]?.received ?? 0).toBe(0);
  });
});

describe("WAIT", () => {
  it("waits in line until the time the database named (a cooldown ending in 1.5 s), then succeeds", async () => {
    await s.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
                values ('proj-one', ${GEMMA}, now() + interval '1500 milliseconds', 'test')`;
    const res = await s.call({ model: "gemma-3-27b", prompt: "patience", mode: "WAIT", max_wait_ms: 10_000, request_id: "wait-ok" });
    expect(res.status).toBe(200);
    expect(res.ms).toBeGreaterThanOrEqual(res.body.waited_ms);
    // The refusal that queued it wrote no row (it was a place in line, not an attempt); the
    // admission records the wait, and came after the cooldown.
    const rows = await s.sql`select status, limit_hit, attempt, wait_ms,
                                    created_at >= (select cooldown_until from public.google_ai_cooldowns
                                                   where quota_group = 'proj-one') as after_cooldown
                             from public.google_ai_attempts where request_id = 'wait-ok' order by id`;
    expect(rows).toEqual([
      { status: "succeeded", limit_hit: null, attempt: 1, wait_ms: res.body.waited_ms, after_cooldown: true },
    ]);
    expect(res.body.waited_ms).toBeGreaterThan(1_000);
    expect(res.body.waited_ms).toBeLessThanOrEqual(1_500);
    expect(await s.sql`select 1 from public.google_ai_queue where request_id = 'wait-ok'`).toHaveLength(0);
    expect(s.sim.stats().total.received).toBe(1);
  });

  it("answers at once, like NO_WAIT, when the capacity comes back later than max_wait_ms", async () => {
    await s.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
                values ('proj-one', ${GEMMA}, now() + interval '30 seconds', 'test')`;
    const res = await s.call({ model: GEMMA, prompt: "impatient", mode: "WAIT", max_wait_ms: 1200, request_id: "wait-give-up" });
    const retryAfterMs = expectRateLimited(res, "cooldown");
    expect(retryAfterMs).toBeGreaterThan(25_000);
    expect(retryAfterMs).toBeLessThanOrEqual(30_000);
    // It did not sleep: one refused row with no wait on it, and no place kept in line.
    const rows = await s.sql`select status, limit_hit, wait_ms from public.google_ai_attempts
                             where request_id = 'wait-give-up' order by id`;
    expect(rows).toEqual([{ status: "refused", limit_hit: "cooldown", wait_ms: 0 }]);
    expect(await s.sql`select 1 from public.google_ai_queue where request_id = 'wait-give-up'`).toHaveLength(0);
    expect(s.sim.stats().total.received).toBe(0);
  });
});

describe("a burst", () => {
  it("100 concurrent NO_WAIT requests with RPM 30 on one quota group: exactly 30 succeed, Google sees exactly 30", async () => {
    await awayFromMinuteEdge(15_000);
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        s.call({ model: "gemma-3-27b", prompt: `burst ${i}`, mode: "NO_WAIT", request_id: `burst-${i}` })),
    );
    const elapsed = performance.now() - started;
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    console.log(`burst of 100 NO_WAIT requests (RPM 30): ${ok.length} x 200, ${limited.length} x 429 in ${elapsed.toFixed(0)} ms`);
    expect(ok).toHaveLength(30);
    expect(limited).toHaveLength(70);
    for (const r of limited) expectRateLimited(r, "rpm");
    expect(s.sim.stats().total.received).toBe(30);
    expect(s.sim.stats().total.byStatus).toEqual({ "200": 30 });
    const counts = await s.sql`select status, count(*)::int as n from public.google_ai_attempts
                               where request_id like 'burst-%' group by status order by status`;
    expect(counts).toEqual([{ status: "refused", n: 70 }, { status: "succeeded", n: 30 }]);
    const [counter] = await s.sql`select rpm_used from public.google_ai_usage_counters where quota_group = 'proj-one'`;
    expect(counter).toEqual({ rpm_used: 30 });
    const [{ n }] = await s.sql`select count(*)::int as n from public.token_usage where request_id like 'burst-%'`;
    expect(n).toBe(30);
  });
});
