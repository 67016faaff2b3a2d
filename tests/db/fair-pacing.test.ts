// Fair under pacing, on a real PostgreSQL with the clock injected: on a spread model whose interactive
// class keeps part of the window, one Kaggle client's backlog never costs another client's requests
// their turns. Driven as llm-invoke drives WAIT callers (tests/support/wait-callers.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fairTurnBreaches } from "../../shared/fair-turns.ts";
import { seededRandom } from "../../shared/sim-core/arrival.ts";
import { mintToken, sha256 } from "../../shared/db/scoped-token.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { driveWaitCallers, mostInWindow } from "../support/wait-callers.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");
const WINDOW_MS = 61_000; // 60 s + the default minute guard

beforeAll(async () => {
  db = await freshDatabase("fair_pacing");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
               values ('p1', 'KEY_P1', 'proj-p', 1)`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

/** A spread model (burst 1) of `rpm` whose interactive class keeps its default share (20%, at least 1). */
async function pacedModel(name: string, rpm: number) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, spread_burst)
               values (${name}, ${rpm}, null, null, 1)`;
  const [{ kept }] = await db.sql<{ kept: number }[]>`
    select reserved_rpm as kept from public.google_ai_quota_shares where model = ${name} and priority_class = 'interactive'`;
  return kept;
}

describe("one client's backlog on a paced model with a kept share", () => {
  for (const wakeDelayMs of [0, 40]) {
    it(`16 requests of A, then 2 of B: B's both admitted within their wait, one per window (waking ${wakeDelayMs} ms late)`, async () => {
      const model = `paced-ab-${wakeDelayMs}`;
      expect(await pacedModel(model, 4)).toBe(1); // batch books 3 a window
      const a = await mintToken(db.sql, `kaggle-a-${wakeDelayMs}`, { models: [model] });
      const b = await mintToken(db.sql, `kaggle-b-${wakeDelayMs}`, { models: [model] });
      const sentA = T0 + 10_000;
      const sentB = T0 + 12_000;
      const requests = [
        ...Array.from({ length: 16 }, () => ({ caller: "A", tokenHash: sha256(a.token), sentAt: sentA, maxWaitMs: 125_000 })),
        ...Array.from({ length: 2 }, () => ({ caller: "B", tokenHash: sha256(b.token), sentAt: sentB, maxWaitMs: 125_000 })),
      ];
      const outcomes = await driveWaitCallers(db.sql, model, requests, { wakeDelayMs });
      // The window A's burst opened is the first; each later one starts a window after it.
      const windowOf = (t: number) => Math.floor((t - sentA) / WINDOW_MS) + 1;
      const windows = (caller: string) => outcomes.filter((o) => o.caller === caller)
        .map((o) => (o.admittedAt === undefined ? "refused" : windowOf(o.admittedAt)));

      // The turns after A's burst alternate, A, B, A, B: B's first takes the second slot of the second
      // window, its second the first of the third, within its wait. A's others are refused: 9 at once
      // (their turns lay beyond their wait), 2 when B's turns moved theirs beyond it.
      expect(windows("B")).toEqual([2, 3]);
      expect(outcomes.filter((o) => o.caller === "B").every((o) => o.admittedAt! <= o.sentAt + o.maxWaitMs)).toBe(true);
      expect(windows("A")).toEqual([1, 1, 1, 2, 2, ...Array(11).fill("refused")]);
      expect(outcomes.filter((o) => o.refusedAt !== undefined && o.queuedAt === undefined)).toHaveLength(9);
      // Never over the limit: 4 in any window, of them 3 for batch.
      const admitted = outcomes.flatMap((o) => (o.admittedAt === undefined ? [] : [o.admittedAt]));
      expect(mostInWindow(admitted, WINDOW_MS)).toBeLessThanOrEqual(3);
      const [{ n }] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from public.google_ai_attempts where model = ${model} and status = 'reserved'`;
      expect(n).toBe(admitted.length);
    });
  }
});

const SEEDS = 40;

/**
 * One seed: a spread model of a random RPM (its interactive class keeping its default share), 2 to 5
 * clients of batch, each sending a backlog of 1 to 50 WAIT requests at once at a random moment of the
 * first 20 s, each waiting 15 to 125 s, all waking up to 50 ms late. Answers what broke, if anything.
 */
async function fairSeed(seed: number): Promise<{ failure?: string; queued: number; calls: number }> {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const rpm = pick([4, 5, 6, 10, 15]);
  const model = `paced-seed-${seed}`;
  const kept = await pacedModel(model, rpm);
  const clients = 2 + Math.floor(random() * 4);
  const requests = Array.from({ length: clients }, (_, c) => {
    const backlog = 1 + Math.floor(random() * 50);
    const sentAt = T0 + Math.round(random() * 20_000);
    const maxWaitMs = 15_000 + Math.round(random() * 110_000);
    return Array.from({ length: backlog }, () => ({ caller: `client:c${c}`, priority: "batch", sentAt, maxWaitMs }));
  }).flat();
  const outcomes = await driveWaitCallers(db.sql, model, requests, { wakeDelayMs: Math.floor(random() * 50) });

  const { breaches } = fairTurnBreaches(outcomes.map((o) => ({ ...o, priority: "batch", endedAt: o.admittedAt ?? o.refusedAt })));
  const admitted = outcomes.flatMap((o) => (o.admittedAt === undefined ? [] : [o.admittedAt]));
  const most = mostInWindow(admitted, WINDOW_MS);
  const [{ n }] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from public.google_ai_attempts where model = ${model} and status = 'reserved'`;
  const failure = breaches.length > 0 || most > rpm - kept || n !== admitted.length
    ? `seed ${seed} (rpm ${rpm}, ${clients} clients): most in a window ${most} of ${rpm - kept}, ` +
      `${n} booked for ${admitted.length}; ${JSON.stringify(breaches)}`
    : undefined;
  return { failure, queued: outcomes.filter((o) => o.queuedAt !== undefined).length,
    calls: outcomes.reduce((sum, o) => sum + o.calls, 0) };
}

describe("per-client fairness on a paced model with a kept share, over many seeds", () => {
  it(`${SEEDS} seeds: while a client waits, no other client of its class is admitted more than once more than it; never over the limit`, async () => {
    // (Each seed has a model of its own: four run at once, on connections of their own.)
    const results: Awaited<ReturnType<typeof fairSeed>>[] = [];
    for (let first = 1; first <= SEEDS; first += 4) {
      const seeds = Array.from({ length: Math.min(4, SEEDS - first + 1) }, (_, i) => first + i);
      results.push(...await Promise.all(seeds.map(fairSeed)));
    }
    expect(results.flatMap((r) => (r.failure ? [r.failure] : []))).toEqual([]);
    // The seeds did queue: the property was put to the test.
    expect(results.filter((r) => r.queued > 0).length).toBeGreaterThanOrEqual(SEEDS * 0.9);
    console.log(`${SEEDS} seeds: ${results.reduce((s, r) => s + r.queued, 0)} requests queued, ` +
      `${results.reduce((s, r) => s + r.calls, 0)} calls`);
  }, 120_000);
});
