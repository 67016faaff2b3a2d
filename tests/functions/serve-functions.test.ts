// scripts/serve-functions.ts over real HTTP with real deno processes: throwaway functions in a temp
// folder for the proxy's behaviour, and the real llm-invoke for the repository's Deno layout.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  discoverFunctions,
  type FunctionsServer,
  parseDotenv,
  RESTART_BASE_MS,
  RESTART_MAX_MS,
  restartDelayMs,
  startFunctionsServer,
} from "../../scripts/serve-functions.ts";

const ECHO = `
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")) }, async (req) => {
  const url = new URL(req.url);
  const body = await req.text();
  return Response.json({
    method: req.method,
    path: url.pathname + url.search,
    header: req.headers.get("x-test"),
    bodyLength: body.length,
    bodyHead: body.slice(0, 20),
    greeting: Deno.env.get("GREETING") ?? null,
    fromDotenv: Deno.env.get("FROM_DOTENV") ?? null,
    portAsked: Deno.env.get("PORT") ?? null,
  }, { status: req.method === "GET" ? 200 : 201, headers: { "x-from": "echo" } });
});
`;

function makeFunctionsDir(functions: Record<string, string>, dotenv?: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "serve-functions-"));
  for (const [name, source] of Object.entries(functions)) {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, "index.ts"), source);
    writeFileSync(path.join(dir, name, "deno.json"), "{}\n");
  }
  if (dotenv !== undefined) writeFileSync(path.join(dir, ".env"), dotenv);
  return dir;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("serve-functions with throwaway functions", () => {
  let dir: string;
  let server: FunctionsServer;
  const lines: string[] = [];

  beforeAll(async () => {
    dir = makeFunctionsDir(
      { echo: ECHO, "second-fn": ECHO, _shared: "throw new Error('must not run');" },
      "FROM_DOTENV=yes\nGREETING=from-dotenv\n",
    );
    mkdirSync(path.join(dir, ".hidden"));
    server = await startFunctionsServer({
      port: 0,
      functionsDir: dir,
      env: { GREETING: "hello" },
      log: (line) => lines.push(line),
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves each function folder, not _shared or dot-folders", () => {
    expect(Object.keys(server.functions).sort()).toEqual(["echo", "second-fn"]);
    expect(discoverFunctions(dir)).toEqual(["echo", "second-fn"]);
  });

  it("routes /functions/v1/<name>/... to the function with path, query, headers, status and env", async () => {
    const res = await fetch(`${server.url}/functions/v1/echo/sub/path?q=1`, {
      method: "POST",
      headers: { "x-test": "yes", "content-type": "text/plain" },
      body: "hello body",
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("x-from")).toBe("echo");
    expect(await res.json()).toEqual({
      method: "POST",
      path: "/echo/sub/path?q=1",
      header: "yes",
      bodyLength: 10,
      bodyHead: "hello body",
      greeting: "hello", // options.env wins over .env
      fromDotenv: "yes",
      portAsked: "0",
    });
    const second = await fetch(`${server.url}/functions/v1/second-fn`);
    expect((await second.json()).path).toBe("/second-fn");
  });

  it("lets the kernel pick each function's port as it binds, and routes to the port the function names", async () => {
    // A port picked before the function binds it could be taken by another process meanwhile:
    // the function is asked for port 0 (see the test above) and says which port it got.
    const port = server.functions.echo!.port;
    expect(lines).toContain(`[echo] Listening on http://127.0.0.1:${port}/`);
    const direct = await fetch(`http://127.0.0.1:${port}/echo`);
    expect((await direct.json()).path).toBe("/echo");
  });

  it("streams large bodies both ways", async () => {
    const big = "x".repeat(5 * 1024 * 1024);
    const res = await fetch(`${server.url}/functions/v1/echo`, { method: "POST", body: big });
    expect((await res.json()).bodyLength).toBe(big.length);
  });

  it("serves concurrent requests", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => fetch(`${server.url}/functions/v1/echo?i=${i}`).then((r) => r.json())),
    );
    expect(results.map((r) => r.path)).toEqual(Array.from({ length: 50 }, (_, i) => `/echo?i=${i}`));
  });

  it.each([
    ["/functions/v1/nope", "Function not found: nope"],
    ["/functions/v1/_shared", "Function not found: _shared"],
    ["/elsewhere", "Not found."],
  ])("answers 404 JSON for %s", async (p, message) => {
    const res = await fetch(`${server.url}${p}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "not_found", message } });
  });

  it("prefixes function output with its name", () => {
    expect(lines.some((l) => l.startsWith("functions served at"))).toBe(true);
  });

  it("starts a function again when its process dies, with a log line, and close() stops every process", async () => {
    const pid = server.functions["second-fn"]!.pid!;
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    // Served again by a new process (bounded: the first restart waits RESTART_BASE_MS).
    let res = await fetch(`${server.url}/functions/v1/second-fn`);
    for (let i = 0; i < 200 && res.status !== 200; i++) {
      expect(res.status).toBe(503); // meanwhile: 503 JSON, never a hang or a 502
      expect((await res.json()).error.code).toBe("unavailable");
      await new Promise((r) => setTimeout(r, 50));
      res = await fetch(`${server.url}/functions/v1/second-fn`);
    }
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const newPid = server.functions["second-fn"]!.pid!;
    expect(newPid).not.toBe(pid);
    expect(alive(newPid)).toBe(true);
    expect(lines.some((l) => l.startsWith("[second-fn] exited (SIGKILL)"))).toBe(true);
    expect(lines.some((l) => l.startsWith(`[second-fn] restarting in ${RESTART_BASE_MS} ms`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`[second-fn] running again (pid ${newPid})`))).toBe(true);

    const echoPid = server.functions.echo!.pid;
    expect(alive(echoPid)).toBe(true);
    await server.close();
    expect(alive(echoPid)).toBe(false);
    expect(alive(newPid)).toBe(false);
  });
});

describe("restartDelayMs", () => {
  it("doubles for each exit in a row from RESTART_BASE_MS and stops at RESTART_MAX_MS", () => {
    const delays = Array.from({ length: 10 }, (_, i) => restartDelayMs(i + 1));
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 10_000]);
    expect(RESTART_BASE_MS).toBe(250);
    expect(RESTART_MAX_MS).toBe(10_000);
  });
});

describe("serve-functions startup failures", () => {
  it("rejects with the function's output when it dies at startup, leaving nothing running", async () => {
    const dir = makeFunctionsDir({ broken: "throw new Error('boom at import');" });
    try {
      await expect(startFunctionsServer({ port: 0, functionsDir: dir, log: () => {} }))
        .rejects.toThrow(/broken exited during startup[\s\S]*boom at import/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("serve-functions with keepGoing", () => {
  it("serves the healthy functions when another fails to start, and answers 503 JSON for the broken one", async () => {
    const dir = makeFunctionsDir({ broken: "throw new Error('boom at import');", echo: ECHO });
    const lines: string[] = [];
    let server: FunctionsServer | undefined;
    try {
      server = await startFunctionsServer({ port: 0, functionsDir: dir, keepGoing: true, log: (l) => lines.push(l) });
      expect(Object.keys(server.functions)).toEqual(["echo"]);
      expect(server.failed.broken).toMatch(/broken exited during startup[\s\S]*boom at import/);
      expect((await fetch(`${server.url}/functions/v1/echo`)).status).toBe(200);
      const res = await fetch(`${server.url}/functions/v1/broken`, { method: "POST", body: "{}" });
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe("unavailable");
      expect(lines.some((l) => l.includes("[broken] not served"))).toBe(true);
    } finally {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("parseDotenv", () => {
  it("reads KEY=VALUE lines with comments, quotes and export", () => {
    expect(parseDotenv("# c\nA=1\nexport B = two # note\nC=\"x # y\"\nD='q'\nbad line\n")).toEqual({
      A: "1",
      B: "two",
      C: "x # y",
      D: "q",
    });
  });
});

describe("serve-functions with the real llm-invoke", () => {
  const SERVICE_KEY = "sb_secret_serve_functions_test";
  let server: FunctionsServer;

  beforeAll(async () => {
    server = await startFunctionsServer({
      port: 0,
      only: ["llm-invoke"],
      env: { SUPABASE_SERVICE_ROLE_KEY: SERVICE_KEY, SUPABASE_SECRET_KEYS: "" },
      log: () => {},
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it("runs under plain Deno from the repository layout and checks callers", async () => {
    const url = `${server.url}/functions/v1/llm-invoke`;
    const anonymous = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json()).error.code).toBe("unauthorized");

    const broken = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${SERVICE_KEY}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(broken.status).toBe(400);
    const body = await broken.json();
    expect(body.error.code).toBe("invalid_json");
    expect(JSON.stringify(body)).not.toContain(SERVICE_KEY);
  });
});
