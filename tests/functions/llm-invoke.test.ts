// llm-invoke over HTTP, served by the local stack against a fresh database and the offline
// simulator: the success path (text, usage, the audit row, the token_usage row, reconciled
// counters), the input forms, Gemma's quirks (system prompt folded, JSON mode refused), the alias
// gemma-3-27b, and idempotent replay of a caller's own request_id.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { tokensForText } from "../../shared/google-sim/server.ts";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke", {
    keys: [
      { alias: "main-a", project: "proj-a", priority: 1, simKey: "sim-key-main-a" },
      { alias: "main-b", project: "proj-b", priority: 2, simKey: "sim-key-main-b" },
    ],
  });
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
});

describe("success path", () => {
  it("answers text and usage, and writes the audit row, token_usage and reconciled counters", async () => {
    const prompt = "Назови три фестиваля Калининграда.";
    const res = await s.call(
      { model: "gemma-3-27b", prompt, request_id: "succ-1", metadata: { chat_id: 42, source: "test" } },
      { headers: { "x-caller": "eve-bot@host-1" } },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toBe("succ-1");
    const promptTokens = tokensForText(prompt);
    const text = `sim(gemma-3-27b-it): ${prompt}`;
    expect(res.body).toEqual({
      text,
      model: "gemma-3-27b-it",
      key_alias: "main-a",
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: tokensForText(text),
        total_tokens: promptTokens + tokensForText(text),
      },
      attempts: 1,
      waited_ms: 0,
      request_id: "succ-1",
      finish_reason: "STOP",
    });

    const attempts = await s.sql`select * from public.google_ai_attempts where request_id = 'succ-1'`;
    expect(attempts).toHaveLength(1);
    const a = attempts[0]!;
    expect(a).toMatchObject({
      status: "succeeded",
      caller: "eve-bot@host-1",
      model: "gemma-3-27b-it",
      requested_model: "gemma-3-27b",
      attempt: 1,
      key_alias: "main-a",
      api_key_id: s.keyIds["main-a"],
      quota_group: "proj-a",
      input_tokens: promptTokens,
      output_tokens: tokensForText(text),
      http_status: 200,
      error_code: null,
      wait_ms: 0,
      metadata: { chat_id: 42, source: "test" },
    });
    expect(a.estimated_tokens).toBeGreaterThanOrEqual(promptTokens); // the estimate is conservative
    expect(a.latency_ms).toBeGreaterThanOrEqual(0);
    expect(a.finished_at).not.toBeNull();

    const usage = await s.sql`select model, prompt_tokens, completion_tokens, total_tokens, meta
                              from public.token_usage where request_id = 'succ-1'`;
    expect(usage).toEqual([{
      model: "gemma-3-27b-it",
      prompt_tokens: promptTokens,
      completion_tokens: tokensForText(text),
      total_tokens: promptTokens + tokensForText(text),
      meta: expect.objectContaining({ source: "eve-llm-gateway", caller: "eve-bot@host-1", key_alias: "main-a", attempt: 1 }),
    }]);

    // The minute's TPM holds Google's count, not the estimate.
    const [counter] = await s.sql`select rpm_used, tpm_used, rpd_used from public.google_ai_usage_counters
                                  where quota_group = 'proj-a' and model = 'gemma-3-27b-it'`;
    expect(counter).toEqual({ rpm_used: 1, tpm_used: promptTokens, rpd_used: 1 });
    expect(s.sim.stats().total.received).toBe(1);
    expect(s.sim.stats().byKey["sim-key-main-a"]?.received).toBe(1);
  });

  it("takes the service key in apikey too, and generates a request_id when none is given", async () => {
    const res = await s.call({ model: "gemini-2.5-flash", prompt: "hi" }, {
      auth: null,
      headers: { apikey: s.serviceKey },
    });
    expect(res.status).toBe(200);
    expect(res.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get("x-request-id")).toBe(res.body.request_id);
    const [row] = await s.sql`select caller from public.google_ai_attempts where request_id = ${res.body.request_id}`;
    expect(row).toEqual({ caller: "service" });
  });

  it("prints one JSON line per request, and no runtime warning", async () => {
    const res = await s.call({ model: "gemma-3-27b", prompt: "a private question", request_id: "log-line-1" });
    expect(res.status).toBe(200);
    const mine = s.logs.filter((l) => l.includes('"request_id":"log-line-1"'));
    expect(mine).toHaveLength(1);
    const entry = JSON.parse(mine[0]!.slice(mine[0]!.indexOf("{")));
    expect(entry).toMatchObject({ function: "llm-invoke", outcome: "ok", status: 200, attempts: 1, model: "gemma-3-27b-it" });
    expect(mine[0]).not.toContain("a private question");
    expect(s.logs.join("\n")).not.toContain("request.signal");
  });

  it("returns the raw candidates only when asked", async () => {
    const plain = await s.call({ model: "gemma-3-27b-it", prompt: "hi" });
    expect(plain.body).not.toHaveProperty("candidates");
    const res = await s.call({ model: "gemma-3-27b-it", prompt: "hi", include_candidates: true });
    expect(res.body.candidates).toEqual([
      expect.objectContaining({ content: { role: "model", parts: [{ text: "sim(gemma-3-27b-it): hi" }] }, finishReason: "STOP" }),
    ]);
  });

  it("passes generationConfig through (maxOutputTokens cuts the answer: MAX_TOKENS)", async () => {
    const res = await s.call({
      model: "gemini-2.5-flash",
      prompt: "a long answer please",
      generationConfig: { maxOutputTokens: 2, temperature: 0.2, topP: 0.9, topK: 20, stopSequences: ["END"] },
    });
    expect(res.status).toBe(200);
    expect(res.body.finish_reason).toBe("MAX_TOKENS");
    expect(res.body.usage.completion_tokens).toBe(2);
  });
});

describe("input forms and models", () => {
  it("Gemma with a system prompt works: the system text is folded into the first user turn", async () => {
    // The simulator, like Google, answers 400 to a systemInstruction for Gemma: success proves the fold.
    const res = await s.call({ model: "gemma-3-27b", system: "Отвечай кратко.", prompt: "Привет" });
    expect(res.status).toBe(200);
    expect(res.body.text).toBe("sim(gemma-3-27b-it): Отвечай кратко.\n\nПривет");
    expect(res.body.usage.prompt_tokens).toBe(tokensForText("Отвечай кратко.\n\nПривет"));
    expect(s.sim.stats().total.byStatus).toEqual({ "200": 1 });
  });

  it("chat messages with a system role, for Gemma and for Gemini (which keeps systemInstruction)", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "What is EVE?" },
    ];
    const gemma = await s.call({ model: "gemma-3-27b", messages });
    expect(gemma.status).toBe(200);
    expect(gemma.body.text).toBe("sim(gemma-3-27b-it): What is EVE?");
    expect(gemma.body.usage.prompt_tokens).toBe(tokensForText("Be brief.\n\nHi" + "Hello!" + "What is EVE?"));
    const gemini = await s.call({ model: "gemini-2.5-flash", messages });
    expect(gemini.status).toBe(200);
    expect(gemini.body.usage.prompt_tokens).toBe(tokensForText("Be brief." + "Hi" + "Hello!" + "What is EVE?"));
  });

  it("native Gemini contents, and a models/ prefix", async () => {
    const res = await s.call({
      model: "models/gemini-2.5-flash",
      contents: [{ role: "user", parts: [{ text: "one " }, { text: "two" }] }],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: "gemini-2.5-flash", text: "sim(gemini-2.5-flash): one two" });
  });

  it("JSON mode: refused for Gemma with a clear 400 (Google never called), served for Gemini", async () => {
    const gemma = await s.call({ model: "gemma-3-27b", prompt: "x", generationConfig: { responseMimeType: "application/json" } });
    expect(gemma.status).toBe(400);
    expect(gemma.body.error).toMatchObject({ code: "unsupported_feature", details: { feature: "responseMimeType" } });
    expect(s.sim.stats().total.received).toBe(0);
    const gemini = await s.call({ model: "gemini-2.5-flash", prompt: "x", generationConfig: { responseMimeType: "application/json" } });
    expect(gemini.status).toBe(200);
    expect(JSON.parse(gemini.body.text)).toEqual({ model: "gemini-2.5-flash", echo: "x" });
  });

  it("an unknown model is a 400 naming the fix, and costs Google nothing", async () => {
    const res = await s.call({ model: "claude-3-opus", prompt: "x" });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("unknown_model");
    expect(res.body.error.message).toMatch(/google_ai_model_limits/);
    expect(s.sim.stats().total.received).toBe(0);
  });
});

describe("idempotent request_id", () => {
  it("answers a repeated request_id from the stored result, without a second call to Google", async () => {
    const body = { model: "gemma-3-27b", prompt: "Один раз, пожалуйста.", request_id: "idem-http-1" };
    const first = await s.call(body, { headers: { "x-caller": "bot" } });
    expect(first.status).toBe(200);
    const again = await s.call(body, { headers: { "x-caller": "bot" } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, replayed: true });
    expect(s.sim.stats().total.received).toBe(1);
    const rows = await s.sql`select status from public.google_ai_attempts where request_id = 'idem-http-1'`;
    expect(rows.map((r) => r.status)).toEqual(["succeeded"]);
    const usage = await s.sql`select count(*)::int as n from public.token_usage where request_id = 'idem-http-1'`;
    expect(usage[0]!.n).toBe(1);
  });

  it("keeps request ids apart per caller, and never replays a request that named no id", async () => {
    const body = { model: "gemma-3-27b", prompt: "Чей это id?", request_id: "idem-http-2" };
    expect((await s.call(body, { headers: { "x-caller": "bot" } })).status).toBe(200);
    const other = await s.call(body, { headers: { "x-caller": "kaggle-runner" } });
    expect(other.status).toBe(200);
    expect(other.body.replayed).toBeUndefined();
    const anonymous = { model: "gemma-3-27b", prompt: "без id" };
    const a = await s.call(anonymous);
    const b = await s.call(anonymous);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.request_id).not.toBe(b.body.request_id);
    expect(b.body.replayed).toBeUndefined();
    expect(s.sim.stats().total.received).toBe(4);
    const stored = await s.sql`select count(*)::int as n from public.google_ai_responses`;
    expect(stored[0]!.n).toBeGreaterThanOrEqual(2);
    const unnamed = await s.sql`select count(*)::int as n from public.google_ai_responses
                                where request_id in (${a.body.request_id}, ${b.body.request_id})`;
    expect(unnamed[0]!.n).toBe(0);
  });

  it("frees a named request that failed, so repeating it makes a new call", async () => {
    s.sim.setFaults([{ kind: "bad_request", count: 1 }]);
    const body = { model: "gemma-3-27b", prompt: "сначала ошибка", request_id: "idem-http-3" };
    const failed = await s.call(body);
    expect(failed.status).toBe(400);
    expect(failed.body.error.code).toBe("upstream_rejected");
    const repeated = await s.call(body);
    expect(repeated.status).toBe(200);
    expect(repeated.body.replayed).toBeUndefined();
    expect(s.sim.stats().total.received).toBe(2);
  });
});
