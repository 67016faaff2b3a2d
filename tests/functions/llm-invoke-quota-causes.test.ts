// Google's 429s by cause over HTTP (the served function, a real PostgreSQL, the simulator): a project
// with `limit: 0` for a model is called once and then passed over (another project serves) until a key
// check or Pacific midnight; a spend cap rests every model of its project for its window while another
// project serves; Google's bare 429 stays `unknown` and rests one model only. The attempt rows, the
// cooldown rows, the quota route and the refusals name the cause.
//
// The database's clock is the real one: "a minute passes" is played by ageing the time-bearing rows a
// minute (cooldowns end a minute sooner, the minute windows are emptied), so a rest of Google's 38 s
// (what the gateway did before) would end within the first aged minute, and the test would see it.
import { ApiError, GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";
import { monthTurnAfter } from "../../supabase/functions/llm-invoke/attempt/money-rest.ts";


let s: InvokeStack;
const FLASH = "gemini-2.5-flash";
const GEMMA = "gemma-3-27b-it";
const SIM_A = "sim-causes-a";
const SIM_B = "sim-causes-b";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_quota_causes", {
    keys: [
      // Project A is preferred (priority 1): every request tries it first, unless it rests.
      { alias: "key-a", project: "proj-a", priority: 1, simKey: "sim-key-causes-a", simProject: SIM_A },
      { alias: "key-b", project: "proj-b", priority: 2, simKey: "sim-key-causes-b", simProject: SIM_B },
    ],
    limits: [{ model: FLASH, rpm: 1_000, tpm: 10_000_000, rpd: 100_000 }, { model: GEMMA, rpm: 1_000, rpd: 100_000 }],
  });
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_attempts`;
  await s.sql`update public.google_ai_api_keys set is_active = true where key_alias in ('key-a', 'key-b')`;
  s.sim.setQuotaCauses({});
});

/** A minute passes for the gateway: every rest ends a minute sooner, the minute windows start empty. */
async function aMinutePasses() {
  await s.sql`update public.google_ai_cooldowns set cooldown_until = cooldown_until - interval '1 minute'`;
  await s.sql`delete from public.google_ai_usage_counters`;
}

const callsOf = (project: string, model: string) => s.sim.stats().calls[project]?.[model] ?? 0;

async function quotaReport(): Promise<any> {
  const res = await s.raw({
    method: "GET",
    path: "/functions/v1/llm-invoke/v1/quota",
    headers: { authorization: `Bearer ${s.serviceKey}` },
  });
  expect(res.status).toBe(200);
  return res.body;
}

const modelIn = (report: any, model: string) => report.models.find((m: any) => m.model === model);

describe("limit: 0", () => {
  it("over two minutes of steady requests the simulator sees one call for that (project, model); another project serves", async () => {
    s.sim.setQuotaCauses({ limitZero: [{ project: SIM_A, model: FLASH }] });
    const servedBy: string[] = [];
    for (let minute = 0; minute < 2; minute++) {
      for (let i = 0; i < 6; i++) {
        const res = await s.call({ model: FLASH, prompt: `steady ${minute}.${i}`, request_id: `lz-${minute}-${i}` });
        expect(res.status, res.text).toBe(200);
        servedBy.push(res.body.key_alias);
      }
      await aMinutePasses();
    }
    expect(servedBy).toEqual(Array(12).fill("key-b"));
    expect(callsOf(SIM_A, FLASH)).toBe(1);
    expect(callsOf(SIM_B, FLASH)).toBe(12);

    const failed = await s.sql<{ status: string; http_status: number; quota_cause: string; key_alias: string }[]>`
      select status, http_status, quota_cause, key_alias from public.google_ai_attempts
      where status not in ('succeeded', 'refused')`;
    expect(failed).toEqual([{ status: "upstream_error", http_status: 429, quota_cause: "limit_zero", key_alias: "key-a" }]);
    // The final attempt of each request carries what the gateway added and its first byte (for the
    // metrics); the attempt that was not final carries neither.
    const times = await s.sql<{ status: string; timed: number; first_byte_covers_added: number }[]>`
      select status, count(*) filter (where added_ms is not null and first_byte_ms is not null)::int as timed,
             count(*) filter (where first_byte_ms >= added_ms)::int as first_byte_covers_added
      from public.google_ai_attempts where status in ('succeeded', 'upstream_error') group by status order by status`;
    expect(times).toEqual([
      { status: "succeeded", timed: 12, first_byte_covers_added: 12 },
      { status: "upstream_error", timed: 0, first_byte_covers_added: 0 },
    ]);

    // It rests until Pacific midnight (two aged minutes ago), not for Google's 38 s.
    const [rest] = await s.sql<{ cause: string; quota_group: string; until_midnight: boolean }[]>`
      select cause, quota_group,
             abs(extract(epoch from (cooldown_until + interval '2 minutes'
                 - public.google_ai_pacific_midnight_after(now())))) < 60 as until_midnight
      from public.google_ai_cooldowns where model = ${FLASH}`;
    expect(rest).toEqual({ cause: "limit_zero", quota_group: "proj-a", until_midnight: true });

    const report = await quotaReport();
    expect(modelIn(report, FLASH).cooldowns).toEqual([
      expect.objectContaining({ quota_group: "proj-a", cause: "limit_zero" }),
    ]);
    expect(modelIn(report, GEMMA).cooldowns).toEqual([]);
    // The other models of project A are untouched: Gemma is served by A.
    const gemma = await s.call({ model: GEMMA, prompt: "other model" });
    expect(gemma.body.key_alias).toBe("key-a");
  });

  it("the next key check of the group ends the rest: one more call to Google, which rests again", async () => {
    s.sim.setQuotaCauses({ limitZero: [{ project: SIM_A, model: FLASH }] });
    expect((await s.call({ model: FLASH, prompt: "first" })).body.key_alias).toBe("key-b");
    expect((await s.call({ model: FLASH, prompt: "second" })).body.key_alias).toBe("key-b");
    expect(callsOf(SIM_A, FLASH)).toBe(1);

    // The maintenance function's key check, as google_ai_record_key_check writes it.
    await s.sql`select public.google_ai_record_key_check(p_key_id => ${s.keyIds["key-a"]!}::uuid, p_status => 'ok',
                  p_http_status => 200, p_models => '[]'::jsonb)`;
    const [{ n }] = await s.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_cooldowns where cause = 'limit_zero'`;
    expect(n).toBe(0);

    expect((await s.call({ model: FLASH, prompt: "after the check" })).body.key_alias).toBe("key-b");
    expect(callsOf(SIM_A, FLASH)).toBe(2);
    expect((await s.call({ model: FLASH, prompt: "rests again" })).body.key_alias).toBe("key-b");
    expect(callsOf(SIM_A, FLASH)).toBe(2);
  });
});

// Money, not quota: the project's monthly cap, its billing account's cap or its prepaid credits. Google's
// words for each are drawn per run (the simulator's MONEY_WORDINGS); the gateway must place every one.
describe.each(["monthly_cap", "billing_cap", "credits_depleted"] as const)("money: %s", (kind) => {
  const anHourPasses = () => s.sql`update public.google_ai_cooldowns set cooldown_until = cooldown_until - interval '60 minutes'`;
  const callsToA = () => Object.values(s.sim.stats().calls[SIM_A] ?? {}).reduce((n, c) => n + c, 0);

  it("the project is out for every model, the other serves, the operator is told; Google sees one call an hour", async () => {
    s.sim.setQuotaCauses({ moneyOut: [{ project: SIM_A, kind }] });
    const first = await s.call({ model: FLASH, prompt: "meets the cap", request_id: `money-${kind}` });
    expect(first.status).toBe(200);
    expect(first.body.key_alias).toBe("key-b");
    const rows = await s.sql`select status, quota_cause, key_alias from public.google_ai_attempts
                             where request_id = ${`money-${kind}`} order by id`;
    expect(rows).toEqual([
      { status: "upstream_error", quota_cause: kind, key_alias: "key-a" },
      { status: "succeeded", quota_cause: null, key_alias: "key-b" },
    ]);
    // Every model of project A rests for the hour, with the cause (Google's models: OpenAI's rows are no
    // Google project's); the quota route names project and cause.
    const rests = await s.sql<{ model: string; cause: string; minutes: number; at: number }[]>`
      select model, cause, floor(extract(epoch from (cooldown_until - now())) / 60)::int as minutes,
             (extract(epoch from now()) * 1000)::float8 as at
      from public.google_ai_cooldowns where quota_group = 'proj-a' order by model`;
    const models = await s.sql<{ model: string }[]>`
      select model from public.google_ai_model_limits where provider = 'google' order by model`;
    expect(rests.map((r) => r.model)).toEqual(models.map((m) => m.model));
    // (A monthly cap rests no later than the Pacific month's turn, Google's row's day_zone; the minutes
    // to it counted from the instant the rests' minutes were, so a minute turning between two clocks
    // cannot part them.)
    for (const r of rests) {
      const toTurn = Math.floor((monthTurnAfter(r.at, "America/Los_Angeles") - r.at) / 60_000);
      expect(r).toMatchObject({ cause: kind, minutes: kind === "credits_depleted" ? 59 : Math.min(59, toTurn) });
    }
    const report = await quotaReport();
    expect(modelIn(report, GEMMA).cooldowns).toEqual([expect.objectContaining({ quota_group: "proj-a", cause: kind })]);

    // Ten more requests, both models: project B serves them all, project A is not asked.
    for (let i = 0; i < 10; i++) {
      const r = await s.call({ model: i % 2 ? FLASH : GEMMA, prompt: `busy ${i}` });
      expect(r.status).toBe(200);
      expect(r.body.key_alias).toBe("key-b");
    }
    expect(callsToA()).toBe(1);

    // An hour passes with the owner not acting: one call asks again, is refused, and rests the project again.
    await anHourPasses();
    for (let i = 0; i < 5; i++) expect((await s.call({ model: FLASH, prompt: `hour two ${i}` })).status).toBe(200);
    expect(callsToA()).toBe(2);
    // The owner acts; within the hour after, project A serves again.
    s.sim.setQuotaCauses({});
    await anHourPasses();
    const back = await s.call({ model: FLASH, prompt: "back" });
    expect(back.body.key_alias).toBe("key-a");
    expect(callsToA()).toBe(3);
  });
});

describe("spend cap", () => {
  it("stops the project for every model for its window while another project serves; attempt rows and the quota route name it", async () => {
    s.sim.setQuotaCauses({ spendCaps: [{ project: SIM_A }] });
    const first = await s.call({ model: FLASH, prompt: "meets the cap", request_id: "sc-1" });
    expect(first.status).toBe(200);
    expect(first.body.key_alias).toBe("key-b");

    const rows = await s.sql<{ status: string; quota_cause: string | null; key_alias: string }[]>`
      select status, quota_cause, key_alias from public.google_ai_attempts where request_id = 'sc-1' order by id`;
    expect(rows).toEqual([
      { status: "upstream_error", quota_cause: "spend_cap", key_alias: "key-a" },
      { status: "succeeded", quota_cause: null, key_alias: "key-b" },
    ]);

    // One rest per (Google) model row of project A, each for (at least) the 10-minute window.
    const rests = await s.sql<{ model: string; cause: string; minutes: number }[]>`
      select model, cause, floor(extract(epoch from (cooldown_until - now())) / 60)::int as minutes
      from public.google_ai_cooldowns where quota_group = 'proj-a' order by model`;
    const models = await s.sql<{ model: string }[]>`
      select model from public.google_ai_model_limits where provider = 'google' order by model`;
    expect(rests.map((r) => r.model)).toEqual(models.map((m) => m.model));
    for (const r of rests) expect(r).toMatchObject({ cause: "spend_cap", minutes: 9 });

    // Gemma, never refused itself, is not asked of project A: B serves it.
    const gemma = await s.call({ model: GEMMA, prompt: "another model" });
    expect(gemma.status).toBe(200);
    expect(gemma.body.key_alias).toBe("key-b");
    expect(callsOf(SIM_A, GEMMA)).toBe(0);
    expect(callsOf(SIM_A, FLASH)).toBe(1);

    const report = await quotaReport();
    for (const model of [FLASH, GEMMA]) {
      expect(modelIn(report, model).cooldowns).toEqual([
        expect.objectContaining({ quota_group: "proj-a", cause: "spend_cap", retry_after_ms: expect.any(Number) }),
      ]);
    }

    // With project B out of rotation, the refusal names the cause, on the native route and OpenAI's.
    await s.sql`update public.google_ai_api_keys set is_active = false where key_alias = 'key-b'`;
    const refused = await s.call({ model: GEMMA, prompt: "nobody serves", mode: "NO_WAIT" });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ limit: "cooldown", cause: "spend_cap", error: { code: "rate_limited" } });
    expect(refused.body.error.message).toMatch(/spend-based rate limit/);
    expect(s.logs.some((l) => l.includes(`"request_id":"${refused.body.request_id}"`) && l.includes('"quota_cause":"spend_cap"')))
      .toBe(true);
    expect(callsOf(SIM_A, GEMMA)).toBe(0);

    const openai = new OpenAI({
      baseURL: `${s.url}/v1`,
      apiKey: s.serviceKey,
      maxRetries: 0,
      defaultHeaders: { "x-eve-mode": "NO_WAIT" },
    });
    const error = await openai.chat.completions.create({ model: FLASH, messages: [{ role: "user", content: "x" }] })
      .then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({
      code: "rate_limit_exceeded",
      limit: "cooldown",
      cause: "spend_cap",
    });

    // Google's own SDK with a notebook's token: the cause is in ErrorInfo's metadata.
    const { token } = await mintToken(s.sql, "causes-notebook", { models: [GEMMA] });
    const genai = new GoogleGenAI({
      apiKey: token,
      vertexai: false,
      httpOptions: { baseUrl: s.url, headers: { "x-eve-mode": "NO_WAIT" } },
    });
    const refusal = await genai.models.generateContent({ model: GEMMA, contents: "x" }).then(() => null, (e: unknown) => e);
    expect(refusal).toBeInstanceOf(ApiError);
    expect((refusal as ApiError).status).toBe(429);
    const body = JSON.parse((refusal as ApiError).message) as { error: { details: Array<Record<string, unknown>> } };
    expect(body.error.details).toContainEqual(expect.objectContaining({
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      metadata: expect.objectContaining({ limit: "cooldown", cause: "spend_cap" }),
    }));
    expect(callsOf(SIM_A, GEMMA)).toBe(0);
  });

  it("Google's bare 429 (no details) is `unknown`: one model rests for the default, the project's other models are still asked", async () => {
    s.sim.setQuotaCauses({ spendCaps: [{ project: SIM_A, shape: "bare" }] });
    const res = await s.call({ model: FLASH, prompt: "bare", request_id: "bare-1" });
    expect(res.status).toBe(200);
    expect(res.body.key_alias).toBe("key-b");
    const [row] = await s.sql<{ quota_cause: string }[]>`
      select quota_cause from public.google_ai_attempts where request_id = 'bare-1' and status = 'upstream_error'`;
    expect(row).toEqual({ quota_cause: "unknown" });
    const rests = await s.sql<{ model: string; cause: string }[]>`
      select model, cause from public.google_ai_cooldowns where quota_group = 'proj-a'`;
    expect(rests).toEqual([{ model: FLASH, cause: "unknown" }]);
    // Gemma is asked of project A again (and refused the same way: the cap is real, the gateway cannot know).
    await s.call({ model: GEMMA, prompt: "other model" });
    expect(callsOf(SIM_A, GEMMA)).toBe(1);
  });
});
