// Exact admission under concurrency: 250 connections reserve at once for one model served by
// three keys in two quota groups. For each limit (RPM, TPM, RPD) on its own, the number admitted
// must equal the limit of each group exactly: not one more (over-admission), not one less (a busy
// row mistaken for a full one).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TransactionSql } from "postgres";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

const CONNECTIONS = 250;
const GROUP_A = "proj-a"; // keys a1, a2
const KEY_B = "00000000-0000-0000-0000-0000000000b1"; // no project: its own group
const GROUP_B = `key:${KEY_B}`;

let db: TestDatabase;
let clients: Sql[] = [];

beforeAll(async () => {
  db = await freshDatabase("concurrency");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (id, key_alias, env_var_name, project_id, priority) values
    (gen_random_uuid(), 'a1', 'KEY_A1', ${GROUP_A}, 1),
    (gen_random_uuid(), 'a2', 'KEY_A2', ${GROUP_A}, 1),
    (${KEY_B}, 'b1', 'KEY_B1', null, 1)`;
  // One connection per client, all open before the burst starts.
  clients = Array.from({ length: CONNECTIONS }, () => connect(db.url, { max: 1, idle_timeout: 0 }));
  await Promise.all(clients.map((c) => c`select 1`));
  const [{ open }] = await db.sql<{ open: number }[]>`
    select count(*)::int as open from pg_stat_activity where datname = current_database()`;
  expect(open).toBeGreaterThanOrEqual(CONNECTIONS);
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});

interface Outcome {
  ok: boolean;
  quota_group?: string;
  limit?: string;
  retry_after_ms?: number | null;
}

async function setModel(model: string, rpm: number | null, tpm: number | null, rpd: number | null) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${model}, ${rpm}, ${tpm}, ${rpd})`;
}

/** Fires `requests` reservations, spread round-robin over all connections, all at once. */
async function burst(model: string, requests: { at: string; tokens: number }[]): Promise<Outcome[]> {
  return Promise.all(
    requests.map(async (r, i) => {
      const c = clients[i % clients.length];
      const [row] = await c<{ r: Outcome }[]>`
        select public.google_ai_reserve_models_at(${r.at}::timestamptz, jsonb_populate_record(
          null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: r.tokens, caller: "burst",
            request_id: `${model}-${i}` })}::text::jsonb)) as r`;
      return row.r;
    }),
  );
}

function admittedByGroup(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) if (o.ok) counts[o.quota_group!] = (counts[o.quota_group!] ?? 0) + 1;
  return counts;
}

async function loggedByGroup(model: string): Promise<Record<string, number>> {
  const rows = await db.sql<{ quota_group: string; n: number }[]>`
    select quota_group, count(*)::int as n from public.google_ai_attempts
    where model = ${model} and status = 'reserved' group by quota_group`;
  return Object.fromEntries(rows.map((r) => [r.quota_group, r.n]));
}

/**
 * Two groups for `model` (RPM 2) at one instant: B full (its unlocked count refuses it without a lock),
 * A with room for one more, and A's counter row held by `holderClient` until `release()`; `beforeRelease`
 * runs in the holder's transaction just before it gives the row back.
 */
async function groupAHeld(model: string, holderClient: Sql, beforeRelease?: (tx: TransactionSql) => Promise<unknown>) {
  await setModel(model, 2, null, null);
  const at = "2026-11-21 11:00:30+00";
  const keysOf = async (group: string) =>
    (await db.sql<{ id: string }[]>`select id from public.google_ai_api_keys k
      where public.google_ai_quota_group(k.project_id, k.id) = ${group}`).map((k) => k.id);
  const reserve = (c: Sql, id: string, exclude: string[]) =>
    c<{ r: Outcome & { key_alias?: string } }[]>`
      select public.google_ai_reserve_models_at(${at}::timestamptz, jsonb_populate_record(
        null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 1, caller: "burst",
          request_id: id, exclude_key_ids: exclude })}::text::jsonb)) as r`.then(([row]) => row.r);
  for (const id of ["b-1", "b-2"]) expect((await reserve(db.sql, id, await keysOf(GROUP_A))).quota_group).toBe(GROUP_B);
  expect((await reserve(db.sql, "a-1", await keysOf(GROUP_B))).quota_group).toBe(GROUP_A);

  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holder = holderClient.begin(async (tx) => {
    await tx`select 1 from public.google_ai_usage_counters where quota_group = ${GROUP_A} and model = ${model} for update`;
    locked();
    await held;
    await beforeRelease?.(tx);
  });
  await isLocked;
  return { reserve, release: async () => { release(); await holder; } };
}

describe(`${CONNECTIONS} concurrent connections, 3 keys in 2 quota groups`, () => {
  it("RPM: admits exactly the per-minute limit of each group", async () => {
    await setModel("burst-rpm", 40, null, null);
    const outcomes = await burst("burst-rpm", Array.from({ length: 600 }, () => ({ at: "2026-11-21 10:00:30+00", tokens: 1 })));
    expect(admittedByGroup(outcomes)).toEqual({ [GROUP_A]: 40, [GROUP_B]: 40 });
    expect(await loggedByGroup("burst-rpm")).toEqual({ [GROUP_A]: 40, [GROUP_B]: 40 });
    const refused = outcomes.filter((o) => !o.ok);
    expect(refused).toHaveLength(520);
    // The window slides: it has room again when the burst's admissions (10:00:30) leave it, 60 s + the 1 s guard later.
    expect(new Set(refused.map((o) => `${o.limit}:${o.retry_after_ms}`))).toEqual(new Set(["rpm:61000"]));
    const counters = await db.sql`select quota_group, rpm_used from public.google_ai_usage_counters where model = 'burst-rpm' order by 1`;
    expect(counters.map((c) => [c.quota_group, c.rpm_used])).toEqual([[GROUP_A, 40], [GROUP_B, 40]].sort());
    // Each admission names a key of the group it booked, also a group passed over and then waited for
    // (the key comes with the candidate, read before the row's lock).
    const [{ keyless, foreign }] = await db.sql<{ keyless: number; foreign: number }[]>`
      select count(*) filter (where k.id is null)::int as keyless,
             count(*) filter (where public.google_ai_quota_group(k.project_id, k.id) <> a.quota_group)::int as foreign
      from public.google_ai_attempts a left join public.google_ai_api_keys k on k.id = a.api_key_id
      where a.model = 'burst-rpm' and a.status = 'reserved'`;
    expect({ keyless, foreign }).toEqual({ keyless: 0, foreign: 0 });
  });

  it("TPM: admits exactly the per-minute token limit of each group", async () => {
    await setModel("burst-tpm", null, 5_000, null);
    const outcomes = await burst("burst-tpm", Array.from({ length: 600 }, () => ({ at: "2026-11-21 10:00:30+00", tokens: 100 })));
    expect(admittedByGroup(outcomes)).toEqual({ [GROUP_A]: 50, [GROUP_B]: 50 });
    expect(await loggedByGroup("burst-tpm")).toEqual({ [GROUP_A]: 50, [GROUP_B]: 50 });
    const counters = await db.sql`select quota_group, tpm_used from public.google_ai_usage_counters where model = 'burst-tpm' order by 1`;
    expect(counters.map((c) => c.tpm_used)).toEqual([5_000, 5_000]);
    expect(new Set(outcomes.filter((o) => !o.ok).map((o) => o.limit))).toEqual(new Set(["tpm"]));
  });

  it("TPM with mixed sizes: never above the limit, and nothing refused would still have fitted", async () => {
    await setModel("burst-tpm-mixed", null, 7_000, null);
    const sizes = Array.from({ length: 600 }, (_, i) => 37 + ((i * 7919) % 400)); // deterministic, 37..436
    const outcomes = await burst("burst-tpm-mixed", sizes.map((tokens) => ({ at: "2026-11-21 10:00:30+00", tokens })));
    const used: Record<string, number> = {};
    outcomes.forEach((o, i) => {
      if (o.ok) used[o.quota_group!] = (used[o.quota_group!] ?? 0) + sizes[i];
    });
    const smallestRefused = Math.min(...sizes.filter((_, i) => !outcomes[i].ok));
    for (const group of [GROUP_A, GROUP_B]) {
      expect(used[group]).toBeLessThanOrEqual(7_000);
      expect(7_000 - used[group]).toBeLessThan(smallestRefused);
    }
    const counters = await db.sql`select quota_group, tpm_used from public.google_ai_usage_counters where model = 'burst-tpm-mixed'`;
    for (const c of counters) expect(c.tpm_used).toBe(used[c.quota_group]);
  });

  it("RPD: admits exactly the per-day limit of each group across many minutes", async () => {
    await setModel("burst-rpd", null, null, 75);
    // 600 requests spread over 10 minutes of one Pacific day.
    const requests = Array.from({ length: 600 }, (_, i) => ({ at: `2026-11-21 10:0${i % 10}:30+00`, tokens: 1 }));
    const outcomes = await burst("burst-rpd", requests);
    expect(admittedByGroup(outcomes)).toEqual({ [GROUP_A]: 75, [GROUP_B]: 75 });
    expect(await loggedByGroup("burst-rpd")).toEqual({ [GROUP_A]: 75, [GROUP_B]: 75 });
    const refusedLimits = new Set(outcomes.filter((o) => !o.ok).map((o) => o.limit));
    expect(refusedLimits).toEqual(new Set(["rpd"]));
  });

  it("all three limits at once, on the real clock: never more than the limit in any window", async () => {
    await setModel("burst-all", 30, 2_000, 45);
    const outcomes = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const c = clients[i % clients.length];
        const [row] = await c<{ r: Outcome }[]>`select public.google_ai_reserve_models(array['burst-all'], ${10 + (i % 90)}, 'burst', null, ${`all-${i}`}) as r`;
        return row.r;
      }),
    );
    const rows = await db.sql<{ quota_group: string; minute_bucket: Date; n: number; tokens: number }[]>`
      select quota_group, minute_bucket, count(*)::int as n, sum(estimated_tokens)::int as tokens
      from public.google_ai_attempts where model = 'burst-all' and status = 'reserved'
      group by quota_group, minute_bucket`;
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.n).toBeLessThanOrEqual(30);
      expect(r.tokens).toBeLessThanOrEqual(2_000);
    }
    const perGroup = admittedByGroup(outcomes);
    for (const n of Object.values(perGroup)) expect(n).toBeLessThanOrEqual(45);
  });

  it("reserve, finalize and release interleaved on the real clock: no deadlock, counters equal the log", async () => {
    await setModel("churn", 200, 20_000, 100_000);
    const errors: unknown[] = [];
    await Promise.all(
      clients.map(async (c, i) => {
        for (let n = 0; n < 4; n++) {
          try {
            const estimate = 20 + ((i * 31 + n * 17) % 80);
            const [{ r }] = await c<{ r: { ok: boolean; reservation_id?: string } }[]>`
              select public.google_ai_reserve_models(array['churn'], ${estimate}, 'churn', null, ${`churn-${i}-${n}`}) as r`;
            if (!r.ok) continue;
            if ((i + n) % 3 === 0) await c`select public.google_ai_release(${r.reservation_id!}::uuid, 'test')`;
            else await c`select public.google_ai_finalize(${r.reservation_id!}::uuid, jsonb_build_object('kind', 'succeeded',
              'input_tokens', ${estimate + ((i % 7) - 3) * 5}::integer, 'output_tokens', 10, 'http_status', 200))`;
          } catch (err) {
            errors.push(err);
          }
        }
      }),
    );
    expect(errors).toEqual([]);
    // The counter row of each group holds its current minute and day; they must equal what the log says.
    const mismatches = await db.sql`
      select c.quota_group, c.rpm_used, c.tpm_used, c.rpd_used,
             (select count(*) from public.google_ai_attempts a where a.model = 'churn' and a.quota_group = c.quota_group
                and a.minute_bucket = c.minute_bucket and a.status not in ('released', 'refused'))::int as rpm_log,
             (select coalesce(sum(coalesce(a.input_tokens, a.estimated_tokens)), 0) from public.google_ai_attempts a
               where a.model = 'churn' and a.quota_group = c.quota_group and a.minute_bucket = c.minute_bucket
                 and a.status not in ('released', 'refused'))::int as tpm_log,
             (select count(*) from public.google_ai_attempts a where a.model = 'churn' and a.quota_group = c.quota_group
                and a.day_bucket = c.day_bucket and a.status not in ('released', 'refused'))::int as rpd_log
      from public.google_ai_usage_counters c where c.model = 'churn'`;
    expect(mismatches.length).toBe(2);
    for (const m of mismatches) {
      expect(m.rpm_used).toBe(m.rpm_log);
      expect(m.rpd_used).toBe(m.rpd_log);
      // Finalize adjusts only the minute it was booked in, so tokens match exactly within the minute.
      expect(m.tpm_used).toBe(m.tpm_log);
    }
  });

  it("a group held by another reservation is passed over, then waited for before the request is refused", async () => {
    const { reserve, release } = await groupAHeld("pass-over", clients[0]);
    let settled = false;
    const waiter = reserve(clients[1], "a-2", []).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 500));
    expect(settled).toBe(false); // skipped in the first pass, now waiting in the second
    await release();
    const answer = await waiter;
    expect(answer.ok).toBe(true);
    expect(answer.quota_group).toBe(GROUP_A);
    expect(["a1", "a2"]).toContain(answer.key_alias);
  });

  it("a group waited for whose keys were switched off meanwhile is not booked: a serialization failure (40001)", async () => {
    // The holder switches group A's keys off for this model before it gives the row back.
    const { reserve, release } = await groupAHeld("pass-over-off", clients[2], (tx) =>
      tx`update public.google_ai_api_keys set models = array['burst-rpm'] where project_id = ${GROUP_A}`);
    const waiter = reserve(clients[3], "a-2", []).then(
      (r) => ({ ok: true as const, r }),
      (e: { code?: string }) => ({ ok: false as const, code: e.code }),
    );
    await new Promise((r) => setTimeout(r, 300));
    await release();
    expect(await waiter).toEqual({ ok: false, code: "40001" });
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_attempts
      where model = 'pass-over-off' and request_id = 'a-2'`;
    expect(n).toBe(0); // nothing of the booking stays
    await db.sql`update public.google_ai_api_keys set models = null where project_id = ${GROUP_A}`;
  });

  it("the same named request from 250 connections at once reaches Google once", async () => {
    await setModel("idem-burst", 1000, null, null);
    const outcomes = await Promise.all(
      clients.map(async (c) => {
        const [{ r }] = await c<{ r: Outcome }[]>`
          select public.google_ai_reserve_models(array['idem-burst'], 5, 'bot', null, 'same-request', p_idempotent => true) as r`;
        return r;
      }),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    expect(new Set(outcomes.filter((o) => !o.ok).map((o) => o.limit))).toEqual(new Set(["in_progress"]));
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_attempts
                                 where request_id = 'same-request' and status = 'reserved'`;
    expect(n).toBe(1);
  });
});
