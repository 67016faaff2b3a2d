// The response cache over HTTP with the real functions and PostgreSQL (docs/response-cache.md):
//   100 identical requests from 10 callers (scoped tokens) of one client, whole and streamed, over
//   OpenAI's, Gemini's and Anthropic's routes with bodies that translate to the same Google request,
//   the cache asked for: one call to the simulator, 99 hits with the same text in each caller's
//   dialect, nothing booked for the hits; the same request from another client is a miss;
//   a hit is one database round trip (counted at a proxy in front of the database) and no call;
//   the official SDKs (openai, @google/genai, @anthropic-ai/sdk) read hits, whole and streamed, each
//   with the hit's mark (eve_cache: entry, age, the stored answer's cost) inside its usage object;
//   two clients the owner put in one shared scope: one call; a third outside it: a miss;
//   20 identical requests at once across two function workers on one database: one call, 20 answers;
//   the first of identical requests fails: one waiter calls in its place, the others hit its answer;
//   a cut stream, a provider's 5xx, a refusal and a blocked answer are never served from the cache;
//   off unless asked, no-store and refresh; a bad header is a 400.
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { createServer, type Server } from "node:http";
import OpenAI from "openai";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { type FlightCounter, startFlightCounter } from "../../shared/db/pgbouncer.ts";
import { TEST_STACK_DB_ENV } from "../support/stack-env.ts";
import { type InvokeStack, newToken, sha256, startInvokeStack } from "./llm-invoke-helpers.ts";

const MODEL = "gemini-2.5-flash";
const SIM_KEY = "sim-key-cache";
const KEY_ENV = "GOOGLE_TEST_KEY_CACHE_MAIN";
/** The OpenAI-shaped service that refuses or is blocked, as its prompt says. */
const WARY_MODEL = "wary-chat";
const WARY_KEY = "sk-wary-0123456789";

let s: InvokeStack;
let wary: { server: Server; url: string; calls: number };
/** Round trips between the functions and the database, counted at a proxy in front of it. */
let flights: FlightCounter;
/** A token of the client whose requests the owner's default caches. */
let defaultToken: string;

beforeAll(async () => {
  wary = await startWaryService();
  s = await startInvokeStack("llm_invoke_response_cache", {
    keys: [{ alias: "cache-main", project: "proj-cache", priority: 1, simKey: SIM_KEY }],
    env: { WARY_KEY_1: WARY_KEY },
    // An answer takes a moment, so that identical requests sent at once are in flight together.
    simulator: { latencyMs: 300 },
    dbEnv: async (db) => {
      flights = await startFlightCounter(await gatewayRoleUrl(db.url));
      return { GATEWAY_DB_URL: flights.url };
    },
  });
  await s.sql`update public.google_ai_model_limits set rpm = 1000, tpm = 10000000, rpd = 100000 where model = ${MODEL}`;
  // A price on the free tier the simulator's project is on, so that what a stored answer cost is a figure, not 0.
  await s.sql`insert into public.google_ai_model_prices (model, service_tier, input_per_mtok, output_per_mtok, source, read_on)
              values (${MODEL}, 'free', 0.3, 2.5, 'test', '2026-11-28')
              on conflict (model, service_tier) do update set input_per_mtok = 0.3, output_per_mtok = 2.5`;
  await s.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
              values ('wary', 'openai', 'Wary AI', ${wary.url}, 'WARY_[A-Z0-9_]{1,100}')`;
  await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
              values ('wary-main', 'wary', 'WARY_KEY_1', 'org-wary', 1, true)`;
  await s.sql`insert into public.google_ai_model_limits (model, provider, rpm, booked_output_tokens, is_active)
              values (${WARY_MODEL}, 'wary', 1000, 100, true)`;
  // Before any request: a worker reads whether the owner set a default once per capabilities TTL.
  [defaultToken] = await clientTokens("cache-default", 1);
  await s.sql`insert into public.google_ai_response_cache_defaults (client_id, model, ttl)
              select id, null, interval '10 minutes' from public.google_ai_clients where name = 'cache-default'`;
}, 120_000);

afterAll(async () => {
  await s?.close();
  await flights?.close();
  await new Promise((resolve) => wary?.server.close(resolve));
});

beforeEach(async () => {
  await s.reset();
  wary.calls = 0;
});

/** Calls of generateContent and its stream the Google simulator received since the last reset. */
const googleCalls = () => s.sent("google").length;

/** A client and `n` of its tokens (scoped: each its own caller), able to ask for `models`. */
async function clientTokens(name: string, n: number, models = [MODEL]): Promise<string[]> {
  const [{ c }] = await s.sql`select public.google_ai_create_client(${name}, ${models}::text[]) as c`;
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) {
    const token = newToken();
    const [{ m }] = await s.sql`select public.google_ai_mint_token(${sha256(c.secret)}, ${sha256(token)}) as m`;
    if (!m.ok) throw new Error(`mint failed: ${JSON.stringify(m)}`);
    tokens.push(token);
  }
  return tokens;
}

type Route = "openai" | "gemini" | "anthropic";

interface Asked {
  status: number;
  cache: string | null;
  age: string | null;
  text: string;
  /** The answer's dialect, read from its shape. */
  shape: Route | null;
}

/** The same request in each route's words: one user turn, at most 64 tokens. */
function ask(route: Route, credential: string, prompt: string, stream: boolean, headers: Record<string, string>) {
  const common = { "content-type": "application/json", ...headers };
  switch (route) {
    case "openai":
      return s.raw({
        method: "POST",
        path: "/functions/v1/llm-invoke/v1/chat/completions",
        headers: { ...common, authorization: `Bearer ${credential}` },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: prompt }], max_tokens: 64, stream }),
      });
    case "gemini":
      return s.raw({
        method: "POST",
        path: `/functions/v1/llm-invoke/v1beta/models/${MODEL}:${stream ? "streamGenerateContent?alt=sse" : "generateContent"}`,
        headers: { ...common, "x-goog-api-key": credential },
        body: JSON.stringify({
          contents: [{ role: "user", parts: [{ text: prompt }] }],
          generationConfig: { maxOutputTokens: 64 },
        }),
      });
    case "anthropic":
      return s.raw({
        method: "POST",
        path: "/functions/v1/llm-invoke/v1/messages",
        headers: { ...common, "x-api-key": credential, "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: MODEL, max_tokens: 64, messages: [{ role: "user", content: prompt }], stream }),
      });
  }
}

/** The events of an SSE body, each `data:` JSON parsed (OpenAI's [DONE] left out). */
function events(text: string): any[] {
  return text.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim())
    .filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));
}

/** The answer's text and dialect, whole or streamed, read as that dialect's client reads it. */
function readAnswer(res: { status: number; headers: Headers; text: string; body: any }, stream: boolean): Asked {
  let text = "";
  let shape: Route | null = null;
  if (res.status === 200 && !stream) {
    const b = res.body;
    if (b.object === "chat.completion") [shape, text] = ["openai", b.choices[0].message.content];
    else if (Array.isArray(b.candidates)) {
      [shape, text] = ["gemini", b.candidates[0].content.parts.map((p: any) => p.text ?? "").join("")];
    } else if (b.type === "message") [shape, text] = ["anthropic", b.content.map((c: any) => c.text ?? "").join("")];
  } else if (res.status === 200) {
    for (const e of events(res.text)) {
      if (e.object === "chat.completion.chunk") {
        shape = "openai";
        text += e.choices[0]?.delta?.content ?? "";
      } else if (Array.isArray(e.candidates)) {
        shape = "gemini";
        text += (e.candidates[0]?.content?.parts ?? []).map((p: any) => p.text ?? "").join("");
      } else if (typeof e.type === "string" && e.type.startsWith("message") || e.type?.startsWith("content_block")) {
        shape = "anthropic";
        if (e.type === "content_block_delta") text += e.delta?.text ?? "";
      }
    }
  }
  return {
    status: res.status,
    cache: res.headers.get("x-eve-cache-status"),
    age: res.headers.get("x-eve-cache-age"),
    text,
    shape,
  };
}

const ROUTES: Route[] = ["openai", "gemini", "anthropic"];

describe("one client's identical requests, on every route", () => {
  it("100 from 10 callers, whole and streamed: 1 provider call, 99 hits, the same text in each dialect, nothing booked", async () => {
    const tokens = await clientTokens("cache-festival", 10);
    const prompt = "Reason over page 17 of the festival programme.";
    const answers: Array<Asked & { route: Route; stream: boolean }> = [];
    await Promise.all(tokens.map(async (token, caller) => {
      for (let i = 0; i < 10; i++) {
        const n = caller * 10 + i;
        const route = ROUTES[n % 3]!;
        const stream = Math.floor(n / 3) % 2 === 1;
        const res = await ask(route, token, prompt, stream, { "x-eve-cache": "on" });
        answers.push({ ...readAnswer(res, stream), route, stream });
      }
    }));

    if (answers.some((a) => a.status !== 200)) console.log(s.logs.filter((l) => /fail|error/i.test(l)).slice(0, 8));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(googleCalls()).toBe(1);
    expect(answers.filter((a) => a.cache === "hit")).toHaveLength(99);
    expect(answers.filter((a) => a.cache !== "hit").map((a) => a.cache)).toEqual([expect.stringMatching(/^(stored|miss)$/)]);
    // Each in its caller's dialect, every one with the first one's text.
    expect(answers.every((a) => a.shape === a.route)).toBe(true);
    const texts = new Set(answers.map((a) => a.text));
    expect(texts.size).toBe(1);
    expect([...texts][0]).toContain("festival programme");
    expect(answers.filter((a) => a.stream).length).toBeGreaterThan(40);
    expect(answers.filter((a) => a.cache === "hit").every((a) => a.age !== null && /^\d+$/.test(a.age))).toBe(true);

    // One reservation, one request booked in the minute and the day; 99 hit rows, each naming the entry.
    const [booked] = await s.sql<{ attempts: number; rpd: number; rpm: number }[]>`
      select (select count(*)::int from public.google_ai_attempts where model = ${MODEL}) as attempts,
             (select coalesce(sum(rpd_used), 0)::int from public.google_ai_usage_counters where model = ${MODEL}) as rpd,
             (select coalesce(sum(window_requests), 0)::int from public.google_ai_usage_counters where model = ${MODEL}) as rpm`;
    expect(booked).toEqual({ attempts: 1, rpd: 1, rpm: 1 });
    // Nor the client's budgets: its ten tokens used one request between them.
    const [used] = await s.sql<{ requests: number }[]>`
      select sum(t.requests_used)::int as requests from public.google_ai_tokens t
      join public.google_ai_clients c on c.id = t.client_id where c.name = 'cache-festival'`;
    expect(used!.requests).toBe(1);
    const hits = await s.sql<{ n: number; entries: number; scope: string; saved_input: number }[]>`
      select count(*)::int as n, count(distinct entry_id)::int as entries, min(scope) as scope,
             min(saved_input_tokens)::int as saved_input
      from public.google_ai_response_cache_hits`;
    expect(hits[0]).toMatchObject({ n: 99, entries: 1, scope: "client:cache-festival" });
    expect(hits[0]!.saved_input).toBeGreaterThan(0);

    // Another client asking the same: its own scope, a miss, one more call.
    const [other] = await clientTokens("cache-other", 1);
    const res = readAnswer(await ask("openai", other!, prompt, false, { "x-eve-cache": "on" }), false);
    expect(res).toMatchObject({ status: 200, cache: "stored", text: [...texts][0] });
    expect(googleCalls()).toBe(2);
  }, 120_000);

  it("a hit is one database round trip and no provider call", async () => {
    const prompt = "Count my round trips.";
    const first = readAnswer(await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "on" }), false);
    expect(first.cache).toBe("stored");
    // Warm: the worker's model rows, tiers and provider rows are cached.
    expect(readAnswer(await ask("gemini", s.serviceKey, prompt, false, { "x-eve-cache": "on" }), false).cache).toBe("hit");
    flights.resetFlights();
    const hit = readAnswer(await ask("anthropic", s.serviceKey, prompt, true, { "x-eve-cache": "on" }), true);
    expect(hit).toMatchObject({ status: 200, cache: "hit", shape: "anthropic", text: first.text });
    // The caller's path; a worker's rows read again in the background (every 30 s) are not on it.
    const background = /google_ai_(provider_list|model_traits|service_tier_list|cache_defaults_exist)\b/;
    const onPath = [...flights.flights.byStatement].filter(([text]) => !background.test(text));
    expect(onPath.map(([, n]) => n)).toEqual([1]);
    expect(onPath[0]![0]).toContain("google_ai_cache_lookup");
    expect(googleCalls()).toBe(1);
  });
});

describe("a shared scope the owner names", () => {
  it("two clients sharing a scope: 1 provider call; a third not sharing it: a miss", async () => {
    const [parser] = await clientTokens("cache-share-parser", 1);
    const [checker] = await clientTokens("cache-share-checker", 1);
    const [loner] = await clientTokens("cache-share-loner", 1);
    await s.sql`insert into public.google_ai_response_cache_shared_scopes (member, shared_scope)
                values ('client:cache-share-parser', 'shared:festival'), ('client:cache-share-checker', 'shared:festival')`;
    try {
      const prompt = "Shared between two clients.";
      const first = readAnswer(await ask("openai", parser!, prompt, false, { "x-eve-cache": "on" }), false);
      expect(first).toMatchObject({ status: 200, cache: "stored" });
      const shared = readAnswer(await ask("anthropic", checker!, prompt, true, { "x-eve-cache": "on" }), true);
      expect(shared).toMatchObject({ status: 200, cache: "hit", shape: "anthropic", text: first.text });
      expect(googleCalls()).toBe(1);
      const hits = await s.sql`select scope, caller from public.google_ai_response_cache_hits where scope = 'shared:festival'`;
      expect(hits).toEqual([{ scope: "shared:festival", caller: "client:cache-share-checker" }]);

      const outside = readAnswer(await ask("gemini", loner!, prompt, false, { "x-eve-cache": "on" }), false);
      expect(outside).toMatchObject({ status: 200, cache: "stored", text: first.text });
      expect(googleCalls()).toBe(2);
      const scopes = await s.sql`select scope from public.google_ai_response_cache
                                 where scope in ('shared:festival') or scope like 'client:cache-share-%' order by scope`;
      expect(scopes.map((r) => r.scope)).toEqual(["client:cache-share-loner", "shared:festival"]);
    } finally {
      await s.sql`delete from public.google_ai_response_cache_shared_scopes`;
    }
  });
});

describe("the official clients read a hit as their own API's answer", () => {
  it("openai, @google/genai and @anthropic-ai/sdk, whole and streamed, each asking with its own extra headers", async () => {
    const prompt = "Asked through every SDK.";
    const headers = { "x-eve-cache": "on" };
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0, defaultHeaders: headers });
    const gemini = new GoogleGenAI({ apiKey: s.serviceKey, vertexai: false, httpOptions: { baseUrl: s.url, headers } });
    const claude = new Anthropic({ baseURL: s.url, apiKey: s.serviceKey, maxRetries: 0, defaultHeaders: headers });

    const first = await openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: prompt }], max_tokens: 64 })
      .withResponse();
    expect(first.response.headers.get("x-eve-cache-status")).toBe("stored");
    const text = first.data.choices[0]!.message.content!;
    // The call's usage has no mark; every hit's usage below has one, read through each SDK's own type.
    expect((first.data.usage as any).eve_cache).toBeUndefined();
    const { prompt_tokens: input, completion_tokens: output } = first.data.usage!;
    expect(input).toBeGreaterThan(0);
    const [entry] = await s.sql<{ id: string; cost_usd: string | null }[]>`select id, cost_usd from public.google_ai_response_cache
                                                                        order by created_at desc limit 1`;
    const mark = {
      hit: true,
      entry: Number(entry!.id),
      age_s: expect.any(Number),
      cost_usd: entry!.cost_usd === null ? null : Number(entry!.cost_usd),
    };
    expect(mark.cost_usd).toBeGreaterThan(0);

    let streamed = "";
    const stream = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
    }).withResponse();
    expect(stream.response.headers.get("x-eve-cache-status")).toBe("hit");
    let streamedUsage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream.data) {
      streamed += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) streamedUsage = chunk.usage;
    }
    expect(streamed).toBe(text);
    expect(streamedUsage).toMatchObject({ prompt_tokens: input, completion_tokens: output, eve_cache: mark });
    const openAiWhole = await openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: prompt }], max_tokens: 64 });
    expect(openAiWhole.usage).toMatchObject({ prompt_tokens: input, completion_tokens: output, eve_cache: mark });
    // OpenAI's Responses API, the same request in its words: whole, and its response.completed event.
    const response = await openai.responses.create({ model: MODEL, input: prompt, max_output_tokens: 64, store: false });
    expect(response.output_text).toBe(text);
    expect(response.usage).toMatchObject({ input_tokens: input, output_tokens: output, eve_cache: mark });
    let completedUsage: unknown;
    for await (const event of await openai.responses.create({
      model: MODEL,
      input: prompt,
      max_output_tokens: 64,
      store: false,
      stream: true,
    })) {
      if (event.type === "response.completed") completedUsage = event.response.usage;
    }
    expect(completedUsage).toMatchObject({ input_tokens: input, output_tokens: output, eve_cache: mark });

    const whole = await gemini.models.generateContent({ model: MODEL, contents: prompt, config: { maxOutputTokens: 64 } });
    expect(whole.text).toBe(text);
    expect(whole.sdkHttpResponse?.headers?.["x-eve-cache-status"]).toBe("hit");
    expect(whole.usageMetadata).toMatchObject({ promptTokenCount: input, eve_cache: mark });
    let geminiStreamed = "";
    let geminiUsage: unknown;
    for await (const chunk of await gemini.models.generateContentStream({ model: MODEL, contents: prompt, config: { maxOutputTokens: 64 } })) {
      geminiStreamed += chunk.text ?? "";
      if (chunk.usageMetadata) geminiUsage = chunk.usageMetadata;
    }
    expect(geminiStreamed).toBe(text);
    expect(geminiUsage).toMatchObject({ promptTokenCount: input, eve_cache: mark });

    const message = await claude.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: "user", content: prompt }] })
      .withResponse();
    expect(message.response.headers.get("x-eve-cache-status")).toBe("hit");
    expect(message.data.content.map((c) => (c.type === "text" ? c.text : "")).join("")).toBe(text);
    expect(message.data.usage).toMatchObject({ input_tokens: input, output_tokens: output, eve_cache: mark });
    const claudeStream = claude.messages.stream({ model: MODEL, max_tokens: 64, messages: [{ role: "user", content: prompt }] });
    const deltaUsages: unknown[] = [];
    claudeStream.on("streamEvent", (event) => {
      if (event.type === "message_delta") deltaUsages.push(event.usage);
    });
    expect(await claudeStream.finalText()).toBe(text);
    expect((await claudeStream.finalMessage()).usage).toMatchObject({ input_tokens: input, output_tokens: output, eve_cache: mark });
    expect(deltaUsages).toEqual([expect.objectContaining({ output_tokens: output, eve_cache: mark })]);

    expect(googleCalls()).toBe(1);
  });
});

describe("only whole answers are stored", () => {
  it("a cut stream is never served from the cache", async () => {
    const prompt = "Cut me off.";
    s.sim.addFault({ kind: "cut_stream", model: MODEL, count: 1, afterChunks: 1 });
    const cut = await ask("openai", s.serviceKey, prompt, true, { "x-eve-cache": "on" });
    expect(cut.status).toBe(200);
    expect(cut.headers.get("x-eve-cache-status")).toBe("miss");
    const again = readAnswer(await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "on" }), false);
    expect(again.cache).toBe("stored");
    expect(googleCalls()).toBe(2);
  });

  it("a provider's 5xx is never served from the cache", async () => {
    const prompt = "Fail with a 500.";
    s.sim.addFault({ kind: "http500", model: MODEL, count: 3 });
    const failed = await ask("gemini", s.serviceKey, prompt, false, { "x-eve-cache": "on" });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(failed.headers.get("x-eve-cache-status")).toBe("miss");
    const again = readAnswer(await ask("gemini", s.serviceKey, prompt, false, { "x-eve-cache": "on" }), false);
    expect(again).toMatchObject({ status: 200, cache: "stored" });
    expect(googleCalls()).toBe(4);
  });

  it("a refusal is never served from the cache", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await wary_ask("please refuse this");
      expect(res.status).toBe(200);
      expect(res.headers.get("x-eve-cache-status")).toBe("miss");
      expect(res.body.choices[0].message.refusal ?? res.body.choices[0].message.content).toContain("can't help");
    }
    expect(wary.calls).toBe(2);
  });

  it("an answer the provider blocked is never served from the cache", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await wary_ask("this gets blocked");
      expect(res.status).toBe(200);
      expect(res.headers.get("x-eve-cache-status")).toBe("miss");
      expect(res.body.choices[0].finish_reason).toBe("content_filter");
    }
    expect(wary.calls).toBe(2);
    // The same service's plain answer is kept: what differs is the answer, not the provider.
    expect((await wary_ask("a plain question")).headers.get("x-eve-cache-status")).toBe("stored");
    expect((await wary_ask("a plain question")).headers.get("x-eve-cache-status")).toBe("hit");
    expect(wary.calls).toBe(3);
  });
});

describe("every answer to a request that asked for the cache says what the cache did", () => {
  it("error answers too: bypass before the cache is looked up, miss once a call was under way", async () => {
    const on = { "x-eve-cache": "on" };
    const status = async (res: Promise<{ status: number; headers: Headers }>) => {
      const r = await res;
      return [r.status, r.headers.get("x-eve-cache-status")];
    };
    // Refused before the cache: a bad credential, a bad cache header, a body without its turns, an unknown model.
    expect(await status(ask("openai", "not-a-key", "who am I?", false, on))).toEqual([401, "bypass"]);
    expect(await status(ask("openai", s.serviceKey, "typo", false, { "x-eve-cache": "onn" }))).toEqual([400, "bypass"]);
    const path = "/functions/v1/llm-invoke/v1/chat/completions";
    const post = (body: unknown) => s.raw({
      method: "POST", path, body: JSON.stringify(body),
      headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, ...on },
    });
    expect(await status(post({ model: MODEL }))).toEqual([400, "bypass"]);
    expect(await status(post({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })))
      .toEqual([404, "bypass"]);
    // Looked up and called: the provider's failure, streamed and whole, on each route.
    s.sim.addFault({ kind: "http500", model: MODEL, count: 9 });
    for (const route of ["openai", "gemini", "anthropic"] as const) {
      const [code, cache] = await status(ask(route, s.serviceKey, `fail on ${route}`, false, on));
      expect(code, route).toBeGreaterThanOrEqual(500);
      expect(cache, route).toBe("miss");
    }
    expect(googleCalls()).toBe(9);
  });
});

function wary_ask(prompt: string) {
  return s.raw({
    method: "POST",
    path: "/functions/v1/llm-invoke/v1/chat/completions",
    headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, "x-eve-cache": "on" },
    body: JSON.stringify({ model: WARY_MODEL, messages: [{ role: "user", content: prompt }] }),
  });
}

describe("asked per request", () => {
  it("off unless asked; no-store bypasses; refresh calls again and replaces the entry; a bad header is a 400", async () => {
    const prompt = "Ask me twice.";
    const plain = await ask("openai", s.serviceKey, prompt, false, {});
    expect(plain.headers.get("x-eve-cache-status")).toBe("bypass");
    await ask("openai", s.serviceKey, prompt, false, {});
    expect(googleCalls()).toBe(2);
    expect((await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "on" })).headers.get("x-eve-cache-status")).toBe("stored");
    expect((await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "no-store" })).headers.get("x-eve-cache-status")).toBe("bypass");
    expect((await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "refresh" })).headers.get("x-eve-cache-status")).toBe("stored");
    expect((await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "on" })).headers.get("x-eve-cache-status")).toBe("hit");
    expect(googleCalls()).toBe(5);
    const bad = await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "yes please" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("x-eve-cache");
    const ttl = await ask("openai", s.serviceKey, prompt, false, { "x-eve-cache": "on", "x-eve-cache-ttl": "-3" });
    expect(ttl.status).toBe(400);
    expect(googleCalls()).toBe(5);
  });

  it("the owner's default for a client turns it on without a header; another client's requests stay off", async () => {
    const prompt = "Default me.";
    expect((await ask("openai", defaultToken, prompt, false, {})).headers.get("x-eve-cache-status")).toBe("stored");
    expect((await ask("gemini", defaultToken, prompt, false, {})).headers.get("x-eve-cache-status")).toBe("hit");
    expect((await ask("openai", defaultToken, prompt, false, { "x-eve-cache": "no-store" })).headers.get("x-eve-cache-status"))
      .toBe("bypass");
    expect((await ask("openai", s.serviceKey, prompt, false, {})).headers.get("x-eve-cache-status")).toBe("bypass");
    expect(googleCalls()).toBe(3);
  });
});

describe("single flight across workers", () => {
  let second: LocalStack;

  beforeAll(async () => {
    second = await startLocalStack({
      functionsPort: 0,
      databaseUrl: s.db.url,
      google: "simulator",
      openai: "simulator",
      anthropic: "simulator",
      env: { ...TEST_STACK_DB_ENV, GOOGLE_AI_BASE_URL: s.sim.url, [KEY_ENV]: SIM_KEY, WARY_KEY_1: WARY_KEY },
      only: ["llm-invoke"],
      log: () => {},
    });
  }, 120_000);

  afterAll(async () => {
    await second?.close();
  });

  it("20 identical requests at once over two workers: 1 provider call, 20 answers", async () => {
    const prompt = "Twenty at once.";
    const urls = [s.url, `${second.functionsUrl}/functions/v1/llm-invoke`];
    const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const res = await fetch(urls[i % 2]!, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, "x-eve-cache": "on" },
        body: JSON.stringify({ model: MODEL, prompt, generationConfig: { maxOutputTokens: 64 } }),
      });
      return { status: res.status, cache: res.headers.get("x-eve-cache-status"), body: await res.json() as any };
    }));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(googleCalls()).toBe(1);
    expect(answers.filter((a) => a.cache === "hit")).toHaveLength(19);
    expect(new Set(answers.map((a) => a.body.text)).size).toBe(1);
    // The gateway's own body says a hit beside its usage, as every dialect does inside its own.
    expect(answers.filter((a) => a.body.cached?.hit === true && typeof a.body.cached.entry === "number")).toHaveLength(19);
  }, 60_000);

  it("the first fails: one waiter calls in its place, and the others are answered from it", async () => {
    const prompt = "The first one fails.";
    // The first request's three attempts each meet a 500; everyone else waits for its answer meanwhile.
    s.sim.addFault({ kind: "http500", model: MODEL, count: 3 });
    const send = (url: string) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}`, "x-eve-cache": "on" },
        body: JSON.stringify({ model: MODEL, prompt, generationConfig: { maxOutputTokens: 64 } }),
      }).then(async (res) => ({ status: res.status, cache: res.headers.get("x-eve-cache-status") }));
    const first = send(s.url);
    // The waiters go once the first holds the entry's flight.
    for (let i = 0; i < 100; i++) {
      const [held] = await s.sql`select 1 from public.google_ai_response_cache where flight_holder is not null and answer is null`;
      if (held !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const waiters = await Promise.all(Array.from({ length: 6 }, (_, i) => send(i % 2 ? s.url : `${second.functionsUrl}/functions/v1/llm-invoke`)));
    expect((await first).status).toBeGreaterThanOrEqual(500);
    expect(waiters.map((w) => w.status)).toEqual(Array(6).fill(200));
    expect(waiters.filter((w) => w.cache === "stored")).toHaveLength(1);
    expect(waiters.filter((w) => w.cache === "hit")).toHaveLength(5);
    // Three failed attempts, then one call in its place.
    expect(googleCalls()).toBe(4);
  }, 60_000);
});

/**
 * An OpenAI-shaped service whose answers depend on the prompt: "refuse" gets OpenAI's refusal (content
 * null, `refusal` said, finish_reason stop), "blocked" its content filter (finish_reason
 * content_filter); anything else a plain answer. Counts its calls.
 */
async function startWaryService(): Promise<{ server: Server; url: string; calls: number }> {
  const state = { calls: 0 };
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      if (!req.url?.endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "not here", type: "invalid_request_error", code: null } }));
        return;
      }
      state.calls++;
      const body = JSON.parse(raw);
      const prompt = String(body.messages?.at(-1)?.content ?? "");
      const message = prompt.includes("refuse")
        ? { role: "assistant", content: null, refusal: "I'm sorry, I can't help with that." }
        : { role: "assistant", content: prompt.includes("blocked") ? "" : `wary: ${prompt}`, refusal: null };
      const finish = prompt.includes("blocked") ? "content_filter" : "stop";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({
        id: `chatcmpl-${state.calls}`,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
        usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
      }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return Object.defineProperty({ server, url, calls: 0 }, "calls", {
    get: () => state.calls,
    set: (n: number) => (state.calls = n),
  }) as { server: Server; url: string; calls: number };
}
