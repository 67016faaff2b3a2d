// A client's budget in money, over HTTP with the real function, PostgreSQL and the OpenAI simulator:
// a notebook with a budget of 3 cents a day, 8 processes × 40 requests with its scoped token. Each
// reservation books the call's worst case (its input at the input price, the client's largest answer
// at the output price) and finalize settles it on the call's cost. Here every call's cost is its worst
// case exactly (input is free, every answer is cut at the client's max_output_tokens), so the budget
// holds exactly 10 calls: 10 are served, the spend is the budget to the last digit (0 overspend, the
// last admitted call the one that fits), and the 310 others are refused with cause spend_budget and
// the time the budget reopens (the next Pacific midnight). A month's budget refuses until the month ends.
// A Gemini call that thinks as much as its model allows (thinking is not capped by maxOutputTokens) at
// the dearer tier its class asks for is booked at that worst case too: 0 overspend; a caller whose class
// may use only the standard tier books at the standard price. A service caller's calls that would answer
// longer than booked (the simulators answer ~50 tokens here; the rows book 4) are cut at the answer
// booked, sent as the provider's own cap where the caller names none: 0 overspend, OpenAI's and Gemini's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GENEROUS_OPENAI_SIM_MODELS,
  GENEROUS_SIM_MODELS,
  type InvokeStack,
  mintToken,
  newToken,
  sha256,
  startInvokeStack,
} from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const MODEL = "gpt-4o-mini";
const MAX_OUTPUT = 3;
const OUTPUT_PER_MTOK = "1000"; // 3 tokens: $0.003 a call
const BUDGET = "0.03";
const FLASH = "gemini-2.5-flash";
const FLASH_THINKING = 7; // the most the model may think: the simulator thinks this much on every call
const FLASH_OUTPUT = 3; // the model's output limit, as its catalogue row says
const LITE = "gemini-2.5-flash-lite"; // answers as long as it is allowed: its catalogue row says 4, the simulator 65,536
const BOOKED = 4; // what a service caller's request naming no largest answer books: the rows' figure

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_money_budget", {
    keys: [
      { alias: "money-openai", provider: "openai", project: "org-money", priority: 1, simKey: "sk-sim-money" },
      { alias: "money-google", project: "proj-money", priority: 1, simKey: "sim-key-money" },
    ],
    openaiSimulator: { models: GENEROUS_OPENAI_SIM_MODELS },
    simulator: {
      // Flash answers at most FLASH_OUTPUT tokens (its output limit) and thinks FLASH_THINKING beside them.
      models: {
        ...GENEROUS_SIM_MODELS,
        [FLASH]: { ...GENEROUS_SIM_MODELS[FLASH], defaultThoughtsTokens: FLASH_THINKING, outputTokenLimit: FLASH_OUTPUT },
        [LITE]: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 },
      },
    },
  });
  await s.setLimit({ model: FLASH, rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 });
  // Flash thinks at most FLASH_THINKING tokens; a batch request asks for priority, at twice standard's price.
  // (Set before any request: workers cache the tier rows.)
  await s.sql`update public.google_ai_model_limits set max_thinking_tokens = ${FLASH_THINKING} where model = ${FLASH}`;
  await s.sql`insert into public.google_ai_service_tiers (model, priority_class, service_tier)
              values (${FLASH}, 'batch', 'priority')`;
  // Its output limit as its catalogue says (google_ai_model_catalogue, which the maintenance function fills
  // from models.get): what a request naming none is sent with under a budget in money.
  await s.sql`insert into public.google_ai_model_catalogue (api_key_id, model, key_alias, quota_group, output_token_limit)
              select k.id, ${FLASH}, k.key_alias, public.google_ai_quota_group(k.project_id, k.id), ${FLASH_OUTPUT}
              from public.google_ai_api_keys k where k.key_alias = 'money-google'`;
  await s.sql`delete from public.google_ai_model_prices where model = ${FLASH}`;
  await s.sql`insert into public.google_ai_model_prices (model, service_tier, input_per_mtok, cached_input_per_mtok,
                output_per_mtok, source, read_on)
              values (${FLASH}, 'standard', 0, 0, 1000, 'test', current_date),
                     (${FLASH}, 'priority', 0, 0, 2000, 'test', current_date)`;
  await s.setLimit({ model: MODEL, rpm: 100_000, tpm: 100_000_000 });
  // (Set before any request: workers cache the model rows.) OpenAI's row books BOOKED for a request naming
  // no max_tokens; Lite's catalogue row says BOOKED is its output limit, and it does not think.
  await s.sql`update public.google_ai_model_limits set booked_output_tokens = ${BOOKED} where model = ${MODEL}`;
  await s.setLimit({ model: LITE, rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 });
  await s.sql`update public.google_ai_model_limits set max_thinking_tokens = null where model = ${LITE}`;
  await s.sql`insert into public.google_ai_model_catalogue (api_key_id, model, key_alias, quota_group, output_token_limit)
              select k.id, ${LITE}, k.key_alias, public.google_ai_quota_group(k.project_id, k.id), ${BOOKED}
              from public.google_ai_api_keys k where k.key_alias = 'money-google'`;
  await s.sql`delete from public.google_ai_model_prices where model = ${LITE}`;
  await s.sql`insert into public.google_ai_model_prices (model, service_tier, input_per_mtok, cached_input_per_mtok,
                output_per_mtok, source, read_on)
              values (${LITE}, 'standard', 0, 0, 1000, 'test', current_date)`;
  await s.sql`delete from public.google_ai_model_prices where model = ${MODEL}`;
  await s.sql`insert into public.google_ai_model_prices (model, service_tier, input_per_mtok, cached_input_per_mtok,
                output_per_mtok, source, read_on)
              values (${MODEL}, 'standard', 0, 0, ${OUTPUT_PER_MTOK}::numeric, 'test', current_date)`;
}, 120_000);

afterAll(async () => {
  await s?.close();
});

async function notebook(name: string, budget: { daily?: string; monthly?: string }, model = MODEL): Promise<string> {
  const t = await mintToken(s.sql, name, { models: [model] });
  await s.sql`update public.google_ai_clients set max_output_tokens = ${MAX_OUTPUT},
                daily_max_usd = ${budget.daily ?? null}::numeric, monthly_max_usd = ${budget.monthly ?? null}::numeric
              where id = ${t.clientId}`;
  return t.token;
}

/** `workers` processes, each sending `each` requests one after another; every answer. */
async function load(token: string, workers: number, each: number, tag: string, model = MODEL) {
  const answers: { status: number; body: any; retryAfter: string | null }[] = [];
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; i < each; i++) {
      const res = await s.call({ model, prompt: `${tag} ${w}-${i}: tell me a long story`, mode: "NO_WAIT" },
        { auth: token });
      answers.push({ status: res.status, body: res.body, retryAfter: res.headers.get("retry-after") });
    }
  }));
  return answers;
}

describe("a client's budget in money", () => {
  it("3 cents a day, 8 processes × 40 requests: exactly the 10 calls that fit are served, spend = budget, the rest refused naming cause and reopening", async () => {
    const token = await notebook("money-day", { daily: BUDGET });
    const answers = await load(token, 8, 40, "day");
    const served = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(served).toHaveLength(10);
    expect(refused).toHaveLength(310);
    const [{ midnight }] = await s.sql`select public.google_ai_pacific_midnight_after(now()) as midnight`;
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.body).toMatchObject({ error: { code: "rate_limited" }, limit: "client_budget", cause: "spend_budget" });
      expect(new Date(r.body.retry_at).getTime()).toBe((midnight as Date).getTime());
      expect(r.retryAfter).toBe(String(Math.ceil(r.body.retry_after_ms / 1000)));
    }

    const [spend] = await s.sql`
      select sum(a.cost_usd)::text as cost, count(*)::int as calls, count(*) filter (where a.cost_usd is null)::int as unpriced,
             bool_and(a.booked_usd = a.cost_usd) as exact, max(c.spent_today_usd)::text as booked,
             max(c.daily_max_usd)::text as budget
      from public.google_ai_attempts a join public.google_ai_clients c on c.id = a.client_id
      where c.name = 'money-day' and a.status = 'succeeded'`;
    // 0 overspend: what the calls cost is the budget, and the client's booked spend says the same.
    expect(spend).toEqual({ cost: "0.030000", calls: 10, unpriced: 0, exact: true, booked: "0.030000", budget: BUDGET });
    const [{ refusals }] = await s.sql`
      select count(*)::int as refusals from public.google_ai_attempts a join public.google_ai_clients c on c.id = a.client_id
      where c.name = 'money-day' and a.status = 'refused' and a.limit_hit = 'client_budget'
        and a.refusal_cause = 'spend_budget'`;
    expect(refusals).toBe(310);
    // The notebook's own view: nothing left of the day, and what it spent.
    const quota = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/quota", headers: { authorization: `Bearer ${token}` } });
    expect(quota.body.budget).toMatchObject({ daily_max_usd: 0.03, daily_usd_left: 0, monthly_max_usd: null,
      monthly_usd_left: null, token_max_usd: null, token_usd_left: null, usd_applies_to: "client" });
    expect(quota.body.spend).toEqual({ today_usd: 0.03, month_usd: 0.03 });
    // A client without a budget in money has its spend counted too: what its calls cost.
    const free = await notebook("money-none", {});
    expect((await load(free, 1, 2, "none")).map((a) => a.status)).toEqual([200, 200]);
    const [{ cost }] = await s.sql`select sum(a.cost_usd)::float8 as cost from public.google_ai_attempts a
                                   where a.caller = 'client:money-none'`;
    const mine = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/quota", headers: { authorization: `Bearer ${free}` } });
    expect(mine.body.spend).toEqual({ today_usd: cost, month_usd: cost });
    expect(cost).toBe(0.006);
  }, 180_000);

  it("a month's budget refuses until the Pacific month ends; a released reservation gives its worst case back", async () => {
    const token = await notebook("money-month", { monthly: "0.006" });
    const answers = await load(token, 2, 3, "month");
    expect(answers.filter((a) => a.status === 200)).toHaveLength(2);
    const refusal = answers.find((a) => a.status === 429)!;
    expect(refusal.body).toMatchObject({ limit: "client_budget", cause: "spend_budget" });
    const [{ next }] = await s.sql`
      select (date_trunc('month', public.google_ai_pacific_day(now())) + interval '1 month')::date::timestamp
             at time zone public.google_ai_pacific_zone() as next`;
    expect(new Date(refusal.body.retry_at).getTime()).toBe((next as Date).getTime());

    // A reservation released before it reached the provider: its worst case leaves the month's spend.
    await s.sql`update public.google_ai_clients set monthly_max_usd = 0.009 where name = 'money-month'`;
    const [{ r }] = await s.sql`select public.google_ai_reserve_models(p_models => array[${MODEL}], p_estimated_tokens => 10,
      p_token_hash => encode(sha256(convert_to(${token}, 'UTF8')), 'hex'), p_output_tokens => array[${MAX_OUTPUT}]::integer[]) as r`;
    expect(r).toMatchObject({ ok: true });
    const spent = async () =>
      (await s.sql`select spent_month_usd::text as m from public.google_ai_clients where name = 'money-month'`)[0]!.m;
    expect(await spent()).toBe("0.009000");
    await s.sql`select public.google_ai_release(${r.reservation_id}::uuid, 'test')`;
    expect(await spent()).toBe("0.006000");
  }, 60_000);

  it("a Gemini call thinking as much as its model allows, at the priority tier its class asks for: booked at that worst case, 0 overspend", async () => {
    // Worst case: (3 answer + 7 thinking) × $2000/Mtok = $0.02 a call; $0.10 a day holds exactly 5.
    const token = await notebook("money-thinking", { daily: "0.10" }, FLASH);
    const answers = await load(token, 8, 5, "thinking", FLASH);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5);
    for (const r of answers.filter((a) => a.status !== 200)) {
      expect(r.body).toMatchObject({ limit: "client_budget", cause: "spend_budget" });
      expect(r.body.retry_at).not.toBeNull();
    }
    const rows = await s.sql`
      select a.service_tier, a.served_tier, a.thinking_tokens, a.output_tokens, a.booked_usd::text as booked,
             a.cost_usd::text as cost
      from public.google_ai_attempts a where a.caller = 'client:money-thinking' and a.status = 'succeeded'`;
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      expect(row).toEqual({ service_tier: "priority", served_tier: "priority", thinking_tokens: FLASH_THINKING,
        output_tokens: MAX_OUTPUT + FLASH_THINKING, booked: "0.020000", cost: "0.020000" });
    }
    const [client] = await s.sql`select spent_today_usd::text as spent from public.google_ai_clients
                                 where name = 'money-thinking'`;
    expect(client).toEqual({ spent: "0.100000" });
  }, 120_000);

  it("a token's own budget in money, minted from its client's token_max_usd: booked and settled beside the client's, refused naming spend_budget, never reopening", async () => {
    const first = await mintToken(s.sql, "money-token", { models: [MODEL] });
    await s.sql`update public.google_ai_clients set max_output_tokens = ${MAX_OUTPUT}, token_max_usd = 0.009
                where id = ${first.clientId}`;
    const token = newToken();
    const [{ m }] = await s.sql`select public.google_ai_mint_token(${sha256(first.secret)}, ${sha256(token)}) as m`;
    // The mint answer names the token's budget in money (its client has none of its own).
    expect(m).toMatchObject({ ok: true, budget: { max_usd: 0.009, daily_usd_left: null, monthly_usd_left: null } });
    // $0.003 a call (the client has no budget in money of its own): the token's $0.009 holds 3.
    const answers = await load(token, 4, 3, "token");
    expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused).toHaveLength(9);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.body).toMatchObject({ limit: "token_budget", cause: "spend_budget", retry_after_ms: null });
    }
    const [spent] = await s.sql`
      select t.max_usd::text as max, t.spent_usd::text as token, c.spent_today_usd::text as client,
             (select sum(a.cost_usd)::text from public.google_ai_attempts a where a.token_id = t.id) as cost
      from public.google_ai_tokens t join public.google_ai_clients c on c.id = t.client_id where t.id = ${m.token_id}`;
    expect(spent).toEqual({ max: "0.009", token: "0.009000", client: "0.009000", cost: "0.009000" });
    // The token's own view: its budget in money and what is left of it, as its row says; refusals name its life.
    const quota = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/quota", headers: { authorization: `Bearer ${token}` } });
    expect(quota.body.budget).toMatchObject({ token_max_usd: 0.009, token_usd_left: 0, daily_max_usd: null });
    expect(quota.body.spend).toEqual({ today_usd: 0.009, month_usd: 0.009 });
    expect(refused[0]!.body).toMatchObject({ period: "life" });
    expect(refused[0]!.body.error.message).toMatch(/^The token's budget in money for its whole life is used up/);
    // The client's first token, minted before, has no budget in money: it is still served.
    expect((await load(first.token, 1, 1, "first")).map((a) => a.status)).toEqual([200]);
  }, 60_000);

  it("a service caller's budget in money: a request naming no largest answer books the model's output limit and thinking, 0 overspend, refusals name spend_budget and the midnight", async () => {
    await s.sql`insert into public.google_ai_caller_budgets (caller, daily_max_usd) values ('bot-money', 0.05)`;
    // Worst case: (3 + 7) tokens at the dearest tier its class may be asked at: the interactive class has
    // no tier row (batch's is priority, $2000/Mtok), so standard, $1000/Mtok: $0.01. 5 fit in $0.05.
    const statuses: number[] = [];
    const bodies: any[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await s.call({ model: FLASH, prompt: `bot ${i}: tell me a long story`, mode: "NO_WAIT" },
        { headers: { "x-caller": "bot-money" } });
      statuses.push(res.status);
      bodies.push(res.body);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const [{ midnight }] = await s.sql`select public.google_ai_pacific_midnight_after(now()) as midnight`;
    for (const body of bodies.slice(5)) {
      expect(body).toMatchObject({ limit: "caller_budget", cause: "spend_budget", period: "day" });
      expect(body.error.message).toMatch(/^This service caller's budget in money for the Pacific day is used up/);
      expect(new Date(body.retry_at).getTime()).toBe((midnight as Date).getTime());
    }
    const [spend] = await s.sql`
      select (select sum(a.cost_usd)::text from public.google_ai_attempts a
              where a.caller = 'bot-money' and a.status = 'succeeded') as cost,
             (select bool_and(a.booked_usd = 0.01) from public.google_ai_attempts a
              where a.caller = 'bot-money' and a.status = 'succeeded') as booked_standard,
             b.spent_today_usd::text as spent, b.spent_month_usd::text as month
      from public.google_ai_caller_budgets b where b.caller = 'bot-money'`;
    expect(spend).toEqual({ cost: "0.050000", booked_standard: true, spent: "0.050000", month: "0.050000" });
    // The caller's own view: its budget in money, nothing left of it, and its spend, as its row says.
    const quota = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/quota",
      headers: { authorization: `Bearer ${s.serviceKey}`, "x-caller": "bot-money" } });
    expect(quota.body.budget).toMatchObject({ daily_max_usd: 0.05, daily_usd_left: 0, monthly_max_usd: null,
      monthly_usd_left: null, token_max_usd: null, token_usd_left: null, usd_applies_to: "caller" });
    expect(quota.body.spend).toEqual({ today_usd: 0.05, month_usd: 0.05 });
  }, 60_000);

  /** `n` requests of a service caller one after another: the statuses, and its succeeded attempts' money. */
  async function serviceCalls(caller: string, n: number, send: (i: number) => Promise<{ status: number; body: any }>) {
    const answers: { status: number; body: any }[] = [];
    for (let i = 0; i < n; i++) answers.push(await send(i));
    const rows = await s.sql`
      select a.output_tokens, a.booked_usd::text as booked, a.cost_usd::text as cost
      from public.google_ai_attempts a where a.caller = ${caller} and a.status = 'succeeded' order by a.created_at`;
    const [{ spent }] = await s.sql`select spent_today_usd::text as spent from public.google_ai_caller_budgets
                                    where caller = ${caller}`;
    return { statuses: answers.map((a) => a.status), answers, rows, spent };
  }
  const openai = (caller: string, extra: Record<string, unknown>) => (i: number) =>
    s.raw({
      method: "POST",
      path: "/functions/v1/llm-invoke/v1/chat/completions",
      headers: { authorization: `Bearer ${s.serviceKey}`, "content-type": "application/json", "x-caller": caller },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: `${caller} ${i}: ${"tell me a long story, ".repeat(8)}` }], ...extra }),
    });
  const gemini = (caller: string, config: Record<string, unknown>) => (i: number) =>
    s.call({ model: LITE, prompt: `${caller} ${i}: ${"tell me a long story, ".repeat(8)}`, mode: "NO_WAIT",
             generationConfig: config }, { headers: { "x-caller": caller } });

  it("a service caller's OpenAI and Gemini calls that would answer longer than booked never pass its budget in money, with and without its own max_tokens", async () => {
    // Each answer would be ~50 tokens. Naming none, each call books BOOKED tokens at $1000/Mtok ($0.004),
    // is sent with that cap, and ends as its provider says (length, MAX_TOKENS): 5 fit in $0.02. Naming
    // 6, it books and is sent 6 ($0.006): 3 fit in $0.018.
    await s.sql`insert into public.google_ai_caller_budgets (caller, daily_max_usd)
                values ('bot-oa', 0.02), ('bot-oa-own', 0.018), ('bot-gm', 0.02), ('bot-gm-own', 0.018)`;
    const runs = {
      "bot-oa": await serviceCalls("bot-oa", 7, openai("bot-oa", {})),
      "bot-oa-own": await serviceCalls("bot-oa-own", 5, openai("bot-oa-own", { max_tokens: 6 })),
      "bot-gm": await serviceCalls("bot-gm", 7, gemini("bot-gm", {})),
      "bot-gm-own": await serviceCalls("bot-gm-own", 5, gemini("bot-gm-own", { maxOutputTokens: 6 })),
    };
    const each = (output: number, usd: string, calls: number) =>
      Array.from({ length: calls }, () => ({ output_tokens: output, booked: usd, cost: usd }));
    expect(runs["bot-oa"]).toMatchObject({ statuses: [200, 200, 200, 200, 200, 429, 429], spent: "0.020000" });
    expect(runs["bot-oa"].rows).toEqual(each(BOOKED, "0.004000", 5));
    expect(runs["bot-oa"].answers[0]!.body.choices[0].finish_reason).toBe("length");
    expect(runs["bot-oa-own"]).toMatchObject({ statuses: [200, 200, 200, 429, 429], spent: "0.018000" });
    expect(runs["bot-oa-own"].rows).toEqual(each(6, "0.006000", 3));
    expect(runs["bot-gm"]).toMatchObject({ statuses: [200, 200, 200, 200, 200, 429, 429], spent: "0.020000" });
    expect(runs["bot-gm"].rows).toEqual(each(BOOKED, "0.004000", 5));
    expect(runs["bot-gm"].answers[0]!.body.finish_reason).toBe("MAX_TOKENS");
    expect(runs["bot-gm-own"]).toMatchObject({ statuses: [200, 200, 200, 429, 429], spent: "0.018000" });
    expect(runs["bot-gm-own"].rows).toEqual(each(6, "0.006000", 3));
    // Without a budget in money nothing is cut: the answer is as long as the simulator makes it.
    const free = await gemini("bot-free", {})(0);
    expect(free.body.finish_reason).toBe("STOP");
    expect(free.body.usage.completion_tokens).toBeGreaterThan(BOOKED * 5);
  }, 60_000);
});
