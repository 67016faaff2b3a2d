// The functions' own role, eve_gateway, can call the gateway's RPCs and do nothing else: every
// select, insert, update and delete on every table of schema public (and a select on every view) is
// refused, while the calls the three functions make succeed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
let gateway: Sql;
let tables: string[];
let views: string[];

beforeAll(async () => {
  db = await freshDatabase("gateway_role");
  gateway = connect(await gatewayRoleUrl(db.url), { max: 1 });
  tables = (await db.sql<{ name: string }[]>`
    select table_name as name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`).map((r) => r.name);
  views = (await db.sql<{ name: string }[]>`
    select table_name as name from information_schema.views where table_schema = 'public' order by 1`).map((r) => r.name);
});

afterAll(async () => {
  await gateway?.end();
  await db?.drop();
});

async function sqlstate(statement: string): Promise<string> {
  try {
    await gateway.unsafe(statement);
    return "allowed";
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe("eve_gateway", () => {
  it("connects as itself, not as a role that owns or bypasses anything", async () => {
    const [me] = await gateway`select current_user as name, r.rolsuper, r.rolbypassrls
                               from pg_roles r where r.rolname = current_user`;
    expect(me).toEqual({ name: "eve_gateway", rolsuper: false, rolbypassrls: false });
    expect(tables.length).toBeGreaterThanOrEqual(10);
  });

  it("may not select, insert, update or delete any table", async () => {
    const allowed: string[] = [];
    for (const t of tables) {
      const [col] = await db.sql<{ name: string }[]>`select column_name as name from information_schema.columns
        where table_schema = 'public' and table_name = ${t} and is_identity = 'NO' and is_generated = 'NEVER'
        order by ordinal_position limit 1`;
      const attempts = {
        select: `select * from public."${t}" limit 1`,
        insert: `insert into public."${t}" default values`,
        update: `update public."${t}" set "${col!.name}" = "${col!.name}" where false`,
        delete: `delete from public."${t}" where false`,
      };
      for (const [verb, statement] of Object.entries(attempts)) {
        const state = await sqlstate(statement);
        if (state !== "42501") allowed.push(`${verb} ${t}: ${state}`); // 42501 insufficient_privilege
      }
    }
    expect(allowed).toEqual([]);
  });

  it("may not read any view", async () => {
    const allowed: string[] = [];
    for (const v of views) {
      const state = await sqlstate(`select * from public."${v}" limit 1`);
      if (state !== "42501") allowed.push(`${v}: ${state}`);
    }
    expect(views.length).toBeGreaterThan(0);
    expect(allowed).toEqual([]);
  });

  it("may call what the functions call, and not the operator's functions", async () => {
    const [profile] = await gateway`select * from public.google_ai_model_traits(p_model => 'gemma-3-27b')`;
    expect(profile).toMatchObject({ model: "gemma-3-27b-it", is_active: true, supports_tools: false, fallback_models: [] });
    expect((await gateway`select * from public.google_ai_model_list()`).length).toBeGreaterThan(0);
    const [chain] = await gateway`select public.google_ai_reserve_models(p_models => array['gemini-2.5-flash', 'gemma-3-27b'],
      p_estimated_tokens => 10, p_caller => 'role-test', p_request_id => 'role-chain') as r`;
    expect(chain!.r).toMatchObject({ ok: true, requested_model: "gemini-2.5-flash" });
    const [viaToken] = await gateway`select public.google_ai_reserve_models(p_token_hash => ${"0".repeat(64)},
      p_models => array['gemma-3-27b'], p_estimated_tokens => 10, p_request_id => 'role-chain-token') as r`;
    expect(viaToken!.r).toMatchObject({ ok: false, limit: "token_invalid" });
    const [r] = await gateway`select public.google_ai_reserve_models(p_models => array['gemma-3-27b'], p_estimated_tokens => 10,
      p_caller => 'role-test', p_request_id => 'role-1') as r`;
    expect(r!.r.ok).toBe(true);
    const [f] = await gateway`select public.google_ai_finalize(${r!.r.reservation_id}::uuid,
      '{"kind": "succeeded", "input_tokens": 8, "output_tokens": 3}'::jsonb) as f`;
    expect(f!.f.ok).toBe(true);
    const [q] = await gateway`select public.google_ai_answer_quota(p_answer => ${gateway.json(r!.r)}::jsonb,
      p_model => 'gemma-3-27b') as q`;
    expect(q!.q).toMatchObject({ model: "gemma-3-27b-it", quota_group: r!.r.quota_group });
    const [report] = await gateway`select public.google_ai_quota_report() as r`;
    expect(report!.r.ok).toBe(true);
    const [t] = await gateway`select public.google_ai_check_token(p_token_hash => ${"0".repeat(64)}) as t`;
    expect(t!.t.status).toBe("token_invalid");
    expect((await gateway`select * from public.google_ai_active_keys('google')`).length).toBeGreaterThan(0);
    await gateway`select * from public.google_ai_catalogue_status()`;
    // Operator-only: creating clients, revoking, the clock-injecting reservation.
    expect(await sqlstate(`select public.google_ai_create_client('x', array['gemma-3-27b-it'])`)).toBe("42501");
    expect(await sqlstate(`select public.google_ai_revoke_client('x', 'r')`)).toBe("42501");
    expect(await sqlstate(`select public.google_ai_reserve_models_at(now(), null)`)).toBe("42501");
    expect(await sqlstate(`select public.google_ai_admit_at(now(), null::public.google_ai_request)`)).toBe("42501");
    expect(await sqlstate(`select public.google_ai_fall_back_at(now(), array['gemma-3-27b'], null, null)`)).toBe("42501");
  });
});
