// What Google receives of a body in Google's own shape, on the native route and on Google's own
// (v1beta) route: llm-invoke reads every body into the hub's words, and what the hub has no word for
// (safety settings, a search tool, a generationConfig field, a call without arguments, signatures,
// ids) rides beside them for Google's dialect, which sends it back as it came. So the simulator's
// record of the request is the caller's body, field for field. (fileData and cachedContent are the
// gateway's own refusals, docs/gemini.md: they name data held by one Google project.)
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GENEROUS_SIM_MODELS, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

const FLASH = "gemini-2.5-flash";
let s: InvokeStack;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_google_fields", {
    keys: [{ alias: "gf-a", project: "proj-gf", priority: 1, simKey: "sim-key-gf-a" }],
    simulator: { models: GENEROUS_SIM_MODELS },
  });
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
});

/** Google's fields as a caller writes them, many the hub has no word for. */
const googleFields = (generationConfig: Record<string, unknown>) => ({
  contents: [
    { role: "user", parts: [{ text: "What is the weather in Oslo, and the time?" }] },
    {
      role: "model",
      parts: [
        { functionCall: { name: "get_weather", args: { city: "Oslo" }, id: "call-1" }, thoughtSignature: "c2lnLWNhbGw=" },
        { functionCall: { name: "now", id: "call-2" } },
      ],
    },
    {
      role: "user",
      parts: [
        { functionResponse: { name: "get_weather", response: { temperature_c: 3 }, id: "call-1" } },
        { functionResponse: { name: "now", response: { time: "12:00" }, id: "call-2" } },
      ],
    },
    { role: "model", parts: [{ text: "3 °C at noon.", thoughtSignature: "c2lnLXRleHQ=" }] },
    { role: "user", parts: [{ text: "Thanks. Say it again as JSON." }] },
  ],
  generationConfig: {
    temperature: 0.4,
    responseMimeType: "application/json",
    mediaResolution: "MEDIA_RESOLUTION_LOW",
    ...generationConfig,
  },
  tools: [
    {
      functionDeclarations: [
        { name: "get_weather", parameters: { type: "OBJECT", properties: { city: { type: "STRING" } } } },
        { name: "now" },
      ],
    },
    { googleSearch: {} },
  ],
  toolConfig: { functionCallingConfig: { mode: "NONE" } },
  safetySettings: [
    { category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" },
    { category: "HARM_CATEGORY_DANGEROUS_CONTENT", threshold: "BLOCK_ONLY_HIGH" },
  ],
});

const OPENAPI_SCHEMA = { responseSchema: { type: "OBJECT", properties: { text: { type: "STRING" } }, propertyOrdering: ["text"] } };
const JSON_SCHEMA = { responseJsonSchema: { type: "object", properties: { text: { type: "string" } }, additionalProperties: false } };

async function geminiRoute(body: unknown) {
  return await s.raw({
    method: "POST",
    path: `/functions/v1/llm-invoke/v1beta/models/${FLASH}:generateContent`,
    headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` },
    body: JSON.stringify(body),
  });
}

describe("a body in Google's shape reaches Google as sent", () => {
  it.each([
    ["the native route, an OpenAPI response schema", OPENAPI_SCHEMA],
    ["the native route, a JSON Schema response schema", JSON_SCHEMA],
  ])("%s", async (_, schema) => {
    const fields = googleFields(schema);
    const res = await s.call({ model: FLASH, ...fields });
    expect(res.status, res.text).toBe(200);
    expect(s.sent("google")).toEqual([fields]);
  });

  it.each([
    ["Google's route, an OpenAPI response schema", OPENAPI_SCHEMA],
    ["Google's route, a JSON Schema response schema", JSON_SCHEMA],
  ])("%s", async (_, schema) => {
    const fields = googleFields(schema);
    const res = await geminiRoute({ ...fields, systemInstruction: { parts: [{ text: "Be brief." }] } });
    expect(res.status, res.text).toBe(200);
    expect(s.sent("google")).toEqual([{ ...fields, systemInstruction: { parts: [{ text: "Be brief." }] } }]);
  });

  it("a generationConfig field no version of Google's API has goes as sent too, and Google's refusal is the caller's", async () => {
    const fields = googleFields({ notAGoogleField: { a: 1 } });
    const native = await s.call({ model: FLASH, ...fields });
    expect(native.status).toBe(400);
    expect(native.body.error.code).toBe("upstream_rejected");
    const google = await geminiRoute(fields);
    expect(google.status).toBe(400);
    expect(s.sent("google")).toEqual([fields, fields]);
  });

  it("an OpenAI model refuses what only Google's models take, naming it, before anything is booked", async () => {
    const attempts = async () => (await s.sql`select count(*)::int as n from public.google_ai_attempts`)[0]!.n;
    const before = await attempts();
    const res = await s.call({ model: "gpt-4o", ...googleFields(OPENAPI_SCHEMA) });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: "unsupported_feature",
      details: { model: "gpt-4o", field: "generationConfig.mediaResolution" },
    });
    expect(res.body.error.details.features).toEqual(["generationConfig.mediaResolution", "tools[1].googleSearch"]);
    expect(await attempts()).toBe(before);
  });
});
