// The reservation's statements are planned once, not on every call: the functions a request enters
// through run with generic plans (their statements take the clock as a parameter, and PostgreSQL's
// default planned each of them again on every call), none of them is a SQL function (whose body is
// planned on every call when it has SET clauses), and every small SQL helper is inlined into the
// statement that uses it (one declared IMMUTABLE over a STABLE body is called instead, each time).
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
  // (and, until the release, its former signature: 61_former_finalize.sql)
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
  // project, a fresh bench database) stays with the connection as the log grows. Finalize finds its
  // open attempt rows by key whatever the log held when it was planned.
  it("finalize reads the attempt log by its index after the log grew under a plan made on a small one", async () => {
    const logDb = await oneKeyDatabase("plans_log", { alias: "pl1", envVar: "KEY_PL1", project: "proj-plans" });
    const gateway = connect(await gatewayRoleUrl(logDb.url), { max: 1 });
    try {
      await logDb.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('plans-model', 100000, 100000000, 10000000)`;
      const reserve = async () => {
        const [{ r }] = await gateway`select public.google_ai_reserve_models(array['plans-model'], 10, p_caller => 'plans') as r`;
        expect(r.ok).toBe(true);
        return r.reservation_id as string;
      };
      const outcome = { kind: "succeeded", input_tokens: 5, output_tokens: 5, http_status: 200 };
      const finalizeCounting = async (id: string) =>
        await gateway.begin(async (tx) => {
          const [{ r }] = await tx`select public.google_ai_finalize_calls(${JSON.stringify([{ reservation_id: id, outcome }])}::text::jsonb) as r`;
          expect(r[0].ok).toBe(true);
          const [scans] = await tx<{ seq: number; idx: number }[]>`
            select seq_scan::int as seq, idx_scan::int as idx from pg_catalog.pg_stat_xact_user_tables
            where relid = 'public.google_ai_attempts'::regclass`;
          return scans;
        });
      // Planned on a log of one row.
      await finalizeCounting(await reserve());
      const later = await reserve();
      await logDb.sql`insert into public.google_ai_attempts (status, caller, model, created_at)
        select 'succeeded', 'older', 'plans-model', now() - g * interval '1 second' from generate_series(1, 20000) g`;
      const scans = await finalizeCounting(later);
      expect(scans.seq).toBe(0);
      expect(scans.idx).toBeGreaterThan(0);
    } finally {
      await gateway.end({ timeout: 5 });
      await logDb.drop();
    }
  });
});
