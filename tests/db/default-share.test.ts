// The share kept for people by default, on a real PostgreSQL built as every test database is (the
// migrations and the seed): the `interactive` class's kept percents (google_ai_priority_classes)
// become one derived share row per model, kept in step by triggers. One statement on the class row
// changes or removes every derived row; a model added later gets its row; a row the operator edited
// is the operator's and stays; the rows migration applied again never undoes the operator's choice. And what the
// shares keep is in the quota an answer carries (google_ai_answer_quota_at, per the answer's class).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigration, listMigrations } from "../../shared/db/migrate.ts";
import { ROWS_AND_SCHEDULE } from "../../shared/db/schema-diff.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("default_share");
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface ShareRow {
  model: string;
  reserved_rpm: number | null;
  reserved_rpd: number | null;
  derived: boolean;
}

/** The `interactive` class's share rows, by model. */
async function interactiveShares(): Promise<Map<string, ShareRow>> {
  const rows = await db.sql<ShareRow[]>`
    select s.model, s.reserved_rpm, s.reserved_rpd, s.derived_from_class as derived
    from public.google_ai_quota_shares s where s.priority_class = 'interactive' order by s.model`;
  return new Map(rows.map((r) => [r.model, r]));
}

/** What the percents keep of a limit: rounded down, at least 1, below 100% never all (docs/architecture.md). */
const kept = (limit: number | null, percent: number) =>
  limit === null ? null : percent >= 100 ? limit : limit <= 1 ? 0 : Math.min(limit - 1, Math.max(1, Math.floor((limit * percent) / 100)));

async function modelLimits(): Promise<{ model: string; rpm: number | null; rpd: number | null }[]> {
  return db.sql`
    select l.model, public.google_ai_effective_limit(l.rpm, l.safety_margin) as rpm,
           public.google_ai_effective_limit(l.rpd, l.safety_margin) as rpd
    from public.google_ai_model_limits l order by l.model`;
}

describe("the default share of `interactive`", () => {
  it("is seeded on every model: 20% of its RPM and 10% of its RPD, at least 1 request each", async () => {
    const [cls] = await db.sql<{ rpm: string; rpd: string }[]>`
      select kept_rpm_percent as rpm, kept_rpd_percent as rpd from public.google_ai_priority_classes where name = 'interactive'`;
    expect([Number(cls!.rpm), Number(cls!.rpd)]).toEqual([20, 10]);
    const [batch] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_quota_shares where priority_class = 'batch'`;
    expect(batch!.n).toBe(0);

    const limits = await modelLimits();
    expect(limits.length).toBeGreaterThanOrEqual(8);
    const shares = await interactiveShares();
    for (const l of limits) {
      expect(shares.get(l.model), l.model).toEqual({
        model: l.model, reserved_rpm: kept(l.rpm, 20), reserved_rpd: kept(l.rpd, 10), derived: true,
      });
    }
    // The numbers docs/architecture.md names: RPM 30 keeps 6, RPM 5 keeps 1; RPD 20 keeps 2.
    expect(shares.get("gemma-3-27b-it")).toMatchObject({ reserved_rpm: 6, reserved_rpd: 1440 });
    expect(shares.get("gemini-2.5-flash")).toMatchObject({ reserved_rpm: 1, reserved_rpd: 2 });
    expect(shares.get("gemini-3.1-flash-lite")).toMatchObject({ reserved_rpm: 3, reserved_rpd: 50 });
    // The operator's view shows them per quota group: every model a seeded key serves (no Anthropic key is seeded).
    const view = await db.sql<{ model: string; rpm_kept_now: number | null; rpd_kept_today: number | null }[]>`
      select model, rpm_kept_now, rpd_kept_today from public.google_ai_shares_today where owner = 'interactive'`;
    const [{ keyed }] = await db.sql<{ keyed: number }[]>`
      select count(*)::int as keyed from public.google_ai_model_limits l
      where exists (select 1 from public.google_ai_api_keys k where k.serves_provider = l.provider)`;
    expect(view).toHaveLength(keyed);
    for (const row of view) {
      const share = shares.get(row.model)!;
      expect(row).toEqual({ model: row.model, rpm_kept_now: share.reserved_rpm, rpd_kept_today: share.reserved_rpd });
    }
  });

  it("follows a model added later, and its limits and safety margin when they change", async () => {
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('ds-new', 4, 1000, null)`;
    expect((await interactiveShares()).get("ds-new")).toEqual({
      model: "ds-new", reserved_rpm: 1, reserved_rpd: null, derived: true,
    });
    await db.sql`update public.google_ai_model_limits set rpm = 60, rpd = 1000 where model = 'ds-new'`;
    expect((await interactiveShares()).get("ds-new")).toMatchObject({ reserved_rpm: 12, reserved_rpd: 100 });
    // The share is of the effective limit (after the margin): 60 x 0.9 = 54 RPM keeps 10.
    await db.sql`update public.google_ai_model_limits set safety_margin = 0.1 where model = 'ds-new'`;
    expect((await interactiveShares()).get("ds-new")).toMatchObject({ reserved_rpm: 10, reserved_rpd: 90 });
    // The rounding at the small end: 2 RPM at 20% keeps 1; 1 RPD keeps nothing (others keep their 1).
    await db.sql`update public.google_ai_model_limits set rpm = 2, rpd = 1, safety_margin = 0 where model = 'ds-new'`;
    expect((await interactiveShares()).get("ds-new")).toMatchObject({ reserved_rpm: 1, reserved_rpd: 0 });
    const [{ r1, r100, r99 }] = await db.sql<{ r1: number; r100: number; r99: number }[]>`
      select public.google_ai_kept_requests(1, 20) as r1, public.google_ai_kept_requests(7, 100) as r100,
             public.google_ai_kept_requests(7, 99) as r99`;
    expect({ r1, r100, r99 }).toEqual({ r1: 0, r100: 7, r99: 6 });
    // A model renamed keeps its derived row (the foreign key's cascade is no operator's edit).
    await db.sql`update public.google_ai_model_limits set model = 'ds-renamed' where model = 'ds-new'`;
    expect((await interactiveShares()).get("ds-renamed")).toMatchObject({ reserved_rpm: 1, derived: true });
    await db.sql`update public.google_ai_model_limits set model = 'ds-new' where model = 'ds-renamed'`;
    // A model without limits keeps nothing: no row.
    await db.sql`update public.google_ai_model_limits set rpm = null, rpd = null where model = 'ds-new'`;
    expect((await interactiveShares()).has("ds-new")).toBe(false);
    await db.sql`delete from public.google_ai_model_limits where model = 'ds-new'`;
  });

  it("changes on every model with one statement, is removed with one, and comes back with one", async () => {
    const models = (await modelLimits()).length;
    try {
      // As the operator's role (Supabase's service_role) would.
      await db.sql.begin(async (tx) => {
        await tx`set local role service_role`;
        await tx`update public.google_ai_priority_classes set kept_rpm_percent = 50, kept_rpd_percent = null
                 where name = 'interactive'`;
      });
      const halved = await interactiveShares();
      expect(halved.size).toBe(models);
      for (const l of await modelLimits()) {
        expect(halved.get(l.model)).toEqual({ model: l.model, reserved_rpm: kept(l.rpm, 50), reserved_rpd: null, derived: true });
      }
      await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null
                   where name = 'interactive'`;
      expect((await interactiveShares()).size).toBe(0);
      // The rows migration that writes the default applied again leaves the operator's removal as it is.
      await applyMigration(db.sql, (await listMigrations()).find((m) => `${m.version}_${m.name}.sql` === ROWS_AND_SCHEDULE)!);
      expect((await interactiveShares()).size).toBe(0);
    } finally {
      await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = 20, kept_rpd_percent = 10
                   where name = 'interactive'`;
    }
    expect((await interactiveShares()).size).toBe(models);
    // Any class may keep a share: batch too, beside interactive's.
    await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = 10 where name = 'batch'`;
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_quota_shares where priority_class = 'batch' and derived_from_class`;
    expect(n).toBe(models);
    await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null where name = 'batch'`;
  });

  it("leaves a row the operator edited, or wrote before the class kept anything, as the operator's", async () => {
    // An edit of a derived row's numbers makes it the operator's.
    await db.sql`update public.google_ai_quota_shares set reserved_rpm = 3
                 where model = 'gemini-2.5-flash' and priority_class = 'interactive'`;
    expect((await interactiveShares()).get("gemini-2.5-flash")).toEqual({
      model: "gemini-2.5-flash", reserved_rpm: 3, reserved_rpd: 2, derived: false,
    });
    // Neither a new percent, nor a removal, nor the model's limits touch it.
    await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = 40 where name = 'interactive'`;
    await db.sql`update public.google_ai_model_limits set rpd = 40 where model = 'gemini-2.5-flash'`;
    expect((await interactiveShares()).get("gemini-2.5-flash")).toMatchObject({ reserved_rpm: 3, reserved_rpd: 2, derived: false });
    expect((await interactiveShares()).get("gemini-2.5-flash-lite")).toMatchObject({ reserved_rpm: 4, derived: true });
    await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null
                 where name = 'interactive'`;
    const removed = await interactiveShares();
    expect([...removed.keys()]).toEqual(["gemini-2.5-flash"]);

    // A row the operator writes while the class keeps nothing stays theirs when the percents return.
    await db.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd, pace_burst)
                 values ('gemma-3-27b-it', 'interactive', 100, 5)`;
    await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = 20, kept_rpd_percent = 10
                 where name = 'interactive'`;
    const back = await interactiveShares();
    expect(back.get("gemma-3-27b-it")).toEqual({ model: "gemma-3-27b-it", reserved_rpm: null, reserved_rpd: 100, derived: false });
    expect(back.get("gemini-2.5-flash")).toMatchObject({ reserved_rpm: 3, derived: false });
    expect(back.get("gemini-3.5-flash")).toMatchObject({ reserved_rpm: 1, reserved_rpd: 2, derived: true });

    // Given back to the class (derived_from_class = true), a row takes the class's numbers again.
    await db.sql`update public.google_ai_quota_shares set derived_from_class = true
                 where priority_class = 'interactive' and model in ('gemma-3-27b-it', 'gemini-2.5-flash')`;
    const given = await interactiveShares();
    expect(given.get("gemma-3-27b-it")).toEqual({ model: "gemma-3-27b-it", reserved_rpm: 6, reserved_rpd: 1440, derived: true });
    expect(given.get("gemini-2.5-flash")).toEqual({ model: "gemini-2.5-flash", reserved_rpm: 1, reserved_rpd: 4, derived: true });
    const [{ pace }] = await db.sql<{ pace: number | null }[]>`
      select pace_burst as pace from public.google_ai_quota_shares where model = 'gemma-3-27b-it' and priority_class = 'interactive'`;
    expect(pace).toBeNull();
    // A caller's row cannot be a class's derived row.
    await expect(db.sql`insert into public.google_ai_quota_shares (model, caller, reserved_rpm, derived_from_class)
                        values ('gemma-3-27b-it', 'bot', 2, true)`).rejects.toMatchObject({ code: "23514" });
    await db.sql`update public.google_ai_model_limits set rpd = 20 where model = 'gemini-2.5-flash'`;
  });
});

describe("what the shares keep, in the quota an answer carries", () => {
  const AT = "2026-11-21T10:00:00Z"; // 02:00 Pacific

  async function answerQuota(answer: unknown, model: string) {
    const [row] = await db.sql<{ q: { kept?: unknown } | null }[]>`
      select public.google_ai_answer_quota_at(p_now => ${AT}::timestamptz, p_answer => ${db.sql.json(answer as never)}::jsonb,
        p_model => ${model}) as q`;
    return row!.q;
  }

  it("for an admission's class and a queued ticket's: the interactive share kept for it, or from it", async () => {
    const [{ r }] = await db.sql<{ r: Record<string, unknown> }[]>`
      select public.google_ai_reserve_models_at(${AT}::timestamptz, jsonb_populate_record(
        null::public.google_ai_reservation, ${reservation({ models: ["gemma-3-27b-it"], estimated_tokens: 10,
          caller: "ds-batch", priority: "batch" })}::text::jsonb)) as r`;
    expect(r).toMatchObject({ ok: true, priority: "batch" });
    expect((await answerQuota(r, "gemma-3-27b-it"))!.kept).toEqual({
      rpm_for_others: 6, rpm_for_you: 0, rpd_for_others: 1440, rpd_for_you: 0,
    });
    const interactive = { ...r, priority: "interactive" };
    expect((await answerQuota(interactive, "gemma-3-27b-it"))!.kept).toEqual({
      rpm_for_others: 0, rpm_for_you: 6, rpd_for_others: 0, rpd_for_you: 1440,
    });
    const queued = { ok: false, limit: "rpm", retry_after_ms: 1000, model: "gemini-2.5-flash",
      queue: { ticket: crypto.randomUUID(), position: 1, expected_at: AT, priority: "batch" } };
    expect((await answerQuota(queued, "gemini-2.5-flash"))!.kept).toEqual({
      rpm_for_others: 1, rpm_for_you: 0, rpd_for_others: 2, rpd_for_you: 0,
    });
    // A refusal answered at once names no class: its quota tells no share apart.
    const refusal = { ok: false, limit: "rpm", retry_after_ms: 1000, model: "gemini-2.5-flash" };
    expect((await answerQuota(refusal, "gemini-2.5-flash"))!.kept).toBeUndefined();
    // Nor for a model no share keeps anything of: as a fast booking's quota, which carries none.
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('ds-bare', 5, null, 20)`;
    await db.sql`delete from public.google_ai_quota_shares where model = 'ds-bare'`;
    expect((await answerQuota({ ...r, model: "ds-bare" }, "ds-bare"))!.kept).toBeUndefined();
    await db.sql`delete from public.google_ai_model_limits where model = 'ds-bare'`;
  });
});
