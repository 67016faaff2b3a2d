// The local stack around llm-invoke: `npm start` (scripts/start.ts) prints where the simulators are
// and a curl that works as pasted, answers a Claude model from the Anthropic simulator with no real key, and stops cleanly on SIGTERM; a broken function next to llm-invoke
// does not stop it; a database that is down or not configured gives 503 JSON, never a 500 or a stack trace.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const FUNCTIONS = path.join(ROOT, "supabase", "functions");
let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("llm_invoke_stack");
});

afterAll(async () => {
  await db?.drop();
});

async function post(stack: LocalStack, name = "llm-invoke", body: unknown = { model: "gemma-3-27b", prompt: "hi" }) {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/${name}`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.serviceKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe("npm start", () => {
  it("prints the URL, the local service key, the database and a curl that works as pasted; SIGTERM stops it", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
      cwd: ROOT,
      env: {
        ...process.env, DATABASE_URL: db.url, FUNCTIONS_PORT: "0", GOOGLE_SIM_PORT: "0", GOOGLE_API_KEY: "",
        OPENAI_SIM_PORT: "0", OPENAI_API_KEY: "", ANTHROPIC_SIM_PORT: "0", ANTHROPIC_API_KEY: "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      for (let i = 0; i < 300 && !out.includes("Ctrl-C stops everything"); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out, err).toContain("Ctrl-C stops everything");
      expect(out).toMatch(/llm-invoke\s+http:\/\/127\.0\.0\.1:\d+\/functions\/v1\/llm-invoke/);
      expect(out).toContain("sb_secret_eve_local_dev_only");
      expect(out).toMatch(/google\s+offline simulator at http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/openai\s+offline simulator at http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/anthropic\s+offline simulator at http:\/\/127\.0\.0\.1:\d+/);
      const curl = out.slice(out.indexOf("curl -sS"), out.indexOf("\n\nCtrl-C"));
      const run = spawnSync("sh", ["-c", curl], { encoding: "utf8", timeout: 20_000 });
      expect(run.status, run.stderr).toBe(0);
      const answer = JSON.parse(run.stdout);
      expect(answer).toMatchObject({ model: "gemma-3-27b-it", key_alias: "default", attempts: 1 });
      expect(answer.text).toMatch(/^sim\(gemma-3-27b-it\): /);
      // A Claude model too: the local key row hands the simulator's key to the seeded Claude rows.
      const invokeUrl = /llm-invoke\s+(\S+)/.exec(out)![1]!;
      const claude = await fetch(invokeUrl, {
        method: "POST",
        headers: { authorization: "Bearer sb_secret_eve_local_dev_only", "content-type": "application/json" },
        body: JSON.stringify({ model: "claude-haiku-4-5", prompt: "hi" }),
      });
      expect(await claude.json()).toMatchObject({ model: "claude-haiku-4-5-20251001", key_alias: "anthropic-local", text: "sim(claude-haiku-4-5-20251001): hi" });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(err).toContain("SIGTERM: stopping");
  }, 60_000);
});

describe("a broken function next to llm-invoke", () => {
  let dir: string;
  let stack: LocalStack | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "eve-functions-"));
    // A copy of llm-invoke (not a symlink: Deno writes a deno.lock next to a config outside the
    // workspace, and that must land in the temporary folder, not in the repository).
    symlinkSync(path.join(FUNCTIONS, "_shared"), path.join(dir, "_shared"));
    cpSync(path.join(FUNCTIONS, "llm-invoke"), path.join(dir, "llm-invoke"), {
      recursive: true,
      filter: (source) => !source.endsWith(".test.ts"),
    });
    mkdirSync(path.join(dir, "half-written"));
    writeFileSync(path.join(dir, "half-written", "index.ts"), 'import { nothing } from "./missing.ts";\nconsole.log(nothing);\n');
    stack = await startLocalStack({ functionsPort: 0, databaseUrl: db.url, functionsDir: dir, google: "simulator", log: () => {} });
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("leaves no lock file in the repository's function folders", () => {
    expect(existsSync(path.join(FUNCTIONS, "llm-invoke", "deno.lock"))).toBe(false);
  });

  it("does not stop llm-invoke from serving; its own path answers 503 JSON", async () => {
    expect(Object.keys(stack!.functions.failed)).toEqual(["half-written"]);
    expect((await post(stack!)).status).toBe(200);
    const broken = await post(stack!, "half-written");
    expect(broken.status).toBe(503);
    expect(JSON.parse(broken.text).error.code).toBe("unavailable");
  });
});

describe("the database", () => {
  it("down: 503 unavailable JSON with Retry-After, nothing about the connection in the answer", async () => {
    const stack = await startLocalStack({
      functionsPort: 0,
      databaseUrl: "postgres://postgres:hunter2-db-password@127.0.0.1:1/postgres",
      only: ["llm-invoke"],
      log: () => {},
    });
    try {
      const res = await post(stack);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text).error).toMatchObject({ code: "unavailable" });
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1); // the rest of the "database down" state
      expect(res.text).not.toMatch(/hunter2|127\.0\.0\.1|ECONNREFUSED|postgres:\/\//);
      // And it still answers the next request (no crashed worker).
      expect((await post(stack)).status).toBe(503);
    } finally {
      await stack.close();
    }
  }, 60_000);

  it("not configured: 503 unavailable, the function still starts and checks callers", async () => {
    const stack = await startLocalStack({
      functionsPort: 0,
      databaseUrl: db.url,
      env: { SUPABASE_DB_URL: "" },
      only: ["llm-invoke"],
      log: () => {},
    });
    try {
      expect((await post(stack)).status).toBe(503);
      const anonymous = await fetch(`${stack.functionsUrl}/functions/v1/llm-invoke`, { method: "POST" });
      expect(anonymous.status).toBe(401);
    } finally {
      await stack.close();
    }
  }, 60_000);
});
