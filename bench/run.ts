// `npm run bench`: starts its own PostgreSQL (and, for the parts that need them, the Google
// simulator, llm-invoke and the peers), runs every part, prints a summary and writes
// docs/benchmarks.md (with bench/history.md as its last section), docs/wait-admissions.svg and
// bench/results/<part>.json (raw figures, not committed).
// `npm run bench:smoke` (--smoke): every part for a few seconds with tiny sizes, written to a temp
// dir; exits 1 if our design over-admits anywhere or a part crashes. See docs/benchmarks.md.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBenchServer } from "./lib/db.ts";
import { ensureEmbeddedExtensions } from "../shared/db/embedded-extensions.ts";
import { machineInfo } from "./lib/machine.ts";
import { printSummary, writeReport, type Part, type PartResult } from "./lib/report.ts";
import { runRpcThroughput } from "./rpc-throughput.ts";
import { runRpcFloor } from "./rpc-floor.ts";
import { runFinalizeWal } from "./finalize-wal.ts";
import { runHotRow } from "./hot-row.ts";
import { runExactness } from "./exactness.ts";
import { runGatewayOverhead } from "./gateway-overhead.ts";
import { runProviderOverhead } from "./provider-overhead.ts";
import { runResponseCache } from "./response-cache.ts";
import { runBoot } from "./boot.ts";
import { runOutage } from "./outage.ts";
import { runHostileInput } from "./hostile-input.ts";
import { runFidelity } from "./fidelity.ts";
import { runMixedLoad } from "./mixed-load.ts";
import { runMetricsScrape } from "./metrics-scrape.ts";
import { runLogScale } from "./log-scale.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface Args {
  smoke: boolean;
  only: string[] | null;
  out: string | null;
  /** Full runs of the mixed-load part (1 by default: bench/README.md says why). */
  runs?: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { smoke: false, only: null, out: null };
  for (const a of argv) {
    if (a === "--smoke") args.smoke = true;
    else if (a.startsWith("--only=")) args.only = a.slice(7).split(",").filter(Boolean);
    else if (a.startsWith("--out=")) args.out = path.resolve(a.slice(6));
    else if (a.startsWith("--runs=")) args.runs = Math.max(1, Number(a.slice(7)) || 1);
    else if (a === "--help" || a === "-h") {
      console.log("usage: tsx bench/run.ts [--smoke] [--only=<part,...>] [--out=<dir>] [--runs=<mixed-load runs>]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const log = (s: string) => console.log(s);
  const outDir = args.out ?? (args.smoke ? await mkdtemp(path.join(tmpdir(), "eve-bench-smoke-")) : null);
  const markdownPath = outDir ? path.join(outDir, "benchmarks.md") : path.join(repoRoot, "docs", "benchmarks.md");
  const resultsDir = outDir ? path.join(outDir, "results") : path.join(repoRoot, "bench", "results");
  const chartPath = outDir ? path.join(outDir, "wait-admissions.svg") : path.join(repoRoot, "docs", "wait-admissions.svg");

  // pg_cron and pgTAP into the embedded engine first, as npm test does: part log-scale schedules pg_cron's
  // vacuum of the counter rows, which a fresh machine's engine does not have until then.
  log(`Embedded PostgreSQL: ${await ensureEmbeddedExtensions()}`);
  log(`EVE LLM Gateway benchmark (${args.smoke ? "smoke" : "full"}): starting PostgreSQL`);
  const bench = await startBenchServer();
  const machine = machineInfo({ version: bench.version, engine: bench.server.engine, settings: bench.settings });
  log(`  ${machine.postgres} (${machine.postgresEngine}), ${machine.nproc} × ${machine.cpuModel}, Node ${machine.node}, Deno ${machine.deno}`);

  const parts: PartResult[] = [];
  const failures: { part: string; error: string }[] = [];
  const want = (id: string) => args.only === null || args.only.includes(id);
  /** Runs one part with its sizes (every part is `run<Part>(bench, config, log)`). */
  const run = async <C>(id: string, title: string, part: Part<C>, cfg: C) => {
    if (!want(id)) return;
    log(`\n== ${title}`);
    const s = Date.now();
    try {
      parts.push(await part(bench, cfg, log));
      log(`   (${Math.round((Date.now() - s) / 1000)} s)`);
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`part ${id} crashed: ${message}`);
      failures.push({ part: id, error: error instanceof Error ? error.message : String(error) });
    }
  };

  const smoke = args.smoke;
  try {
    await run("rpc-throughput", "1. reservation RPC throughput (and the peers')", runRpcThroughput, smoke
      ? { concurrencies: [1, 8], rounds: 1, warmupMs: 200, durationMs: 800 }
      // Two rounds of 0.6 s: no check rests on these rates, and one run's two rounds of a cell differed 7× (the
      // load); a 0.6 s cell still makes hundreds of calls at its slowest.
      : { concurrencies: [1, 8, 32, 128], rounds: 2, warmupMs: 200, durationMs: 600 });
    await run("rpc-floor", "1b. reservation RPC against its floor (pgbench)", runRpcFloor, {
      connections: [1, 8, 32],
      // Full: 3 s runs (1.5 s windows), each cell twice: the rounds' spread is the machine's load, which neither
      // a longer window nor a third round narrows; the instruction counts are the figures a change is judged by.
      ...(smoke ? { rounds: 1, durationSec: 1, warmupSec: 0.25, windowSec: 0.5 } : { rounds: 2, durationSec: 3, warmupSec: 1, windowSec: 1.5 }),
      countedTransactions: smoke ? [8, 28] : [20, 220],
    });
    await run("finalize-wal", "1c. finalize: WAL and heap-only updates", runFinalizeWal, { admissions: smoke ? 50 : 2000 });
    // One hot row at 8 and 32 connections, llm-invoke's entry beside rate-limiter-flexible (issue 89's cell).
    await run("hot-row", "1d. one quota group's ceiling: admissions/s on one hot row", runHotRow, {
      connections: [8, 32],
      ...(smoke ? { rounds: 1, warmupMs: 200, durationMs: 600 } : { rounds: 2, warmupMs: 300, durationMs: 1500 }),
    });
    await run("exactness", "2. exactness under a burst", runExactness, smoke
      ? { connections: 40, callers: 300, peers: { processes: 2, limit: 30 } }
      : { connections: 500, callers: 1000, peers: { processes: 4, limit: 30 } });
    await run("gateway-overhead", "4. gateway overhead: llm-invoke and Portkey vs direct", runGatewayOverhead, {
      ...(smoke
        // c=16 in smoke too: the sampled waits' round and compare-revisions name it.
        ? { concurrencies: [1, 16], rounds: 1, warmupMs: 200, durationMs: 600 }
        : { concurrencies: [1, 16], rounds: 3, warmupMs: 400, durationMs: 1500 }),
      roundTripRequests: smoke ? 5 : 50,
      firstByteSamples: smoke ? 10 : 200,
    });
    await run("provider-overhead", "4c. provider overhead: llm-invoke's added latency, gpt-4o beside Google", runProviderOverhead, smoke
      ? { concurrencies: [1, 4], warmupMs: 200, durationMs: 1_000, checkRatio: false }
      : { concurrencies: [1, 16], warmupMs: 500, durationMs: 12_000, checkRatio: true });
    await run("response-cache", "4d. a response cache hit, beside a replay and a served request", runResponseCache, {
      samples: smoke ? 10 : 300,
    });
    // 15 boots per cell: within a run, the p50 ratio and the median of per-round ratios agree within 0.08×,
    // where runs differ by 0.3× (the machine's load): more boots would not tell runs apart.
    await run("boot", "4b. boot: a new llm-invoke worker to its first answer", runBoot, { boots: smoke ? 2 : 15 });
    await run("outage", "6. database outage: time to a 503, and back", runOutage, smoke
      ? { rounds: 1, crowd: 5, burst: 12, pausesMs: [1_000], freezeMs: 6_500 }
      // Two rounds: in seven reports a stopped database's 503 came within 69 ms (target 2 s) and a frozen one's
      // at the client deadline + 7-77 ms, in every round.
      : { rounds: 2, crowd: 20, burst: 12, pausesMs: [1_000, 3_000, 10_000], freezeMs: 8_000 });
    await run("hostile-input", "7. what a hostile request costs", runHostileInput, smoke
      ? { rounds: 1, bodyBytes: 200_000 }
      : { rounds: 7, bodyBytes: 990_000 });
    // Waits for a minute boundary (the straddle), then its four counting modes run at once.
    await run("fidelity", "8. fidelity: Google 429s when Google counts differently", runFidelity, {
      arrivalDelayMs: 100,
      arrivalJitterMs: 50,
      burst: { limitRpm: 40, late: 40, lateSpanMs: 300, early: 40, earlyAtMs: 500 },
      demand: smoke
        ? { limitRpm: 10, factor: 30, wholeWindows: 0, smokeDurationMs: 4000, maxWaitMs: 3000 }
        // One whole window: every window of every counting mode, the first too, has held 40 of 40 with no 429.
        : { limitRpm: 40, factor: 3, wholeWindows: 1, maxWaitMs: 65_000 },
    });
    const mixedLoad = "9. WAIT at 3x demand: the bot and the notebooks in llm-invoke's queue, and the peers (+ chart)";
    await run("mixed-load", mixedLoad, runMixedLoad, {
      // Smoke: seconds only, so no window reopens; it shows the part runs and never over-admits.
      ...(smoke ? { limitRpm: 10, demandFactor: 30 } : { limitRpm: 30, demandFactor: 3 }),
      interactiveShare: 0.2,
      batchClients: [
        { name: "notebook-flood", weight: 1, burst: smoke ? 20 : 100 },
        { name: "notebook-b", weight: 1, burst: 0 },
        { name: "notebook-c", weight: 1, burst: 0 },
        { name: "notebook-d", weight: 1, burst: 0 },
      ],
      wholeWindows: 3,
      // Full: one run (5 minutes); `--runs=3` repeats it, each run checked on its own (bench/README.md).
      runs: smoke ? 1 : args.runs ?? 1,
      ...(smoke ? { smokeDurationMs: 5_000, maxWaitMs: 3_000 } : { maxWaitMs: 65_000 }),
      jitterMs: 250,
      rlflexProcesses: 4,
      connections: 8,
      chartPath,
      machineLabel: `${machine.nproc} × ${machine.cpuModel}, ${machine.postgres.replace(/ \(.*$/, "")}`,
    });
    await run("metrics-scrape", "10. /metrics: a scrape's PostgreSQL CPU on a big attempt log", runMetricsScrape, smoke
      ? { rows: 20_000, liveRows: 200, perRound: 5, rounds: 1, checkCpu: false }
      : { rows: 1_000_000, liveRows: 500, perRound: 20, rounds: 5, checkCpu: true });
    await run("log-scale", "11. a request's cost with a month of attempts, and the counter row under load", runLogScale, smoke
      ? { calls: 10, fallbackCalls: 10, logRows: 50_000, counterRequests: [300, 3_000], concurrency: 16, checkFigures: false }
      // The counter table: 15,000 requests (five times the first batch): its size is reached in the first and
      // held through the rest (bench/README.md, part 11). The fallback 10 calls per stack: reported, not checked.
      : { calls: 60, fallbackCalls: 10, logRows: 1_000_000, counterRequests: [3_000, 15_000], concurrency: 16, checkFigures: true });
  } finally {
    await bench.stop();
  }

  await writeReport({
    mode: args.smoke ? "smoke" : "full",
    machine,
    parts,
    failures,
    durationMs: Date.now() - t0,
    markdownPath,
    resultsDir,
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
