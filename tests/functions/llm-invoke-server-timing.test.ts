// Server-Timing over HTTP, with the real function (plain Deno: finalize is awaited before the answer),
// PostgreSQL and the simulator: every route's answer says where its time went, by phase, with
// durations only (no names, ids or secrets); what a request never reached is not named.
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseServerTiming } from "../../supabase/functions/_shared/server-timing.ts";
import { type InvokeStack, mintToken, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let token: string;
const GEMMA = "gemma-3-27b-it";
const FLASH = "gemini-2.5-flash";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_server_timing", {
    keys: [{ alias: "timing-key", project: "proj-timing", priority: 1, simKey: "sim-key-timing" }],
  });
  ({ token } = await mintToken(s.sql, "timing-notebook", { models: [GEMMA, FLASH] }));
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
});

/** Each phase a finite, non-negative duration, their sum within the total (each is rounded to 0.01 ms). */
function phasesOf(header: string | null | undefined): Record<string, number> {
  expect(header).toMatch(/^([a-z]+;dur=\d+(\.\d{1,2})?, )*total;dur=\d+(\.\d{1,2})?$/);
  const phases = parseServerTiming(header!);
  for (const ms of Object.values(phases)) {
    expect(Number.isFinite(ms)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(0);
  }
  const { total, ...rest } = phases;
  const sum = Object.values(rest).reduce((a, b) => a + b, 0);
  expect(sum).toBeLessThanOrEqual(total! + 0.01 * Object.keys(phases).length);
  return phases;
}

describe("Server-Timing on llm-invoke's answers", () => {
  it("a native success names auth, body, reserve, upstream and finalize (awaited under plain Deno), and total", async () => {
    const res = await s.call({ model: GEMMA, prompt: "where does the time go?", request_id: "timing-ok" });
    expect(res.status).toBe(200);
    const phases = phasesOf(res.headers.get("server-timing"));
    expect(Object.keys(phases)).toEqual(["auth", "body", "reserve", "upstream", "finalize", "total"]);
    // Only phase names and durations: not the request id, the key's alias, the caller or the model.
    const header = res.headers.get("server-timing")!;
    for (const word of ["timing-ok", "timing-key", "proj-timing", GEMMA, s.serviceKey]) expect(header).not.toContain(word);
  });

  it("a WAIT request that queued names wait beside reserve", async () => {
    await s.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
                values ('proj-timing', ${GEMMA}, now() + interval '1500 milliseconds', 'test')`;
    const res = await s.call({ model: GEMMA, prompt: "patience", mode: "WAIT", max_wait_ms: 10_000 });
    expect(res.status).toBe(200);
    expect(res.body.waited_ms).toBeGreaterThan(0);
    const phases = phasesOf(res.headers.get("server-timing"));
    expect(Object.keys(phases)).toEqual(["auth", "body", "reserve", "wait", "upstream", "finalize", "total"]);
    // The sleep is wait, not reserve: the sleep the function reports, to the rounding of each clock.
    expect(phases.wait).toBeGreaterThanOrEqual(res.body.waited_ms - 1);
  });

  it("an invalid body (400) names auth and body, and no reservation", async () => {
    const res = await s.call({ model: GEMMA });
    expect(res.status).toBe(400);
    expect(Object.keys(phasesOf(res.headers.get("server-timing")))).toEqual(["auth", "body", "total"]);
  });

  it("a refused credential (401) names auth; an unknown path (404) only the total", async () => {
    const refused = await s.call({ model: GEMMA, prompt: "x" }, { auth: "not-a-key" });
    expect(refused.status).toBe(401);
    expect(Object.keys(phasesOf(refused.headers.get("server-timing")))).toEqual(["auth", "total"]);
    const unknown = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/nowhere" });
    expect(unknown.status).toBe(404);
    expect(Object.keys(phasesOf(unknown.headers.get("server-timing")))).toEqual(["total"]);
  });

  it("a native stream's headers name what came before them: upstream until the first chunk, no finalize", async () => {
    const res = await s.call({ model: GEMMA, prompt: "stream it", stream: true });
    expect(res.status).toBe(200);
    expect(res.text).toContain('"type":"done"');
    expect(Object.keys(phasesOf(res.headers.get("server-timing")))).toEqual([
      "auth",
      "body",
      "reserve",
      "upstream",
      "total",
    ]);
  });

  it("Google's route (its SDK, a scoped token: auth includes the token check)", async () => {
    const sdk = new GoogleGenAI({ apiKey: token, vertexai: false, httpOptions: { baseUrl: s.url } });
    const answer = await sdk.models.generateContent({ model: FLASH, contents: "time me" });
    expect(answer.text).toBe(`sim(${FLASH}): time me`);
    const phases = phasesOf(answer.sdkHttpResponse?.headers?.["server-timing"]);
    expect(Object.keys(phases)).toEqual(["auth", "body", "reserve", "upstream", "finalize", "total"]);
    expect(answer.sdkHttpResponse!.headers!["server-timing"]).not.toContain(token);
  });

  it("OpenAI's route (its SDK's raw response), and its models list", async () => {
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
    const { data, response } = await openai.chat.completions
      .create({ model: FLASH, messages: [{ role: "user", content: "time me" }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe(`sim(${FLASH}): time me`);
    expect(Object.keys(phasesOf(response.headers.get("server-timing")))).toEqual([
      "auth",
      "body",
      "reserve",
      "upstream",
      "finalize",
      "total",
    ]);
    const models = await openai.models.list().withResponse();
    expect(Object.keys(phasesOf(models.response.headers.get("server-timing")))).toEqual(["auth", "total"]);
  });
});
