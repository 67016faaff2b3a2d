// Anthropic's limits as rows, through Anthropic's TypeScript SDK (pinned) at the gateway, against the
// Anthropic simulator, whose buckets refill continuously as Anthropic's do. Each model row says its
// limits' shape (bucket_share), its ITPM and its OTPM; the simulator's organization holds the same:
//   a bucket smaller than the minute's RPM (a simulator setting): 8 callers × 40 NO_WAIT are served
//   exactly what the bucket allows, and Anthropic answers no 429; the same burst on a row that says
//   nothing of the bucket meets Anthropic's 429s (the control: the simulator's bucket does bind);
//   WAIT callers are all served as the bucket refills, still with no 429;
//   a burst as large as the bucket: the next request a step later, not after a minute's rest;
//   OTPM binds first (max_tokens booked on arrival): exactly what OTPM allows is served, no 429.
// Every 429 of the gateway says when to retry (Retry-After, retry_after_ms).
// Real functions, real PostgreSQL.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type InvokeStack, startClaudeStack } from "./llm-invoke-helpers.ts";

const KEY = "sk-ant-sim-buckets-0123456789";
const HAIKU = "claude-haiku-4-5-20251001";
const OPUS = "claude-opus-4-5-20251101";
const SONNET = "claude-sonnet-4-5-20250929";
/** Far above the rows': only a pool a test names binds at Anthropic. */
const FREE = { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 };
const WINDOW_MS = 61_000; // the gateway's guarded minute

let s: InvokeStack;
let sim: AnthropicSimulator;
let client: Anthropic;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_anthropic_buckets", {
    simulator: {
      // An answer takes a while: a burst's admissions are all decided before any answer gives its
      // unused output back or its headers rest the model (google_ai_settle_call).
      latencyMs: 2_000,
      organizations: { "org-ant": { keys: [KEY], limits: { "sonnet-4": FREE, "haiku-4-5": FREE, "opus-4": FREE } } },
    },
    claude: [{ name: "MAIN", secret: KEY, org: "org-ant" }],
  }));
  client = new Anthropic({ baseURL: s.url, apiKey: s.serviceKey, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  sim.setOrganizations({ "org-ant": { keys: [KEY], limits: { "sonnet-4": FREE, "haiku-4-5": FREE, "opus-4": FREE } } });
});

/** One pool's limits at Anthropic (the others free). */
function anthropicHolds(pool: string, limits: Record<string, unknown>) {
  sim.setOrganizations({ "org-ant": { keys: [KEY], limits: { "sonnet-4": FREE, "haiku-4-5": FREE, "opus-4": FREE, [pool]: limits } } });
}

async function row(model: string, l: { rpm: number; itpm: number; otpm: number; share: number | null }) {
  await s.sql`update public.google_ai_model_limits set rpm = ${l.rpm}, tpm = null, itpm = ${l.itpm}, otpm = ${l.otpm},
                bucket_share = ${l.share} where model = ${model}`;
}

/** A gateway's 429 as the SDK raised it: its Retry-After header and its body's retry_after_ms. */
interface Refused {
  retryAfter: string | null;
  retryAfterMs: unknown;
}

/**
 * callers × calls, each call NO_WAIT (or WAIT), through the SDK; the statuses, the 429s' times to retry,
 * and how long it took.
 */
async function burst(model: string, callers: number, calls: number, maxTokens: number, mode: "NO_WAIT" | "WAIT") {
  const statuses: number[] = [];
  const refused: Refused[] = [];
  const started = Date.now();
  const headers = { "x-eve-mode": mode, "x-eve-max-wait-ms": "60000" };
  await Promise.all(Array.from({ length: callers }, async (_, w) => {
    for (let i = 0; i < calls; i++) {
      const status = await client.messages.create(
        { model, max_tokens: maxTokens, messages: [{ role: "user", content: `burst ${w}-${i}` }] }, { headers })
        .then(() => 200, (e: unknown) => {
          if (!(e instanceof Anthropic.APIError)) return -1;
          if (e.status === 429) {
            const body = e.error as { error?: { retry_after_ms?: unknown } } | undefined;
            refused.push({ retryAfter: e.headers?.get("retry-after") ?? null, retryAfterMs: body?.error?.retry_after_ms });
          }
          return e.status ?? 0;
        });
      statuses.push(status);
    }
  }));
  return { statuses, refused, served: statuses.filter((x) => x === 200).length, elapsedMs: Date.now() - started };
}

/** Every 429 of the gateway says when to retry: Retry-After in whole seconds, retry_after_ms in its body. */
function everyRefusalSaysWhen(refused: Refused[]) {
  for (const r of refused) {
    expect(r.retryAfter).toMatch(/^[1-9]\d*$/);
    expect(typeof r.retryAfterMs).toBe("number");
  }
}

describe("Anthropic's buckets as rows", () => {
  it("a bucket below the minute's RPM: 8 callers × 40 NO_WAIT get exactly what it allows, and no 429 from Anthropic", async () => {
    // RPM 6, a bucket of 3 at Anthropic (its capacity, unpublished, is a row setting here: half the minute).
    anthropicHolds("haiku-4-5", { rpm: 6, itpm: 1_000_000, otpm: 1_000_000, capacity: { requests: 3 } });
    await row(HAIKU, { rpm: 6, itpm: 1_000_000, otpm: 1_000_000, share: 0.5 });
    const run = await burst(HAIKU, 8, 40, 20, "NO_WAIT");
    // Three at once, then one per 61 s / 6 as it refills (a run under a step: exactly three).
    const allowed = 3 + Math.floor(run.elapsedMs / (WINDOW_MS / 6));
    expect(run.served).toBeGreaterThanOrEqual(3);
    expect(run.served).toBeLessThanOrEqual(allowed);
    if (run.elapsedMs < WINDOW_MS / 6) expect(run.served).toBe(3);
    expect(run.statuses.filter((x) => x !== 200 && x !== 429)).toEqual([]);
    expect(sim.stats().total.byStatus["429"] ?? 0).toBe(0);
    expect(sim.stats().byModel[HAIKU]?.received).toBe(run.served);
    expect(run.refused.length).toBe(run.statuses.length - run.served);
    everyRefusalSaysWhen(run.refused);
  }, 180_000);

  it("the control: a row that keeps only the minute sends the burst Anthropic's smaller bucket refuses", async () => {
    anthropicHolds("haiku-4-5", { rpm: 6, itpm: 1_000_000, otpm: 1_000_000, capacity: { requests: 3 } });
    await row(HAIKU, { rpm: 6, itpm: 1_000_000, otpm: 1_000_000, share: null });
    await Promise.all(Array.from({ length: 6 }, (_, i) =>
      client.messages.create({ model: HAIKU, max_tokens: 20, messages: [{ role: "user", content: `control ${i}` }] },
        { headers: { "x-eve-mode": "NO_WAIT" } }).catch(() => null)));
    expect(sim.stats().total.byStatus["429"] ?? 0).toBeGreaterThan(0);
  }, 60_000);

  it("WAIT callers are all served as the bucket refills, and Anthropic answers no 429", async () => {
    // RPM 12, a bucket of 3: three at once, then one per 61 s / 12.
    anthropicHolds("opus-4", { rpm: 12, itpm: 1_000_000, otpm: 1_000_000, capacity: { requests: 3 } });
    await row(OPUS, { rpm: 12, itpm: 1_000_000, otpm: 1_000_000, share: 0.25 });
    const run = await burst(OPUS, 6, 1, 20, "WAIT");
    expect(run.statuses).toEqual(Array(6).fill(200));
    everyRefusalSaysWhen(run.refused);
    // The last three each waited for a step of the refill.
    expect(run.elapsedMs).toBeGreaterThanOrEqual(3 * (WINDOW_MS / 12) - 1_000);
    expect(sim.stats().total.byStatus["429"] ?? 0).toBe(0);
  }, 120_000);

  it("a burst as large as the bucket (6 at RPM 6): the 7th, waiting, is served a step later, not after a minute's rest", async () => {
    anthropicHolds("haiku-4-5", { rpm: 6, itpm: 1_000_000, otpm: 1_000_000 });
    await row(HAIKU, { rpm: 6, itpm: 1_000_000, otpm: 1_000_000, share: 1 });
    const first = await burst(HAIKU, 6, 1, 20, "NO_WAIT");
    expect(first.statuses).toEqual(Array(6).fill(200));
    const sixth = Date.now();
    // The answers said Anthropic's bucket was empty: it holds the next request a refill later, when the
    // gateway's own bucket does too; no minute's rest.
    const seventh = await burst(HAIKU, 1, 1, 20, "WAIT");
    expect(seventh.statuses).toEqual([200]);
    expect(Date.now() - sixth).toBeLessThan(11_000);
    expect(sim.stats().total.byStatus["429"] ?? 0).toBe(0);
    expect(await s.sql`select reason from public.google_ai_cooldowns where model = ${HAIKU}`).toEqual([]);
  }, 60_000);

  it("OTPM binds first: max_tokens booked on arrival serves exactly what OTPM allows, and no 429 from Anthropic", async () => {
    // RPM and ITPM far above the burst; OTPM 600 with a bucket of a whole minute: three answers of 200.
    anthropicHolds("sonnet-4", { rpm: 1_000, itpm: 1_000_000, otpm: 600 });
    await row(SONNET, { rpm: 1_000, itpm: 1_000_000, otpm: 600, share: 1 });
    const run = await burst(SONNET, 8, 1, 200, "NO_WAIT");
    expect(run.served).toBe(3);
    expect(run.statuses.filter((x) => x !== 200 && x !== 429)).toEqual([]);
    expect(sim.stats().total.byStatus["429"] ?? 0).toBe(0);
    // Each answer's unused output went back to the bucket when it ended (the simulator's answers are short).
    const [attempts] = await s.sql`select count(*)::int as n, sum(booked_output_tokens)::int as booked,
      sum(output_tokens)::int as used from public.google_ai_attempts where model = ${SONNET} and status = 'succeeded'`;
    expect(attempts).toMatchObject({ n: 3, booked: 600 });
    expect(attempts!.used).toBeLessThan(600);
  }, 60_000);
});
