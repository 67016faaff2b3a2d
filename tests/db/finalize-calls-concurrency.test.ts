// google_ai_finalize_calls under concurrency, as the functions' role calls it: reservations by several
// scoped tokens of one client (and a service caller with a budget) on one model, while batches of
// finalizes, their calls shuffled across those tokens, are written at the same time. The batch locks
// tokens, clients and callers' budgets before the counter row, as a reservation does: no statement may
// fail (a deadlock would be a 40P01 after deadlock_timeout, not a hang), every attempt ends finalized,
// and the counter row and the budgets hold exactly what the calls settled.
import { afterAll, beforeAll, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { newToken, sha256 } from "../../shared/db/scoped-token.ts";
import { seededRandom } from "../../shared/sim-core/arrival.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";

const MODEL = "fc-model";
const GROUP = "proj-fc";
const TOKENS = 4;
const RESERVERS = 10;
const FINALIZERS = 4;
const RESERVATIONS_EACH = 30;
const SERVICE_CALLER = "fc-svc";

let db: TestDatabase;
let reservers: Sql[] = [];
let finalizers: Sql[] = [];
const tokenHashes: string[] = [];

beforeAll(async () => {
  db = await oneKeyDatabase("finalize_calls", { alias: "fc1", envVar: "KEY_FC1", project: GROUP });
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${MODEL}, 100000, 100000000, 10000000)`;
  const [{ r: client }] = await db.sql`select public.google_ai_create_client('fc-client', array[${MODEL}],
    p_daily_max_requests => 100000, p_daily_max_tokens => 100000000) as r`;
  for (let i = 0; i < TOKENS; i++) {
    const token = newToken();
    const [{ r }] = await db.sql`select public.google_ai_mint_token(${sha256(client.secret)}, ${sha256(token)}) as r`;
    expect(r.ok).toBe(true);
    tokenHashes.push(sha256(token));
  }
  await db.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests, daily_max_tokens)
               values (${SERVICE_CALLER}, 100000, 100000000)`;
  const url = await gatewayRoleUrl(db.url);
  reservers = Array.from({ length: RESERVERS }, () => connect(url, { max: 1 }));
  finalizers = Array.from({ length: FINALIZERS }, () => connect(url, { max: 1 }));
  await Promise.all([...reservers, ...finalizers].map((c) => c`select 1`));
}, 60_000);

afterAll(async () => {
  await Promise.all([...reservers, ...finalizers].map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

/** One call of a batch: {reservation_id, outcome}, the outcome google_ai_attempt_outcome's attributes. */
interface Call {
  reservation_id: string;
  outcome: {
    kind: string;
    input_tokens?: number;
    output_tokens?: number;
    http_status: number;
    settled_tokens?: number;
  };
}

/** A seeded shuffle (Fisher-Yates on seededRandom): the batches' orders differ, the run repeats. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  const random = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

it("reservations by scoped tokens of one client and batches of their finalizes, shuffled: no deadlock, exact counts", async () => {
  const queue: Call[] = [];
  const counted = new Map<string, number>(); // reservation id -> the tokens its finalize settles
  const errors: unknown[] = [];
  let refused = 0;
  let reserving = RESERVERS;
  let batches = 0;
  let mixedBatches = 0;

  const reserve = async (c: Sql, r: number) => {
    try {
      for (let n = 0; n < RESERVATIONS_EACH; n++) {
        const k = r * RESERVATIONS_EACH + n;
        const service = k % (TOKENS + 1) === TOKENS;
        const estimate = 50 + (k % 13) * 10;
        const [{ a }] = await c`select public.google_ai_reserve_models(p_models => array[${MODEL}],
          p_estimated_tokens => ${estimate}, p_caller => ${service ? SERVICE_CALLER : null},
          p_token_hash => ${service ? null : tokenHashes[k % (TOKENS + 1)]!}, p_request_id => ${`fc-${k}`}) as a`;
        if (!a.ok) {
          refused++;
          continue;
        }
        // Most succeed with their own count; every seventh is a refusal that keeps part of its booking.
        const call: Call = k % 7 === 3
          ? { reservation_id: a.reservation_id, outcome: { kind: "upstream_error", http_status: 429, settled_tokens: 30 } }
          : { reservation_id: a.reservation_id, outcome: { kind: "succeeded", input_tokens: 20 + (k % 17) * 9,
              output_tokens: 5, http_status: 200 } };
        counted.set(a.reservation_id, call.outcome.input_tokens ?? Math.min(call.outcome.settled_tokens!, estimate));
        queue.push(call);
      }
    } catch (err) {
      errors.push(err);
    } finally {
      reserving--;
    }
  };

  const finalize = async (c: Sql, f: number) => {
    while (reserving > 0 || queue.length > 0) {
      const take = 2 + ((batches + f) % 7);
      const calls = queue.splice(0, take);
      if (calls.length === 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const batch = shuffled(calls, batches * 31 + f);
      batches++;
      if (batch.length > 1) mixedBatches++;
      try {
        const [{ answers }] = await c`select public.google_ai_finalize_calls(${c.json(batch as never)}::jsonb) as answers`;
        expect((answers as { ok: boolean }[]).map((x) => x.ok)).toEqual(batch.map(() => true));
      } catch (err) {
        errors.push(err);
      }
    }
  };

  await Promise.all([...reservers.map((c, r) => reserve(c, r)), ...finalizers.map((c, f) => finalize(c, f))]);

  expect(errors).toEqual([]);
  expect(refused).toBe(0);
  expect(counted.size).toBe(RESERVERS * RESERVATIONS_EACH);
  expect(mixedBatches).toBeGreaterThan(10);

  const attempts = await db.sql<{ id: string; status: string; minute: string; token_id: string | null; caller: string }[]>`
    select reservation_id::text as id, status, minute_bucket::text as minute, token_id::text, caller
    from public.google_ai_attempts where model = ${MODEL}`;
  expect(attempts).toHaveLength(counted.size);
  expect(attempts.filter((a) => a.status === "reserved")).toEqual([]);
  expect(new Set(attempts.map((a) => a.status))).toEqual(new Set(["succeeded", "upstream_error"]));

  // The counter row: the calls of its minute at what they settled, every one of the day.
  const [counter] = await db.sql<{ minute: string; rpm_used: number; tpm_used: number; rpd_used: number }[]>`
    select minute_bucket::text as minute, rpm_used, tpm_used, rpd_used from public.google_ai_usage_counters
    where quota_group = ${GROUP} and model = ${MODEL}`;
  const inMinute = attempts.filter((a) => a.minute === counter!.minute);
  expect(counter!.rpm_used).toBe(inMinute.length);
  expect(counter!.tpm_used).toBe(inMinute.reduce((s, a) => s + counted.get(a.id)!, 0));
  expect(counter!.rpd_used).toBe(attempts.length);

  // Budgets: each token's life, the client's day (its tokens' calls), the service caller's day.
  const sumOf = (pick: (a: (typeof attempts)[number]) => boolean) =>
    attempts.filter(pick).reduce((s, a) => s + counted.get(a.id)!, 0);
  const tokens = await db.sql<{ id: string; requests_used: number; tokens_used: number }[]>`
    select id::text, requests_used, tokens_used from public.google_ai_tokens where token_hash = any(${tokenHashes})`;
  expect(tokens).toHaveLength(TOKENS);
  for (const t of tokens) {
    expect(t.requests_used).toBe(attempts.filter((a) => a.token_id === t.id).length);
    expect(t.tokens_used).toBe(sumOf((a) => a.token_id === t.id));
  }
  const [client] = await db.sql`select requests_today, tokens_today::int from public.google_ai_clients where name = 'fc-client'`;
  expect(client).toEqual({ requests_today: attempts.filter((a) => a.token_id).length, tokens_today: sumOf((a) => !!a.token_id) });
  const [caller] = await db.sql`select requests_today, tokens_today::int from public.google_ai_caller_budgets
                                where caller = ${SERVICE_CALLER}`;
  expect(caller).toEqual({ requests_today: attempts.filter((a) => a.caller === SERVICE_CALLER).length,
    tokens_today: sumOf((a) => a.caller === SERVICE_CALLER) });
}, 60_000);
