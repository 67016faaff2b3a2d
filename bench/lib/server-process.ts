// A server the benchmark starts as a child process (a Deno entry, Portkey's Node server): its last
// output lines kept (and passed on as they come), ready once its port answers any HTTP request,
// stopped with SIGTERM (SIGKILL after a grace period).
//
// A Deno entry is started the way the local functions server starts a function
// (scripts/serve-functions.ts): the same Deno binary, permissions and flags, the function's deno.json,
// the repository root as working directory, and the same environment (the parent's, then
// supabase/functions/.env, then `env`, plus PORT). The port is also given as DENO_SERVE_ADDRESS, for
// entries whose Deno.serve takes no port (the Edge Runtime's way).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { DEFAULT_FUNCTIONS_DIR, DENO_FLAGS, DENO_PERMISSIONS, parseDotenv } from "../../scripts/serve-functions.ts";
import { denoBin } from "../../shared/deno-bin.ts";
import { freePort } from "../../shared/free-port.ts";
import { sleep } from "./clock.ts";

const REPO_ROOT = path.resolve(DEFAULT_FUNCTIONS_DIR, "..", "..");

export interface ServerProcess {
  url: string;
  pid: number;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and returns its last output lines. */
  close(): Promise<string[]>;
}

export async function startServerProcess(opts: {
  /** What the process is, for an error. */
  name: string;
  command: string;
  args: string[];
  /** The port it listens on (given to it in `args` or `env`). */
  port: number;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each output line, as it comes. */
  log?: (line: string) => void;
}): Promise<ServerProcess> {
  const child: ChildProcess = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (line.trim() === "") continue;
      output.push(line);
      if (output.length > 200) output.shift();
      opts.log?.(line);
    }
  };
  child.stdout?.on("data", forward);
  child.stderr?.on("data", forward);
  const close = async () => {
    await stopChild(child, 5000);
    return [...output];
  };

  const deadline = Date.now() + 30_000;
  while (!(await answers(opts.port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`${opts.name} did not start:\n${output.slice(-20).join("\n")}`);
    }
    await sleep(100);
  }
  return { url: `http://127.0.0.1:${opts.port}`, pid: child.pid!, close };
}

/** A Deno entry script, resolving its imports by `config` (a deno.json), served on a free port. */
export async function startDenoServer(opts: {
  script: string;
  config: string;
  env: Record<string, string>;
  /** Each output line, as it comes. */
  log?: (line: string) => void;
}): Promise<ServerProcess> {
  const port = await freePort();
  const envFile = path.join(DEFAULT_FUNCTIONS_DIR, ".env");
  const env = {
    NO_COLOR: "1",
    ...process.env,
    ...(existsSync(envFile) ? parseDotenv(readFileSync(envFile, "utf8")) : {}),
    ...opts.env,
    PORT: String(port),
    DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
  };
  const args = ["run", ...DENO_PERMISSIONS, ...DENO_FLAGS, "--no-prompt", "--config", opts.config, opts.script];
  return startServerProcess({ name: path.basename(opts.script), command: denoBin(), args, port, env, cwd: REPO_ROOT, log: opts.log });
}

/** Ready = answers any HTTP request. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/", method: "GET", timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Stops a child process: SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it has. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  if (!(await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]))) {
    child.kill("SIGKILL");
    await exited;
  }
}
