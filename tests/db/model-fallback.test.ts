// Model fallback in the database, with the clock injected (google_ai_reserve_models_at's p_now): the
// chain tries the next model when the first cannot serve within the caller's wait, queues on the
// first when its turn comes within the wait, keeps a ticket's model, passes over retired models,
// keeps a token to its models, and records one refused row per model passed over. Under 300 callers
// on 200 connections, chains in opposite orders neither deadlock nor admit more than each limit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";
import { reserveCalls, type ReserveCallAnswer } from "../support/reserve-call.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");

beforeAll(async () => {
  db = await freshDatabase("model_fallback");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
               values ('f1', 'KEY_F1', 'proj-f', 1)`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Step {
  model: string;
  limit: string;
  retry_after_ms: number | null;
}

interface Answer {
  ok: boolean;
  model?: string;
  limit?: string;
  retry_after_ms?: number | null;
  reservation_id?: string;
  requested_model: string;
  fallback_from: Step[];
  queue?: { ticket: string; expected_at: string };
}

interface Ask {
  at: number;
  models: string[];
  caller?: string;
  requestId?: string;
  /** How much longer the caller would wait (ms); 0: NO_WAIT. */
  waitLeftMs?: number;
  ticket?: string | null;
  tokenHash?: string;
  sql?: Sql;
}

async function chain(a: Ask): Promise<Answer> {
  const sql = a.sql ?? db.sql;
  const [row] = await sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${new Date(a.at).toISOString()}::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: a.models, estimated_tokens: 10,
      caller: a.tokenHash === undefined ? a.caller ?? "bot" : null, token_hash: a.tokenHash ?? null,
      request_id: a.requestId ?? null, queue_ticket: a.ticket ?? null, wait_left_ms: a.waitLeftMs ?? 0 })}::text::jsonb)) as r`;
  return row!.r;
}

async function model(name: string, limits: { rpm?: number | null; rpd?: number | null }) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
               values (${name}, ${limits.rpm ?? null}, null, ${limits.rpd ?? null})`;
}

/** Books `n` requests of `name` at `at`, for a caller nobody queues behind. */
async function fill(name: string, n: number, at: number) {
  for (let i = 0; i < n; i++) expect((await chain({ at, models: [name], caller: "earlier" })).ok).toBe(true);
}

async function rows(requestId: string) {
  return db.sql<{ status: string; model: string; requested_model: string; limit_hit: string | null }[]>`
    select status, model, requested_model, limit_hit from public.google_ai_attempts
    where request_id = ${requestId} order by id`;
}

describe("a chain of models", () => {
  it("serves the next model when the first's day is used up; the rows name the model that served and why", async () => {
    await model("day-a", { rpm: 10, rpd: 1 });
    await model("day-b", { rpm: 10 });
    await fill("day-a", 1, T0);
    const a = await chain({ at: T0 + 1000, models: ["day-a", "day-b"], requestId: "day-1" });
    expect(a).toMatchObject({ ok: true, model: "day-b", requested_model: "day-a" });
    expect(a.fallback_from).toEqual([{ model: "day-a", limit: "rpd", cause: "day_exhausted", retry_after_ms: expect.any(Number) }]);
    expect(await rows("day-1")).toEqual([
      { status: "refused", model: "day-a", requested_model: "day-a", limit_hit: "rpd" },
      { status: "reserved", model: "day-b", requested_model: "day-a", limit_hit: null },
    ]);
    // The first model, when it can serve, serves: no fallback, nothing passed over.
    const b = await chain({ at: T0 + 1000, models: ["day-b", "day-a"], requestId: "day-2" });
    expect(b).toMatchObject({ ok: true, model: "day-b", requested_model: "day-b", fallback_from: [] });
    expect(await rows("day-2")).toEqual([{ status: "reserved", model: "day-b", requested_model: "day-b", limit_hit: null }]);
  });

  it("reads the chain past its first model only once the first is passed over", async () => {
    await model("lazy-a", { rpm: 1 });
    await model("lazy-b", { rpm: 10 });
    // The model rows read by the chain (google_ai_model_by_name), counted within one transaction.
    const rowsRead = (at: number, requestId: string) => db.sql.begin(async (tx) => {
      await tx`set local track_functions = 'all'`;
      const before = await tx<{ n: number }[]>`select coalesce(pg_stat_get_xact_function_calls(
        'public.google_ai_model_by_name'::regproc), 0)::int as n`;
      const answer = await chain({ at, models: ["lazy-a", "lazy-b"], requestId, sql: tx as unknown as Sql });
      const after = await tx<{ n: number }[]>`select coalesce(pg_stat_get_xact_function_calls(
        'public.google_ai_model_by_name'::regproc), 0)::int as n`;
      return { answer, read: after[0]!.n - before[0]!.n };
    });
    const served = await rowsRead(T0, "lazy-1");
    expect(served.answer).toMatchObject({ ok: true, model: "lazy-a", fallback_from: [] });
    expect(served.read).toBe(1);
    const passedOver = await rowsRead(T0 + 1000, "lazy-2");
    expect(passedOver.answer).toMatchObject({ ok: true, model: "lazy-b", requested_model: "lazy-a" });
    expect(passedOver.answer.fallback_from).toEqual([expect.objectContaining({ model: "lazy-a", limit: "rpm" })]);
    expect(passedOver.read).toBe(3); // the first model's row, then the whole chain's two
    expect(await rows("lazy-2")).toEqual([
      { status: "refused", model: "lazy-a", requested_model: "lazy-a", limit_hit: "rpm" },
      { status: "reserved", model: "lazy-b", requested_model: "lazy-a", limit_hit: null },
    ]);
  });

  it("is read once for the reservations of a batch that name it (google_ai_reserve_calls), each answered as alone", async () => {
    await model("once-a", { rpm: 3 });
    await model("once-b", { rpm: 10 });
    const sql = connect(db.url, { max: 1 });
    try {
      await sql`set track_functions = 'all'`;
      // The chain's reads (google_ai_fallback_chain) so far: the session's counts, flushed first.
      const chainReads = async () => {
        await sql`select pg_stat_force_next_flush()`;
        const [{ n }] = await sql<{ n: number }[]>`select coalesce((select calls from pg_stat_user_functions
          where funcname = 'google_ai_fallback_chain'), 0)::int as n`;
        return n;
      };
      const before = await chainReads();
      const answers = await reserveCalls(sql, [1, 2, 3, 4].map((n) => ({
        models: ["once-a", "once-b"], estimatedTokens: 10, caller: "batch-once", requestId: `once-${n}`,
      })));
      const reads = (await chainReads()) - before;
      expect(answers.map((a) => (a as ReserveCallAnswer).o_reservation)).toEqual([
        ...[1, 2, 3].map(() => expect.objectContaining({ ok: true, model: "once-a", fallback_from: [] })),
        expect.objectContaining({ ok: true, model: "once-b", requested_model: "once-a",
          fallback_from: [expect.objectContaining({ model: "once-a", limit: "rpm" })] }),
      ]);
      // Once for the four, and the whole chain once more for the one whose first model was passed over.
      expect(reads).toBe(2);
    } finally {
      await sql.end();
    }
  });

  it("NO_WAIT falls back at once; WAIT queues on the first when its turn comes within the wait, else falls back", async () => {
    await model("win-a", { rpm: 1 });
    await model("win-b", { rpm: 5 });
    await fill("win-a", 1, T0);
    const noWait = await chain({ at: T0 + 1000, models: ["win-a", "win-b"], requestId: "win-1" });
    expect(noWait).toMatchObject({ ok: true, model: "win-b", fallback_from: [{ model: "win-a", limit: "rpm" }] });

    // Its turn on win-a comes when the window's admission leaves it (61 s): within a 70 s wait.
    const waits = await chain({ at: T0 + 2000, models: ["win-a", "win-b"], requestId: "win-2", waitLeftMs: 70_000 });
    expect(waits).toMatchObject({ ok: false, model: "win-a", requested_model: "win-a", fallback_from: [] });
    expect(Date.parse(waits.queue!.expected_at)).toBe(T0 + 61_000);
    expect(await rows("win-2")).toEqual([]); // a queued request writes no row until it is served
    const served = await chain({ at: T0 + 61_000, models: ["win-a", "win-b"], requestId: "win-2", waitLeftMs: 11_000,
      ticket: waits.queue!.ticket });
    expect(served).toMatchObject({ ok: true, model: "win-a", fallback_from: [] });

    // A wait of 5 s does not reach that turn: the same call falls back instead of queueing.
    const impatient = await chain({ at: T0 + 62_000, models: ["win-a", "win-b"], requestId: "win-3", waitLeftMs: 5_000 });
    expect(impatient).toMatchObject({ ok: true, model: "win-b", fallback_from: [{ model: "win-a", limit: "rpm" }] });
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue`;
    expect(n).toBe(0);
  });

  it("a request queued on a fallback keeps its ticket's model: the next call does not ask the first again", async () => {
    await model("tk-a", { rpm: 10, rpd: 1 });
    await model("tk-b", { rpm: 1 });
    await fill("tk-a", 1, T0);
    await fill("tk-b", 1, T0);
    const queued = await chain({ at: T0 + 1000, models: ["tk-a", "tk-b"], requestId: "tk-1", waitLeftMs: 70_000 });
    expect(queued).toMatchObject({ ok: false, model: "tk-b", requested_model: "tk-a", fallback_from: [{ model: "tk-a", limit: "rpd" }] });
    const [ticket] = await db.sql`select model, requested_model from public.google_ai_queue where ticket_id = ${queued.queue!.ticket}`;
    expect(ticket).toEqual({ model: "tk-b", requested_model: "tk-a" });
    const served = await chain({ at: Date.parse(queued.queue!.expected_at), models: ["tk-a", "tk-b"], requestId: "tk-1",
      waitLeftMs: 10_000, ticket: queued.queue!.ticket });
    expect(served).toMatchObject({ ok: true, model: "tk-b", fallback_from: [] });
    expect(await rows("tk-1")).toEqual([
      { status: "refused", model: "tk-a", requested_model: "tk-a", limit_hit: "rpd" },
      { status: "reserved", model: "tk-b", requested_model: "tk-a", limit_hit: null },
    ]);
  });

  it("gives a ticket up when its model can no longer serve within the wait, and falls back in the same call", async () => {
    await model("tq-a", { rpm: 1 });
    await model("tq-b", { rpm: 10 });
    await fill("tq-a", 1, T0);
    const queued = await chain({ at: T0 + 1000, models: ["tq-a", "tq-b"], requestId: "tq-1", waitLeftMs: 70_000 });
    expect(queued).toMatchObject({ ok: false, model: "tq-a" });
    // Google cools tq-a down for hours before the turn comes.
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
                 values ('proj-f', 'tq-a', ${new Date(T0 + 10 * 3600_000).toISOString()}::timestamptz, 'test')`;
    const served = await chain({ at: Date.parse(queued.queue!.expected_at), models: ["tq-a", "tq-b"], requestId: "tq-1",
      waitLeftMs: 9_000, ticket: queued.queue!.ticket });
    expect(served).toMatchObject({ ok: true, model: "tq-b", fallback_from: [{ model: "tq-a", limit: "cooldown" }] });
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue where request_id = 'tq-1'`;
    expect(n).toBe(0);
  });

  it("answers with the refusal that lifts first when every model refuses, and names every model tried", async () => {
    await model("all-a", { rpm: 10, rpd: 1 });
    await model("all-b", { rpm: 1 });
    await fill("all-a", 1, T0);
    await fill("all-b", 1, T0);
    const a = await chain({ at: T0 + 1000, models: ["all-a", "all-b"], requestId: "all-1" });
    expect(a).toMatchObject({ ok: false, limit: "rpm", model: "all-b", retry_after_ms: 60_000 });
    expect(a.fallback_from.map((s) => [s.model, s.limit])).toEqual([["all-a", "rpd"], ["all-b", "rpm"]]);
    expect((await rows("all-1")).map((r) => [r.model, r.limit_hit])).toEqual([["all-a", "rpd"], ["all-b", "rpm"]]);
  });

  it("keeps a token to its models: no fallback outside its scope, its budget booked once", async () => {
    await model("sc-a", { rpm: 10, rpd: 1 });
    await model("sc-b", { rpm: 10 });
    await fill("sc-a", 1, T0);
    const mint = async (name: string, models: string[]) => {
      const { token, tokenId } = await mintToken(db.sql, name, { models });
      return { hash: sha256(token), tokenId };
    };
    const narrow = await mint("sc-narrow", ["sc-a"]);
    const refused = await chain({ at: T0 + 1000, models: ["sc-a", "sc-b"], tokenHash: narrow.hash, requestId: "sc-1" });
    expect(refused).toMatchObject({ ok: false, limit: "rpd", model: "sc-a", fallback_from: [{ model: "sc-a", limit: "rpd" }] });
    expect((await rows("sc-1")).map((r) => [r.model, r.limit_hit])).toEqual([["sc-a", "rpd"]]);

    const wide = await mint("sc-wide", ["sc-a", "sc-b"]);
    const served = await chain({ at: T0 + 1000, models: ["sc-a", "sc-b"], tokenHash: wide.hash, requestId: "sc-2" });
    expect(served).toMatchObject({ ok: true, model: "sc-b", fallback_from: [{ model: "sc-a", limit: "rpd" }] });
    const [tok] = await db.sql`select requests_used from public.google_ai_tokens where id = ${wide.tokenId}`;
    expect(tok).toEqual({ requests_used: 1 });
    const [row] = await db.sql`select caller, token_id from public.google_ai_attempts where request_id = 'sc-2' and status = 'refused'`;
    expect(row).toEqual({ caller: "client:sc-wide", token_id: wide.tokenId });
  });
});

describe("opposite chains under 200 connections", () => {
  const CONNECTIONS = 200;
  let clients: Sql[] = [];
  beforeAll(async () => {
    clients = Array.from({ length: CONNECTIONS }, () => connect(db.url, { max: 1, idle_timeout: 0 }));
    await Promise.all(clients.map((c) => c`select 1`));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  });

  it("never deadlock and admit exactly each model's limit, WAIT callers whose turns lie beyond their wait included", async () => {
    await model("cc-x", { rpm: 30 });
    await model("cc-y", { rpm: 30 });
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) =>
      chain({
        at: T0,
        models: i % 2 === 0 ? ["cc-x", "cc-y"] : ["cc-y", "cc-x"],
        caller: `c${i % 11}`,
        requestId: `cc-${i}`,
        // A wait shorter than a window: every refusal looks for a turn (the queue's lock), finds it
        // too far, and moves on to the other model.
        waitLeftMs: i % 3 === 0 ? 0 : 1_000,
        sql: clients[i % CONNECTIONS],
      })
    ));
    const served = answers.filter((a) => a.ok);
    expect(served.filter((a) => a.model === "cc-x")).toHaveLength(30);
    expect(served.filter((a) => a.model === "cc-y")).toHaveLength(30);
    expect(answers.filter((a) => !a.ok && a.queue !== undefined)).toHaveLength(0);
    const [{ admitted }] = await db.sql<{ admitted: number }[]>`
      select count(*)::int as admitted from public.google_ai_attempts a where a.model in ('cc-x', 'cc-y') and a.admitted_at is not null and a.status not in ('released', 'withdrawn')`;
    expect(admitted).toBe(60);
    // Each refused request tried both models: one refused row each.
    const [{ refusedRows }] = await db.sql<{ refusedRows: number }[]>`
      select count(*)::int as "refusedRows" from public.google_ai_attempts where request_id like 'cc-%' and status = 'refused'`;
    expect(refusedRows).toBe(240 * 2 + served.filter((a) => a.fallback_from.length > 0).length);
  }, 120_000);
});

describe("retired models", () => {
  it("are passed over once the catalogue stops listing them; when all are, the chain is asked in order", async () => {
    await model("old-a", { rpm: 10 });
    await model("new-b", { rpm: 10 });
    await model("old-c", { rpm: 10 });
    await db.sql`insert into public.google_ai_key_health (api_key_id, key_alias, status)
                 select id, key_alias, 'ok' from public.google_ai_api_keys`;
    await db.sql`insert into public.google_ai_model_catalogue (api_key_id, model, key_alias, quota_group)
                 select id, 'new-b', key_alias, 'proj-f' from public.google_ai_api_keys`;
    try {
      const a = await chain({ at: T0 + 120_000, models: ["old-a", "new-b"], requestId: "old-1" });
      expect(a).toMatchObject({ ok: true, model: "new-b", fallback_from: [{ model: "old-a", limit: "retired", retry_after_ms: null }] });
      expect((await rows("old-1")).map((r) => [r.status, r.model, r.limit_hit])).toEqual([
        ["refused", "old-a", "retired"],
        ["reserved", "new-b", null],
      ]);
      // The catalogue may be the one that is wrong: with nothing listed left, the first is asked.
      const b = await chain({ at: T0 + 120_000, models: ["old-a", "old-c"], requestId: "old-2" });
      expect(b).toMatchObject({ ok: true, model: "old-a", fallback_from: [] });
      // A row the operator retired (is_active = false) is passed over too.
      await db.sql`delete from public.google_ai_key_health`;
      await db.sql`update public.google_ai_model_limits set is_active = false where model = 'old-a'`;
      const c = await chain({ at: T0 + 120_000, models: ["old-a", "old-c"], requestId: "old-3" });
      expect(c).toMatchObject({ ok: true, model: "old-c", requested_model: "old-a", fallback_from: [{ model: "old-a", limit: "retired" }] });
    } finally {
      await db.sql`delete from public.google_ai_key_health`;
    }
  });

  it("can be remapped by an alias row instead: the active row's alias wins over the retired row's name", async () => {
    await db.sql`insert into public.google_ai_model_limits (model, rpm, is_active) values ('remap-old', 10, false)`;
    await db.sql`insert into public.google_ai_model_limits (model, rpm, aliases) values ('remap-new', 10, '{remap-old}')`;
    const [profile] = await db.sql`select model, is_active from public.google_ai_model_traits('remap-old')`;
    expect(profile).toEqual({ model: "remap-new", is_active: true });
    const a = await chain({ at: T0 + 120_000, models: ["remap-old"], requestId: "remap-1" });
    expect(a).toMatchObject({ ok: true, model: "remap-new" });
    expect(a.fallback_from).toBeUndefined(); // one model is admitted as it is, not as a chain
    expect(await rows("remap-1")).toEqual([{ status: "reserved", model: "remap-new", requested_model: "remap-old", limit_hit: null }]);
  });
});
