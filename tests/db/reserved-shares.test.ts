// Reserved shares, pacing and service callers' budgets under concurrency: 200 connections book at
// once (the clock injected, so a burst never straddles a window). What a share keeps is decided under
// the counter-row lock, so a batch flood gets exactly what the shares leave and the owner still gets
// its part; a pace and a caller's budget admit exactly their allowance; and interleaved releases keep
// the owner's count equal to its bookings.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

const CONNECTIONS = 200;
const AT = "2026-11-23T18:00:00Z"; // 10:00 Pacific, far from either midnight

let db: TestDatabase;
let clients: Sql[] = [];

beforeAll(async () => {
  db = await freshDatabase("reserved_shares");
  // These tests write every share they count: the default share of `interactive` would be one more.
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority) values
    ('a1', 'KEY_A1', 'proj-a', 1), ('b1', 'KEY_B1', 'proj-b', 1)`;
  clients = Array.from({ length: CONNECTIONS }, () => connect(db.url, { max: 1, idle_timeout: 0 }));
  await Promise.all(clients.map((c) => c`select 1`));
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

interface Outcome {
  ok: boolean;
  limit?: string;
  quota_group?: string;
  reservation_id?: string;
  retry_at?: string;
}

interface Ask {
  caller: string;
  /** null: the credential's class (a service caller's: interactive). */
  priority: string | null;
}

const batch = (n: number, caller = "notebook"): Ask[] => Array.from({ length: n }, () => ({ caller, priority: "batch" }));
const bot = (n: number): Ask[] => Array.from({ length: n }, () => ({ caller: "bot", priority: null }));

/** Every ask at once, one per connection, all at the same injected time. */
async function burst(model: string, asks: Ask[], at = AT): Promise<Outcome[]> {
  return Promise.all(asks.map(async (a, i) => {
    const c = clients[i % clients.length]!;
    const [row] = await c<{ r: Outcome }[]>`select public.google_ai_reserve_models_at(${at}::timestamptz,
      jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 10,
        caller: a.caller, priority: a.priority })}::text::jsonb)) as r`;
    return row!.r;
  }));
}

const admitted = (outcomes: Outcome[]) => outcomes.filter((o) => o.ok).length;
const refusedWith = (outcomes: Outcome[]) => new Set(outcomes.filter((o) => !o.ok).map((o) => o.limit));

async function model(name: string, rpm: number | null, rpd: number | null) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${name}, ${rpm}, null, ${rpd})`;
}

async function share(name: string, owner: { priority_class?: string; caller?: string },
  parts: { reserved_rpm?: number; reserved_rpd?: number; pace_burst?: number }) {
  await db.sql`insert into public.google_ai_quota_shares (model, priority_class, caller, reserved_rpm, reserved_rpd, pace_burst)
    values (${name}, ${owner.priority_class ?? null}, ${owner.caller ?? null}, ${parts.reserved_rpm ?? null},
            ${parts.reserved_rpd ?? null}, ${parts.pace_burst ?? null})`;
}

describe(`${CONNECTIONS} connections at once against a reserved share`, () => {
  it("RPD 20 with 8 kept for interactive, per quota group: a batch flood gets exactly 12 of each, the bot still 8", async () => {
    await model("share-day", null, 20);
    await share("share-day", { priority_class: "interactive" }, { reserved_rpd: 8 });

    const flood = await burst("share-day", batch(CONNECTIONS));
    expect(admitted(flood)).toBe(24); // 12 in each of the two groups
    expect(refusedWith(flood)).toEqual(new Set(["rpd"]));
    const byGroup = await db.sql<{ quota_group: string; rpd_used: number }[]>`
      select quota_group, rpd_used from public.google_ai_usage_counters where model = 'share-day' order by 1`;
    expect(byGroup).toEqual([{ quota_group: "proj-a", rpd_used: 12 }, { quota_group: "proj-b", rpd_used: 12 }]);

    const bots = await burst("share-day", bot(50));
    expect(admitted(bots)).toBe(16); // its 8 in each group
    const [{ day_used }] = await db.sql<{ day_used: number }[]>`
      select sum(u.day_used)::int as day_used from public.google_ai_usage_counters c, unnest(c.share_use) u
      where u.share_id in (select s.id from public.google_ai_quota_shares s where s.model = 'share-day')`;
    expect(day_used).toBe(16);
    expect(admitted(await burst("share-day", [...batch(20), ...bot(20)]))).toBe(0);
  });

  it("batch and the bot at once: never more than the limit, batch never into the share", async () => {
    await model("share-mixed", null, 20);
    await share("share-mixed", { priority_class: "interactive" }, { reserved_rpd: 8 });
    // Interleaved: 180 batch requests and 20 of the bot's, in one burst.
    const asks = Array.from({ length: CONNECTIONS }, (_, i) => (i % 10 === 0 ? bot(1)[0]! : batch(1)[0]!));
    const outcomes = await burst("share-mixed", asks);
    for (const group of ["proj-a", "proj-b"]) {
      const inGroup = (priority: string | null) =>
        outcomes.filter((o, i) => o.ok && o.quota_group === group && asks[i]!.priority === priority).length;
      // What the share still keeps from batch was never booked: used + kept <= the limit.
      expect(inGroup("batch") + inGroup(null) + Math.max(0, 8 - inGroup(null)), group).toBeLessThanOrEqual(20);
    }
    const batchAdmitted = outcomes.filter((o, i) => o.ok && asks[i]!.priority === "batch").length;
    // The bot fills whatever is left: both groups end exactly full, batch with no more than before.
    const botAdmitted = admitted(outcomes) - batchAdmitted + admitted(await burst("share-mixed", bot(50)));
    expect(batchAdmitted).toBeLessThanOrEqual(24);
    expect(batchAdmitted + botAdmitted).toBe(40);
  });

  it("RPM 10 with 4 kept for interactive and 2 for one notebook: each gets exactly what the others' shares leave", async () => {
    await model("share-minute", 10, null);
    await share("share-minute", { priority_class: "interactive" }, { reserved_rpm: 4 });
    await share("share-minute", { caller: "notebook-a" }, { reserved_rpm: 2 });

    const others = await burst("share-minute", batch(CONNECTIONS, "notebook-b"));
    expect(admitted(others)).toBe(8); // 10 - 4 - 2 in each group
    expect(refusedWith(others)).toEqual(new Set(["rpm"]));
    const own = await burst("share-minute", batch(CONNECTIONS, "notebook-a"));
    expect(admitted(own)).toBe(4); // its 2 in each group
    const bots = await burst("share-minute", bot(50));
    expect(admitted(bots)).toBe(8);
    // Full: refused until the burst leaves the window (60 s + the 1 s guard).
    const [full] = await burst("share-minute", batch(1, "notebook-b"), "2026-11-23T18:00:30Z");
    expect(full).toMatchObject({ ok: false, limit: "rpm", retry_at: "2026-11-23T18:01:01+00:00" });
  });
});

describe("a refusal with several groups", () => {
  it("holds no counter row: each group's try gives its lock back when a share keeps the group full", async () => {
    // Two requests each holding a full group's row while waiting for the other's would deadlock; so a
    // try that cannot book gives its row back at once. Nothing is booked of 10, and the interactive
    // share keeps all of it from batch: the raw counts show room, the shares none.
    await model("share-give-back", 10, null);
    await share("share-give-back", { priority_class: "interactive" }, { reserved_rpm: 10 });
    await burst("share-give-back", bot(1), "2026-11-23T17:00:00Z"); // counter rows for both groups,
    await burst("share-give-back", bot(1), "2026-11-23T17:00:00Z"); // whose windows are gone by AT
    const rows = await db.sql`select quota_group from public.google_ai_usage_counters where model = 'share-give-back'`;
    expect(rows).toHaveLength(2);

    const [asker, other] = clients as [Sql, Sql];
    const lockedByOthers: string[] = [];
    await asker.begin(async (tx) => {
      const [row] = await tx<{ r: Outcome }[]>`select public.google_ai_reserve_models_at(${AT}::timestamptz,
        jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: ["share-give-back"],
          estimated_tokens: 10, caller: "notebook", priority: "batch" })}::text::jsonb)) as r`;
      expect(row!.r).toMatchObject({ ok: false, limit: "rpm" });
      // Still inside the asker's transaction: which counter rows does it hold?
      for (const group of ["proj-a", "proj-b"]) {
        const free = await other.begin(async (probe) => {
          const [{ n }] = await probe<{ n: number }[]>`select count(*)::int as n from (
            select 1 from public.google_ai_usage_counters
            where quota_group = ${group} and model = 'share-give-back' for update skip locked) x`;
          return n === 1;
        });
        if (!free) lockedByOthers.push(group);
      }
    });
    expect(lockedByOthers).toEqual([]);
  });
});

describe("pacing and budgets at once", () => {
  it("a paced class gets exactly what its pace allows at that moment, from 200 connections", async () => {
    // 96 a day, burst 5: an hour into the Pacific day the pace allows 5 + 4 = 9 per group.
    await model("paced", null, 96);
    await share("paced", { priority_class: "batch" }, { pace_burst: 5 });
    const outcomes = await burst("paced", batch(CONNECTIONS), "2026-11-23T09:00:00Z");
    expect(admitted(outcomes)).toBe(18);
    expect(refusedWith(outcomes)).toEqual(new Set(["pace"]));
    expect(new Set(outcomes.filter((o) => !o.ok).map((o) => o.retry_at))).toEqual(new Set(["2026-11-23T09:15:00+00:00"]));
  });

  it("a service caller with a daily budget of 17 requests gets exactly 17 from 200 connections", async () => {
    await model("budgeted", null, null);
    await db.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests) values ('cron', 17)`;
    const outcomes = await burst("budgeted", Array.from({ length: CONNECTIONS }, () => ({ caller: "cron", priority: null })));
    expect(admitted(outcomes)).toBe(17);
    expect(refusedWith(outcomes)).toEqual(new Set(["caller_budget"]));
    const [row] = await db.sql`select requests_today, tokens_today::int from public.google_ai_caller_budgets where caller = 'cron'`;
    expect(row).toEqual({ requests_today: 17, tokens_today: 170 });
  });

  it("reservations and releases interleaved: the owner's count equals its bookings, and the share still holds", async () => {
    await model("share-churn", null, 60);
    await share("share-churn", { priority_class: "interactive" }, { reserved_rpd: 20 });
    await db.sql`delete from public.google_ai_api_keys where key_alias = 'b1'`;
    const asks = Array.from({ length: CONNECTIONS }, (_, i) => (i % 4 === 0 ? bot(1)[0]! : batch(1)[0]!));
    // Each connection books, and every other admitted booking is released at once.
    await Promise.all(asks.map(async (a, i) => {
      const c = clients[i]!;
      const [{ r }] = await c<{ r: Outcome }[]>`select public.google_ai_reserve_models_at(${AT}::timestamptz,
        jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: ["share-churn"],
          estimated_tokens: 10, caller: a.caller, priority: a.priority })}::text::jsonb)) as r`;
      if (r.ok && i % 2 === 0) await c`select public.google_ai_release(${r.reservation_id!}::uuid, 'test')`;
    }));
    const [held] = await db.sql<{ bot: number; total: number; used: number; window: number; rpd_used: number }[]>`
      select count(*) filter (where t.priority_class = 'interactive')::int as bot, count(*)::int as total,
             (select u.day_used from public.google_ai_usage_counters c, unnest(c.share_use) u
              where c.model = 'share-churn') as used,
             (select u.window_requests from public.google_ai_usage_counters c, unnest(c.share_use) u
              where c.model = 'share-churn') as window,
             (select c.rpd_used from public.google_ai_usage_counters c where c.model = 'share-churn') as rpd_used
      from public.google_ai_attempts t where t.model = 'share-churn' and t.status = 'reserved'`;
    expect(held!.used).toBe(held!.bot);
    expect(held!.window).toBe(held!.bot);
    expect(held!.rpd_used).toBe(held!.total);
    // What the share still keeps was never booked by batch.
    expect(held!.total + Math.max(0, 20 - held!.bot)).toBeLessThanOrEqual(60);
    // And the bot still gets all of it.
    const more = await burst("share-churn", bot(CONNECTIONS));
    expect(admitted(more)).toBe(60 - held!.total);
  });
});
