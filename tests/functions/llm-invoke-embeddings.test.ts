// Embeddings through the pinned SDKs, changed only in their base URL and key: OpenAI's
// `embeddings.create` (POST /v1/embeddings) and Google's `models.embedContent` (:batchEmbedContents)
// on text-embedding-3-small (OpenAI's simulator) and gemini-embedding-001 (Google's), one input and a
// batch of 100; each call reserved (its input booked, no output), logged and priced like any attempt;
// a batch counted as each provider counts it (OpenAI: one request per call; Google: one per input, so
// the gateway sends each input alone); a model that does not embed and a batch over the provider's
// maximum refused by name; a Google batch under NO_WAIT that meets the minute part way refused with
// the count of inputs served (and billed) before it; and 8 callers x 40 NO_WAIT calls against an RPM
// of 6 on a fresh minute: exactly 6 served, no provider 429, each served call's cost its usage x the
// price row to the digit.
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { awayFromMinuteEdge, GENEROUS_SIM_MODELS, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

const SMALL = "text-embedding-3-small";
const GEMINI = "gemini-embedding-001";

let s: InvokeStack;
let client: OpenAI;
let genai: GoogleGenAI;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_embeddings", {
    keys: [
      { alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-google" },
      { alias: "openai-main", provider: "openai", project: "org-o", priority: 1, simKey: "sk-sim-embed" },
    ],
    simulator: { models: { ...GENEROUS_SIM_MODELS, [GEMINI]: { rpm: 100_000, tpm: 100_000_000, rpd: 1_000_000 } } },
    openaiSimulator: { models: { [SMALL]: { rpm: 100_000, tpm: 100_000_000 } } },
  });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
  genai = new GoogleGenAI({ apiKey: s.serviceKey, vertexai: false, httpOptions: { baseUrl: s.url } });
}, 120_000);

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_attempts`;
  await s.setLimit({ model: SMALL, rpm: 3000, tpm: 1_000_000, rpd: null });
  await s.setLimit({ model: GEMINI, rpm: 1000, tpm: 1_000_000, rpd: 100_000 });
});

/** A numeric's text in units of 1e-10 dollars, exactly. */
const costUnits = (text: string) => {
  const [whole, frac = ""] = text.split(".");
  expect(frac.replace(/0+$/, "").length).toBeLessThanOrEqual(10);
  return BigInt(whole!) * 10_000_000_000n + BigInt((frac + "0000000000").slice(0, 10));
};

const texts = (n: number) => Array.from({ length: n }, (_, i) => `event ${i}: a concert in Riga on day ${i % 30}`);
const norm = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

describe("embeddings through OpenAI's SDK", () => {
  it("text-embedding-3-small: one string, and a batch of 100 in one provider request", async () => {
    const one = await client.embeddings.create({ model: SMALL, input: "hello vectors" });
    expect(one.object).toBe("list");
    expect(one.data).toHaveLength(1);
    expect(one.data[0]!.embedding).toHaveLength(1536);
    expect(norm(one.data[0]!.embedding)).toBeCloseTo(1, 4);
    expect(one.usage.prompt_tokens).toBeGreaterThan(0);
    expect(one.usage.total_tokens).toBe(one.usage.prompt_tokens);

    const batch = await client.embeddings.create({ model: SMALL, input: texts(100), dimensions: 256, encoding_format: "float" });
    expect(batch.data.map((d) => d.index)).toEqual([...Array(100).keys()]);
    expect(batch.data.every((d) => d.embedding.length === 256)).toBe(true);
    expect(new Set(batch.data.map((d) => d.embedding.join(","))).size).toBe(100);
    // The same text, the same vector (deterministic), whatever the batch.
    const again = await client.embeddings.create({ model: SMALL, input: [texts(100)[7]!], dimensions: 256 });
    expect(again.data[0]!.embedding).toEqual(batch.data[7]!.embedding);
    // One provider request for the whole batch, as OpenAI counts it.
    const calls = s.openaiSim.stats().recent.filter((r) => r.method === "embeddings");
    expect(calls).toHaveLength(3);
    // Each call an attempt, its input booked and counted, no output.
    const rows = await s.sql<{ input_tokens: number; output_tokens: number; status: string }[]>`
      select input_tokens, output_tokens, status from public.google_ai_attempts where status <> 'refused' order by admitted_at`;
    expect(rows.map((r) => r.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect(rows[1]).toMatchObject({ input_tokens: batch.usage.prompt_tokens, output_tokens: 0 });
  });

  it("gemini-embedding-001: one string, and a batch of 100 sent one input per request (as Google counts a batch)", async () => {
    const one = await client.embeddings.create({ model: GEMINI, input: "hello vectors" });
    expect(one.data[0]!.embedding).toHaveLength(3072);
    const batch = await client.embeddings.create({ model: GEMINI, input: texts(100), dimensions: 768 });
    expect(batch.data).toHaveLength(100);
    expect(batch.data.every((d) => d.embedding.length === 768)).toBe(true);
    expect(batch.model).toBe(GEMINI);
    const quota = s.sim.stats().quota as Record<string, Record<string, { minuteRequests: number }>>;
    expect(Object.values(quota).reduce((n, byModel) => n + (byModel[GEMINI]?.minuteRequests ?? 0), 0)).toBe(101);
    const [{ n }] = await s.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where model = ${GEMINI} and status = 'succeeded'`;
    expect(n).toBe(101);
    expect(batch.usage.prompt_tokens).toBeGreaterThan(100);
  });

  it("refuses by name: a model that does not embed, an embedding model asked to generate, too many inputs", async () => {
    const chat = await client.embeddings.create({ model: "gpt-4o", input: "x" }).then(() => null, (e: unknown) => e) as
      InstanceType<typeof OpenAI.APIError>;
    expect(chat).toBeInstanceOf(OpenAI.BadRequestError);
    expect(chat.code).toBe("unsupported_feature");
    expect(chat.message).toContain("gpt-4o does not embed");
    const generate = await client.chat.completions.create({ model: SMALL, messages: [{ role: "user", content: "hi" }] })
      .then(() => null, (e: unknown) => e) as InstanceType<typeof OpenAI.APIError>;
    expect(generate).toBeInstanceOf(OpenAI.BadRequestError);
    expect(generate.message).toContain("is an embedding model");
    const tooMany = await client.embeddings.create({ model: SMALL, input: texts(2049) }).then(() => null, (e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    const big = await client.embeddings.create({ model: SMALL, input: "x", dimensions: 4096 }).then(() => null, (e: unknown) => e) as
      InstanceType<typeof OpenAI.APIError>;
    expect(big.param).toBe("dimensions");
    // Nothing reached a provider.
    expect(s.openaiSim.stats().recent.filter((r) => r.method === "embeddings")).toHaveLength(0);
  });
});

describe("embedding models beside the others", () => {
  it("are in the model list and the quota route, as any model row", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining([SMALL, "text-embedding-3-large", GEMINI]));
    const quota = await s.raw({
      method: "GET",
      path: "/functions/v1/llm-invoke/v1/quota",
      headers: { authorization: `Bearer ${s.serviceKey}` },
    });
    expect(JSON.stringify(quota.body)).toContain(SMALL);
  });
});

describe("embeddings through Google's SDK", () => {
  it.each([[GEMINI, 3072], [SMALL, 1536]] as const)("models.embedContent on %s", async (model, size) => {
    const one = await genai.models.embedContent({ model, contents: "hello vectors" });
    expect(one.embeddings).toHaveLength(1);
    expect(one.embeddings![0]!.values).toHaveLength(size);
    const many = await genai.models.embedContent({ model, contents: ["a", "b", "c"], config: { outputDimensionality: 128 } });
    expect(many.embeddings!.map((e) => e.values!.length)).toEqual([128, 128, 128]);
  });

  it("Google's own fields reach only Google's model; a batch over 100 is refused by name", async () => {
    const doc = await genai.models.embedContent({ model: GEMINI, contents: "doc", config: { taskType: "RETRIEVAL_DOCUMENT", title: "T" } });
    expect(doc.embeddings).toHaveLength(1);
    const sent = s.sim.stats().recent.filter((r) => r.method === "embedContent").at(-1)!.body as Record<string, unknown>;
    expect(sent).toMatchObject({ taskType: "RETRIEVAL_DOCUMENT", title: "T" });
    await expect(genai.models.embedContent({ model: SMALL, contents: "doc", config: { taskType: "RETRIEVAL_DOCUMENT" } }))
      .rejects.toThrow(/taskType/);
    await expect(genai.models.embedContent({ model: GEMINI, contents: texts(101) })).rejects.toThrow(/at most 100/);
  });
});

describe("embeddings under the gateway's admission", () => {
  it("a Google batch under NO_WAIT past the minute's room: the inputs before the refused one served and billed, the refusal counts them", async () => {
    await s.setLimit({ model: GEMINI, rpm: 3 });
    await awayFromMinuteEdge(20_000);
    const res = await s.raw({
      method: "POST",
      path: "/functions/v1/llm-invoke/v1/embeddings",
      headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, "x-eve-mode": "NO_WAIT" },
      body: JSON.stringify({ model: GEMINI, input: texts(5) }),
    });
    expect(res.status).toBe(429);
    expect(res.body.error.details).toMatchObject({ served_inputs: 3, inputs: 5 });
    expect(res.body.error.message).toContain("Input 3 of this batch of 5 was refused");
    // Google was asked for the three served inputs only, and each is an attempt in the books.
    const sent = s.sim.stats().recent.filter((r) => r.method === "embedContent");
    expect(sent).toHaveLength(3);
    expect(sent.filter((r) => r.status === 429)).toHaveLength(0);
    const [{ n }] = await s.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where model = ${GEMINI} and status = 'succeeded'`;
    expect(n).toBe(3);
  }, 60_000);

  it("8 callers x 40 NO_WAIT calls against RPM 6 on a fresh minute: exactly 6 served, 0 provider 429s, costs exact", async () => {
    await s.setLimit({ model: SMALL, rpm: 6 });
    await awayFromMinuteEdge(20_000);
    const call = (caller: number, i: number) =>
      s.raw({
        method: "POST",
        path: "/functions/v1/llm-invoke/v1/embeddings",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${s.serviceKey}`,
          "x-caller": `embedder-${caller}`,
          "x-eve-mode": "NO_WAIT",
        },
        body: JSON.stringify({ model: SMALL, input: `caller ${caller} text ${i}` }),
      });
    const answers = await Promise.all(
      Array.from({ length: 8 }, async (_, caller) => {
        const mine = [];
        for (let i = 0; i < 40; i++) mine.push(await call(caller, i));
        return mine;
      }),
    );
    const all = answers.flat();
    expect(all.filter((a) => a.status === 200)).toHaveLength(6);
    expect(all.filter((a) => a.status === 429)).toHaveLength(314);
    const sims429 = s.openaiSim.stats().recent.filter((r) => r.method === "embeddings" && r.status === 429);
    expect(sims429).toHaveLength(0);
    const [price] = await s.sql<{ input: string }[]>`
      select input_per_mtok::text as input from public.google_ai_model_prices where model = ${SMALL} and service_tier = 'standard'`;
    expect(Number(price!.input)).toBe(0.02);
    const rows = await s.sql<{ input_tokens: number; output_tokens: number; cost: string }[]>`
      select input_tokens, output_tokens, cost_usd::text as cost from public.google_ai_attempts
      where model = ${SMALL} and status = 'succeeded'`;
    expect(rows).toHaveLength(6);
    const served = all.filter((a) => a.status === 200).map((a) => a.body.usage.prompt_tokens as number).sort();
    expect(rows.map((r) => r.input_tokens).sort()).toEqual(served);
    for (const row of rows) {
      expect(row.output_tokens).toBe(0);
      // $0.02 per million = 200 units of 1e-10 $ per token.
      expect(costUnits(row.cost)).toBe(BigInt(row.input_tokens) * 200n);
    }
  }, 60_000);
});
