// The TypeScript client against the real local stack (functions under Deno, PostgreSQL, the Google
// simulator): the same behaviour and errors as the Python client, under Node and under Deno.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@supabase/supabase-js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { denoBin } from "../../shared/deno-bin.ts";
import { freshDatabase, type TestDatabase } from "../../tests/support/test-database.ts";
import { type KaggleStack, startKaggleStack } from "../../tests/kaggle/stack.ts";
import { png } from "../../tests/support/image-bytes.ts";
import {
  AuthError,
  BadRequest,
  errorFrom,
  EveGateway,
  GatewayError,
  imagePart,
  type QueuedEvent,
  parseDuration,
  parseRateLimit,
  RateLimited,
  UpstreamError,
} from "./eve-gateway.ts";

class NoSocket {
  constructor() {
    throw new Error("no realtime in this test");
  }
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
let db: TestDatabase;
let stack: KaggleStack;
const seen = new Set<string>();

async function newClient(opts: { models?: string[]; tokenRequests?: number; mintPerHour?: number; maxTtl?: string } = {}) {
  const name = `ts-${Math.random().toString(36).slice(2, 10)}`;
  const [{ r }] = await db.sql`select public.google_ai_create_client(${name}, ${opts.models ?? ["gemma-3-27b"]},
    ${opts.maxTtl ?? "12 hours"}::interval, ${opts.tokenRequests ?? null}::integer,
    p_mint_per_hour => ${opts.mintPerHour ?? 60}) as r`;
  seen.add(r.secret);
  return { name, secret: r.secret as string };
}

const gatewayFor = (clientSecret: string, extra: Partial<ConstructorParameters<typeof EveGateway>[0]> = {}) =>
  new EveGateway({ url: stack.url, clientSecret, ...extra });

async function tokensOf(name: string): Promise<number> {
  const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_tokens t
    join public.google_ai_clients c on c.id = t.client_id where c.name = ${name}`;
  return n;
}

beforeAll(async () => {
  db = await freshDatabase("ts_client");
  // Many Gemma calls within a minute here; gemini-2.5-flash keeps its 5 RPM for the 429 test.
  await db.sql`update public.google_ai_model_limits set rpm = 1000, tpm = 1000000 where model = 'gemma-3-27b-it'`;
  // The client is tested here, not the window's spread: its 429 test fills gemini-2.5-flash at once.
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  stack = await startKaggleStack({ databaseUrl: db.url });
  stack.simulator.setModels({ "gemma-3-27b-it": { rpm: 1000, tpm: 1_000_000 } });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("configuration", () => {
  it("finds the client secret, then the service key, in the environment", () => {
    vi.stubEnv("EVE_GATEWAY_URL", "https://abc.supabase.co/rest/v1/");
    vi.stubEnv("EVE_GATEWAY_CLIENT_SECRET", `evegw_cs_${"A".repeat(43)}`);
    vi.stubEnv("SUPABASE_SERVICE_ROLE_KEY", "sb_secret_x");
    expect(new EveGateway().credentialSource).toBe("env EVE_GATEWAY_CLIENT_SECRET");
    vi.stubEnv("EVE_GATEWAY_CLIENT_SECRET", "");
    const bot = new EveGateway();
    expect(bot.credentialSource).toBe("env SUPABASE_SERVICE_ROLE_KEY");
    expect(bot.usesToken).toBe(false);
  });

  it("refuses to start without a credential or a URL, or with a key that is no client secret", () => {
    vi.stubEnv("EVE_GATEWAY_CLIENT_SECRET", "");
    vi.stubEnv("SUPABASE_SERVICE_ROLE_KEY", "");
    vi.stubEnv("EVE_GATEWAY_URL", "");
    vi.stubEnv("SUPABASE_URL", "");
    expect(() => new EveGateway({ url: "https://x.supabase.co" })).toThrow(AuthError);
    expect(() => new EveGateway({ clientSecret: `evegw_cs_${"A".repeat(43)}` })).toThrow(GatewayError);
    expect(() => new EveGateway({ url: "https://x", clientSecret: "AIzaSyRealGoogleKey" })).toThrow(/does not start with evegw_cs_/);
  });

  it("maps answers to typed errors without echoing secrets", () => {
    const e = errorFrom(429, { error: { code: "rate_limited", message: "m" }, limit: "rpm", retry_after_ms: 1500 });
    expect(e).toBeInstanceOf(RateLimited);
    expect(e).toMatchObject({ retryAfter: 1.5, limit: "rpm", status: 429 });
    expect(errorFrom(403, { error: { code: "model_not_allowed", message: "m" } })).toBeInstanceOf(AuthError);
    expect(errorFrom(413, {})).toBeInstanceOf(BadRequest);
    expect(errorFrom(503, {})).toBeInstanceOf(UpstreamError);
    expect(new GatewayError(`x evegw_tok_${"a".repeat(43)} y`).message).toBe("x [redacted] y");
  });
});

/**
 * A fetch that answers like the gateway's functions and records what each request carried: Supabase
 * reads x-region at its edge, before the function, so the client's side is what a test can show.
 */
function recordingFetch() {
  const seen: Array<{ method: string; path: string; region: string | null; forced: string | null }> = [];
  const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
  const fetch = (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const headers = new Headers(init.headers);
    seen.push({
      method: init.method ?? "GET",
      path: url.pathname,
      region: headers.get("x-region"),
      forced: url.searchParams.get("forceFunctionRegion"),
    });
    if (url.pathname.endsWith("/issue-kaggle-token")) {
      return Promise.resolve(json({ token: `evegw_tok_${"r".repeat(43)}`, expires_in: 3600, invoke_url: `${url.origin}/functions/v1/llm-invoke` }));
    }
    if (url.pathname.endsWith("/v1/quota")) return Promise.resolve(json({ caller: { kind: "token" }, models: [] }));
    if (headers.get("accept") === "text/event-stream") {
      const events = [{ type: "chunk", text: "hi" }, { type: "done", text: "hi", model: "gemma-3-27b-it", usage: {} }];
      const sse = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("");
      return Promise.resolve(new Response(sse, { headers: { "content-type": "text/event-stream" } }));
    }
    return Promise.resolve(json({ text: "hi", model: "gemma-3-27b-it", usage: { total_tokens: 3 } }));
  };
  return { fetch, seen };
}

async function everyCall(gw: EveGateway): Promise<void> {
  expect((await gw.generate("hello")).text).toBe("hi");
  await gw.quota();
  let text = "";
  for await (const piece of gw.stream("hello")) text += piece;
  expect(text).toBe("hi");
}

describe("region", () => {
  const SECRET = `evegw_cs_${"A".repeat(43)}`;

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("pins the mint and every call to the region, through the bot's own supabase-js client too", async () => {
    const { fetch, seen } = recordingFetch();
    const supabase = createClient("https://abc.supabase.co", "sb_publishable_x", {
      auth: { persistSession: false },
      global: { fetch },
      realtime: { transport: NoSocket as never },
    });
    await everyCall(new EveGateway({ supabase, clientSecret: SECRET, region: "eu-central-1" }));
    expect(seen.map(({ method, path, region, forced }) => [method, path, region, forced])).toEqual([
      ["POST", "/functions/v1/issue-kaggle-token", "eu-central-1", "eu-central-1"],
      ["POST", "/functions/v1/llm-invoke", "eu-central-1", "eu-central-1"],
      ["GET", "/functions/v1/llm-invoke/v1/quota", "eu-central-1", "eu-central-1"],
      ["POST", "/functions/v1/llm-invoke", "eu-central-1", "eu-central-1"],
    ]);
  });

  it("takes the region from EVE_GATEWAY_REGION by default; the option wins over it", async () => {
    const { fetch, seen } = recordingFetch();
    vi.stubGlobal("fetch", fetch);
    vi.stubEnv("EVE_GATEWAY_REGION", " US-East-1 ");
    const gw = new EveGateway({ url: "https://abc.supabase.co", serviceKey: "sb_secret_region_test" });
    expect(gw.region).toBe("us-east-1");
    await everyCall(gw);
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((s) => s.region))).toEqual(new Set(["us-east-1"]));
    expect(new EveGateway({ url: "https://abc.supabase.co", serviceKey: "k", region: "ap-south-1" }).region).toBe("ap-south-1");
  });

  it("sends no region when none is set or it is \"any\", and refuses one that is not a region", async () => {
    const { fetch, seen } = recordingFetch();
    vi.stubGlobal("fetch", fetch);
    vi.stubEnv("EVE_GATEWAY_REGION", "");
    for (const region of [undefined, "", "any"]) {
      const gw = new EveGateway({ url: "https://abc.supabase.co", serviceKey: "sb_secret_region_test", region });
      expect(gw.region).toBeNull();
      await gw.generate("hello");
    }
    expect(seen.map(({ region, forced }) => [region, forced])).toEqual([[null, null], [null, null], [null, null]]);
    for (const bad of ["eu central", "frankfurt", "eu-central-1\r\nx-evil: 1"]) {
      expect(() => new EveGateway({ url: "https://abc.supabase.co", serviceKey: "k", region: bad }))
        .toThrow(expect.objectContaining({ code: "invalid_region" }));
    }
  });
});

describe("the rate-limit headers", () => {
  it("reads each limit the answer reports, leaving out the ones it does not", () => {
    const headers = new Headers({
      "x-ratelimit-limit-requests": "5",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "59.5s",
      "x-ratelimit-limit-requests-day": "20",
      "x-ratelimit-remaining-requests-day": "14",
      "x-ratelimit-reset-requests-day": "7h4m5s",
    });
    expect(parseRateLimit(headers)).toEqual({
      requests: { limit: 5, remaining: 0, resetMs: 59_500 },
      tokens: null,
      requestsDay: { limit: 20, remaining: 14, resetMs: 25_445_000 },
    });
    expect(parseRateLimit(new Headers())).toBeNull();
    expect(parseRateLimit(null)).toBeNull();
    // A 429 carries them too.
    const e = errorFrom(429, { error: { code: "rate_limited", message: "m" }, limit: "rpm", retry_after_ms: 59_500 }, headers);
    expect(e.rateLimit?.requests).toEqual({ limit: 5, remaining: 0, resetMs: 59_500 });
  });

  it("reads OpenAI's reset durations", () => {
    const cases: [string, number | null][] = [
      ["0s", 0], ["12ms", 12], ["1s", 1000], ["59.5s", 59_500], ["6m0s", 360_000], ["1h2m3.25s", 3_723_250],
      ["", null], ["soon", null], ["5x", null],
    ];
    for (const [text, ms] of cases) expect(parseDuration(text), text).toBe(ms);
  });
});

describe("generate against the local stack", () => {
  it("client secret -> token -> text and usage; the audit log names the client", async () => {
    const { name, secret } = await newClient();
    const gw = gatewayFor(secret);
    const r = await gw.generate("Назови фестиваль", { system: "Кратко", generationConfig: { temperature: 0.2 } });
    const token = await gw.token();
    seen.add(token.token);
    expect(r.model).toBe("gemma-3-27b-it");
    expect(r.text).toContain("Кратко"); // folded into the first turn for Gemma
    expect(r.usage.total_tokens).toBe(r.usage.prompt_tokens + r.usage.completion_tokens);
    const rows = await db.sql`select caller, token_id::text, status from public.google_ai_attempts where request_id = ${r.request_id}`;
    expect(rows).toEqual([{ caller: `client:${name}`, token_id: token.token_id, status: "succeeded" }]);
  });

  it("fallbackModels: served by the next model when the first cannot, and the answer says so", async () => {
    await db.sql`update public.google_ai_model_limits set rpd = 0 where model = 'gemini-2.5-flash-lite'`;
    try {
      const bot = new EveGateway({ url: stack.url, serviceKey: stack.serviceKey });
      const r = await bot.generate("Привет", { model: "gemini-2.5-flash-lite", fallbackModels: ["gemma-3-27b"], wait: false });
      expect(r).toMatchObject({
        model: "gemma-3-27b-it",
        requested_model: "gemini-2.5-flash-lite",
        fallback_from: [{ model: "gemini-2.5-flash-lite", limit: "rpd" }],
      });
    } finally {
      await db.sql`update public.google_ai_model_limits set rpd = 20 where model = 'gemini-2.5-flash-lite'`;
    }
  });

  it("20 concurrent calls share one token", async () => {
    const { name, secret } = await newClient();
    const gw = gatewayFor(secret);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => gw.generate(`event ${i}`)));
    seen.add((await gw.token()).token);
    results.forEach((r, i) => expect(r.text).toContain(`event ${i}`));
    expect(await tokensOf(name)).toBe(1);
  });

  it("the bot: a service key, directly or through its own supabase-js client, with a caller label", async () => {
    const direct = new EveGateway({ url: stack.url, serviceKey: stack.serviceKey, caller: "eve-bot" });
    const viaClient = new EveGateway({
      // Node 20 has no WebSocket: a supabase-js client there needs a Realtime transport (e.g. `ws`).
      supabase: createClient(stack.url, stack.serviceKey, { auth: { persistSession: false }, realtime: { transport: NoSocket as never } }),
      serviceKey: stack.serviceKey,
      caller: "eve-bot",
    });
    for (const gw of [direct, viaClient]) {
      const r = await gw.generate({ messages: [{ role: "user", content: "ping" }] }, { model: "gemma-3-27b-it" });
      const [row] = await db.sql`select caller, token_id from public.google_ai_attempts where request_id = ${r.request_id}`;
      expect(row).toEqual({ caller: "eve-bot", token_id: null });
      expect(r.rateLimit?.requests).toMatchObject({ limit: 1000, remaining: expect.any(Number) });
      expect(r.rateLimit!.requests!.remaining).toBeLessThan(1000);
      expect(r.rateLimit?.requestsDay?.limit).toBe(14400);
    }
  });

  it("quota(): a token's own models and budgets; the service key's every model", async () => {
    const { name, secret } = await newClient({ tokenRequests: 10 });
    const gw = gatewayFor(secret);
    await gw.generate("counted");
    const mine = await gw.quota();
    seen.add((await gw.token()).token);
    expect(mine.caller).toEqual({ kind: "token", client: name, priority_class: "batch" });
    expect(mine.models.map((m) => m.model)).toEqual(["gemma-3-27b-it"]);
    expect(mine.budget.token_requests_left).toBe(9);
    expect(mine.models[0]!.limits.rpm).toBe(1000);
    const all = await new EveGateway({ url: stack.url, serviceKey: stack.serviceKey }).quota();
    expect(all.caller.kind).toBe("service");
    expect(all.models.map((m) => m.model)).toEqual(expect.arrayContaining(["gemini-2.5-flash", "gemma-3-27b-it"]));
  });

  it("renews the token shortly before it expires, and once when llm-invoke says it expired", async () => {
    const { name, secret } = await newClient();
    let now = 1_000_000;
    const gw = gatewayFor(secret, { now: () => now });
    await gw.generate("a");
    const first = await gw.token();
    now += first.expires_in * 1000 - 301_000;
    expect((await gw.token()).token_id).toBe(first.token_id);
    now += 2_000;
    const second = await gw.token();
    expect(second.token_id).not.toBe(first.token_id);
    await db.sql`update public.google_ai_tokens set expires_at = now() - interval '1 second' where id = ${second.token_id}`;
    const r = await gw.generate("b");
    const third = await gw.token();
    [first, second, third].forEach((t) => seen.add(t.token));
    expect(third.token_id).not.toBe(second.token_id);
    expect(await tokensOf(name)).toBe(3);
    const rows = await db.sql`select status, limit_hit from public.google_ai_attempts where request_id = ${r.request_id} order by id`;
    // The expired token was refused before any attempt row; its refusal is counted per token instead.
    expect(rows).toEqual([{ status: "succeeded", limit_hit: null }]);
    const [refusal] = await db.sql`select reason, refusals from public.google_ai_credential_refusals
                                   where token_id = ${second.token_id}`;
    expect(refusal).toEqual({ reason: "token_expired", refusals: 1 });
  });

  it("typed refusals: wrong secret, revoked client, scope, model, budgets, mint rate", async () => {
    await expect(gatewayFor(`evegw_cs_${"Q".repeat(43)}`).generate("x")).rejects.toMatchObject({
      name: "AuthError",
      status: 401,
      code: "invalid_secret",
    });

    const limited = await newClient({ maxTtl: "2 hours", tokenRequests: 10 });
    const scope = gatewayFor(limited.secret, { scope: { models: ["gemini-2.5-flash"] } }).generate("x");
    await expect(scope).rejects.toBeInstanceOf(AuthError);
    await expect(scope).rejects.toMatchObject({
      status: 403,
      code: "scope_exceeded",
      body: { allowed: { models: ["gemma-3-27b-it"], max_ttl_seconds: 7200, max_requests: 10 } },
    });

    const gw = gatewayFor(limited.secret, { scope: { max_requests: 2 }, renewTokens: false });
    await expect(gw.generate("x", { model: "gemini-2.5-flash" })).rejects.toMatchObject({ status: 403, code: "model_not_allowed" });
    await gw.generate("1");
    await gw.generate("2"); // the refused call above booked nothing
    const budget = gw.generate("3");
    await expect(budget).rejects.toBeInstanceOf(RateLimited);
    await expect(budget).rejects.toMatchObject({ status: 429, limit: "token_budget", retryAfter: null });
    seen.add((await gw.token()).token);

    const once = await newClient({ mintPerHour: 1 });
    await gatewayFor(once.secret).generate("x");
    await expect(gatewayFor(once.secret).generate("y")).rejects.toMatchObject({ name: "RateLimited", limit: "mint_rate" });

    await db.sql`select public.google_ai_revoke_client(${limited.name}, 'test')`;
    await expect(gatewayFor(limited.secret).generate("x")).rejects.toMatchObject({ status: 401, code: "client_revoked" });
  });

  it("NO_WAIT at the limit: RateLimited with the seconds to wait", async () => {
    const bot = new EveGateway({ url: stack.url, serviceKey: stack.serviceKey });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 7 }, (_, i) => bot.generate(`flash ${i}`, { model: "gemini-2.5-flash", wait: false })),
    );
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => o.reason);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const e of refused) {
      expect(e).toBeInstanceOf(RateLimited);
      expect(e.limit).toBe("rpm");
      expect(e.retryAfter).toBeGreaterThan(0);
      // At most the window (61 s), counted from the refused call's own clock reading, which may
      // precede a concurrent admission it waited behind by that wait (tens of ms).
      expect(e.retryAfter).toBeLessThanOrEqual(61.5);
      expect(e.rateLimit.requests).toMatchObject({ limit: 5, remaining: 0 });
      // The reset is the same reopening as retryAfter, read a moment later.
      expect(e.retryAfter * 1000 - e.rateLimit.requests.resetMs).toBeGreaterThanOrEqual(0);
      expect(e.retryAfter * 1000 - e.rateLimit.requests.resetMs).toBeLessThan(1000);
    }
  });

  it("bad requests, Google failing, an unreachable gateway", async () => {
    const bot = new EveGateway({ url: stack.url, serviceKey: stack.serviceKey });
    await expect(bot.generate("  ")).rejects.toMatchObject({ name: "BadRequest", code: "empty_input" });
    await expect(bot.generate("x", { model: "claude-3-opus" })).rejects.toMatchObject({ name: "BadRequest", code: "unknown_model" });
    stack.simulator.addFault({ kind: "http500", model: "gemma-3-27b-it", count: 3 });
    try {
      await expect(bot.generate("x")).rejects.toMatchObject({ name: "UpstreamError", status: 502, code: "upstream_error" });
    } finally {
      stack.simulator.clearFaults();
    }
    const nowhere = new EveGateway({ url: "http://127.0.0.1:1", serviceKey: "sb_secret_x", timeoutMs: 5000 });
    await expect(nowhere.generate("x")).rejects.toBeInstanceOf(UpstreamError);
  });

  it("runs under Deno too", async () => {
    const { secret } = await newClient();
    const dir = mkdtempSync(path.join(tmpdir(), "eve-ts-deno-"));
    try {
      // The import map a Deno caller needs. nodeModulesDir "manual" resolves the npm package from this
      // repository's node_modules (the version vitest tests), and --cached-only with an empty DENO_DIR
      // proves nothing is downloaded.
      writeFileSync(path.join(dir, "deno.json"), JSON.stringify({
        imports: { "@supabase/supabase-js": "npm:@supabase/supabase-js@2" },
        nodeModulesDir: "manual",
      }));
      writeFileSync(path.join(dir, "main.ts"), `
        import { EveGateway } from ${JSON.stringify(path.join(HERE, "eve-gateway.ts"))};
        const gw = new EveGateway();
        const r = await gw.generate("hello from deno");
        console.log(JSON.stringify({ text: r.text, model: r.model, client: (await gw.token()).client }));
      `);
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(denoBin(), ["run", "--cached-only", "--allow-net", "--allow-env", "--allow-read", "--config", path.join(dir, "deno.json"), path.join(dir, "main.ts")], {
          cwd: dir,
          env: { ...process.env, NO_COLOR: "1", EVE_GATEWAY_URL: stack.url, EVE_GATEWAY_CLIENT_SECRET: secret, DENO_NO_UPDATE_CHECK: "1", DENO_DIR: path.join(dir, "deno-dir") },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        child.on("exit", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`deno exited ${code}: ${stderr}`))));
      });
      expect(JSON.parse(out.trim().split("\n").pop()!)).toMatchObject({ model: "gemma-3-27b-it", text: expect.stringContaining("hello from deno") });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

});

describe("streams against the local stack", () => {
  const bot = () => new EveGateway({ url: stack.url, serviceKey: stack.serviceKey, caller: "ts-streams" });

  it("yields the same text as generate() piece by piece, and ends with the whole answer and its usage", async () => {
    const prompt = "Перечисли фестивали лета";
    const whole = await bot().generate(prompt, { generationConfig: { maxOutputTokens: 200 } });
    const stream = bot().stream(prompt, { generationConfig: { maxOutputTokens: 200 } });
    const pieces: string[] = [];
    for await (const piece of stream) pieces.push(piece);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(whole.text);
    expect(stream.text).toBe(whole.text);
    expect(stream.result).toMatchObject({ text: whole.text, model: whole.model, usage: whole.usage, request_id: stream.requestId });
    const rows = await db.sql`select status, input_tokens from public.google_ai_attempts where request_id = ${stream.requestId}`;
    expect(rows).toEqual([{ status: "succeeded", input_tokens: whole.usage.prompt_tokens }]);
  });

  it("events(): chunks then done, no queued event when nothing waits; a client secret streams on its token", async () => {
    const { name, secret } = await newClient();
    const gw = gatewayFor(secret);
    const events = [];
    for await (const event of gw.stream("events please").events()) events.push(event);
    seen.add((await gw.token()).token);
    expect(events.map((e) => e.type)).toEqual([...new Array(events.length - 1).fill("chunk"), "done"]);
    const done = events.at(-1)!;
    expect(done.type === "done" && done.result.text).toContain("events please");
    const [row] = await db.sql`select caller from public.google_ai_attempts where request_id = ${done.type === "done" ? done.result.request_id : ""}`;
    expect(row).toEqual({ caller: `client:${name}` });
  });

  it("includeCandidates: Google's candidates on the answer and on each chunk", async () => {
    const r = await bot().generate("candidates please", { includeCandidates: true });
    expect(r.candidates).toMatchObject([{ content: { parts: [{ text: r.text }] } }]);
    const chunks = [];
    for await (const e of bot().stream("candidates please", { includeCandidates: true }).events()) if (e.type === "chunk") chunks.push(e);
    expect(chunks.length).toBeGreaterThan(0);
    for (const c of chunks) expect(Array.isArray(c.candidates)).toBe(true);
  });

  it("images as bytes become inlineData parts that reach Google; a cut-short image is refused", async () => {
    const image = new Uint8Array(png(640, 480));
    expect(imagePart(image)).toMatchObject({ inlineData: { mimeType: "image/png" } });
    expect(() => imagePart(new TextEncoder().encode("GIF89a......"))).toThrow(BadRequest);
    const plain = await bot().generate("Что на картинке?");
    const withImage = await bot().generate("Что на картинке?", { images: [image] });
    expect(withImage.text).toBe(plain.text); // the simulator answers from the text
    // The simulator counts an image part as its JSON's bytes / 4: the image reached it.
    expect(withImage.usage.prompt_tokens - plain.usage.prompt_tokens).toBeGreaterThanOrEqual(
      Math.floor(JSON.stringify(imagePart(image)).length / 4) - 1,
    );
    const stream = bot().stream({ messages: [{ role: "user", content: "Что на картинке?" }] }, { images: [image.buffer] });
    for await (const _ of stream) { /* drain */ }
    expect(stream.result?.usage.prompt_tokens).toBe(withImage.usage.prompt_tokens);
    const cut = bot().stream("x", { images: [image.subarray(0, 20)] });
    await expect((async () => { for await (const _ of cut) { /* drain */ } })()).rejects.toMatchObject({
      name: "BadRequest",
      status: 400,
      code: "invalid_image",
    });
  });

  it("Google breaking the stream off: UpstreamError after the chunk that came", async () => {
    stack.simulator.addFault({ kind: "cut_stream", model: "gemma-3-27b-it", afterChunks: 1, count: 1 });
    const got: string[] = [];
    try {
      await expect((async () => { for await (const piece of bot().stream("cut me off")) got.push(piece); })()).rejects.toMatchObject({
        name: "UpstreamError",
        status: 502,
        code: "upstream_error",
      });
    } finally {
      stack.simulator.clearFaults();
    }
    expect(got).toHaveLength(1);
  });

  it("a full window: NO_WAIT is a 429 before the stream; WAIT reports its place (onProgress) before its chunks", async () => {
    // flash-lite at 2 requests per minute, filled; the waiter's turn comes when the window turns over (~61 s).
    const model = "gemini-2.5-flash-lite";
    const [{ rpm }] = await db.sql`select rpm from public.google_ai_model_limits where model = ${model}`;
    await db.sql`update public.google_ai_model_limits set rpm = 2 where model = ${model}`;
    try {
      for (const i of [1, 2]) await bot().generate(`fill ${i}`, { model, wait: false });
      const refused = bot().stream("no wait", { model, wait: false }).events();
      const first = refused.next();
      await expect(first).rejects.toBeInstanceOf(RateLimited);
      await expect(first).rejects.toMatchObject({ status: 429, code: "rate_limited", limit: "rpm" });

      const progress: QueuedEvent[] = [];
      const kinds: string[] = [];
      const stream = bot().stream("waiter", { model, maxWaitMs: 65_000, onProgress: (q) => progress.push(q) });
      for await (const event of stream.events()) kinds.push(event.type);
      expect(kinds[0]).toBe("queued");
      expect(kinds.at(-1)).toBe("done");
      expect(kinds.indexOf("chunk")).toBeGreaterThan(kinds.lastIndexOf("queued"));
      expect(progress).toHaveLength(kinds.filter((k) => k === "queued").length);
      expect(progress[0]).toMatchObject({ type: "queued", model, priority: "interactive", expected_at: expect.any(String) });
      expect(stream.result?.waited_ms).toBeGreaterThan(0);
    } finally {
      await db.sql`update public.google_ai_model_limits set rpm = ${rpm} where model = ${model}`;
    }
  }, 120_000);

  it("no secret or token reached any function's log", () => {
    const text = stack.logs.join("\n");
    expect(seen.size).toBeGreaterThan(5);
    for (const s of seen) expect(text).not.toContain(s);
    expect(text).not.toMatch(/evegw_(cs|tok)_[A-Za-z0-9_-]{8}/);
  });
});
