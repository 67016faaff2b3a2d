// Retries and cooldowns over HTTP, with the simulator told to fail: a 429 with RetryInfo cools that
// quota group down and the request succeeds on another key; a per-day 429 keeps the group out until
// Pacific midnight; 5xx and timeouts are retried on another key; never more than 3 calls reach
// Google; a Google 400 is not retried; a key whose secret is missing is released, not called.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const GEMMA = "gemma-3-27b-it";
const ACTIVE = ["main-a", "main-b", "main-c"];

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_retries", {
    keys: [
      { alias: "main-a", project: "proj-a", priority: 1, simKey: "sim-key-a" },
      { alias: "main-b", project: "proj-b", priority: 2, simKey: "sim-key-b" },
      { alias: "main-c", project: "proj-c", priority: 3, simKey: "sim-key-c" },
      { alias: "no-secret", project: "proj-d", priority: 0, simKey: "sim-key-d", noSecret: true },
    ],
    env: { LLM_INVOKE_ATTEMPT_TIMEOUT_MS: "1500", LLM_INVOKE_BACKOFF_BASE_MS: "100" },
  });
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`update public.google_ai_api_keys set is_active = (key_alias = any (${ACTIVE}::text[]))`;
});

async function attemptsOf(requestId: string) {
  return await s.sql`select attempt, status, key_alias, http_status, error_code, quota_id
                     from public.google_ai_attempts where request_id = ${requestId} order by id`;
}

const received = (simKey: string) => s.sim.stats().byKey[simKey]?.received ?? 0;

describe("Google's 429", () => {
  it("with RetryInfo: cools that group down for the named delay and succeeds on another key", async () => {
    s.sim.setFaults([{ kind: "rate_limited", apiKey: "sim-key-a", count: 1, retryDelay: "20s" }]);
    const res = await s.call({ model: "gemma-3-27b", prompt: "hello", request_id: "r429" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ key_alias: "main-b", attempts: 2 });
    expect(await attemptsOf("r429")).toEqual([
      {
        attempt: 1,
        status: "upstream_error",
        key_alias: "main-a",
        http_status: 429,
        error_code: "RESOURCE_EXHAUSTED",
        quota_id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
      },
      { attempt: 2, status: "succeeded", key_alias: "main-b", http_status: 200, error_code: null, quota_id: null },
    ]);
    const [cd] = await s.sql`select extract(epoch from cooldown_until - now())::float as left_s, quota_id, reason
                             from public.google_ai_cooldowns where quota_group = 'proj-a' and model = ${GEMMA}`;
    expect(cd!.left_s).toBeGreaterThan(17);
    expect(cd!.left_s).toBeLessThanOrEqual(20.5);
    expect(cd).toMatchObject({ quota_id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", reason: "RESOURCE_EXHAUSTED" });

    // While it cools down, the group is skipped without a call to Google.
    const next = await s.call({ model: GEMMA, prompt: "again" });
    expect(next.body).toMatchObject({ key_alias: "main-b", attempts: 1 });
    expect(received("sim-key-a")).toBe(1);
    expect(received("sim-key-b")).toBe(2);
  });

  it("per day: the group stays out until Pacific midnight (cooldown row), the request succeeds elsewhere", async () => {
    s.sim.setFaults([{ kind: "day_exhausted", project: "sim-proj-a", model: GEMMA, count: 1 }]);
    const res = await s.call({ model: GEMMA, prompt: "daily", request_id: "rpd429" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ key_alias: "main-b", attempts: 2 });
    const rows = await attemptsOf("rpd429");
    expect(rows[0]).toMatchObject({ status: "upstream_error", http_status: 429, quota_id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier" });
    const [cd] = await s.sql`select cooldown_until = public.google_ai_pacific_midnight_after(now()) as at_midnight,
                                    cooldown_until
                             from public.google_ai_cooldowns where quota_group = 'proj-a' and model = ${GEMMA}`;
    expect(cd!.at_midnight).toBe(true);

    // With only that group left, callers get 429 with the wait until midnight, at once, even in WAIT.
    await s.sql`update public.google_ai_api_keys set is_active = (key_alias = 'main-a')`;
    for (const mode of ["NO_WAIT", "WAIT"]) {
      const out = await s.call({ model: GEMMA, prompt: "still there?", mode });
      expect(out.status).toBe(429);
      expect(out.body).toMatchObject({ error: { code: "rate_limited" }, limit: "cooldown" });
      const expected = (cd!.cooldown_until as Date).getTime() - Date.now();
      expect(Math.abs(out.body.retry_after_ms - expected)).toBeLessThan(2000);
      expect(out.headers.get("retry-after")).toBe(String(Math.ceil(out.body.retry_after_ms / 1000)));
      // Answered without waiting for midnight (hours away): a generous bound, not a latency target.
      expect(out.ms).toBeLessThan(30_000);
    }
    expect(received("sim-key-a")).toBe(1);
  });
});

describe("failures that are retried", () => {
  it("a 500 is retried on another key", async () => {
    s.sim.setFaults([{ kind: "http500", count: 1 }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "r500" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ attempts: 2, key_alias: "main-b" });
    expect((await attemptsOf("r500")).map((r) => [r.status, r.key_alias, r.http_status])).toEqual([
      ["upstream_error", "main-a", 500],
      ["succeeded", "main-b", 200],
    ]);
    expect(s.sim.stats().total.received).toBe(2);
    // A 5xx is no quota signal: no cooldown.
    expect(await s.sql`select * from public.google_ai_cooldowns`).toHaveLength(0);
  });

  it("a timeout (Google hangs) is retried on another key", async () => {
    s.sim.setFaults([{ kind: "hang", count: 1 }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "rhang" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ attempts: 2, key_alias: "main-b" });
    expect(res.ms).toBeGreaterThanOrEqual(1500);
    expect((await attemptsOf("rhang")).map((r) => [r.status, r.key_alias])).toEqual([
      ["timeout", "main-a"],
      ["succeeded", "main-b"],
    ]);
    expect(s.sim.stats().total.received).toBe(2);
  });

  it("a malformed 200 is retried", async () => {
    s.sim.setFaults([{ kind: "malformed", count: 1 }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "rmal" });
    expect(res.status).toBe(200);
    expect(res.body.attempts).toBe(2);
  });

  it("never more than 3 calls reach Google: 503 on every key -> 502 after exactly 3", async () => {
    s.sim.setFaults([{ kind: "http503" }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "r503" });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe("upstream_error");
    expect(s.sim.stats().total.received).toBe(3);
    expect((await attemptsOf("r503")).map((r) => [r.attempt, r.status, r.key_alias, r.http_status])).toEqual([
      [1, "upstream_error", "main-a", 503],
      [2, "upstream_error", "main-b", 503],
      [3, "upstream_error", "main-c", 503],
    ]);
  });

  it("never more than 3 calls reach Google: hanging everywhere -> 504 after exactly 3 timeouts", async () => {
    s.sim.setFaults([{ kind: "hang" }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "rhang3" });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("upstream_timeout");
    expect(s.sim.stats().total.received).toBe(3);
    expect((await attemptsOf("rhang3")).map((r) => r.status)).toEqual(["timeout", "timeout", "timeout"]);
  }, 30_000);

  it("with one key left, a 5xx is retried on the same key (at most 3 calls)", async () => {
    await s.sql`update public.google_ai_api_keys set is_active = (key_alias = 'main-a')`;
    s.sim.setFaults([{ kind: "http500", count: 2 }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "rsame" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ attempts: 3, key_alias: "main-a" });
    expect(received("sim-key-a")).toBe(3);
  });
});

describe("failures that are not retried", () => {
  it("a 400 from Google goes back to the caller after one call", async () => {
    s.sim.setFaults([{ kind: "bad_request", message: "Request contains an invalid argument: topK." }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "r400" });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "upstream_rejected", details: { upstream_status: 400 } });
    expect(res.body.error.message).toContain("invalid argument: topK");
    expect(s.sim.stats().total.received).toBe(1);
    expect((await attemptsOf("r400")).map((r) => [r.status, r.http_status])).toEqual([["upstream_error", 400]]);
  });

  it("a key Google calls invalid is left out and the request succeeds on another", async () => {
    s.sim.setFaults([{ kind: "invalid_key", apiKey: "sim-key-a" }]);
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "rkey" });
    expect(res.status).toBe(200);
    expect(res.body.key_alias).toBe("main-b");
    expect((await attemptsOf("rkey"))[0]).toMatchObject({ status: "upstream_error", error_code: "API_KEY_INVALID" });
  });
});

describe("a key whose secret is not set", () => {
  it("is released without calling Google and does not use up an attempt", async () => {
    await s.sql`update public.google_ai_api_keys set is_active = true`; // no-secret has priority 0
    const res = await s.call({ model: GEMMA, prompt: "x", request_id: "rsecret" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ key_alias: "main-a", attempts: 1 });
    expect((await attemptsOf("rsecret")).map((r) => [r.attempt, r.status, r.key_alias])).toEqual([
      [1, "released", "no-secret"],
      [1, "succeeded", "main-a"],
    ]);
    const [counter] = await s.sql`select rpm_used, rpd_used from public.google_ai_usage_counters where quota_group = 'proj-d'`;
    expect(counter).toEqual({ rpm_used: 0, rpd_used: 0 }); // the booking was given back
    expect(s.sim.stats().total.received).toBe(1);
    expect(s.logs.some((l) => l.includes("is not set"))).toBe(true);
  });
});
