// Not a part of `npm run bench` (which rebuilds no old code): the gateway at two revisions, measured by
// one harness, side by side. `npx tsx bench/compare-revisions.ts --base=<rev> [--head=<rev>] [--rounds=2]`
//
// Each revision's `supabase/` (functions, migrations, seed: all the gateway is) is put into its own copy
// of this checkout's committed tree (`git archive`), so both are served, migrated and measured by the same
// bench/, shared/ and scripts/: the cluster's shape, the simulator, the load loops and the CPU readings are
// the same for both, and only the gateway differs. Then bench part gateway-overhead (`bench/run.ts
// --only=gateway-overhead`, its own sizes, its own PostgreSQL) runs in the two copies in turn, base then
// head, round after round (A B A B ...). It prints each round's figures and, per revision, their medians:
// the added p50 at the part's highest concurrency (16) and at 1, PostgreSQL's CPU per request at the
// highest, Portkey's added p50 in the same run and llm-invoke's ratio to it; then head ÷ base.
// `--tls`: the gateway reaches the simulator over TLS in both (the part's BENCH_UPSTREAM_TLS=1).
// bench/README.md ("Two revisions side by side") says how to run it and what it bridges.
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fmt, table, times } from "./lib/report.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PART = "gateway-overhead";

interface Args {
  base: string;
  head: string;
  rounds: number;
  /** Where the copies and each round's results go. */
  scratch: string;
  /** The part at its smoke sizes (seconds per round): to try the script, not to judge by. */
  smoke: boolean;
  keep: boolean;
  /** llm-invoke reaches the simulator over TLS (the part's BENCH_UPSTREAM_TLS=1). */
  tls: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> = { head: "HEAD", rounds: 2, scratch: path.join(tmpdir(), "eve-compare-revisions"), smoke: false, keep: false, tls: false };
  for (const a of argv) {
    const [k, v] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, ""];
    if (k === "--base") args.base = v;
    else if (k === "--head") args.head = v;
    else if (k === "--rounds") args.rounds = Math.max(1, Math.floor(Number(v)) || 1);
    else if (k === "--scratch") args.scratch = path.resolve(v);
    else if (k === "--smoke") args.smoke = true;
    else if (k === "--keep") args.keep = true;
    else if (k === "--tls") args.tls = true;
    else {
      console.log("usage: tsx bench/compare-revisions.ts --base=<rev> [--head=<rev>] [--rounds=<n>] [--scratch=<dir>] [--smoke] [--keep] [--tls]");
      process.exit(k === "--help" || k === "-h" ? 0 : 2);
    }
  }
  if (!args.base) throw new Error("--base=<rev> is required (e.g. --base=a626fa6)");
  return args as Args;
}

const git = (...args: string[]) => {
  const r = spawnSync("git", args, { cwd: repoRoot, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout.trim();
};

/** A revision's short commit id (the revision must name a commit). */
const commitOf = (rev: string) => git("rev-parse", "--short", `${rev}^{commit}`);

/**
 * A copy of the harness commit's tree with `rev`'s supabase/ in place of its own, and this checkout's
 * node_modules linked in (the same Node, Deno and PostgreSQL packages for both).
 */
async function materialise(dir: string, harness: string, rev: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const extract = (treeish: string, ...paths: string[]) => {
    const r = spawnSync("bash", ["-o", "pipefail", "-c", 'git -C "$1" archive --format=tar "$2" "${@:4}" | tar -x -C "$3"', "_", repoRoot, treeish, dir, ...paths]);
    if (r.status !== 0) throw new Error(`extracting ${treeish} ${paths.join(" ")}: ${r.stderr}`);
  };
  extract(harness);
  await rm(path.join(dir, "supabase"), { recursive: true, force: true });
  extract(rev, "supabase");
  await symlink(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
}

/** The figures one run of the part gives for a revision. */
interface RoundFigures {
  label: "base" | "head";
  commit: string;
  round: number;
  /** 1-minute load average when the run started and when it ended. */
  load: [number, number];
  seconds: number;
  /** The part's highest concurrency (16 at full size). */
  high: number;
  addedP50: { low: number | null; high: number | null };
  portkeyAddedP50: { low: number | null; high: number | null };
  /** llm-invoke's added p50 ÷ Portkey's, as the part computes it. */
  toPortkey: { low: number | null; high: number | null };
  /** PostgreSQL's and Deno's CPU ms per request at the highest concurrency; the floor's PostgreSQL beside. */
  postgresMs: number | null;
  denoMs: number | null;
  floorPostgresMs: number | null;
  requests: number;
  failedChecks: string[];
}

interface PartJson {
  checks: { name: string; ok: boolean; detail: string }[];
  data: {
    config: { concurrencies: number[] };
    cells: { target: string; connections: number; totalCalls: number; addedMs: { p50: number } | null }[];
    ratios: { concurrency: number; toPortkey: { p50: number | null } | null }[];
    cpu: { perRequest: { target: string; postgresMs: number | null; denoMs: number | null }[] };
  };
}

function figuresOf(json: PartJson): Omit<RoundFigures, "label" | "commit" | "round" | "load" | "seconds"> {
  const { config, cells, ratios, cpu } = json.data;
  const low = Math.min(...config.concurrencies);
  const high = Math.max(...config.concurrencies);
  const added = (target: string, n: number) => cells.find((c) => c.target === target && c.connections === n)?.addedMs?.p50 ?? null;
  const ratio = (n: number) => ratios.find((r) => r.concurrency === n)?.toPortkey?.p50 ?? null;
  const cpuOf = (target: string) => cpu.perRequest.find((c) => c.target === target);
  return {
    high,
    addedP50: { low: added("llm-invoke-edge", low), high: added("llm-invoke-edge", high) },
    portkeyAddedP50: { low: added("portkey", low), high: added("portkey", high) },
    toPortkey: { low: ratio(low), high: ratio(high) },
    postgresMs: cpuOf("llm-invoke-edge")?.postgresMs ?? null,
    denoMs: cpuOf("llm-invoke-edge")?.denoMs ?? null,
    floorPostgresMs: cpuOf("floor")?.postgresMs ?? null,
    requests: cells.filter((c) => c.target === "llm-invoke-edge").reduce((s, c) => s + c.totalCalls, 0),
    failedChecks: json.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
  };
}

/** Runs the part once in `tree`, its output prefixed and kept in `outDir`/run.log. */
async function runPart(tree: string, outDir: string, args: Args, prefix: string): Promise<PartJson> {
  await mkdir(outDir, { recursive: true });
  const logFile = createWriteStream(path.join(outDir, "run.log"));
  const argv = ["bench/run.ts", `--only=${PART}`, `--out=${outDir}`, ...(args.smoke ? ["--smoke"] : [])];
  const env = { ...process.env, ...(args.tls ? { BENCH_UPSTREAM_TLS: "1" } : {}) };
  const child = spawn(path.join(tree, "node_modules", ".bin", "tsx"), argv, { cwd: tree, env, stdio: ["ignore", "pipe", "pipe"] });
  const relay = (chunk: Buffer) => {
    logFile.write(chunk);
    for (const line of chunk.toString().split("\n")) if (line.trim()) console.log(`${prefix} ${line}`);
  };
  child.stdout.on("data", relay);
  child.stderr.on("data", relay);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  logFile.end();
  // A failed check exits 1 but still writes the figures (they are reported with the check); a crash writes none.
  try {
    return JSON.parse(await readFile(path.join(outDir, "results", `${PART}.json`), "utf8")) as PartJson;
  } catch {
    throw new Error(`${prefix} the part wrote no figures (exit ${code}): ${path.join(outDir, "run.log")}`);
  }
}

/** The middle value; of an even count, the mean of the two middle ones (of two rounds: their mean). */
function median(values: (number | null)[]): number | null {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

const COLUMNS = [
  "revision", "round", "load 1 min (start → end)", "added p50 c=1 ms", "Portkey c=1 ms", "÷ Portkey c=1",
  "added p50 c=HIGH ms", "Portkey c=HIGH ms", "÷ Portkey c=HIGH", "PostgreSQL CPU ms/req c=HIGH", "Deno CPU ms/req c=HIGH",
  "floor's PostgreSQL CPU ms/req", "s",
];

type Figures = Pick<RoundFigures, "addedP50" | "portkeyAddedP50" | "toPortkey" | "postgresMs" | "denoMs" | "floorPostgresMs" | "seconds">;

function row(r: Figures, who: string, round: string, load: string) {
  return [
    who, round, load,
    fmt(r.addedP50.low), fmt(r.portkeyAddedP50.low), times(r.toPortkey.low),
    fmt(r.addedP50.high), fmt(r.portkeyAddedP50.high), times(r.toPortkey.high),
    fmt(r.postgresMs, 3), fmt(r.denoMs, 3), fmt(r.floorPostgresMs, 3), fmt(r.seconds),
  ];
}

function medians(rs: RoundFigures[]): Figures {
  const m = (f: (r: RoundFigures) => number | null) => median(rs.map(f));
  return {
    addedP50: { low: m((r) => r.addedP50.low), high: m((r) => r.addedP50.high) },
    portkeyAddedP50: { low: m((r) => r.portkeyAddedP50.low), high: m((r) => r.portkeyAddedP50.high) },
    toPortkey: { low: m((r) => r.toPortkey.low), high: m((r) => r.toPortkey.high) },
    postgresMs: m((r) => r.postgresMs),
    denoMs: m((r) => r.denoMs),
    floorPostgresMs: m((r) => r.floorPostgresMs),
    seconds: m((r) => r.seconds) ?? NaN,
  };
}

type Commits = Record<"base" | "head" | "harness", string> & { gateway: Record<"base" | "head", string> };

function summary(args: Args, commits: Commits, rounds: RoundFigures[], startedAt: Date, dirtyNote: string): string {
  const high = rounds[0]?.high ?? 16;
  const headers = COLUMNS.map((c) => c.replace("HIGH", String(high)));
  const perRound = rounds.map((r) => row(r, `${r.label} ${r.commit}`, String(r.round), `${fmt(r.load[0])} → ${fmt(r.load[1])}`));
  const mids = (["base", "head"] as const).map((label) => ({ label, m: medians(rounds.filter((r) => r.label === label)) }));
  const medianRows = mids.map(({ label, m }) => row(m, `**${label} ${commits[label]}**`, "median", ""));
  const [b, h] = [mids[0]!.m, mids[1]!.m];
  const over = (x: number | null, y: number | null) => (x !== null && y !== null && y > 0 ? x / y : null);
  const noHigher = (x: number | null, y: number | null) => (x === null || y === null ? "—" : x <= y ? "yes" : "no");
  const failed = rounds.filter((r) => r.failedChecks.length);
  const loads = rounds.flatMap((r) => r.load);
  return `# ${commits.head} beside ${commits.base}: bench part ${PART}, rounds interleaved${args.tls ? ", upstream over TLS" : ""}

Harness: this checkout's commit ${commits.harness} (bench/, shared/, scripts/), each revision's supabase/ in its own copy${dirtyNote};
supabase/ last changed at ${commits.gateway.base} in base ${commits.base}, at ${commits.gateway.head} in head ${commits.head}.
Started ${startedAt.toISOString()}; ${args.rounds} round(s) per revision${args.smoke ? ", **smoke sizes (not figures to judge by)**" : ""}; load average (1 min) ${fmt(Math.min(...loads))}-${fmt(Math.max(...loads))}.
Added p50 = llm-invoke as on Supabase's p50 minus the direct call's at the same concurrency, in the same run; Portkey's the same way;
CPU per request over the part's rounds at c=${high} (PostgreSQL: the whole server; Deno: the function's process).

${table(headers, [...perRound, ...medianRows], ["l", ...headers.slice(1).map(() => "r" as const)])}

A median row's "÷ Portkey" is the median of its rounds' ratios (each Portkey's in the same run).

Head ÷ base (medians): added p50 c=1 ${times(over(h.addedP50.low, b.addedP50.low))}, c=${high} ${times(over(h.addedP50.high, b.addedP50.high))}; PostgreSQL CPU per request c=${high} ${times(over(h.postgresMs, b.postgresMs))}; Deno CPU per request ${times(over(h.denoMs, b.denoMs))}.
Head's median no higher than base's: added p50 at c=${high} ${noHigher(h.addedP50.high, b.addedP50.high)}; PostgreSQL CPU per request ${noHigher(h.postgresMs, b.postgresMs)}.
${failed.length ? `\nFailed checks: ${failed.map((r) => `${r.label} round ${r.round}: ${r.failedChecks.join("; ")}`).join(" | ")}\n` : "\nEvery check of the part held in every round.\n"}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const harness = commitOf("HEAD");
  // The commit that last changed a revision's supabase/: the gateway it serves (the head may be a later bench commit).
  const gatewayAt = (rev: string) => git("log", "-1", "--format=%h", rev, "--", "supabase");
  const commits: Commits = {
    base: commitOf(args.base),
    head: commitOf(args.head),
    harness,
    gateway: { base: gatewayAt(args.base), head: gatewayAt(args.head) },
  };
  const dirty = git("status", "--porcelain", "--", "bench", "shared", "scripts", "supabase", "package.json", "package-lock.json");
  const dirtyNote = dirty ? " (uncommitted changes in this checkout are not measured: the copies come from commits)" : "";
  if (dirty) console.warn(`note:${dirtyNote}`);

  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const resultsDir = path.join(args.scratch, `${commits.head}-vs-${commits.base}-${stamp}`);
  const trees = { base: path.join(args.scratch, `tree-base-${commits.base}`), head: path.join(args.scratch, `tree-head-${commits.head}`) };
  console.log(`harness ${harness}; base ${commits.base}; head ${commits.head} (supabase/ as at ${commits.gateway.head}); ${args.rounds} round(s) each; results in ${resultsDir}`);
  for (const label of ["base", "head"] as const) await materialise(trees[label], harness, commits[label]);

  const rounds: RoundFigures[] = [];
  // A run that crashes ends the comparison; the rounds before it are still summarised.
  let crash: unknown;
  try {
    for (let round = 1; round <= args.rounds; round++) {
      for (const label of ["base", "head"] as const) {
        const prefix = `[${label} ${commits[label]} r${round}]`;
        const load0 = loadavg()[0]!;
        const t0 = Date.now();
        const json = await runPart(trees[label], path.join(resultsDir, `${label}-${commits[label]}-r${round}`), args, prefix);
        const f: RoundFigures = {
          label, commit: commits[label], round, load: [load0, loadavg()[0]!], seconds: Math.round((Date.now() - t0) / 1000),
          ...figuresOf(json),
        };
        rounds.push(f);
        console.log(`${prefix} ${f.seconds} s: added p50 c=1 ${fmt(f.addedP50.low)} ms (Portkey ${fmt(f.portkeyAddedP50.low)}), ` +
          `c=${f.high} ${fmt(f.addedP50.high)} ms (Portkey ${fmt(f.portkeyAddedP50.high)}, ${times(f.toPortkey.high)}); ` +
          `PostgreSQL CPU ${fmt(f.postgresMs, 3)} ms/request; load ${fmt(f.load[0])} → ${fmt(f.load[1])}` +
          (f.failedChecks.length ? `; FAILED: ${f.failedChecks.join("; ")}` : ""));
      }
    }
  } catch (error) {
    crash = error;
  } finally {
    if (!args.keep) for (const dir of Object.values(trees)) await rm(dir, { recursive: true, force: true });
  }

  if (rounds.length > 0) {
    const text = summary(args, commits, rounds, startedAt, dirtyNote) +
      (crash ? `\n**Stopped early**: ${crash instanceof Error ? crash.message : String(crash)}\n` : "") +
      `\nOne comparison took ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s.\n`;
    await writeFile(path.join(resultsDir, "summary.md"), text);
    await writeFile(path.join(resultsDir, "rounds.json"), `${JSON.stringify({ args, commits, rounds }, null, 2)}\n`);
    console.log(`\n${text}\nwritten: ${path.join(resultsDir, "summary.md")}`);
  }
  if (crash) throw crash;
  // The figures stand beside a failed check, but the comparison did not hold what the part checks.
  if (rounds.some((r) => r.failedChecks.length > 0)) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
