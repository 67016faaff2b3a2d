import { describe, expect, it } from "vitest";
import { DatabaseUnavailable } from "./db.ts";
import { envelope, type ScopedHandler } from "./envelope.ts";
import { ERROR_STATUS, GatewayError, rateLimited } from "./errors.ts";

function build(handle: ScopedHandler) {
  const lines: string[] = [];
  const notes: string[] = [];
  let t = 0;
  const handler = envelope({
    name: "issue-kaggle-token",
    headers: { "cache-control": "no-store" },
    newRequestId: () => "r-1",
    now: () => (t += 5),
    logLine: (l) => lines.push(l),
    note: (text, id) => notes.push(`${id} ${text}`),
  }, handle);
  return { handler, lines, notes };
}

const post = () => new Request("http://x/", { method: "POST", body: "{}" });

describe("envelope", () => {
  it("answers a success with request_id and its headers, and prints one JSON line", async () => {
    const { handler, lines } = build((_req, scope) => {
      scope.annotate({ client: "nb" });
      return Promise.resolve({ body: { token: "t" }, headers: { "x-extra": "1" } });
    });
    const res = await handler(post());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ token: "t", request_id: "r-1" });
    expect(res.headers.get("x-request-id")).toBe("r-1");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-extra")).toBe("1");
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        function: "issue-kaggle-token",
        request_id: "r-1",
        method: "POST",
        client: "nb",
        outcome: "ok",
        status: 200,
        latency_ms: 5,
      },
    ]);
  });

  it("refuses other methods with 405 and Allow: POST, before the handler runs", async () => {
    let ran = false;
    const { handler, lines } = build(() => {
      ran = true;
      return Promise.resolve({ body: {} });
    });
    const res = await handler(new Request("http://x/"));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(ran).toBe(false);
    expect(JSON.parse(lines[0]!)).toMatchObject({ method: "GET", outcome: "method_not_allowed", status: 405 });
  });

  it("allows another method where the function says so, and names the allowed ones in a 405", async () => {
    const handler = envelope({
      name: "llm-invoke",
      newRequestId: () => "r-1",
      logLine: () => {},
      methods: (req) => (new URL(req.url).pathname.endsWith("/v1/quota") ? ["GET"] : ["POST"]),
    }, (req) => Promise.resolve({ body: { method: req.method } }));
    const get = await handler(new Request("http://x/llm-invoke/v1/quota"));
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ method: "GET", request_id: "r-1" });
    const post = await handler(new Request("http://x/llm-invoke/v1/quota", { method: "POST", body: "{}" }));
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    const other = await handler(new Request("http://x/llm-invoke/v1/other"));
    expect(other.status).toBe(405);
    expect(other.headers.get("allow")).toBe("POST");
    expect((await other.json()).error.message).toBe("Use POST with a JSON body.");
  });

  it("puts the headers a handler set for its answer on a success and on an error alike", async () => {
    const quota = { "x-ratelimit-remaining-requests": "0" };
    const ok = build((_req, scope) => {
      scope.setHeaders(quota);
      return Promise.resolve({ body: {} });
    });
    expect((await ok.handler(post())).headers.get("x-ratelimit-remaining-requests")).toBe("0");
    const refused = build((_req, scope) => {
      scope.setHeaders({ "x-ratelimit-remaining-requests": "2" });
      scope.setHeaders(quota); // set again: replaced
      return Promise.reject(rateLimited("rpm", 1000));
    });
    const res = await refused.handler(post());
    expect(res.status).toBe(429);
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(res.headers.get("retry-after")).toBe("1");
  });

  it("answers a GatewayError with its code, status, extra fields and headers; the log names the limit", async () => {
    const { handler, lines, notes } = build(() => Promise.reject(rateLimited("mint_rate", 4200)));
    const res = await handler(post());
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("5");
    const body = await res.json();
    expect(body).toMatchObject({ request_id: "r-1", limit: "mint_rate", retry_after_ms: 4200 });
    expect(body.error.code).toBe("rate_limited");
    expect(JSON.parse(lines[0]!)).toMatchObject({ outcome: "rate_limited", limit: "mint_rate", status: 429 });
    expect(notes).toEqual([]);
  });

  it("answers a database outage with 503 and the database's Retry-After, a driver's connection error too", async () => {
    const down = build(() => Promise.reject(new DatabaseUnavailable("mint: down", 2_400, "down")));
    const res = await down.handler(post());
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("3");
    expect((await res.json()).error.code).toBe("unavailable");
    const refused = Object.assign(new Error("connect ECONNREFUSED postgres://u:pw@db"), { code: "ECONNREFUSED" });
    const driver = build(() => Promise.reject(refused));
    const res2 = await driver.handler(post());
    expect(res2.status).toBe(503);
    expect(res2.headers.get("retry-after")).toBe("5");
    expect(driver.notes.join("\n")).toContain("database unavailable");
    expect(driver.notes.join("\n")).not.toContain(":pw@");
  });

  it("answers anything else with 500 internal_error, leaks nothing and notes it sanitized", async () => {
    const secret = "AIzaSyLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAK00";
    const { handler, notes, lines } = build(() => Promise.reject(new Error(`boom ${secret}`)));
    const res = await handler(post());
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(JSON.parse(text).error.code).toBe("internal_error");
    expect(text).not.toContain("boom");
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^r-1 unexpected error: .*boom/);
    expect(notes[0]).not.toContain(secret);
    expect(JSON.parse(lines[0]!).status).toBe(ERROR_STATUS.internal_error);
  });

  it("uses the caller's own request id once the handler names it", async () => {
    const { handler, lines } = build((_req, scope) => {
      scope.useRequestId("caller-42");
      return Promise.reject(new GatewayError("unknown_model", "Unknown model."));
    });
    const res = await handler(post());
    expect(res.headers.get("x-request-id")).toBe("caller-42");
    expect((await res.json()).request_id).toBe("caller-42");
    expect(JSON.parse(lines[0]!).request_id).toBe("caller-42");
  });
});
