// `npm run bench`: starts its own PostgreSQL (and, for the parts that need them, the Google
// simulator, llm-invoke and the peers), runs every part, prints a summary and writes
// docs/benchmarks.md, bench/results/<part>.json and docs/wait-admissions.svg.
// `npm run bench:smoke` (--smoke): every part for a few seconds with tiny sizes, written to a temp
// dir; exits 1 if our design over-admits anywhere or a part crashes. See docs/benchmarks.md.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBenchServer } from "./lib/db.ts";
import { machineInfo } from "./lib/machine.ts";
import { printSummary, writeReport, type PartResult } from "./lib/report.ts";
import { runRpcThroughput } from "./rpc-throughput.ts";
import { runExactness } from "./exactness.ts";
import { runWaitUtilisation } from "./wait-utilisation.ts";
import { runPeers, type PeersInput } from "./peers.ts";
import { runGatewayOverhead } from "./gateway-overhead.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface Args {
  smoke: boolean;
  only: string[] | null;
  out: string | null;
  durable: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { smoke: false, only: null, out: null, durable: true };
  for (const a of argv) {
    if (a === "--smoke") args.smoke = true;
    else if (a.startsWith("--only=")) args.only = a.slice(7).split(",").filter(Boolean);
    else if (a.startsWith("--out=")) args.out = path.resolve(a.slice(6));
    else if (a === "--no-fsync") args.durable = false;
    else if (a === "--help" || a === "-h") {
      console.log("usage: tsx bench/run.ts [--smoke] [--only=<part,...>] [--out=<dir>] [--no-fsync]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const started = new Date();
  const t0 = Date.now();
  const log = (s: string) => console.log(s);
  const outDir = args.out ?? (args.smoke ? await mkdtemp(path.join(tmpdir(), "eve-bench-smoke-")) : null);
  const markdownPath = outDir ? path.join(outDir, "benchmarks.md") : path.join(repoRoot, "docs", "benchmarks.md");
  const resultsDir = outDir ? path.join(outDir, "results") : path.join(repoRoot, "bench", "results");
  const chartPath = outDir ? path.join(outDir, "wait-admissions.svg") : path.join(repoRoot, "docs", "wait-admissions.svg");

  log(`EVE LLM Gateway benchmark (${args.smoke ? "smoke" : "full"}): starting PostgreSQL`);
  const bench = await startBenchServer({ durable: args.durable });
  const machine = machineInfo({ version: bench.version, engine: bench.server.engine, settings: bench.settings });
  log(`  ${machine.postgres} (${machine.postgresEngine}), ${machine.nproc} × ${machine.cpuModel}, Node ${machine.node}, Deno ${machine.deno}`);

  const parts: PartResult[] = [];
  const failures: { part: string; error: string }[] = [];
  const want = (id: string) => args.only === null || args.only.includes(id);
  const run = async (id: string, title: string, fn: () => Promise<PartResult>) => {
    if (!want(id)) return;
    log(`\n== ${title}`);
    const s = Date.now();
    try {
      parts.push(await fn());
      log(`   (${Math.round((Date.now() - s) / 1000)} s)`);
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`part ${id} crashed: ${message}`);
      failures.push({ part: id, error: error instanceof Error ? error.message : String(error) });
    }
  };

  try {
    await run("rpc-throughput", "1. reservation RPC throughput", () =>
      runRpcThroughput(
        bench,
        args.smoke
          ? { concurrencies: [1, 8], rounds: 1, warmupMs: 200, durationMs: 800 }
          : { concurrencies: [1, 8, 32, 128], rounds: 3, warmupMs: 300, durationMs: 1200 },
        log,
      ));
    await run("exactness", "2. exactness under a burst", () =>
      runExactness(bench, args.smoke ? { connections: 40, callers: 150 } : { connections: 500, callers: 1000 }, log));
    await run("gateway-overhead", "4. gateway overhead: llm-invoke and Portkey vs direct", () =>
      runGatewayOverhead(
        bench,
        args.smoke
          ? { concurrencies: [1, 4], rounds: 1, warmupMs: 200, durationMs: 600, roundTripRequests: 5 }
          : { concurrencies: [1, 16], rounds: 3, warmupMs: 500, durationMs: 2000, roundTripRequests: 50 },
        log,
      ));
    await run("wait-utilisation", "3. WAIT utilisation at 3x demand (+ chart)", () =>
      runWaitUtilisation(
        bench,
        {
          ...(args.smoke ? { limitRpm: 10, demandFactor: 30, smokeDurationMs: 4000, tailMs: 500 } : { limitRpm: 120, demandFactor: 3, tailMs: 4000 }),
          fullWindows: 2,
          jitterMs: 250,
          maxWaitMs: 60_000,
          rlflexProcesses: 4,
          connections: 8,
          chartPath,
          via: "llm-invoke",
        },
        log,
      ));
    const rpc = parts.find((p) => p.id === "rpc-throughput")?.data as { cells?: NonNullable<PeersInput["ours"]> } | undefined;
    const ours = rpc?.cells?.map((c) => ({ ...c, ratio: (c as { ratioToSelect1?: number | null }).ratioToSelect1 ?? null }));
    await run("peers", "5. peers: rate-limiter-flexible and a naive limiter", () =>
      runPeers(
        bench,
        args.smoke
          ? { concurrencies: [1, 8], rounds: 1, warmupMs: 200, durationMs: 600, burst: { connections: 40, callers: 150, processes: 2, limit: 30 } }
          : { concurrencies: [1, 8, 32, 128], rounds: 2, warmupMs: 300, durationMs: 1200, burst: { connections: 500, callers: 1000, processes: 4, limit: 30 } },
        { ...(ours ? { ours } : {}) },
        log,
      ));
  } finally {
    await bench.stop();
  }

  const durationMs = Date.now() - t0;
  await writeReport({
    mode: args.smoke ? "smoke" : "full",
    machine,
    parts,
    failures,
    startedAt: started,
    durationMs,
    markdownPath,
    resultsDir,
    chartLink: path.relative(path.dirname(markdownPath), chartPath),
    howToRead: "TODO",
  });
  printSummary(parts, failures);
  log(`\nreport: ${markdownPath}\nraw figures: ${resultsDir}`);
  const failedChecks = parts.flatMap((p) => p.checks).filter((c) => !c.ok);
  return failures.length > 0 || failedChecks.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
