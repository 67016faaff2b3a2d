// Admissions spread over the window (google_ai_model_limits.spread_burst), on a real PostgreSQL with
// the clock injected (to the microsecond: sent as text, since postgres.js would round a timestamptz
// parameter to JavaScript's milliseconds): while nobody waits a burst that fits the window goes at
// once; while requests wait, a flood is handed its window one request per step (61 s / RPM) after its
// burst, a refusal names the exact time of its place in the schedule, a person's request is not held
// by the schedule, a share of its own lets a request past it, the window's count still bounds
// everything, and under concurrent callers the schedule is as exact as the window.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../shared/db/migrate.ts";
import { iso, msOf } from "../support/microseconds.ts";
import { someoneWaits as waitingBehind } from "../support/someone-waits.ts";
import type { ReserveAnswer as Answer } from "../support/reserve-answer.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");
const WINDOW_MS = 61_000; // 60 s + the default minute guard
/** One step of a model with an RPM of 30: 61 s / 30, in whole microseconds rounded up. */
const STEP_30_US = Math.ceil((WINDOW_MS * 1000) / 30);

beforeAll(async () => {
  db = await oneKeyDatabase("spread", { alias: "s1", envVar: "KEY_S1", project: "proj-s" });
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Ask {
  /** Milliseconds since the epoch; fractions are kept to the microsecond. */
  at: number;
  model: string;
  caller?: string;
  priority?: string;
  tokens?: number;
  waitLeftMs?: number;
  ticket?: string | null;
}

async function admit(a: Ask): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(a.at)}::text::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [a.model],
      estimated_tokens: a.tokens ?? 10, caller: a.caller ?? "notebook", priority: a.priority ?? "batch",
      queue_ticket: a.ticket ?? null, wait_left_ms: a.waitLeftMs ?? 0 })}::text::jsonb)) as r`;
  return row!.r;
}

async function model(name: string, limits: { rpm: number | null; tpm?: number | null; burst: number | null }) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, spread_burst)
               values (${name}, ${limits.rpm}, ${limits.tpm ?? null}, null, ${limits.burst})`;
}

/** Admission times the database recorded for a model, in order (ms with microsecond fractions). */
async function admissions(name: string): Promise<number[]> {
  const rows = await db.sql<{ t: string }[]>`
    select to_char(admitted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t
    from public.google_ai_attempts where model = ${name} and admitted_at is not null order by admitted_at`;
  return rows.map((r) => msOf(r.t));
}

/** Someone waits for the model (behind everyone): the spread holds batch requests to its schedule. */
const someoneWaits = (name: string) => waitingBehind(db.sql, name, iso(T0));

describe("a spread model", () => {
  it("while nobody waits, admits a burst that fits the window at once", async () => {
    await model("spread-idle", { rpm: 30, burst: 1 });
    const burst = await Promise.all([...Array(31)].map(() => admit({ at: T0, model: "spread-idle" })));
    expect(burst.filter((a) => a.ok)).toHaveLength(30);
    expect(burst.find((a) => !a.ok)).toMatchObject({ limit: "rpm" });
  });

  it("once requests wait, admits one request per step and names each refusal's place in the schedule", async () => {
    await model("spread-flood", { rpm: 30, burst: 1 });
    await someoneWaits("spread-flood");
    const flood = await Promise.all([...Array(10)].map(() => admit({ at: T0, model: "spread-flood" })));
    expect(flood.filter((a) => a.ok)).toHaveLength(1);
    const refused = flood.filter((a) => !a.ok);
    expect(new Set(refused.map((a) => a.limit))).toEqual(new Set(["rpm"]));
    // Every refusal names the next place: one step after the admission (the window has room).
    expect(new Set(refused.map((a) => msOf(a.retry_at!)))).toEqual(new Set([T0 + STEP_30_US / 1000]));

    // One microsecond early is still refused; at the named time one more goes, and only one.
    const next = T0 + STEP_30_US / 1000;
    expect((await admit({ at: next - 0.001, model: "spread-flood" })).ok).toBe(false);
    const atNext = await Promise.all([...Array(5)].map(() => admit({ at: next, model: "spread-flood" })));
    expect(atNext.filter((a) => a.ok)).toHaveLength(1);
    expect(await admissions("spread-flood")).toEqual([T0, next]);
  });

  it("a burst taken while nobody waited moves the schedule: waiters then start one step after it", async () => {
    await model("spread-after", { rpm: 30, burst: 1 });
    const burst = await Promise.all([...Array(4)].map(() => admit({ at: T0, model: "spread-after" })));
    expect(burst.filter((a) => a.ok)).toHaveLength(4);
    await someoneWaits("spread-after");
    const held = await admit({ at: T0 + 1000, model: "spread-after" });
    expect(held).toMatchObject({ ok: false, limit: "rpm" });
    expect(msOf(held.retry_at!)).toBe(T0 + (4 * STEP_30_US) / 1000);
  });

  it("with a burst of 3, admits three at once and then one per step while requests wait", async () => {
    await model("spread-burst", { rpm: 30, burst: 3 });
    await someoneWaits("spread-burst");
    const first = await Promise.all([...Array(6)].map(() => admit({ at: T0, model: "spread-burst" })));
    expect(first.filter((a) => a.ok)).toHaveLength(3);
    // The schedule is 3 steps ahead; the tolerance is 2: the next place is one step on.
    expect(new Set(first.filter((a) => !a.ok).map((a) => msOf(a.retry_at!)))).toEqual(new Set([T0 + STEP_30_US / 1000]));
    expect((await admit({ at: T0 + STEP_30_US / 1000, model: "spread-burst" })).ok).toBe(true);
    expect((await admit({ at: T0 + STEP_30_US / 1000, model: "spread-burst" })).ok).toBe(false);
  });

  it("hands a flooded window out evenly for three windows while requests wait: the limit in every 61 s span, never more", async () => {
    // One caller that always asks again at the time it was told, as WAIT mode does, behind others.
    await model("spread-steady", { rpm: 30, burst: 1 });
    await someoneWaits("spread-steady");
    // (Admission rows leave the table with the window: the times are kept as they are admitted.)
    const times: number[] = [];
    let t = T0;
    while (t < T0 + 4 * WINDOW_MS) {
      const a = await admit({ at: t, model: "spread-steady" });
      if (a.ok) times.push(t);
      else t = msOf(a.retry_at!);
    }
    for (const end of times) {
      const inSpan = times.filter((x) => x > end - WINDOW_MS && x <= end).length;
      expect(inSpan).toBeLessThanOrEqual(30);
    }
    // Saturated spans (from one window in) hold the limit exactly: nothing is lost to the spread.
    for (let end = T0 + WINDOW_MS + 500; end <= T0 + 4 * WINDOW_MS; end += 500) {
      expect(times.filter((x) => x > end - WINDOW_MS && x <= end).length).toBeGreaterThanOrEqual(29);
    }
    // Consecutive admissions are one step apart (to the microsecond): no two at once.
    const gaps = new Set(times.slice(1).map((x, i) => Math.round((x - times[i]!) * 1000)));
    expect(gaps).toEqual(new Set([STEP_30_US]));
  });

  it("keeps its grid when a waiter comes a little late, and starts again from now after a pause", async () => {
    await model("spread-late", { rpm: 30, burst: 1 });
    await someoneWaits("spread-late");
    const step = STEP_30_US / 1000;
    expect((await admit({ at: T0, model: "spread-late" })).ok).toBe(true);
    // 100 ms after its place: admitted, and the next place is still on the grid (two steps from T0).
    expect((await admit({ at: T0 + step + 100, model: "spread-late" })).ok).toBe(true);
    const next = await admit({ at: T0 + step + 200, model: "spread-late" });
    expect(msOf(next.retry_at!)).toBe(T0 + 2 * step);
    // A pause longer than half a step: the schedule starts again from the booking.
    const later = T0 + 10 * step;
    expect((await admit({ at: later, model: "spread-late" })).ok).toBe(true);
    expect(msOf((await admit({ at: later + 1, model: "spread-late" })).retry_at!)).toBe(later + step);
  });

  it("does not hold a person's request to the schedule: ahead of a queued flood, it goes while the window has room", async () => {
    await model("spread-person", { rpm: 30, burst: 1 });
    await someoneWaits("spread-person");
    // A notebook floods: one admitted, eight queued for the next places of the schedule.
    expect((await admit({ at: T0, model: "spread-person" })).ok).toBe(true);
    const tickets: Answer[] = [];
    for (let i = 0; i < 8; i++) tickets.push(await admit({ at: T0, model: "spread-person", waitLeftMs: 600_000 }));
    const expected = tickets.map((a) => msOf(a.queue!.expected_at));
    expect(expected).toEqual(expected.map((_, i) => T0 + ((i + 1) * STEP_30_US) / 1000));

    // The bot asks half a step later: the first class has nobody to keep the next slot for, so it goes.
    const asked = T0 + STEP_30_US / 2000;
    const bot = await admit({ at: asked, model: "spread-person", caller: "bot", priority: "interactive", waitLeftMs: 60_000 });
    expect(bot.ok).toBe(true);
    // It moved the schedule a step: the notebook's first ticket now waits for the place after it.
    const notebookFirst = await admit({ at: expected[0]!, model: "spread-person", ticket: tickets[0]!.queue!.ticket, waitLeftMs: 600_000 });
    expect(notebookFirst.ok).toBe(false);
  });

  it("lets a request its own share still covers past the schedule, and moves the schedule for it", async () => {
    await model("spread-share", { rpm: 30, burst: 1 });
    await db.sql`insert into public.google_ai_quota_shares (model, caller, reserved_rpm)
                 values ('spread-share', 'owner', 2)`;
    await someoneWaits("spread-share");
    expect((await admit({ at: T0, model: "spread-share" })).ok).toBe(true);
    expect((await admit({ at: T0, model: "spread-share" })).ok).toBe(false); // the notebook waits its step
    const owner = () => admit({ at: T0, model: "spread-share", caller: "owner" });
    expect((await owner()).ok).toBe(true);
    expect((await owner()).ok).toBe(true);
    const third = await owner(); // its share is used: the schedule holds it too
    expect(third.ok).toBe(false);
    // Three requests moved the schedule three steps.
    expect(msOf(third.retry_at!)).toBe(T0 + (3 * STEP_30_US) / 1000);
  });

  it("spreads tokens too: a large request takes its tokens' part of the window", async () => {
    await model("spread-tokens", { rpm: null, tpm: 6000, burst: 1 });
    await someoneWaits("spread-tokens");
    expect((await admit({ at: T0, model: "spread-tokens", tokens: 3000 })).ok).toBe(true);
    const small = await admit({ at: T0 + 1000, model: "spread-tokens", tokens: 100 });
    expect(small).toMatchObject({ ok: false, limit: "tpm" });
    expect(msOf(small.retry_at!)).toBe(T0 + WINDOW_MS / 2);
  });

  it("is not spread when spread_burst is null: the window alone decides", async () => {
    await model("spread-off", { rpm: 30, burst: null });
    const all = await Promise.all([...Array(31)].map(() => admit({ at: T0, model: "spread-off" })));
    expect(all.filter((a) => a.ok)).toHaveLength(30);
  });
});

describe("concurrent callers on the database's own clock", () => {
  it("40 connections at once while requests wait: the spread admits exactly its burst, the window alone exactly its limit", async () => {
    // A step of 15.25 s: far longer than the race takes on any machine.
    await model("spread-race", { rpm: 4, burst: 2 });
    await model("spread-race-off", { rpm: 4, burst: null });
    await someoneWaits("spread-race");
    await someoneWaits("spread-race-off");
    const race = async (name: string) => {
      const conns = [...Array(40)].map(() => connect(db.url, { max: 1 }));
      try {
        await Promise.all(conns.map((c) => c`select 1`));
        const answers = await Promise.all(conns.map((c, i) =>
          c<{ r: Answer }[]>`select public.google_ai_reserve_models(p_models => array[${name}::text], p_estimated_tokens => 10,
            p_caller => ${`race-${i}`}, p_request_id => null, p_priority => 'batch') as r`.then((rows) => rows[0]!.r)));
        return answers.filter((a) => a.ok).length;
      } finally {
        await Promise.all(conns.map((c) => c.end()));
      }
    };
    expect(await race("spread-race")).toBe(2);
    expect(await race("spread-race-off")).toBe(4);
  });
});
