// No ghosts after an outage, for real: llm-invoke served by Deno (the local functions server of
// `npm start`) against its own PostgreSQL, which the tests freeze (SIGSTOP on every server process)
// while 20 callers with their own request_ids come in, and a Deno process the tests kill.
//   - frozen: every caller is answered 503 `unavailable`; the reservations the frozen server had
//     received run when it thaws and are rolled back (their callers stopped waiting): no attempt row,
//     no admission in the window, no in-flight claim is left for anyone (counted in the database);
//     the same callers repeating their request_ids as the 503 asked are served, never told 409;
//   - the same in WAIT mode behind a full minute: the refusals and queue tickets the frozen server
//     would commit late are rolled back too, so no ticket holds a claim or a place for nobody;
//   - a repeat while the first call is really in flight (Google holds its answer) is told 409 in
//     progress, then the stored answer;
//   - kill -9 of llm-invoke's process: the server starts it again and requests answer 200.
// Heavy (a frozen database, ~10 s): run it on its own.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type postgres from "postgres";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { type StoppablePostgres, startStoppablePostgres } from "../../shared/db/stoppable-postgres.ts";
import { queryOnce } from "../support/query-once.ts";
import { eventually, sleep } from "./llm-invoke-helpers.ts";

const CALLERS = 20;
/** The simulator holds each answer this long: time for a repeat to find the first call in flight. */
const GOOGLE_LATENCY_MS = 1_000;

let pg: StoppablePostgres;
let stack: LocalStack;
const logs: string[] = [];

beforeAll(async () => {
  pg = await startStoppablePostgres();
  stack = await startLocalStack({
    functionsPort: 0,
    databaseUrl: pg.url,
    google: "simulator",
    // Google too has room for every call of these tests (its own 429 is not what is counted here).
    simulatorOptions: { latencyMs: GOOGLE_LATENCY_MS, models: { "gemma-3-27b-it": { rpm: 10_000, rpd: 100_000 } } },
    only: ["llm-invoke"],
    log: (line) => logs.push(line),
  });
  if (!("llm-invoke" in stack.functions.functions)) {
    throw new Error(`llm-invoke did not start: ${stack.functions.failed["llm-invoke"]}`);
  }
  // Room for every call of these tests in one minute: a refusal would hide what is counted here.
  // Ghosts are tested here, not the window's spread: the requests of one round go at once.
  await query("update public.google_ai_model_limits set rpm = 1000, tpm = 10000000, rpd = 100000, spread_burst = null where model = 'gemma-3-27b-it'");
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await pg?.close();
});

/** Queries on a short-lived connection (the test's own pool must not outlive a freeze). */
const query = <T extends object>(text: string, params: postgres.ParameterOrJSON<never>[] = []) => queryOnce<T>(pg.url, text, params);

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { error?: { code?: string }; request_id?: string; text?: string; replayed?: boolean } & Record<string, unknown>;
}

async function invoke(requestId?: string, wait?: { maxWaitMs: number }): Promise<Answer> {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/llm-invoke`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.serviceKey}` },
    body: JSON.stringify({
      model: "gemma-3-27b",
      prompt: "Что такое EVE?",
      ...(wait === undefined ? { mode: "NO_WAIT" } : { mode: "WAIT", max_wait_ms: wait.maxWaitMs }),
      ...(requestId === undefined ? {} : { request_id: requestId }),
    }),
  });
  const text = await res.text();
  let body: Answer["body"] = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body };
}

async function healthy(): Promise<void> {
  await eventually(async () => (await invoke()).status === 200, 30_000);
}

// Attempt ids come from a sequence, which a rollback does not give back: ids used by rows that do
// not exist count the statements the database ran and rolled back.
const LAST_ID = `(select coalesce(s.last_value, 0)::int from pg_sequences s
  where format('%I.%I', s.schemaname, s.sequencename) = pg_get_serial_sequence('public.google_ai_attempts', 'id'))`;

/** The backends of llm-invoke's pool now: a freeze finds them holding what it sends. */
async function pooledBackends(): Promise<number[]> {
  return (await query<{ pid: number }>("select pid from pg_stat_activity where application_name = 'llm-invoke'"))
    .map((r) => r.pid);
}

/** Until the backends the function gave up have run what the frozen server had received, and ended. */
async function drained(pooled: number[]): Promise<void> {
  await eventually(async () => {
    const [{ remaining }] = await query<{ remaining: number }>(
      "select count(*)::int as remaining from pg_stat_activity where pid = any ($1)",
      [pooled],
    );
    return remaining === 0;
  }, 30_000);
}

/** What a caller does after a 503: waits Retry-After and repeats the same request_id (at most 10 times). */
async function repeatAsAsked(requestId: string, first: Answer): Promise<Answer[]> {
  const answers: Answer[] = [];
  let last = first;
  for (let i = 0; i < 10 && last.status === 503; i++) {
    await sleep(Number(last.retryAfter ?? "1") * 1000);
    last = await invoke(requestId);
    answers.push(last);
  }
  return answers;
}

describe("after a frozen database", () => {
  it("serves the first burst of 12 concurrent requests 1 s after the thaw: none answered 503", async () => {
    await healthy(); // the pool holds open connections: the frozen server receives the statements
    await pg.freeze();
    let cut: Answer[];
    try {
      cut = await Promise.all(Array.from({ length: 12 }, () => invoke()));
    } finally {
      await pg.thaw();
    }
    // The function found the database down (it no longer waits for it)...
    expect(cut.map((a) => a.status)).toEqual(Array(12).fill(503));
    expect(logs.some((l) => /database down/.test(l))).toBe(true);
    // ...and the burst after it waits for one probe and is served together, not refused but for one.
    await sleep(1_000);
    const burst = await Promise.all(Array.from({ length: 12 }, () => invoke()));
    expect(burst.map((a) => a.status)).toEqual(Array(12).fill(200));
  }, 120_000);

  it("leaves no reservation, admission or claim of the callers it timed out, and serves their repeats", async () => {
    await healthy(); // the pool holds open connections: the frozen server receives the statements
    const ids = Array.from({ length: CALLERS }, (_, i) => `ghost-${i}-${randomBytes(4).toString("hex")}`);
    const [{ before }] = await query<{ before: number }>(`select ${LAST_ID} as before`);
    const pooled = await pooledBackends();
    expect(pooled.length).toBeGreaterThan(0);

    await pg.freeze();
    let first: Answer[];
    try {
      first = await Promise.all(ids.map((id) => invoke(id)));
    } finally {
      await pg.thaw();
    }
    for (const a of first) {
      expect({ status: a.status, code: a.body.error?.code }).toEqual({ status: 503, code: "unavailable" });
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
    }

    // The statements the frozen server had received run now, on the connections the function gave up
    // (it dropped its pool): each of those backends ends once it has run what it received.
    await drained(pooled);
    const [left] = await query<{ attempts: number; admissions: number; claims: number; rolledBack: number }>(
      `select (select count(*)::int from public.google_ai_attempts where request_id = any ($1)) as attempts,
              (select count(*)::int from public.google_ai_attempts a
                 where a.request_id = any ($1) and a.admitted_at is not null and a.status not in ('released', 'withdrawn')) as admissions,
              (select count(*)::int from public.google_ai_responses where request_id = any ($1)) as claims,
              ${LAST_ID} - $2::int - (select count(*)::int from public.google_ai_attempts where id > $2::int) as "rolledBack"`,
      [ids, before],
    );
    // The frozen server did run reservations for these callers (with no fix, each stays: 16 of 20 in a
    // run), and rolled each back: their callers had stopped waiting.
    expect(left!.rolledBack).toBeGreaterThan(0);
    expect({ attempts: left!.attempts, admissions: left!.admissions, claims: left!.claims })
      .toEqual({ attempts: 0, admissions: 0, claims: 0 });

    // Each caller repeats as the 503 asked: served, never told its own request is in progress.
    const repeats = await Promise.all(ids.map((id, i) => repeatAsAsked(id, first[i]!)));
    const statuses = repeats.flat().map((a) => a.status);
    expect(statuses.filter((s) => s === 409)).toEqual([]);
    expect(repeats.map((r) => r.at(-1)?.status)).toEqual(ids.map(() => 200));
    repeats.forEach((r, i) => expect(r.at(-1)!.body.request_id).toBe(ids[i]));

    // One call to Google per request, its answer stored; nothing left reserved.
    const rows = await query<{ request_id: string; status: string; n: number }>(
      `select request_id, status, count(*)::int as n from public.google_ai_attempts
       where request_id = any ($1) group by request_id, status`,
      [ids],
    );
    expect(rows.every((r) => r.status === "succeeded" && r.n === 1)).toBe(true);
    expect(rows.length).toBe(CALLERS);
    const [{ done }] = await query<{ done: number }>(
      "select count(*)::int as done from public.google_ai_responses where request_id = any ($1) and status = 'done'",
      [ids],
    );
    expect(done).toBe(CALLERS);
  }, 180_000);

  it("WAIT behind a full minute: no refusal, ticket or claim of the callers it timed out; their repeats are served", async () => {
    await healthy(); // an admission in the window: with one request a minute, every caller below is refused
    const ids = Array.from({ length: CALLERS / 2 }, (_, i) => `waiter-${i}-${randomBytes(4).toString("hex")}`);
    await query("update public.google_ai_model_limits set rpm = 1 where model = 'gemma-3-27b-it'");
    try {
      // A ticket takes no id from a sequence: the database's count of rolled-back transactions counts them.
      const ROLLBACKS = "(select xact_rollback::int from pg_stat_database where datname = current_database())";
      const [{ before }] = await query<{ before: number }>(`select ${ROLLBACKS} as before`);
      const pooled = await pooledBackends();
      expect(pooled.length).toBeGreaterThan(0);
      await pg.freeze();
      let first: Answer[];
      try {
        first = await Promise.all(ids.map((id) => invoke(id, { maxWaitMs: 60_000 })));
      } finally {
        await pg.thaw();
      }
      for (const a of first) {
        expect({ status: a.status, code: a.body.error?.code }).toEqual({ status: 503, code: "unavailable" });
      }
      await drained(pooled);
      const [left] = await query<{ attempts: number; tickets: number; claims: number; rolledBack: number }>(
        `select (select count(*)::int from public.google_ai_attempts where request_id = any ($1)) as attempts,
                (select count(*)::int from public.google_ai_queue where request_id = any ($1)) as tickets,
                (select count(*)::int from public.google_ai_responses where request_id = any ($1)) as claims,
                ${ROLLBACKS} - $2::int as "rolledBack"`,
        [ids, before],
      );
      // The frozen server did run the callers' reservations (refused: a ticket each), and rolled them
      // back: with no fix, each ticket stays, holding its request's claim and a place in line.
      expect(left!.rolledBack).toBeGreaterThan(0);
      expect({ attempts: left!.attempts, tickets: left!.tickets, claims: left!.claims })
        .toEqual({ attempts: 0, tickets: 0, claims: 0 });
    } finally {
      await query("update public.google_ai_model_limits set rpm = 1000 where model = 'gemma-3-27b-it'");
    }
    // Room again: each caller repeats as the 503 asked and is served, never told 409.
    const repeats = await Promise.all(ids.map((id) => repeatAsAsked(id, { status: 503, retryAfter: "1", body: {} })));
    expect(repeats.flat().map((a) => a.status).filter((s) => s === 409)).toEqual([]);
    expect(repeats.map((r) => r.at(-1)?.status)).toEqual(ids.map(() => 200));
  }, 180_000);

  it("tells a repeat of a request really in flight 409 in progress, then replays the stored answer", async () => {
    await healthy();
    const requestId = `inflight-${randomBytes(4).toString("hex")}`;
    // Google holds its answer until the repeat has been told: in flight however slow the machine.
    const release = stack.simulator!.holdAnswers();
    const pending = invoke(requestId);
    let during: Answer;
    try {
      await eventually(async () => {
        const rows = await query<{ status: string }>(
          "select status from public.google_ai_attempts where request_id = $1",
          [requestId],
        );
        return rows[0]?.status === "reserved";
      }, 30_000);
      during = await invoke(requestId);
    } finally {
      release();
    }
    expect({ status: during.status, code: during.body.error?.code }).toEqual({ status: 409, code: "request_in_progress" });
    // Until the holder's own bound (its 140 s budget, within which a success's finalize may still
    // run, plus two 6 s database deadlines), not a fixed lease.
    expect(Number(during.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(during.retryAfter)).toBeLessThanOrEqual(152);
    const answer = await pending;
    expect(answer.status).toBe(200);
    const after = await invoke(requestId);
    expect(after.status).toBe(200);
    expect(after.body.replayed).toBe(true);
    expect(after.body.text).toBe(answer.body.text);
  }, 60_000);
});

describe("a crashed llm-invoke process", () => {
  it("is started again by the local server: requests answer 200 again", async () => {
    await healthy();
    const pid = stack.functions.functions["llm-invoke"]!.pid!;
    process.kill(pid, "SIGKILL");
    await eventually(async () => (await invoke()).status === 200, 30_000);
    const newPid = stack.functions.functions["llm-invoke"]!.pid!;
    expect(newPid).not.toBe(pid);
    expect(logs.some((l) => l.startsWith("[llm-invoke] exited (SIGKILL)"))).toBe(true);
    expect(logs.some((l) => l.startsWith(`[llm-invoke] running again (pid ${newPid})`))).toBe(true);
  }, 60_000);
});
