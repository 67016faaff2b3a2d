// A CPU profile of warm llm-invoke requests, as the gateway-overhead part serves the function (as on
// Supabase: bench/lib/edge-runtime-entry.ts, finalize after the answer) against a fresh database and
// the simulator, under `deno run --cpu-prof`. Not a benchmark part: a tool for finding where the
// function's CPU goes (bench/notes/deno-cpu.md).
//
//   npx tsx bench/profile-llm-invoke.ts [--requests=4000] [--concurrency=16] [--out=/tmp/llm-invoke-prof] [--no-profile]
//
// Prints the Deno process's CPU per request (utime + stime over the measured requests, warm-up
// excluded) and, unless --no-profile, writes a .cpuprofile (Chrome DevTools, or any V8 profile
// reader) into --out when the process stops.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_FUNCTIONS_DIR, DENO_FLAGS, DENO_PERMISSIONS } from "../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../shared/db/gateway-role.ts";
import { denoBin } from "../shared/deno-bin.ts";
import { freePort } from "../shared/free-port.ts";
import { startGoogleSimulator } from "../shared/google-sim/server.ts";
import { setKeys, setModel, startBenchServer } from "./lib/db.ts";
import { BENCH_SERVICE_KEY, BENCH_SIM_KEY, BENCH_SIM_KEY_VAR } from "./lib/llm-invoke.ts";

const MODEL = "gemma-3-27b-it";
const PROMPT = "Summarise in one sentence why a shared rate limiter must be atomic.";
const HUGE = 2_000_000_000;
const WARMUP = 300;

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const requests = Number(arg("requests", "4000"));
const concurrency = Number(arg("concurrency", "16"));
const out = arg("out", "/tmp/llm-invoke-prof");
const profile = !process.argv.includes("--no-profile");
const repoRoot = path.resolve(DEFAULT_FUNCTIONS_DIR, "..", "..");

/** utime + stime of a process, in seconds (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const bench = await startBenchServer({ durable: true });
const db = await bench.fresh("profile");
const sim = await startGoogleSimulator({
  keys: { [BENCH_SIM_KEY]: "proj-profile" },
  models: { [MODEL]: { rpm: HUGE, tpm: HUGE, rpd: HUGE } },
  latencyMs: 0,
});
let child: ChildProcess | undefined;
try {
  await setModel(db.sql, MODEL, { rpm: HUGE, tpm: HUGE, rpd: HUGE });
  await setKeys(db.sql, [{ alias: "bench", project: "proj-profile", envVar: BENCH_SIM_KEY_VAR, models: [MODEL] }]);
  const port = await freePort();
  child = spawn(denoBin(), [
    "run",
    ...DENO_PERMISSIONS,
    ...DENO_FLAGS,
    ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${out}`] : []),
    "--no-prompt",
    "--config",
    path.join(DEFAULT_FUNCTIONS_DIR, "llm-invoke", "deno.json"),
    path.join(path.dirname(fileURLToPath(import.meta.url)), "lib", "edge-runtime-entry.ts"),
  ], {
    cwd: repoRoot,
    env: {
      ...process.env,
      NO_COLOR: "1",
      SUPABASE_DB_URL: await gatewayRoleUrl(db.url),
      SUPABASE_SERVICE_ROLE_KEY: BENCH_SERVICE_KEY,
      GOOGLE_AI_BASE_URL: sim.url,
      [BENCH_SIM_KEY_VAR]: BENCH_SIM_KEY,
      PORT: String(port),
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
    },
    // The request log lines are read and dropped, as a platform's log collector would take them.
    stdio: ["ignore", "pipe", "inherit"],
  });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}/`;
  const call = async (id: string) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${BENCH_SERVICE_KEY}` },
      body: JSON.stringify({ model: MODEL, prompt: PROMPT, mode: "NO_WAIT", request_id: `${id}-${randomUUID().slice(0, 8)}` }),
    });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${body.slice(0, 300)}`);
  };
  for (let tries = 0;; tries++) {
    try {
      await call("ready");
      break;
    } catch (error) {
      if (tries > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  for (let i = 0; i < WARMUP; i++) await call(`warm-${i}`);

  const before = cpuSeconds(child.pid!);
  const started = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (next < requests) await call(`p-${worker}-${next++}`);
  }));
  const elapsed = Date.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 300)); // finalizes handed to waitUntil
  const spent = cpuSeconds(child.pid!) - before;
  console.log(
    `${requests} requests at c=${concurrency} in ${elapsed} ms: Deno CPU ${(spent * 1000 / requests).toFixed(3)} ms per request` +
      (profile ? ` (profiled: the profiler's own cost included); profile in ${out}` : ""),
  );
} finally {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once("exit", resolve));
    child.kill("SIGTERM"); // the entry drains waitUntil and exits: Deno writes the profile then
    await exited;
  }
  await sim.close();
  await db.drop();
  await bench.stop();
}
