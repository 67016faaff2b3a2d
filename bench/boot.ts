// Boot: how fast a new llm-invoke worker answers, against floors measured side by side. Each boot
// spawns a fresh Deno process serving one target on a free port and times it from spawn to the
// answer of one real request (a small generateContent through the function to the simulator:
// authentication, reservation, Google's call, finalize), with the process's RSS and CPU at that
// moment. Targets:
//   - llm-invoke as scripts/serve-functions.ts runs it;
//   - floor: bench/lib/floor-server.ts (the gateway-overhead part's floor), an empty Deno.serve that
//     answers by one database round trip (its pool opened on the first request) and a fetch to the
//     simulator.
// Warm = Deno's V8 code cache in use (filled by one unmeasured boot per target); cold =
// `--no-code-cache` (every module compiled from source; the TypeScript already transpiled into the
// part's own DENO_DIR is read either way). Boots are interleaved in rotated order.
import { spawn, spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEFAULT_FUNCTIONS_DIR, DENO_FLAGS, DENO_PERMISSIONS } from "../scripts/serve-functions.ts";
import { denoBin } from "../shared/deno-bin.ts";
import { freePort } from "../shared/free-port.ts";
import { sleep } from "./lib/clock.ts";
import type { BenchServer } from "./lib/db.ts";
import { stopChild } from "./lib/server-process.ts";
import { postOnce } from "./lib/http.ts";
import { createFloorTables } from "./lib/floor.ts";
import { BENCH_SERVICE_KEY, functionEnv, keepLine, simulatorFor } from "./lib/llm-invoke.ts";
import { processCpuSeconds, readProc } from "./lib/pg-cpu.ts";
import { fmt, table, times, type PartResult } from "./lib/report.ts";
import { median, round, summarize } from "./lib/stats.ts";
import { rotatedRounds } from "./lib/load.ts";
import { Teardown } from "./lib/teardown.ts";

export interface BootConfig {
  /** Boots per target and cache mode, interleaved in rotated order. */
  boots: number;
}

const REPO_ROOT = path.resolve(DEFAULT_FUNCTIONS_DIR, "..", "..");
const MODEL = "gemma-3-27b-it";
const PROMPT = "Say hello in one word.";
const ANSWER_TIMEOUT_MS = 30_000;
/** How often a connection is tried while the process has not bound its port yet (the notes name it). */
const CONNECT_RETRY_MS = 2;

type TargetId = "now" | "floor";
type Mode = "warm" | "cold";
const MODES: Mode[] = ["warm", "cold"];

type Target = ReturnType<typeof target>;

const FUNCTION = "supabase/functions/llm-invoke";

/**
 * A target with the local functions server's permissions and flags, then `rest`: its `deno` arguments
 * after `run` and the cache flag, run from the repository root (its Deno workspace), and the command
 * as the report shows it.
 */
function target(id: TargetId, label: string, ...rest: string[]) {
  const args = [...DENO_PERMISSIONS, ...DENO_FLAGS, "--no-prompt", ...rest];
  return { id, label, args, shown: `deno run ${args.join(" ")}` };
}

const TARGETS = [
  // scripts/serve-functions.ts's command for llm-invoke.
  target("now", "llm-invoke", "--config", `${FUNCTION}/deno.json`, `${FUNCTION}/index.ts`),
  // The gateway-overhead part's floor, with the functions' shared import map.
  target("floor", "floor: empty Deno.serve + one database round trip + fetch",
    "--config", "supabase/functions/_shared/deno.json", "bench/lib/floor-server.ts"),
];

interface Boot {
  ms: number;
  status: number;
  rssKiB: number | null;
  cpuMs: number | null;
  error?: string;
}

type Cell = ReturnType<typeof summarizeCell>;

export async function runBoot(bench: BenchServer, cfg: BootConfig, log: (s: string) => void): Promise<PartResult> {
  const teardown = new Teardown();
  try {
    const work = teardown.add(await mkdtemp(path.join(tmpdir(), "eve-bench-boot-")), (dir) => rm(dir, { recursive: true, force: true }));
    const db = teardown.closes(await bench.fresh("boot"));
    await createFloorTables(db.sql);
    const denoDir = path.join(work, "deno-dir");
    await mkdir(denoDir);

    const sim = teardown.closes(await simulatorFor(db, MODEL, "proj-boot"));
    // The environment scripts/serve-functions.ts gives llm-invoke in the benchmark (bench/lib/llm-invoke.ts),
    // the same for every target, with a DENO_DIR of the part's own: its caches start empty.
    const env = { NO_COLOR: "1", ...process.env, ...(await functionEnv(db.url, sim.url)), DENO_DIR: denoDir };

    const deno = denoBin();
    const bootOnce = (t: Target, mode: Mode) => boot(deno, t, mode, env);

    // One unmeasured boot per target into the empty DENO_DIR: it transpiles and fills the code cache.
    const firstBoots: Partial<Record<TargetId, Boot>> = {};
    for (const t of TARGETS) {
      const b = (firstBoots[t.id] = await bootOnce(t, "warm"));
      log(`  first boot (empty DENO_DIR) ${t.id.padEnd(6)} ${fmt(b.ms)} ms HTTP ${b.status}${b.error ? ` ${b.error}` : ""}`);
    }
    const codeCacheBytes = codeCacheSize(denoDir);

    const cellsOrder = TARGETS.flatMap((t) => MODES.map((mode) => ({ t, mode })));
    const samples = await rotatedRounds(cellsOrder, cfg.boots, ({ t, mode }) => bootOnce(t, mode));
    const boots = (t: TargetId, m: Mode) => samples.get(cellsOrder.find((c) => c.t.id === t && c.mode === m)!)!;
    const cells = cellsOrder.map((c) => summarizeCell(c.t.id, c.mode, samples.get(c)!));

    const cell = (t: TargetId, m: Mode) => cells.find((c) => c.target === t && c.mode === m);
    const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !(b > 0) ? null : a / b);
    // Warm boots of one round, llm-invoke's over the floor's, where both answered.
    const floorWarm = boots("floor", "warm");
    const perRound = boots("now", "warm").flatMap((b, r) =>
      b.status === 200 && floorWarm[r]!.status === 200 ? [b.ms / floorWarm[r]!.ms] : []);
    // llm-invoke against the floor, measured in the same rounds.
    const ratios: RatioRow = {
      warm: ratio(cell("now", "warm")?.ms.p50, cell("floor", "warm")?.ms.p50),
      cold: ratio(cell("now", "cold")?.ms.p50, cell("floor", "cold")?.ms.p50),
      rss: ratio(cell("now", "warm")?.rssMiB.p50, cell("floor", "warm")?.rssMiB.p50),
      cpu: ratio(cell("now", "warm")?.cpuMs.p50, cell("floor", "warm")?.cpuMs.p50),
      warmPerRound: perRound.length ? median(perRound) : null,
    };

    // Each llm-invoke answer reserved and finalized one attempt: the rows say so.
    const [{ succeeded, open }] = await db.sql<{ succeeded: number; open: number }[]>`
      select count(*) filter (where status = 'succeeded')::int as succeeded,
             count(*) filter (where status = 'reserved')::int as open
      from public.google_ai_attempts`;
    const invokeAnswers = [...boots("now", "warm"), ...boots("now", "cold"), firstBoots.now!].filter((b) => b.status === 200).length;

    const all = [...samples.values()].flat().concat(Object.values(firstBoots));
    const not200 = all.filter((b) => b.status !== 200);

    const denoVersion = /deno (\S+)/.exec(spawnSync(deno, ["--version"], { encoding: "utf8" }).stdout)?.[1] ?? "?";
    const data = {
      config: cfg,
      model: MODEL,
      prompt: PROMPT,
      deno: denoVersion,
      targets: TARGETS.map((t) => ({ id: t.id, label: t.label, command: t.shown, cold: "the same with --no-code-cache after `run`" })),
      firstBoots: Object.fromEntries(Object.entries(firstBoots).map(([k, b]) => [k, roundBoot(b)])),
      codeCacheBytesAfterFirstBoots: codeCacheBytes,
      cells,
      ratios,
      attempts: { succeeded, open, llmInvokeAnswers200: invokeAnswers },
    };
    return {
      id: "boot",
      title: "Boot: a new llm-invoke worker to its first answer, against an empty Deno.serve",
      data,
      markdown: markdown(cfg, cells, firstBoots, ratios, codeCacheBytes, denoVersion),
      headline: [{
        figure: "Boot to first answer, p50 warm (cold): llm-invoke / empty Deno.serve",
        value: `${ms(cell("now", "warm"))} (${ms(cell("now", "cold"))}) / ${ms(cell("floor", "warm"))} (${ms(cell("floor", "cold"))}) ms; ` +
          `llm-invoke/floor ${times(ratios.warm)}`,
      }],
      checks: [
        {
          name: "every boot answered 200",
          ok: not200.length === 0 && succeeded === invokeAnswers && open === 0,
          detail: `${all.length - not200.length} of ${all.length} boots (${TARGETS.map((t) => t.id).join(", ")})` +
            `${not200.length ? `; first failure: ${not200[0]!.error ?? `HTTP ${not200[0]!.status}`}` : ""}; ` +
            `llm-invoke attempts succeeded ${succeeded} for ${invokeAnswers} answers, ${open} left reserved`,
        },
      ],
    };
  } finally {
    await teardown.run();
  }
}

/** One boot: spawn, send the request until the port takes it, time the answer, read RSS and CPU, stop. */
async function boot(deno: string, t: Target, mode: Mode, env: Record<string, string | undefined>): Promise<Boot> {
  const port = await freePort();
  const output: string[] = [];
  const args = ["run", ...(mode === "cold" ? ["--no-code-cache"] : []), ...t.args];
  const started = performance.now();
  const childEnv = { ...env, PORT: String(port) };
  const child = spawn(deno, args, { cwd: REPO_ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim() !== "") keepLine(output, line, 20);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.once("error", (e) => output.push(String(e)));
  try {
    while (true) {
      if (child.exitCode !== null || child.signalCode !== null) {
        return failed(started, `exited before answering: ${output.slice(-5).join(" | ")}`);
      }
      if (performance.now() - started > ANSWER_TIMEOUT_MS) return failed(started, `no answer within ${ANSWER_TIMEOUT_MS} ms`);
      const r = await postOnce(`http://127.0.0.1:${port}/`, ...BOOT_REQUEST);
      if (r instanceof Error && r.code === "ECONNREFUSED") {
        await sleep(CONNECT_RETRY_MS);
        continue;
      }
      const ms = performance.now() - started;
      const usage = child.pid === undefined ? null : processUsage(child.pid);
      if (r instanceof Error) return { ...failed(started, String(r)), ms };
      return {
        ms,
        status: r.status,
        rssKiB: usage?.rssKiB ?? null,
        cpuMs: usage?.cpuMs ?? null,
        ...(r.status === 200 ? {} : { error: `HTTP ${r.status} ${r.body.slice(0, 200)}` }),
      };
    }
  } finally {
    await stopChild(child, 3000);
  }
}

function failed(started: number, error: string): Boot {
  return { ms: performance.now() - started, status: 0, rssKiB: null, cpuMs: null, error };
}

/** The one request every boot answers: a native generateContent, NO_WAIT, the same body each time. */
const BOOT_REQUEST = [
  { authorization: `Bearer ${BENCH_SERVICE_KEY}` },
  JSON.stringify({ model: MODEL, prompt: PROMPT, mode: "NO_WAIT" }),
] as const;

/** VmRSS and user + system CPU of the process (all its threads) from /proc, or null off Linux. */
function processUsage(pid: number): { rssKiB: number | null; cpuMs: number | null } {
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(readProc(`${pid}/status`) ?? "");
  const cpu = processCpuSeconds(pid);
  return { rssKiB: rss ? Number(rss[1]) : null, cpuMs: cpu === undefined ? null : cpu * 1000 };
}

/** Bytes of Deno's V8 code cache (an SQLite file and its write-ahead log) in a DENO_DIR. */
function codeCacheSize(denoDir: string): number {
  let bytes = 0;
  for (const f of ["v8_code_cache_v2", "v8_code_cache_v2-wal"]) {
    try {
      bytes += statSync(path.join(denoDir, f)).size;
    } catch {
      // not written (yet)
    }
  }
  return bytes;
}

function summarizeCell(target: TargetId, mode: Mode, boots: Boot[]) {
  const ok = boots.filter((b) => b.status === 200);
  const times = summarize(ok.map((b) => b.ms));
  const rss = summarize(ok.flatMap((b) => (b.rssKiB === null ? [] : [b.rssKiB / 1024])));
  const cpu = summarize(ok.flatMap((b) => (b.cpuMs === null ? [] : [b.cpuMs])));
  const r = (x: number, d = 1) => round(x, d);
  const firstError = boots.find((b) => b.status !== 200)?.error;
  return {
    target,
    mode,
    boots: boots.length,
    answered200: ok.length,
    ms: { p50: r(times.p50), max: r(times.max), min: r(times.min) },
    rssMiB: { p50: r(rss.p50), max: r(rss.max) },
    cpuMs: { p50: r(cpu.p50, 0), max: r(cpu.max, 0) },
    ...(firstError ? { firstError } : {}),
    /** Every boot in the order it ran: ms to the answer (0.1 ms), HTTP status, RSS KiB, CPU ms. */
    samples: boots.map((b): [number, number, number | null, number | null] => [r(b.ms), b.status, b.rssKiB, b.cpuMs]),
  };
}

function roundBoot(b: Boot) {
  return { ...b, ms: Math.round(b.ms * 10) / 10, rssMiB: b.rssKiB === null ? null : Math.round(b.rssKiB / 102.4) / 10 };
}

function ms(c: Cell | undefined): string {
  return c ? fmt(c.ms.p50, 0) : "—";
}

/** llm-invoke / floor: p50 warm and cold, RSS and CPU (warm), and the median of the per-round warm ratios. */
type RatioRow = Record<"warm" | "cold" | "rss" | "cpu" | "warmPerRound", number | null>;

function markdown(
  cfg: BootConfig,
  cells: Cell[],
  firstBoots: Partial<Record<TargetId, Boot>>,
  ratios: RatioRow,
  codeCacheBytes: number,
  deno: string,
): string {
  const cell = (t: TargetId, m: Mode) => cells.find((c) => c.target === t && c.mode === m)!;
  const rows = TARGETS.map(({ id, label }) => {
    const w = cell(id, "warm");
    const c = cell(id, "cold");
    const first = firstBoots[id];
    return [
      label,
      `${fmt(w.ms.p50, 0)} / ${fmt(w.ms.max, 0)}`,
      `${fmt(c.ms.p50, 0)} / ${fmt(c.ms.max, 0)}`,
      `${fmt(w.rssMiB.p50, 1)} / ${fmt(w.rssMiB.max, 1)}`,
      `${fmt(w.cpuMs.p50, 0)} (${fmt(c.cpuMs.p50, 0)})`,
      first ? `${fmt(first.ms, 0)}${first.status === 200 ? "" : ` (HTTP ${first.status})`}` : "—",
      `${w.answered200 + c.answered200} of ${w.boots + c.boots}`,
    ];
  });
  const x = times;
  const ratioRows = [["llm-invoke / floor", x(ratios.warm), x(ratios.warmPerRound), x(ratios.cold), x(ratios.rss), x(ratios.cpu)]];
  const commands = TARGETS.map((t) => `- **${t.label}** (\`${t.id}\`), from the repository root: \`${t.shown}\``);
  return `
${cfg.boots} boots per target and column, interleaved in rotated order; Deno ${deno}; the code cache held
${fmt(codeCacheBytes / 1024 / 1024, 1)} MiB after the first boots (what is measured, warm and cold: below).

**The targets** (cold: \`--no-code-cache\` after \`run\`; the environment of \`bench/lib/llm-invoke.ts\` for both:
the gateway role's URL, the bench service key, the simulator's URL and key):
${commands.join("\n")}

${table(
    ["target", "warm p50 / max ms", "cold p50 / max ms", "RSS MiB p50 / max (warm)", "CPU ms p50 warm (cold)", "first boot, empty DENO_DIR, ms", "answered 200"],
    rows,
    ["l", "r", "r", "r", "r", "r", "r"],
  )}

${table(["ratio", "warm (p50 / p50)", "warm (median of per-round ratios)", "cold (p50 / p50)", "RSS (warm p50)", "CPU (warm p50)"], ratioRows, ["l", "r", "r", "r", "r", "r"])}

`;
}
