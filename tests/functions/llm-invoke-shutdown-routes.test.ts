// A model past its row's shutdown date on the routes that book nothing (docs/models.md, "The life
// cycle"): every dialect's model list leaves it out and its one-model route answers 404, and every
// count-tokens route answers it as the generate route does: gemma-3-27b-it (shut down yesterday, its
// successor gemini-2.5-flash) is counted as its successor takes the request, with no call for it; a
// model shut down with no successor (gemini-2.5-flash-lite), or a token that may not use the
// successor, is answered 404 model_withdrawn naming it, as a generation is. Through the pinned
// @google/genai, openai and @anthropic-ai/sdk, real functions, real PostgreSQL, the Google simulator.
import Anthropic from "@anthropic-ai/sdk";
import { ApiError, GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENEROUS_SIM_MODELS, type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

const RETIRED = "gemma-3-27b-it";
const SUCCESSOR = "gemini-2.5-flash";
/** Shut down with no successor. */
const GONE = "gemini-2.5-flash-lite";

let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_shutdown_routes", {
    keys: [{ alias: "sd-key", project: "proj-sd", priority: 1, simKey: "sim-key-sd" }],
    simulator: { models: { ...GENEROUS_SIM_MODELS, [GONE]: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 } } },
  });
  for (const model of [RETIRED, SUCCESSOR, GONE]) await s.setLimit({ model, rpm: 1000, tpm: 10_000_000, rpd: 100_000 });
  // Before any request (workers cache a model's row): yesterday in UTC, as the reservation reads the day.
  await s.sql`update public.google_ai_model_limits
              set shutdown_date = ((now() at time zone 'UTC')::date - 1),
                  successor = case model when ${RETIRED} then ${SUCCESSOR} end
              where model in (${RETIRED}, ${GONE})`;
}, 120_000);

afterAll(async () => {
  await s?.close();
});

const gemini = (key = s.serviceKey) => new GoogleGenAI({ apiKey: key, vertexai: false, httpOptions: { baseUrl: s.url } });
const openai = () => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
const anthropic = (key = s.serviceKey) => new Anthropic({ baseURL: s.url, apiKey: key, maxRetries: 0 });
const countCalls = (model: string) =>
  s.sim.stats().recent.filter((r) => r.method === "countTokens" && r.model === model).length;

describe("a model past its shutdown date", () => {
  it("is in no model list, and its one-model routes answer 404, in each dialect", async () => {
    const google: string[] = [];
    for await (const m of await gemini().models.list()) google.push(m.name!.replace(/^models\//, ""));
    const oa: string[] = [];
    for await (const m of openai().models.list()) oa.push(m.id);
    const claude: string[] = [];
    for await (const m of anthropic().models.list({ limit: 100 })) claude.push(m.id);
    for (const [dialect, ids] of Object.entries({ google, oa, claude })) {
      expect(ids, dialect).toContain(SUCCESSOR);
      expect(ids, dialect).not.toContain(RETIRED);
      expect(ids, dialect).not.toContain("gemma-3-27b");
      expect(ids, dialect).not.toContain(GONE);
    }
    await expect(gemini().models.get({ model: RETIRED })).rejects.toMatchObject({ status: 404 });
    await expect(openai().models.retrieve(RETIRED)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(anthropic().models.retrieve(GONE)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("is counted as its successor takes the request, as a generation is served by it: no call for it", async () => {
    const contents = "count these words for the retired model";
    const bySuccessor = (await gemini().models.countTokens({ model: SUCCESSOR, contents })).totalTokens;
    const retired = (await gemini().models.countTokens({ model: "gemma-3-27b", contents })).totalTokens;
    expect(retired).toBe(bySuccessor);
    const messages = [{ role: "user" as const, content: contents }];
    const claudeWords = await anthropic().messages.countTokens({ model: RETIRED, messages });
    expect(claudeWords.input_tokens).toBe((await anthropic().messages.countTokens({ model: SUCCESSOR, messages })).input_tokens);
    expect(countCalls(RETIRED)).toBe(0);
    expect(countCalls(SUCCESSOR)).toBe(4);
    // The generate route for the same name: served by the successor, the step saying why.
    const res = await s.call({ model: "gemma-3-27b", prompt: "hello", mode: "NO_WAIT" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ model: SUCCESSOR, requested_model: RETIRED,
      fallback_from: [{ model: RETIRED, limit: "withdrawn", cause: "shut_down" }] });
  });

  it("with no successor, or one the token may not use: 404 model_withdrawn naming it, as generate answers", async () => {
    const generated = await s.call({ model: GONE, prompt: "hello", mode: "NO_WAIT" });
    expect(generated.status).toBe(404);
    expect(generated.body.error).toMatchObject({ code: "model_withdrawn", details: { model: GONE, successor: null } });
    const counted = await gemini().models.countTokens({ model: GONE, contents: "x" }).then(() => null, (e: unknown) => e);
    expect(counted).toBeInstanceOf(ApiError);
    expect((counted as ApiError).status).toBe(404);
    expect(JSON.parse((counted as ApiError).message).error.details[0]).toMatchObject({ reason: "MODEL_WITHDRAWN" });
    const claudeWords = await anthropic().messages.countTokens({ model: GONE, messages: [{ role: "user", content: "x" }] })
      .then(() => null, (e: unknown) => e);
    expect(claudeWords).toBeInstanceOf(Anthropic.NotFoundError);

    const { token } = await mintToken(s.sql, "sd-retired-only", { models: [RETIRED] });
    const byToken = await s.call({ model: RETIRED, prompt: "hello", mode: "NO_WAIT" }, { auth: token });
    expect(byToken.status).toBe(404);
    expect(byToken.body.error).toMatchObject({ code: "model_withdrawn", details: { model: RETIRED, successor: SUCCESSOR } });
    const tokenCount = await anthropic(token).messages.countTokens({ model: RETIRED, messages: [{ role: "user", content: "x" }] })
      .then(() => null, (e: unknown) => e) as InstanceType<typeof Anthropic.APIError>;
    expect(tokenCount).toBeInstanceOf(Anthropic.NotFoundError);
    expect(JSON.stringify(tokenCount.error)).toContain(SUCCESSOR);
    expect(countCalls(RETIRED) + countCalls(GONE)).toBe(0);
  });
});
