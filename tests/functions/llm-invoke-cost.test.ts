// What each call cost, over HTTP with the real function, PostgreSQL and both simulators: a mixed run
// of Google and OpenAI calls, whole and streamed, with input read from the provider's cache and
// thinking tokens, and every settled attempt's cost_usd equal to its model's price times the
// provider's own counts, exactly (numeric, compared here in integer units, not as floats). A model
// with no price costs null; a free tier's row costs 0. OpenAI is sent the tier the gateway chose for a
// batch request (google_ai_service_tiers) and the call is priced at the tier that served it.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENEROUS_OPENAI_SIM_MODELS, GENEROUS_SIM_MODELS, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";
import { callCost } from "../support/call-cost.ts";

let s: InvokeStack;
const FLASH = "gemini-2.5-flash";
const GEMMA = "gemma-3-27b-it";
const CACHED = { [FLASH]: 3, "gpt-4o": 2, "gpt-4o-mini": 0 } as Record<string, number>;
const THOUGHTS = { [FLASH]: 5, "gpt-4o": 4, "gpt-4o-mini": 6 } as Record<string, number>;

// Dollars per million tokens, as strings of at most 4 decimals: input, cached input, output, thinking.
const PRICES: Record<string, [string, string | null, string, string | null]> = {
  [FLASH]: ["0.3", "0.03", "2.5", null],
  "gpt-4o": ["2.5", "1.25", "10", null],
  "gpt-4o-mini": ["0.15", "0.075", "0.6", "0.9"],
};

const FLEX = ["0.075", "0.0375", "0.3", "0.45"] as const;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_cost", {
    keys: [
      { alias: "cost-google", project: "proj-cost", priority: 1, simKey: "sim-key-cost" },
      { alias: "cost-openai", provider: "openai", project: "org-cost", priority: 1, simKey: "sk-sim-cost" },
    ],
    simulator: {
      models: {
        ...GENEROUS_SIM_MODELS,
        [FLASH]: { ...GENEROUS_SIM_MODELS[FLASH], cachedTokens: CACHED[FLASH], defaultThoughtsTokens: THOUGHTS[FLASH] },
      },
    },
    openaiSimulator: {
      models: {
        "gpt-4o": { ...GENEROUS_OPENAI_SIM_MODELS["gpt-4o"], cachedTokens: CACHED["gpt-4o"], reasoningTokens: THOUGHTS["gpt-4o"] },
        "gpt-4o-mini": { ...GENEROUS_OPENAI_SIM_MODELS["gpt-4o-mini"], reasoningTokens: THOUGHTS["gpt-4o-mini"] },
      },
    },
  });
  await s.setLimit({ model: FLASH, rpm: 1_000, tpm: 10_000_000, rpd: 100_000 });
  await s.sql`delete from public.google_ai_model_prices`;
  for (const [model, [input, cached, output, thinking]] of Object.entries(PRICES)) {
    await s.sql`insert into public.google_ai_model_prices
      (model, service_tier, input_per_mtok, cached_input_per_mtok, output_per_mtok, thinking_per_mtok, source, read_on)
      values (${model}, 'standard', ${input}::numeric, ${cached}::numeric, ${output}::numeric, ${thinking}::numeric,
              'test', current_date)`;
  }
  await s.sql`insert into public.google_ai_model_prices (model, service_tier, input_per_mtok, output_per_mtok, source, read_on)
              values (${GEMMA}, 'free', 0, 0, 'test', current_date)`;
  // A batch request to gpt-4o-mini asks OpenAI for flex, at half the price (set before any request: workers
  // cache the tier rows).
  await s.sql`insert into public.google_ai_service_tiers (model, priority_class, service_tier)
              values ('gpt-4o-mini', 'batch', 'flex')`;
  await s.sql`insert into public.google_ai_model_prices
      (model, service_tier, input_per_mtok, cached_input_per_mtok, output_per_mtok, thinking_per_mtok, source, read_on)
      values ('gpt-4o-mini', 'flex', ${FLEX[0]}::numeric, ${FLEX[1]}::numeric, ${FLEX[2]}::numeric, ${FLEX[3]}::numeric,
              'test', current_date)`;
});

afterAll(async () => {
  await s?.close();
});

/** A price in units of 1e-4 dollars per million tokens. */
const units = (price: string) => {
  const [whole, frac = ""] = price.split(".");
  return BigInt(whole!) * 10_000n + BigInt((frac + "0000").slice(0, 4));
};

/** A numeric's text in units of 1e-10 dollars (1e-4 $/Mtok x 1 token), exactly. */
const costUnits = (text: string) => {
  const [whole, frac = ""] = text.split(".");
  expect(frac.replace(/0+$/, "").length).toBeLessThanOrEqual(10);
  return BigInt(whole!) * 10_000_000_000n + BigInt((frac + "0000000000").slice(0, 10));
};

async function stream(body: Record<string, unknown>): Promise<number> {
  const res = await fetch(s.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` },
    body: JSON.stringify({ ...body, stream: true }),
  });
  await res.text();
  return res.status;
}

describe("a cost on every call", () => {
  it("Google and OpenAI, whole and streamed, cached input and thinking: cost = price x the provider's counts", async () => {
    const statuses: number[] = [];
    for (const model of [FLASH, "gpt-4o", "gpt-4o-mini"]) {
      for (let i = 0; i < 3; i++) {
        statuses.push((await s.call({ model, prompt: `what does this cost, ${model} ${i}?`, request_id: `cost-${model}-w${i}` })).status);
        statuses.push(await stream({ model, prompt: `stream it, ${model} ${i}`, request_id: `cost-${model}-s${i}` }));
      }
    }
    expect(statuses).toEqual(Array(18).fill(200));

    const rows = await s.sql<{ model: string; input: number; cached: number | null; output: number; thinking: number | null; cost: string | null }[]>`
      select model, input_tokens as input, cached_input_tokens as cached, output_tokens as output,
             thinking_tokens as thinking, cost_usd::text as cost
      from public.google_ai_attempts where request_id like 'cost-%' and status = 'succeeded' order by id`;
    expect(rows).toHaveLength(18);
    for (const r of rows) {
      // The providers' own counts reached the row: the cache and the thinking each simulator reported.
      expect({ model: r.model, cached: r.cached ?? 0, thinking: r.thinking ?? 0 })
        .toEqual({ model: r.model, cached: CACHED[r.model], thinking: THOUGHTS[r.model] });
      const [input, cached, output, thinking] = PRICES[r.model]!;
      const expected = BigInt(r.input - (r.cached ?? 0)) * units(input)
        + BigInt(r.cached ?? 0) * units(cached ?? "0")
        + BigInt(r.output - (r.thinking ?? 0)) * units(output)
        + BigInt(r.thinking ?? 0) * units(thinking ?? output);
      expect(r.cost).not.toBeNull();
      expect({ model: r.model, cost: costUnits(r.cost!) }).toEqual({ model: r.model, cost: expected });
    }
    // The bot's table keeps its shape: prompt and completion tokens, nothing about money.
    const [usage] = await s.sql`select prompt_tokens, completion_tokens, total_tokens from public.token_usage
                                where request_id = ${"cost-gpt-4o-w0"}`;
    const [att] = await s.sql`select input_tokens, output_tokens from public.google_ai_attempts where request_id = ${"cost-gpt-4o-w0"}`;
    expect(usage).toEqual({ prompt_tokens: att!.input_tokens, completion_tokens: att!.output_tokens,
      total_tokens: att!.input_tokens + att!.output_tokens });
  });

  it("a free tier's row costs 0; a model with no price, or cached input with no cached price, costs null", async () => {
    expect((await s.call({ model: GEMMA, prompt: "free?", request_id: "cost-free" })).status).toBe(200);
    const [free] = await s.sql`select cost_usd::text as cost from public.google_ai_attempts where request_id = 'cost-free'`;
    expect(Number(free!.cost)).toBe(0);
    const counts = { input_tokens: 10, cached_input_tokens: 0, output_tokens: 5, thinking_tokens: 0 };
    expect({
      none: await callCost(s.sql, "gemini-2.5-flash-lite", { kind: "succeeded", ...counts }),
      no_tier: await callCost(s.sql, GEMMA, { kind: "succeeded", service_tier: "flex", ...counts }),
      refused: await callCost(s.sql, FLASH, { kind: "upstream_error", served_tier: "standard" }),
      silent: await callCost(s.sql, FLASH, { kind: "timeout", served_tier: "standard" }),
      openai_default: await callCost(s.sql, "gpt-4o", { kind: "succeeded", served_tier: "default", ...counts }),
    }).toEqual({ none: null, no_tier: null, refused: "0", silent: null, openai_default: "0.0000750" });
    await s.sql`update public.google_ai_model_prices set cached_input_per_mtok = null where model = ${FLASH}`;
    const cachedUnknown = {
      cached: await callCost(s.sql, FLASH, { kind: "succeeded", ...counts, cached_input_tokens: 3 }),
      uncached: await callCost(s.sql, FLASH, { kind: "succeeded", ...counts }),
    };
    expect(cachedUnknown).toEqual({ cached: null, uncached: "0.0000155" });
  });

  it("OpenAI is sent the gateway's tier where the caller's body names none; the call is priced at the tier that served it", async () => {
    const priced = async (requestId: string) => {
      const [r] = await s.sql<{ asked: string | null; served: string | null; input: number; output: number;
                                thinking: number; cost: string }[]>`
        select service_tier as asked, served_tier as served, input_tokens as input, output_tokens as output,
               coalesce(thinking_tokens, 0) as thinking, cost_usd::text as cost
        from public.google_ai_attempts where request_id = ${requestId} and status = 'succeeded'`;
      return r!;
    };
    const at = (r: { input: number; output: number; thinking: number }, [input, , output, thinking]: readonly string[]) =>
      BigInt(r.input) * units(input!) + BigInt(r.output - r.thinking) * units(output!) + BigInt(r.thinking) * units(thinking!);

    // The gateway's route, a batch request: the row's flex reaches OpenAI, which answers that flex served it.
    const flex = await s.call({ model: "gpt-4o-mini", prompt: "flex, please", priority: "batch", request_id: "tier-flex" });
    expect(flex.status, flex.text).toBe(200);
    const flexRow = await priced("tier-flex");
    expect(flexRow).toMatchObject({ asked: "flex", served: "flex" });
    expect(costUnits(flexRow.cost)).toBe(at(flexRow, FLEX));

    // OpenAI's route with the caller's own service_tier: it stands, and the call is priced where it was served.
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0,
      defaultHeaders: { "x-eve-priority": "batch", "x-eve-request-id": "tier-own" } });
    const own = await openai.chat.completions.create({ model: "gpt-4o-mini", service_tier: "default",
      messages: [{ role: "user", content: "my own tier" }] });
    expect(own.service_tier).toBe("default");
    const ownRow = await priced("tier-own");
    expect(ownRow.served).toBe("default");
    expect(costUnits(ownRow.cost)).toBe(at(ownRow, PRICES["gpt-4o-mini"]! as string[]));
  });

  it("spend you can read: the view per provider's day, the quota route, yesterday's summary and the metric agree with the rows", async () => {
    const [{ total }] = await s.sql`select sum(cost_usd)::text as total from public.google_ai_attempts where cost_usd is not null`;
    // The view: per provider's day (Google's Pacific, OpenAI's UTC), model and caller.
    const days = await s.sql<{ provider: string; model: string; day: string; pacific: string; utc: string }[]>`
      select provider, model, day::text, public.google_ai_pacific_day(now())::text as pacific,
             (now() at time zone 'UTC')::date::text as utc
      from public.google_ai_spend_daily group by 1, 2, 3`;
    for (const d of days) expect(d.day).toBe(d.provider === "openai" ? d.utc : d.pacific);
    const [view] = await s.sql`select sum(spend_usd)::text as spend, sum(calls)::int as calls,
                                      sum(calls_unpriced)::int as unpriced from public.google_ai_spend_daily`;
    expect(view).toEqual({ spend: total, calls: 21, unpriced: 0 });
    // The quota route: a service caller's spend is the view's (the route reads no log); a token's below.
    const quota = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/quota",
      headers: { authorization: `Bearer ${s.serviceKey}` } });
    expect(quota.status).toBe(200);
    expect(quota.body.spend).toBeNull();
    // Tomorrow's maintenance summary: each provider's yesterday.
    const [{ y }] = await s.sql`select public.google_ai_spend_yesterday(now() + interval '1 day') as y`;
    const [{ google, openai }] = await s.sql`
      select sum(a.cost_usd) filter (where l.provider = 'google')::float8 as google,
             sum(a.cost_usd) filter (where l.provider = 'openai')::float8 as openai
      from public.google_ai_attempts a join public.google_ai_model_limits l on l.model = a.model`;
    expect(y.map((d: { provider: string; spend_usd: number }) => [d.provider, d.spend_usd]))
      .toEqual([["google", google], ["openai", openai]]);
    // The metric: eve_gateway_spend_usd_total sums to the same money.
    const [{ metric }] = await s.sql`select sum(value)::text as metric from public.google_ai_metrics()
                                     where family = 'eve_gateway_spend_usd_total'`;
    expect(Number(metric)).toBe(Number(total));
  });
});
