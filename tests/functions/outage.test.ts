// A database outage, for real: the three functions served by Deno against their own PostgreSQL,
// which the tests stop, start again and stop between Google's answer and finalize.
//   - stopped: every function answers 503 `unavailable` with Retry-After, one caller or 20 at once;
//   - restarted: the pools' stale connections cost no caller a 503;
//   - stopped while Google answers: the success is finalized once the database is back
//     (`succeeded`, a token_usage row), not left `reserved`.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type postgres from "postgres";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { type StoppablePostgres, startStoppablePostgres } from "../../shared/db/stoppable-postgres.ts";
import { queryOnce } from "../support/query-once.ts";
import { DEFAULT_DB_TIMEOUTS } from "../../supabase/functions/_shared/db.ts";
import { eventually, sleep } from "./llm-invoke-helpers.ts";

const FUNCTIONS = ["llm-invoke", "issue-kaggle-token", "maintenance"] as const;
type FunctionName = (typeof FUNCTIONS)[number];
/** The simulator holds each answer this long: time to stop the database between reserve and finalize. */
const GOOGLE_LATENCY_MS = 1_500;

let pg: StoppablePostgres;
let stack: LocalStack;
const logs: string[] = [];

beforeAll(async () => {
  pg = await startStoppablePostgres();
  stack = await startLocalStack({
    functionsPort: 0,
    databaseUrl: pg.url,
    google: "simulator",
    simulatorOptions: { latencyMs: GOOGLE_LATENCY_MS },
    only: [...FUNCTIONS],
    log: (line) => logs.push(line),
  });
  for (const name of FUNCTIONS) {
    if (!(name in stack.functions.functions)) throw new Error(`${name} did not start: ${stack.functions.failed[name]}`);
  }
  // Outages are tested here, not the window's spread: the requests of one round go at once.
  await query("update public.google_ai_model_limits set spread_burst = null");
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await pg?.close();
});

/** Queries on a short-lived connection (the test's own pool must not outlive a stop). */
const query = <T extends object>(text: string, params: postgres.ParameterOrJSON<never>[] = []) => queryOnce<T>(pg.url, text, params);

interface Answer {
  fn: FunctionName;
  status: number;
  /** Milliseconds until the answer (held against the database deadline, not a speed target). */
  ms: number;
  retryAfter: string | null;
  body: { error?: { code?: string } } & Record<string, unknown>;
}

/** One typical request to each function (a Kaggle secret that no client has: the database decides). */
async function call(fn: FunctionName, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  let payload: unknown = body;
  if (fn === "llm-invoke") {
    headers.authorization = `Bearer ${stack.serviceKey}`;
    payload ??= { model: "gemma-3-27b", prompt: "Что такое EVE?", mode: "NO_WAIT" };
  } else if (fn === "maintenance") {
    headers.authorization = `Bearer ${stack.serviceKey}`;
    payload ??= { keys: false };
  } else {
    payload ??= { client_secret: `evegw_cs_${randomBytes(32).toString("base64url")}` };
  }
  const started = Date.now();
  const res = await fetch(`${stack.functionsUrl}/functions/v1/${fn}`, {
    method: "POST",
    headers,
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  let parsed: Answer["body"] = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { raw: text };
  }
  return { fn, status: res.status, ms: Date.now() - started, retryAfter: res.headers.get("retry-after"), body: parsed };
}

/** What each function answers when its database is up (the Kaggle secret belongs to no client). */
const HEALTHY: Record<FunctionName, number> = { "llm-invoke": 200, "issue-kaggle-token": 401, maintenance: 200 };

/** Waits for every function to answer as usual again (each may still be in its short down state). */
async function allHealthy(): Promise<void> {
  for (const fn of FUNCTIONS) {
    await eventually(async () => (await call(fn)).status === HEALTHY[fn], 30_000);
  }
}

function expectUnavailable(answers: Answer[]) {
  for (const a of answers) {
    expect({ fn: a.fn, status: a.status, code: a.body.error?.code }).toEqual({ fn: a.fn, status: 503, code: "unavailable" });
    expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
  }
}

describe("a database outage", () => {
  it("answers 503 unavailable with Retry-After from each function while the database is stopped", async () => {
    await allHealthy(); // pools warm: each function holds open connections when the database goes
    await pg.stop();
    try {
      expectUnavailable(await Promise.all(FUNCTIONS.map((fn) => call(fn))));
      // Again, now that each function knows the database is down.
      expectUnavailable(await Promise.all(FUNCTIONS.map((fn) => call(fn))));
    } finally {
      await pg.start();
    }
    await allHealthy();
  }, 120_000);

  it("answers 20 concurrent callers of each function with 503 unavailable, none hanging", async () => {
    await allHealthy();
    await pg.stop();
    const started = Date.now();
    let answers: Answer[];
    try {
      answers = await Promise.all(FUNCTIONS.flatMap((fn) => Array.from({ length: 20 }, () => call(fn))));
    } finally {
      await pg.start();
    }
    const elapsed = Date.now() - started;
    expect(answers.length).toBe(60);
    expectUnavailable(answers);
    const counts = Object.fromEntries(FUNCTIONS.map((fn) => [fn, answers.filter((a) => a.fn === fn && a.status === 503).length]));
    expect(counts).toEqual({ "llm-invoke": 20, "issue-kaggle-token": 20, maintenance: 20 });
    expect(elapsed).toBeLessThan(30_000); // hang guard only (it took 54 s at the median before)
    // No caller waited on the dead database past one call's deadline (a probe is not waited for longer).
    expect(answers.filter((a) => a.ms > DEFAULT_DB_TIMEOUTS.deadlineMs)).toEqual([]);
    await allHealthy();
  }, 120_000);

  it("serves the first request after a restart: stale pooled connections are replaced, not answered with 503", async () => {
    await allHealthy();
    // Restart with no request in between: every pooled connection of every function is now stale.
    await pg.stop();
    await pg.start();
    const answers = await Promise.all(FUNCTIONS.map((fn) => call(fn)));
    expect(answers.map((a) => ({ fn: a.fn, status: a.status }))).toEqual(
      FUNCTIONS.map((fn) => ({ fn, status: HEALTHY[fn] })),
    );
  }, 120_000);

  it("serves the first burst of 12 concurrent requests 1 s after a restart that cut callers: none answered 503", async () => {
    await allHealthy();
    await pg.stop();
    let cut: Answer[];
    try {
      cut = await Promise.all(Array.from({ length: 12 }, () => call("llm-invoke")));
    } finally {
      await pg.start();
    }
    expect(cut.map((a) => a.status)).toEqual(Array(12).fill(503)); // llm-invoke found the database down
    await sleep(1_000);
    const burst = await Promise.all(Array.from({ length: 12 }, () => call("llm-invoke")));
    // Served: 200s, and 429s only where the model's own window is full; no 503.
    expect(burst.filter((a) => a.status !== 200 && a.status !== 429).map((a) => a.status)).toEqual([]);
    expect(burst.filter((a) => a.status === 200).length).toBeGreaterThan(0);
  }, 120_000);

  it("finalizes a success whose database went away between Google's answer and finalize", async () => {
    await allHealthy();
    const requestId = `outage-${randomBytes(6).toString("hex")}`;
    const before = await query<{ n: number }>("select count(*)::int as n from public.token_usage");
    const pending = call("llm-invoke", { model: "gemma-3-27b", prompt: "Что такое EVE?", request_id: requestId });
    // The reservation is booked; Google (the simulator) holds its answer for GOOGLE_LATENCY_MS.
    await eventually(async () => {
      const rows = await query<{ status: string }>(
        "select status from public.google_ai_attempts where request_id = $1",
        [requestId],
      );
      return rows[0]?.status === "reserved";
    }, 10_000);
    const logged = logs.length;
    await pg.stop();
    try {
      // The answer arrived and finalize found no database: it keeps retrying.
      await eventually(async () => logs.slice(logged).some((l) => /finalize \S+ failed \(try 1\)/.test(l)), 20_000);
      await sleep(1_000);
    } finally {
      await pg.start();
    }
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.body.request_id).toBe(requestId);

    const [attempt] = await query<{ status: string; output_tokens: number | null; http_status: number | null }>(
      "select status, output_tokens, http_status from public.google_ai_attempts where request_id = $1",
      [requestId],
    );
    expect(attempt).toMatchObject({ status: "succeeded", http_status: 200 });
    expect(attempt!.output_tokens).toBeGreaterThan(0);
    const after = await query<{ n: number }>("select count(*)::int as n from public.token_usage");
    expect(after[0]!.n).toBe(before[0]!.n + 1);
    // The caller's own request_id: the answer is stored for replay too.
    const [stored] = await query<{ status: string }>(
      "select status from public.google_ai_responses where request_id = $1",
      [requestId],
    );
    expect(stored?.status).toBe("done");
    expect(logs.slice(logged).some((l) => /landed on try \d+/.test(l))).toBe(true);
    expect(logs.join("\n")).not.toMatch(/finalize_lost/);
  }, 120_000);
});
