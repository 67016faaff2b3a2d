// Boot: how fast a new llm-invoke worker answers, against floors measured side by side. Each boot
// spawns a fresh Deno process serving one target on a free port and times it from spawn to the
// answer of one real request (a small generateContent through the function to the simulator:
// authentication, reservation, Google's call, finalize), with the process's RSS and CPU at that
// moment. Targets:
//   - llm-invoke as scripts/serve-functions.ts runs it;
//   - floor: bench/lib/boot-floor.ts, an empty Deno.serve that opens one database connection and
//     answers by calling the simulator with fetch.
// Warm = Deno's V8 code cache in use (filled by one unmeasured boot per target); cold =
// `--no-code-cache` (every module compiled from source; the TypeScript already transpiled into the
// part's own DENO_DIR is read either way). Boots are interleaved in rotated order.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DENO_FLAGS, DENO_PERMISSIONS } from "../scripts/serve-functions.ts";
import { gatewayRoleUrl } from "../shared/db/gateway-role.ts";
import { denoBin } from "../shared/deno-bin.ts";
import { freePort } from "../shared/free-port.ts";
import { startGoogleSimulator, type GoogleSimulator } from "../shared/google-sim/server.ts";
import { sleep } from "./lib/clock.ts";
import { setKeys, setModel, type BenchServer } from "./lib/db.ts";
import { BENCH_SERVICE_KEY, BENCH_SIM_KEY, BENCH_SIM_KEY_VAR } from "./lib/llm-invoke.ts";
import { processCpuSeconds } from "./lib/pg-cpu.ts";
import { fmt, table, type PartResult } from "./lib/report.ts";
import { median, percentile } from "./lib/stats.ts";

export interface BootConfig {
  /** Boots per target and cache mode, interleaved in rotated order. */
  boots: number;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MODEL = "gemma-3-27b-it";
const PROMPT = "Say hello in one word.";
const HUGE = 2_000_000_000;
const ANSWER_TIMEOUT_MS = 30_000;
/** How often a connection is tried while the process has not bound its port yet (the notes name it). */
const CONNECT_RETRY_MS = 2;

type TargetId = "now" | "floor";
type Mode = "warm" | "cold";
const MODES: Mode[] = ["warm", "cold"];

interface Target {
  id: TargetId;
  label: string;
  cwd: string;
  /** `deno` arguments after `run` and the cache flag. */
  args: string[];
  /** The command as the report shows it (relative to cwd). */
  shown: string;
}

interface Boot {
  ms: number;
  status: number;
  rssKiB: number | null;
  cpuMs: number | null;
  error?: string;
}

interface Cell {
  target: TargetId;
  mode: Mode;
  boots: number;
  answered200: number;
  ms: { p50: number; max: number; min: number };
  rssMiB: { p50: number; max: number };
  cpuMs: { p50: number; max: number };
  firstError?: string;
  /** Every boot in the order it ran: ms to the answer (0.1 ms), HTTP status, RSS KiB, CPU ms. */
  samples: [number, number, number | null, number | null][];
}

export async function runBoot(bench: BenchServer, cfg: BootConfig, log: (s: string) => void): Promise<PartResult> {
  const work = await mkdtemp(path.join(tmpdir(), "eve-bench-boot-"));
  const db = await bench.fresh("boot");
  let sim: GoogleSimulator | undefined;
  try {
    const denoDir = path.join(work, "deno-dir");
    await mkdir(denoDir);

    await setModel(db.sql, MODEL, { rpm: HUGE, tpm: HUGE, rpd: HUGE });
    await setKeys(db.sql, [{ alias: "bench", project: "proj-boot", envVar: BENCH_SIM_KEY_VAR, models: [MODEL] }]);
    sim = await startGoogleSimulator({
      keys: { [BENCH_SIM_KEY]: "proj-boot" },
      models: { [MODEL]: { rpm: HUGE, tpm: HUGE, rpd: HUGE } },
      latencyMs: 0,
    });
    // The environment scripts/serve-functions.ts gives llm-invoke in the benchmark (bench/lib/llm-invoke.ts),
    // the same for every target, with a DENO_DIR of the part's own: its caches start empty.
    const env: Record<string, string | undefined> = {
      NO_COLOR: "1",
      ...process.env,
      SUPABASE_DB_URL: await gatewayRoleUrl(db.url),
      SUPABASE_SERVICE_ROLE_KEY: BENCH_SERVICE_KEY,
      GOOGLE_AI_BASE_URL: sim.url,
      [BENCH_SIM_KEY_VAR]: BENCH_SIM_KEY,
      DENO_DIR: denoDir,
    };

    const targets: Target[] = [
      functionTarget(),
      {
        id: "floor",
        label: "floor: empty Deno.serve + one connection + fetch",
        cwd: REPO_ROOT,
        args: [...DENO_PERMISSIONS, ...DENO_FLAGS, "--no-prompt", path.join(REPO_ROOT, "bench", "lib", "boot-floor.ts")],
        shown: `deno run ${[...DENO_PERMISSIONS, ...DENO_FLAGS, "--no-prompt"].join(" ")} bench/lib/boot-floor.ts`,
      },
    ];
    const deno = denoBin();
    const bootOnce = (t: Target, mode: Mode) => boot(deno, t, mode, env);

    // One unmeasured boot per target into the empty DENO_DIR: it transpiles and fills the code cache.
    const firstBoots: Partial<Record<TargetId, Boot>> = {};
    for (const t of targets) {
      firstBoots[t.id] = await bootOnce(t, "warm");
      log(`  first boot (empty DENO_DIR) ${t.id.padEnd(6)} ${fmt(firstBoots[t.id]!.ms)} ms HTTP ${firstBoots[t.id]!.status}${firstBoots[t.id]!.error ? ` ${firstBoots[t.id]!.error}` : ""}`);
    }
    const codeCacheBytes = codeCacheSize(denoDir);

    const cellsOrder = targets.flatMap((t) => MODES.map((mode) => ({ t, mode })));
    const samples = new Map<string, Boot[]>(cellsOrder.map(({ t, mode }) => [`${t.id}/${mode}`, []]));
    const perRound: Record<string, number>[] = [];
    for (let r = 0; r < cfg.boots; r++) {
      const round: Record<string, number> = {};
      for (let i = 0; i < cellsOrder.length; i++) {
        const { t, mode } = cellsOrder[(i + r) % cellsOrder.length]!;
        const b = await bootOnce(t, mode);
        samples.get(`${t.id}/${mode}`)!.push(b);
        if (b.status === 200) round[`${t.id}/${mode}`] = b.ms;
      }
      perRound.push(round);
    }

    const cells: Cell[] = cellsOrder.map(({ t, mode }) => summarizeCell(t.id, mode, samples.get(`${t.id}/${mode}`)!));
    for (const c of cells) {
      log(
        `  ${c.target.padEnd(6)} ${c.mode}  p50 ${fmt(c.ms.p50)} ms  max ${fmt(c.ms.max)} ms  RSS ${fmt(c.rssMiB.p50, 1)} MiB  CPU ${fmt(c.cpuMs.p50)} ms` +
          (c.answered200 < c.boots ? `  NOT 200: ${c.boots - c.answered200} (${c.firstError})` : ""),
      );
    }

    const cell = (t: TargetId, m: Mode) => cells.find((c) => c.target === t && c.mode === m);
    const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !(b > 0) ? null : a / b);
    const roundRatio = (a: string, b: string) => {
      const rs = perRound.filter((r) => r[a] !== undefined && r[b] !== undefined).map((r) => r[a]! / r[b]!);
      return rs.length ? median(rs) : null;
    };
    // llm-invoke against the floor, measured in the same rounds.
    const ratios: RatioRow = {
      warm: ratio(cell("now", "warm")?.ms.p50, cell("floor", "warm")?.ms.p50),
      cold: ratio(cell("now", "cold")?.ms.p50, cell("floor", "cold")?.ms.p50),
      rss: ratio(cell("now", "warm")?.rssMiB.p50, cell("floor", "warm")?.rssMiB.p50),
      cpu: ratio(cell("now", "warm")?.cpuMs.p50, cell("floor", "warm")?.cpuMs.p50),
      warmPerRound: roundRatio("now/warm", "floor/warm"),
    };
    log(`  llm-invoke/floor p50 warm ${fmt(ratios.warm, 3)} cold ${fmt(ratios.cold, 3)}`);

    // Each llm-invoke answer reserved and finalized one attempt: the rows say so.
    const [{ succeeded, open }] = await db.sql<{ succeeded: number; open: number }[]>`
      select count(*) filter (where status = 'succeeded')::int as succeeded,
             count(*) filter (where status = 'reserved')::int as open
      from public.google_ai_attempts`;
    const invokeAnswers = [...samples.entries()].filter(([k]) => !k.startsWith("floor/")).flatMap(([, v]) => v)
      .concat(targets.filter((t) => t.id !== "floor").map((t) => firstBoots[t.id]!))
      .filter((b) => b.status === 200).length;

    const all = [...samples.values()].flat().concat(Object.values(firstBoots));
    const not200 = all.filter((b) => b.status !== 200);

    const denoVersion = /deno (\S+)/.exec(spawnSync(deno, ["--version"], { encoding: "utf8" }).stdout)?.[1] ?? "?";
    const data = {
      config: cfg,
      model: MODEL,
      prompt: PROMPT,
      deno: denoVersion,
      targets: targets.map((t) => ({ id: t.id, label: t.label, command: t.shown, cold: "the same with --no-code-cache after `run`" })),
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
      markdown: markdown(cfg, targets, cells, firstBoots, ratios, codeCacheBytes, denoVersion),
      headline: [{
        figure: "Boot to first answer, p50 warm (cold): llm-invoke / empty Deno.serve",
        value: `${ms(cell("now", "warm"))} (${ms(cell("now", "cold"))}) / ${ms(cell("floor", "warm"))} (${ms(cell("floor", "cold"))}) ms; ` +
          `llm-invoke/floor ${ratioText(ratios.warm)}`,
      }],
      checks: [
        {
          name: "every boot answered 200",
          ok: not200.length === 0 && succeeded === invokeAnswers && open === 0,
          detail: `${all.length - not200.length} of ${all.length} boots (${targets.map((t) => t.id).join(", ")})` +
            `${not200.length ? `; first failure: ${not200[0]!.error ?? `HTTP ${not200[0]!.status}`}` : ""}; ` +
            `llm-invoke attempts succeeded ${succeeded} for ${invokeAnswers} answers, ${open} left reserved`,
        },
      ],
    };
  } finally {
    await sim?.close();
    await db.drop();
    await rm(work, { recursive: true, force: true });
  }
}

/** scripts/serve-functions.ts's command for llm-invoke, run from the repository root (its Deno workspace). */
function functionTarget(): Target {
  const dir = path.join(REPO_ROOT, "supabase", "functions", "llm-invoke");
  const flags = [...DENO_PERMISSIONS, ...DENO_FLAGS, "--no-prompt"];
  return {
    id: "now",
    label: "llm-invoke",
    cwd: REPO_ROOT,
    args: [...flags, "--config", path.join(dir, "deno.json"), path.join(dir, "index.ts")],
    shown: `deno run ${flags.join(" ")} --config supabase/functions/llm-invoke/deno.json supabase/functions/llm-invoke/index.ts`,
  };
}

/** One boot: spawn, send the request until the port takes it, time the answer, read RSS and CPU, stop. */
async function boot(deno: string, t: Target, mode: Mode, env: Record<string, string | undefined>): Promise<Boot> {
  const port = await freePort();
  const output: string[] = [];
  const args = ["run", ...(mode === "cold" ? ["--no-code-cache"] : []), ...t.args];
  const started = performance.now();
  const child = spawn(deno, args, { cwd: t.cwd, env: { ...env, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => {
    exited = true;
    resolve();
  }));
  const keep = (chunk: Buffer) => {
    output.push(...chunk.toString().split("\n").filter((l) => l.trim() !== ""));
    if (output.length > 20) output.splice(0, output.length - 20);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.once("error", (e) => output.push(String(e)));
  try {
    while (true) {
      if (exited) return failed(started, `exited before answering: ${output.slice(-5).join(" | ")}`);
      if (performance.now() - started > ANSWER_TIMEOUT_MS) return failed(started, `no answer within ${ANSWER_TIMEOUT_MS} ms`);
      const r = await post(port);
      if (r === "refused") {
        await sleep(CONNECT_RETRY_MS);
        continue;
      }
      const ms = performance.now() - started;
      const usage = child.pid === undefined ? null : processUsage(child.pid);
      if (typeof r === "string") return { ...failed(started, r), ms };
      return {
        ms,
        status: r.status,
        rssKiB: usage?.rssKiB ?? null,
        cpuMs: usage?.cpuMs ?? null,
        ...(r.status === 200 ? {} : { error: `HTTP ${r.status} ${r.body.slice(0, 200)}` }),
      };
    }
  } finally {
    if (!exited) {
      child.kill("SIGTERM");
      const gone = await Promise.race([exit.then(() => true), sleep(3000).then(() => false)]);
      if (!gone) {
        child.kill("SIGKILL");
        await exit;
      }
    }
  }
}

function failed(started: number, error: string): Boot {
  return { ms: performance.now() - started, status: 0, rssKiB: null, cpuMs: null, error };
}

/** The one request every boot answers: a native generateContent, NO_WAIT, the same body each time. */
function post(port: number): Promise<{ status: number; body: string } | "refused" | string> {
  const body = JSON.stringify({ model: MODEL, prompt: PROMPT, mode: "NO_WAIT" });
  return new Promise((resolve) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: "/",
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${BENCH_SERVICE_KEY}` },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", (e) => resolve(String(e)));
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED" ? "refused" : String(e)));
    req.end(body);
  });
}

/** VmRSS and user + system CPU of the process (all its threads) from /proc, or null off Linux. */
function processUsage(pid: number): { rssKiB: number | null; cpuMs: number | null } | null {
  try {
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    const cpu = processCpuSeconds(pid);
    return { rssKiB: rss ? Number(rss[1]) : null, cpuMs: cpu === undefined ? null : cpu * 1000 };
  } catch {
    return null;
  }
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

function summarizeCell(target: TargetId, mode: Mode, boots: Boot[]): Cell {
  const ok = boots.filter((b) => b.status === 200);
  const sorted = (xs: number[]) => Float64Array.from(xs).sort();
  const times = sorted(ok.map((b) => b.ms));
  const rss = sorted(ok.flatMap((b) => (b.rssKiB === null ? [] : [b.rssKiB / 1024])));
  const cpu = sorted(ok.flatMap((b) => (b.cpuMs === null ? [] : [b.cpuMs])));
  const r = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
  const firstError = boots.find((b) => b.status !== 200)?.error;
  return {
    target,
    mode,
    boots: boots.length,
    answered200: ok.length,
    ms: { p50: r(percentile(times, 50)), max: r(times[times.length - 1] ?? NaN), min: r(times[0] ?? NaN) },
    rssMiB: { p50: r(percentile(rss, 50)), max: r(rss[rss.length - 1] ?? NaN) },
    cpuMs: { p50: r(percentile(cpu, 50), 0), max: r(cpu[cpu.length - 1] ?? NaN, 0) },
    ...(firstError ? { firstError } : {}),
    samples: boots.map((b) => [r(b.ms), b.status, b.rssKiB, b.cpuMs]),
  };
}

function roundBoot(b: Boot) {
  return { ...b, ms: Math.round(b.ms * 10) / 10, rssMiB: b.rssKiB === null ? null : Math.round(b.rssKiB / 102.4) / 10 };
}

function ratioText(v: number | null): string {
  return v === null ? "—" : `${fmt(v, 2)}×`;
}

function ms(c: Cell | undefined): string {
  return c ? fmt(c.ms.p50, 0) : "—";
}

interface RatioRow {
  warm: number | null;
  cold: number | null;
  rss: number | null;
  cpu: number | null;
  warmPerRound: number | null;
}

function markdown(
  cfg: BootConfig,
  targets: Target[],
  cells: Cell[],
  firstBoots: Partial<Record<TargetId, Boot>>,
  ratios: RatioRow,
  codeCacheBytes: number,
  deno: string,
): string {
  const cell = (t: TargetId, m: Mode) => cells.find((c) => c.target === t && c.mode === m);
  const label = (id: TargetId) => targets.find((t) => t.id === id)?.label ?? id;
  const rows = (["now", "floor"] as TargetId[]).map((id) => {
    const w = cell(id, "warm");
    const c = cell(id, "cold");
    const first = firstBoots[id];
    if (w === undefined || c === undefined) return [label(id), "not measured", "—", "—", "—", "—", "—"];
    return [
      label(id),
      `${fmt(w.ms.p50, 0)} / ${fmt(w.ms.max, 0)}`,
      `${fmt(c.ms.p50, 0)} / ${fmt(c.ms.max, 0)}`,
      `${fmt(w.rssMiB.p50, 1)} / ${fmt(w.rssMiB.max, 1)}`,
      `${fmt(w.cpuMs.p50, 0)} (${fmt(c.cpuMs.p50, 0)})`,
      first ? `${fmt(first.ms, 0)}${first.status === 200 ? "" : ` (HTTP ${first.status})`}` : "—",
      `${w.answered200 + c.answered200} of ${w.boots + c.boots}`,
    ];
  });
  const x = ratioText;
  const ratioRows = [["llm-invoke / floor", x(ratios.warm), x(ratios.warmPerRound), x(ratios.cold), x(ratios.rss), x(ratios.cpu)]];
  const commands = targets.map((t) => `- **${t.label}** (\`${t.id}\`), from the repository root: \`${t.shown}\``);
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
