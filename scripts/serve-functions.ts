// Local stand-in for `supabase functions serve`: every function folder under supabase/functions
// (not _shared, not dot-folders) runs in its own `deno run` with its own deno.json, and a small
// reverse proxy serves them at http://127.0.0.1:54321/functions/v1/<name>, the same paths as the
// Supabase CLI, so callers and tests use one URL scheme locally and in production.
//
//   npx tsx scripts/serve-functions.ts          # CLI: port from FUNCTIONS_PORT (default 54321)
//   const s = await startFunctionsServer({ port: 0, env: { ... } }); ...; await s.close();
//
// Each function gets the parent's environment, then supabase/functions/.env (if present), then
// `env`, plus PORT=0: the kernel picks its port when it binds, and the function's own "listening on
// http://host:port" line (Deno.serve's, or ours in _shared/serve.ts) says which. A port picked here
// and handed over could be taken by another process before the function binds it, and whatever
// listens there would then answer in the function's name.
//
// A served function whose process exits (a crash, kill -9, an out-of-memory kill) is started again,
// as Supabase's Edge Runtime starts a new worker: the exit and the restart are
// logged, and a function that keeps dying waits longer before each new start (restartDelayMs), so a
// broken one costs little. Meanwhile its path answers 503 `unavailable` ("starting").
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { denoBin as resolveDenoBin } from "../shared/deno-bin.ts";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_FUNCTIONS_DIR = path.join(REPO_ROOT, "supabase", "functions");
export const DEFAULT_FUNCTIONS_PORT = 54321;
// What a function may do locally. Edge Runtime grants more; keep this list what our code needs.
export const DENO_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read"];
/**
 * request.signal aborts only when the client goes away, as on Supabase's Edge Runtime, not also after
 * every successful response (Deno's legacy behaviour, which also prints a deprecation warning on the
 * first request of a function that hands the signal on, as llm-invoke does to cancel Google's call).
 */
export const DENO_FLAGS = ["--unstable-no-legacy-abort"];
const FUNCTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export interface FunctionsServerOptions {
  /** Proxy port; 0 picks a free one. Default: FUNCTIONS_PORT or 54321. */
  port?: number;
  host?: string;
  /** Extra environment for every function (wins over the parent's and the .env file). */
  env?: Record<string, string | undefined>;
  /** Folder holding one folder per function. Default: supabase/functions of this repository. */
  functionsDir?: string;
  /** Only these functions (default: all found). */
  only?: string[];
  /** How long each function may take to answer its first request. */
  readyTimeoutMs?: number;
  /**
   * Keep serving when some functions fail to start (a broken or half-written function must not
   * take the others down): each failure is logged, listed in `failed`, and its path answers 503.
   * Default false: any failure rejects and stops everything.
   */
  keepGoing?: boolean;
  /** Where function output and server notes go, one line at a time. */
  log?: (line: string) => void;
  denoBin?: string;
}

export interface FunctionsServer {
  /** Base URL, like SUPABASE_URL: functions are at `${url}/functions/v1/<name>`. */
  url: string;
  port: number;
  /** The served functions: the port and pid of each one's current process (both change on a restart). */
  functions: Record<string, { port: number | undefined; pid: number | undefined }>;
  /** Functions that failed to start (only with keepGoing), with the reason and their last output. */
  failed: Record<string, string>;
  close(): Promise<void>;
}

type State = "starting" | "ready" | "dead";

interface RunningFunction {
  name: string;
  /** The port its process said it listens on; undefined until it says so. */
  port: number | undefined;
  child: ChildProcess;
  state: State;
  exited: Promise<void>;
  output: string[];
  /** Stopped on purpose (close, or it never started): not restarted. */
  stopped: boolean;
  /** When it last became ready (epoch ms). */
  readyAt?: number;
  /** Exits in a row without a stable run between them (see restartDelayMs). */
  crashes: number;
}

/** Restarts: the first after RESTART_BASE_MS, doubling for each exit in a row, at most RESTART_MAX_MS. */
export const RESTART_BASE_MS = 250;
export const RESTART_MAX_MS = 10_000;
/** A process that served this long before it exited starts the count of exits in a row again. */
export const STABLE_RUN_MS = 30_000;

/** How long to wait before starting a function again after its `crashes`-th exit in a row (1-based). */
export function restartDelayMs(crashes: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, crashes - 1));
}

/** Function folders: a name Supabase accepts, an index.ts, not `_shared` or `.anything`. */
export function discoverFunctions(functionsDir: string): string[] {
  if (!existsSync(functionsDir)) return [];
  return readdirSync(functionsDir)
    .filter((name) => FUNCTION_NAME.test(name) && name !== "tests")
    .filter((name) => {
      const dir = path.join(functionsDir, name);
      return statSync(dir).isDirectory() && existsSync(path.join(dir, "index.ts"));
    })
    .sort();
}

/** Minimal dotenv: KEY=VALUE lines, # comments, optional surrounding quotes, `export ` prefix. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (m === null) continue;
    let value = m[2] ?? "";
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted !== null) value = quoted[2] ?? "";
    else value = value.replace(/\s+#.*$/, "");
    out[m[1]!] = value;
  }
  return out;
}

export async function startFunctionsServer(options: FunctionsServerOptions = {}): Promise<FunctionsServer> {
  const functionsDir = options.functionsDir ?? DEFAULT_FUNCTIONS_DIR;
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? Number(process.env.FUNCTIONS_PORT ?? DEFAULT_FUNCTIONS_PORT);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const denoBin = options.denoBin ?? resolveDenoBin();
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;

  let names = discoverFunctions(functionsDir);
  if (options.only !== undefined) names = names.filter((n) => options.only!.includes(n));

  const envFile = path.join(functionsDir, ".env");
  const baseEnv: Record<string, string | undefined> = {
    NO_COLOR: "1",
    ...process.env,
    ...(existsSync(envFile) ? parseDotenv(readFileSync(envFile, "utf8")) : {}),
    ...options.env,
  };

  const running = new Map<string, RunningFunction>();
  const failed: Record<string, string> = {};
  let closing = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = http.createServer((req, res) => route(req, res, running, agent));
  const killOnExit = () => {
    for (const fn of running.values()) fn.child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  const close = async () => {
    closing = true;
    process.removeListener("exit", killOnExit);
    await Promise.all([...running.values()].map(stopFunction));
    proxy.closeAllConnections();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    agent.destroy();
  };

  try {
    for (const name of names) running.set(name, spawnFunction(name, functionsDir, denoBin, baseEnv, log));
    await new Promise<void>((resolve, reject) => {
      proxy.once("error", reject);
      proxy.listen(port, host, () => resolve());
    });
    const results = await Promise.allSettled([...running.values()].map((fn) => waitReady(fn, host, readyTimeoutMs)));
    const fns = [...running.values()];
    results.forEach((result, i) => {
      if (result.status === "rejected") failed[fns[i]!.name] = String((result.reason as Error)?.message ?? result.reason);
    });
    const firstFailure = Object.values(failed)[0];
    if (firstFailure !== undefined && options.keepGoing !== true) throw new Error(firstFailure);
    for (const name of Object.keys(failed)) {
      const fn = running.get(name)!;
      log(`[${name}] not served: it failed to start (the other functions keep running)`);
      await stopFunction(fn);
    }
  } catch (error) {
    await close();
    throw error;
  }

  /** Starts `fn` again whenever its process exits, unless it was stopped on purpose. */
  const supervise = (fn: RunningFunction) => {
    void fn.exited.then(async () => {
      if (closing || fn.stopped) return;
      const stable = fn.readyAt !== undefined && Date.now() - fn.readyAt >= STABLE_RUN_MS;
      const crashes = stable ? 1 : fn.crashes + 1;
      const delay = restartDelayMs(crashes);
      log(`[${fn.name}] restarting in ${delay} ms (exit ${crashes} in a row)`);
      await sleep(delay);
      if (closing) return;
      const next = spawnFunction(fn.name, functionsDir, denoBin, baseEnv, log);
      next.crashes = crashes;
      running.set(fn.name, next);
      supervise(next);
      try {
        await waitReady(next, host, readyTimeoutMs);
        log(`[${fn.name}] running again (pid ${next.child.pid})`);
      } catch (error) {
        if (closing) return;
        log(`[${fn.name}] restart failed: ${String((error as Error)?.message ?? error).split("\n")[0]}`);
        // A process that never answered is ended; its exit schedules the next try.
        if (next.child.exitCode === null && next.child.signalCode === null) next.child.kill("SIGKILL");
      }
    });
  };

  const actualPort = (proxy.address() as net.AddressInfo).port;
  const url = `http://${host}:${actualPort}`;
  const served = names.filter((n) => !(n in failed));
  for (const name of served) supervise(running.get(name)!);
  log(`functions served at ${url}/functions/v1/{${served.join(",")}}`);
  const functions: FunctionsServer["functions"] = {};
  for (const name of served) {
    Object.defineProperty(functions, name, {
      enumerable: true,
      get: () => ({ port: running.get(name)!.port, pid: running.get(name)!.child.pid }),
    });
  }
  return { url, port: actualPort, functions, failed, close };
}

/** Deno.serve's default line ("Listening on http://127.0.0.1:PORT/") and ours ("<name> listening on …"). */
const LISTENING = /listening on https?:\/\/[^\s/]+:(\d+)/i;

function spawnFunction(
  name: string,
  functionsDir: string,
  denoBin: string,
  baseEnv: Record<string, string | undefined>,
  log: (line: string) => void,
): RunningFunction {
  const dir = path.join(functionsDir, name);
  const config = path.join(dir, "deno.json");
  const args = [
    "run",
    ...DENO_PERMISSIONS,
    ...DENO_FLAGS,
    "--no-prompt",
    ...(existsSync(config) ? ["--config", config] : []),
    path.join(dir, "index.ts"),
  ];
  // cwd = repository root: the Deno workspace there resolves npm: imports from node_modules.
  const child = spawn(denoBin, args, { cwd: REPO_ROOT, env: { ...baseEnv, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
  const fn: RunningFunction = {
    name,
    port: undefined,
    child,
    state: "starting",
    output: [],
    stopped: false,
    crashes: 0,
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
  };
  const onLine = (line: string) => {
    if (line.trim() === "") return;
    fn.output.push(line);
    if (fn.output.length > 50) fn.output.shift();
    log(`[${name}] ${line}`);
    const listening = fn.port === undefined ? LISTENING.exec(line) : null;
    if (listening !== null) fn.port = Number(listening[1]);
  };
  // A chunk can end mid-line: each stream keeps its unfinished line until the rest arrives.
  const forward = (stream: NodeJS.ReadableStream | null) => {
    let rest = "";
    stream?.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      lines.forEach(onLine);
    });
    stream?.on("end", () => onLine(rest));
  };
  forward(child.stdout);
  forward(child.stderr);
  child.once("error", (error) => {
    fn.output.push(String(error));
    fn.state = "dead";
  });
  child.once("exit", (code, signal) => {
    if (fn.state !== "dead") log(`[${name}] exited (${signal ?? `code ${code}`})`);
    fn.state = "dead";
  });
  return fn;
}

async function stopFunction(fn: RunningFunction): Promise<void> {
  fn.stopped = true;
  if (fn.child.exitCode !== null || fn.child.signalCode !== null) return;
  fn.state = "dead";
  fn.child.kill("SIGTERM");
  const killed = await Promise.race([fn.exited.then(() => true), sleep(3000).then(() => false)]);
  if (!killed) {
    fn.child.kill("SIGKILL");
    await fn.exited;
  }
}

/** Ready = it said which port it listens on, and that port answers an HTTP request. Fails early if it dies. */
async function waitReady(fn: RunningFunction, host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fn.state === "dead") {
      throw new Error(`function ${fn.name} exited during startup:\n${fn.output.slice(-20).join("\n")}`);
    }
    if (fn.port !== undefined && await answers(host, fn.port)) {
      fn.state = "ready";
      fn.readyAt = Date.now();
      return;
    }
    await sleep(100);
  }
  throw new Error(`function ${fn.name} did not answer within ${timeoutMs} ms:\n${fn.output.slice(-20).join("\n")}`);
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path: "/", method: "GET", timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function route(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  running: Map<string, RunningFunction>,
  agent: http.Agent,
): void {
  const m = /^\/functions\/v1\/([^/?#]+)(.*)$/.exec(req.url ?? "");
  const name = m?.[1];
  const fn = name === undefined ? undefined : running.get(name);
  if (fn === undefined) {
    req.resume();
    return sendError(res, 404, "not_found", name === undefined ? "Not found." : `Function not found: ${safe(name)}`);
  }
  if (fn.state !== "ready" || fn.port === undefined) {
    req.resume();
    return sendError(res, 503, "unavailable", `Function ${fn.name} is ${fn.state === "dead" ? "not running" : "starting"}.`);
  }
  // The function sees /<name>/rest, as under Supabase's gateway (which strips /functions/v1).
  const upstream = http.request({
    host: "127.0.0.1",
    port: fn.port,
    method: req.method,
    path: `/${fn.name}${m?.[2] ?? ""}`,
    headers: withoutHopByHop(req.headers),
    agent,
  }, (upstreamRes) => {
    res.writeHead(upstreamRes.statusCode ?? 502, withoutHopByHop(upstreamRes.headers));
    upstreamRes.pipe(res);
    upstreamRes.on("error", () => res.destroy());
  });
  upstream.on("error", () => {
    if (!res.headersSent) sendError(res, 503, "unavailable", `Function ${fn.name} did not answer.`);
    else res.destroy();
  });
  // A client that goes away cancels the upstream request too, so the function sees the abort.
  res.on("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(key.toLowerCase())) out[key] = value;
  }
  return out;
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "?").slice(0, 64);
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// CLI: serve until interrupted.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startFunctionsServer();
  for (const name of Object.keys(server.functions)) console.log(`${server.url}/functions/v1/${name}`);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}
