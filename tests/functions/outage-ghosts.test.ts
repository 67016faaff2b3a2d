// No ghosts after an outage, for real: llm-invoke served by Deno (the local functions server of
// `npm start`) against its own PostgreSQL, which the tests freeze (SIGSTOP on every server process)
// while 20 callers with their own request_ids come in, and a Deno process the tests kill.
//   - frozen: every caller is answered 503 `unavailable`; the reservations the frozen server had
//     received run when it thaws and are rolled back (their callers stopped waiting): no attempt row,
//     no admission in the window, no in-flight claim is left for anyone (counted in the database);
//     the same callers repeating their request_ids as the 503 asked are served, never told 409;
//   - a repeat while the first call is really in flight is told 409 in progress, then the stored answer;
//   - kill -9 of llm-invoke's process: the server starts it again and requests answer 200.
// Heavy (a frozen database, ~10 s): run it on its own.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { type StoppablePostgres, startStoppablePostgres } from "../../shared/db/stoppable-postgres.ts";
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
    simulatorOptions: { latencyMs: GOOGLE_LATENCY_MS },
    only: ["llm-invoke"],
    log: (line) => logs.push(line),
  });
  if (!("llm-invoke" in stack.functions.functions)) {
    throw new Error(`llm-invoke did not start: ${stack.functions.failed["llm-invoke"]}`);
  }
  // Room for every call of these tests in one minute: a refusal would hide what is counted here.
  await query("update public.google_ai_model_limits set rpm = 1000, tpm = 10000000, rpd = 100000 where model = 'gemma-3-27b-it'");
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await pg?.close();
});

/** Queries on a short-lived connection (the test's own pool must not outlive a freeze). */
async function query<T extends object>(text: string, params: postgres.ParameterOrJSON<never>[] = []): Promise<T[]> {
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    return (await sql.unsafe(text, params)) as unknown as T[];
  } finally {
    await sql.end({ timeout: 1 });
  }
}

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { error?: { code?: string }; request_id?: string; text?: string; replayed?: boolean } & Record<string, unknown>;
}

async function invoke(requestId?: string): Promise<Answer> {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/llm-invoke`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.serviceKey}` },
    body: JSON.stringify({
      model: "gemma-3-27b",
      prompt: "Что такое EVE?",
      mode: "NO_WAIT",
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
  it("leaves no reservation, admission or claim of the callers it timed out, and serves their repeats", async () => {
    await healthy(); // the pool holds open connections: the frozen server receives the statements
    const ids = Array.from({ length: CALLERS }, (_, i) => `ghost-${i}-${randomBytes(4).toString("hex")}`);
    // Attempt ids come from a sequence, which a rollback does not give back: ids used by rows that do
    // not exist count the reservations the database ran and rolled back.
    const LAST_ID = `(select coalesce(s.last_value, 0)::int from pg_sequences s
      where format('%I.%I', s.schemaname, s.sequencename) = pg_get_serial_sequence('public.google_ai_attempts', 'id'))`;
    const [{ before }] = await query<{ before: number }>(`select ${LAST_ID} as before`);
    const pooled = (await query<{ pid: number }>(
      "select pid from pg_stat_activity where application_name = 'llm-invoke'",
    )).map((r) => r.pid);
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
    await eventually(async () => {
      const [{ remaining }] = await query<{ remaining: number }>(
        "select count(*)::int as remaining from pg_stat_activity where pid = any ($1)",
        [pooled],
      );
      return remaining === 0;
    }, 30_000);
    const [left] = await query<{ attempts: number; admissions: number; claims: number; rolledBack: number }>(
      `select (select count(*)::int from public.google_ai_attempts where request_id = any ($1)) as attempts,
              (select count(*)::int from public.google_ai_admissions w join public.google_ai_attempts a using (reservation_id)
                 where a.request_id = any ($1)) as admissions,
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

  it("tells a repeat of a request really in flight 409 in progress, then replays the stored answer", async () => {
    await healthy();
    const requestId = `inflight-${randomBytes(4).toString("hex")}`;
    const pending = invoke(requestId);
    await eventually(async () => {
      const rows = await query<{ status: string }>(
        "select status from public.google_ai_attempts where request_id = $1",
        [requestId],
      );
      return rows[0]?.status === "reserved";
    }, 10_000);
    const during = await invoke(requestId);
    expect({ status: during.status, code: during.body.error?.code }).toEqual({ status: 409, code: "request_in_progress" });
    // Until the holder's own bound (its Google call, finalize, backoff: under its 140 s budget), not a fixed lease.
    expect(Number(during.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(during.retryAfter)).toBeLessThanOrEqual(140);
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
