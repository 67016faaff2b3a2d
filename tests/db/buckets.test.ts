// A limit's shape as data (google_ai_model_limits.bucket_share, itpm, otpm), on a real PostgreSQL with
// the clock injected: a model whose limits are buckets (Anthropic's shape) takes a burst only as large
// as its bucket, then one request per step as it refills (the spread's schedule, kept always); its
// input and its answer are taken from two token buckets apart (ITPM, OTPM), all or nothing, with the
// time a refused request may go to the microsecond; what the answer did not use goes back when it ends
// (cache reads left out of the input unless the row counts them), and a release gives all of it back;
// rows of one pool (limit_pool, Anthropic's family) share one set of counts, and a 429's rest for one
// rests them all. The quota report and the group's room show what the token buckets hold; a request no
// bucket can ever hold (more than a minute of ITPM or OTPM) is refused too_large at once; the queue's
// estimate counts on the request bucket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { iso, msOf } from "../support/microseconds.ts";
import type { ReserveAnswer as Answer } from "../support/reserve-answer.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");
const WINDOW_US = 61_000_000; // 60 s + the default minute guard

beforeAll(async () => {
  db = await oneKeyDatabase("buckets", { alias: "b1", envVar: "KEY_B1", project: "proj-b" });
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function admit(at: number, model: string, input: number, output: number | null = null,
  wait: { leftMs: number; ticket?: string } = { leftMs: 0 }): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(at)}::text::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model],
      estimated_tokens: input + (output ?? 0), caller: "notebook", priority: "batch",
      output_tokens: output === null ? null : [output], wait_left_ms: wait.leftMs,
      queue_ticket: wait.ticket ?? null })}::text::jsonb)) as r`;
  return row!.r;
}

async function finalize(id: string, input: number, output: number, cached: number | null = null) {
  await db.sql`select public.google_ai_finalize(${id}::uuid, jsonb_build_object('kind', 'succeeded',
    'input_tokens', ${input}::integer, 'output_tokens', ${output}::integer, 'cached_input_tokens', ${cached}::integer))`;
}

async function model(name: string, l: { rpm?: number; itpm?: number; otpm?: number; share?: number; cacheReads?: boolean }) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, itpm, otpm, bucket_share, itpm_counts_cache_reads,
                 booked_output_tokens, spread_burst)
               values (${name}, ${l.rpm ?? null}, ${l.itpm ?? null}, ${l.otpm ?? null}, ${l.share ?? null},
                 ${l.cacheReads ?? false}, ${l.otpm === undefined ? null : 4096}, 1)`;
}

const refusal = (a: Answer) => ({ limit: a.limit, cause: a.cause, retryAt: a.retry_at ? msOf(a.retry_at) : null });

describe("a model whose limits are buckets", () => {
  it("takes a burst as large as its request bucket, then one request a step as it refills, at its exact time", async () => {
    // RPM 30, a tenth of it held: a bucket of 3, refilled one request per 61 s / 30.
    await model("bucket-rpm", { rpm: 30, share: 0.1 });
    const step = Math.ceil(WINDOW_US / 30) / 1000;
    const burst = await Promise.all([...Array(8)].map(() => admit(T0, "bucket-rpm", 10)));
    expect(burst.filter((a) => a.ok)).toHaveLength(3);
    const refused = burst.find((a) => !a.ok)!;
    expect(refusal(refused)).toEqual({ limit: "rpm", cause: "spread", retryAt: T0 + step });
    expect((await admit(T0 + step - 0.001, "bucket-rpm", 10)).ok).toBe(false);
    expect((await admit(T0 + step, "bucket-rpm", 10)).ok).toBe(true);
    expect((await admit(T0 + step, "bucket-rpm", 10)).ok).toBe(false);
    // Left alone for three steps, it holds three again (never more than its size).
    const later = await Promise.all([...Array(5)].map(() => admit(T0 + 5 * step, "bucket-rpm", 10)));
    expect(later.filter((a) => a.ok)).toHaveLength(3);
  });

  it("books the answer in OTPM apart from the input in ITPM, all or nothing, and the unused answer comes back", async () => {
    // OTPM 610 (a token every 100 ms), ITPM 100 000 (one every 610 µs).
    await model("bucket-otpm", { itpm: 100_000, otpm: 610 });
    const taken = [];
    for (let i = 0; i < 3; i++) taken.push(await admit(T0, "bucket-otpm", 50, 200));
    expect(taken.every((a) => a.ok)).toBe(true);
    // 600 of 610 taken: 200 more fit once 190 have come back.
    expect(refusal(await admit(T0, "bucket-otpm", 50, 200))).toEqual({ limit: "tpm", cause: "spread", retryAt: T0 + 19_000 });
    // The refused request took nothing from ITPM: three inputs of 50 tokens.
    const [row] = await db.sql<{ t: string }[]>`select to_char(input_until at time zone 'UTC',
      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t from public.google_ai_usage_counters where model = 'bucket-otpm'`;
    expect(msOf(row!.t)).toBe(T0 + (3 * 50 * 610) / 1000);
    // Two answers of 10 tokens give back 380 of the 400 they booked: the fourth fits at once.
    await finalize(taken[0]!.reservation_id!, 50, 10);
    await finalize(taken[1]!.reservation_id!, 50, 10);
    expect((await admit(T0, "bucket-otpm", 50, 200)).ok).toBe(true);
    const [attempts] = await db.sql`select count(*)::int as n, sum(booked_output_tokens)::int as booked
      from public.google_ai_attempts where model = 'bucket-otpm' and status <> 'refused'`;
    expect(attempts).toEqual({ n: 4, booked: 800 });
  });

  it("leaves cache reads out of ITPM unless the row counts them, and a release gives everything back", async () => {
    await model("bucket-itpm", { itpm: 1000, otpm: 100_000 });
    await model("bucket-itpm-reads", { itpm: 1000, otpm: 100_000, cacheReads: true });
    for (const [name, fits] of [["bucket-itpm", true], ["bucket-itpm-reads", false]] as const) {
      const a = await admit(T0, name, 600, 10);
      expect(a.ok).toBe(true);
      expect((await admit(T0, name, 600, 10)).ok).toBe(false);
      // 600 input, of which 500 read from the cache.
      await finalize(a.reservation_id!, 600, 10, 500);
      expect((await admit(T0, name, 600, 10)).ok, name).toBe(fits);
    }
    await model("bucket-release", { itpm: 1000, otpm: 100_000 });
    const a = await admit(T0, "bucket-release", 900, 10);
    await db.sql`select public.google_ai_release(${a.reservation_id!}::uuid)`;
    expect((await admit(T0, "bucket-release", 900, 10)).ok).toBe(true);
  });

  it("a request larger than its bucket goes when the bucket is full, never before", async () => {
    await model("bucket-large", { itpm: 100_000, otpm: 200, share: 0.5 });
    expect((await admit(T0, "bucket-large", 10, 150)).ok).toBe(true);
    const next = await admit(T0, "bucket-large", 10, 150);
    expect(refusal(next)).toEqual({ limit: "tpm", cause: "spread", retryAt: T0 + Math.ceil((150 * WINDOW_US) / 200) / 1000 });
    expect((await admit(refusal(next).retryAt!, "bucket-large", 10, 150)).ok).toBe(true);
  });

  it("rows of one pool share one set of counts: their requests together are held to the limit", async () => {
    for (const name of ["pool-a", "pool-b"]) {
      await db.sql`insert into public.google_ai_model_limits (model, rpm, otpm, booked_output_tokens, limit_pool)
                   values (${name}, 3, 1000, 4096, 'pool-ab')`;
    }
    const a = await admit(T0, "pool-a", 10, 100);
    expect((await admit(T0, "pool-a", 10, 100)).ok).toBe(true);
    expect((await admit(T0, "pool-b", 10, 100)).ok).toBe(true);
    expect(await admit(T0, "pool-b", 10, 100)).toMatchObject({ ok: false, limit: "rpm" });
    expect(await admit(T0, "pool-a", 10, 100)).toMatchObject({ ok: false, limit: "rpm" });
    const rows = await db.sql`select model, window_requests from public.google_ai_usage_counters
                              where model in ('pool-a', 'pool-b', 'pool-ab')`;
    expect(rows).toEqual([{ model: "pool-ab", window_requests: 3 }]);
    // Settled on the pool's row: a release gives the request back to either model.
    await db.sql`select public.google_ai_release(${a.reservation_id!}::uuid)`;
    expect((await admit(T0, "pool-b", 10, 100)).ok).toBe(true);
  });

  it("a request the token bucket holds waits in line for the refill, and is served when it comes", async () => {
    await model("bucket-wait", { itpm: 100_000, otpm: 610 });
    for (let i = 0; i < 3; i++) expect((await admit(T0, "bucket-wait", 50, 200)).ok).toBe(true);
    const waiting = await admit(T0, "bucket-wait", 50, 200, { leftMs: 60_000 });
    expect(waiting.ok).toBe(false);
    const expected = msOf(waiting.queue!.expected_at);
    expect(expected).toBeGreaterThanOrEqual(T0 + 19_000);
    const served = await admit(expected, "bucket-wait", 50, 200, { leftMs: 60_000, ticket: waiting.queue!.ticket });
    expect(served.ok).toBe(true);
  });
});

describe("what the quota reads show of a model whose limits are token buckets", () => {
  it("the quota report and the group's room give what its ITPM and OTPM buckets hold, and when they are full", async () => {
    // ITPM 1000 (a token every 61 ms), OTPM 610 (one every 100 ms); 100 in and 200 out booked at T0.
    await model("room-buckets", { itpm: 1000, otpm: 610 });
    expect((await admit(T0, "room-buckets", 100, 200)).ok).toBe(true);
    const [row] = await db.sql<{ q: Record<string, Record<string, unknown>> }[]>`
      select public.google_ai_model_quota('room-buckets', ${iso(T0)}::text::timestamptz) as q`;
    expect(row!.q.limits).toEqual({ rpm: null, tpm: null, rpd: null, itpm: 1000, otpm: 610 });
    expect(row!.q.minute).toEqual({ requests_left: null, requests_reset_ms: null, tokens_left: null,
      tokens_reset_ms: null, input_tokens_left: 900, input_tokens_reset_ms: 6_100, output_tokens_left: 410,
      output_tokens_reset_ms: 20_000 });
    // Half the output's refill later: 100 tokens more in OTPM.
    const [later] = await db.sql<{ q: Record<string, Record<string, unknown>> }[]>`
      select public.google_ai_model_quota('room-buckets', ${iso(T0 + 10_000)}::text::timestamptz) as q`;
    expect(later!.q.minute).toMatchObject({ input_tokens_left: 1000, input_tokens_reset_ms: 0, output_tokens_left: 510,
      output_tokens_reset_ms: 10_000 });
  });

  it("google_ai_group_room and the usage view give the buckets' room now, 0 while a cooldown rests the group", async () => {
    await model("room-now", { itpm: 1000, otpm: 610 });
    expect((await admit(Date.now(), "room-now", 100, 200)).ok).toBe(true);
    const [room] = await db.sql<{ input_tokens_left: string; output_tokens_left: string; tokens_left: string | null }[]>`
      select input_tokens_left, output_tokens_left, tokens_left from public.google_ai_group_room('proj-b', 'room-now')`;
    // A little refilled since (a token every 61 ms in, 100 ms out): at most a few seconds' worth.
    expect(Number(room!.input_tokens_left)).toBeGreaterThanOrEqual(900);
    expect(Number(room!.input_tokens_left)).toBeLessThan(1000);
    expect(Number(room!.output_tokens_left)).toBeGreaterThanOrEqual(410);
    expect(Number(room!.output_tokens_left)).toBeLessThan(610);
    expect(room!.tokens_left).toBeNull();
    const [view] = await db.sql`select itpm_left::int, otpm_left::int from public.google_ai_usage_now
                                where model = 'room-now'`;
    expect(view!.itpm_left).toBeGreaterThanOrEqual(900);
    await db.sql`select public.google_ai_cooldown('proj-b', 'room-now', now() + interval '1 minute')`;
    const [rested] = await db.sql`select input_tokens_left::int, output_tokens_left::int
                                  from public.google_ai_group_room('proj-b', 'room-now')`;
    expect(rested).toEqual({ input_tokens_left: 0, output_tokens_left: 0 });
  });
});

describe("a rate's 429 for a model of a pool", () => {
  it("rests every active model of the pool in the quota group, and no other", async () => {
    for (const [name, pool, active] of [["rest-a", "pool-rest", true], ["rest-b", "pool-rest", true],
      ["rest-old", "pool-rest", false], ["rest-alone", null, true]] as const) {
      await db.sql`insert into public.google_ai_model_limits (model, rpm, otpm, booked_output_tokens, limit_pool, is_active)
                   values (${name}, 50, 8000, 4096, ${pool}, ${active})`;
    }
    const now = Date.now();
    const a = await admit(now, "rest-a", 10, 100);
    expect(a.ok).toBe(true);
    await db.sql`select public.google_ai_finalize(${a.reservation_id!}::uuid, jsonb_build_object(
      'kind', 'upstream_error', 'http_status', 429, 'quota_cause', 'minute',
      'cooldown_until', now() + interval '30 seconds'))`;
    const rests = await db.sql`select model, cause from public.google_ai_cooldowns
                               where model like 'rest-%' order by model`;
    expect(rests).toEqual([{ model: "rest-a", cause: "minute" }, { model: "rest-b", cause: "minute" }]);
    expect(await admit(now + 1, "rest-b", 10, 100)).toMatchObject({ ok: false, limit: "cooldown" });
    expect((await admit(now + 1, "rest-alone", 10, 100)).ok).toBe(true);
  });
});

describe("a request no bucket of its model can ever hold", () => {
  it("is refused too_large at once, waiting or not: input above ITPM, or an answer above OTPM", async () => {
    await model("large-buckets", { itpm: 1000, otpm: 500, share: 0.5 });
    const input = await admit(T0, "large-buckets", 1001, 10, { leftMs: 60_000 });
    expect(input).toMatchObject({ ok: false, limit: "too_large", max_tokens: 1000, max_output_tokens: 500 });
    expect(input.queue).toBeUndefined();
    expect(await admit(T0, "large-buckets", 100, 501)).toMatchObject({ ok: false, limit: "too_large" });
    // A minute's worth of each fits (a bucket larger than its share takes it when full).
    expect((await admit(T0, "large-buckets", 1000, 500)).ok).toBe(true);
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_attempts
                                 where model = 'large-buckets' and status = 'refused' and limit_hit = 'too_large'`;
    expect(n).toBe(2);
  });
});

describe("the queue's estimate for a model whose limits are buckets", () => {
  it("counts on the request bucket's burst, not spread_burst: a waiter expects the next refill", async () => {
    // RPM 30, a tenth held: a bucket of 3 (spread_burst 1 on the row, which a bucket does not read).
    await model("bucket-queue", { rpm: 30, share: 0.1 });
    const step = Math.ceil(WINDOW_US / 30) / 1000;
    for (let i = 0; i < 3; i++) expect((await admit(T0, "bucket-queue", 10)).ok).toBe(true);
    const waiting = await admit(T0, "bucket-queue", 10, null, { leftMs: 60_000 });
    expect(waiting).toMatchObject({ ok: false, limit: "rpm", cause: "spread" });
    expect(msOf(waiting.queue!.expected_at)).toBe(T0 + step);
  });
});
