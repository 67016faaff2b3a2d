// Claims with their holder's deadlines (supabase/schemas/30_reservation.sql), against a real database:
//   - a reservation its caller stopped waiting for (reply_by passed before the commit) leaves nothing:
//     no attempt row, no admission in the window, no claim, no counter use;
//   - a claim lasts until its holder's hold_until (or a live queue ticket of the request), then a
//     repeat of the request_id takes it over at once; the earlier reservation keeps counting;
//   - the earlier holder's end of request no longer ends the new holder's claim;
//   - a reservation that names no holder keeps the fixed lease.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const MODEL = "gemma-3-27b";

beforeAll(async () => {
  db = await freshDatabase("claim_deadlines");
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

/** One service reservation with a request_id, its metadata naming the holder's times (or none). */
async function reserve(
  caller: string,
  requestId: string,
  holder: { reply_by: string; hold_until?: string } | null,
  extraSql = "",
): Promise<Answer> {
  const metadata = holder === null ? { app: "test" } : { app: "test", $holder: holder };
  const [row] = await db.sql<{ r: Answer }[]>`
    select public.google_ai_reserve(p_model => ${MODEL}, p_estimated_tokens => 10, p_caller => ${caller},
      p_request_id => ${requestId}, p_metadata => ${db.sql.json(metadata)}::jsonb, p_idempotent => true) as r
      ${db.sql.unsafe(extraSql)}`;
  return row!.r;
}

async function counts(caller: string, requestId: string) {
  const [row] = await db.sql<{ attempts: number; admissions: number; claims: number }[]>`
    select (select count(*)::int from public.google_ai_attempts a where a.caller = ${caller} and a.request_id = ${requestId}) as attempts,
           (select count(*)::int from public.google_ai_admissions w join public.google_ai_attempts a using (reservation_id)
             where a.caller = ${caller} and a.request_id = ${requestId}) as admissions,
           (select count(*)::int from public.google_ai_responses r where r.caller = ${caller} and r.request_id = ${requestId}) as claims`;
  return row!;
}

async function rpmUsed(): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    select coalesce(sum(rpm_used), 0)::int as n from public.google_ai_usage_counters where model = 'gemma-3-27b-it'`;
  return row!.n;
}

describe("a reservation whose caller stopped waiting", () => {
  it("is rolled back at commit with 57014 when its reply_by passed before the statement ran", async () => {
    const before = await rpmUsed();
    const error = await reserve("ghost-a", "r1", { reply_by: iso(Date.now() - 1_000), hold_until: iso(Date.now() + 60_000) })
      .then(() => null, (e: { code?: string }) => e);
    expect(error?.code).toBe("57014");
    expect(await counts("ghost-a", "r1")).toEqual({ attempts: 0, admissions: 0, claims: 0 });
    expect(await rpmUsed()).toBe(before);
  });

  it("is rolled back when reply_by passes while the statement runs (checked at commit, not at its start)", async () => {
    const before = await rpmUsed();
    const error = await reserve("ghost-b", "r1", { reply_by: iso(Date.now() + 300), hold_until: iso(Date.now() + 60_000) },
      ", pg_catalog.pg_sleep(0.8)").then(() => null, (e: { code?: string }) => e);
    expect(error?.code).toBe("57014");
    expect(await counts("ghost-b", "r1")).toEqual({ attempts: 0, admissions: 0, claims: 0 });
    expect(await rpmUsed()).toBe(before);
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
    const first = await reserve("taken", "r1", { reply_by: iso(Date.now() + 500), hold_until: iso(Date.now() + 600) });
    expect(first.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 800));
    const before = await rpmUsed();
    const second = await reserve("taken", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(second.ok).toBe(true);
    expect(await rpmUsed()).toBe(before + 1);
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
    const first = await reserve("queued", "r1", { reply_by: iso(Date.now() + 500), hold_until: iso(Date.now() + 600) });
    expect(first.ok).toBe(true);
    const leaseUntil = iso(Date.now() + 30_000);
    await db.sql`insert into public.google_ai_queue (model, priority_class, class_rank, caller, request_id, turn,
                   enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
                 select 'gemma-3-27b-it', pc.name, pc.rank, 'queued', 'r1', 1, now(), 10, 'rpm', now(), ${leaseUntil}, 1
                 from public.google_ai_priority_classes pc order by pc.rank limit 1`;
    await new Promise((r) => setTimeout(r, 800));
    const repeat = await reserve("queued", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(repeat).toMatchObject({ ok: false, limit: "in_progress" });
    expect(new Date(repeat.retry_at!).toISOString()).toBe(leaseUntil);
    await db.sql`delete from public.google_ai_queue where caller = 'queued'`;
    const after = await reserve("queued", "r1", { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) });
    expect(after.ok).toBe(true);
  });

  it("is not revived by a refusal of a request that did not take it", async () => {
    const first = await reserve("refused", "r1", { reply_by: iso(Date.now() + 500), hold_until: iso(Date.now() + 600) });
    expect(first.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 800));
    // A repeat for a model nobody serves is refused; its row names a later hold_until.
    const [row] = await db.sql<{ r: Answer }[]>`
      select public.google_ai_reserve(p_model => 'no-such-model', p_estimated_tokens => 10, p_caller => 'refused',
        p_request_id => 'r1', p_metadata => ${db.sql.json({ $holder: { reply_by: iso(Date.now() + 5_000), hold_until: iso(Date.now() + 60_000) } })}::jsonb,
        p_idempotent => true) as r`;
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
