// The request is one record from the entry down (google_ai_request, 35_clients_and_tokens.sql): the
// holder's deadlines and id are its fields, never a key of the caller's metadata nor a session
// setting; each step of the admission answers the one above it a typed verdict
// (google_ai_admission_verdict), never jsonb read back by key; and one function writes every refused
// attempt row (google_ai_log_refusal), whichever step refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await oneKeyDatabase("request_record", { alias: "r1", envVar: "KEY_R1", project: "proj-r" });
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
               values ('record-a', 100, null, null), ('record-b', 100, null, null), ('record-one', 1, null, null)`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Answer {
  ok: boolean;
  limit?: string;
  model?: string;
  queue?: { ticket: string };
}

interface Holder {
  replyBy: string;
  holdUntil: string;
  holder: string;
}

const holder = (): Holder => ({
  replyBy: new Date(Date.now() + 30_000).toISOString(),
  holdUntil: new Date(Date.now() + 300_000).toISOString(),
  holder: crypto.randomUUID(),
});

/** One reservation through the entry: a service caller's (caller) or a token's (tokenHash), naming its holder. */
async function reserve(who: { caller?: string; tokenHash?: string }, models: string[], requestId: string, h: Holder,
  waitLeftMs: number | null = null): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`
    select public.google_ai_reserve_models(p_models => ${models}::text[], p_estimated_tokens => 10,
      p_caller => ${who.caller ?? null}, p_token_hash => ${who.tokenHash ?? null}, p_request_id => ${requestId},
      p_idempotent => true, p_wait_left_ms => ${waitLeftMs}::integer, p_reply_by => ${h.replyBy}::timestamptz,
      p_hold_until => ${h.holdUntil}::timestamptz, p_holder => ${h.holder}::uuid) as r`;
  return row!.r;
}

/** The refused rows of a request: their model, limit and the holder's fields. */
async function refusedRows(requestId: string) {
  return db.sql<{ model: string; limit_hit: string; reply_by: Date; hold_until: Date; holder: string }[]>`
    select model, limit_hit, reply_by, hold_until, holder::text from public.google_ai_attempts
    where request_id = ${requestId} and status = 'refused' order by created_at`;
}

const carried = (h: Holder) => ({ reply_by: new Date(h.replyBy), hold_until: new Date(h.holdUntil), holder: h.holder });

describe("the holder's deadlines and id, fields of the request", () => {
  it("reach the refused row of every step that refuses: a token's verdict, fall-back, refuse", async () => {
    const { token } = await mintToken(db.sql, "record-client", { models: ["record-a"] });
    const byToken = holder();
    expect(await reserve({ tokenHash: sha256(token) }, ["record-b"], "by-token", byToken))
      .toMatchObject({ ok: false, limit: "model_not_allowed" });
    expect(await refusedRows("by-token")).toEqual([{ model: "record-b", limit_hit: "model_not_allowed", ...carried(byToken) }]);

    const byFallBack = holder();
    expect(await reserve({ caller: "record-svc" }, ["no-such-model", "record-a"], "by-fall-back", byFallBack))
      .toMatchObject({ ok: true, model: "record-a" });
    expect(await refusedRows("by-fall-back"))
      .toEqual([{ model: "no-such-model", limit_hit: "unknown_model", ...carried(byFallBack) }]);

    const byRefusal = holder();
    expect(await reserve({ caller: "record-svc" }, ["no-such-model"], "by-refusal", byRefusal))
      .toMatchObject({ ok: false, limit: "unknown_model" });
    expect(await refusedRows("by-refusal"))
      .toEqual([{ model: "no-such-model", limit_hit: "unknown_model", ...carried(byRefusal) }]);
  });

  it("reach the admitted row and a queue ticket, whose reply_by is its request's", async () => {
    const first = holder();
    expect(await reserve({ caller: "record-wait" }, ["record-one"], "first", first)).toMatchObject({ ok: true });
    const [admitted] = await db.sql`select reply_by, hold_until, holder::text from public.google_ai_attempts
                                    where request_id = 'first' and status = 'reserved'`;
    expect(admitted).toEqual(carried(first));

    const waiting = holder();
    const queued = await reserve({ caller: "record-wait" }, ["record-one"], "waiting", waiting, 120_000);
    expect(queued.queue?.ticket).toBeDefined();
    const [ticket] = await db.sql`select reply_by from public.google_ai_queue where ticket_id = ${queued.queue!.ticket}`;
    expect(ticket).toEqual({ reply_by: new Date(waiting.replyBy) });
  });
});

describe("the admission's steps", () => {
  it("answer typed verdicts, and one function writes a refused row", async () => {
    const returns = await db.sql<{ proname: string; type: string }[]>`
      select p.proname, p.prorettype::regtype::text as type from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname in ('google_ai_admit_at', 'google_ai_refusal_at',
        'google_ai_record_admission', 'google_ai_idempotent_answer')
      order by p.proname`;
    expect(returns.map((r) => r.type)).toEqual(Array(4).fill("google_ai_admission_verdict"));
    const [refusal] = await db.sql<{ type: string }[]>`
      select a.atttypid::regtype::text as type from pg_attribute a
      where a.attrelid = 'public.google_ai_token_verdict'::regclass and a.attname = 'refusal'`;
    expect(refusal!.type).toBe("google_ai_admission_verdict");

    const writers = await db.sql<{ proname: string }[]>`
      select p.proname from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.prosrc ~* 'insert into public\\.google_ai_attempts'
        and p.prosrc ~ '''refused'''
      order by p.proname`;
    expect(writers.map((w) => w.proname)).toEqual(["google_ai_log_refusal"]);

    // No side channel: no body reads the holder from metadata or reply_by from a session setting.
    const channels = await db.sql<{ proname: string }[]>`
      select p.proname from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.prosrc ~ '\\$holder|google_ai\\.reply_by'`;
    expect(channels).toEqual([]);
  });
});
