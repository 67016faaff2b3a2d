// A withdrawn model over HTTP (the served functions, a real PostgreSQL, the simulator): Google stops
// serving gemma-3-27b-it. The first request that meets Google's 404 has a chain and is answered by
// the chain's next model in the same request; the model is learned withdrawn once (confirmed by one
// models.get on the same key, whatever words Google's two answers use: the simulator draws them per
// run), so ten more
// requests without a chain — native, Google's SDK and OpenAI's — each get a 404 model_withdrawn
// naming the successor, with at most one more call to Google for the withdrawn model; maintenance's
// run reports it; repointing the caller's name (one UPDATE, no deploy) makes the next request succeed.
import { ApiError, GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionsServer } from "../../scripts/serve-functions.ts";
import { modelNotFound } from "../../shared/google-sim/errors.ts";
import { eventually, GENEROUS_SIM_MODELS, type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";
import { serveMaintenance } from "../maintenance/serve-maintenance.ts";

const GEMMA3 = "gemma-3-27b-it";
const GEMMA4 = "gemma-4-31b-it";
const KEY = { alias: "lc-key", project: "proj-lc", priority: 1, simKey: "sim-key-lc" };
const MAINTENANCE_KEY = "sb_secret_lifecycle_maintenance_0123456789";

let s: InvokeStack;
let maintenance: FunctionsServer;
let token: string;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_lifecycle", {
    keys: [KEY],
    simulator: { models: { ...GENEROUS_SIM_MODELS, [GEMMA4]: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 } } },
  });
  ({ token } = await mintToken(s.sql, "lc-notebook", { models: [GEMMA3, GEMMA4] }));
  // The maintenance function, served against the same database and "Google".
  ({ server: maintenance } = await serveMaintenance({
    dbUrl: s.db.url,
    serviceKey: MAINTENANCE_KEY,
    env: { GOOGLE_AI_BASE_URL: s.sim.url, GOOGLE_TEST_KEY_LC_KEY: KEY.simKey },
  }));
  // Google withdraws Gemma 3 (the gateway's rows do not know yet).
  s.sim.withdraw(GEMMA3);
}, 120_000);

afterAll(async () => {
  await maintenance?.close();
  await s?.close();
});

const gemma3Calls = () => s.sim.stats().byModel[GEMMA3]?.received ?? 0;
const gemini = () => new GoogleGenAI({ apiKey: token, vertexai: false, httpOptions: { baseUrl: s.url } });
const openai = () => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });

describe("a withdrawn model", () => {
  it("is learned on Google's first 404, and the same request is answered by its chain's next model", async () => {
    const res = await s.call({ model: "gemma-3-27b", fallback_models: [GEMMA4], system: "Be brief.", prompt: "hello",
      request_id: "lc-chain" });
    expect(res.status).toBe(200);
    // Gemma 4 takes the system instruction itself (its row says so): the question is not folded.
    expect(res.body).toMatchObject({ model: GEMMA4, text: `sim(${GEMMA4}): hello`, attempts: 2, requested_model: GEMMA3,
      fallback_from: [{ model: GEMMA3, limit: "withdrawn" }] });
    // The generate call that met the 404, and the models.get on the same key that confirmed it.
    expect(gemma3Calls()).toBe(2);
    expect(s.sim.stats().byMethod["models.get"]?.received).toBe(1);

    // (The success is finalized off the response path: wait for its row.)
    const rows = await eventually(async () => {
      const r = await s.sql`select status, model, limit_hit, http_status from public.google_ai_attempts
                            where request_id = 'lc-chain' order by id`;
      return r.at(-1)?.status === "succeeded" && r;
    });
    expect(rows).toEqual([
      { status: "withdrawn", model: GEMMA3, limit_hit: null, http_status: 404 },
      { status: "refused", model: GEMMA3, limit_hit: "withdrawn", http_status: null },
      { status: "succeeded", model: GEMMA4, limit_hit: null, http_status: 200 },
    ]);
    const [row] = await s.sql`select withdrawn_at is not null as marked, withdrawn_message, successor
                              from public.google_ai_model_limits where model = ${GEMMA3}`;
    // Google's message as this run's simulator worded it (whichever wording was drawn), on one line.
    expect(row).toEqual({ marked: true, successor: GEMMA4,
      withdrawn_message: modelNotFound(GEMMA3, "generateContent").body.error.message.replace(/\s+/g, " ") });
    // Its capacity was given back: only the admission that served is in the window.
    const [{ n }] = await s.sql`select coalesce(sum(window_requests), 0)::int as n from public.google_ai_usage_counters
                                where model = ${GEMMA3}`;
    expect(n).toBe(0);
  });

  it("ten more without a chain, on all three surfaces at once: each a 404 model_withdrawn naming the successor", async () => {
    const before = gemma3Calls();
    const native = Array.from({ length: 6 }, (_, i) =>
      s.call({ model: "gemma-3-27b", prompt: `again ${i}`, fallback_models: [] }).then((r) => {
        expect(r.status).toBe(404);
        expect(r.body.error).toMatchObject({ code: "model_withdrawn", details: { model: GEMMA3, successor: GEMMA4 } });
        expect(r.body.error.message).toContain(GEMMA4);
      }));
    const viaGoogleSdk = Array.from({ length: 2 }, () =>
      gemini().models.generateContent({ model: "gemma-3-27b", contents: "x" }).then(
        () => expect.unreachable("a withdrawn model answered"),
        (e: unknown) => {
          expect(e).toBeInstanceOf(ApiError);
          expect((e as ApiError).status).toBe(404);
          const body = JSON.parse((e as ApiError).message);
          expect(body.error.status).toBe("NOT_FOUND");
          expect(body.error.details[0]).toMatchObject({ reason: "MODEL_WITHDRAWN" });
        },
      ));
    const viaOpenAiSdk = Array.from({ length: 2 }, () =>
      openai().chat.completions.create({ model: "gemma-3-27b", messages: [{ role: "user", content: "x" }] }).then(
        () => expect.unreachable("a withdrawn model answered"),
        (e: unknown) => {
          expect(e).toBeInstanceOf(OpenAI.NotFoundError);
          expect((e as InstanceType<typeof OpenAI.APIError>).code).toBe("model_withdrawn");
        },
      ));
    await Promise.all([...native, ...viaGoogleSdk, ...viaOpenAiSdk]);
    // countTokens books nothing, and is answered from the row as well.
    const counted = await gemini().models.countTokens({ model: "gemma-3-27b", contents: "x" }).catch((e: unknown) => e);
    expect(counted).toBeInstanceOf(ApiError);
    expect((counted as ApiError).status).toBe(404);
    expect(gemma3Calls() - before).toBeLessThanOrEqual(1);
  });

  it("maintenance's run reports it (missing from Google's list, withdrawn, its successor)", async () => {
    const res = await fetch(`${maintenance.url}/functions/v1/maintenance`, {
      method: "POST",
      headers: { authorization: `Bearer ${MAINTENANCE_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ source: "lifecycle-test", housekeeping: false }),
    });
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.catalogue.unlisted).toContain(GEMMA3);
    expect(body.lifecycle).toMatchObject({ status: "reviewed", restored: [] });
    expect(body.lifecycle.missing).toContain(GEMMA3);
    expect(body.lifecycle.withdrawn).toEqual([expect.objectContaining({ model: GEMMA3, successor: GEMMA4 })]);
    expect(body.problems.join("\n")).toMatch(/model gemma-3-27b-it is withdrawn .*successor gemma-4-31b-it/);
    const [log] = await s.sql`select details from public.google_ai_maintenance_log where id = ${body.run_id}`;
    expect(log!.details.lifecycle.withdrawn[0].model).toBe(GEMMA3);
  });

  it("is left out of the models a caller can list, as Google leaves it out of its own", async () => {
    const ids: string[] = [];
    for await (const model of openai().models.list()) ids.push(model.id);
    expect(ids).toContain(GEMMA4);
    expect(ids).not.toContain(GEMMA3);
    expect(ids).not.toContain("gemma-3-27b");
  });

  it("repointing the caller's name makes the next request succeed, with no deploy", async () => {
    const before = gemma3Calls();
    await s.sql`update public.google_ai_model_limits set aliases = aliases || '{gemma-3-27b}' where model = ${GEMMA4}`;
    const res = await s.call({ model: "gemma-3-27b", system: "Be brief.", prompt: "after the repoint", fallback_models: [] });
    expect(res.status).toBe(200);
    expect(res.body.model).toBe(GEMMA4);
    expect(res.body.text).toBe(`sim(${GEMMA4}): after the repoint`);
    // The token's scope names canonical models: it may use Gemma 4, so its SDK call is served too.
    const viaSdk = await gemini().models.generateContent({ model: "gemma-3-27b", contents: "sdk after" });
    expect(viaSdk.text).toBe(`sim(${GEMMA4}): sdk after`);
    expect(gemma3Calls()).toBe(before);
    // Gemma 4 was never marked withdrawn on the way.
    const [row] = await s.sql`select withdrawn_at from public.google_ai_model_limits where model = ${GEMMA4}`;
    expect(row!.withdrawn_at).toBeNull();
  });

  it("a stream meets Google's 404 before its first chunk: the same request streams from the chain's next model", async () => {
    s.sim.withdraw("gemini-2.5-flash");
    const client = new GoogleGenAI({ apiKey: s.serviceKey, vertexai: false,
      httpOptions: { baseUrl: s.url, headers: { "x-eve-fallback-models": "gemini-2.5-flash-lite" } } });
    let text = "";
    for await (const chunk of await client.models.generateContentStream({ model: "gemini-2.5-flash", contents: "streamed" })) {
      text += chunk.text ?? "";
    }
    expect(text).toBe("sim(gemini-2.5-flash-lite): streamed");
    const [row] = await s.sql`select withdrawn_at is not null as marked from public.google_ai_model_limits
                              where model = 'gemini-2.5-flash'`;
    expect(row!.marked).toBe(true);
  });
});

// A 404 is a withdrawal only when it is Google's own 404 NOT_FOUND for the model called and models.get on
// the same key answers the same kind of 404: one key's view (a project that cannot see a preview model),
// whatever Google's sentence, must not take the model away from every project.
describe("a 404 that is not a withdrawal", () => {
  const LITE = "gemini-2.5-flash-lite";
  const modelGets = () => s.sim.stats().byMethod["models.get"]?.received ?? 0;
  const marked = async () => {
    const [row] = await s.sql`select withdrawn_at is not null as marked from public.google_ai_model_limits
                              where model = ${LITE}`;
    return row!.marked as boolean;
  };

  it.each([
    ["in Google's words", undefined],
    ["in other words, for another API version", `models/${LITE} is not found for API version v1, or is not ` +
      "supported for generateContent. Call ListModels to see the list of available models."],
    ["naming another model", "models/gemini-9-pro is not found for API version v1beta."],
  ])("this key meets a 404 %s, but models.get on it sees the model: Google's error to the caller, nothing marked",
    async (_, message) => {
      const before = modelGets();
      s.sim.addFault({ kind: "model_not_found", model: LITE, count: 1, ...(message === undefined ? {} : { message }) });
      const res = await s.call({ model: LITE, prompt: "not withdrawn", fallback_models: [] });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: "upstream_rejected", details: { upstream_status: 404 } });
      expect(modelGets() - before).toBe(1);
      expect(await marked()).toBe(false);
      const next = await s.call({ model: LITE, prompt: "still served", fallback_models: [] });
      expect(next.status).toBe(200);
      expect(next.body.text).toBe(`sim(${LITE}): still served`);
    });
});
