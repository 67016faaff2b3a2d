// Hostile input against all three functions, over HTTP on the local stack (real PostgreSQL, the Google
// simulator): several hundred distinct requests, generated as tables × fields — credentials of every
// wrong kind, bodies built to make regular expressions backtrack (about 1 MB each), deep
// nesting, prototype keys, control characters and lone surrogates, every field of every function with
// every wrong type, slow-drip bodies and clients that vanish mid-body. Every answer is a 4xx JSON error
// with a code from the one error table; no secret shows up in any answer, log line or table row; and
// the functions keep serving valid requests afterwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { ERROR_STATUS } from "../../supabase/functions/_shared/errors.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { startKaggleStack, type KaggleStack } from "../kaggle/stack.ts";
import { allRowsAsText, mintToken, newToken } from "./llm-invoke-helpers.ts";

const FUNCTIONS = ["llm-invoke", "issue-kaggle-token", "maintenance"] as const;
type Fn = typeof FUNCTIONS[number];
const MB = 1_000_000;

let db: TestDatabase;
let stack: KaggleStack;
let clientSecret: string;
let validToken: string;

beforeAll(async () => {
  db = await freshDatabase("hostile_all");
  stack = await startKaggleStack({ databaseUrl: db.url });
  const minted = await mintToken(db.sql, "hostile-all-client");
  clientSecret = minted.secret;
  validToken = minted.token;
}, 120_000);

afterAll(async () => {
  // A function that died under the hostile inputs answers 503 while it restarts: say why it died.
  const logs = stack?.logs ?? [];
  logs.forEach((line, i) => {
    const died = /^\[([\w-]+)\] exited/.exec(line);
    if (died) console.error(logs.slice(0, i + 1).filter((l) => l.startsWith(`[${died[1]}]`)).slice(-12).join("\n").slice(-4000));
  });
  await stack?.close();
  await db?.drop();
});

interface Sent {
  name: string;
  status: number;
  contentType: string;
  text: string;
}
const answers: Sent[] = [];

const urlOf = (fn: Fn) => `${stack.url}/functions/v1/${fn}`;
const serviceAuth = () => ({ authorization: `Bearer ${stack.serviceKey}` });
const JSON_CT = { "content-type": "application/json" };

/** Bodies that made unbounded patterns backtrack, each close to the body limit. */
const QUADRATIC: Record<string, () => string> = {
  "url-password shape": () => JSON.stringify({ model: "a://b:".repeat(Math.floor(0.9 * MB / 6)) }),
  "key= assignments": () => JSON.stringify({ prompt: 1, x: "keykey=".repeat(Math.floor(0.9 * MB / 7)) }),
  "a 128 KiB unknown key": () => JSON.stringify({ ["k".repeat(128 * 1024)]: 1 }),
  "a 900 KB unknown key of letters before key": () => JSON.stringify({ ["a".repeat(900_000) + "key"]: 1 }),
  "jwt-looking run": () => JSON.stringify({ ["eyJ".repeat(300_000)]: 1 }),
  "bearer and spaces": () => JSON.stringify({ ["bearer" + " ".repeat(900_000)]: 1 }),
  "quote-letter runs": () => `{"${'aaaa\\"'.repeat(150_000)}": 1}`,
  "many unknown keys": () => JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`key_${"z".repeat(30)}${i}`, i]))),
  "secret-shaped unknown key": () => JSON.stringify({ [`sb_secret_${"s".repeat(500_000)}`]: 1 }),
  "deep array nesting": () => "[".repeat(400_000) + "]".repeat(400_000),
  "deep object nesting": () => '{"a":'.repeat(150_000) + "1" + "}".repeat(150_000),
  "invalid JSON near the limit": () => "{" + '"a":1,'.repeat(150_000),
};

/** Small malformed or odd bodies. */
const MALFORMED: Record<string, string | Uint8Array> = {
  "not JSON": "{not json",
  "empty": "",
  "whitespace": "   \n\t ",
  "an array": "[]",
  "a string": '"x"',
  "null": "null",
  "a number": "42",
  "true": "true",
  "trailing comma": '{"a":1,}',
  "single quotes": "{'a':1}",
  "NUL in a key": '{"a\\u0000b":1}',
  "lone surrogate key": '{"\\ud800":1}',
  "__proto__ key": '{"__proto__":{"admin":true}}',
  "constructor key": '{"constructor":{"prototype":{"admin":true}}}',
  "duplicate keys": '{"models":["a"],"models":5}',
  "BOM": "\ufeff{}",
  "invalid UTF-8": new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
  "overlong UTF-8": new Uint8Array([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]),
  "huge number": '{"a":1e999999}',
  "an unterminated string": '{"a":"' + "x".repeat(10_000),
  "a raw control character": '{"a":"\u0001' + String.fromCharCode(1) + '"}',
  "escaped NUL everywhere": JSON.stringify({ ["\u0000".repeat(1000)]: "\u0000".repeat(1000) }),
  "RTL override key": JSON.stringify({ "\u202emodel": "x" }),
  "emoji key": JSON.stringify({ ["\u{1F600}".repeat(5000)]: 1 }),
  "NaN literal": '{"a":NaN}',
  "a comment": '{/* hi */"a":1}',
  "hex number": '{"a":0x10}',
  "two documents": '{"a":1}{"b":2}',
  "a very long number": `{"a":${"9".repeat(100_000)}}`,
  "script and SQL": JSON.stringify({ "'; drop table public.google_ai_attempts; --": "<script>alert(1)</script>" }),
};

/** Each function's fields, each given values of every wrong type. */
const FIELDS: Record<Fn, string[]> = {
  "llm-invoke": ["model", "prompt", "system", "messages", "contents", "generationConfig", "mode", "max_wait_ms",
    "request_id", "metadata", "include_candidates", "fallback_models"],
  "issue-kaggle-token": ["client_secret", "models", "ttl_seconds", "max_requests", "max_tokens"],
  "maintenance": ["housekeeping", "keys", "dry_run", "source"],
};
const WRONG_VALUES: Record<string, (field: string) => unknown> = {
  "an object": () => ({ nested: { deeper: [1, 2, 3] } }),
  "a huge string": () => "h".repeat(200_000),
  "a negative number": () => -1e308,
  "an array of nulls": () => [null, null],
  "a string with NUL and a lone surrogate": () => "a\u0000b\ud800c",
  "a nested array": () => [[[[[]]]]],
  "an array of huge strings": () => ["x".repeat(100_000), "y".repeat(100_000)],
  "a very large number": () => 1e21,
};
/** Kinds of value some fields legitimately take (text may hold anything; metadata is any object). */
const VALID_FOR: Record<string, string[]> = {
  "a string with NUL and a lone surrogate": ["prompt", "system"],
  "an object": ["metadata"],
};
/** Values that are wrong for a field but right for another: one per field, chosen by the field's kind. */
const BASE: Record<Fn, Record<string, unknown>> = {
  "llm-invoke": { model: "gemma-3-27b", prompt: "hello" },
  "issue-kaggle-token": {},
  "maintenance": {},
};

interface Case {
  name: string;
  fn: Fn;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

function cases(): Case[] {
  const out: Case[] = [];
  const asService = { ...serviceAuth(), ...JSON_CT };
  // issue-kaggle-token's callers are anonymous until their secret is checked: send bodies without one.
  const caller = (fn: Fn) => (fn === "issue-kaggle-token" ? { ...JSON_CT } : asService);
  for (const fn of FUNCTIONS) {
    for (const [name, body] of Object.entries(QUADRATIC)) out.push({ name: `${fn}: ${name}`, fn, headers: caller(fn), body: body() });
    for (const [name, body] of Object.entries(MALFORMED)) {
      // An empty body (a BOM is dropped when decoding) is maintenance's "run everything": valid.
      if (fn === "maintenance" && typeof body === "string" && body.replace("\ufeff", "").trim() === "") continue;
      if (fn === "maintenance" && name === "BOM") continue;
      out.push({ name: `${fn}: ${name}`, fn, headers: caller(fn), body });
    }
    for (const field of FIELDS[fn]) {
      for (const [kind, value] of Object.entries(WRONG_VALUES)) {
        if (VALID_FOR[kind]?.includes(field)) continue;
        out.push({ name: `${fn}: ${field} as ${kind}`, fn, headers: caller(fn), body: JSON.stringify({ ...BASE[fn], [field]: value(field) }) });
      }
    }
    const credentials: Record<string, Record<string, string>> = {
      "no credential": {},
      "a forged service key": { authorization: "Bearer sb_secret_forged_0123456789abcdef" },
      "the service key plus a character": { authorization: `Bearer ${stack.serviceKey}x` },
      "a JWT": { authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2ln" },
      "Basic auth": { authorization: `Basic ${btoa(`postgres:${stack.serviceKey}`)}` },
      "Digest": { authorization: 'Digest username="x", response="y"' },
      "a made-up token": { authorization: `Bearer ${newToken()}` },
      "another made-up token in apikey": { apikey: newToken() },
      "a malformed token": { authorization: "Bearer evegw_tok_short" },
      "a made-up client secret": { authorization: `Bearer evegw_cs_${"Q".repeat(43)}` },
      "an 8 KB bearer": { authorization: `Bearer ${"b".repeat(8 * 1024)}` },
      "a header full of spaces": { authorization: `Bearer${" ".repeat(4000)}x` },
    };
    // A request valid but for its credential: for llm-invoke a real prompt, elsewhere an empty object.
    const body = fn === "llm-invoke" ? JSON.stringify({ model: "gemma-3-27b", prompt: "hello" }) : "{}";
    for (const [name, headers] of Object.entries(credentials)) out.push({ name: `${fn}: ${name}`, fn, headers: { ...JSON_CT, ...headers }, body });
    out.push({ name: `${fn}: a made-up token with a 900 KB body`, fn, headers: { ...JSON_CT, authorization: `Bearer ${newToken()}` }, body: JSON.stringify({ ["x".repeat(900_000)]: 1 }) });
  }
  return out;
}

/**
 * One request on its own connection: a function may answer before it has read a body it refuses
 * (credentials first), and then closes that connection; a pooled client would see the next request
 * on it reset.
 */
function send(c: Case): Promise<Sent> {
  const u = new URL(urlOf(c.fn));
  const body = typeof c.body === "string" ? Buffer.from(c.body) : Buffer.from(c.body);
  return new Promise((resolve) => {
    const req = httpRequest({
      host: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      method: "POST",
      agent: false,
      headers: { ...c.headers, "content-length": String(body.byteLength) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        const sent = {
          name: c.name,
          status: res.statusCode ?? 0,
          contentType: String(res.headers["content-type"] ?? ""),
          text: Buffer.concat(chunks).toString("utf8"),
        };
        answers.push(sent);
        resolve(sent);
      });
    });
    // An answer that comes before the whole body was sent may reset the upload; the answer counts.
    req.on("error", (error) => resolve({ name: c.name, status: 0, contentType: "", text: `connection failed: ${String(error)}` }));
    req.end(body);
  });
}

function problems(sent: Sent): string[] {
  const out: string[] = [];
  if (sent.status < 400 || sent.status >= 500) out.push(`${sent.name}: status ${sent.status} ${sent.text.slice(0, 160)}`);
  if (!sent.contentType.startsWith("application/json")) out.push(`${sent.name}: not JSON (${sent.contentType})`);
  let code: unknown;
  try {
    code = (JSON.parse(sent.text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    out.push(`${sent.name}: unparseable body`);
  }
  if (typeof code !== "string" || !(code in ERROR_STATUS)) out.push(`${sent.name}: code ${String(code)}`);
  else if (ERROR_STATUS[code as keyof typeof ERROR_STATUS] !== sent.status) out.push(`${sent.name}: ${code} with ${sent.status}`);
  if (sent.text.length > 4_000) out.push(`${sent.name}: a ${sent.text.length}-character answer echoes the input`);
  if (/\bat [\w.]+ \(|\.ts:\d+/.test(sent.text)) out.push(`${sent.name}: a stack trace`);
  return out;
}

/** A raw HTTP request whose body arrives in small pieces with pauses, or stops half-way. */
function dripped(fn: Fn, pieces: string[], pauseMs: number, hangUp: boolean): Promise<string> {
  const u = new URL(urlOf(fn));
  return new Promise((resolve) => {
    const socket = netConnect(Number(u.port), u.hostname);
    let received = "";
    socket.on("data", (d) => (received += d.toString()));
    socket.on("close", () => resolve(received));
    socket.on("error", () => resolve(received));
    const total = pieces.reduce((n, p) => n + Buffer.byteLength(p), 0) + (hangUp ? 1000 : 0);
    socket.write(
      `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${stack.serviceKey}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${total}\r\nConnection: close\r\n\r\n`,
    );
    let i = 0;
    const next = () => {
      if (i < pieces.length) {
        socket.write(pieces[i++]!);
        setTimeout(next, pauseMs);
      } else if (hangUp) socket.destroy();
    };
    next();
  });
}

describe("hostile input against all three functions", () => {
  it("several hundred distinct requests: each a 4xx JSON error with a code from the error table", async () => {
    const all = cases();
    expect(new Set(all.map((c) => c.name)).size).toBe(all.length);
    expect(all.length).toBeGreaterThanOrEqual(300);
    const wrong: string[] = [];
    for (let i = 0; i < all.length; i += 8) {
      const batch = await Promise.all(all.slice(i, i + 8).map(send));
      for (const sent of batch) wrong.push(...problems(sent));
    }
    expect(wrong).toEqual([]);
  }, 300_000);

  it("slow-drip bodies are read to the end and answered; clients that hang up mid-body cost no 5xx", async () => {
    const body = JSON.stringify({ model: "gemma-3-27b", prompt: "dripped", unknown_field: true });
    const pieces = body.match(/.{1,8}/g)!;
    const dripAnswers = await Promise.all(FUNCTIONS.map((fn) => dripped(fn, pieces, 20, false)));
    for (const raw of dripAnswers) expect(raw).toMatch(/^HTTP\/1\.1 4\d\d /);
    await Promise.all(FUNCTIONS.flatMap((fn) => [dripped(fn, pieces.slice(0, 5), 20, true), dripped(fn, ["{"], 0, true)]));
    // The functions noted nothing unexpected and still serve.
    expect(stack.logs.filter((l) => /internal_error|unexpected/i.test(l))).toEqual([]);
    const res = await fetch(urlOf("llm-invoke"), {
      method: "POST",
      headers: { ...serviceAuth(), ...JSON_CT },
      body: JSON.stringify({ model: "gemma-3-27b", prompt: "still here" }),
    });
    expect(res.status).toBe(200);
  }, 60_000);

  it("no service key, client secret, token or Google key in any answer, log line or table row", async () => {
    const secrets = [stack.serviceKey, clientSecret, validToken, "sim-key-a1"];
    const leaks: string[] = [];
    for (const a of answers) for (const s of secrets) if (a.text.includes(s)) leaks.push(`answer to ${a.name}`);
    for (const line of stack.logs) for (const s of secrets) if (line.includes(s)) leaks.push(`log: ${line.slice(0, 80)}`);
    for (const { table, text } of await allRowsAsText(db.sql)) {
      for (const s of secrets) if (text.includes(s)) leaks.push(`table ${table}`);
    }
    expect(answers.length).toBeGreaterThanOrEqual(300);
    expect(leaks).toEqual([]);
  });

  it("each function printed one JSON line per request, naming the refusal's code", () => {
    const lines = stack.logs.flatMap((l) => {
      const i = l.indexOf('{"function":');
      return i < 0 ? [] : [JSON.parse(l.slice(i)) as { function: string; outcome: string; status: number }];
    });
    for (const fn of FUNCTIONS) {
      const mine = lines.filter((l) => l.function === fn);
      const sent = answers.filter((a) => a.name.startsWith(`${fn}: `)).length;
      expect(mine.length).toBeGreaterThanOrEqual(sent);
      for (const l of mine) if (l.outcome !== "ok") expect(ERROR_STATUS[l.outcome as keyof typeof ERROR_STATUS]).toBe(l.status);
    }
  });
});
