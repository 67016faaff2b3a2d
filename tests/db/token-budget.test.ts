// A token's budget is booked in the same transaction as the quota: 50 concurrent callers holding
// one token with a budget of N requests get exactly N reservations.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const CALLERS = 50;
const BUDGET = 17;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

let db: TestDatabase;
let clients: Sql[] = [];

beforeAll(async () => {
  db = await freshDatabase("token_budget");
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('k2', 'KEY_2', 'proj-2')`;
  // The token's budget is counted here, not the window's spread: the callers go at once.
  await db.sql`update public.google_ai_model_limits set spread_burst = null where model = 'gemma-3-27b-it'`;
  clients = Array.from({ length: CALLERS }, () => connect(db.url, { max: 1 }));
  await Promise.all(clients.map((c) => c`select 1`));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

it(`${CALLERS} concurrent callers of one token with a budget of ${BUDGET} requests succeed exactly ${BUDGET} times`, async () => {
  const [{ r: client }] = await db.sql`select public.google_ai_create_client('budget-test', array['gemma-3-27b-it'],
    p_token_max_requests => 100) as r`;
  const token = `evegw_tok_${randomBytes(32).toString("base64url")}`;
  const [{ r: minted }] = await db.sql`select public.google_ai_mint_token(${sha256(client.secret)}, ${sha256(token)},
    p_max_requests => ${BUDGET}) as r`;
  expect(minted.ok).toBe(true);

  const outcomes = await Promise.all(
    clients.map(async (c, i) => {
      const [{ r }] = await c`select public.google_ai_reserve_models(array['gemma-3-27b'], 20, null, ${sha256(token)}, ${`b-${i}`}) as r`;
      return r as { ok: boolean; limit?: string };
    }),
  );
  expect(outcomes.filter((o) => o.ok)).toHaveLength(BUDGET);
  expect(new Set(outcomes.filter((o) => !o.ok).map((o) => o.limit))).toEqual(new Set(["token_budget"]));
  const [row] = await db.sql`select requests_used, tokens_used from public.google_ai_tokens where id = ${minted.token_id}`;
  expect(row).toEqual({ requests_used: BUDGET, tokens_used: BUDGET * 20 });
  const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_attempts
                               where token_id = ${minted.token_id} and status = 'reserved'`;
  expect(n).toBe(BUDGET);
});

it("revoking a client while its token is in use deadlocks nothing: every call ends, and the token is refused afterwards", async () => {
  const [{ r: client }] = await db.sql`select public.google_ai_create_client('revoke-race', array['gemma-3-27b-it']) as r`;
  const token = `evegw_tok_${randomBytes(32).toString("base64url")}`;
  await db.sql`select public.google_ai_mint_token(${sha256(client.secret)}, ${sha256(token)})`;
  const errors: unknown[] = [];
  const calls = clients.map(async (c, i) => {
    try {
      if (i === 25) {
        await c`select public.google_ai_revoke_client('revoke-race', 'test')`;
        return;
      }
      for (let n = 0; n < 5; n++) {
        await c`select public.google_ai_reserve_models(array['gemma-3-27b'], 1, null, ${sha256(token)}, ${`rr-${i}-${n}`})`;
      }
    } catch (err) {
      errors.push(err);
    }
  });
  await Promise.all(calls);
  expect(errors).toEqual([]);
  const [{ r }] = await db.sql`select public.google_ai_reserve_models(array['gemma-3-27b'], 1, null, ${sha256(token)}, 'after') as r`;
  expect(r.limit).toBe("token_revoked");
});
