// The model life cycle in the database: Google's 404 for a model finalized as an outcome of kind
// withdrawn (google_ai_finalize: the attempt 'withdrawn', the capacity given back, the row marked —
// exactly once, also when callers race), every reservation entry refusing a marked model without
// booking (service key and token, one model and a chain, the fast booking and the general one), a
// chain passing over it, an alias repointed by one UPDATE, and the maintenance review that reports
// the life cycle and brings a listed model back.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
let tokenHash: string;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const GOOGLE_404 = "models/lc-old is not found for API version v1beta, or is not supported for generateContent. " +
  "Call ListModels to see the list of available models and their supported methods.";

beforeAll(async () => {
  db = await freshDatabase("model_lifecycle");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
               values ('l1', 'KEY_L1', 'proj-l', 1)`;
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, aliases, successor)
               values ('lc-old', 100, 100000, 1000, '{lc-name}', 'lc-new'),
                      ('lc-new', 100, 100000, 1000, '{}', null),
                      ('lc-shared', 100, 100000, 1000, '{}', 'lc-new')`;
  const [{ c }] = await db.sql`select public.google_ai_create_client('lc-bot', '{lc-old,lc-new,lc-shared}'::text[]) as c`;
  tokenHash = sha256("lc-token");
  const [{ m }] = await db.sql`select public.google_ai_mint_token(${sha256(c.secret)}, ${tokenHash}) as m`;
  expect(m.ok ?? true).toBe(true);
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function reserve(model: string, requestId: string) {
  const [{ r }] = await db.sql`select public.google_ai_reserve_models(p_models => array[${model}], p_estimated_tokens => 10,
    p_caller => 'lc', p_request_id => ${requestId}) as r`;
  return r;
}

async function withdraw(reservationId: string, message = GOOGLE_404, successor: string | null = null) {
  const [{ r }] = await db.sql`select public.google_ai_finalize(${reservationId}::uuid, jsonb_build_object(
    'kind', 'withdrawn', 'http_status', 404, 'error_code', 'NOT_FOUND', 'error_message', ${message}::text,
    'latency_ms', 12, 'successor', ${successor}::text)) as r`;
  return r;
}

async function booked(model: string) {
  const [row] = await db.sql<{ admissions: number; rpm_used: number; rpd_used: number }[]>`
    select (select count(*)::int from public.google_ai_attempts a where a.model = ${model} and a.admitted_at is not null and a.status not in ('released', 'withdrawn')) as admissions,
           coalesce(sum(c.rpm_used), 0)::int as rpm_used, coalesce(sum(c.rpd_used), 0)::int as rpd_used
    from public.google_ai_usage_counters c where c.model = ${model}`;
  return row!;
}

async function row(model: string) {
  const [r] = await db.sql`select withdrawn_at, withdrawn_message from public.google_ai_model_limits where model = ${model}`;
  return r!;
}

describe("google_ai_finalize, an outcome of kind withdrawn", () => {
  it("gives the capacity back, leaves a 'withdrawn' attempt with Google's message, marks the row, once", async () => {
    const before = await booked("lc-old");
    const r = await reserve("lc-name", "wd-1");
    expect(r).toMatchObject({ ok: true, model: "lc-old" });
    expect((await booked("lc-old")).rpd_used).toBe(before.rpd_used + 1);

    expect(await withdraw(r.reservation_id)).toMatchObject({ ok: true, status: "withdrawn", model: "lc-old",
      marked: true, successor: "lc-new" });
    expect(await booked("lc-old")).toEqual(before);
    const [attempt] = await db.sql`select status, http_status, error_code, error_message, latency_ms
      from public.google_ai_attempts where reservation_id = ${r.reservation_id}::uuid`;
    expect(attempt).toEqual({ status: "withdrawn", http_status: 404, error_code: "NOT_FOUND",
      error_message: GOOGLE_404, latency_ms: 12 });
    const marked = await row("lc-old");
    expect(marked.withdrawn_at).toBeInstanceOf(Date);
    expect(marked.withdrawn_message).toBe(GOOGLE_404);

    // Again: nothing changes (the reservation is no longer open; the row keeps its first mark).
    expect((await withdraw(r.reservation_id, "other")).ok).toBe(false);
    expect(await row("lc-old")).toEqual(marked);
    expect(await booked("lc-old")).toEqual(before);
  });

  it("racing finalizers: one reservation is finalized once; two reservations mark the row once", async () => {
    const a = await reserve("lc-shared", "race-a");
    const b = await reserve("lc-shared", "race-b");
    const results = await Promise.all([
      withdraw(a.reservation_id, "first"), withdraw(a.reservation_id, "first"),
      withdraw(b.reservation_id, "second"), withdraw(b.reservation_id, "second"),
    ]);
    expect(results.filter((x) => x.ok).length).toBe(2);
    expect(results.filter((x) => x.marked === true).length).toBe(1);
    expect((await booked("lc-shared")).admissions).toBe(0);
    const statuses = await db.sql`select status from public.google_ai_attempts
      where request_id in ('race-a', 'race-b') order by request_id`;
    expect(statuses.map((s) => s.status)).toEqual(["withdrawn", "withdrawn"]);
    expect(["first", "second"]).toContain((await row("lc-shared")).withdrawn_message);
  });
});

describe("the reservation entry refuses a withdrawn model without booking", () => {
  const entries: Array<[string, (model: string, id: string) => Promise<any>]> = [
    ["a service caller", (m, id) => reserve(m, id)],
    ["the clock seam", async (m, id) =>
      (await db.sql`select public.google_ai_reserve_models_at(now(), jsonb_populate_record(
        null::public.google_ai_reservation, ${reservation({ models: [m], estimated_tokens: 10, caller: "lc",
          request_id: id })}::text::jsonb)) as r`)[0]!.r],
    ["a scoped token", async (m, id) =>
      (await db.sql`select public.google_ai_reserve_models(p_token_hash => ${tokenHash}, p_models => array[${m}],
        p_estimated_tokens => 10, p_request_id => ${id}) as r`)[0]!.r],
  ];

  // The fast booking needs a counter row of today and nothing but the limits in the way (lc-old has
  // one from the test above); a share kept for a class sends the same request to the general booking.
  for (const path of ["fast", "general"] as const) {
    for (const [name, call] of entries) {
      it(`${name} (${path} booking)`, async () => {
        if (path === "general") {
          await db.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm)
                       select 'lc-old', 'batch', 1 where not exists
                         (select 1 from public.google_ai_quota_shares where model = 'lc-old')`;
        } else {
          await db.sql`delete from public.google_ai_quota_shares where model = 'lc-old'`;
        }
        const before = await booked("lc-old");
        const id = `entry-${name.replaceAll(" ", "-")}-${path}`;
        for (const asked of ["lc-old", "lc-name"]) {
          const r = await call(asked, `${id}-${asked}`);
          expect(r).toMatchObject({ ok: false, limit: "withdrawn", successor: "lc-new" });
          expect(r.withdrawn_at).toBeTruthy();
        }
        expect(await booked("lc-old")).toEqual(before);
        const refused = await db.sql`select status, limit_hit from public.google_ai_attempts where request_id like ${id + "%"}`;
        expect(refused).toEqual([{ status: "refused", limit_hit: "withdrawn" }, { status: "refused", limit_hit: "withdrawn" }]);
      });
    }
  }

  it("a chain passes over it to its next model, with the token too", async () => {
    await db.sql`delete from public.google_ai_quota_shares where model = 'lc-old'`;
    const [{ r }] = await db.sql`select public.google_ai_reserve_models(p_models => array['lc-name', 'lc-new'],
      p_estimated_tokens => 10, p_caller => 'lc', p_request_id => 'chain-1') as r`;
    expect(r).toMatchObject({ ok: true, model: "lc-new", requested_model: "lc-old",
      fallback_from: [{ model: "lc-old", limit: "withdrawn" }] });
    const [{ t }] = await db.sql`select public.google_ai_reserve_models(p_token_hash => ${tokenHash},
      p_models => array['lc-old', 'lc-new'], p_estimated_tokens => 10, p_request_id => 'chain-2') as t`;
    expect(t).toMatchObject({ ok: true, model: "lc-new", fallback_from: [{ model: "lc-old", limit: "withdrawn" }] });
    const [{ w }] = await db.sql`select public.google_ai_reserve_models(p_models => array['lc-old', 'lc-shared'],
      p_estimated_tokens => 10, p_caller => 'lc', p_request_id => 'chain-3') as w`;
    expect(w).toMatchObject({ ok: false, limit: "withdrawn", model: "lc-old" });
  });
});

describe("aliases and the life cycle", () => {
  it("an alias is repointed by one UPDATE: the row that gains it takes it", async () => {
    await db.sql`update public.google_ai_model_limits set aliases = aliases || '{lc-name}' where model = 'lc-new'`;
    const aliases = await db.sql`select model, aliases from public.google_ai_model_limits
      where model in ('lc-old', 'lc-new') order by model`;
    expect(aliases).toEqual([{ model: "lc-new", aliases: ["lc-name"] }, { model: "lc-old", aliases: [] }]);
    expect(await reserve("lc-name", "repointed")).toMatchObject({ ok: true, model: "lc-new" });
  });

  it("the operator repoints as service_role too (the trigger needs no grant of its own)", async () => {
    await db.sql`insert into public.google_ai_model_limits (model, rpm, aliases) values ('lc-a', 1, '{lc-op}'), ('lc-b', 1, '{}')`;
    await db.sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`update public.google_ai_model_limits set aliases = aliases || '{lc-op}' where model = 'lc-b'`;
    });
    const rows = await db.sql`select model, aliases from public.google_ai_model_limits where model in ('lc-a', 'lc-b') order by model`;
    expect(rows).toEqual([{ model: "lc-a", aliases: [] }, { model: "lc-b", aliases: ["lc-op"] }]);
    await db.sql`delete from public.google_ai_model_limits where model in ('lc-a', 'lc-b')`;
  });

  it("keeps the replacement the provider's dialect read from its answer as its suggestion, never the model itself", async () => {
    const suggested = async (model: string, message: string, named: string | null) => {
      await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${model}, 100, 100000, 1000)
                   on conflict (model) do update set withdrawn_at = null, withdrawn_message = null, google_successor = null`;
      await db.sql`update public.google_ai_api_keys set models = null`;
      const r = await reserve(model, `wd-${model}-${message.length}`);
      expect(r.ok).toBe(true);
      await withdraw(r.reservation_id, message, named);
      const [{ s, successor }] = await db.sql`select google_successor as s, successor from public.google_ai_model_limits
                                               where model = ${model}`;
      expect(successor).toBeNull(); // the operator's column: never written by the gateway
      return s as string | null;
    };
    // (Which model a message names is the dialect's reading: google/model-not-found.test.ts.)
    expect(await suggested("lc-gone-1", "models/lc-gone-1 is no longer available.", "gemini-3.8-flash"))
      .toBe("gemini-3.8-flash");
    expect(await suggested("lc-gone-2", "Model is not found: models/lc-gone-2", null)).toBeNull();
    expect(await suggested("lc-word-0", "no longer served", "LC-WORD-0")).toBeNull();
    // The review below sees only this file's three models.
    await db.sql`delete from public.google_ai_model_limits where model like 'lc-gone-%' or model like 'lc-word-%'`;
  });

  it("the view shows a withdrawn model with its mark and successor", async () => {
    await db.sql`update public.google_ai_model_limits set shutdown_date = current_date + 3 where model = 'lc-new'`;
    // Read as the operator reads it (service_role; a security-invoker view over its tables).
    const rows = await db.sql.begin(async (tx) => {
      await tx`set local role service_role`;
      return tx`select model, state, withdrawn_message, successor, days_to_shutdown
        from public.google_ai_model_lifecycle where model in ('lc-new', 'lc-old', 'lc-shared') order by model`;
    });
    expect(rows).toEqual([
      { model: "lc-new", state: "shutting_down", withdrawn_message: null, successor: null, days_to_shutdown: 3 },
      { model: "lc-old", state: "withdrawn", withdrawn_message: GOOGLE_404, successor: "lc-new", days_to_shutdown: null },
      { model: "lc-shared", state: "withdrawn", withdrawn_message: expect.any(String), successor: "lc-new",
        days_to_shutdown: null },
    ]);
  });

  it("the maintenance review reports missing, withdrawn, shutting-down and unserved models, and brings a listed one back", async () => {
    const [key] = await db.sql`select id from public.google_ai_api_keys where key_alias = 'l1'`;
    const check = (models: string[]) => db.sql`select public.google_ai_record_key_check(p_key_id => ${key!.id}::uuid,
      p_status => 'ok', p_models => ${db.sql.json(models.map((model) => ({ model })))}::jsonb) as r`;
    await check(["lc-new", "lc-google-only"]);
    const [{ r }] = await db.sql`select public.google_ai_model_lifecycle_review() as r`;
    expect(r.checked).toBe(true);
    expect(r.restored).toEqual([]);
    expect(r.withdrawn.map((w: { model: string }) => w.model)).toEqual(["lc-old", "lc-shared"]);
    expect(r.withdrawn[0]).toMatchObject({ model: "lc-old", message: GOOGLE_404, successor: "lc-new" });
    expect(r.missing).toEqual(expect.arrayContaining(["lc-old", "lc-shared"]));
    expect(r.missing).not.toContain("lc-new");
    expect(r.shutting_down).toEqual(expect.arrayContaining([{ model: "lc-new", shutdown_date: expect.any(String),
      days_left: 3, successor: null }]));
    expect(r.unserved).toEqual(["lc-google-only"]);

    // Google lists lc-old again: the next review brings it back, and it is booked again.
    await check(["lc-new", "lc-old"]);
    const [{ again }] = await db.sql`select public.google_ai_model_lifecycle_review() as again`;
    expect(again.restored).toEqual(["lc-old"]);
    expect(await row("lc-old")).toEqual({ withdrawn_at: null, withdrawn_message: null });
    expect(await reserve("lc-old", "back")).toMatchObject({ ok: true, model: "lc-old" });
    await db.sql`delete from public.google_ai_key_health`;
  });
});
