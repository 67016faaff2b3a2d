// Money as Anthropic says it, per organization, over HTTP with the real functions and PostgreSQL against
// the offline Anthropic simulator (its wordings drawn per run):
//   an organization at its spend limit (429 enforced_spend_limit_reached) and one without credit (400
//   "credit balance"): one call to Anthropic each, every caller after it told in Anthropic's words with
//   its own organization's cause, `x-should-retry: false` and a Retry-After at the rest's end;
//   the cause is the organization whose rest blocks the request, never an inactive or a deleted key's;
//   the pinned SDKs with their default retries raise at once (Anthropic's and OpenAI's obey
//   x-should-retry; @google/genai retries only when asked to), every route saying the same.
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type InvokeStack, startClaudeStack } from "./llm-invoke-helpers.ts";
import { monthTurnAfter } from "../../supabase/functions/llm-invoke/attempt/money-rest.ts";

const MODEL = "claude-sonnet-4-5";
const ROW = "claude-sonnet-4-5-20250929";
const SPENT_KEY = "sk-ant-sim-spent-0123456789";
const BROKE_KEY = "sk-ant-sim-broke-0123456789";
/** How long money rests an organization (vocabulary.ts MONEY_REST_MS), in whole seconds. */
const REST_S = 3600;

const LIMITS = { "sonnet-4": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 } };

let s: InvokeStack;
let sim: AnthropicSimulator;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_anthropic_money", {
    simulator: {
      organizations: {
        "org-spent": { keys: [SPENT_KEY], limits: LIMITS, wallet: "spend_limit" },
        "org-broke": { keys: [BROKE_KEY], limits: LIMITS, wallet: "credit" },
      },
    },
    // The key rows are each test's own (keyOf).
    claude: [{ name: "SPENT", secret: SPENT_KEY }, { name: "BROKE", secret: BROKE_KEY }],
    roomy: true,
  }));
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_api_keys where provider = 'anthropic'`;
});

/** The organization's key row, active (one per organization: its project is the quota group). */
async function keyOf(org: "org-spent" | "org-broke"): Promise<string> {
  const [row] = await s.sql<{ id: string }[]>`
    insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
    values (${`claude-${org}`}, 'anthropic', ${org === "org-spent" ? "ANTHROPIC_TEST_KEY_SPENT" : "ANTHROPIC_TEST_KEY_BROKE"},
            ${org}, 1, true)
    returning id`;
  return row!.id;
}

const calls = (key: string) => sim.stats().byKey[key]?.received ?? 0;

/** A native NO_WAIT request for Claude, as a caller sends it. */
const ask = (prompt: string) => s.call({ model: MODEL, prompt, mode: "NO_WAIT" });

/**
 * The rest's end as the caller is told it, in seconds from now: an hour, but a spend limit (a monthly
 * cap) no later than the month's turn in Anthropic's zone (its row's day_zone, UTC); credit does not
 * come back with the month.
 */
const restS = (cause: string) =>
  cause === "monthly_cap" ? Math.min(REST_S, Math.ceil((monthTurnAfter(Date.now(), "UTC") - Date.now()) / 1000)) : REST_S;

/** What every money refusal says, whoever asks: 429, no retry, its time the rest's end. */
function expectMoneyRefusal(res: Awaited<ReturnType<typeof ask>>, cause: string, words: RegExp): void {
  expect(res.status).toBe(429);
  expect(res.body).toMatchObject({ cause });
  expect(res.body.error.message).toMatch(/Anthropic/);
  expect(res.body.error.message).toMatch(words);
  expect(res.body.error.message).not.toMatch(/project|spending cap|prepaid/);
  expect(res.headers.get("x-should-retry")).toBe("false");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(restS(cause) - 120);
  // (+1: the gateway read its clock before this does; within an hour of the month's turn the rest ends
  // at the turn, and a second between the two reads rounds to one more second left.)
  expect(retryAfter).toBeLessThanOrEqual(restS(cause) + 1);
}

describe("money in Anthropic's words, per organization", () => {
  it("an organization at its spend limit: one call to Anthropic, then its callers are told its cause", async () => {
    await keyOf("org-spent");
    const first = await ask("spent once");
    const second = await ask("spent again");
    expect(calls(SPENT_KEY)).toBe(1);
    // Money rests every model of the organization: a chain of two Claude models is told the same.
    const chain = await s.call({ model: MODEL, fallback_models: ["claude-haiku-4-5"], prompt: "spent, a chain", mode: "NO_WAIT" });
    expect(calls(SPENT_KEY)).toBe(1);
    for (const res of [first, second, chain]) {
      expectMoneyRefusal(res, "monthly_cap", /spend limit/);
      expect(res.body.error.message).toMatch(/Claude Console/);
    }
    expect(chain.body.fallback_from.map((f: { limit: string }) => f.limit)).toEqual(["cooldown", "cooldown"]);
    // Each step says its own rest's cause, as the refusal says its first-back model's.
    expect(chain.body.fallback_from.map((f: { cause: string }) => f.cause)).toEqual(["monthly_cap", "monthly_cap"]);
    expect(chain.body.cause).toBe("monthly_cap");
  });

  it("the first caller is told the rest's end the database keeps (the month's turn where it comes first), not Anthropic's delay", async () => {
    await keyOf("org-spent");
    const first = await ask("spent, when again?");
    expectMoneyRefusal(first, "monthly_cap", /spend limit/);
    const [{ left }] = await s.sql<{ left: number }[]>`
      select ceil(extract(epoch from max(cooldown_until) - now()))::int as left from public.google_ai_cooldowns
      where quota_group = 'org-spent'`;
    expect(Math.abs(Number(first.headers.get("retry-after")) - left)).toBeLessThanOrEqual(2);
    expect(left).toBeLessThanOrEqual(restS("monthly_cap"));
  });

  it("an organization without credit: one call to Anthropic, then its callers are told its cause", async () => {
    await keyOf("org-broke");
    const first = await ask("no credit");
    const second = await ask("no credit again");
    expect(calls(BROKE_KEY)).toBe(1);
    for (const res of [first, second]) expectMoneyRefusal(res, "credits_depleted", /credit balance/);
  });

  it("the cause is the organization that serves: never an inactive or a deleted key's rest", async () => {
    // The spend-limited organization rests first (its rest ends first), then its key leaves rotation.
    const spent = await keyOf("org-spent");
    expectMoneyRefusal(await ask("spent"), "monthly_cap", /spend limit/);
    await s.sql`update public.google_ai_api_keys set is_active = false where id = ${spent}`;
    await keyOf("org-broke");
    expectMoneyRefusal(await ask("broke"), "credits_depleted", /credit balance/);
    const cooldowns = await s.sql`select quota_group, cause from public.google_ai_cooldowns where model = ${ROW}
                                  order by cooldown_until`;
    expect(cooldowns.map((c) => [c.quota_group, c.cause])).toEqual([
      ["org-spent", "monthly_cap"],
      ["org-broke", "credits_depleted"],
    ]);
    // The inactive key's organization rests too, and its rest lifts first: still not this request's cause.
    expectMoneyRefusal(await ask("broke, inactive beside"), "credits_depleted", /credit balance/);
    await s.sql`delete from public.google_ai_api_keys where id = ${spent}`;
    expectMoneyRefusal(await ask("broke, deleted beside"), "credits_depleted", /credit balance/);
    expect(calls(SPENT_KEY)).toBe(1);
    expect(calls(BROKE_KEY)).toBe(1);
  });

  it("both organizations serving: the cause is the one whose rest lifts first", async () => {
    await keyOf("org-spent");
    expectMoneyRefusal(await ask("spent"), "monthly_cap", /spend limit/);
    await keyOf("org-broke");
    // The new key's organization is asked once and rests; the spend limit's rest still lifts first.
    expectMoneyRefusal(await ask("both"), "monthly_cap", /spend limit/);
    expect(calls(SPENT_KEY)).toBe(1);
    expect(calls(BROKE_KEY)).toBe(1);
  });
});

describe("no client retries money", () => {
  /** A fetch that counts the requests a client sends. */
  function countingFetch(): { fetch: typeof fetch; count: () => number } {
    let n = 0;
    return { fetch: (input, init) => (n++, fetch(input, init)), count: () => n };
  }

  it("@anthropic-ai/sdk 1.14.0 with its default retries raises at once: one request, never an hour's sleep", async () => {
    await keyOf("org-spent");
    const counted = countingFetch();
    // As its users make it: only the base URL and the key changed (default maxRetries: 2).
    const client = new Anthropic({ baseURL: s.url, apiKey: s.serviceKey, fetch: counted.fetch });
    const started = performance.now();
    const error = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: "user", content: "a spend-limited organization" }],
    }).then(() => null, (e: unknown) => e);
    const ms = performance.now() - started;
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    const apiError = error as InstanceType<typeof Anthropic.RateLimitError>;
    expect(apiError.headers?.get("x-should-retry")).toBe("false");
    expect(apiError.message).toMatch(/spend limit/);
    expect(apiError.error).toMatchObject({ error: { type: "rate_limit_error", cause: "monthly_cap" } });
    expect(counted.count()).toBe(1);
    expect(ms).toBeLessThan(5000);
    expect(calls(SPENT_KEY)).toBe(1);
  });

  it("openai 6.49.0 with its default retries raises at once; @google/genai does not retry unless asked", async () => {
    await keyOf("org-broke");
    const openaiFetch = countingFetch();
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, fetch: openaiFetch.fetch });
    const refused = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "no credit, through OpenAI's SDK" }],
    }).then(() => null, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("x-should-retry")).toBe("false");
    expect(openaiFetch.count()).toBe(1);

    const googleFetch = countingFetch();
    const google = new GoogleGenAI({
      apiKey: s.serviceKey,
      httpOptions: { baseUrl: s.url, fetch: googleFetch.fetch } as never,
    });
    const denied = await google.models.generateContent({ model: MODEL, contents: "no credit, through Google's SDK" })
      .then(() => null, (e: unknown) => e);
    expect(String(denied)).toMatch(/429|credit balance/);
    expect(googleFetch.count()).toBe(1);
    expect(calls(BROKE_KEY)).toBe(1);
  });

  it("every route says x-should-retry: false for money and for a bad request, and nothing for a minute's wait", async () => {
    await keyOf("org-broke");
    const auth = { authorization: `Bearer ${s.serviceKey}`, "content-type": "application/json" };
    const post = (path: string, body: unknown) =>
      s.raw({ path: `/functions/v1/llm-invoke${path}`, method: "POST", headers: auth, body: JSON.stringify(body) });
    const money = [
      await ask("native"),
      await post(`/v1beta/models/${MODEL}:generateContent`, { contents: [{ parts: [{ text: "gemini" }] }] }),
      await post("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "openai" }] }),
      await post("/v1/messages", { model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "anthropic" }] }),
    ];
    expect(money.map((r) => [r.status, r.headers.get("x-should-retry")])).toEqual(Array(4).fill([429, "false"]));
    expect(money.map((r) => r.text)).toEqual(money.map(() => expect.stringMatching(/credit balance/)));
    const bad = [
      await s.call({ model: "no-such-model", prompt: "unknown", mode: "NO_WAIT" }),
      await post("/v1/chat/completions", { model: MODEL, messages: "not a list" }),
      await post("/v1/messages", { model: MODEL, messages: [{ role: "user", content: "no max_tokens" }] }),
    ];
    expect(bad.map((r) => [r.status, r.headers.get("x-should-retry")]))
      .toEqual([[400, "false"], [400, "false"], [400, "false"]]);
    // A limit a minute lifts: the SDKs' own rules stand (they wait Retry-After).
    await s.sql`delete from public.google_ai_api_keys where provider = 'anthropic'`;
    const [{ rpm }] = await s.sql`select rpm from public.google_ai_model_limits where model = 'gemma-3-27b-it'`;
    await s.sql`update public.google_ai_model_limits set rpm = 1 where model = 'gemma-3-27b-it'`;
    try {
      expect((await s.call({ model: "gemma-3-27b-it", prompt: "first", mode: "NO_WAIT" })).status).toBe(200);
      const minute = await s.call({ model: "gemma-3-27b-it", prompt: "second", mode: "NO_WAIT" });
      expect(minute.status).toBe(429);
      expect(minute.headers.get("retry-after")).not.toBeNull();
      expect(minute.headers.get("x-should-retry")).toBeNull();
    } finally {
      await s.sql`update public.google_ai_model_limits set rpm = ${rpm} where model = 'gemma-3-27b-it'`;
    }
  });
});
