import { ServiceKeys } from "../../_shared/auth.ts";
import { describe, expect, it, vi } from "vitest";
import { GatewayError, rateLimited } from "../../_shared/errors.ts";
import type { InvokeContext, InvokeResult } from "../attempt/context.ts";
import { createHandler, type HandlerDeps } from "./handler.ts";
import type { QuotaSnapshot } from "../contract.ts";

const KEY = "sb_secret_handler_test_key";
const URL_ = "http://127.0.0.1/llm-invoke";

const RESULT: InvokeResult = {
  text: "Привет!",
  model: "gemma-3-27b-it",
  key_alias: "main",
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  attempts: 1,
  waited_ms: 0,
  hub: {
    outputs: [{ index: 0, parts: [{ type: "text", text: "Привет!" }], finish: { reason: "stop", word: "STOP" } }],
    usage: null,
    modelVersion: null,
    id: null,
  },
};

function build(overrides: Partial<HandlerDeps> = {}) {
  const invoke = vi.fn((_ctx: InvokeContext) => Promise.resolve(RESULT));
  const logError = vi.fn();
  const handler = createHandler({
    serviceKeys: new ServiceKeys([KEY]),
    invoke,
    logError,
    logRequest: () => {},
    newRequestId: () => "generated-id",
    ...overrides,
  });
  return { handler, invoke, logError };
}

function post(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  return new Request(URL_, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
  });
}

/** A POST whose body arrives as `stream` (a client that sends it piece by piece), with extra headers. */
function streamedPost(stream: ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Request {
  return new Request(URL_, {
    method: "POST",
    body: stream,
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    duplex: "half",
  } as RequestInit);
}

/** A body that sends `text`, then ends (or, with `reset`, breaks off as a client that goes away). */
function bodyOf(text: string, end: "close" | "reset" = "close"): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      if (end === "close") c.close();
      else c.error(new Error("connection reset by peer"));
    },
  });
}

async function json(res: Response) {
  return await res.json() as Record<string, unknown> & { error?: { code: string; message: string } };
}

describe("llm-invoke handler", () => {
  it("passes a valid request to invoke and answers 200 with the result and request_id", async () => {
    const { handler, invoke } = build();
    const res = await handler(
      post(JSON.stringify({ model: "gemma-3-27b", prompt: "Привет", request_id: "r-1" }), { "x-caller": "eve-bot" }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("r-1");
    // The native body: the gateway's fields, the finish in Google's word (the bot's contract), not the hub's answer.
    const { hub: _hub, ...fields } = RESULT;
    expect(await json(res)).toEqual({ ...fields, finish_reason: "STOP", request_id: "r-1" });
    const ctx = invoke.mock.calls[0]![0];
    expect(ctx.caller).toEqual({ kind: "service", label: "eve-bot" });
    expect(ctx.requestId).toBe("r-1");
    expect(ctx.request).toMatchObject({ messages: [{ role: "user", parts: [{ type: "text", text: "Привет" }] }] });
    // A generation: the loop's own default, no operation named.
    expect(ctx.operation).toBeUndefined();
  });

  it("runs an embedding route as its own operation: its inputs, no messages, no cap, no stream; its vectors answered", async () => {
    const vectors: InvokeResult = { ...RESULT, text: "", vectors: [[0.25, 0.5], [0.75, 1]] };
    delete vectors.hub;
    const invoke = vi.fn((_ctx: InvokeContext) => Promise.resolve(vectors));
    const { handler } = build({ invoke });
    const res = await handler(
      new Request(`${URL_}/v1/embeddings`, {
        method: "POST",
        body: JSON.stringify({ model: "text-embedding-3-small", input: ["a", "b"] }),
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      }),
    );
    expect(res.status).toBe(200);
    expect((await json(res)).data).toEqual([
      { object: "embedding", index: 0, embedding: [0.25, 0.5] },
      { object: "embedding", index: 1, embedding: [0.75, 1] },
    ]);
    const ctx = invoke.mock.calls[0]![0];
    expect(ctx.operation).toBeDefined();
    expect(ctx.request).toMatchObject({ model: "text-embedding-3-small", embed: { inputs: ["a", "b"] } });
    for (const generation of ["messages", "options", "stream", "outputCapField"]) expect(ctx.request).not.toHaveProperty(generation);
  });

  it("generates a request id when the caller gives none", async () => {
    const { handler } = build();
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x" })));
    expect((await json(res)).request_id).toBe("generated-id");
  });

  it.each<[string, () => Request, number, string]>([
    ["GET", () => new Request(URL_, { headers: { authorization: `Bearer ${KEY}` } }), 405, "method_not_allowed"],
    ["no credential", () => post("{}", { authorization: "" }), 401, "unauthorized"],
    ["a forged key", () => post("{}", { authorization: "Bearer sb_secret_forged" }), 401, "unauthorized"],
    [
      "a scoped token while tokens are off",
      () => post("{}", { authorization: `Bearer evegw_tok_${"a".repeat(43)}` }),
      401,
      "unauthorized",
    ],
    [
      "a form body",
      () => post("model=m", { "content-type": "application/x-www-form-urlencoded" }),
      415,
      "unsupported_media_type",
    ],
    ["no content type", () => post("{}", { "content-type": "" }), 415, "unsupported_media_type"],
    ["an empty body", () => post(""), 400, "invalid_json"],
    ["broken JSON", () => post('{"model": "m", '), 400, "invalid_json"],
    ["a JSON array", () => post("[]"), 400, "invalid_json"],
    ["a JSON string", () => post('"hello"'), 400, "invalid_json"],
    ["invalid UTF-8", () => post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, "invalid_json"],
    ["a proto key", () => post('{"model":"m","prompt":"x","__proto__":{"admin":true}}'), 400, "invalid_request"],
    ["an unknown model name shape", () => post('{"model":"<script>","prompt":"x"}'), 400, "invalid_request"],
    ["no input", () => post('{"model":"m"}'), 400, "empty_input"],
  ])("answers %s with a JSON error", async (_name, request, status, code) => {
    const { handler, invoke } = build();
    const res = await handler(request());
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await json(res);
    expect(body.error?.code).toBe(code);
    expect(body.request_id).toBe("generated-id");
    expect(invoke).not.toHaveBeenCalled();
  });

  it("refuses a body over the limit that declared a length within it", async () => {
    const { handler } = build({ maxBodyBytes: 100 });
    const text = JSON.stringify({ model: "m", prompt: "x".repeat(500) });
    const res = await handler(streamedPost(bodyOf(text), { "content-length": "10" }));
    expect(res.status).toBe(413);
    expect((await json(res)).error).toMatchObject({ code: "body_too_large", details: { limit_bytes: 100 } });
  });

  it("refuses a body over the limit by Content-Length without reading it", async () => {
    const { handler } = build({ maxBodyBytes: 100 });
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x".repeat(500) })));
    expect(res.status).toBe(413);
    expect((await json(res)).error).toMatchObject({ code: "body_too_large", details: { limit_bytes: 100 } });
  });

  it("refuses an oversize streamed body that declares no length", async () => {
    const { handler } = build({ maxBodyBytes: 1000 });
    const chunk = new TextEncoder().encode("x".repeat(400));
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        if (pulls > 100) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await handler(streamedPost(stream));
    expect(res.status).toBe(413);
    expect(pulls).toBeLessThan(10); // stopped reading early
  });

  it("accepts tokens once enabled and hands invoke the token hash", async () => {
    const { handler, invoke } = build({ acceptTokens: true });
    const token = `evegw_tok_${"b".repeat(43)}`;
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x" }), { authorization: `Bearer ${token}` }));
    expect(res.status).toBe(200);
    expect(invoke.mock.calls[0]![0].caller).toMatchObject({
      kind: "token",
      tokenHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it("answers a GatewayError from invoke with its status, headers and fields", async () => {
    const { handler } = build({ invoke: () => Promise.reject(rateLimited("rpm", 12_345)) });
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x", mode: "NO_WAIT" })));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("13");
    expect(await json(res)).toMatchObject({
      error: { code: "rate_limited" },
      limit: "rpm",
      retry_after_ms: 12_345,
      request_id: "generated-id",
    });
  });

  it("turns an unexpected exception into a 500 that leaks nothing, and logs it sanitized", async () => {
    const secret = "AIzaSyLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAK00";
    const { handler, logError } = build({ invoke: () => Promise.reject(new Error(`boom with ${secret}`)) });
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x" })));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain(secret);
    expect(text).not.toContain("boom");
    expect(JSON.parse(text).error.code).toBe("internal_error");
    expect(logError).toHaveBeenCalledOnce();
    expect(logError.mock.calls[0]![0]).not.toContain(secret);
  });

  it("keeps unknown_model and other codes thrown by invoke", async () => {
    const { handler } = build({
      invoke: () => Promise.reject(new GatewayError("unknown_model", "Unknown model gemma-9.")),
    });
    const res = await handler(post(JSON.stringify({ model: "gemma-9", prompt: "x" })));
    expect(res.status).toBe(400);
    expect((await json(res)).error).toEqual({ code: "unknown_model", message: "Unknown model gemma-9." });
  });
});

const QUOTA: QuotaSnapshot = {
  model: "gemini-2.5-flash",
  quotaGroup: "proj-1",
  rpm: 5,
  requestsLeft: 0,
  requestsResetMs: 12_345,
  tpm: null,
  tokensLeft: null,
  tokensResetMs: null,
  rpd: 20,
  dayLeft: 7,
  dayResetMs: 3_600_000,
};

describe("the quota an answer carries", () => {
  it("puts the last quota invoke saw on a success, as x-ratelimit-* headers", async () => {
    const { handler } = build({
      invoke: (ctx) => {
        ctx.onQuota?.({ ...QUOTA, requestsLeft: 1 }); // a refusal while waiting...
        ctx.onQuota?.({ ...QUOTA, requestsLeft: 3 }); // ...then the admission
        return Promise.resolve(RESULT);
      },
    });
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x" })));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("3");
    expect(res.headers.get("x-ratelimit-reset-requests")).toBe("12.345s");
    expect(res.headers.get("x-ratelimit-remaining-requests-day")).toBe("7");
    expect(res.headers.get("x-ratelimit-limit-tokens")).toBeNull();
  });

  it("and on a refusal", async () => {
    const { handler } = build({
      invoke: (ctx) => {
        ctx.onQuota?.(QUOTA);
        return Promise.reject(rateLimited("rpm", 12_345));
      },
    });
    const res = await handler(post(JSON.stringify({ model: "m", prompt: "x", mode: "NO_WAIT" })));
    expect(res.status).toBe(429);
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(res.headers.get("x-ratelimit-reset-requests")).toBe("12.345s");
  });
});

describe("the quota route", () => {
  const QUOTA_URL = "http://127.0.0.1/llm-invoke/v1/quota";
  const get = (headers: Record<string, string> = { authorization: `Bearer ${KEY}` }, url = QUOTA_URL) =>
    new Request(url, { headers });

  it("answers GET …/v1/quota with the report for the caller's credential", async () => {
    const quota = vi.fn(() => Promise.resolve({ ok: true as const, report: { models: [] } }));
    const { handler, invoke } = build({ quota });
    const res = await handler(get({ authorization: `Bearer ${KEY}`, "x-caller": "eve-bot" }));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await json(res)).toEqual({ models: [], request_id: "generated-id" });
    expect(quota).toHaveBeenCalledWith({ kind: "service", name: "eve-bot" });
    expect(invoke).not.toHaveBeenCalled();
  });

  it("asks for a token's report by its hash, after the token check; a token the database refuses is 401", async () => {
    const quota = vi.fn(() => Promise.resolve({ ok: false as const, status: "token_expired" as const }));
    const checkToken = vi.fn(() => Promise.resolve({ status: "ok" as const }));
    const { handler } = build({ quota, checkToken, acceptTokens: true });
    const res = await handler(get({ authorization: `Bearer evegw_tok_${"c".repeat(43)}` }));
    expect(res.status).toBe(401);
    expect((await json(res)).error?.code).toBe("token_expired");
    expect(checkToken).toHaveBeenCalledOnce();
    expect(quota).toHaveBeenCalledWith({ kind: "token", tokenHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it("is 401 without a credential, before anything is asked of the database", async () => {
    const quota = vi.fn();
    const checkToken = vi.fn();
    const { handler } = build({ quota, checkToken, acceptTokens: true });
    const res = await handler(get({}));
    expect(res.status).toBe(401);
    expect(quota).not.toHaveBeenCalled();
    expect(checkToken).not.toHaveBeenCalled();
  });

  it("answers only GET there; the generating route only POST; other paths are not routes (404)", async () => {
    const { handler } = build({ quota: () => Promise.resolve({ ok: true, report: {} }) });
    const posted = await handler(
      new Request(QUOTA_URL, { method: "POST", body: "{}", headers: { authorization: `Bearer ${KEY}` } }),
    );
    expect(posted.status).toBe(405);
    expect(posted.headers.get("allow")).toBe("GET");
    const native = await handler(get(undefined, URL_));
    expect(native.status).toBe(405);
    expect(native.headers.get("allow")).toBe("POST");
    for (const url of ["http://127.0.0.1/llm-invoke/v1/quotas", "http://127.0.0.1/llm-invoke/quota"]) {
      const res = await handler(get(undefined, url));
      expect(res.status, url).toBe(404);
      expect((await res.json()).error.details.routes).toContain("GET /functions/v1/llm-invoke/v1/quota");
    }
  });
});

describe("a path that is no route answers in the dialect of the route it fell under", () => {
  const at = (path: string, headers: Record<string, string> = {}) =>
    build().handler(new Request(`http://127.0.0.1/llm-invoke${path}`, {
      method: "POST",
      body: "{}",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    }));

  it("under Anthropic's /v1/messages/, Anthropic's 404 (its SDKs raise NotFoundError on its shape)", async () => {
    for (const [path, headers] of [["/v1/messages/batches", {}], ["/v1/files", { "anthropic-version": "2023-06-01" }]] as const) {
      const res = await at(path, headers);
      expect(res.status, path).toBe(404);
      const body = await res.json();
      expect(body, path).toMatchObject({ type: "error", error: { type: "not_found_error", code: "not_found" } });
      expect(body.request_id, path).toBe("generated-id");
    }
  });

  it("under /v1/ without Anthropic's version, OpenAI's; under /v1beta/, Google's; elsewhere the gateway's own", async () => {
    const openai = await (await at("/v1/files")).json();
    expect(openai.type).toBeUndefined();
    expect(openai.error).toMatchObject({ type: "not_found_error", code: "not_found" });
    expect((await (await at("/v1beta/files")).json()).error).toMatchObject({ code: 404, status: "NOT_FOUND" });
    expect((await (await at("/nowhere")).json()).error).toMatchObject({ code: "not_found" });
  });
});

describe("one JSON log line per request", () => {
  it("a success: caller, model, outcome, attempts, tokens, latency; never the prompt or the key", async () => {
    const lines: string[] = [];
    let t = 1000;
    const { handler } = build({ logRequest: (l) => lines.push(l), now: () => (t += 7) });
    await handler(post(JSON.stringify({ model: "gemma-3-27b", prompt: "секретный вопрос", request_id: "r-log" }), {
      "x-caller": "eve-bot",
    }));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({
      function: "llm-invoke",
      request_id: "r-log",
      method: "POST",
      route: "native",
      caller: "eve-bot",
      model: "gemma-3-27b-it",
      mode: "WAIT",
      key_alias: "main",
      attempts: 1,
      waited_ms: 0,
      prompt_tokens: 3,
      completion_tokens: 2,
      replayed: false,
      outcome: "ok",
      status: 200,
      latency_ms: 7,
    });
    expect(lines[0]).not.toContain("секретный");
    expect(lines[0]).not.toContain(KEY);
  });

  it("a refusal: its code and limit", async () => {
    const lines: string[] = [];
    const { handler } = build({
      logRequest: (l) => lines.push(l),
      invoke: () => Promise.reject(rateLimited("rpm", 1500)),
    });
    await handler(post(JSON.stringify({ model: "m", prompt: "x" })));
    expect(JSON.parse(lines[0]!)).toMatchObject({ outcome: "rate_limited", limit: "rpm", status: 429 });
  });

  it("a client that goes away mid-body is client_closed, not an unexpected error", async () => {
    const lines: string[] = [];
    const { handler, logError } = build({ logRequest: (l) => lines.push(l) });
    const res = await handler(streamedPost(bodyOf('{"model": "m", "prompt": "', "reset")));
    expect(res.status).toBe(499);
    expect((await json(res)).error?.code).toBe("client_closed");
    expect(logError).not.toHaveBeenCalled();
    expect(JSON.parse(lines[0]!)).toMatchObject({ outcome: "client_closed" });
  });

  it("a body of a declared length is read whole, and one cut short of it is client_closed", async () => {
    const lines: string[] = [];
    const { handler, logError } = build({ logRequest: (l) => lines.push(l) });
    const text = JSON.stringify({ model: "m", prompt: "hi" });
    const whole = await handler(post(text, { "content-length": String(new TextEncoder().encode(text).byteLength) }));
    expect(whole.status).toBe(200);
    const cut = await handler(streamedPost(bodyOf('{"model": "m", "prompt": "', "reset"), { "content-length": "60" }));
    expect(cut.status).toBe(499);
    expect((await json(cut)).error?.code).toBe("client_closed");
    expect(logError).not.toHaveBeenCalled();
    expect(lines.map((l) => JSON.parse(l).outcome)).toEqual(["ok", "client_closed"]);
  });
});
