// A second `npm start` while the ports are taken (a gateway already running) stops at once with one
// clear line, before it touches any database, instead of dying half-way with EADDRINUSE.
import { execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";

const run = promisify(execFile);
let squatter: net.Server;
let port: number;

beforeAll(async () => {
  squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
  port = (squatter.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => squatter.close(resolve));
});

it("exits 1 naming the taken port, with no stack trace", async () => {
  const outcome = await run("npx", ["tsx", "scripts/start.ts"], {
    cwd: repoRoot,
    // A database URL nobody serves: the run must stop before it would try it.
    env: { ...process.env, FUNCTIONS_PORT: String(port), GOOGLE_SIM_PORT: "0", DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
    timeout: 60_000,
  }).then(() => ({ code: 0, stderr: "" }), (e: { code: number; stderr: string }) => e);
  expect(outcome.code).toBe(1);
  expect(outcome.stderr).toContain(`port ${port} is already in use (FUNCTIONS_PORT)`);
  expect(outcome.stderr).not.toMatch(/EADDRINUSE|\n\s+at /);
});
