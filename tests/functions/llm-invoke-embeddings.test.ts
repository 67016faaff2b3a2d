// Embeddings through the pinned SDKs, changed only in their base URL and key: OpenAI's
// `embeddings.create` (POST /v1/embeddings) and Google's `models.embedContent` (:batchEmbedContents)
// on text-embedding-3-small (OpenAI's simulator) and gemini-embedding-001 (Google's), one input and a
// batch of 100, token ids (OpenAI's models only); each call reserved (its input booked, no output), logged and priced like any attempt;
// a batch counted as each provider counts it (OpenAI: one request per call; Google: one per input,
// booked at once and sent as one batchEmbedContents, one attempt row); a model that does not embed, a
// batch over the provider's maximum, an empty input list and one over the route's 2,048 refused by
// name on each route; a Google batch booked whole: more inputs than the row's minute refused at once
// with no call (400), more than is left of the day refused at once as the day's 429 (Retry-After at
// its turn, no call, on OpenAI's and Google's routes), a WAIT batch served whole (every vector, in
// order) once the minute frees room for all of it, a NO_WAIT batch with room for part of it refused
// whole with no call; and 8 callers x 40
// NO_WAIT calls against an RPM of 6 on a fresh minute: exactly 6 served, no provider 429, each served
// call's cost its usage x the price row to the digit.
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { reservation } from "../support/reserve-answer.ts";
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

  it("gemini-embedding-001: one string, and a batch of 100 in one batchEmbedContents, booked as 100 requests (as Google counts it)", async () => {
    const one = await client.embeddings.create({ model: GEMINI, input: "hello vectors" });
    expect(one.data[0]!.embedding).toHaveLength(3072);
    const batch = await client.embeddings.create({ model: GEMINI, input: texts(100), dimensions: 768 });
    expect(batch.data).toHaveLength(100);
    expect(batch.data.every((d) => d.embedding.length === 768)).toBe(true);
    expect(batch.model).toBe(GEMINI);
    const quota = s.sim.stats().quota as Record<string, Record<string, { minuteRequests: number }>>;
    expect(Object.values(quota).reduce((n, byModel) => n + (byModel[GEMINI]?.minuteRequests ?? 0), 0)).toBe(101);
    // Two calls arrived (one embedContent, one batchEmbedContents), two attempt rows, 101 requests booked.
    expect(s.sim.stats().recent.filter((r) => r.method === "embedContent" || r.method === "batchEmbedContents"))
      .toHaveLength(2);
    const rows = await s.sql<{ requests: number }[]>`
      select requests from public.google_ai_attempts where model = ${GEMINI} and status = 'succeeded' order by id`;
    expect(rows.map((r) => r.requests)).toEqual([1, 100]);
    const [{ booked }] = await s.sql<{ booked: number }[]>`
      select window_requests as booked from public.google_ai_usage_counters where model = ${GEMINI}`;
    expect(booked).toBe(101);
    expect(batch.usage.prompt_tokens).toBeGreaterThan(100);
  });

  it("token ids reach OpenAI's model as given (booked one each), and are refused by name by Google's", async () => {
    const ids = await client.embeddings.create({ model: SMALL, input: [[101, 102, 103], [104, 105]], encoding_format: "float" });
    expect(ids.data.map((d) => d.embedding.length)).toEqual([1536, 1536]);
    const sent = s.openaiSim.stats().recent.filter((r) => r.method === "embeddings").at(-1)!.body as { input: unknown };
    expect(sent.input).toEqual([[101, 102, 103], [104, 105]]);
    const google = await client.embeddings.create({ model: GEMINI, input: [[101, 102]] }).then(() => null, (e: unknown) => e) as
      InstanceType<typeof OpenAI.APIError>;
    expect(google).toBeInstanceOf(OpenAI.BadRequestError);
    expect(google.code).toBe("unsupported_feature");
    expect(google.message).toContain("token ids are OpenAI's models' only");
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
    const tooMany = await client.embeddings.create({ model: SMALL, input: texts(2049) }).then(() => null, (e: unknown) => e) as
      InstanceType<typeof OpenAI.APIError>;
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    expect(tooMany.message).toContain("input: 2049 inputs sent; at most 2048 inputs can be in one request.");
    expect(tooMany.param).toBe("input");
    const empty = await client.embeddings.create({ model: SMALL, input: [] }).then(() => null, (e: unknown) => e) as
      InstanceType<typeof OpenAI.APIError>;
    expect(empty).toBeInstanceOf(OpenAI.BadRequestError);
    expect(empty.code).toBe("empty_input");
    expect(empty.message).toContain("empty input");
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
    await expect(genai.models.embedContent({ model: GEMINI, contents: texts(101) }))
      .rejects.toThrow("requests: 101 requests sent; at most 100 requests can be in one batch.");
  });

  it(":batchEmbedContents refuses an empty batch and one over Google's 100 in Google's dialect, naming the problem", async () => {
    const batch = (requests: unknown[]) =>
      s.raw({
        method: "POST",
        path: `/functions/v1/llm-invoke/v1beta/models/${GEMINI}:batchEmbedContents`,
        headers: { "content-type": "application/json", "x-goog-api-key": s.serviceKey },
        body: JSON.stringify({ requests }),
      });
    const empty = await batch([]);
    expect(empty.status).toBe(400);
    expect(empty.body.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });
    expect(empty.body.error.message).toContain("requests: empty input");
    const over = await batch(texts(101).map((text) => ({ model: `models/${GEMINI}`, content: { parts: [{ text }] } })));
    expect(over.status).toBe(400);
    expect(over.body.error.message).toContain("101 requests sent; at most 100");
    expect(s.sim.stats().recent.filter((r) => r.method === "batchEmbedContents")).toHaveLength(0);
  });
});

describe("embeddings under the gateway's admission", () => {
  /** Books `requests` of GEMINI's minute `agoMs` ago, as another caller's batch would (no call leaves). */
  const fill = async (requests: number, agoMs: number) => {
    const [{ r }] = await s.sql<{ r: { ok: boolean } }[]>`
      select public.google_ai_reserve_models_at(now() - ${agoMs} * interval '1 millisecond',
        jsonb_populate_record(null::public.google_ai_reservation,
          ${reservation({ models: [GEMINI], estimated_tokens: 10, caller: "filler", requests })}::text::jsonb)) as r`;
    expect(r.ok).toBe(true);
  };
  const embedCalls = () =>
    s.sim.stats().recent.filter((r) => r.method === "embedContent" || r.method === "batchEmbedContents");
  const post = (input: string[], mode: "WAIT" | "NO_WAIT") =>
    s.raw({
      method: "POST",
      path: "/functions/v1/llm-invoke/v1/embeddings",
      headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, "x-eve-mode": mode },
      body: JSON.stringify({ model: GEMINI, input }),
    });

  it("a Google batch of more inputs than the row's minute (51 at 50 RPM): refused at once, naming 50 a minute, no call", async () => {
    await s.setLimit({ model: GEMINI, rpm: 50 });
    const res = await post(texts(51), "WAIT");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.body.error.message).toContain("51 inputs are 51 requests");
    expect(res.body.error.message).toContain(`${GEMINI} takes 50 requests a minute`);
    expect(res.body.error.details).toMatchObject({ field: "input", inputs: 51, max_inputs: 50, per: "minute" });
    expect(res.body.error.cause).toBe("over_rpm");
    expect(embedCalls()).toHaveLength(0);
    // More than Google takes in one call (100) is refused before any reservation: one request, one call.
    await s.setLimit({ model: GEMINI, rpm: 1000 });
    const huge = await post(texts(101), "WAIT");
    expect(huge.status).toBe(400);
    expect(huge.body.error.message).toContain("at most 100 inputs in one request; 101 were sent");
    expect(embedCalls()).toHaveLength(0);
    const rows = await s.sql<{ status: string; refusal_cause: string; requests: number }[]>`
      select status, refusal_cause, requests from public.google_ai_attempts where model = ${GEMINI}`;
    expect(rows).toEqual([{ status: "refused", refusal_cause: "over_rpm", requests: 51 }]);
  });

  it("a Google batch over what is left of the day: the day's 429 at once, Retry-After at its turn, no call, on each route", async () => {
    await s.setLimit({ model: GEMINI, rpd: 30 });
    await fill(25, 5_000); // 5 of the day's 30 left
    const [{ turn }] = await s.sql<{ turn: Date }[]>`
      select public.google_ai_midnight_after_in(now(), public.google_ai_day_zone(${GEMINI}))
             + (public.google_ai_admission_guard()).day_guard_ms * interval '1 millisecond' as turn`;
    const res = await post(texts(10), "WAIT");
    expect(res.status).toBe(429);
    expect(res.body.error).toMatchObject({ code: "rate_limit_exceeded", type: "rate_limit_error", limit: "rpd",
      cause: "over_rpd", param: null, details: { inputs: 10, max_inputs: 5, per: "day" } });
    expect(Date.parse(res.body.error.details.retry_at)).toBe(turn.getTime());
    expect(res.body.error.message).toContain("10 inputs are 10 requests");
    expect(res.body.error.message).toContain("has 5 requests left of its provider's day");
    // Retry-After is the wait until the day's turn, in whole seconds rounded up.
    const waitMs = res.body.error.retry_after_ms as number;
    expect(res.headers.get("retry-after")).toBe(String(Math.ceil(waitMs / 1000)));
    expect(res.headers.get("x-should-retry")).toBe("false");
    expect(Math.abs(Date.now() + waitMs - turn.getTime())).toBeLessThan(60_000);

    // Nothing left of the day: no room until its turn, never "send at most 0 inputs"; Google's dialect.
    await fill(5, 5_000);
    const batch = await s.raw({
      method: "POST",
      path: `/functions/v1/llm-invoke/v1beta/models/${GEMINI}:batchEmbedContents`,
      headers: { "content-type": "application/json", "x-goog-api-key": s.serviceKey, "x-eve-mode": "NO_WAIT" },
      body: JSON.stringify({ requests: texts(3).map((text) => ({ model: `models/${GEMINI}`, content: { parts: [{ text }] } })) }),
    });
    expect(batch.status).toBe(429);
    expect(batch.body.error).toMatchObject({ code: 429, status: "RESOURCE_EXHAUSTED" });
    expect(batch.body.error.message).toContain("has no requests left of its provider's day: the day has no room until its turn");
    expect(batch.body.error.message).not.toContain("at most 0");
    const details = batch.body.error.details as Array<Record<string, unknown>>;
    expect(details.find((d) => String(d["@type"]).endsWith("ErrorInfo"))).toMatchObject({
      reason: "RATE_LIMITED", metadata: { limit: "rpd", cause: "over_rpd" } });
    expect(details.find((d) => String(d["@type"]).endsWith("RetryInfo"))).toBeDefined();
    expect(details.find((d) => String(d["@type"]).endsWith("BadRequest"))).toBeUndefined();
    expect(batch.headers.get("retry-after")).not.toBeNull();

    expect(embedCalls()).toHaveLength(0);
    const rows = await s.sql<{ status: string; limit_hit: string; refusal_cause: string; requests: number }[]>`
      select status, limit_hit, refusal_cause, requests from public.google_ai_attempts
      where model = ${GEMINI} and caller <> 'filler' order by id`;
    expect(rows).toEqual([
      { status: "refused", limit_hit: "too_large", refusal_cause: "over_rpd", requests: 10 },
      { status: "refused", limit_hit: "too_large", refusal_cause: "over_rpd", requests: 3 },
    ]);
  });

  it("a Google batch of 40 under WAIT while the minute frees up: served whole, 40 vectors in order, one call, its cost in the books", async () => {
    await s.setLimit({ model: GEMINI, rpm: 50 });
    await fill(30, 55_000); // leaves the window in about 6 s; 20 free until then
    const res = await post(texts(40), "WAIT");
    expect(res.status).toBe(200);
    expect(res.body.data.map((d: { index: number }) => d.index)).toEqual([...Array(40).keys()]);
    // In order: the 8th vector is the 8th text's (the simulator's vectors are a function of the text).
    const eighth = await client.embeddings.create({ model: GEMINI, input: texts(40)[7]! });
    expect(res.body.data[7].embedding).toEqual(eighth.data[0]!.embedding);
    // One batchEmbedContents for the 40 (then the single check): arrivals = attempt rows.
    expect(embedCalls().map((r) => r.method)).toEqual(["batchEmbedContents", "embedContent"]);
    const rows = await s.sql<
      { status: string; requests: number; input_tokens: number; cost: string; waited: number; reservation: string }[]
    >`
      select status, requests, input_tokens, cost_usd::text as cost, wait_ms as waited, reservation_id::text as reservation
      from public.google_ai_attempts
      where model = ${GEMINI} and caller <> 'filler' and status <> 'refused' order by id`;
    expect(rows.map((r) => [r.status, r.requests])).toEqual([["succeeded", 40], ["succeeded", 1]]);
    expect(rows[0]!.waited).toBeGreaterThan(0);
    expect(rows[0]!.input_tokens).toBe(res.body.usage.prompt_tokens);
    // Priced at the key's tier: none named, so Google's free tier (google_ai_call_cost), its price row x the tokens.
    const [price] = await s.sql<{ input: string }[]>`
      select input_per_mtok::text as input from public.google_ai_model_prices where model = ${GEMINI} and service_tier = 'free'`;
    expect(rows[0]!.cost).not.toBeNull();
    expect(costUnits(rows[0]!.cost) * 1_000_000n).toBe(BigInt(rows[0]!.input_tokens) * costUnits(price!.input));
    const usage = await s.sql<{ prompt_tokens: number }[]>`
      select prompt_tokens from public.token_usage where meta ->> 'reservation_id' = ${rows[0]!.reservation}`;
    expect(usage.map((u) => u.prompt_tokens)).toEqual([res.body.usage.prompt_tokens]);
  }, 90_000);

  it("a Google batch of 40 under NO_WAIT with room for 20: refused whole with its cause and retry time, no call", async () => {
    await s.setLimit({ model: GEMINI, rpm: 50 });
    await fill(30, 5_000);
    const res = await post(texts(40), "NO_WAIT");
    expect(res.status).toBe(429);
    expect(res.body.error.cause).toBe("window_full");
    // When all 40 fit: once the 30 booked 5 s ago leave the minute (not when one would).
    expect(res.body.error.retry_after_ms).toBeGreaterThan(50_000);
    expect(res.headers.get("retry-after")).not.toBeNull();
    expect(JSON.stringify(res.body)).not.toContain("served_inputs");
    expect(embedCalls()).toHaveLength(0);
    const [{ n }] = await s.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where model = ${GEMINI} and status = 'succeeded'`;
    expect(n).toBe(0);
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
