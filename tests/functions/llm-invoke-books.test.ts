// The books of a request, over HTTP with the real functions and PostgreSQL against the offline Anthropic
// simulator: one attempt row per real call to the provider (a retry, and a chain's step to another model
// on the same key, write no refused row between their calls), and a stream Anthropic cut after its
// message_start is priced on Anthropic's own input count there, its token_usage row marked cut.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type InvokeStack, startClaudeStack } from "./llm-invoke-helpers.ts";

const SONNET = "claude-sonnet-4-5-20250929";
const HAIKU = "claude-haiku-4-5-20251001";
const KEY = "sk-ant-sim-books-0123456789";
/** Sonnet's prices per million tokens (its seeded price row): input, output. */
const SONNET_PRICE = { input: 3, output: 15 };

let s: InvokeStack;
let sim: AnthropicSimulator;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_books", {
    simulator: {
      organizations: {
        "org-books": {
          keys: [KEY],
          limits: {
            "sonnet-4": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 },
            "haiku-4-5": { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 },
          },
        },
      },
    },
    claude: [{ name: "BOOKS", secret: KEY, org: "org-books" }],
    roomy: true,
  }));
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
});

/** The request's attempt rows in order: model, status, its HTTP status, the limit a refusal names. */
async function rowsOf(requestId: string): Promise<unknown[][]> {
  const rows = await s.sql`select model, status, http_status, limit_hit from public.google_ai_attempts
                           where request_id = ${requestId} order by created_at, attempt`;
  return rows.map((r) => [r.model, r.status, r.http_status, r.limit_hit]);
}

describe("one attempt row per call", () => {
  it("a retry after Anthropic's 529: two calls, two rows, no refusal between them", async () => {
    sim.addFault({ kind: "overloaded", count: 1 });
    const res = await s.call({ model: SONNET, prompt: "retry me", mode: "NO_WAIT", request_id: "books-retry" });
    expect(res.status).toBe(200);
    expect(res.body.attempts).toBe(2);
    expect(sim.stats().total.byStatus).toEqual({ "529": 1, "200": 1 });
    expect(await rowsOf("books-retry")).toEqual([
      [SONNET, "upstream_error", 529, null],
      [SONNET, "succeeded", 200, null],
    ]);
  });

  it("a chain's step to another model on the same key: two calls, two rows, no refusal between them", async () => {
    sim.addFault({ kind: "overloaded", model: SONNET, count: 10 });
    const res = await s.call({
      model: SONNET,
      fallback_models: [HAIKU],
      prompt: "overloaded, then Haiku",
      mode: "NO_WAIT",
      request_id: "books-chain",
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: HAIKU, requested_model: SONNET, attempts: 2 });
    expect(sim.stats().total.byStatus).toEqual({ "529": 1, "200": 1 });
    expect(await rowsOf("books-chain")).toEqual([
      [SONNET, "upstream_error", 529, null],
      [HAIKU, "succeeded", 200, null],
    ]);
  });

  it("a key whose organization is gone for good: its refusal is still written once", async () => {
    await s.sql`update public.google_ai_api_keys set is_active = false where key_alias = 'claude-books'`;
    try {
      const res = await s.call({ model: SONNET, prompt: "no key", mode: "NO_WAIT", request_id: "books-no-key" });
      expect(res.status).toBe(503);
      expect(await rowsOf("books-no-key")).toEqual([[SONNET, "refused", null, "no_active_key"]]);
    } finally {
      await s.sql`update public.google_ai_api_keys set is_active = true where key_alias = 'claude-books'`;
    }
  });
});

describe("a stream Anthropic cut", () => {
  it("is priced on the input Anthropic counted in its message_start, and its token_usage row says cut", async () => {
    const prompt = "a stream that Anthropic cuts after its message_start, with a prompt long enough to count";
    // Anthropic's own count of this input, from a whole answer to the same request.
    const whole = await s.call({ model: SONNET, prompt, mode: "NO_WAIT", request_id: "books-whole" });
    expect(whole.status).toBe(200);
    const [{ input_tokens: counted }] = await s.sql`select input_tokens from public.google_ai_attempts
                                                    where request_id = 'books-whole' and status = 'succeeded'`;

    // Only message_start reaches the gateway; then the connection ends.
    sim.addFault({ kind: "cut_stream", afterChunks: 1, count: 1 });
    const cut = await s.call({ model: SONNET, prompt, mode: "NO_WAIT", stream: true, request_id: "books-cut" });
    expect(cut.status).toBe(200);
    expect(cut.text).toMatch(/broke off/);
    const [row] = await s.sql`select status, error_code, input_tokens, output_tokens, estimated_tokens,
                                     cost_usd::float8 as cost
                              from public.google_ai_attempts where request_id = 'books-cut'`;
    expect(row).toMatchObject({ status: "cut", error_code: "stream_cut_by_upstream", input_tokens: counted });
    // The gateway's estimate of the same input is another figure: the row is Anthropic's count, not it.
    expect(row!.estimated_tokens).not.toBe(counted);
    expect(row!.cost).toBeCloseTo(
      (counted * SONNET_PRICE.input + row!.output_tokens * SONNET_PRICE.output) / 1e6,
      12,
    );
    const usage = await s.sql`select prompt_tokens, completion_tokens, meta from public.token_usage
                              where request_id = 'books-cut'`;
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ prompt_tokens: counted, meta: { cut_by: "upstream" } });
    // A whole answer's row says no cut.
    const [kept] = await s.sql`select meta from public.token_usage where request_id = 'books-whole'`;
    expect(kept!.meta).not.toHaveProperty("cut_by");
  });
});
