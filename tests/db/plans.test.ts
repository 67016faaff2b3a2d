// The reservation's statements are planned once, not on every call: the functions a request enters
// through run with generic plans (their statements take the clock as a parameter, and PostgreSQL's
// default planned each of them again on every call), none of them is a SQL function (whose body is
// planned on every call when it has SET clauses), and every small SQL helper is inlined into the
// statement that uses it (one declared IMMUTABLE over a STABLE body is called instead, each time).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../shared/db/migrate.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { freshDatabase, oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("plans");
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

const REQUEST_ENTRIES = [
  "google_ai_reserve_models",
  "google_ai_reserve_models_at",
  "google_ai_admit_at",
  "google_ai_fall_back_at",
  "google_ai_answer_quota",
  "google_ai_finalize",
  "google_ai_finalize_calls",
  "google_ai_finalize_attempt",
  "google_ai_release",
];

describe("the request path's plans", () => {
  it("every function a request enters through is PL/pgSQL and runs with generic plans", async () => {
    const rows = await db.sql<{ name: string; language: string; config: string[] | null }[]>`
      select p.proname as name, l.lanname as language, p.proconfig as config
      from pg_proc p join pg_language l on l.oid = p.prolang
      where p.pronamespace = 'public'::regnamespace and p.proname = any(${REQUEST_ENTRIES})`;
    expect([...new Set(rows.map((r) => r.name))].sort()).toEqual([...REQUEST_ENTRIES].sort());
    for (const r of rows) {
      expect({ name: r.name, language: r.language }).toEqual({ name: r.name, language: "plpgsql" });
      expect({ name: r.name, config: r.config }).toEqual({
        name: r.name,
        config: expect.arrayContaining(["plan_cache_mode=force_generic_plan"]),
      });
    }
  });

  it("every scalar SQL helper without SET clauses is inlined into the statement that calls it", async () => {
    const helpers = await db.sql<{ name: string; types: string[] }[]>`
      select p.proname as name, array(select format_type(t, null) from unnest(p.proargtypes) t) as types
      from pg_proc p join pg_language l on l.oid = p.prolang
      where p.pronamespace = 'public'::regnamespace and l.lanname = 'sql' and p.proconfig is null
        and not p.proretset and p.prokind = 'f'
      order by 1`;
    expect(helpers.map((h) => h.name)).toContain("google_ai_spread_next");
    const called: string[] = [];
    const conn = await db.sql.reserve();
    try {
      await conn`set plan_cache_mode = force_generic_plan`;
      for (const h of helpers) {
        // A prepared statement's generic plan keeps the arguments as parameters: an inlined helper's
        // body appears in it, a called one by its name.
        const params = h.types.map((_, i) => `$${i + 1}`).join(", ");
        const types = h.types.length ? `(${h.types.join(", ")})` : "";
        const values = h.types.length ? `(${h.types.map(() => "null").join(", ")})` : "";
        await conn.unsafe(`prepare helper_call${types} as select public.${h.name}(${params})`);
        const plan = await conn.unsafe(`explain verbose execute helper_call${values}`);
        await conn.unsafe("deallocate helper_call");
        if (plan.some((row) => String(row["QUERY PLAN"]).includes(h.name))) called.push(h.name);
      }
    } finally {
      conn.release();
    }
    expect(called).toEqual([]);
  });
});

describe("plans kept while the log grows", () => {
  // A connection plans each statement once and keeps the plan: one made while the log was small (a new
  // project, a fresh database) stays with the connection as the log grows. The request path finds its
  // rows in the log tables by key whatever they held when it was planned.
  it("a reservation, a batch and their finalizes read the log tables by index after they grew under plans made on small ones", async () => {
    const logDb = await oneKeyDatabase("plans_log", { alias: "pl1", envVar: "KEY_PL1", project: "proj-plans" });
    const gateway = connect(await gatewayRoleUrl(logDb.url), { max: 1 });
    const LOG_TABLES = ["google_ai_attempts", "google_ai_responses", "token_usage"];
    try {
      await logDb.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('plans-model', 100000, 100000000, 10000000)`;
      const call = () => ({
        models: ["plans-model"], estimated_tokens: 10, caller: "plans", request_id: randomUUID(), idempotent: true,
        reply_by: new Date(Date.now() + 60_000).toISOString(), hold_until: new Date(Date.now() + 360_000).toISOString(),
        holder: randomUUID(),
      });
      const outcome = { kind: "succeeded", input_tokens: 5, output_tokens: 5, http_status: 200, response: { text: "ok" } };
      // One request alone, two that met, then their three finalizes, in one transaction: the scans each
      // log table took in it.
      const requestPath = async () =>
        await gateway.begin(async (tx) => {
          const one = call();
          const [{ r: alone }] = await tx`select public.google_ai_reserve_models(${one.models}, ${one.estimated_tokens},
            p_caller => ${one.caller}, p_request_id => ${one.request_id}, p_idempotent => true,
            p_reply_by => ${one.reply_by}, p_hold_until => ${one.hold_until}, p_holder => ${one.holder}) as r`;
          const [{ r: met }] = await tx`select public.google_ai_reserve_many(${JSON.stringify([call(), call()])}::text::jsonb) as r`;
          const ids = [alone, ...met].map((a: { ok: boolean; reservation_id: string }) => {
            expect(a.ok).toBe(true);
            return a.reservation_id;
          });
          const [{ r: finalized }] = await tx`select public.google_ai_finalize_calls(
            ${JSON.stringify(ids.map((id) => ({ reservation_id: id, outcome })))}::text::jsonb) as r`;
          expect(finalized.map((f: { ok: boolean }) => f.ok)).toEqual([true, true, true]);
          return await tx<{ table: string; seq: number; idx: number; fetched: number }[]>`
            select relname as table, seq_scan::int as seq, idx_scan::int as idx, idx_tup_fetch::int as fetched
            from pg_catalog.pg_stat_xact_user_tables
            where schemaname = 'public' and relname = any(${LOG_TABLES}) order by relname`;
        });
      await requestPath(); // planned on logs of a few rows
      await logDb.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
        select 'succeeded', 'older', 'plans-model', now() - g * interval '1 second' from generate_series(1, 20000) g`;
      await logDb.sql`insert into public.google_ai_responses (caller, request_id, status, model, created_at)
        select 'older', 'r-' || g, 'done', 'plans-model', now() - g * interval '1 second' from generate_series(1, 20000) g`;
      await logDb.sql`insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id)
        select 'plans-model', 1, 1, 2, 'r-' || g from generate_series(1, 20000) g`;
      const scans = await requestPath();
      expect(scans.map((s) => ({ table: s.table, seq: s.seq }))).toEqual(LOG_TABLES.sort().map((table) => ({ table, seq: 0 })));
      expect(scans.find((s) => s.table === "google_ai_attempts")!.idx).toBeGreaterThan(0);
      // By key, not a whole index read in a join (which would fetch the 20,000 rows).
      for (const s of scans) expect(s.fetched, s.table).toBeLessThan(100);
    } finally {
      await gateway.end({ timeout: 5 });
      await logDb.drop();
    }
  });
});
