// Limits as the provider states them, over HTTP with the real function as Supabase's Edge Runtime runs
// it, PostgreSQL and the OpenAI and Anthropic simulators, whose organizations' limits change mid-run
// (/__sim/organizations; their clocks held still within a test: OpenAI's minute does not turn,
// Anthropic's buckets refill only when the test moves its clock). NO_WAIT requests one after another (docs/models.md, "Limits as
// the provider states them"):
//   OpenAI rises from 6 to 12 RPM, the model row at 6 follows it: after the second answer stating 12 the
//   gateway admits up to 12 in the minute, the 13th refused by the gateway, no 429 from OpenAI; the row
//   kept instead: the gateway stays at 6, the quota route shows the row and OpenAI's 12 to the service
//   key, the effective limit alone to a scoped token;
//   OpenAI lowers from 12 to 6 with 8 already in its minute (rows at 12): its refusal of the 9th states 6,
//   then no 429 from OpenAI; the calls admitted above it stay counted, and the quota route says so;
//   kept, the row is listed above OpenAI's (google_ai_stated_limits, the maintenance run's problems);
//   a following row's answer that states a lower limit is finalized before it leaves (the next admission
//   counts against it), with room to spare at OpenAI; one that lowers nothing, after it;
//   Anthropic's rows at 6 that follow: after the second answer stating 12 its group's effective limit is 12,
//   and the gateway admits up to 12 in its minute once Anthropic's buckets hold them, no 429 from Anthropic.
//   Anthropic's rows at 12 that follow, lowered to 6: the answer stating 6 is applied at once, the calls in
//   are owed at 6 (their schedule carried to it), one more fits, then the gateway refuses; no 429 from it.
//   Anthropic's row at 6 that keeps its own, Anthropic raised to 12: the gateway stays at 6, the quota route
//   shows the row and Anthropic's 12 to the service key, the effective limit alone to a scoped token, and the
//   maintenance run lists the row below Anthropic.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { BENCH_SERVICE_KEY, serveLlmInvokeAsOnSupabase } from "../../bench/lib/llm-invoke.ts";
import type { ServerProcess } from "../../bench/lib/server-process.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { mintToken } from "./llm-invoke-helpers.ts";

const FOLLOW = "gpt-4.1-mini";
const KEEP = "gpt-4o-mini";
const CLAUDE = "claude-sonnet-4-5-20250929";
/** One organization (and key) per scenario: each its own quota group, at the simulator and here. */
const ORGS = ["rise-follow", "rise-keep", "lower-follow", "lower-keep", "drop-follow"] as const;
type Org = (typeof ORGS)[number];
const keyOf = (org: Org) => `sk-sim-${org}`;
const ANT_ORG = "org-ant-stated";
const ANT_KEY = "sk-ant-sim-stated-0123456789";
const HAIKU = "claude-haiku-4-5-20251001";
const ANT_LOWER_ORG = "org-ant-lower";
const ANT_LOWER_KEY = "sk-ant-sim-lower-0123456789";
const OPUS = "claude-opus-4-5-20251101";
const ANT_KEEP_ORG = "org-ant-keep";
const ANT_KEEP_KEY = "sk-ant-sim-keep-0123456789";
/**
 * What Anthropic's organizations state now: RPM of Sonnet's pool (ANT_ORG), Haiku's (ANT_LOWER_ORG) and
 * Opus's (ANT_KEEP_ORG).
 */
const antRpm = { sonnet: 6, haiku: 12, opus: 6 };

let oaNow = Date.now();
let antNow = Date.now();
let db: TestDatabase;
let oa: OpenAISimulator;
let ant: AnthropicSimulator;
let fn: ServerProcess;
const output: string[] = [];
/** What the simulator's organizations state now: RPM per organization (every model). */
const rpmOf: Record<Org, number> = {
  "rise-follow": 6,
  "rise-keep": 6,
  "lower-follow": 12,
  "lower-keep": 12,
  "drop-follow": 100,
};

async function putOrganizations(): Promise<void> {
  const orgs = Object.fromEntries(ORGS.map((org) => [org, {
    keys: [keyOf(org)],
    limits: { [FOLLOW]: { rpm: rpmOf[org], tpm: 200_000 }, [KEEP]: { rpm: rpmOf[org], tpm: 200_000 } },
  }]));
  const res = await fetch(`${oa.url}/__sim/organizations`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(orgs),
  });
  expect(res.status).toBe(200);
  await res.text();
}

async function putClaude(rpm: number): Promise<void> {
  antRpm.sonnet = rpm;
  await putAnthropic();
}

async function putAnthropic(): Promise<void> {
  const big = { itpm: 10_000_000, otpm: 10_000_000 };
  const res = await fetch(`${ant.url}/__sim/organizations`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      [ANT_ORG]: { keys: [ANT_KEY], limits: { "sonnet-4": { rpm: antRpm.sonnet, ...big } } },
      [ANT_LOWER_ORG]: { keys: [ANT_LOWER_KEY], limits: { "haiku-4-5": { rpm: antRpm.haiku, ...big } } },
      [ANT_KEEP_ORG]: { keys: [ANT_KEEP_KEY], limits: { "opus-4": { rpm: antRpm.opus, ...big } } },
    }),
  });
  expect(res.status).toBe(200);
  await res.text();
}

beforeAll(async () => {
  oa = await startOpenAISimulator({ now: () => oaNow });
  ant = await startAnthropicSimulator({ now: () => antNow });
  await putOrganizations();
  await putClaude(6);
  db = await freshDatabase("llm_invoke_stated_limits");
  await db.sql`update public.google_ai_api_keys set is_active = false`;
  for (const org of ORGS) {
    await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
                 values (${org}, 'openai', ${`OPENAI_${org.toUpperCase().replace("-", "_")}_KEY`}, ${org}, 1, false)`;
  }
  await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
               values ('claude-stated', 'anthropic', 'ANTHROPIC_STATED_KEY', ${ANT_ORG}, 1, false),
                      ('claude-lower', 'anthropic', 'ANTHROPIC_LOWER_KEY', ${ANT_LOWER_ORG}, 1, false),
                      ('claude-keep', 'anthropic', 'ANTHROPIC_KEEP_KEY', ${ANT_KEEP_ORG}, 1, false)`;
  for (const model of [FOLLOW, KEEP]) {
    await db.sql`
      insert into public.google_ai_model_limits (model, provider, rpm, tpm, rpd, booked_output_tokens, is_active)
      values (${model}, 'openai', 6, 200000, null, 4096, true)
      on conflict (model) do update set provider = excluded.provider, rpm = 6, tpm = 200000, rpd = null,
        booked_output_tokens = 4096, is_active = true`;
  }
  await db.sql`update public.google_ai_model_limits set provider_limits = 'follow' where model in (${FOLLOW}, ${CLAUDE}, ${HAIKU})`;
  await db.sql`update public.google_ai_model_limits set rpm = 12, itpm = 10000000, otpm = 10000000 where model = ${HAIKU}`;
  await db.sql`update public.google_ai_model_limits set rpm = 6, itpm = 10000000, otpm = 10000000 where model = ${CLAUDE}`;
  // Opus keeps its own limits, counted by the sliding window (no bucket: one refilling with the database's
  // clock would admit more the longer the test took).
  await db.sql`update public.google_ai_model_limits set provider_limits = 'keep', rpm = 6, itpm = 10000000,
                 otpm = 10000000, bucket_share = null where model = ${OPUS}`;
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  const env: Record<string, string> = { OPENAI_BASE_URL: oa.url, ANTHROPIC_BASE_URL: ant.url, ANTHROPIC_STATED_KEY: ANT_KEY,
    ANTHROPIC_LOWER_KEY: ANT_LOWER_KEY, ANTHROPIC_KEEP_KEY: ANT_KEEP_KEY };
  for (const org of ORGS) env[`OPENAI_${org.toUpperCase().replace("-", "_")}_KEY`] = keyOf(org);
  fn = await serveLlmInvokeAsOnSupabase({ dbUrl: db.url, simUrl: oa.url, env, log: output });
}, 120_000);

afterAll(async () => {
  await fn?.close();
  await oa?.close();
  await ant?.close();
  await db?.drop();
});

/** Only this scenario's key serves: its organization is the quota group. */
async function serveWith(alias: string): Promise<void> {
  await db.sql`update public.google_ai_api_keys set is_active = (key_alias = ${alias})`;
}

/** One NO_WAIT request; its status. */
async function ask(model: string, prompt: string, auth = BENCH_SERVICE_KEY): Promise<number> {
  const res = await fetch(fn.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${auth}` },
    body: JSON.stringify({ model, prompt, mode: "NO_WAIT", generationConfig: { maxOutputTokens: 20 } }),
  });
  await res.text();
  return res.status;
}

/** Once every finalize has landed (one after its answer lands a moment later). */
async function settled(): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_attempts where status = 'reserved'`;
    if (n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("a finalize never landed");
}

/** The upstream statuses of the organization's calls, in order. */
function upstream(org: Org): (number | undefined)[] {
  return oa.stats().recent.filter((r) => r.method === "chat.completions" && r.organization === org).map((r) => r.status);
}

async function quotaRoute(auth = BENCH_SERVICE_KEY): Promise<{ models: Record<string, unknown>[] }> {
  const res = await fetch(`${fn.url}/v1/quota`, { headers: { authorization: `Bearer ${auth}` } });
  expect(res.status).toBe(200);
  return await res.json() as { models: Record<string, unknown>[] };
}

interface ModelShown {
  model: string;
  limits: { rpm: number };
  minute: { requests_left: number };
  provider_limits?: { said_at: string }[];
}

const modelIn = (report: { models: Record<string, unknown>[] }, model: string) =>
  report.models.find((m) => m.model === model) as unknown as ModelShown;

describe("OpenAI's limits rise from 6 to 12 RPM mid-run", () => {
  it("a row at 6 that follows: after the second answer stating 12, 12 admitted in the minute, no 429 from OpenAI", async () => {
    oaNow = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;
    await serveWith("rise-follow");
    expect(await ask(FOLLOW, "at 6")).toBe(200);
    await settled();
    rpmOf["rise-follow"] = 12;
    await putOrganizations();
    // The first answer stating 12 is heard, the second applies it.
    expect(await ask(FOLLOW, "says 12, once")).toBe(200);
    await settled();
    expect(await ask(FOLLOW, "says 12, twice")).toBe(200);
    await settled();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push(await ask(FOLLOW, `then ${i}`));
      await settled();
    }
    expect(statuses, output.slice(-10).join("\n")).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 429]);
    expect(upstream("rise-follow")).toEqual(Array(12).fill(200));
    const [counter] = await db.sql`select to_jsonb(stated_limits) as stated_limits from public.google_ai_usage_counters
                                   where quota_group = 'rise-follow' and model = ${FOLLOW}`;
    expect(counter!.stated_limits).toEqual([12, 200000, null, null, null]);
    expect(modelIn(await quotaRoute(), FOLLOW).limits.rpm).toBe(12);
  }, 120_000);

  it("a row at 6 that keeps its own: the gateway stays at 6; the quota route shows both to the service key, the effective one to a token", async () => {
    await serveWith("rise-keep");
    rpmOf["rise-keep"] = 12;
    await putOrganizations();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(await ask(KEEP, `kept ${i}`));
      await settled();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429, 429]);
    expect(upstream("rise-keep")).toEqual(Array(6).fill(200));
    const service = modelIn(await quotaRoute(), KEEP);
    expect(service.limits.rpm).toBe(6);
    expect(service.provider_limits).toContainEqual(expect.objectContaining({
      quota_group: "rise-keep", limit: "rpm", mode: "keep", row: 6, provider: 12, effective: 6, disagreement: "below",
    }));
    expect(typeof service.provider_limits![0]!.said_at).toBe("string");
    const { token } = await mintToken(db.sql, "stated-notebook", { models: [KEEP] });
    const scoped = modelIn(await quotaRoute(token), KEEP);
    expect(scoped.limits.rpm).toBe(6);
    expect(scoped).not.toHaveProperty("provider_limits");
  }, 120_000);
});

describe("OpenAI's limits lowered from 12 to 6 RPM with 8 already in the minute", () => {
  async function lowered(org: "lower-follow" | "lower-keep", model: string): Promise<number[]> {
    oaNow = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;
    await db.sql`update public.google_ai_model_limits set rpm = 12 where model = ${model}`;
    await serveWith(org);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(await ask(model, `at 12, ${i}`));
      await settled();
    }
    rpmOf[org] = 6;
    await putOrganizations();
    for (let i = 0; i < 4; i++) {
      statuses.push(await ask(model, `lowered ${i}`));
      await settled();
    }
    return statuses;
  }

  it("rows at 12 that follow: OpenAI's 429 that states 6, then none; the 8 above it counted and said", async () => {
    const statuses = await lowered("lower-follow", FOLLOW);
    expect(statuses.slice(0, 8)).toEqual(Array(8).fill(200));
    // The 9th was admitted at 12 and refused by OpenAI, which says 6 on its refusal: no call after it.
    expect(upstream("lower-follow")).toEqual([...Array(8).fill(200), 429]);
    expect(statuses.slice(8)).toEqual([429, 429, 429, 429]);
    const [counter] = await db.sql`select to_jsonb(stated_limits) as stated_limits, window_requests from public.google_ai_usage_counters
                                   where quota_group = 'lower-follow' and model = ${FOLLOW}`;
    expect(counter!.stated_limits).toEqual([6, 200000, null, null, null]);
    // What was admitted above the new limit stays counted: the group has none left of its 6.
    expect(counter!.window_requests).toBe(9);
    const shown = modelIn(await quotaRoute(), FOLLOW);
    expect(shown.limits.rpm).toBe(6);
    expect(shown.minute.requests_left).toBe(0);
  }, 120_000);

  it("rows at 12 that keep their own: listed above OpenAI's 6 (google_ai_stated_limits, the maintenance run)", async () => {
    const statuses = await lowered("lower-keep", KEEP);
    expect(statuses.slice(0, 8)).toEqual(Array(8).fill(200));
    expect(upstream("lower-keep")).toEqual([...Array(8).fill(200), 429]);
    const rows = await db.sql`select limit_name, row_limit, provider_limit, disagreement from public.google_ai_stated_limits()
                              where model = ${KEEP} and quota_group = 'lower-keep' and limit_name = 'rpm'`;
    expect(rows).toEqual([{ limit_name: "rpm", row_limit: 12, provider_limit: 6, disagreement: "above" }]);
    const [{ r }] = await db.sql`select public.google_ai_housekeeping() as r`;
    expect(r.limit_disagreements).toContainEqual(expect.objectContaining({
      model: KEEP, quota_group: "lower-keep", limit: "rpm", row: 12, provider: 6, disagreement: "above",
    }));
  }, 120_000);
});

describe("a lowering is written before the answer that states it", () => {
  it("a following row's answer stating 50 where 100 was followed, with room to spare: finalized before it leaves", async () => {
    oaNow = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;
    await db.sql`update public.google_ai_model_limits set rpm = 12 where model = ${FOLLOW}`;
    await serveWith("drop-follow");
    // Two answers agree on 100: followed.
    for (let i = 0; i < 2; i++) {
      expect(await ask(FOLLOW, `at 100, ${i}`)).toBe(200);
      await settled();
    }
    rpmOf["drop-follow"] = 50;
    await putOrganizations();
    // Every finalize slowed from here on: one written after its answer is still open when the answer is back.
    await db.sql`create function public.test_slow_finalize() returns trigger language plpgsql as $$
      begin perform pg_sleep(0.4); return new; end $$`;
    await db.sql`create trigger test_slow_finalize before update of status on public.google_ai_attempts
      for each row when (old.status = 'reserved' and new.status <> 'reserved') execute function public.test_slow_finalize()`;
    const statusOfLast = async () => (await db.sql`select status from public.google_ai_attempts
      where quota_group = 'drop-follow' order by created_at desc limit 1`)[0]!.status;
    try {
      // The answer that says 50 waits for its finalize (48 left at OpenAI: only the lowering asks for it).
      expect(await ask(FOLLOW, "says 50")).toBe(200);
      expect(await statusOfLast()).toBe("succeeded");
      const [counter] = await db.sql`select to_jsonb(stated_limits) as stated_limits from public.google_ai_usage_counters
                                     where quota_group = 'drop-follow' and model = ${FOLLOW}`;
      expect(counter!.stated_limits).toEqual([50, 200000, null, null, null]);
      // The next says 50 again: nothing lowered, its finalize goes after the answer.
      expect(await ask(FOLLOW, "says 50 again")).toBe(200);
      expect(await statusOfLast()).toBe("reserved");
      await settled();
    } finally {
      await db.sql`drop trigger test_slow_finalize on public.google_ai_attempts`;
      await db.sql`drop function public.test_slow_finalize()`;
    }
    expect(upstream("drop-follow")).toEqual([200, 200, 200, 200]);
  }, 120_000);
});

describe("Anthropic's limits rise from 6 to 12 RPM mid-run", () => {
  it("rows at 6 that follow: after the second answer stating 12 the group's effective limit is 12, and 12 admitted in the minute, no 429 from Anthropic", async () => {
    antNow = Date.now();
    await serveWith("claude-stated");
    expect(await ask("claude-sonnet-4-5", "at 6")).toBe(200);
    await settled();
    await putClaude(12);
    expect(await ask("claude-sonnet-4-5", "says 12, once")).toBe(200);
    await settled();
    const [heard] = await db.sql`select to_jsonb(stated_limits) as stated_limits, to_jsonb(stated_heard) as stated_heard from public.google_ai_usage_counters
                                 where quota_group = ${ANT_ORG} and model = ${CLAUDE}`;
    expect(heard!.stated_limits![0]).toBe(6);
    expect(heard!.stated_heard![0]).toBe(12);
    expect(await ask("claude-sonnet-4-5", "says 12, twice")).toBe(200);
    await settled();
    const [applied] = await db.sql`select to_jsonb(stated_limits) as stated_limits from public.google_ai_usage_counters
                                   where quota_group = ${ANT_ORG} and model = ${CLAUDE}`;
    expect(applied!.stated_limits).toEqual([12, null, null, 10000000, 10000000]);
    expect(modelIn(await quotaRoute(), CLAUDE).limits.rpm).toBe(12);
    // A minute on at Anthropic, its buckets full again at 12: the gateway, whose own minute has not turned,
    // admits up to the 12 it follows, 9 after the 3 above, and refuses the 13th itself; Anthropic receives
    // 12 calls and answers every one.
    antNow += 60_000;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push(await ask("claude-sonnet-4-5", `then ${i}`));
      await settled();
    }
    expect(statuses).toEqual([...Array(9).fill(200), 429]);
    const calls = ant.stats().recent.filter((r) => r.method === "messages" && r.group === ANT_ORG).map((r) => r.status);
    expect(calls).toEqual(Array(12).fill(200));
  }, 120_000);
});

describe("Anthropic's limits fall from 12 to 6 RPM mid-run", () => {
  it("rows at 12 that follow: the answer stating 6 is applied at once and the calls in are owed at 6; then no 429 from Anthropic", async () => {
    antNow = Date.now();
    await serveWith("claude-lower");
    for (let i = 0; i < 4; i++) {
      expect(await ask("claude-haiku-4-5", `at 12, ${i}`)).toBe(200);
      await settled();
    }
    antRpm.haiku = 6;
    await putAnthropic();
    // Its answer states 6: below the 12 followed, applied at once, written before the answer leaves.
    expect(await ask("claude-haiku-4-5", "says 6")).toBe(200);
    const [lowered] = await db.sql`select to_jsonb(stated_limits) as stated_limits from public.google_ai_usage_counters
                                   where quota_group = ${ANT_LOWER_ORG} and model = ${HAIKU}`;
    expect(lowered!.stated_limits![0]).toBe(6);
    // The 5 calls in, booked at 12, are owed at 6: one more fits the bucket of 6, then the gateway refuses.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      await settled();
      statuses.push(await ask("claude-haiku-4-5", `then ${i}`));
    }
    await settled();
    expect(statuses).toEqual([200, 429, 429]);
    const calls = ant.stats().recent.filter((r) => r.method === "messages" && r.group === ANT_LOWER_ORG).map((r) => r.status);
    expect(calls).toEqual(Array(6).fill(200));
  }, 120_000);
});

describe("Anthropic's limits rise from 6 to 12 RPM mid-run, the row kept", () => {
  it("a row at 6 that keeps its own: the gateway stays at 6; the quota route shows both to the service key, the effective one to a token", async () => {
    antNow = Date.now();
    await serveWith("claude-keep");
    expect(await ask(OPUS, "at 6")).toBe(200);
    await settled();
    antRpm.opus = 12;
    await putAnthropic();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(await ask(OPUS, `kept ${i}`));
      await settled();
    }
    // The gateway counts the row's 6: five more, then its own refusals; Anthropic, with room for 12, answers all 6.
    expect(statuses, output.slice(-10).join("\n")).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const calls = ant.stats().recent.filter((r) => r.method === "messages" && r.group === ANT_KEEP_ORG).map((r) => r.status);
    expect(calls).toEqual(Array(6).fill(200));
    const [counter] = await db.sql`select to_jsonb(stated_limits) as stated_limits from public.google_ai_usage_counters
                                   where quota_group = ${ANT_KEEP_ORG} and model = ${OPUS}`;
    expect(counter!.stated_limits).toEqual([12, null, null, 10000000, 10000000]);

    const service = modelIn(await quotaRoute(), OPUS);
    expect(service.limits.rpm).toBe(6);
    expect(service.provider_limits).toContainEqual(expect.objectContaining({
      quota_group: ANT_KEEP_ORG, limit: "rpm", mode: "keep", row: 6, provider: 12, effective: 6, disagreement: "below",
    }));
    expect(service.provider_limits).toContainEqual(expect.objectContaining({
      quota_group: ANT_KEEP_ORG, limit: "itpm", mode: "keep", row: 10000000, provider: 10000000, disagreement: null,
    }));
    expect(typeof service.provider_limits![0]!.said_at).toBe("string");
    const { token } = await mintToken(db.sql, "stated-claude-notebook", { models: [OPUS] });
    const scoped = modelIn(await quotaRoute(token), OPUS);
    expect(scoped.limits.rpm).toBe(6);
    expect(scoped).not.toHaveProperty("provider_limits");
    const [{ r }] = await db.sql`select public.google_ai_housekeeping() as r`;
    expect(r.limit_disagreements).toContainEqual(expect.objectContaining({
      model: OPUS, quota_group: ANT_KEEP_ORG, limit: "rpm", mode: "keep", row: 6, provider: 12, disagreement: "below",
    }));
  }, 120_000);
});
