// Reservations that met in one worker, booked together (google_ai_reserve_calls: one transaction, one
// commit, one flush), under concurrency: 300 reservations at once in 42 batches of up to 8 of one caller,
// each batch on a gateway connection of its own (4 scoped tokens and two service callers, as llm-invoke batches them:
// store/pg-store.ts), half of the calls WAIT, for one model served by two quota groups (RPM 60 each).
// Demand is 2.5× the limit, so exactly 120 are admitted, 60 per group; no deadlock (40P01) or any
// other error: a call that would wait for a row another transaction holds while its batch holds an
// earlier call's counter row is answered {"alone": true}, and made again by itself, as the worker
// makes it. The counter rows equal the rows. And that answer, shown alone: a batch whose
// second call finds its only open group held elsewhere; a batch of two callers refused; a batch at the
// worker's bound within the subtransaction ids a backend keeps in shared memory; successes' finalizes riding
// with a batch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { countersAgainstRows } from "../support/counters-vs-rows.ts";
import { type ReserveCallAnswer, type ReserveCallArgs, reserveBatch, reserveCall, reserveCalls, reserveCallsRiding } from "../support/reserve-call.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reserveBatchFor } from "../../supabase/functions/llm-invoke/store/pg-store.ts";

const CONNECTIONS = 150;
const MODEL = "calls-burst";
const RPM = 60; // per quota group
const TOKENS = 4;
const BATCH = 8;

let db: TestDatabase;
let clients: Sql[] = [];
let tokenHashes: string[] = [];

beforeAll(async () => {
  db = await freshDatabase("reserve_calls_concurrency");
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority) values
    ('calls-a1', 'KEY_CALLS_A1', 'proj-calls-a', 1), ('calls-a2', 'KEY_CALLS_A2', 'proj-calls-a', 1),
    ('calls-b1', 'KEY_CALLS_B1', 'proj-calls-b', 1)`;
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${MODEL}, ${RPM}, null, 100000)`;
  for (let t = 0; t < TOKENS; t++) tokenHashes.push(sha256((await mintToken(db.sql, `calls-notebook-${t}`, { models: [MODEL] })).token));
  const gatewayUrl = await gatewayRoleUrl(db.url);
  clients = Array.from({ length: CONNECTIONS }, () => connect(gatewayUrl, { max: 1, idle_timeout: 0 }));
  for (let i = 0; i < clients.length; i += 25) await Promise.all(clients.slice(i, i + 25).map((c) => c`select 1`));
}, 180_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

type Outcome = { args: ReserveCallArgs; answer?: ReserveCallAnswer["o_reservation"]; error?: { code?: string; message: string } };

describe("300 reservations at once in 42 batches of one caller through google_ai_reserve_calls", () => {
  it("admits exactly each group's RPM: 4 tokens and two service callers, half of them WAIT, no error", async () => {
    const byCaller: ReserveCallArgs[][] = Array.from({ length: 6 }, () => []);
    for (let i = 0; i < 300; i++) {
      const kind = i % 6;
      byCaller[kind]!.push({ models: [MODEL], estimatedTokens: 10, requestId: `calls-${i}`,
        ...(kind < TOKENS ? { tokenHash: tokenHashes[kind] } : { caller: kind === 4 ? "bot" : "bot-wait" }),
        ...(Math.floor(i / 6) % 2 === 1 ? { waitLeftMs: 600_000 } : {}) });
    }
    const batches: ReserveCallArgs[][] = [];
    for (let k = 0; k < 50; k += BATCH) for (const calls of byCaller) batches.push(calls.slice(k, k + BATCH));
    expect(batches.filter((b) => b.length > 1).length).toBeGreaterThan(30);
    const outcomes: Outcome[] = (await Promise.all(batches.map(async (calls, i) => {
      try {
        return (await reserveBatch(clients[i % clients.length]!, calls)).map((a, j) => ({ args: calls[j]!, answer: a.o_reservation }));
      } catch (e) {
        return calls.map((args) => ({ args, error: { code: (e as { code?: string }).code, message: (e as Error).message } }));
      }
    }))).flat();
    expect(outcomes).toHaveLength(300);
    expect(outcomes.filter((o) => o.error).map((o) => o.error)).toEqual([]); // no 40P01, nor anything else
    const admitted = outcomes.filter((o) => o.answer!.ok);
    const byGroup: Record<string, number> = {};
    for (const o of admitted) byGroup[o.answer!.quota_group!] = (byGroup[o.answer!.quota_group!] ?? 0) + 1;
    expect(byGroup).toEqual({ "proj-calls-a": RPM, "proj-calls-b": RPM });
    const refused = outcomes.filter((o) => !o.answer!.ok);
    expect(new Set(refused.map((o) => o.answer!.limit))).toEqual(new Set(["rpm"]));
    for (const o of refused) expect(o.answer!.queue?.ticket !== undefined).toBe(!!o.args.waitLeftMs);
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where model = ${MODEL} and status = 'reserved'`;
    expect(n).toBe(2 * RPM);
    const [{ tickets }] = await db.sql<{ tickets: number }[]>`
      select count(*)::int as tickets from public.google_ai_queue where model = ${MODEL}`;
    expect(tickets).toBe(refused.filter((o) => o.args.waitLeftMs).length);
    const counters = await countersAgainstRows(db.sql, [MODEL]);
    expect(counters.map((c) => c.counted)).toEqual(counters.map((c) => c.logged));
    expect(counters.map((c) => c.counted.window)).toEqual([RPM, RPM]);
  }, 120_000);
});

describe("a call of a batch that would wait for a row held elsewhere", () => {
  it("a counter row: is answered {alone: true}, undone, and booked when made again by itself", async () => {
    const model = "calls-alone";
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${model}, 1, null, 100000)`;
    await db.sql`insert into public.google_ai_usage_counters (quota_group, model, rpm_used, tpm_used, rpd_used)
                 values ('proj-calls-a', ${model}, 0, 0, 0), ('proj-calls-b', ${model}, 0, 0, 0)`;
    const calls: ReserveCallArgs[] = [1, 2].map((i) => ({ models: [model], estimatedTokens: 5, caller: "bot", requestId: `alone-${i}` }));
    const holder = connect(db.url, { max: 1 });
    try {
      let answers: Awaited<ReturnType<typeof reserveCalls>> = [];
      await holder.begin(async (h) => {
        // Group b's counter row, held by another transaction: the first call books a (b passed over);
        // the second finds a full and would wait for b while its batch holds a.
        await h`select 1 from public.google_ai_usage_counters where quota_group = 'proj-calls-b' and model = ${model} for update`;
        answers = await reserveCalls(clients[0]!, calls);
      });
      const first = answers[0] as ReserveCallAnswer;
      expect(first.o_reservation).toMatchObject({ ok: true, quota_group: "proj-calls-a" });
      expect(answers[1]).toEqual({ alone: true });
      const rows = await db.sql`select request_id from public.google_ai_attempts where model = ${model}`;
      expect(rows.map((r) => r.request_id)).toEqual(["alone-1"]); // the second call left nothing
      const again = await reserveCall(clients[0]!, calls[1]!);
      expect(again.o_reservation).toMatchObject({ ok: true, quota_group: "proj-calls-b" });
      const counters = await countersAgainstRows(db.sql, [model]);
      expect(counters.map((c) => c.counted)).toEqual(counters.map((c) => c.logged));
    } finally {
      await holder.end();
    }
  });
});

describe("successes' finalizes riding with a batch (p_finalizes: store/riders.ts)", () => {
  it("are written in the batch's commit, after its bookings; ones that fail are undone together, the bookings kept", async () => {
    const model = "calls-riding";
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${model}, 100000, 1000000, 100000)`;
    const call = (i: number): ReserveCallArgs => ({ models: [model], estimatedTokens: 50, caller: "bot", requestId: `riding-${i}` });
    const earlier = await Promise.all([1, 2, 3].map(async (i) => (await reserveCall(clients[0]!, call(i))).o_reservation));
    const success = (id: string) => ({ reservation_id: id, kind: "succeeded" as const, input_tokens: 20, output_tokens: 7,
      http_status: 200 as const, latency_ms: 9 });
    const ride = await reserveCallsRiding(clients[0]!, [call(4), call(5)], earlier.slice(0, 2).map((r) => success(r.reservation_id!)));
    expect(ride.answers.map((a) => "o_reservation" in a && a.o_reservation.ok)).toEqual([true, true]);
    expect(ride.finalized).toMatchObject([{ ok: true }, { ok: true }]);
    // One bad outcome among them: the finalizes are undone together (the answer names the SQLSTATE), the bookings stand.
    const bad = { ...success(earlier[2]!.reservation_id!), kind: "nonsense" as unknown as "succeeded" };
    const failed = await reserveCallsRiding(clients[0]!, [call(6)], [bad]);
    expect(failed.finalized).toEqual({ error: "22023" });
    expect("o_reservation" in failed.answers[0]! && failed.answers[0].o_reservation.ok).toBe(true);
    const rows = await db.sql<{ request_id: string; status: string; input_tokens: number | null }[]>`
      select request_id, status, input_tokens from public.google_ai_attempts where model = ${model} order by request_id`;
    expect(rows.map((r) => [r.request_id, r.status, r.input_tokens])).toEqual([
      ["riding-1", "succeeded", 20], ["riding-2", "succeeded", 20], ["riding-3", "reserved", null],
      ["riding-4", "reserved", null], ["riding-5", "reserved", null], ["riding-6", "reserved", null],
    ]);
    const counters = await countersAgainstRows(db.sql, [model]);
    expect(counters.map((c) => c.counted)).toEqual(counters.map((c) => c.logged));
  });
});

describe("a call of a batch whose request's claim another transaction holds", () => {
  it("is answered {alone: true} (an advisory lock is only tried), the first call booked", async () => {
    const model = "calls-claim";
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${model}, 100000, null, 100000)`;
    const calls: ReserveCallArgs[] = [1, 2].map((i) => ({ models: [model], estimatedTokens: 5, caller: "bot", requestId: `claim-${i}` }));
    const holder = connect(db.url, { max: 1 });
    try {
      let answers: Awaited<ReturnType<typeof reserveCalls>> = [];
      await holder.begin(async (h) => {
        // The lock a duplicate of claim-2 in flight holds (google_ai_idempotent_answer, 55_claims.sql).
        await h`select pg_advisory_xact_lock(hashtextextended('bot/claim-2', 0))`;
        answers = await reserveCalls(clients[0]!, calls.map((c) => ({ ...c, idempotent: true })));
      });
      expect((answers[0] as ReserveCallAnswer).o_reservation).toMatchObject({ ok: true });
      expect(answers[1]).toEqual({ alone: true });
      const rows = await db.sql`select request_id from public.google_ai_attempts where model = ${model}`;
      expect(rows.map((r) => r.request_id)).toEqual(["claim-1"]);
    } finally {
      await holder.end();
    }
  });
});

describe("a batch's calls", () => {
  it("must share one caller: 22023 otherwise, nothing booked", async () => {
    const calls: ReserveCallArgs[] = [
      { models: [MODEL], estimatedTokens: 1, caller: "bot", requestId: "mixed-1" },
      { models: [MODEL], estimatedTokens: 1, tokenHash: tokenHashes[0], requestId: "mixed-2" },
    ];
    await expect(reserveCalls(clients[0]!, calls)).rejects.toMatchObject({ code: "22023" });
    const rows = await db.sql`select 1 from public.google_ai_attempts where request_id like 'mixed-%'`;
    expect(rows).toHaveLength(0);
  });
});

describe("a batch at the worker's bound (reserveBatchFor)", () => {
  it("keeps its subtransaction ids within the 64 a backend lists in shared memory, for chains of 1 to 4 models, finalizes riding", async () => {
    // The most a chain does: every model but the last passed over (its day closed) and logged, the last booked.
    const closed = ["calls-closed-1", "calls-closed-2", "calls-closed-3"];
    for (const m of closed) {
      await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${m}, 100000, null, 0)`;
    }
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('calls-wide', 100000, null, 1000000)`;
    const seen: Record<string, { count: number; overflowed: boolean }> = {};
    for (let models = 1; models <= 4; models++) {
      const chain = [...closed.slice(0, models - 1), "calls-wide"];
      const n = reserveBatchFor(models);
      const calls = Array.from({ length: n }, (_, i) => ({
        models: chain, estimated_tokens: 5, caller: "bot", request_id: `bound-${models}-${i}`, idempotent: true,
      }));
      seen[`${models} models, ${n} calls`] = await db.sql.begin(async (t) => {
        const [{ a }] = await t<{ a: { ok: boolean; reservation_id: string }[] }[]>`
          select public.google_ai_reserve_many(${JSON.stringify(calls)}::text::jsonb) as a`;
        expect(a.filter((x) => x.ok)).toHaveLength(n);
        // A finalize riding after them, as google_ai_reserve_calls writes it: one subtransaction more.
        const riding = [{ reservation_id: a[0]!.reservation_id,
          outcome: { kind: "succeeded", input_tokens: 5, output_tokens: 1, http_status: 200, latency_ms: 3 } }];
        const [{ f }] = await t<{ f: { ok: boolean }[] }[]>`
          select public.google_ai_finalize_riding(${JSON.stringify(riding)}::text::jsonb) as f`;
        expect(f.map((x) => x.ok)).toEqual([true]);
        await t`select pg_stat_clear_snapshot()`;
        const [s] = await t<{ count: number; overflowed: boolean }[]>`
          select x.subxact_count as count, x.subxact_overflowed as overflowed
          from pg_stat_get_backend_idset() b, pg_stat_get_backend_subxact(b) x where pg_stat_get_backend_pid(b) = pg_backend_pid()`;
        return s!;
      });
    }
    for (const [what, s] of Object.entries(seen)) {
      expect(s.overflowed, what).toBe(false);
      expect(s.count, what).toBeLessThanOrEqual(64);
    }
    console.log(`subtransaction ids at the bound: ${JSON.stringify(seen)}`);
  });
});
