// README's two commands from a checkout inside a private (0700) directory, as most containers and
// cloud machines have it: root's home is 0700, and so is every `mktemp -d`. As root the database runs
// as the `postgres` user, which cannot enter such a directory; both commands must still start, and
// report the same PostgreSQL major version.
//
// The checkout is the project's files as a fresh clone has them (tracked files, no .data), with
// node_modules hard-linked from this one: the same files `npm ci` would put there, in a second.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";
import { freePort } from "../../shared/free-port.ts";

let privateDir: string;
let checkout: string;
let serverHome: string;
const asRoot = userInfo().uid === 0;

beforeAll(() => {
  privateDir = mkdtempSync(path.join(tmpdir(), "eve-private-"));
  expect(statSync(privateDir).mode & 0o777).toBe(0o700);
  checkout = path.join(privateDir, "eve-gateway");
  mkdirSync(checkout);
  const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: repoRoot, encoding: "utf8" });
  expect(files.status).toBe(0);
  for (const file of files.stdout.split("\0").filter(Boolean)) {
    const from = path.join(repoRoot, file);
    try {
      statSync(from);
    } catch {
      continue; // deleted in the working tree, not yet in git
    }
    cpSync(from, path.join(checkout, file), { recursive: true });
  }
  let linked = spawnSync("cp", ["-al", path.join(repoRoot, "node_modules"), checkout]);
  if (linked.status !== 0) linked = spawnSync("cp", ["-a", path.join(repoRoot, "node_modules"), checkout]);
  expect(linked.status, String(linked.stderr)).toBe(0);
  // As root the servers' files go under SERVER_HOME: this run's own, so nothing of the machine's is touched.
  serverHome = mkdtempSync(path.join(tmpdir(), "eve-server-home-"));
  chmodSync(serverHome, 0o755);
});

afterAll(() => {
  rmSync(privateDir, { recursive: true, force: true });
  rmSync(serverHome, { recursive: true, force: true });
});

/** The environment of a new shell: nothing of this test run's database or ports. */
function freshEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, EVE_SERVER_HOME: serverHome, ...extra };
  for (const name of Object.keys(env)) {
    if (name.startsWith("EVE_TEST_") || name === "DATABASE_URL" || name === "EVE_DB_DIR" || name === "GOOGLE_API_KEY") delete env[name];
  }
  return env;
}

function collect(child: ChildProcess): { text: () => string } {
  let text = "";
  child.stdout?.on("data", (d) => (text += d));
  child.stderr?.on("data", (d) => (text += d));
  return { text: () => text };
}

const major = (output: string, pattern: RegExp) => pattern.exec(output)?.[1];

let startMajor: string | undefined;

it("npm start comes up and answers README's curl", async () => {
  const child = spawn("npx", ["tsx", "scripts/start.ts"], {
    cwd: checkout,
    env: freshEnv({ FUNCTIONS_PORT: "0", GOOGLE_SIM_PORT: "0", EVE_DB_PORT: String(await freePort()) }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = collect(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let waiting = true;
  try {
    const ready = await Promise.race([
      (async () => {
        while (waiting && !out.text().includes("Ctrl-C stops everything.")) await new Promise((r) => setTimeout(r, 200));
        return waiting;
      })(),
      exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(false), 150_000)),
    ]);
    expect(ready, `npm start did not come up:\n${out.text().slice(-3000)}`).toBe(true);
    expect(out.text()).not.toMatch(/\bnull\b.*initdb|initdb failed/);
    startMajor = major(out.text(), /\(PostgreSQL (\d+)\.\d+\)/);
    expect(startMajor, "the banner names the database's version").toBe("17");
    if (asRoot) expect(out.text()).toContain(`data            ${path.join(serverHome, "checkouts")}`);
    else expect(out.text()).toContain(`data            ${path.join(checkout, ".data", "postgres")}`);

    const url = /llm-invoke\s+(http:\/\/127\.0\.0\.1:\d+\/functions\/v1\/llm-invoke)/.exec(out.text())?.[1];
    expect(url).toBeDefined();
    const res = await fetch(url!, {
      method: "POST",
      headers: { authorization: "Bearer sb_secret_eve_local_dev_only", "content-type": "application/json" },
      body: JSON.stringify({ model: "gemma-3-27b", system: "Отвечай кратко.", prompt: "Что такое EVE?" }),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.model).toBe("gemma-3-27b-it");
    expect(body.text.length).toBeGreaterThan(0);
  } finally {
    waiting = false;
    child.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}, 200_000);

it("npm test starts its database and runs a suite there, on the same PostgreSQL major", async () => {
  const child = spawn("npx", ["tsx", "scripts/test.ts", "tests/db/rpc-signatures.test.ts"], {
    cwd: checkout,
    env: freshEnv({}),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = collect(child);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  expect(code, out.text().slice(-3000)).toBe(0);
  expect(out.text()).toMatch(/^tests: [1-9]\d* passed, 0 failed, 0 skipped$/m);
  const testMajor = major(out.text(), /^PostgreSQL (\d+)\.\d+: embedded engine/m);
  expect(testMajor).toBe("17");
  if (startMajor !== undefined) expect(testMajor).toBe(startMajor);
}, 200_000);
