// Malformed and hostile requests over HTTP: each gets a 4xx JSON error with a stable code (never a
// 5xx), valid requests sent among them all succeed and are all recorded (nothing lost), the function
// keeps serving, and no Google key, service key, token or client secret shows up in any response
// body or header, any function log line, or any row of any table.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../supabase/functions/_shared/errors.ts";
import { allRowsAsText, type InvokeStack, mintToken, newToken, sha256, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let validToken: string;
let expiredToken: string;
let clientSecret: string;
const SIM_KEYS = ["sim-key-hostile-a-0123456789", "sim-key-hostile-b-0123456789"];
const INJECTION = `'; drop table public.google_ai_attempts; -- <script>alert(1)</script> {{7*7}} \${7*7} ../../etc/passwd`;

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_hostile", {
    keys: [
      { alias: "hostile-a", project: "proj-ha", priority: 1, simKey: SIM_KEYS[0]! },
      { alias: "hostile-b", project: "proj-hb", priority: 2, simKey: SIM_KEYS[1]! },
    ],
    // Flash's TPM is kept below what Google (the simulator: 4 bytes a token) counts for the 300 KB
    // input below, so it stays too large after the exact count, not only on the estimate.
    limits: [
      { model: "gemma-3-27b-it", rpm: 1000, tpm: 1_000_000, rpd: 100_000 },
      { model: "gemini-2.5-flash", rpm: 1000, tpm: 50_000, rpd: 100_000 },
    ],
  });
  const valid = await mintToken(s.sql, "hostile-valid");
  validToken = valid.token;
  clientSecret = valid.secret;
  const expired = await mintToken(s.sql, "hostile-expired");
  expiredToken = expired.token;
  await s.sql`update public.google_ai_tokens set expires_at = now() - interval '1 second' where id = ${expired.tokenId}`;
});

afterAll(async () => {
  await s?.close();
});

type Case = [name: string, init: () => RequestInit, status: number, code: string];

const JSON_CT = { "content-type": "application/json" };
const auth = () => ({ authorization: `Bearer ${s.serviceKey}` });
const post = (body: BodyInit, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { ...auth(), ...JSON_CT, ...headers },
  body,
});
const postJson = (value: unknown, headers: Record<string, string> = {}) => post(JSON.stringify(value), headers);
const ok = { model: "gemma-3-27b", prompt: "hello" };

function chunked(totalBytes: number): RequestInit {
  const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { method: "POST", headers: { ...auth(), ...JSON_CT }, body: stream, duplex: "half" } as RequestInit;
}

const CASES: Case[] = [
  // Body and JSON
  ["bad JSON", () => post("{not json"), 400, "invalid_json"],
  ["an empty body", () => post(""), 400, "invalid_json"],
  ["a JSON array", () => post("[]"), 400, "invalid_json"],
  ["a JSON string", () => post('"gemma"'), 400, "invalid_json"],
  ["JSON null", () => post("null"), 400, "invalid_json"],
  ["invalid UTF-8", () => post(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400, "invalid_json"],
  ["JSON nested 100,000 deep", () => post("[".repeat(100_000) + "]".repeat(100_000)), 400, "invalid_json"],
  ["an 11 MB body (content-length)", () => post("x".repeat(11_000_000)), 413, "body_too_large"],
  ["a 12 MB chunked body (no content-length)", () => chunked(12_000_000), 413, "body_too_large"],
  // Types and fields
  ["model as a number", () => postJson({ model: 42, prompt: "x" }), 400, "invalid_request"],
  ["prompt as an object", () => postJson({ model: "gemma-3-27b", prompt: { text: "x" } }), 400, "invalid_request"],
  ["no model", () => postJson({ prompt: "x" }), 400, "invalid_request"],
  ["an unknown model", () => postJson({ model: "claude-3-opus", prompt: "x" }), 400, "unknown_model"],
  ["SQL injection in model", () => postJson({ model: INJECTION, prompt: "x" }), 400, "invalid_request"],
  ["a path in model", () => postJson({ model: "../../v1beta/models/x:generateContent?key=1", prompt: "x" }), 400, "invalid_request"],
  ["a Unicode model name", () => postJson({ model: "gemma\u202e-3", prompt: "x" }), 400, "invalid_request"],
  ["an empty prompt", () => postJson({ model: "gemma-3-27b", prompt: "   " }), 400, "empty_input"],
  ["no input at all", () => postJson({ model: "gemma-3-27b" }), 400, "empty_input"],
  ["prompt and messages together", () => postJson({ ...ok, messages: [{ role: "user", content: "x" }] }), 400, "invalid_request"],
  ["a message role 'tool'", () => postJson({ model: "gemma-3-27b", messages: [{ role: "tool", content: "x" }] }), 400, "invalid_request"],
  ["an image part that is no image", () => postJson({ model: "gemma-3-27b", contents: [{ role: "user", parts: [{ inlineData: { mimeType: "image/png", data: "AAAA" } }] }] }), 400, "invalid_image"],
  ["a part of no known kind", () => postJson({ model: "gemma-3-27b", contents: [{ role: "user", parts: [{ executableCode: { code: "1" } }] }] }), 400, "unsupported_feature"],
  ["tools on Gemma", () => postJson({ ...ok, tools: [{ googleSearch: {} }] }), 400, "unsupported_feature"],
  ["an unknown top-level field", () => postJson({ ...ok, cachedContent: "cachedContents/x" }), 400, "invalid_request"],
  ["an unknown mode", () => postJson({ ...ok, mode: "SOMETIMES" }), 400, "invalid_request"],
  ["a negative max_wait_ms", () => postJson({ ...ok, max_wait_ms: -1 }), 400, "invalid_request"],
  ["max_wait_ms as a string", () => postJson({ ...ok, max_wait_ms: "1000" }), 400, "invalid_request"],
  ["max_wait_ms 1e308", () => postJson({ ...ok, max_wait_ms: 1e308 }), 400, "invalid_request"],
  ["SQL injection in request_id", () => postJson({ ...ok, request_id: INJECTION }), 400, "invalid_request"],
  ["a 200-character request_id", () => postJson({ ...ok, request_id: "r".repeat(200) }), 400, "invalid_request"],
  ["metadata as a string", () => postJson({ ...ok, metadata: INJECTION }), 400, "invalid_request"],
  ["metadata over 4 KB", () => postJson({ ...ok, metadata: { blob: "m".repeat(5000) } }), 400, "invalid_request"],
  ["temperature 5", () => postJson({ ...ok, generationConfig: { temperature: 5 } }), 400, "invalid_request"],
  ["a response schema on Gemma", () => postJson({ ...ok, generationConfig: { responseSchema: { type: "object" } } }), 400, "unsupported_feature"],
  ["a generationConfig field of the wrong type", () => postJson({ ...ok, generationConfig: { seed: "x" } }), 400, "invalid_request"],
  // Forwarded as a field Google may have added; Google's JSON parser refuses names it lacks.
  ["a generationConfig field Google does not have", () => postJson({ ...ok, generationConfig: { nested: { a: 1 } } }), 400, "upstream_rejected"],
  ["JSON mode on Gemma", () => postJson({ ...ok, generationConfig: { responseMimeType: "application/json" } }), 400, "unsupported_feature"],
  ["an input larger than the model's TPM", () => postJson({ model: "gemini-2.5-flash", prompt: "9".repeat(300_000) }), 400, "invalid_request"],
  // Method and content type
  ["GET", () => ({ method: "GET", headers: auth() }), 405, "method_not_allowed"],
  ["PUT", () => ({ ...postJson(ok), method: "PUT" }), 405, "method_not_allowed"],
  ["DELETE", () => ({ method: "DELETE", headers: auth() }), 405, "method_not_allowed"],
  ["OPTIONS", () => ({ method: "OPTIONS", headers: auth() }), 405, "method_not_allowed"],
  ["text/plain", () => post(JSON.stringify(ok), { "content-type": "text/plain" }), 415, "unsupported_media_type"],
  ["a form body", () => post("model=gemma-3-27b&prompt=x", { "content-type": "application/x-www-form-urlencoded" }), 415, "unsupported_media_type"],
  ["no content type", () => ({ method: "POST", headers: auth(), body: new Blob([JSON.stringify(ok)]) }), 415, "unsupported_media_type"],
  // Credentials
  ["no credential", () => ({ method: "POST", headers: JSON_CT, body: JSON.stringify(ok) }), 401, "unauthorized"],
  ["a forged service key", () => postJson(ok, { authorization: "Bearer sb_secret_forged_0123456789" }), 401, "unauthorized"],
  ["the service key plus a character", () => postJson(ok, { authorization: `Bearer ${s.serviceKey}x` }), 401, "unauthorized"],
  ["a JWT", () => postJson(ok, { authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl" }), 401, "unauthorized"],
  ["Basic auth", () => postJson(ok, { authorization: `Basic ${btoa(`postgres:${s.serviceKey}`)}` }), 401, "unauthorized"],
  ["SQL injection as the credential", () => postJson(ok, { authorization: `Bearer ${encodeURIComponent(INJECTION)}` }), 401, "unauthorized"],
  ["a forged token of the right shape", () => postJson(ok, { authorization: `Bearer ${newToken()}` }), 401, "token_invalid"],
  ["a malformed token", () => postJson(ok, { authorization: "Bearer evegw_tok_short" }), 401, "unauthorized"],
  ["an expired token", () => postJson(ok, { authorization: `Bearer ${expiredToken}` }), 401, "token_expired"],
  ["a Kaggle client secret (only issue-kaggle-token takes it)", () => postJson(ok, { authorization: `Bearer ${clientSecret}` }), 401, "unauthorized"],
  ["a token's SHA-256 instead of the token", () => postJson(ok, { authorization: `Bearer ${sha256(validToken)}` }), 401, "unauthorized"],
];

describe("malformed and hostile requests", () => {
  it(`${CASES.length} of them, sent concurrently with 20 valid requests: 4xx JSON each, and every valid one served and recorded`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    const before = s.stack.functions.functions["llm-invoke"]!.pid;
    const hostile = CASES.map(([name, init, status, code]) =>
      s.raw(init()).then((res) => ({ name, res, status, code })).catch((error: unknown) => ({ name, error, status, code })));
    const valid = Array.from({ length: 20 }, (_, i) => s.call({ ...ok, request_id: `among-hostile-${i}` }));
    const [outcomes, goods] = await Promise.all([Promise.all(hostile), Promise.all(valid)]);

    const wrong: string[] = [];
    for (const o of outcomes) {
      if ("error" in o) {
        wrong.push(`${o.name}: the connection failed (${String(o.error)})`);
        continue;
      }
      const { res } = o;
      if (res.status !== o.status || res.body?.error?.code !== o.code) {
        wrong.push(`${o.name}: got ${res.status} ${res.text.slice(0, 200)}`);
      }
      if (!/^application\/json/.test(res.headers.get("content-type") ?? "")) wrong.push(`${o.name}: not JSON`);
      if (res.status >= 500) wrong.push(`${o.name}: a 5xx`);
      if (!(res.body?.error?.code in ERROR_STATUS)) wrong.push(`${o.name}: unknown code`);
      if (typeof res.body?.error?.message !== "string" || res.body.error.message.length === 0) wrong.push(`${o.name}: no message`);
      if (/\bat [\w.]+ \(|\.ts:\d+/.test(res.text)) wrong.push(`${o.name}: a stack trace`);
      if (process.env.EVE_TEST_VERBOSE) console.log(`${o.name} -> ${res.status} ${res.text.slice(0, 160)}`);
    }
    expect(wrong).toEqual([]);

    expect(goods.map((g) => g.status)).toEqual(Array(20).fill(200));
    const [{ n }] = await s.sql`select count(*)::int as n from public.google_ai_attempts
                                where request_id like 'among-hostile-%' and status = 'succeeded'`;
    expect(n).toBe(20);
    const [{ u }] = await s.sql`select count(*)::int as u from public.token_usage where request_id like 'among-hostile-%'`;
    expect(u).toBe(20);
    // Only the 20 valid requests and the one generationConfig field the gateway forwards unchecked
    // (for Google to judge: it may be a field Google added) reached Google's generateContent; the
    // too-large input was counted once (countTokens, free) and refused on Google's own count.
    expect(s.sim.stats().byMethod["generateContent"]?.received).toBe(21);
    expect(s.sim.stats().byMethod["generateContent"]?.byStatus).toEqual({ "200": 20, "400": 1 });
    expect(s.sim.stats().total.received).toBe(22);
    // Same process, still serving.
    expect(s.stack.functions.functions["llm-invoke"]!.pid).toBe(before);
    expect((await s.call(ok)).status).toBe(200);
  }, 60_000);

  it("hostile strings in the fields that are accepted are stored as data, cleaned where jsonb needs it", async () => {
    const body = JSON.stringify({
      model: "gemma-3-27b",
      prompt: `${INJECTION} \u0000 \ud800 end`,
      system: INJECTION,
      request_id: "hostile-fields",
      metadata: { [INJECTION]: INJECTION, nul: "a\u0000b", lone: "\udc00", nested: [[[[{ x: INJECTION }]]]] },
    }).replace('"metadata":{', '"metadata":{"__proto__":{"admin":true},');
    const res = await s.call(body, { headers: { "x-caller": `${INJECTION}${"z".repeat(200)}` } });
    expect(res.status).toBe(200);
    const [row] = await s.sql`select caller, metadata from public.google_ai_attempts where request_id = 'hostile-fields'`;
    expect(row!.caller).toMatch(/^[A-Za-z0-9._:@-]{1,64}$/);
    expect(row!.metadata).toMatchObject({ [INJECTION]: INJECTION, nul: "ab", lone: "\ufffd", nested: [[[[{ x: INJECTION }]]]] });
    // A "__proto__" key is dropped by validation (it never becomes data, or a shared prototype).
    const [{ proto, admin }] = await s.sql`select metadata -> '__proto__' as proto, metadata -> 'admin' as admin
                                           from public.google_ai_attempts where request_id = 'hostile-fields'`;
    expect([proto, admin]).toEqual([null, null]);
    expect(await s.sql`select 1 from public.google_ai_attempts limit 1`).toHaveLength(1); // the table is still there
  });

  it("a valid token works (the scan below must not find it anywhere)", async () => {
    const res = await s.call(ok, { auth: validToken });
    expect(res.status).toBe(200);
  });
});

describe("no secret anywhere", () => {
  it("no Google key, service key, token or client secret in any response, log line or table row", async () => {
    const secrets = [...SIM_KEYS, s.serviceKey, validToken, expiredToken, clientSecret];
    const leaks: string[] = [];
    for (const seen of s.seen) {
      const text = `${JSON.stringify(seen.headers)}\n${seen.text}`;
      for (const secret of secrets) if (text.includes(secret)) leaks.push(`response ${seen.status} holds ${secret.slice(0, 12)}…`);
    }
    for (const line of s.logs) {
      for (const secret of secrets) if (line.includes(secret)) leaks.push(`log line holds ${secret.slice(0, 12)}…: ${line.slice(0, 80)}`);
    }
    const rows = await allRowsAsText(s.sql);
    expect(rows.some((r) => r.table === "google_ai_attempts")).toBe(true);
    expect(rows.some((r) => r.table === "token_usage")).toBe(true);
    expect(rows.some((r) => r.table === "google_ai_tokens")).toBe(true);
    for (const { table, text } of rows) {
      for (const secret of secrets) if (text.includes(secret)) leaks.push(`${table} holds ${secret.slice(0, 12)}…`);
    }
    expect(leaks).toEqual([]);
    expect(s.seen.length).toBeGreaterThan(70);
  });
});
