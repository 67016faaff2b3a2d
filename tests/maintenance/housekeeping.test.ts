// Housekeeping against real concurrent sessions: a backlog of several batches is cleaned in one run,
// traffic keeps flowing while a run holds its locks, a run that meets a table lock fails fast and is
// logged as failed, and two runs at once do not both work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

interface RunResult {
  ok: boolean;
  status: "succeeded" | "failed" | "skipped";
  log_id: number;
  deleted_count: number;
  more_pending: boolean;
  failed_steps: string[];
  steps: Record<string, { status: string; deleted?: number; batches?: number; error?: string; sqlstate?: string }>;
}

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("housekeeping");
});
afterAll(async () => {
  await db?.drop();
});

async function housekeeping(sql: Sql = db.sql): Promise<RunResult> {
  const [{ r }] = await sql`select public.google_ai_housekeeping() as r`;
  return r as RunResult;
}

async function count(where: string): Promise<number> {
  const [{ n }] = await db.sql.unsafe(`select count(*)::int as n from public.google_ai_attempts where ${where}`);
  return n as number;
}

describe("housekeeping with a backlog", () => {
  it("cleans a backlog of several batches in one run and keeps what is inside the retention", async () => {
    // 23,456 rows past the 30 days, default batches of 5,000: five batches.
    await db.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
                 select 'succeeded', 'backlog', 'gemma-3-27b-it', now() - interval '31 days' - n * interval '1 second'
                 from generate_series(1, 23456) n`;
    await db.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
                 select 'succeeded', 'recent', 'gemma-3-27b-it', now() - interval '29 days' - n * interval '1 second'
                 from generate_series(1, 500) n`;
    const result = await housekeeping();
    expect(result.status).toBe("succeeded");
    expect(result.steps.attempts_retention).toMatchObject({ deleted: 23456, batches: 5 });
    expect(result.more_pending).toBe(false);
    expect(await count("caller = 'backlog'")).toBe(0);
    expect(await count("caller = 'recent'")).toBe(500);
    const [log] = await db.sql`select status, deleted_count from public.google_ai_maintenance_log where id = ${result.log_id}`;
    expect(log).toEqual({ status: "succeeded", deleted_count: 23456 });
  });

  it("does not block traffic while a run holds its locks", async () => {
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('hk-model', 1000, 1000000, 100000)
                 on conflict (model) do nothing`;
    await db.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
                 select 'succeeded', 'backlog-2', 'hk-model', now() - interval '40 days' from generate_series(1, 2000)`;
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until) values ('key:x', 'hk-model', now() - interval '1 hour')`;

    const run = await db.sql.reserve();
    // A hang must fail this test, not the ones after it.
    const traffic = connect(db.url, { max: 20, connection: { statement_timeout: 10_000 } });
    try {
      await run`begin`;
      const [{ r }] = await run`select public.google_ai_housekeeping() as r`;
      expect((r as RunResult).status).toBe("succeeded");
      expect((r as RunResult).deleted_count).toBeGreaterThanOrEqual(2001);
      // The run's transaction is still open: every row it deleted is locked, and the keys table is
      // share-locked. Reservations, finalizes and cooldowns (of other groups) go on regardless.
      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const [{ res }] = await traffic`select public.google_ai_reserve_models(array['hk-model'], 10, 'traffic', null, ${`t-${i}`}) as res`;
          const fin = await traffic`select public.google_ai_finalize(${res.reservation_id}::uuid,
            '{"kind": "succeeded", "input_tokens": 10, "output_tokens": 5, "http_status": 200}'::jsonb) as f`;
          return { reserved: res.ok as boolean, finalized: fin[0]!.f.ok as boolean };
        }),
      );
      await traffic`select public.google_ai_cooldown('key:y', 'hk-model', now() + interval '1 second', 'test')`;
      await traffic`select * from public.google_ai_api_keys`;
      expect(outcomes.every((o) => o.reserved && o.finalized)).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
      await run`commit`;
    } finally {
      await run`rollback`; // after the commit this is a no-op (with a warning)
      run.release();
      await traffic.end({ timeout: 5 });
    }
    expect(await count("caller = 'backlog-2'")).toBe(0);
    expect(await count("caller = 'traffic' and status = 'succeeded'")).toBe(40);
  });
});

describe("housekeeping that cannot do its work", () => {
  it("fails fast on a table lock, logs the run as failed with the reason, and keeps the other steps' work", async () => {
    await db.sql`update public.google_ai_maintenance_settings set lock_timeout_ms = 300`;
    await db.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
                 values ('succeeded', 'old-3', 'gemma-3-27b-it', now() - interval '60 days')`;
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until) values ('locked', 'gemma-3-27b-it', now() - interval '1 hour')`;
    const [{ before }] = await db.sql`select coalesce(max(id), 0)::int as before from public.google_ai_maintenance_log`;

    // Someone (a migration, an operator) holds the cooldowns table exclusively.
    const holder = await db.sql.reserve();
    let result: RunResult;
    const started = Date.now();
    try {
      await holder`begin`;
      await holder`lock table public.google_ai_cooldowns in access exclusive mode`;
      result = await housekeeping();
    } finally {
      await holder`rollback`;
      holder.release();
      await db.sql`update public.google_ai_maintenance_settings set lock_timeout_ms = 5000`;
    }
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.status).toBe("failed");
    expect(result.ok).toBe(false);
    expect(result.failed_steps).toEqual(["expired_cooldowns"]);
    expect(result.steps.expired_cooldowns).toMatchObject({ status: "failed", sqlstate: "55P03" });
    expect(result.steps.expired_cooldowns!.error).toMatch(/lock timeout/);

    const logs = await db.sql`select id, operation, status, details from public.google_ai_maintenance_log where id > ${before}`;
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ id: result.log_id, operation: "housekeeping", status: "failed" });
    expect(logs[0]!.details.failed_steps).toEqual(["expired_cooldowns"]);
    expect(await count("caller = 'old-3'")).toBe(0);
    expect((await db.sql`select count(*)::int as n from public.google_ai_cooldowns where quota_group = 'locked'`)[0]!.n).toBe(1);

    // The next run, with the lock gone, finishes the job.
    const next = await housekeeping();
    expect(next.status).toBe("succeeded");
    expect((await db.sql`select count(*)::int as n from public.google_ai_cooldowns where quota_group = 'locked'`)[0]!.n).toBe(0);
  });

  it("skips (and logs) a run while another one is in progress", async () => {
    const first = await db.sql.reserve();
    try {
      await first`begin`;
      await first`select public.google_ai_housekeeping()`;
      const second = await housekeeping();
      expect(second).toMatchObject({ ok: true, status: "skipped", deleted_count: 0 });
      const [log] = await db.sql`select operation, status, details ->> 'reason' as reason
                                 from public.google_ai_maintenance_log where id = ${second.log_id}`;
      expect(log).toEqual({ operation: "housekeeping", status: "skipped", reason: "another housekeeping run is in progress" });
    } finally {
      await first`rollback`;
      first.release();
    }
    expect((await housekeeping()).status).toBe("succeeded");
  });
});
