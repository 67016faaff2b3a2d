// Anthropic's own surface, through Anthropic's TypeScript SDK (pinned) changed only in its base URL and
// key: POST /v1/messages and /v1/messages/count_tokens, GET /v1/models in Anthropic's shape. A Claude
// model's answer and stream pass as the Anthropic simulator sent them (its cache usage, its events);
// gpt-4o (OpenAI's simulator) and Gemma (Google's) answer in Anthropic's shape; the gateway's own
// refusals are Anthropic's errors, which the SDK raises by class. Real functions, real PostgreSQL.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { GENEROUS_OPENAI_SIM_MODELS, type InvokeStack, startClaudeStack } from "./llm-invoke-helpers.ts";
import { callCost } from "../support/call-cost.ts";

const CLAUDE = "claude-sonnet-4-5";
const KEY = "sk-ant-sim-surface-0123456789";

let s: InvokeStack;
let sim: AnthropicSimulator;
let client: Anthropic;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_sdk_anthropic", {
    simulator: {
      organizations: { "org-ant": { keys: [KEY], limits: { "sonnet-4": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 } } } },
    },
    claude: [{ name: "MAIN", secret: KEY, org: "org-ant" }],
    roomy: true,
    keys: [{ alias: "openai-main", provider: "openai", project: "org-o", priority: 1, simKey: "sk-sim-surface" }],
    openaiSimulator: { models: GENEROUS_OPENAI_SIM_MODELS },
  }));
  // The SDK as its users make it, only its base URL and key changed: it sends the key as a Bearer token.
  client = new Anthropic({ baseURL: `${s.url}`, apiKey: s.serviceKey, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
});

const ask = (model: string, text: string, extra: Record<string, unknown> = {}) =>
  ({ model, max_tokens: 64, messages: [{ role: "user" as const, content: text }], ...extra });

/** A numeric's text in units of 1e-10 dollars (1e-4 $/Mtok x 1 token), exactly. */
const costUnits = (text: string) => {
  const [whole, frac = ""] = text.split(".");
  expect(frac.replace(/0+$/, "").length).toBeLessThanOrEqual(10);
  return BigInt(whole!) * 10_000_000_000n + BigInt((frac + "0000000000").slice(0, 10));
};

describe("Anthropic's SDK at the gateway's base URL", () => {
  it("a Claude model: Anthropic's message as it came (its usage, cache fields), under the gateway's id", async () => {
    const m = await client.messages.create(ask(CLAUDE, "hello through the surface"));
    expect(m.content).toEqual([{ type: "text", text: "sim(claude-sonnet-4-5-20250929): hello through the surface" }]);
    expect(m.model).toBe("claude-sonnet-4-5-20250929");
    expect(m.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    expect(m.id).toMatch(/^msg_/);
    // The body reached Claude as it was written (pass-through), the model and max_tokens the gateway's.
    expect(sim.stats().received.at(-1)!.body).toMatchObject({ model: "claude-sonnet-4-5-20250929", max_tokens: 64, messages: [{ role: "user", content: "hello through the surface" }] });
  });

  it("a Claude model's stream: its own events, ping included, rebuilt by the SDK", async () => {
    const final = await client.messages.stream(ask(CLAUDE, "stream it")).finalMessage();
    expect(final.content).toEqual([{ type: "text", text: "sim(claude-sonnet-4-5-20250929): stream it" }]);
    expect(final.stop_reason).toBe("end_turn");
  });

  it("gpt-4o and Gemma answer in Anthropic's shape, whole and streamed", async () => {
    const gpt = await client.messages.create(ask("gpt-4o", "from openai", { system: "Be brief." }));
    expect(gpt.content).toEqual([{ type: "text", text: "sim(gpt-4o): from openai" }]);
    expect(gpt.stop_reason).toBe("end_turn");
    expect(gpt.usage.input_tokens).toBeGreaterThan(0);
    const gemma = await client.messages.stream(ask("gemma-3-27b-it", "from google")).finalMessage();
    expect(gemma.content[0]!.type).toBe("text");
    expect((gemma.content[0] as Anthropic.TextBlock).text).toContain("from google");
    expect(gemma.usage.output_tokens).toBeGreaterThan(0);
  });

  it("tools through another provider: the call comes back as a tool_use block, and its result goes on", async () => {
    const tools: Anthropic.Tool[] = [{ name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
    const m = await client.messages.create(ask("gpt-4o", "get_weather in Paris", { tools, tool_choice: { type: "any" } }));
    expect(m.stop_reason).toBe("tool_use");
    const call = m.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(call.name).toBe("get_weather");
    const next = await client.messages.create({
      model: "gpt-4o",
      max_tokens: 64,
      tools,
      messages: [
        { role: "user", content: "get_weather in Paris" },
        { role: "assistant", content: m.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "20 degrees" }] },
      ],
    });
    expect(next.content[0]!.type).toBe("text");
  });

  it("a Claude answer that reads the cache and writes it for an hour and for 5 minutes costs exactly its prices", async () => {
    // The seeded Sonnet 4.5 row, in units of 1e-4 dollars per million tokens: input $3, cache read
    // $0.30, 1-hour write $6, 5-minute write $3.75, output $15.
    const [price] = await s.sql`select input_per_mtok::text as input, cached_input_per_mtok::text as read,
      cache_write_1h_per_mtok::text as w1h, cache_write_5m_per_mtok::text as w5m, output_per_mtok::text as output
      from public.google_ai_model_prices where model = 'claude-sonnet-4-5-20250929' and service_tier = 'standard'`;
    expect(Object.fromEntries(Object.entries(price!).map(([k, v]) => [k, Number(v)]))).toEqual({ input: 3, read: 0.3, w1h: 6, w5m: 3.75, output: 15 });
    const spent = async () => {
      const [row] = await s.sql`select coalesce(sum(spend_usd), 0)::text as usd from public.google_ai_spend_daily
                                where model = 'claude-sonnet-4-5-20250929'`;
      return costUnits(row!.usd);
    };
    const before = await spent();
    // Each system block is 1,000 tokens to the simulator; a breakpoint caches the prefix up to it.
    const block = (c: string, ttl: "5m" | "1h"): Anthropic.TextBlockParam =>
      ({ type: "text", text: c.repeat(4000), cache_control: { type: "ephemeral", ttl } });
    const warm = await client.messages.create(ask(CLAUDE, "warm the cache", { system: [block("a", "1h")] }));
    const whole = await client.messages.create(ask(CLAUDE, "read and write", { system: [block("a", "1h"), block("b", "1h"), block("c", "5m")] }));
    const streamed = await client.messages.stream(ask(CLAUDE, "stream it", { system: [block("a", "1h"), block("d", "1h"), block("e", "5m")] })).finalMessage();
    expect(warm.usage).toMatchObject({ cache_read_input_tokens: 0, cache_creation: { ephemeral_1h_input_tokens: 1000, ephemeral_5m_input_tokens: 0 } });
    for (const m of [whole, streamed]) {
      expect(m.usage).toMatchObject({ cache_read_input_tokens: 1000, cache_creation_input_tokens: 2000,
        cache_creation: { ephemeral_1h_input_tokens: 1000, ephemeral_5m_input_tokens: 1000 } });
    }
    const attempts = await s.sql`select input_tokens, cached_input_tokens, cache_write_1h_tokens, cache_write_5m_tokens,
      output_tokens, cost_usd::text as cost
      from public.google_ai_attempts where model = 'claude-sonnet-4-5-20250929' and status = 'succeeded'
      order by admitted_at desc limit 3`;
    let total = 0n;
    for (const [m, attempt] of [[streamed, attempts[0]!], [whole, attempts[1]!], [warm, attempts[2]!]] as const) {
      const u = m.usage;
      const w1h = u.cache_creation!.ephemeral_1h_input_tokens;
      const w5m = u.cache_creation!.ephemeral_5m_input_tokens;
      const read = u.cache_read_input_tokens!;
      // The books count every input token (ITPM/TPM as before: cache writes and reads are input).
      expect(attempt).toMatchObject({ input_tokens: u.input_tokens + w1h + w5m + read, cached_input_tokens: read, output_tokens: u.output_tokens,
        cache_write_1h_tokens: w1h || null, cache_write_5m_tokens: w5m || null });
      // $ per Mtok x 1e4 x tokens = 1e-10 $: input x 3, read x 0.30, 1 h x 6, 5 m x 3.75, output x 15.
      const expected = BigInt(u.input_tokens) * 30_000n + BigInt(read) * 3_000n + BigInt(w1h) * 60_000n +
        BigInt(w5m) * 37_500n + BigInt(u.output_tokens) * 150_000n;
      expect(costUnits(attempt.cost)).toBe(expected);
      total += expected;
    }
    // By hand, the whole answer: 1,000 read, 1,000 written for an hour, 1,000 for 5 minutes.
    expect(costUnits(attempts[1]!.cost)).toBe(
      BigInt(whole.usage.input_tokens) * 30_000n + 3_000_000n + 60_000_000n + 37_500_000n + BigInt(whole.usage.output_tokens) * 150_000n,
    );
    expect((await spent()) - before).toBe(total);
    // A write without its price is a cost nobody knows (null); a call without writes never reads it.
    await s.sql`update public.google_ai_model_prices set cache_write_5m_per_mtok = null where model = 'claude-sonnet-4-5-20250929'`;
    try {
      const sonnet = "claude-sonnet-4-5-20250929";
      const read = { kind: "succeeded", input_tokens: 3010, cached_input_tokens: 1000, output_tokens: 12, thinking_tokens: 0 };
      const row = {
        unknown: await callCost(s.sql, sonnet, { ...read, cache_write_5m_tokens: 1000, cache_write_1h_tokens: 1000 }),
        hour: await callCost(s.sql, sonnet, { ...read, cache_write_1h_tokens: 2000 }),
        plain: await callCost(s.sql, sonnet, { kind: "succeeded", input_tokens: 10, cached_input_tokens: 0, output_tokens: 12,
          thinking_tokens: 0 }),
      };
      expect(row.unknown).toBeNull();
      // 10 x $3 + 1,000 x $0.30 + 2,000 x $6 + 12 x $15 per million; 10 x $3 + 12 x $15.
      expect(costUnits(row.hour!)).toBe(10n * 30_000n + 1_000n * 3_000n + 2_000n * 60_000n + 12n * 150_000n);
      expect(costUnits(row.plain!)).toBe(10n * 30_000n + 12n * 150_000n);
    } finally {
      await s.sql`update public.google_ai_model_prices set cache_write_5m_per_mtok = 3.75 where model = 'claude-sonnet-4-5-20250929'`;
    }
  });

  it("count_tokens counts, and the model list is Anthropic's when the SDK asks", async () => {
    const counted = await client.messages.countTokens({ model: CLAUDE, messages: [{ role: "user", content: "count me" }] });
    expect(counted.input_tokens).toBeGreaterThan(0);
    const ids: string[] = [];
    for await (const m of client.models.list({ limit: 5 })) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining([CLAUDE, "claude-sonnet-4-5-20250929", "gpt-4o", "gemma-3-27b-it"]));
    const one = await client.models.retrieve(CLAUDE);
    expect(one).toMatchObject({ type: "model", id: CLAUDE });
    // OpenAI's SDK, which sends no anthropic-version, still gets OpenAI's list.
    const res = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/models", headers: { authorization: `Bearer ${s.serviceKey}` } });
    expect(res.body.object).toBe("list");
  });

  it("the key in x-api-key as Anthropic's docs send it; the gateway's refusals as Anthropic's errors", async () => {
    const viaHeader = await fetch(`${s.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": s.serviceKey, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify(ask(CLAUDE, "x-api-key")),
    });
    expect(viaHeader.status).toBe(200);
    const bad = new Anthropic({ baseURL: s.url, apiKey: "not-a-key", maxRetries: 0 });
    const denied = await bad.messages.create(ask(CLAUDE, "hi")).then(() => null, (e: unknown) => e);
    expect(denied).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((denied as InstanceType<typeof Anthropic.APIError>).type).toBe("authentication_error");
    const unknown = await client.messages.create(ask("no-such-model", "hi")).then(() => null, (e: unknown) => e);
    expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
    const noMax = await client.messages.create({ model: CLAUDE, messages: [{ role: "user", content: "hi" }] } as never).then(() => null, (e: unknown) => e);
    expect(noMax).toBeInstanceOf(Anthropic.BadRequestError);
    expect((noMax as InstanceType<typeof Anthropic.APIError>).type).toBe("invalid_request_error");
    // A field only Claude honours, asked of another provider's model: refused by name, not ignored.
    const only = await client.messages.create(ask("gpt-4o", "hi", { tools: [{ type: "web_search_20250305", name: "web_search" }] }))
      .then(() => null, (e: unknown) => e);
    expect(only).toBeInstanceOf(Anthropic.BadRequestError);
    expect(String((only as Error).message)).toContain("web_search_20250305");
  });

  it("a /v1/ path the gateway does not serve is Anthropic's 404, which the SDK raises as NotFoundError", async () => {
    // Message batches are Anthropic's, not the gateway's: the path falls under Anthropic's route.
    const batch = await client.messages.batches.retrieve("msgbatch_01").then(() => null, (e: unknown) => e);
    expect(batch).toBeInstanceOf(Anthropic.NotFoundError);
    // Anthropic's body whole (not OpenAI's, whose error object has a type of the same name).
    expect((batch as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: "error",
      error: { type: "not_found_error", code: "not_found" },
    });
    // Any other /v1/ path is Anthropic's 404 too when the SDK says its version, as it always does.
    const files = await client.beta.files.list().then(() => null, (e: unknown) => e);
    expect(files).toBeInstanceOf(Anthropic.NotFoundError);
    expect((files as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: "error" });
  });

  it("the gateway's rate limit is Anthropic's 429 with retry-after", async () => {
    await s.sql`update public.google_ai_model_limits set rpm = 1 where model = 'claude-opus-4-5-20251101'`;
    try {
      const headers = { "x-eve-mode": "NO_WAIT" };
      await client.messages.create(ask("claude-opus-4-5", "first"), { headers });
      const refused = await client.messages.create(ask("claude-opus-4-5", "second"), { headers }).then(() => null, (e: unknown) => e);
      expect(refused).toBeInstanceOf(Anthropic.RateLimitError);
      expect(Number((refused as InstanceType<typeof Anthropic.APIError>).headers?.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await s.sql`update public.google_ai_model_limits set rpm = 1000 where model = 'claude-opus-4-5-20251101'`;
    }
  });
});
