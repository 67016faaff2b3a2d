// A queue ticket says what it waits for (google_ai_queue.waits_for), on a real PostgreSQL with the clock
// injected: a capped client (a paced share of its own, google_ai_quota_shares.pace_burst) whose WAIT
// request waits for its pace takes a ticket that waits for its own allowance, not for the window; the
// spread (google_ai_spread_holds) and the other callers' places (google_ai_queue_place,
// google_ai_queue_wait) count only the tickets that wait for what they would. So the other notebooks'
// admissions, from concurrent connections, and a WAIT notebook's place are what they are without that
// ticket; the control reads the same ticket as every ticket was read before (waiting for the window)
// and shows what that did: a spread model's batch callers refused `spread` with 9 of 10 slots free.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { iso, msOf } from "../support/microseconds.ts";
import { type ReserveAnswer as Answer, reservation } from "../support/reserve-answer.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
// 01:00 in the provider's (Pacific) day: a pace of burst 1 over a day of 23 requests allows 1 by then, the
// next at 01:02:36.5.
const T0 = Date.parse("2026-11-21T09:00:00Z");
const WINDOW_MS = 61_000; // 60 s + the default minute guard
const NOTEBOOKS = 5;

beforeAll(async () => {
  db = await oneKeyDatabase("ticket_waits_for", { alias: "w1", envVar: "KEY_W1", project: "proj-w" });
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function admit(at: number, model: string, tokenHash: string, waitLeftMs = 0, ticket?: string): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(at)}::text::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 10,
      token_hash: tokenHash, wait_left_ms: waitLeftMs, queue_ticket: ticket ?? null })}::text::jsonb)) as r`;
  return row!.r;
}

/** What a set of answers says, order aside: how many were admitted, and each refusal's limit and cause. */
function summary(answers: Answer[]) {
  const refused = answers.filter((a) => !a.ok).map((a) => `${a.limit}/${a.cause}`).sort();
  return { admitted: answers.filter((a) => a.ok).length, refused };
}

interface Scene {
  /** The capped client's request that its pace refuses: true, it waits in line (WAIT); false, NO_WAIT. */
  cappedWaits: boolean;
  /** The control: its ticket read as every ticket was before, waiting for the window. */
  readAsWindow?: boolean;
}

/**
 * One spread model (RPM 10, burst 1, RPD 23) and its Kaggle clients, all of class batch: a capped one
 * whose own share paces its day, and five notebooks. The capped client sends one request (admitted: its
 * pace's burst), then one its pace refuses. Then the notebooks send two requests each at once, NO_WAIT,
 * and one notebook a WAIT request. Answers what each step answered.
 */
async function scene(name: string, s: Scene) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, spread_burst)
               values (${name}, 10, null, 23, 1)`;
  const capped = await mintToken(db.sql, `${name}-capped`, { models: [name] });
  await db.sql`insert into public.google_ai_quota_shares (model, caller, pace_burst)
               values (${name}, ${`client:${name}-capped`}, 1)`;
  const notebooks = await Promise.all(
    [...Array(NOTEBOOKS).keys()].map((i) => mintToken(db.sql, `${name}-nb${i}`, { models: [name] })),
  );
  const cappedHash = sha256(capped.token);

  const first = await admit(T0, name, cappedHash);
  const paced = await admit(T0 + 1, name, cappedHash, s.cappedWaits ? 600_000 : 0);
  if (s.readAsWindow) {
    await db.sql`update public.google_ai_queue set waits_for = 'window' where model = ${name}`;
  }
  const burst = await Promise.all(
    notebooks.flatMap((nb) => [nb, nb]).map((nb) => admit(T0 + 1000, name, sha256(nb.token))),
  );
  const waiter = await admit(T0 + 2000, name, sha256(notebooks[0]!.token), 120_000);
  const tickets = await db.sql<{ caller: string; limit_hit: string; waits_for: string }[]>`
    select caller, limit_hit, waits_for from public.google_ai_queue where model = ${name} order by enqueued_at`;
  return { first, paced, burst, waiter, tickets, cappedHash };
}

describe("a capped client's WAIT ticket", () => {
  it("waits for its own allowance, and leaves the other batch callers' admissions and places as they were", async () => {
    const without = await scene("waits-none", { cappedWaits: false });
    const withTicket = await scene("waits-pace", { cappedWaits: true });

    // The capped client: its burst admitted, then refused by its pace; WAIT, it holds a ticket that says so.
    for (const s of [without, withTicket]) {
      expect(s.first.ok).toBe(true);
      expect(s.paced).toMatchObject({ ok: false, limit: "pace", cause: "pace" });
    }
    expect(without.paced.queue).toBeUndefined();
    expect(withTicket.paced.queue).toMatchObject({ position: 1 });
    expect(withTicket.tickets[0]).toEqual({ caller: "client:waits-pace-capped", limit_hit: "pace",
      waits_for: "caller_allowance" });

    // The notebooks' burst: the window's 9 free slots at once (the spread does not hold them: nobody waits
    // for the window), the tenth refused by the full window; the same with the capped client's ticket.
    expect(summary(without.burst)).toEqual({ admitted: 9, refused: ["rpm/window_full"] });
    expect(summary(withTicket.burst)).toEqual(summary(without.burst));

    // A WAIT notebook: first in line for the window, its turn when the capped client's admission leaves it.
    for (const s of [without, withTicket]) {
      expect(s.waiter).toMatchObject({ ok: false, limit: "rpm", cause: "window_full", queue: { position: 1 } });
      expect(msOf(s.waiter.queue!.expected_at)).toBe(T0 + WINDOW_MS);
    }
    expect(withTicket.tickets.map((t) => t.waits_for)).toEqual(["caller_allowance", "window"]);
  });

  it("control: read as waiting for the window (as every ticket was), it held the notebooks to the spread", async () => {
    const control = await scene("waits-as-window", { cappedWaits: true, readAsWindow: true });
    // 9 of 10 slots free, and every notebook refused by the spread's schedule; the WAIT notebook behind it.
    expect(summary(control.burst)).toEqual({ admitted: 0, refused: Array(2 * NOTEBOOKS).fill("rpm/spread") });
    expect(control.waiter.queue).toMatchObject({ position: 2 });
  });

  it("is served at its pace's time with its ticket, and its caller's next request stands behind it", async () => {
    const s = await scene("waits-served", { cappedWaits: true });
    const ticket = s.paced.queue!.ticket;
    const turn = msOf(s.paced.queue!.expected_at);
    // (Its own caller waits for its allowance: its next request counts the ticket ahead of it.)
    const next = await admit(T0 + 3000, "waits-served", s.cappedHash, 600_000);
    expect(next).toMatchObject({ ok: false, queue: { position: 3 } });
    await db.sql`delete from public.google_ai_queue where ticket_id = ${next.queue!.ticket}`;
    // Before its pace allows: refused again, still in line; at its time: admitted, the ticket gone.
    expect(await admit(turn - 1000, "waits-served", s.cappedHash, 600_000, ticket))
      .toMatchObject({ ok: false, limit: "pace", queue: { ticket } });
    expect((await admit(turn, "waits-served", s.cappedHash, 600_000, ticket)).ok).toBe(true);
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_queue where ticket_id = ${ticket}`;
    expect(n).toBe(0);
  });
});
