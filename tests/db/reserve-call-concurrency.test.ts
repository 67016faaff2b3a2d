// Exact admission through the CALL llm-invoke makes (google_ai_reserve_call: the booking committed
// without waiting for the disk, then a flush), under concurrency: 300 reservations at once on 150
// gateway connections (eve_gateway), from 4 scoped tokens and two service callers, half of the calls
// WAIT, for one model served by two quota groups (RPM 60 each). Demand is 2.5× the limit, so exactly
// 120 are admitted, 60 per group: not one more (over-admission), not one less (a busy row taken for a
// full one); no deadlock (40P01) or any other error; the WAIT callers refused hold one ticket each and
// keep it when they call again with it, concurrently with more callers; the counter rows equal the rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { countersAgainstRows } from "../support/counters-vs-rows.ts";
import { type ReserveCallAnswer, type ReserveCallArgs, reserveCall } from "../support/reserve-call.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const CONNECTIONS = 150;
const MODEL = "call-burst";
const RPM = 60; // per quota group
const GROUP_A = "proj-call-a"; // keys a1, a2
const TOKENS = 4;

let db: TestDatabase;
let clients: Sql[] = [];
let tokenHashes: string[] = [];

beforeAll(async () => {
  db = await freshDatabase("reserve_call_concurrency");
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority) values
    ('call-a1', 'KEY_CALL_A1', ${GROUP_A}, 1), ('call-a2', 'KEY_CALL_A2', ${GROUP_A}, 1), ('call-b1', 'KEY_CALL_B1', null, 1)`;
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${MODEL}, ${RPM}, null, 100000)`;
  for (let t = 0; t < TOKENS; t++) tokenHashes.push(sha256((await mintToken(db.sql, `call-notebook-${t}`, { models: [MODEL] })).token));
  const gatewayUrl = await gatewayRoleUrl(db.url);
  clients = Array.from({ length: CONNECTIONS }, () => connect(gatewayUrl, { max: 1, idle_timeout: 0 }));
  // A few at a time: hundreds of simultaneous forks stall a 2-core machine.
  for (let i = 0; i < clients.length; i += 25) await Promise.all(clients.slice(i, i + 25).map((c) => c`select 1`));
}, 180_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

type Outcome = { args: ReserveCallArgs; answer?: ReserveCallAnswer["o_reservation"]; error?: { code?: string; message: string } };

/** Every call at once, round-robin over the connections. */
function burst(calls: ReserveCallArgs[]): Promise<Outcome[]> {
  return Promise.all(calls.map(async (args, i) => {
    try {
      return { args, answer: (await reserveCall(clients[i % clients.length]!, args)).o_reservation };
    } catch (e) {
      return { args, error: { code: (e as { code?: string }).code, message: (e as Error).message } };
    }
  }));
}

const WAIT_MS = 600_000;

describe(`300 reservations through google_ai_reserve_call at once on ${CONNECTIONS} connections`, () => {
  /** The WAIT callers refused in the first burst, with their tickets. */
  let waiters: { args: ReserveCallArgs; ticket: string }[];

  it("admits exactly each group's RPM: 4 tokens and two service callers, half of them WAIT, no error", async () => {
    // Each of 6 callers (4 tokens, the service caller "bot" and "bot-wait") 50 times; half of the calls
    // WAIT, more than the limit: WAIT callers are refused, whatever order the calls run in.
    const calls: ReserveCallArgs[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 6;
      calls.push({ models: [MODEL], estimatedTokens: 10, requestId: `burst-${i}`,
        ...(kind < TOKENS ? { tokenHash: tokenHashes[kind] } : { caller: kind === 4 ? "bot" : "bot-wait" }),
        ...(Math.floor(i / 6) % 2 === 1 ? { waitLeftMs: WAIT_MS } : {}) });
    }
    const outcomes = await burst(calls);
    expect(outcomes.filter((o) => o.error).map((o) => o.error)).toEqual([]); // no 40P01, nor anything else
    const answers = outcomes.map((o) => o.answer!);
    const admitted = answers.filter((a) => a.ok);
    const byGroup: Record<string, number> = {};
    for (const a of admitted) byGroup[a.quota_group!] = (byGroup[a.quota_group!] ?? 0) + 1;
    expect(Object.values(byGroup)).toEqual([RPM, RPM]);
    expect(byGroup[GROUP_A]).toBe(RPM);
    // Every refusal is the window's; a WAIT caller refused holds a ticket, a NO_WAIT one none.
    const refused = outcomes.filter((o) => !o.answer!.ok);
    expect(refused).toHaveLength(300 - 2 * RPM);
    expect(new Set(refused.map((o) => o.answer!.limit))).toEqual(new Set(["rpm"]));
    const waiting = refused.filter((o) => o.args.waitLeftMs);
    expect(waiting.length).toBeGreaterThanOrEqual(150 - 2 * RPM);
    for (const o of refused) expect(o.answer!.queue?.ticket !== undefined).toBe(!!o.args.waitLeftMs);
    waiters = waiting.map((o) => ({ args: o.args, ticket: o.answer!.queue!.ticket }));
    expect(new Set(waiters.map((w) => w.ticket)).size).toBe(waiting.length);

    // Each token's and the service caller's admissions are rows: the log, the counters and the queue agree.
    const rows = await db.sql<{ n: number; callers: number }[]>`
      select count(*)::int as n, count(distinct coalesce(token_id::text, caller))::int as callers
      from public.google_ai_attempts where model = ${MODEL} and status = 'reserved'`;
    expect(rows[0]).toEqual({ n: 2 * RPM, callers: rows[0]!.callers });
    expect(rows[0]!.callers).toBeGreaterThanOrEqual(2);
    const [{ tickets }] = await db.sql<{ tickets: number }[]>`
      select count(*)::int as tickets from public.google_ai_queue where model = ${MODEL}`;
    expect(tickets).toBe(waiters.length);
    const counters = await countersAgainstRows(db.sql, [MODEL]);
    expect(counters.map((c) => c.counted)).toEqual(counters.map((c) => c.logged));
    expect(counters.map((c) => c.counted.window)).toEqual([RPM, RPM]);
  }, 120_000);

  it("the WAIT callers call again with their tickets beside 150 more callers: all refused, each keeps its ticket", async () => {
    const again: ReserveCallArgs[] = waiters.map((w) => ({ ...w.args, queueTicket: w.ticket, requestId: `${w.args.requestId}-again` }));
    for (let i = 0; i < 150; i++) {
      again.push({ models: [MODEL], estimatedTokens: 10, requestId: `more-${i}`,
        ...(i % 5 < TOKENS ? { tokenHash: tokenHashes[i % 5] } : { caller: "bot" }) });
    }
    const outcomes = await burst(again);
    expect(outcomes.filter((o) => o.error).map((o) => o.error)).toEqual([]);
    expect(outcomes.filter((o) => o.answer!.ok)).toEqual([]); // the window is full: nobody over it
    for (const o of outcomes) {
      if (o.args.queueTicket) expect(o.answer!.queue?.ticket).toBe(o.args.queueTicket);
    }
    const counters = await countersAgainstRows(db.sql, [MODEL]);
    expect(counters.map((c) => c.counted)).toEqual(counters.map((c) => c.logged));
    expect(counters.map((c) => c.counted.window)).toEqual([RPM, RPM]);
  }, 120_000);
});
