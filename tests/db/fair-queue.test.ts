// The admission queue, on a real PostgreSQL with the clock injected (google_ai_reserve_models_at's p_now):
// the order it admits in (class first, then turns that alternate between callers), that a refused
// WAIT request learns the exact time of its turn, that a waiter who stops calling gives its turn up,
// and that the queue never admits more than the limit, with 250 connections at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");
const WINDOW_MS = 61_000; // 60 s + the default minute guard

beforeAll(async () => {
  db = await freshDatabase("fair_queue");
  // The queue's order and counts, with only the shares a test writes: no default share of `interactive`.
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
               values ('q1', 'KEY_Q1', 'proj-q', 1)`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Answer {
  ok: boolean;
  limit?: string;
  retry_after_ms?: number;
  retry_at?: string;
  priority?: string;
  queue?: { ticket: string; position: number; expected_at: string; priority: string };
}

interface Ask {
  at: number;
  model: string;
  caller: string;
  /** How much longer the caller would wait (ms); 0: NO_WAIT. */
  waitLeftMs?: number;
  ticket?: string | null;
  priority?: string | null;
  /** A scoped token's hash: the request is its client's (the caller is then ignored). */
  tokenHash?: string;
  sql?: Sql;
}

async function admit(a: Ask): Promise<Answer> {
  const sql = a.sql ?? db.sql;
  const [row] = await sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${new Date(a.at).toISOString()}::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [a.model], estimated_tokens: 10,
      caller: a.tokenHash ? null : a.caller, token_hash: a.tokenHash ?? null, priority: a.priority ?? null,
      queue_ticket: a.ticket ?? null, wait_left_ms: a.waitLeftMs ?? 0 })}::text::jsonb)) as r`;
  return row!.r;
}

async function model(name: string, rpm: number) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${name}, ${rpm}, null, null)`;
}

/** Fills the model's window at `at` with `n` admissions of a caller nobody queues behind. */
async function fill(name: string, n: number, at: number) {
  // As batch: what a higher class took of the window would tell a batch waiter that the higher class
  // will take that part again (google_ai_queue_turn_at's likely_at).
  for (let i = 0; i < n; i++) expect((await admit({ at, model: name, caller: "earlier", priority: "batch" })).ok).toBe(true);
}

interface Waiter {
  caller: string;
  priority?: string;
  ticket: string;
  expectedAt: number;
  admittedAt?: number;
}

/** Queues one WAIT request that cannot be admitted now; returns its waiter. */
async function queue(name: string, caller: string, at: number, priority?: string): Promise<Waiter> {
  const a = await admit({ at, model: name, caller, waitLeftMs: 3_600_000, priority });
  expect(a.ok).toBe(false);
  expect(a.queue).toBeDefined();
  return { caller, priority, ticket: a.queue!.ticket, expectedAt: Date.parse(a.queue!.expected_at) };
}

/**
 * Plays the waiters forward: each wakes at the time its last answer named and calls again; those
 * due at the same moment call in the order given by `order` (the worst case for the test). Returns
 * the admissions in the order they happened.
 */
async function play(name: string, waiters: Waiter[], until: (admitted: Waiter[]) => boolean,
  order: (due: Waiter[]) => Waiter[] = (d) => d): Promise<Waiter[]> {
  const admitted: Waiter[] = [];
  for (let round = 0; round < 2_000 && !until(admitted); round++) {
    const waiting = waiters.filter((w) => w.admittedAt === undefined);
    if (waiting.length === 0) break;
    const now = Math.min(...waiting.map((w) => w.expectedAt));
    for (const w of order(waiting.filter((x) => x.expectedAt <= now))) {
      const a = await admit({ at: now, model: name, caller: w.caller, waitLeftMs: 3_600_000, ticket: w.ticket, priority: w.priority });
      if (a.ok) {
        w.admittedAt = now;
        admitted.push(w);
      } else {
        expect(a.queue?.ticket).toBe(w.ticket); // it keeps its place
        w.expectedAt = Date.parse(a.queue!.expected_at);
        expect(w.expectedAt).toBeGreaterThan(now); // never asked to call again at once
      }
    }
  }
  return admitted;
}

describe("the admission queue", () => {
  it("admits interactive requests queued behind 200 batch requests first in the next window", async () => {
    await model("q-classes", 5);
    await fill("q-classes", 5, T0);
    const batch: Waiter[] = [];
    for (let i = 0; i < 200; i++) batch.push(await queue("q-classes", `notebook-${i % 4}`, T0 + 1_000, "batch"));
    const bot: Waiter[] = [];
    for (let i = 0; i < 3; i++) bot.push(await queue("q-classes", "bot", T0 + 2_000));
    // The bot's turns come with the next window, before the batch requests queued earlier.
    for (const w of bot) expect(w.expectedAt).toBe(T0 + WINDOW_MS);
    const positions = await db.sql<{ position: number }[]>`
      select position from public.google_ai_queue where caller = 'bot' order by position`;
    expect(positions.map((p) => p.position)).toEqual([1, 2, 3]);

    // Worst case: every batch waiter told T0 + 61 s calls before the bot does.
    const admitted = await play("q-classes", [...batch, ...bot], (a) => a.length >= 5,
      (due) => [...due.filter((w) => w.priority === "batch"), ...due.filter((w) => w.priority !== "batch")]);
    expect(admitted.map((w) => w.admittedAt)).toEqual(Array(5).fill(T0 + WINDOW_MS));
    expect(admitted.filter((w) => w.caller === "bot")).toHaveLength(3);
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts
      where model = 'q-classes' and status = 'reserved' and caller <> 'earlier'`;
    expect(n).toBe(5); // the window's limit, not one more
  });

  it("alternates between two batch callers with 100 and 5 queued requests", async () => {
    await model("q-fair", 2);
    await fill("q-fair", 2, T0);
    const waiters: Waiter[] = [];
    for (let i = 0; i < 100; i++) waiters.push(await queue("q-fair", "client:big", T0 + 1_000, "batch"));
    for (let i = 0; i < 5; i++) waiters.push(await queue("q-fair", "client:small", T0 + 2_000, "batch"));
    const admitted = await play("q-fair", waiters, (a) => a.filter((w) => w.caller === "client:small").length === 5,
      (due) => [...due].reverse());
    const order = admitted.map((w) => (w.caller === "client:small" ? "S" : "B")).join("");
    // The turns alternate: the small caller's first takes the big one's first turn, behind it, and each
    // window (2 slots) admits one of each; the small caller's 5 requests are served within the first 10.
    // (Both due at the same moment, the small one calls first: the worst case for the big one's turn.)
    expect(order.slice(0, 10)).toBe("SBSBSBSBSB");
    // Each window admits exactly its limit.
    const perWindow = new Map<number, number>();
    for (const w of admitted) perWindow.set(w.admittedAt!, (perWindow.get(w.admittedAt!) ?? 0) + 1);
    for (const n of perWindow.values()) expect(n).toBeLessThanOrEqual(2);
  });

  it("answers at once with the exact time when the turn lies beyond the caller's wait, keeping no ticket", async () => {
    await model("q-beyond", 2);
    await fill("q-beyond", 2, T0);
    const a = await admit({ at: T0 + 10_000, model: "q-beyond", caller: "impatient", waitLeftMs: 5_000 });
    expect(a).toMatchObject({ ok: false, limit: "rpm" });
    expect(Date.parse(a.retry_at!)).toBe(T0 + WINDOW_MS);
    expect(a.retry_after_ms).toBe(WINDOW_MS - 10_000);
    expect(a.queue).toBeUndefined();
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue where model = 'q-beyond'`;
    expect(n).toBe(0);
    // A NO_WAIT caller behind a queue hears the time of its turn behind it, not the next opening.
    await queue("q-beyond", "patient", T0 + 11_000);
    await queue("q-beyond", "patient-too", T0 + 11_000);
    const late = await admit({ at: T0 + 12_000, model: "q-beyond", caller: "impatient" });
    expect(late.retry_after_ms).toBe(WINDOW_MS * 2 - 12_000);
  });

  it("answers at once, keeping no ticket, when the booking names no reopening (a closed model, a share that keeps every slot)", async () => {
    // Asking again could not help: the answer is immediate, not a ticket every 50 ms.
    await model("q-closed", 0);
    const closed = await admit({ at: T0, model: "q-closed", caller: "patient", waitLeftMs: 30_000 });
    expect(closed).toMatchObject({ ok: false, limit: "rpm" });
    expect(closed.queue).toBeUndefined();
    expect(closed.retry_after_ms ?? null).toBeNull();

    await model("q-kept", 2);
    await db.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm) values ('q-kept', 'interactive', 2)`;
    const batch = await admit({ at: T0, model: "q-kept", caller: "notebook", priority: "batch", waitLeftMs: 30_000 });
    expect(batch).toMatchObject({ ok: false, limit: "rpm" });
    expect(batch.queue).toBeUndefined();
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_queue where model in ('q-closed', 'q-kept')`;
    expect(n).toBe(0);
    // The bot, whose share it is, is admitted.
    expect((await admit({ at: T0, model: "q-kept", caller: "bot", waitLeftMs: 30_000 })).ok).toBe(true);
  });

  it("passes the turn of a waiter that stops calling to the next, and logs it as abandoned", async () => {
    await model("q-gone", 2);
    await fill("q-gone", 2, T0);
    const gone = await queue("q-gone", "dies", T0 + 1_000);
    const next = await queue("q-gone", "lives", T0 + 2_000);
    const third = await queue("q-gone", "third", T0 + 3_000);
    expect(gone.expectedAt).toBe(T0 + WINDOW_MS);
    expect(next.expectedAt).toBe(T0 + WINDOW_MS);
    expect(third.expectedAt).toBe(T0 + 2 * WINDOW_MS);
    // `dies` never calls. Within its grace its turn is kept: a newcomer is not let in ahead of `third`...
    expect((await admit({ at: T0 + WINDOW_MS, model: "q-gone", caller: "lives", ticket: next.ticket, waitLeftMs: 60_000 })).ok).toBe(true);
    const early = await admit({ at: T0 + WINDOW_MS + 1_000, model: "q-gone", caller: "newcomer", waitLeftMs: 0 });
    expect(early.ok).toBe(false);
    // ...and once the grace (3 s) is over, the turn is free for whoever asks: the queue does not idle.
    const after = await admit({ at: T0 + WINDOW_MS + 3_500, model: "q-gone", caller: "third", ticket: third.ticket, waitLeftMs: 60_000 });
    expect(after.ok).toBe(true);
    // Its ticket lapses with an abandoned attempt row when the model's queue is next written.
    await queue("q-gone", "later", T0 + WINDOW_MS + 4_000);
    const rows = await db.sql<{ status: string; caller: string }[]>`
      select status, caller from public.google_ai_attempts where model = 'q-gone' and status = 'abandoned'`;
    expect(rows).toEqual([{ status: "abandoned", caller: "dies" }]);
    const [{ tickets }] = await db.sql<{ tickets: number }[]>`
      select count(*)::int as tickets from public.google_ai_queue where model = 'q-gone' and caller = 'dies'`;
    expect(tickets).toBe(0);
  });

  it("never lets a client's request rise above its class", async () => {
    await model("q-clamp", 1);
    const { token } = await mintToken(db.sql, "clamped", { models: ["q-clamp"] });
    await db.sql`update public.google_ai_clients set priority_class = 'batch' where name = 'clamped'`;
    await fill("q-clamp", 1, T0);
    const a = await admit({ at: T0 + 1_000, model: "q-clamp", caller: "client:clamped", tokenHash: sha256(token),
      priority: "interactive", waitLeftMs: 120_000 });
    expect(a).toMatchObject({ ok: false, queue: { priority: "batch" } });
    const b = await admit({ at: T0 + 1_000, model: "q-clamp", caller: "svc", priority: "batch", waitLeftMs: 600_000 });
    expect(b.queue?.priority).toBe("batch"); // a service caller may ask for a lower class
  });
});

describe("the queue under 250 connections", () => {
  const CONNECTIONS = 250;
  let clients: Sql[] = [];
  beforeAll(async () => {
    clients = Array.from({ length: CONNECTIONS }, () => connect(db.url, { max: 1, idle_timeout: 0 }));
    await Promise.all(clients.map((c) => c`select 1`));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  });

  it("admits exactly the limit in each window while 300 WAIT callers queue and come back", async () => {
    await model("q-burst", 40);
    const ask = (i: number, at: number, ticket?: string | null) =>
      admit({ at, model: "q-burst", caller: `c${i % 7}`, priority: i % 5 === 0 ? null : "batch",
        waitLeftMs: 1_200_000, ticket, sql: clients[i % CONNECTIONS] });
    const first = await Promise.all(Array.from({ length: 300 }, (_, i) => ask(i, T0)));
    expect(first.filter((a) => a.ok)).toHaveLength(40);
    expect(first.filter((a) => !a.ok).every((a) => a.queue !== undefined)).toBe(true);
    // Everyone calls again at the time it was given (all at once where times coincide).
    let pending = first.map((a, i) => ({ i, a })).filter((x) => !x.a.ok);
    const admissions: { at: number; n: number }[] = [{ at: T0, n: 40 }];
    let calls = 0;
    while (pending.length > 0 && calls < 3_000) {
      const now = Math.min(...pending.map((p) => Date.parse(p.a.queue!.expected_at)));
      const due = pending.filter((p) => Date.parse(p.a.queue!.expected_at) <= now);
      const answers = await Promise.all(due.map((p) => ask(p.i, now, p.a.queue!.ticket)));
      calls += due.length;
      admissions.push({ at: now, n: answers.filter((a) => a.ok).length });
      due.forEach((p, k) => (p.a = answers[k]!));
      expect(due.every((p) => p.a.ok || p.a.queue !== undefined)).toBe(true);
      pending = pending.filter((p) => !p.a.ok);
    }
    expect(pending).toHaveLength(0);
    // Every request admitted, in 8 windows of 40, never more than 40 in any 61 s.
    expect(admissions.reduce((s, a) => s + a.n, 0)).toBe(300);
    for (const a of admissions) {
      const inWindow = admissions.filter((b) => b.at <= a.at && b.at > a.at - WINDOW_MS).reduce((s, b) => s + b.n, 0);
      expect(inWindow).toBeLessThanOrEqual(40);
    }
    // Each window is filled as it reopens. Callers due at one instant ask at once, so one that stands
    // behind a due ticket whose call the server took later is told to ask again 50 ms on: a window's
    // admissions may come in a few instants, all within a second of its reopening.
    const windows = new Map<number, number>();
    for (const a of admissions.filter((x) => x.n > 0)) {
      const k = Math.floor((a.at - T0) / WINDOW_MS);
      expect(a.at - (T0 + k * WINDOW_MS)).toBeLessThan(1_000);
      windows.set(k, (windows.get(k) ?? 0) + a.n);
    }
    expect([...windows.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...windows.values()]).toEqual([40, 40, 40, 40, 40, 40, 40, 20]);
    // The queue, not a race, decides who goes next: a waiter calls once when its turn comes, and once
    // more only when a request of a higher class or an earlier turn took its place in line after it
    // was given its time (here: classes and callers arrive mixed, so many are).
    expect(calls).toBeLessThan(260 * 2);
  }, 120_000);
});
