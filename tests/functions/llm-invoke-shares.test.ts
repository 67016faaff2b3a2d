// Reserved shares, pacing and a service caller's budget at llm-invoke over HTTP (the served function,
// a real PostgreSQL, the simulator; the database's own clock): a Kaggle notebook's flood cannot take
// the part of the day kept for the bot, a paced notebook is answered with the moment its pace allows
// the next request and is served then, and a service caller's daily budget answers 429 caller_budget
// until Pacific midnight.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type CallResult, type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let notebook: string;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_shares", {
    keys: [{ alias: "share-key", project: "proj-share", priority: 1, simKey: "sim-key-share" }],
    limits: [{ model: "gemini-2.5-flash", rpm: 1000, tpm: 1_000_000, rpd: 10 }],
  });
  // A Kaggle client: batch, as every client is unless its row says otherwise.
  notebook = (await mintToken(s.sql, "parser", { models: ["gemma-3-27b-it", "gemini-2.5-flash"] })).token;
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_quota_shares`;
});

const generated = () => s.sim.stats().byMethod["generateContent"]?.received ?? 0;

function fromNotebook(model: string, i: number, extra: Record<string, unknown> = {}): Promise<CallResult> {
  return s.call({ model, prompt: `row ${i}`, mode: "NO_WAIT", ...extra }, { auth: notebook });
}

function fromBot(model: string, i: number, caller = "bot"): Promise<CallResult> {
  return s.call({ model, prompt: `chat ${i}`, mode: "NO_WAIT" }, { headers: { "x-caller": caller } });
}

describe("a share kept for the bot", () => {
  it("holds against a notebook's flood: of 10 a day, the notebook gets 6 and the bot its 4", async () => {
    await s.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpd)
                values ('gemini-2.5-flash', 'interactive', 4)`;
    const flood = await Promise.all(Array.from({ length: 30 }, (_, i) => fromNotebook("gemini-2.5-flash", i)));
    expect(flood.filter((r) => r.status === 200)).toHaveLength(6);
    const refused = flood.filter((r) => r.status !== 200);
    expect(new Set(refused.map((r) => `${r.status} ${r.body.limit}`))).toEqual(new Set(["429 rpd"]));
    // Until the next Pacific day (midnight plus the 5 s day guard).
    const [{ ms }] = await s.sql<{ ms: number }[]>`
      select (extract(epoch from public.google_ai_pacific_midnight_after(now()) - now()) * 1000 + 5000)::float8 as ms`;
    for (const r of refused) expect(Math.abs(r.body.retry_after_ms - ms)).toBeLessThan(5_000);

    const bot = await Promise.all(Array.from({ length: 5 }, (_, i) => fromBot("gemini-2.5-flash", i)));
    expect(bot.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 429]);
    expect(generated()).toBe(10); // Google saw the day's limit, not one more
    const rows = await s.sql<{ priority_class: string; n: number }[]>`
      select priority_class, count(*)::int as n from public.google_ai_attempts
      where model = 'gemini-2.5-flash' and status = 'succeeded' group by 1 order by 1`;
    expect(rows).toEqual([{ priority_class: "batch", n: 6 }, { priority_class: "interactive", n: 4 }]);
    const [view] = await s.sql`select owner, quota_group, used_today, rpd_kept_today from public.google_ai_shares_today`;
    expect(view).toEqual({ owner: "interactive", quota_group: "proj-share", used_today: 4, rpd_kept_today: 0 });
  });
});

describe("a paced notebook", () => {
  it("is answered with the moment its pace allows the next request, and is served then", async () => {
    // Gemma's 14 400 a day paced for batch: one more request every 6 s of Google's (Pacific) day. The
    // notebook is made to have used all its pace allows in the next 5 s (the row the bookings keep).
    const [{ id }] = await s.sql<{ id: number }[]>`insert into public.google_ai_quota_shares (model, priority_class, pace_burst)
      values ('gemma-3-27b-it', 'batch', 0) returning id`;
    expect((await fromBot("gemma-3-27b", 0)).status).toBe(200); // the group's counter row exists
    const used = await s.sql`update public.google_ai_usage_counters c set share_use = array[row(${id}, 0,
        public.google_ai_day_in(now(), 'America/Los_Angeles'),
        public.google_ai_pace_allowance(now() + interval '5 seconds', public.google_ai_day_in(now(), 'America/Los_Angeles'),
          0, 14400, 'America/Los_Angeles'),
        0, 0, null, null)::public.google_ai_share_use]
      where c.quota_group = 'proj-share' and c.model = 'gemma-3-27b-it'`;
    expect(used.count).toBe(1);
    const paced = await fromNotebook("gemma-3-27b", 1);
    expect(paced.status).toBe(429);
    expect(paced.body).toMatchObject({ error: { code: "rate_limited" }, limit: "pace" });
    expect(paced.body.retry_after_ms).toBeGreaterThan(0);
    expect(paced.body.retry_after_ms).toBeLessThanOrEqual(12_000);
    await new Promise((r) => setTimeout(r, paced.body.retry_after_ms));
    expect((await fromNotebook("gemma-3-27b", 2)).status).toBe(200);
    expect((await fromNotebook("gemma-3-27b", 3)).body.limit).toBe("pace"); // one request, then paced again
  });
});

describe("a service caller's daily budget", () => {
  it("answers 429 caller_budget until Pacific midnight once its requests are used up, in WAIT mode too", async () => {
    await s.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests) values ('nightly-digest', 2)
                on conflict (caller) do nothing`;
    expect((await fromBot("gemma-3-27b", 1, "nightly-digest")).status).toBe(200);
    expect((await fromBot("gemma-3-27b", 2, "nightly-digest")).status).toBe(200);
    const res = await s.call({ model: "gemma-3-27b", prompt: "third", mode: "WAIT", max_wait_ms: 30_000 },
      { headers: { "x-caller": "nightly-digest" } });
    expect(res.status).toBe(429);
    expect(res.body).toMatchObject({ error: { code: "rate_limited" }, limit: "caller_budget" });
    const [{ ms }] = await s.sql<{ ms: number }[]>`
      select (extract(epoch from public.google_ai_pacific_midnight_after(now()) - now()) * 1000)::float8 as ms`;
    expect(Math.abs(res.body.retry_after_ms - ms)).toBeLessThan(5_000);
    expect(res.headers.get("retry-after")).toBe(String(Math.ceil(res.body.retry_after_ms / 1000)));
    expect((await fromBot("gemma-3-27b", 4, "another-caller")).status).toBe(200); // the budget is the caller's alone
    const [row] = await s.sql`select requests_today from public.google_ai_caller_budgets where caller = 'nightly-digest'`;
    expect(row).toEqual({ requests_today: 2 });
  });
});
