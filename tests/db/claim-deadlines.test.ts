// Claims with their holder's deadlines and identity (supabase/schemas/55_claims.sql),
// through the one reservation entry, against a real database:
//   - a reservation its caller stopped waiting for (reply_by passed before the commit) leaves nothing:
//     no attempt row, no admission in the window, no claim, no counter use;
//   - a claim lasts until its holder's hold_until (or a live queue ticket of the request), then a
//     repeat of the request_id takes it over at once; the earlier reservation keeps counting;
//   - the earlier holder's end of request no longer ends the new holder's claim;
//   - a reservation that names no holder keeps the fixed lease;
//   - a claim is its holder's: a former holder's later reservation, end of request or late success
//     leaves the new holder's claim as it is;
//   - a refusal or a queue ticket committed after its reply_by is rolled back too (WAIT included);
//   - the holder's times are the request's fields (the entry's parameters), never read from metadata.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const MODEL = "gemma-3-27b";

beforeAll(async () => {
  db = await freshDatabase("claim_deadlines");
  // Claims are tested here, not the window's spread: a request and its repeats go at once.
  await db.sql`update public.google_ai_model_limits set spread_burst = null where model = 'gemma-3-27b-it'`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

interface Answer {
  ok: boolean;
  limit?: string;
  reservation_id?: string;
  retry_at?: string;
  retry_after_ms?: number;
}

interface Holder {
  reply_by: string;
  hold_until?: string;
  /** The invocation; a fresh one per call unless named (each call is then another invocation). */
  holder?: string;
}

/** One service reservation with a request_id through the entry, naming the holder's times and id (or none). */
/**
 * A holder that stops waiting soon (1.5 s: time for the commit on a loaded machine, or the database
 * rolls the reservation back as designed) and whose claim lapses 0.1 s later.
 */
function briefly(): { reply_by: string; hold_until: string } {
  return { reply_by: iso(Date.now() + 1_500), hold_until: iso(Date.now() + 1_600) };
}
const briefHoldPassed = () => new Promise((r) => setTimeout(r, 1_800));

async function reserve(
  caller: string,
  requestId: string,
  holder: Holder | null,
  extraSql = "",
  options: { idempotent?: boolean; attempt?: number; waitLeftMs?: number; model?: string } = {},
): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`
    select public.google_ai_reserve_models(p_models => array[${options.model ?? MODEL}]::text[],
      p_estimated_tokens => 10, p_caller => ${caller}, p_token_hash => null, p_request_id => ${requestId},
      p_attempt => ${options.attempt ?? 1}::integer, p_metadata => ${db.sql.json({ app: "test" })}::jsonb,
      p_idempotent => ${options.idempotent ?? true}::boolean,
      p_wait_left_ms => ${options.waitLeftMs ?? null}::integer,
      p_reply_by => ${holder?.reply_by ?? null}::timestamptz, p_hold_until => ${holder?.hold_until ?? null}::timestamptz,
      p_holder => ${holder === null ? null : holder.holder ?? crypto.randomUUID()}::uuid) as r
      ${db.sql.unsafe(extraSql)}`;
  return row!.r;
}

async function counts(caller: string, requestId: string) {
  const [row] = await db.sql<{ attempts: number; admissions: number; claims: number }[]>`
    select (select count(*)::int from public.google_ai_attempts a where a.caller = ${caller} and a.request_id = ${requestId}) as attempts,
           (select count(*)::int from public.google_ai_attempts a
             where a.caller = ${caller} and a.request_id = ${requestId} and a.admitted_at is not null and a.status not in ('released', 'withdrawn')) as admissions,
           (select count(*)::int from public.google_ai_responses r where r.caller = ${caller} and r.request_id = ${requestId}) as claims`;
  return row!;
}

// What the model's counters booked: the Pacific day's count (the minute's count starts again at each
// wall-clock minute, which a test that waits for a claim to lapse may cross).
async function bookedToday(): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    select coalesce(sum(rpd_used), 0)::int as n from public.google_ai_usage_counters where model = 'gemma-3-27b-it'`;
  return row!.n;
}

describe("a reservation whose caller stopped waiting", () => {
  it("is rolled back at commit with 57014 when its reply_by passed before the statement ran", async () => {
    const before = await bookedToday();
    const error = await reserve("ghost-a", "r1", { reply_by: iso(Date.now() - 1_000), hold_until: iso(Date.now() + 60_000) })
      .then(() => null, (e: { code?: string }) => e);
    expect(error?.code).toBe("57014");
    expect(await counts("ghost-a", "r1")).toEqual({ attempts: 0, admissions: 0, claims: 0 });
    expect(await bookedToday()).toBe(before);
  });

  it("is rolled back when reply_by passes while the statement runs (checked at commit, not at its start)", async () => {
    const before = await bookedToday();
    const error = await reserve("ghost-b", "r1", { reply_by: iso(Date.now() + 300), hold_until: iso(Date.now() + 60_000) },
      ", pg_catalog.pg_sleep(0.8)").then(() => null, (e: { code?: string }) => e);
    expect(error?.code).toBe("57014");
    expect(await counts("ghost-b", "r1")).toEqual({ attempts: 0, admissions: 0, claims: 0 });
    expect(await bookedToday()).toBe(before);
  });

  it("commits in time: the row carries the holder's times, the metadata does not, the claim lasts until hold_until", async () => {
    const holdUntil = iso(Date.now() + 90_000);
    const r = await reserve("live", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: holdUntil });
    expect(r.ok).toBe(true);
    const [att] = await db.sql<{ metadata: unknown; hold_until: Date; status: string }[]>`
      select metadata, hold_until, status from public.google_ai_attempts where reservation_id = ${r.reservation_id!}`;
    expect(att).toMatchObject({ metadata: { app: "test" }, status: "reserved" });
    expect(att!.hold_until.toISOString()).toBe(holdUntil);
    const [claim] = await db.sql<{ expires_at: Date }[]>`
      select expires_at from public.google_ai_responses where caller = 'live' and request_id = 'r1'`;
    expect(claim!.expires_at.toISOString()).toBe(holdUntil);
    // A repeat meanwhile is told the truth: in progress, until the holder's bound.
    const repeat = await reserve("live", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 90_000) });
    expect(repeat).toMatchObject({ ok: false, limit: "in_progress" });
    expect(new Date(repeat.retry_at!).toISOString()).toBe(holdUntil);
  });
});

describe("a claim whose holder's bounds passed", () => {
  it("is taken over by a repeat at once; the first reservation still counts; the old holder's end spares the new claim", async () => {
    const first = await reserve("taken", "r1", briefly());
    expect(first.ok).toBe(true);
    await briefHoldPassed();
    const before = await bookedToday();
    const second = await reserve("taken", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(second.ok).toBe(true);
    expect(await bookedToday()).toBe(before + 1);
    expect(await counts("taken", "r1")).toEqual({ attempts: 2, admissions: 2, claims: 1 });

    // The first holder's late end of request (it gave up) leaves the new holder's claim.
    const [late] = await db.sql<{ r: { ended: boolean } }[]>`
      select public.google_ai_end_request(${first.reservation_id!}::uuid) as r`;
    expect(late!.r.ended).toBe(false);
    const again = await reserve("taken", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(again).toMatchObject({ ok: false, limit: "in_progress" });
    // The new holder's own end frees the request id.
    const [own] = await db.sql<{ r: { ended: boolean } }[]>`
      select public.google_ai_end_request(${second.reservation_id!}::uuid) as r`;
    expect(own!.r.ended).toBe(true);
  });

  it("is still held while the request holds a live ticket in the admission queue", async () => {
    const first = await reserve("queued", "r1", briefly());
    expect(first.ok).toBe(true);
    const leaseUntil = iso(Date.now() + 30_000);
    await db.sql`insert into public.google_ai_queue (model, priority_class, class_rank, caller, request_id, turn,
                   enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
                 select 'gemma-3-27b-it', pc.name, pc.rank, 'queued', 'r1', 1, now(), 10, 'rpm', now(), ${leaseUntil}, 1
                 from public.google_ai_priority_classes pc order by pc.rank limit 1`;
    await briefHoldPassed();
    const repeat = await reserve("queued", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(repeat).toMatchObject({ ok: false, limit: "in_progress" });
    expect(new Date(repeat.retry_at!).toISOString()).toBe(leaseUntil);
    await db.sql`delete from public.google_ai_queue where caller = 'queued'`;
    const after = await reserve("queued", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(after.ok).toBe(true);
  });

  it("is not revived by a refusal of a request that did not take it", async () => {
    const first = await reserve("refused", "r1", briefly());
    expect(first.ok).toBe(true);
    await briefHoldPassed();
    // A repeat for a model nobody serves is refused; its row names a later hold_until.
    const [row] = await db.sql<{ r: Answer }[]>`
      select public.google_ai_reserve_models(p_models => array['no-such-model'], p_estimated_tokens => 10, p_caller => 'refused',
        p_request_id => 'r1', p_reply_by => ${iso(Date.now() + 5_000)}::timestamptz,
        p_hold_until => ${iso(Date.now() + 60_000)}::timestamptz, p_idempotent => true) as r`;
    expect(row!.r).toMatchObject({ ok: false, limit: "unknown_model" });
    const repeat = await reserve("refused", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(repeat.ok).toBe(true);
  });
});

describe("a reservation that names no holder", () => {
  it("keeps the fixed lease of google_ai_hold_request and no reply check", async () => {
    const r = await reserve("plain", "r1", null);
    expect(r.ok).toBe(true);
    const [claim] = await db.sql<{ minutes: number }[]>`
      select round(extract(epoch from (expires_at - created_at)) / 60)::int as minutes
      from public.google_ai_responses where caller = 'plain' and request_id = 'r1'`;
    expect(claim!.minutes).toBe(7);
  });
});

async function claimOf(caller: string, requestId: string) {
  const [row] = await db.sql<{ status: string; expires_at: Date | null; holder: string | null; response: unknown }[]>`
    select status, expires_at, holder, response from public.google_ai_responses
    where caller = ${caller} and request_id = ${requestId}`;
  return row;
}

async function finalizeSuccess(reservationId: string, response: unknown): Promise<void> {
  await db.sql`select public.google_ai_finalize(${reservationId}::uuid, jsonb_build_object('kind', 'succeeded',
    'input_tokens', 5, 'output_tokens', 7, 'http_status', 200, 'latency_ms', 100,
    'response', ${db.sql.json(response as never)}::jsonb)) as r`;
}

/** Holder A's claim lapses and repeat B takes it over with a long claim. */
async function takenOver(caller: string) {
  const a = crypto.randomUUID();
  const b = crypto.randomUUID();
  const first = await reserve(caller, "r1", { ...briefly(), holder: a });
  expect(first.ok).toBe(true);
  await briefHoldPassed();
  const bHoldUntil = iso(Date.now() + 300_000);
  const second = await reserve(caller, "r1", { reply_by: iso(Date.now() + 5_000), hold_until: bHoldUntil, holder: b });
  expect(second.ok).toBe(true);
  expect(await claimOf(caller, "r1")).toMatchObject({ status: "in_progress", holder: b });
  return { a, b, first: first.reservation_id!, second: second.reservation_id!, bHoldUntil };
}

describe("a claim is its holder's", () => {
  it("A's later reservation does not change B's claim", async () => {
    const { a, b, bHoldUntil } = await takenOver("own-renew");
    // A, still alive, makes its next reservation (a later attempt of the same invocation).
    const later = await reserve("own-renew", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 1_000), holder: a },
      "", { idempotent: false, attempt: 2 });
    expect(later.ok).toBe(true);
    const claim = await claimOf("own-renew", "r1");
    expect(claim).toMatchObject({ status: "in_progress", holder: b });
    expect(claim!.expires_at!.toISOString()).toBe(bHoldUntil);
    await new Promise((r) => setTimeout(r, 1_200));
    // A third repeat is told B is in progress: Google is not called a third time.
    const third = await reserve("own-renew", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(third).toMatchObject({ ok: false, limit: "in_progress" });
    expect(new Date(third.retry_at!).toISOString()).toBe(bHoldUntil);
  });

  it("a holder's own later statement renews its claim, never shortening it", async () => {
    const holder = crypto.randomUUID();
    const long = iso(Date.now() + 120_000);
    expect((await reserve("own-longer", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: long, holder })).ok).toBe(true);
    await reserve("own-longer", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 10_000), holder },
      "", { idempotent: false, attempt: 2 });
    expect((await claimOf("own-longer", "r1"))!.expires_at!.toISOString()).toBe(long);
    const longer = iso(Date.now() + 200_000);
    await reserve("own-longer", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: longer, holder },
      "", { idempotent: false, attempt: 3 });
    expect((await claimOf("own-longer", "r1"))!.expires_at!.toISOString()).toBe(longer);
  });

  it("A's end does not end B's claim, even through a reservation A made after the takeover", async () => {
    const { a, b, second } = await takenOver("own-end");
    const later = await reserve("own-end", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 1_000), holder: a },
      "", { idempotent: false, attempt: 2 });
    expect(later.ok).toBe(true);
    const [ended] = await db.sql<{ r: { ended: boolean } }[]>`
      select public.google_ai_end_request(${later.reservation_id!}::uuid) as r`;
    expect(ended!.r.ended).toBe(false);
    expect(await claimOf("own-end", "r1")).toMatchObject({ status: "in_progress", holder: b });
    const [own] = await db.sql<{ r: { ended: boolean } }[]>`select public.google_ai_end_request(${second}::uuid) as r`;
    expect(own!.r.ended).toBe(true);
  });

  it("A's late success does not turn B's claim into A's answer; B's own success does", async () => {
    const { b, first, second } = await takenOver("own-done");
    // A's finalize lands after the takeover (the database was slow): its tokens count, the claim stays B's.
    await finalizeSuccess(first, { text: "A" });
    expect(await claimOf("own-done", "r1")).toMatchObject({ status: "in_progress", holder: b, response: null });
    const [usage] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.token_usage where request_id = 'r1' and meta ->> 'caller' = 'own-done'`;
    expect(usage!.n).toBe(1);
    const repeat = await reserve("own-done", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(repeat).toMatchObject({ ok: false, limit: "in_progress" });
    await finalizeSuccess(second, { text: "B" });
    expect(await claimOf("own-done", "r1")).toMatchObject({ status: "done", response: { text: "B" } });
  });
});

describe("a refusal or a queue ticket whose caller stopped waiting", () => {
  it("a late refusal is rolled back and does not renew its holder's claim", async () => {
    const holder = crypto.randomUUID();
    const holdUntil = iso(Date.now() + 30_000);
    expect((await reserve("late-refusal", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: holdUntil, holder })).ok)
      .toBe(true);
    const error = await reserve("late-refusal", "r1",
      { reply_by: iso(Date.now() + 300), hold_until: iso(Date.now() + 90_000), holder },
      ", pg_catalog.pg_sleep(0.8)", { idempotent: false, attempt: 2, model: "no-such-model" })
      .then(() => null, (e: { code?: string }) => e);
    expect(error?.code).toBe("57014");
    expect((await claimOf("late-refusal", "r1"))!.expires_at!.toISOString()).toBe(holdUntil);
    expect(await counts("late-refusal", "r1")).toMatchObject({ attempts: 1 });
  });

  it("WAIT: a ticket taken by a statement that commits after its reply_by is rolled back; no claim for nobody", async () => {
    const [limits] = await db.sql<{ rpm: number }[]>`select rpm from public.google_ai_model_limits where model = 'gemma-3-27b-it'`;
    await db.sql`update public.google_ai_model_limits set rpm = 1 where model = 'gemma-3-27b-it'`;
    try {
      // In time: the refusal takes a ticket (the setup does queue).
      const inTime = await reserve("wait-live", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) },
        "", { waitLeftMs: 120_000 });
      expect(inTime).toMatchObject({ ok: false, limit: "rpm" });
      const [live] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue where caller = 'wait-live'`;
      expect(live!.n).toBe(1);

      const error = await reserve("wait-late", "r1", { reply_by: iso(Date.now() + 300), hold_until: iso(Date.now() + 60_000) },
        ", pg_catalog.pg_sleep(0.8)", { waitLeftMs: 120_000 }).then(() => null, (e: { code?: string }) => e);
      expect(error?.code).toBe("57014");
      const [late] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue where caller = 'wait-late'`;
      expect(late!.n).toBe(0);
      expect(await counts("wait-late", "r1")).toEqual({ attempts: 0, admissions: 0, claims: 0 });
      // The caller's repeat is not told 409 for a ticket nobody holds: it queues in its own right.
      const repeat = await reserve("wait-late", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) },
        "", { waitLeftMs: 120_000 });
      expect(repeat).toMatchObject({ ok: false, limit: "rpm" });
    } finally {
      await db.sql`delete from public.google_ai_queue where caller in ('wait-live', 'wait-late')`;
      await db.sql`update public.google_ai_model_limits set rpm = ${limits!.rpm} where model = 'gemma-3-27b-it'`;
    }
  });
});

describe("the holder's times come from the request's fields alone (a direct RPC call)", () => {
  it("a caller's metadata naming them under the former key is its own data: no deadline is read from it", async () => {
    // The key the database once read the holder from, with a reply_by long past: kept as the caller's
    // metadata, never a deadline (the entry's p_reply_by is the only one), so the row commits.
    const metadata = { $holder: { reply_by: iso(Date.now() - 60_000), hold_until: iso(Date.now() - 60_000), holder: "me" } };
    const [row] = await db.sql<{ r: Answer }[]>`
      select public.google_ai_reserve_models(p_models => array[${MODEL}], p_estimated_tokens => 10, p_caller => 'former-key',
        p_request_id => 'r1', p_metadata => ${db.sql.json(metadata as never)}::jsonb, p_idempotent => true) as r`;
    expect(row!.r.ok).toBe(true);
    const [attempt] = await db.sql`select metadata, reply_by, hold_until, holder from public.google_ai_attempts
                                   where caller = 'former-key' and request_id = 'r1'`;
    expect(attempt).toEqual({ metadata, reply_by: null, hold_until: null, holder: null });
  });
});
