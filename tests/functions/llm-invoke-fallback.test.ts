// Model fallback over HTTP (the served function, a real PostgreSQL, the simulator): "Flash, else
// Gemma" said once. The next model serves when the first's day is used up (the answer, the audit rows
// and token_usage name the model that served; Gemma gets the system prompt folded), NO_WAIT falls
// back at once, WAIT queues on the first model when its turn comes within the wait (and falls back
// when it does not), a model the catalogue no longer lists is passed over, a token never falls back
// outside its models, and the model row's own chain is used when the request names none.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const FLASH = "gemini-2.5-flash";
const GEMMA = "gemma-3-27b-it";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_fallback", {
    keys: [{ alias: "fb-key", project: "proj-fb", priority: 1, simKey: "sim-key-fb" }],
    limits: [{ model: FLASH, rpm: 5, rpd: 20 }, { model: GEMMA, rpm: 30, rpd: 14400 }],
  });
  // The operator's chain for Flash, by alias. Set before any request: workers cache model rows.
  await s.sql`update public.google_ai_model_limits set fallback_models = '{gemma-3-27b}' where model = ${FLASH}`;
});

afterAll(async () => {
  await s?.close();
});

async function rows(requestId: string) {
  return s.sql<{ status: string; model: string; requested_model: string; limit_hit: string | null }[]>`
    select status, model, requested_model, limit_hit from public.google_ai_attempts
    where request_id = ${requestId} order by id`;
}

/** Books Flash's one request of the day (rpd 1) with a request that Flash serves. */
async function useUpFlashDay() {
  await s.reset();
  await s.setLimit({ model: FLASH, rpd: 1 });
  const first = await s.call({ model: FLASH, prompt: "the day's one", mode: "NO_WAIT" });
  expect(first.status).toBe(200);
  expect(first.body.model).toBe(FLASH);
}

const gemmaServed = () => s.sim.stats().byModel[GEMMA]?.byStatus["200"] ?? 0;

describe("fallback", () => {
  it("serves the next model when the first's day is used up; the answer and the attempt rows name the model that served", async () => {
    await useUpFlashDay();
    const res = await s.call({
      model: FLASH,
      fallback_models: ["gemma-3-27b"],
      system: "Отвечай кратко.",
      prompt: "Что такое EVE?",
      request_id: "fb-day",
    }, { headers: { "x-caller": "eve-bot" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      model: GEMMA,
      requested_model: FLASH,
      fallback_from: [{ model: FLASH, limit: "rpd", retry_after_ms: expect.any(Number) }],
      attempts: 1,
    });
    expect(res.body.fallback_from[0].retry_after_ms).toBeGreaterThan(0);
    expect(await rows("fb-day")).toEqual([
      { status: "refused", model: FLASH, requested_model: FLASH, limit_hit: "rpd" },
      { status: "succeeded", model: GEMMA, requested_model: FLASH, limit_hit: null },
    ]);
    const [usage] = await s.sql`select model from public.token_usage where request_id = 'fb-day'`;
    expect(usage).toEqual({ model: GEMMA });
    // Gemma takes no system instruction: the simulator answers 400 to one, so its 200 shows the fold.
    expect(gemmaServed()).toBe(1);
    expect(s.logs.some((l) => l.includes('"request_id":"fb-day"') && l.includes(`"requested_model":"${FLASH}"`))).toBe(true);
  });

  it("NO_WAIT falls back at once when the first model's window is full", async () => {
    await s.reset();
    await s.setLimit({ model: FLASH, rpm: 1, rpd: 20 });
    expect((await s.call({ model: FLASH, prompt: "fills the window", mode: "NO_WAIT" })).body.model).toBe(FLASH);
    const res = await s.call({ model: FLASH, fallback_models: [GEMMA], prompt: "x", mode: "NO_WAIT", request_id: "fb-nowait" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: GEMMA, waited_ms: 0, fallback_from: [{ model: FLASH, limit: "rpm" }] });
    expect(res.body.fallback_from[0].retry_after_ms).toBeGreaterThan(55_000);
    await s.setLimit({ model: FLASH, rpm: 5 });
  });

  it("WAIT queues on the first model when its turn comes within the wait, and falls back when it does not", async () => {
    await s.reset();
    await s.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
                values ('proj-fb', ${FLASH}, now() + interval '2 seconds', 'test')`;
    const queued = await s.call({ model: FLASH, fallback_models: [GEMMA], prompt: "x", max_wait_ms: 10_000, request_id: "fb-wait" });
    expect(queued.status).toBe(200);
    expect(queued.body.model).toBe(FLASH);
    expect(queued.body).not.toHaveProperty("fallback_from");
    expect(queued.body.waited_ms).toBeGreaterThan(1_000);
    // Served on its ticket's model: Gemma was never tried, and nobody polled.
    expect(await rows("fb-wait")).toEqual([{ status: "succeeded", model: FLASH, requested_model: FLASH, limit_hit: null }]);

    await s.sql`update public.google_ai_cooldowns set cooldown_until = now() + interval '20 seconds' where model = ${FLASH}`;
    const impatient = await s.call({ model: FLASH, fallback_models: [GEMMA], prompt: "x", max_wait_ms: 3_000, request_id: "fb-impatient" });
    expect(impatient.status).toBe(200);
    expect(impatient.body).toMatchObject({ model: GEMMA, waited_ms: 0, fallback_from: [{ model: FLASH, limit: "cooldown" }] });
    const [{ n }] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_queue`;
    expect(n).toBe(0);
  });

  it("passes over a model the catalogue says Google no longer lists", async () => {
    await s.reset();
    await s.sql`insert into public.google_ai_key_health (api_key_id, key_alias, status)
                values (${s.keyIds["fb-key"]!}, 'fb-key', 'ok')`;
    await s.sql`insert into public.google_ai_model_catalogue (api_key_id, model, key_alias, quota_group)
                values (${s.keyIds["fb-key"]!}, ${GEMMA}, 'fb-key', 'proj-fb')`;
    try {
      const res = await s.call({ model: FLASH, fallback_models: [GEMMA], prompt: "x", request_id: "fb-retired" });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ model: GEMMA, fallback_from: [{ model: FLASH, limit: "retired", retry_after_ms: null }] });
      expect((await rows("fb-retired")).map((r) => [r.status, r.model, r.limit_hit]))
        .toEqual([["refused", FLASH, "retired"], ["succeeded", GEMMA, null]]);
    } finally {
      await s.sql`delete from public.google_ai_key_health`;
      await s.sql`delete from public.google_ai_model_catalogue`;
    }
  });

  it("never takes a token to a model outside its scope", async () => {
    await useUpFlashDay();
    const before = gemmaServed();
    const narrow = await mintToken(s.sql, "fallback-narrow", { models: [FLASH] });
    const refused = await s.call({ model: FLASH, fallback_models: [GEMMA], prompt: "x", mode: "NO_WAIT", request_id: "fb-scope" },
      { auth: narrow.token });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: "rate_limited" }, limit: "rpd", model: FLASH });
    expect((await rows("fb-scope")).map((r) => r.model)).toEqual([FLASH]);
    expect(gemmaServed()).toBe(before);

    const wide = await mintToken(s.sql, "fallback-wide", { models: [FLASH, GEMMA] });
    const served = await s.call({ model: FLASH, fallback_models: [GEMMA], prompt: "x", request_id: "fb-scope-wide" }, { auth: wide.token });
    expect(served.status).toBe(200);
    expect(served.body).toMatchObject({ model: GEMMA, requested_model: FLASH });
    const [row] = await s.sql`select caller, model from public.google_ai_attempts where request_id = 'fb-scope-wide' and status = 'succeeded'`;
    expect(row).toEqual({ caller: "client:fallback-wide", model: GEMMA });
  });

  it("uses the model row's chain when the request names none; an empty fallback_models turns it off", async () => {
    await useUpFlashDay();
    const viaRow = await s.call({ model: FLASH, prompt: "x", mode: "NO_WAIT", request_id: "fb-row" });
    expect(viaRow.status).toBe(200);
    expect(viaRow.body).toMatchObject({ model: GEMMA, requested_model: FLASH, fallback_from: [{ model: FLASH, limit: "rpd" }] });
    const none = await s.call({ model: FLASH, fallback_models: [], prompt: "x", mode: "NO_WAIT", request_id: "fb-none" });
    expect(none.status).toBe(429);
    expect(none.body).toMatchObject({ limit: "rpd" });
    expect(none.body).not.toHaveProperty("fallback_from");
    expect((await rows("fb-none")).map((r) => r.model)).toEqual([FLASH]);
  });

  it("answers a chain the caller got wrong with a clear 400 before reserving anything", async () => {
    const unknown = await s.call({ model: FLASH, fallback_models: ["gemini-9"], prompt: "x", request_id: "fb-bad-1" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: "unknown_model" });
    expect(unknown.body.error.message).toContain("gemini-9");
    const json = await s.call({
      model: FLASH,
      fallback_models: [GEMMA],
      prompt: "x",
      generationConfig: { responseMimeType: "application/json" },
      request_id: "fb-bad-2",
    });
    expect(json.status).toBe(400);
    expect(json.body.error).toMatchObject({ code: "unsupported_feature", details: { model: GEMMA } });
    const repeated = await s.call({ model: FLASH, fallback_models: [GEMMA, "models/gemma-3-27b-it"], prompt: "x" });
    expect(repeated.status).toBe(400);
    expect(repeated.body.error).toMatchObject({ code: "invalid_request", details: { field: "fallback_models" } });
    expect([...(await rows("fb-bad-1")), ...(await rows("fb-bad-2"))]).toEqual([]);
  });
});
