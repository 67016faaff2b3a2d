// The one reservation entry (supabase/schemas/58_admission.sql): google_ai_reserve_models takes the
// models as an array and a caller or a token hash, the holder's deadlines as parameters; one model is
// admitted as it is, a chain falls back; google_ai_reserve_models_at is the owner's clock seam.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
let gateway: Sql;

beforeAll(async () => {
  db = await freshDatabase("reserve_entry");
  // The entry's answers are compared here, not the window's spread: its calls go at once.
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  gateway = connect(await gatewayRoleUrl(db.url), { max: 1 });
});

afterAll(async () => {
  await gateway?.end();
  await db?.drop();
});

async function sqlstate(sql: Sql, statement: string): Promise<string> {
  try {
    await sql.unsafe(statement);
    return "allowed";
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

/** The fields of an answer; `quota` comes with a fast booking only (the first of a day is not one). */
function shape(answer: Record<string, unknown>): string[] {
  return Object.keys(answer).filter((k) => k !== "quota").sort();
}

describe("google_ai_reserve_models", () => {
  it("answers one model with the admission's fields, a chain with the model asked for and those passed over", async () => {
    const [{ one }] = await db.sql`select public.google_ai_reserve_models(p_models => array['gemma-3-27b'],
      p_estimated_tokens => 10, p_caller => 'entry', p_token_hash => null, p_request_id => null) as one`;
    expect(one).toMatchObject({ ok: true, model: "gemma-3-27b-it" });
    const booked = ["booked_usd", "day_bucket", "env_var_name", "key_alias", "key_id", "minute_bucket", "model", "ok",
      "priority", "quota_group", "reservation_id"];
    expect(shape(one)).toEqual(booked);

    const [{ chain }] = await db.sql`select public.google_ai_reserve_models(
      p_models => array['gemini-2.5-flash', 'gemma-3-27b'], p_estimated_tokens => 10, p_caller => 'entry',
      p_token_hash => null, p_request_id => null) as chain`;
    expect(chain).toMatchObject({ ok: true, requested_model: "gemini-2.5-flash", fallback_from: [] });
    expect(shape(chain)).toEqual([...booked, "fallback_from", "requested_model"].sort());
  });

  it("refuses a hash no token has, without an attempt row (nobody to name)", async () => {
    const [{ before }] = await db.sql`select count(*)::int as before from public.google_ai_attempts`;
    const [{ r }] = await db.sql`select public.google_ai_reserve_models(p_models => array['gemma-3-27b'],
      p_estimated_tokens => 10, p_caller => null, p_token_hash => ${"0".repeat(64)}, p_request_id => null) as r`;
    expect(r).toEqual({ ok: false, limit: "token_invalid", cause: "token_invalid", retry_after_ms: null });
    const [{ after }] = await db.sql`select count(*)::int as after from public.google_ai_attempts`;
    expect(after).toBe(before);
  });

  it("takes exactly one of a caller and a token hash, and one to four models", async () => {
    const call = (models: string, caller: string, token: string) =>
      sqlstate(db.sql, `select public.google_ai_reserve_models(${models}, 10, ${caller}, ${token}, null)`);
    expect(await call("array['gemma-3-27b']", "'c'", `'${"0".repeat(64)}'`)).toBe("22023");
    expect(await call("array['gemma-3-27b']", "null", "null")).toBe("22023");
    expect(await call("array[]::text[]", "'c'", "null")).toBe("22023");
    expect(await call("array['a', 'b', 'c', 'd', 'e']", "'c'", "null")).toBe("22023");
  });

  it("stores the holder's deadlines and id on the attempt row and the claim, from the parameters alone", async () => {
    const holder = crypto.randomUUID();
    const [{ r }] = await db.sql`select public.google_ai_reserve_models(p_models => array['gemma-3-27b'],
      p_estimated_tokens => 10, p_caller => 'holder', p_token_hash => null, p_request_id => 'entry-held',
      p_metadata => ${db.sql.json({ trace: "t1", $holder: { reply_by: "2000-01-01T00:00:00Z" } })}::jsonb,
      p_idempotent => true, p_reply_by => now() + interval '1 minute', p_hold_until => now() + interval '5 minutes',
      p_holder => ${holder}::uuid) as r`;
    expect(r.ok).toBe(true);
    const [row] = await db.sql`select metadata, reply_by > now() as replies_later,
                                      hold_until - reply_by = interval '4 minutes' as held_after, holder::text
                               from public.google_ai_attempts where reservation_id = ${r.reservation_id}`;
    // (The caller's metadata is stored as given: a key like the one the database once read the holder
    // from is the caller's own data, and no deadline: the row's are the parameters'.)
    expect(row).toEqual({ metadata: { trace: "t1", $holder: { reply_by: "2000-01-01T00:00:00Z" } }, replies_later: true,
      held_after: true, holder });
    const [claim] = await db.sql`select holder::text from public.google_ai_responses
                                 where caller = 'holder' and request_id = 'entry-held'`;
    expect(claim).toEqual({ holder });
  });

  it("is the functions' to call; its clock seam is the owner's", async () => {
    const [{ r }] = await gateway`select public.google_ai_reserve_models(p_models => array['gemma-3-27b'],
      p_estimated_tokens => 10, p_caller => 'gw', p_token_hash => null, p_request_id => null) as r`;
    expect(r.ok).toBe(true);
    expect(await sqlstate(gateway, `select public.google_ai_reserve_models_at(now(), null)`))
      .toBe("42501");
  });
});
