// Exact admission of requests of several requests under concurrency (p_requests: an embedding batch
// whose provider counts each input): 80 connections reserve at once, batches of 7 and single requests
// mixed, against an RPM of 50 in one quota group. Each batch is booked whole or not at all: the requests
// admitted never pass 50, and none refused would still have fitted (a busy row is never mistaken for a
// full one); the window, the minute and the day count exactly the requests of the attempt rows, and a
// release given back concurrently with a second burst leaves the counters equal to the log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

const CONNECTIONS = 80;
const MODEL = "batch-model";
const RPM = 50;

let db: TestDatabase;
let clients: Sql[] = [];

beforeAll(async () => {
  db = await freshDatabase("request_counts");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id) values ('k1', 'KEY_K1', 'proj-k')`;
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${MODEL}, ${RPM}, null, 1000)`;
  clients = Array.from({ length: CONNECTIONS }, () => connect(db.url, { max: 1, idle_timeout: 0 }));
  await Promise.all(clients.map((c) => c`select 1`));
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

interface Outcome {
  ok: boolean;
  reservation_id?: string;
  limit?: string;
}

/** Reserves each of `sizes` (its requests) at `at`, one per connection, all at once. */
function burst(at: string, sizes: number[], tag: string): Promise<Outcome[]> {
  return Promise.all(sizes.map(async (requests, i) => {
    const [row] = await clients[i % clients.length]!<{ r: Outcome }[]>`
      select public.google_ai_reserve_models_at(${at}::timestamptz, jsonb_populate_record(
        null::public.google_ai_reservation, ${reservation({ models: [MODEL], estimated_tokens: 10, caller: "burst",
          request_id: `${tag}-${i}`, requests })}::text::jsonb)) as r`;
    return row!.r;
  }));
}

/** The counter row's window, minute and day, and the requests of the rows still reserved. */
async function books(): Promise<{ window: number; minute: number; day: number; logged: number }> {
  const [row] = await db.sql<{ window: number; minute: number; day: number; logged: number }[]>`
    select c.window_requests as window, c.rpm_used as minute, c.rpd_used as day,
           (select coalesce(sum(a.requests), 0)::int from public.google_ai_attempts a
            where a.model = ${MODEL} and a.status = 'reserved') as logged
    from public.google_ai_usage_counters c where c.model = ${MODEL}`;
  return row!;
}

const admittedRequests = (sizes: number[], outcomes: Outcome[]) =>
  outcomes.reduce((n, o, i) => n + (o.ok ? sizes[i]! : 0), 0);

describe(`${CONNECTIONS} connections reserving batches of 7 and single requests at once, RPM ${RPM}`, () => {
  it("books each batch whole or not at all: never more than 50, and nothing refused would have fitted", async () => {
    const sizes = Array.from({ length: CONNECTIONS }, (_, i) => (i % 4 === 3 ? 1 : 7));
    const outcomes = await burst("2026-11-21 11:00:10+00", sizes, "first");
    const admitted = admittedRequests(sizes, outcomes);
    expect(admitted).toBeLessThanOrEqual(RPM);
    const refused = sizes.filter((_, i) => !outcomes[i]!.ok);
    expect(refused.length).toBeGreaterThan(0);
    // Every refusal is of the window, and none of them would have fitted in what was left.
    expect(new Set(outcomes.filter((o) => !o.ok).map((o) => o.limit))).toEqual(new Set(["rpm"]));
    expect(Math.min(...refused)).toBeGreaterThan(RPM - admitted);
    expect(await books()).toEqual({ window: admitted, minute: admitted, day: admitted, logged: admitted });
  }, 120_000);

  it("releases given back during a second burst: the counters equal the log, never above 50", async () => {
    const held = await db.sql<{ id: string; requests: number }[]>`
      select reservation_id::text as id, requests from public.google_ai_attempts
      where model = ${MODEL} and status = 'reserved' and requests > 1 order by id`;
    const giveBack = held.slice(0, Math.ceil(held.length / 2));
    const sizes = Array.from({ length: CONNECTIONS - giveBack.length }, (_, i) => (i % 3 === 2 ? 1 : 7));
    const [outcomes] = await Promise.all([
      burst("2026-11-21 11:00:20+00", sizes, "second"),
      Promise.all(giveBack.map((r, i) =>
        clients[(CONNECTIONS - 1 - i) % CONNECTIONS]!`select public.google_ai_release(${r.id}::uuid, 'never sent')`
      )),
    ]);
    const after = await books();
    expect(after.window).toBeLessThanOrEqual(RPM);
    expect(after).toEqual({ window: after.logged, minute: after.logged, day: after.logged, logged: after.logged });
    // Whatever the second burst took, it was booked whole (7s and 1s), and the day counts what was booked.
    const taken = admittedRequests(sizes, outcomes);
    const [{ booked }] = await db.sql<{ booked: number }[]>`
      select coalesce(sum(requests), 0)::int as booked from public.google_ai_attempts
      where model = ${MODEL} and status = 'reserved' and request_id like 'second-%'`;
    expect(booked).toBe(taken);
  }, 120_000);
});
