// The sliding window as a ring of seconds (google_ai_ring_at), driven on a real PostgreSQL against a
// log of every admission kept here: random admissions to the microsecond, releases and Google's token
// counts, read back at random moments. The ring never lets an admission go before the guarded window
// after it (the window's exactness on Google's clock), never holds one more than a second longer, is
// exact when a second holds at most two admissions, and keeps that through a change of the guard.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { iso } from "../support/microseconds.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");

beforeAll(async () => {
  db = await freshDatabase("window_ring");
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Ring {
  low: string | null;
  ring: number[] | null;
  requests: number;
  tokens: number;
}

interface Admission {
  at: number;
  tokens: number;
  released: boolean;
}

/** A seeded generator, so a failure repeats. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

// Moved on to atMs with requests and tokens counted now (google_ai_ring_at), or, given admittedMs, not
// moved and corrected in the second of that admission (google_ai_ring_counted).
async function ringAt(r: Ring, atMs: number | null, windowMs: number, requests = 0, tokens = 0,
  admittedMs: number | null = null): Promise<Ring> {
  const window = `${windowMs} milliseconds`;
  const [row] = await db.sql<{ low: string | null; ring: number[] | null; requests: number; tokens: string }[]>`
    select (x.r).ring_low::text as low, (x.r).ring as ring, (x.r).sum_requests as requests,
           (x.r).sum_tokens::text as tokens
    from (select ${admittedMs === null
      ? db.sql`public.google_ai_ring_at(${atMs === null ? null : iso(atMs)}::text::timestamptz, ${window}::interval,
          ${r.low}::bigint, ${r.ring}::integer[], ${r.requests}::integer, ${r.tokens}::bigint, ${requests}::integer,
          ${tokens}::integer)`
      : db.sql`public.google_ai_ring_counted(row(${r.low}::bigint, ${r.ring}::integer[], ${r.requests}::integer,
          ${r.tokens}::bigint)::public.google_ai_ring, ${window}::interval, ${iso(admittedMs)}::text::timestamptz,
          ${requests}::integer, ${tokens}::integer, true)`} as r) x`;
  return { low: row!.low, ring: row!.ring, requests: row!.requests, tokens: Number(row!.tokens) };
}

const empty = (): Ring => ({ low: null, ring: null, requests: 0, tokens: 0 });
const inWindow = (log: Admission[], at: number, windowMs: number, lateMs = 0) =>
  log.filter((a) => !a.released && a.at + windowMs + lateMs > at);

describe("the window as a ring of seconds", () => {
  it("never lets an admission go early and holds none more than a second late, through releases and Google's counts", async () => {
    const next = random(20261125);
    const W = 61_000;
    let ring = empty();
    const log: Admission[] = [];
    let at = T0;
    let checks = 0;
    for (let step = 0; step < 700; step++) {
      // Bursts and lulls: several admissions in one second, then gaps of up to a window and more.
      at += next() < 0.7 ? Math.floor(next() * 400_000) / 1000 : Math.floor(next() * 70_000_000) / 1000;
      const op = next();
      if (op < 0.75) {
        const tokens = 1 + Math.floor(next() * 50);
        ring = await ringAt(ring, at, W, 1, tokens);
        log.push({ at, tokens, released: false });
      } else if (op < 0.85 && log.length > 0) {
        // A release (the call never reached Google), of a recent admission.
        const a = log[Math.max(0, log.length - 1 - Math.floor(next() * 5))]!;
        if (!a.released) {
          ring = await ringAt(ring, null, W, -1, -a.tokens, a.at);
          a.released = true;
        }
      } else if (log.length > 0) {
        // Google's count of a recent admission's tokens.
        const a = log[Math.max(0, log.length - 1 - Math.floor(next() * 5))]!;
        if (!a.released) {
          const counted = Math.floor(next() * 60);
          ring = await ringAt(ring, null, W, 0, counted - a.tokens, a.at);
          a.tokens = counted;
        }
      }
      // Read at a moment a little later (not kept: a read does not move the stored ring).
      const readAt = at + Math.floor(next() * 3_000);
      const read = await ringAt(ring, readAt, W);
      const live = inWindow(log, readAt, W);
      expect(read.requests).toBeGreaterThanOrEqual(live.length);
      expect(read.tokens).toBeGreaterThanOrEqual(live.reduce((s, a) => s + a.tokens, 0));
      // At most a second late: what a second later would have left (a release that came after its
      // second's first had left is given back with the second).
      const late = log.filter((a) => a.at + W + 1000 > readAt);
      expect(read.requests).toBeLessThanOrEqual(late.length);
      checks++;
    }
    expect(checks).toBe(700);
    expect(log.filter((a) => !a.released).length).toBeGreaterThan(400);
  }, 60_000);

  it("is exact when no second holds more than two admissions", async () => {
    const next = random(7);
    const W = 61_000;
    let ring = empty();
    const log: Admission[] = [];
    let at = T0 + 0.25;
    for (let step = 0; step < 400; step++) {
      // Two at most in a second: a step of at least half a second.
      at += 500 + Math.floor(next() * 2_500_000) / 1000;
      ring = await ringAt(ring, at, W, 1, 10);
      log.push({ at, tokens: 10, released: false });
      const readAt = at + Math.floor(next() * 2_000_000) / 1000;
      const read = await ringAt(ring, readAt, W);
      expect(read.requests).toBe(inWindow(log, readAt, W).length);
    }
  }, 60_000);

  it("keeps what is in the window when the guard changes, and lets go what a shorter guard no longer holds", async () => {
    let ring = empty();
    const log: Admission[] = [];
    let at = T0;
    for (let i = 0; i < 90; i++) {
      at += 700;
      ring = await ringAt(ring, at, 61_000, 1, 5);
      log.push({ at, tokens: 5, released: false });
    }
    // A longer guard (62 s): the admissions still in the 61 s window are all there.
    const longer = await ringAt(ring, at + 10, 62_000);
    expect(longer.requests).toBe(inWindow(log, at + 10, 61_000).length);
    expect(longer.ring).toHaveLength(4 * 63);
    // Back to no guard (60 s): only what the 60 s window holds, never less.
    const shorter = await ringAt(longer, at + 20, 60_000);
    expect(shorter.requests).toBe(inWindow(log, at + 20, 60_000).length);
    expect(shorter.ring).toHaveLength(4 * 61);
  });
});
