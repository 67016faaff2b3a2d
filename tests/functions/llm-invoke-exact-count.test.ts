// Google's exact count over HTTP (real function, real PostgreSQL, the simulator): the estimate errs
// high by about a third, so an input Google counts at 0.9x the model's TPM is refused too_large on the
// estimate alone. llm-invoke then asks countTokens once and reserves that count; an input still above
// the TPM gets 400 with Google's count; an ordinary request never calls countTokens; a failed count
// leaves the estimate's refusal in place.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { tokensForText } from "../../shared/google-sim/tokens.ts";
import { estimateInputTokens } from "../../supabase/functions/llm-invoke/model/tokens.ts";
import { awayFromMinuteEdge, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

const TPM = 2_000;
const MODEL = "gemma-3-27b-it";
let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_exact_count", {
    keys: [{ alias: "count-a", project: "proj-ca", priority: 1, simKey: "sim-key-count-a" }],
    limits: [{ model: MODEL, tpm: TPM, rpm: 1_000, rpd: 100_000 }],
  });
  await s.sql`update public.google_ai_model_limits set safety_margin = 0 where model = ${MODEL}`;
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
});

/** A prompt of ASCII letters the simulator counts at `tokens` (4 bytes a token). */
const promptOf = (tokens: number) => "abcd".repeat(tokens);
const estimateOf = (prompt: string) =>
  estimateInputTokens({ messages: [{ role: "user", parts: [{ type: "text", text: prompt }] }] });
const countCalls = () => s.sim.stats().byMethod["countTokens"]?.received ?? 0;

describe("exact count where the estimate would refuse", () => {
  it("serves an input Google counts at 0.9x TPM, reserving Google's count instead of the estimate", async () => {
    const prompt = promptOf(0.9 * TPM);
    expect(tokensForText(prompt)).toBe(1_800);
    expect(estimateOf(prompt)).toBeGreaterThan(TPM); // the estimate alone is refused too_large

    const res = await s.call({ model: "gemma-3-27b", prompt, request_id: "exact-fits" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.usage.prompt_tokens).toBe(1_800);
    expect(countCalls()).toBe(1);
    expect(s.sim.stats().byMethod["generateContent"]?.received).toBe(1);
    // The audit log keeps both: the refusal on the estimate, then the reservation of Google's count.
    const attempts = await s.sql`select status, estimated_tokens, input_tokens from public.google_ai_attempts
                                 where request_id = 'exact-fits' order by created_at, estimated_tokens desc`;
    expect(attempts).toEqual([
      { status: "refused", estimated_tokens: estimateOf(prompt), input_tokens: null },
      { status: "succeeded", estimated_tokens: 1_800, input_tokens: 1_800 },
    ]);
  });

  it("answers 400 with Google's exact count when that is above TPM, without calling generateContent", async () => {
    const prompt = promptOf(2_100);
    const res = await s.call({ model: "gemma-3-27b", prompt });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.body.error.message).toContain("Google counts the input at 2100 tokens");
    expect(res.body.error.message).toContain(`(${TPM})`);
    expect(res.body.error.details).toEqual({ field: "messages", estimated_tokens: estimateOf(prompt), counted_tokens: 2_100, tpm_limit: TPM });
    expect(countCalls()).toBe(1);
    expect(s.sim.stats().byMethod["generateContent"]?.received ?? 0).toBe(0);
  });

  it("serves a large input refused tpm on its estimate when its exact count fits the minute (NO_WAIT)", async () => {
    await awayFromMinuteEdge(20_000); // both requests in one minute window
    const first = await s.call({ model: "gemma-3-27b", prompt: promptOf(1_000) });
    expect(first.status).toBe(200);
    const [counter] = await s.sql`select tpm_used from public.google_ai_usage_counters where model = ${MODEL}`;
    expect(counter!.tpm_used).toBe(1_000); // reconciled with Google's count after the call
    const prompt = promptOf(900);
    expect(1_000 + estimateOf(prompt)).toBeGreaterThan(TPM); // the estimate is refused tpm
    const res = await s.call({ model: "gemma-3-27b", prompt, mode: "NO_WAIT" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.waited_ms).toBe(0);
    expect(countCalls()).toBe(1); // the first request (estimate 1,3xx, it fit) was not counted
  });

  it("makes no countTokens call for an ordinary request", async () => {
    const res = await s.call({ model: "gemma-3-27b", prompt: "Привет, как дела?" });
    expect(res.status).toBe(200);
    expect(s.sim.stats().byMethod["generateContent"]?.received).toBe(1);
    expect(countCalls()).toBe(0);
  });

  it("falls back to the estimate's refusal when countTokens fails, never a 5xx", async () => {
    s.sim.addFault({ kind: "http500", methods: ["countTokens"] });
    const prompt = promptOf(0.9 * TPM);
    const res = await s.call({ model: "gemma-3-27b", prompt });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(`estimated at ${estimateOf(prompt)} tokens`);
    expect(res.body.error.details).toEqual({ field: "messages", estimated_tokens: estimateOf(prompt), tpm_limit: TPM });
    expect(countCalls()).toBe(1);
    expect(s.sim.stats().byMethod["generateContent"]?.received ?? 0).toBe(0);
  });

  it("keeps the key out of every answer and log line", () => {
    for (const seen of s.seen) expect(seen.text).not.toContain("sim-key-count-a");
    for (const line of s.logs) expect(line).not.toContain("sim-key-count-a");
  });
});
