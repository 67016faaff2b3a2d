// The Google client against a real local HTTP server that answers like Google, one scripted answer
// per test, so the SDK's real request/response path (URL, headers, JSON, errors) is exercised.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hubText } from "../../upstream/hub.ts";
import { type GeminiRequest, hubRequestOf } from "../../../llm-invoke/surfaces/gemini/test-fixtures.ts";
import { createGoogleClient } from "./client.ts";
import { type CountTokensOutcome, type GenerateCall, type GenerateOutcome } from "../../upstream/port.ts";

const KEY = "AIzaSyTESTKEY000000000000000000000000000";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
}
type Script = (res: ServerResponse, seen: Seen) => void;

let server: Server;
let baseUrl: string;
let script: Script;
let seen: Seen[];

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const s: Seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: JSON.parse(raw || "{}"),
      };
      seen.push(s);
      script(res, s);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  seen = [];
});

function json(status: number, body: unknown): Script {
  return (res) => {
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
    res.end(JSON.stringify(body));
  };
}

const REQUEST: GeminiRequest = {
  model: "gemma-3-27b-it",
  contents: [{ role: "user", parts: [{ text: "Привет" }] }],
  generationConfig: { temperature: 0.3, maxOutputTokens: 64 },
};

function call(overrides: Partial<GenerateCall> = {}): Promise<GenerateOutcome> {
  return createGoogleClient({ baseUrl }).generate({ apiKey: KEY, request: hubRequestOf(REQUEST), timeoutMs: 5000, ...overrides });
}

function failure(outcome: GenerateOutcome) {
  if (outcome.ok) throw new Error("expected a failure");
  return outcome.error;
}

describe("google-client", () => {
  it("posts to v1beta generateContent with the key in a header and returns text and usage", async () => {
    script = json(200, {
      candidates: [{
        content: {
          role: "model",
          parts: [{ text: "thinking…", thought: true }, { text: "Здравствуйте" }, { text: "!" }],
        },
        finishReason: "STOP",
      }],
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 4, thoughtsTokenCount: 2, totalTokenCount: 9 },
      modelVersion: "gemma-3-27b-it",
    });
    const outcome = await call({
      request: hubRequestOf({ ...REQUEST, model: "gemini-2.5-flash", systemInstruction: "Be brief." }),
    });
    expect(outcome).toMatchObject({
      ok: true,
      answer: {
        outputs: [{ index: 0, finish: { reason: "stop", word: "STOP" } }],
        usage: { inputTokens: 3, outputTokens: 4, thinkingTokens: 2, cachedInputTokens: 0, totalTokens: 9 },
        modelVersion: "gemma-3-27b-it",
      },
      dialectAnswer: { dialect: "google" },
    });
    if (outcome.ok) expect(hubText(outcome.answer)).toBe("Здравствуйте!");
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect(s.method).toBe("POST");
    expect(s.url).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(s.headers["x-goog-api-key"]).toBe(KEY);
    expect(s.url).not.toContain(KEY);
    expect(s.body).toMatchObject({
      contents: [{ role: "user", parts: [{ text: "Привет" }] }],
      generationConfig: { temperature: 0.3, maxOutputTokens: 64 },
      systemInstruction: { parts: [{ text: "Be brief." }] },
    });
  });

  it("sends no systemInstruction when there is none (Gemma rejects it)", async () => {
    script = json(200, { candidates: [{ content: { parts: [{ text: "ok" }] }, finishReason: "STOP" }] });
    const outcome = await call();
    expect(outcome).toMatchObject({ ok: true, answer: { usage: null } });
    if (outcome.ok) expect(hubText(outcome.answer)).toBe("ok");
    expect(seen[0]!.body).not.toHaveProperty("systemInstruction");
  });

  it("reports a blocked prompt as a finish reason, not an error", async () => {
    script = json(200, {
      promptFeedback: { blockReason: "SAFETY" },
      usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 },
    });
    expect(await call()).toMatchObject({ ok: true, answer: { outputs: [], promptBlocked: { word: "SAFETY" } } });
  });

  it("classifies a 429 with RetryInfo and QuotaFailure, in one request (no SDK retries)", async () => {
    script = json(429, {
      error: {
        code: 429,
        status: "RESOURCE_EXHAUSTED",
        message: "You exceeded your current quota. Please retry in 21.5s.",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [{ quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier" }],
          },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "21s" },
        ],
      },
    });
    const error = failure(await call());
    expect(error).toMatchObject({
      class: "rate_limited",
      httpStatus: 429,
      retryAfterMs: 21_500,
      quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
      perDay: false,
    });
    expect(seen).toHaveLength(1);
  });

  it("classifies an invalid key and keeps the key out of the message even if echoed", async () => {
    script = json(400, {
      error: {
        code: 400,
        status: "INVALID_ARGUMENT",
        message: `API key not valid: ${KEY}`,
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" }],
      },
    });
    const outcome = await call();
    expect(failure(outcome)).toMatchObject({ class: "invalid_key", reason: "API_KEY_INVALID" });
    expect(JSON.stringify(outcome)).not.toContain(KEY);
  });

  it("makes one request for a 500 and marks it retryable", async () => {
    script = json(500, { error: { code: 500, status: "INTERNAL", message: "An internal error has occurred." } });
    expect(failure(await call())).toMatchObject({ class: "retryable", kind: "http", httpStatus: 500 });
    expect(seen).toHaveLength(1);
  });

  it("keeps the status of an error whose JSON body is malformed", async () => {
    script = (res) => {
      res.writeHead(503, { "content-type": "application/json" });
      res.end("{ not json");
    };
    expect(failure(await call())).toMatchObject({ class: "retryable", kind: "http", httpStatus: 503 });
  });

  it("classifies a malformed success body as malformed", async () => {
    script = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"candidates": [');
    };
    expect(failure(await call())).toMatchObject({ class: "retryable", kind: "malformed" });
  });

  it("classifies a 200 without candidates as malformed", async () => {
    script = json(200, {});
    expect(failure(await call())).toMatchObject({ class: "retryable", kind: "malformed", httpStatus: 200 });
  });

  it("gives up at the deadline with a timeout", async () => {
    script = () => {}; // never answers
    const started = Date.now();
    const error = failure(await call({ timeoutMs: 300 }));
    expect(error).toMatchObject({ class: "retryable", kind: "timeout" });
    expect(Date.now() - started).toBeLessThan(30_000); // cut at the deadline, not left hanging
    expect(seen).toHaveLength(1);
  });

  it("reports a caller's cancellation as aborted, whatever reason it carries", async () => {
    script = () => {};
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("budget spent")), 100);
    expect(failure(await call({ signal: controller.signal }))).toMatchObject({ kind: "aborted" });
  });

  it("classifies an unreachable server as a network error without leaking the key", async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((resolve) => dead.close(resolve));
    const outcome = await createGoogleClient({ baseUrl: `http://127.0.0.1:${port}` })
      .generate({ apiKey: KEY, request: hubRequestOf(REQUEST), timeoutMs: 5000 });
    expect(failure(outcome)).toMatchObject({ class: "retryable", kind: "network", httpStatus: null });
    expect(JSON.stringify(outcome)).not.toContain(KEY);
  });
});

describe("google-client countTokens", () => {
  const count = (overrides: Partial<GenerateCall> = {}): Promise<CountTokensOutcome> =>
    createGoogleClient({ baseUrl }).countTokens({ apiKey: KEY, request: hubRequestOf(REQUEST), timeoutMs: 5000, ...overrides });
  const countFailure = (outcome: CountTokensOutcome) => {
    if (outcome.ok) throw new Error("expected a failure");
    return outcome.error;
  };

  it("posts the whole generateContentRequest (system instruction included) with the key in a header", async () => {
    script = json(200, { totalTokens: 11_275 });
    const outcome = await count({ request: hubRequestOf({ ...REQUEST, model: "gemini-2.5-flash", systemInstruction: "Кратко." }) });
    expect(outcome).toMatchObject({ ok: true, totalTokens: 11_275 });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe("POST");
    expect(seen[0]!.url).toBe("/v1beta/models/gemini-2.5-flash:countTokens");
    expect(seen[0]!.headers["x-goog-api-key"]).toBe(KEY);
    expect(seen[0]!.url).not.toContain(KEY);
    expect(seen[0]!.body).toEqual({
      generateContentRequest: {
        model: "models/gemini-2.5-flash",
        contents: REQUEST.contents,
        systemInstruction: { parts: [{ text: "Кратко." }] },
        generationConfig: REQUEST.generationConfig,
      },
    });
  });

  it("classifies Google's refusals like generate's and keeps the key out of the message", async () => {
    script = json(429, {
      error: { code: 429, status: "RESOURCE_EXHAUSTED", message: `quota for key ${KEY}`, details: [] },
    });
    const error = countFailure(await count());
    expect(error).toMatchObject({ class: "rate_limited", httpStatus: 429 });
    expect(JSON.stringify(error)).not.toContain(KEY);
    script = (res) => {
      res.writeHead(503, { "content-type": "text/html" });
      res.end("<html>unavailable</html>");
    };
    expect(countFailure(await count())).toMatchObject({ class: "retryable", httpStatus: 503 });
  });

  it("treats a 200 without a whole totalTokens as malformed, and gives up at the deadline", async () => {
    script = json(200, { totalTokens: "many" });
    expect(countFailure(await count())).toMatchObject({ class: "retryable", kind: "malformed", httpStatus: 200 });
    script = () => {}; // never answers
    expect(countFailure(await count({ timeoutMs: 300 }))).toMatchObject({ kind: "timeout" });
  });
});

describe("google-client: a 404 for the model called", () => {
  const notFound = (model: string, method: string, version = "v1beta") =>
    json(404, {
      error: {
        code: 404,
        status: "NOT_FOUND",
        message: `models/${model} is not found for API version ${version}, or is not supported for ${method}. ` +
          "Call ListModels to see the list of available models and their supported methods.",
      },
    });

  it("is model_withdrawn on generate and stream by its structure, whatever it says; an HTML 404 is not", async () => {
    const client = createGoogleClient({ baseUrl });
    const generate = () => call().then(failure);
    const stream = () =>
      client.stream({ apiKey: KEY, request: hubRequestOf(REQUEST), timeoutMs: 5000 }).then((o) => {
        if (o.ok) throw new Error("expected a failure");
        return o.error;
      });
    script = notFound(REQUEST.model, "generateContent");
    expect((await generate()).class).toBe("model_withdrawn");
    script = notFound(REQUEST.model, "streamGenerateContent");
    expect((await stream()).class).toBe("model_withdrawn");
    // Another sentence, another version in the text: the same answer (models.get confirms it).
    script = notFound("gemma-4-31b-it", "generateContent", "v1");
    expect((await generate()).class).toBe("model_withdrawn");
    // Google's front end answers a path it does not have with an HTML page: not about the model.
    script = (res) => {
      res.writeHead(404, { "content-type": "text/html; charset=UTF-8" });
      res.end("<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>");
    };
    expect((await generate()).class).toBe("client_error");
    expect((await stream()).class).toBe("client_error");
  });

  it("models.get: a GET for the model with the key in a header; 200 is ok, its 404 is model_withdrawn", async () => {
    const client = createGoogleClient({ baseUrl });
    const get = () => client.getModel({ apiKey: KEY, model: "gemini-2.5-flash", timeoutMs: 5000 });
    script = json(200, { name: "models/gemini-2.5-flash", supportedGenerationMethods: ["generateContent"] });
    expect(await get()).toMatchObject({ ok: true });
    expect(seen[0]).toMatchObject({ method: "GET", url: "/v1beta/models/gemini-2.5-flash" });
    expect(seen[0]!.headers["x-goog-api-key"]).toBe(KEY);
    script = notFound("gemini-2.5-flash", "get");
    expect(await get()).toMatchObject({ ok: false, error: { class: "model_withdrawn", httpStatus: 404 } });
    script = () => {}; // never answers
    expect(await client.getModel({ apiKey: KEY, model: "gemini-2.5-flash", timeoutMs: 300 }))
      .toMatchObject({ ok: false, error: { kind: "timeout" } });
  });
});
