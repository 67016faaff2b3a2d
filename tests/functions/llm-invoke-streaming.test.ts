// Streaming with exact accounting, images and unknown paths, over HTTP with the real function,
// PostgreSQL and the simulator (which streams chunk by chunk, slowly, so a caller can leave mid-way).
// Streams go through Google's own SDK (@google/genai) on the Gemini route and through the native
// route's server-sent events.
import { GoogleGenAI } from "@google/genai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { postDeclaring } from "../support/early-answer.ts";
import { base64, jpeg, png } from "../support/image-bytes.ts";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const GEMMA = "gemma-3-27b-it";
const FLASH = "gemini-2.5-flash";
const CHUNK_DELAY_MS = 150;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_streaming", {
    keys: [{ alias: "st-key", project: "proj-st", priority: 1, simKey: "sim-key-st" }],
    simulator: { streamChunks: 5, streamChunkDelayMs: CHUNK_DELAY_MS },
  });
});
afterAll(async () => {
  await s?.close();
});
beforeEach(async () => {
  await s.reset();
  // Each test reads the audit rows of its own requests.
  await s.sql`delete from public.google_ai_attempts`;
  await s.setLimit({ model: GEMMA, rpm: 30, tpm: 1_000_000, rpd: 14_400 });
  await s.setLimit({ model: FLASH, rpm: 100, tpm: 1_000_000, rpd: 1_000 });
});

function sdk(headers: Record<string, string> = {}): GoogleGenAI {
  return new GoogleGenAI({ apiKey: s.serviceKey, vertexai: false, httpOptions: { baseUrl: s.url, headers } });
}

/** The native route's events, read as they come. */
async function* nativeEvents(body: Record<string, unknown>, signal?: AbortSignal): AsyncGenerator<Record<string, unknown>> {
  const res = await fetch(s.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const bytes of res.body!) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data !== "") yield JSON.parse(data) as Record<string, unknown>;
    }
  }
}

const statuses = () =>
  s.sql<{ status: string; n: number }[]>`
    select status, count(*)::int as n from public.google_ai_attempts group by status order by status`;

describe("streaming with exact accounting", () => {
  it("100 concurrent streams against RPM 30 (NO_WAIT): exactly 30 stream; counters and audit rows equal what Google counted", async () => {
    const client = sdk({ "x-eve-mode": "NO_WAIT" });
    const outcomes = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      try {
        let text = "";
        for await (const chunk of await client.models.generateContentStream({ model: GEMMA, contents: `burst ${i}` })) {
          text += chunk.text ?? "";
        }
        return text === `sim(${GEMMA}): burst ${i}` ? "streamed" : `wrong text: ${text}`;
      } catch (error) {
        return (error as { status?: number }).status === 429 ? "refused" : `error: ${String(error)}`;
      }
    }));
    expect(outcomes.filter((o) => o === "streamed")).toHaveLength(30);
    expect(outcomes.filter((o) => o === "refused")).toHaveLength(70);
    const google = s.sim.stats();
    expect(google.streams).toMatchObject({ started: 30, completed: 30, clientAborted: 0 });
    expect(await statuses()).toEqual([{ status: "refused", n: 70 }, { status: "succeeded", n: 30 }]);
    // The window holds what Google counted: 30 admissions, their input tokens settled at Google's counts.
    const [window] = await s.sql<{ n: number; tokens: number }[]>`
      select coalesce(sum(window_requests), 0)::int as n, coalesce(sum(window_tokens), 0)::int as tokens
      from public.google_ai_usage_counters where model = ${GEMMA}`;
    const [audited] = await s.sql<{ tokens: number }[]>`
      select sum(input_tokens)::int as tokens from public.google_ai_attempts where status = 'succeeded'`;
    const googleTokens = google.recent.filter((r) => r.status === 200).reduce((sum, r) => sum + (r.promptTokens ?? 0), 0);
    expect(window).toEqual({ n: 30, tokens: googleTokens });
    expect(audited!.tokens).toBe(googleTokens);
  });

  it("a caller that leaves after the first chunk: Google's stream is aborted, the attempt is cut with the tokens so far", async () => {
    const abort = new AbortController();
    const stream = await sdk().models.generateContentStream({
      model: FLASH,
      contents: "a long answer, please, streamed slowly",
      config: { abortSignal: abort.signal },
    });
    for await (const chunk of stream) {
      expect(chunk.text).toBeTruthy();
      abort.abort();
      break;
    }
    await expect.poll(() => s.sim.stats().streams.clientAborted, { timeout: 5_000 }).toBe(1);
    await expect.poll(async () => (await statuses()).map((r) => r.status), { timeout: 5_000 }).toEqual(["cut"]);
    const [row] = await s.sql<{ error_code: string; input_tokens: number; output_tokens: number; estimated_tokens: number }[]>`
      select error_code, input_tokens, output_tokens, estimated_tokens from public.google_ai_attempts`;
    const record = s.sim.stats().recent[0]!;
    expect(row!.error_code).toBe("stream_cut_by_client");
    expect(row!.input_tokens).toBe(record.promptTokens);
    expect(row!.output_tokens).toBeGreaterThan(0);
    // Capacity is exact: the window holds Google's count of the input, not the estimate; nothing is left reserved.
    const [window] = await s.sql<{ tokens: number }[]>`
      select sum(window_tokens)::int as tokens from public.google_ai_usage_counters where model = ${FLASH}`;
    expect(window!.tokens).toBe(record.promptTokens);
  });

  it("Google breaking a stream off mid-way: the native stream ends with an error event, the attempt is cut by Google", async () => {
    s.sim.addFault({ kind: "cut_stream", afterChunks: 2, count: 1 });
    const events: Record<string, unknown>[] = [];
    for await (const event of nativeEvents({ model: FLASH, prompt: "cut me off" })) events.push(event);
    expect(events.map((e) => e.type)).toEqual(["chunk", "chunk", "error"]);
    expect(events[2]).toMatchObject({ error: { code: "upstream_error" } });
    const [row] = await s.sql<{ status: string; error_code: string }[]>`select status, error_code from public.google_ai_attempts`;
    expect(row).toEqual({ status: "cut", error_code: "stream_cut_by_upstream" });
    // The request's log line is written when the stream ends, and says how it ended.
    await expect.poll(() => s.logs.some((l) => l.includes('"stream_error":"upstream_error"'))).toBe(true);
    const line = JSON.parse(s.logs.find((l) => l.includes('"stream_error":"upstream_error"'))!.replace(/^[^{]*/, ""));
    expect(line).toMatchObject({ stream: true, stream_end: "done", stream_error: "upstream_error", status: 200 });
    expect(line.latency_ms).toBeGreaterThanOrEqual(line.first_byte_ms);
  });

  it("the native stream: chunks, then done with the whole answer and usage; the first byte needs no database write after Google's", async () => {
    const events: Record<string, unknown>[] = [];
    for await (const event of nativeEvents({ model: GEMMA, prompt: "native stream" })) events.push(event);
    expect(events.at(-1)).toMatchObject({ type: "done", text: `sim(${GEMMA}): native stream`, model: GEMMA });
    expect(events.filter((e) => e.type === "chunk").map((e) => e.text).join("")).toBe(`sim(${GEMMA}): native stream`);
    expect(await statuses()).toEqual([{ status: "succeeded", n: 1 }]);
  });

  it("a stream that waits for its turn says where it stands (queued events) before its chunks", async () => {
    // Google asks the key's project to cool down for 2 s: the request waits in line for that.
    s.sim.addFault({ kind: "rate_limited", retryDelay: "2s", count: 1 });
    const events: Record<string, unknown>[] = [];
    for await (const event of nativeEvents({ model: FLASH, prompt: "patience", max_wait_ms: 10_000 })) events.push(event);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe("queued");
    expect(events[0]).toMatchObject({ model: FLASH });
    expect(typeof events[0]!.expected_at).toBe("string");
    expect(types.at(-1)).toBe("done");
    expect(types.indexOf("chunk")).toBeGreaterThan(types.lastIndexOf("queued"));
  });
});

describe("images", () => {
  const ask = (mimeType: string, data: string) => ({
    model: FLASH,
    mode: "NO_WAIT",
    contents: [{ role: "user", parts: [{ text: "what is in this picture?" }, { inlineData: { mimeType, data } }] }],
  });

  it("an image request is admitted with an estimate never below Google's count", async () => {
    for (const [width, height] of [[100, 100], [1000, 700], [3000, 2000]] as const) {
      await s.reset();
      await s.sql`delete from public.google_ai_attempts`;
      const res = await s.call(ask("image/png", base64(png(width, height))));
      expect(res.status).toBe(200);
      const [row] = await s.sql<{ estimated_tokens: number; input_tokens: number }[]>`
        select estimated_tokens, input_tokens from public.google_ai_attempts where status = 'succeeded'`;
      expect(row!.input_tokens).toBe(s.sim.stats().recent[0]!.promptTokens);
      expect(row!.estimated_tokens).toBeGreaterThanOrEqual(row!.input_tokens);
    }
  });

  it.each([
    ["a PNG bomb (100000 x 100000 declared in a tiny file)", () => ask("image/png", base64(png(100_000, 100_000))), 413, "image_too_large"],
    ["a JPEG bomb (65500 x 65500 declared)", () => ask("image/jpeg", base64(jpeg(65_500, 65_500))), 413, "image_too_large"],
    ["a corrupt image", () => ask("image/png", base64([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])), 400, "invalid_image"],
    ["JPEG bytes called PNG", () => ask("image/png", base64(jpeg(10, 10))), 400, "invalid_image"],
    ["a GIF", () => ask("image/gif", "R0lGODlhAQABAAAAACw="), 400, "unsupported_feature"],
    ["a file uploaded to one Google project", () => ({
      model: FLASH,
      contents: [{ role: "user", parts: [{ fileData: { mimeType: "image/png", fileUri: "https://x/files/1" } }] }],
    }), 400, "unsupported_feature"],
    ["tools on Gemma", () => ({ model: GEMMA, prompt: "x", tools: [{ functionDeclarations: [{ name: "f" }] }] }), 400, "unsupported_feature"],
    ["a JSON schema on Gemma", () => ({ model: GEMMA, prompt: "x", generationConfig: { responseJsonSchema: { type: "object" } } }), 400, "unsupported_feature"],
  ])("%s: a 4xx with a stable code, nothing reaches Google", async (_name, body, status, code) => {
    const res = await s.call(body());
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(s.sim.stats().recent).toHaveLength(0);
  });

  it("a 30 MB body: 413 body_too_large without reading it all", async () => {
    // Its first 64 KiB sent, the rest never: the answer comes while the client still owes the body.
    const body = Buffer.from(JSON.stringify(ask("image/png", "A".repeat(30_000_000))));
    const headers = { "content-type": "application/json", authorization: `Bearer ${s.serviceKey}` };
    const res = await postDeclaring(s.url, headers, body.byteLength, body.subarray(0, 64 * 1024));
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ error: { code: "body_too_large" } });
  });
});

describe("paths", () => {
  it.each([
    ["/functions/v1/llm-invoke/v2/anything", "POST"],
    ["/functions/v1/llm-invoke/v1beta/models/gemma-3-27b-it:predict", "POST"],
    ["/functions/v1/llm-invoke/v1/completions", "POST"],
    ["/functions/v1/llm-invoke/v1/chat", "GET"],
  ])("%s: 404 naming the routes, before any credential or body is looked at", async (path, method) => {
    const res = await s.raw({ method, path, ...(method === "POST" ? { body: "{}" } : {}) });
    expect(res.status).toBe(404);
    expect(JSON.stringify(res.body)).toContain("/v1/chat/completions");
    expect(s.sim.stats().recent).toHaveLength(0);
  });
});
