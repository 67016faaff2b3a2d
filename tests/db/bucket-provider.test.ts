// A bucket as Anthropic keeps it: the admission kernel (google_ai_reserve_models_at, finalize) against
// the Anthropic simulator's own buckets (shared/anthropic-sim/buckets.ts), on one injected clock, so a
// minute of traffic takes a second of the suite. Every admission reaches the simulator a little later
// (a network delay drawn within the guard), is answered after a latency, and its answer's
// anthropic-ratelimit-* headers are finalized as llm-invoke reads them (roomOf, roomUntil).
//   A bucket of one refilled every 10 s (RPM 6, the row's bucket_share 1/6 as docs/anthropic.md says):
//   NO_WAIT every 0.5 s for 40 s is served 1 + floor(elapsed / step) (±1), with no 429 from Anthropic,
//   no two admissions closer than the step; 4 WAIT callers at once with a minute's wait are all served,
//   no 429; the same for a bucket of one request's input (ITPM) and one of its answer (OTPM).
//   A burst of 6 at RPM 6 with a bucket of 6: the 7th goes about a step after the burst (within 11 s of
//   the 6th), not after a minute's rest. An organization's bucket another user drained: the answer's
//   headers take the gateway's bucket down to Anthropic's, and no 429 follows.
//   A refusal of the window always says when: a rest that began after the request's place was read
//   gives a WAIT caller a ticket for its end; where nothing names a time, a second.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BucketTracker } from "../../shared/anthropic-sim/buckets.ts";
import type { BucketSizes, PoolLimits } from "../../shared/anthropic-sim/config.ts";
import { roomOf } from "../../supabase/functions/_shared/providers/anthropic/errors.ts";
import { roomUntil } from "../../supabase/functions/llm-invoke/attempt/room.ts";
import { iso, msOf } from "../support/microseconds.ts";
import type { ReserveAnswer as Answer } from "../support/reserve-answer.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
const WINDOW_MS = 61_000; // 60 s + the default minute guard
/** Upstream: the time from admission to arrival (at most this, within the guard), and the answer's. */
const MAX_DELAY_MS = 100;
const LATENCY_MS = 2_000; // a short answer of Claude's
const INPUT = 60;
const ANSWER = 20;

beforeAll(async () => {
  db = await oneKeyDatabase("bucket_provider", { alias: "claude-org", envVar: "ANTHROPIC_KEY_ORG", project: "org-ant" });
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

/** A model row whose limits are buckets, and the same limits at the simulator's organization. */
interface Shape {
  model: string;
  rpm: number;
  itpm: number;
  otpm: number;
  share: number;
  /** The simulator's bucket sizes (Anthropic's capacity). */
  sizes: BucketSizes;
  /** The output tokens each answer writes (of ANSWER booked: the rest goes back to OTPM as it ends). */
  written: number;
}

const FREE_TOKENS = 6_000_000;

/** A pseudo-random delay in [0, MAX_DELAY_MS], the same every run. */
function delays(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return (x / 2_147_483_648) * MAX_DELAY_MS;
  };
}

/**
 * The gateway and Anthropic on one clock from `t0`: callers ask at the times given (NO_WAIT, or WAIT with
 * a minute's wait, asking again at the turn the kernel names); each admission arrives at the simulator
 * after a delay and is answered after the latency, its headers finalized as llm-invoke does.
 */
async function run(shape: Shape, asks: { at: number; waitMs: number }[], outside: number[] = []) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, itpm, otpm, bucket_share, booked_output_tokens,
                 spread_burst)
               values (${shape.model}, ${shape.rpm}, ${shape.itpm}, ${shape.otpm}, ${shape.share}, 4096, 1)`;
  const t0 = Math.ceil(Date.now() / 1000) * 1000 + 5_000; // on the database's clock too (finalize reads it)
  let now = t0;
  const tracker = new BucketTracker(() => now);
  const limits: PoolLimits = { rpm: shape.rpm, itpm: shape.itpm, otpm: shape.otpm };
  const delay = delays(shape.rpm * 7 + shape.itpm + shape.otpm);
  type Event =
    | { at: number; kind: "ask"; caller: number; until: number; ticket?: string }
    | { at: number; kind: "arrive"; caller: number; id: string }
    | { at: number; kind: "answer"; caller: number; id: string; booking: Parameters<BucketTracker["settle"]>[0] }
    | { at: number; kind: "outside"; caller: number };
  const events: Event[] = asks.map((a, caller) => ({ at: t0 + a.at, kind: "ask", caller, until: t0 + a.at + a.waitMs }));
  // Another user of the organization, at Anthropic only (the gateway does not see it).
  for (const at of outside) events.push({ at: t0 + at, kind: "outside", caller: -1 });
  const out = { admitted: [] as number[], served: [] as number[], upstream429: 0, refusals: [] as Answer[] };
  while (events.length > 0) {
    events.sort((a, b) => a.at - b.at || a.caller - b.caller);
    const e = events.shift()!;
    now = e.at;
    if (e.kind === "ask") {
      const leftMs = Math.max(0, Math.floor(e.until - e.at - 100));
      const [row] = await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(e.at)}::text::timestamptz,
        jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [shape.model],
          estimated_tokens: INPUT + ANSWER, caller: `caller-${e.caller}`, priority: "batch", output_tokens: [ANSWER],
          wait_left_ms: leftMs, queue_ticket: e.ticket ?? null })}::text::jsonb)) as r`;
      const a = row!.r;
      if (a.ok) {
        out.admitted.push(e.at - t0);
        events.push({ at: e.at + delay(), kind: "arrive", caller: e.caller, id: a.reservation_id! });
      } else if (a.queue && leftMs > 0) {
        events.push({ at: msOf(a.queue.expected_at), kind: "ask", caller: e.caller, until: e.until, ticket: a.queue.ticket });
      } else {
        out.refusals.push(a);
      }
    } else if (e.kind === "outside") {
      expect(tracker.admit("org-ant", shape.model, limits, shape.sizes, { input: INPUT, output: ANSWER }).ok).toBe(true);
    } else if (e.kind === "arrive") {
      const taken = tracker.admit("org-ant", shape.model, limits, shape.sizes, { input: INPUT, output: ANSWER });
      if (!taken.ok) {
        out.upstream429++;
        await db.sql`select public.google_ai_release(${e.id}::uuid)`;
        continue;
      }
      events.push({ at: e.at + LATENCY_MS, kind: "answer", caller: e.caller, id: e.id, booking: taken.booking });
    } else {
      tracker.settle(e.booking, shape.written);
      const headers = new Headers(tracker.headers("org-ant", shape.model, limits, shape.sizes));
      const room = roomUntil(roomOf(headers, e.at, { input: INPUT, output: ANSWER }), e.at);
      out.served.push(e.at - t0);
      await db.sql`select public.google_ai_finalize(${e.id}::uuid, jsonb_build_object('kind', 'succeeded',
        'input_tokens', ${INPUT}::integer, 'output_tokens', ${shape.written}::integer, 'latency_ms', ${LATENCY_MS}::integer,
        'room_requests', ${room?.requests ?? null}::integer, 'room_tokens', ${room?.tokens ?? null}::integer,
        'room_until', ${room == null ? null : iso(room.until.getTime())}::text::timestamptz))`;
    }
  }
  return out;
}

const every = (ms: number, forMs: number) =>
  Array.from({ length: Math.floor(forMs / ms) + 1 }, (_, i) => ({ at: i * ms, waitMs: 0 }));
const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

/** One request a step: RPM 6, or one request's input (ITPM) or answer (OTPM) a step. */
const SHAPES: Shape[] = [
  { model: "bucket-one-rpm", rpm: 6, itpm: FREE_TOKENS, otpm: FREE_TOKENS, share: 1 / 6,
    sizes: { requests: 1, inputTokens: FREE_TOKENS, outputTokens: FREE_TOKENS }, written: 7 },
  { model: "bucket-one-itpm", rpm: 6_000, itpm: 6 * INPUT, otpm: FREE_TOKENS, share: 1 / 6,
    sizes: { requests: 1_000, inputTokens: INPUT, outputTokens: FREE_TOKENS }, written: 7 },
  { model: "bucket-one-otpm", rpm: 6_000, itpm: FREE_TOKENS, otpm: 6 * ANSWER, share: 1 / 6,
    // Each answer writes all it booked: nothing goes back, the bucket binds one answer a step.
    sizes: { requests: 1_000, inputTokens: FREE_TOKENS, outputTokens: ANSWER }, written: ANSWER },
];

describe("a bucket of one, as Anthropic refills it, against the simulator's buckets", () => {
  for (const shape of SHAPES) {
    const step = WINDOW_MS / 6;

    it(`${shape.model}: NO_WAIT every 0.5 s for 40 s is served one a step, never two within it, no 429`, async () => {
      const out = await run({ ...shape, model: `${shape.model}-nowait` }, every(500, 40_000));
      const expected = 1 + Math.floor(40_000 / step);
      expect(out.upstream429).toBe(0);
      expect(out.served.length).toBeGreaterThanOrEqual(expected - 1);
      expect(out.served.length).toBeLessThanOrEqual(expected + 1);
      // No two within the step, and no rest beyond it: each goes at the first ask after its place.
      for (const gap of gaps(out.admitted)) {
        expect(gap).toBeGreaterThanOrEqual(step);
        expect(gap).toBeLessThanOrEqual(step + 500);
      }
      // Every refusal says when to ask again.
      expect(out.refusals.every((r) => typeof r.retry_after_ms === "number" && r.retry_at !== undefined)).toBe(true);
    });

    it(`${shape.model}: 4 WAIT callers at once with a minute's wait are all served, no 429`, async () => {
      const out = await run({ ...shape, model: `${shape.model}-wait` }, Array(4).fill({ at: 0, waitMs: 60_000 }));
      expect(out.refusals).toEqual([]);
      expect(out.served).toHaveLength(4);
      expect(out.upstream429).toBe(0);
      for (const gap of gaps(out.admitted)) expect(gap).toBeGreaterThanOrEqual(step);
    });
  }
});

describe("a burst as large as the bucket", () => {
  it("RPM 6 with a bucket of 6: six at once, the 7th within 11 s of the 6th, not after a minute's rest", async () => {
    const shape: Shape = { model: "bucket-six", rpm: 6, itpm: FREE_TOKENS, otpm: FREE_TOKENS, share: 1,
      sizes: { requests: 6, inputTokens: FREE_TOKENS, outputTokens: FREE_TOKENS }, written: 7 };
    // Six at once, then one caller asking every 0.5 s.
    const asks = [...Array(6).fill({ at: 0, waitMs: 0 }), ...every(500, 30_000).slice(1)];
    const out = await run(shape, asks);
    expect(out.upstream429).toBe(0);
    expect(out.admitted.slice(0, 6)).toEqual(Array(6).fill(0));
    expect(out.served[6]! - out.served[5]!).toBeLessThan(11_000);
    expect(out.admitted[6]).toBeGreaterThanOrEqual(WINDOW_MS / 6);
    expect(out.admitted[6]).toBeLessThanOrEqual(WINDOW_MS / 6 + 500);
  });
});

describe("an organization's bucket that others use too", () => {
  it("is emptier than the gateway's: its headers rest the model's bucket until Anthropic's holds the next request, no 429", async () => {
    // RPM 6, a bucket of 3 at both; another user takes 2 of Anthropic's at 0 s, the gateway 1.
    const shape: Shape = { model: "bucket-shared", rpm: 6, itpm: FREE_TOKENS, otpm: FREE_TOKENS, share: 0.5,
      sizes: { requests: 3, inputTokens: FREE_TOKENS, outputTokens: FREE_TOKENS }, written: 7 };
    // The gateway's first request, then one asking every 0.5 s once its answer came (2 s).
    const asks = [{ at: 0, waitMs: 0 }, ...every(500, 30_000).filter((a) => a.at > LATENCY_MS + MAX_DELAY_MS)];
    const out = await run(shape, asks, [0, 0]);
    expect(out.upstream429).toBe(0);
    // The gateway's own bucket held two more; Anthropic's none until a refill after its answer: the
    // gateway's bucket was taken down to Anthropic's, its next place then, each later one a step after.
    expect(out.refusals.every((r) => r.limit === "rpm" && r.cause === "spread")).toBe(true);
    expect(out.admitted[1]! - (out.served[0]! + 10_000)).toBeGreaterThanOrEqual(0);
    expect(out.admitted[1]! - (out.served[0]! + 10_000)).toBeLessThanOrEqual(500);
    expect(out.admitted[1]).toBeGreaterThanOrEqual(10_000);
  });
});

describe("a refusal of the window always says when", () => {
  it("a rest that began after the request's place was read: the WAIT caller's turn is when it ends, with a ticket", async () => {
    await db.sql`insert into public.google_ai_model_limits (model, rpm, itpm, otpm, bucket_share, booked_output_tokens)
                 values ('bucket-race', 6, ${FREE_TOKENS}, ${FREE_TOKENS}, 1, 4096)`;
    const now = Math.ceil(Date.now() / 1000) * 1000 + 5_000;
    await db.sql`select public.google_ai_cooldown('org-ant', 'bucket-race', ${iso(now + 8_000)}::text::timestamptz)`;
    // The queue held the request for the spread (no booking asked), then every group was resting.
    const [row] = await db.sql<{ w: { answer: Answer | null; expected: string | null } }[]>`
      select to_jsonb(w) as w from public.google_ai_queue_wait(p_now => ${iso(now)}::text::timestamptz,
        p_request => row('bucket-race', 'caller-race', null, null, null, null, 1, 80, null, 0, 60000, '{}', null,
          '{}', null, false, 1, null, null, null)::public.google_ai_request,
        p_limits => public.google_ai_request_limits('bucket-race'),
        p_class => (select pc from public.google_ai_priority_classes pc where pc.name = 'batch'),
        p_refusal => row('rpm', 'spread', null, null, false, null, null, null, null, gen_random_uuid(),
          null)::public.google_ai_refusal) w`;
    expect(row!.w.answer).toMatchObject({ ok: false, limit: "rpm", cause: "spread", retry_after_ms: 8_000 });
    expect(row!.w.answer!.queue).toBeDefined();
  });

  it("where nothing names a time (no group offered a turn, no booking asked): in a second", async () => {
    const now = Math.ceil(Date.now() / 1000) * 1000 + 5_000;
    const [row] = await db.sql<{ r: Answer }[]>`select (public.google_ai_refusal_at(
      p_now => ${iso(now)}::text::timestamptz,
      p_request => row('bucket-race', 'caller-none', null, null, null, null, 1, 80, null, 0, 0, '{}', null, '{}',
        null, false, 1, null, null, null)::public.google_ai_request,
      p_limits => (select m from public.google_ai_model_limits m where m.model = 'bucket-race'),
      p_class => (select pc from public.google_ai_priority_classes pc where pc.name = 'batch'),
      p_refusal => row('rpm', 'spread', null, null, false, null, null, null, null, gen_random_uuid(),
        null)::public.google_ai_refusal)).answer as r`;
    expect(row!.r).toMatchObject({ ok: false, limit: "rpm", retry_after_ms: 1_000 });
  });
});
