// Not a part of `npm run bench` (which rebuilds no old code): the gateway at two revisions, measured by
// one harness, side by side. `npx tsx bench/compare-revisions.ts --base=<rev> [--head=<rev>] [--rounds=2]
// [--part=gateway-overhead,hot-row]`
//
// Each revision's `supabase/` (functions, migrations, seed: all the gateway is) is put into its own copy
// of this checkout's committed tree (`git archive`), so both are served, migrated and measured by the same
// bench/, shared/ and scripts/: the cluster's shape, the simulator, the load loops and the CPU readings are
// the same for both, and only the gateway differs. Then the chosen bench parts (`--part`, repeatable or a
// comma list; gateway-overhead by default; `bench/run.ts --only=<parts>`, their own sizes, one PostgreSQL
// per run) run in the two copies in turn, base then head, round after round (A B A B ...). It prints each
// round's figures and, per revision, their medians (lib/compare-figures.ts): for gateway-overhead the added
// p50 at c=1 and c=16, the added p99 at c=16, Portkey's in the same run and the ratio, PostgreSQL's and
// Deno's CPU per request at c=16 and the backends' waits sampled at c=16; for hot-row each revision's
// entry's admissions/s on one hot row at 8 and 32 connections, rate-limiter-flexible's beside, and the CPU
// per admission; then head ÷ base and what issue 89's "Done when" asks of them.
// `--tls`: the gateway reaches the simulator over TLS in both (the part's BENCH_UPSTREAM_TLS=1).
// bench/README.md ("Two revisions side by side") says how to run it and what it bridges.
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fmt, times } from "./lib/report.ts";
import {
  COMPARABLE_PARTS,
  type ComparablePart,
  type HotRowFigures,
  hotRowCells,
  hotRowFigures,
  hotRowVerdicts,
  HOT_ROW_HEADERS,
  medianOf,
  type OverheadFigures,
  overheadCells,
  overheadFigures,
  overheadVerdicts,
  OVERHEAD_HEADERS,
  partTable,
  type PartJson,
} from "./lib/compare-figures.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface Args {
  base: string;
  head: string;
  rounds: number;
  /** The bench parts each run runs (in run.ts's order). */
  parts: ComparablePart[];
  /** Where the copies and each round's results go. */
  scratch: string;
  /** The parts at their smoke sizes (seconds per round): to try the script, not to judge by. */
  smoke: boolean;
  keep: boolean;
  /** llm-invoke reaches the simulator over TLS (the part's BENCH_UPSTREAM_TLS=1). */
  tls: boolean;
}

const USAGE = "usage: tsx bench/compare-revisions.ts --base=<rev> [--head=<rev>] [--rounds=<n>] " +
  `[--part=<${COMPARABLE_PARTS.join("|")}>[,...]]... [--scratch=<dir>] [--smoke] [--keep] [--tls]`;

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> = { head: "HEAD", rounds: 2, scratch: path.join(tmpdir(), "eve-compare-revisions"), smoke: false, keep: false, tls: false };
  const parts = new Set<ComparablePart>();
  for (const a of argv) {
    const [k, v] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, ""];
    if (k === "--base") args.base = v;
    else if (k === "--head") args.head = v;
    else if (k === "--rounds") args.rounds = Math.max(1, Math.floor(Number(v)) || 1);
    else if (k === "--part") {
      for (const id of v.split(",").filter(Boolean)) {
        if (!(COMPARABLE_PARTS as readonly string[]).includes(id)) {
          console.log(`unknown part ${id}: compare-revisions summarises ${COMPARABLE_PARTS.join(", ")}\n${USAGE}`);
          process.exit(2);
        }
        parts.add(id as ComparablePart);
      }
    } else if (k === "--scratch") args.scratch = path.resolve(v);
    else if (k === "--smoke") args.smoke = true;
    else if (k === "--keep") args.keep = true;
    else if (k === "--tls") args.tls = true;
    else {
      console.log(USAGE);
      process.exit(k === "--help" || k === "-h" ? 0 : 2);
    }
  }
  if (!args.base) throw new Error("--base=<rev> is required (e.g. --base=a626fa6)");
  // In the order run.ts runs them (hot-row, part 1d, before gateway-overhead, part 4).
  args.parts = parts.size ? ["hot-row", "gateway-overhead"].filter((p) => parts.has(p as ComparablePart)) as ComparablePart[] : ["gateway-overhead"];
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

/** The figures one run gives for a revision: one entry per part run. */
interface RoundFigures {
  label: "base" | "head";
  commit: string;
  round: number;
  /** 1-minute load average when the run started and when it ended. */
  load: [number, number];
  seconds: number;
  overhead?: OverheadFigures;
  hotRow?: HotRowFigures;
  failedChecks: string[];
}

/** Runs the parts once in `tree` (one bench/run.ts, one PostgreSQL), its output prefixed and kept in `outDir`/run.log. */
async function runParts(tree: string, outDir: string, args: Args, prefix: string): Promise<Record<string, PartJson>> {
  await mkdir(outDir, { recursive: true });
  const logFile = createWriteStream(path.join(outDir, "run.log"));
  const argv = ["bench/run.ts", `--only=${args.parts.join(",")}`, `--out=${outDir}`, ...(args.smoke ? ["--smoke"] : [])];
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
  const out: Record<string, PartJson> = {};
  for (const part of args.parts) {
    try {
      out[part] = JSON.parse(await readFile(path.join(outDir, "results", `${part}.json`), "utf8")) as PartJson;
    } catch {
      throw new Error(`${prefix} part ${part} wrote no figures (exit ${code}): ${path.join(outDir, "run.log")}`);
    }
  }
  return out;
}

function figuresOf(parts: Record<string, PartJson>): Pick<RoundFigures, "overhead" | "hotRow" | "failedChecks"> {
  return {
    ...(parts["gateway-overhead"] ? { overhead: overheadFigures(parts["gateway-overhead"]) } : {}),
    ...(parts["hot-row"] ? { hotRow: hotRowFigures(parts["hot-row"]) } : {}),
    failedChecks: Object.entries(parts).flatMap(([id, json]) => json.checks.filter((c) => !c.ok).map((c) => `${id}: ${c.name}: ${c.detail}`)),
  };
}

/** One line per run, as it ends. */
function roundLine(f: RoundFigures): string {
  const o = f.overhead;
  const h = f.hotRow;
  return [
    `${f.seconds} s`,
    ...(o ? [`added p50 c=1 ${fmt(o.addedP50.c1)} ms (Portkey ${fmt(o.portkeyAddedP50.c1)}), c=16 ${fmt(o.addedP50.c16)} ms ` +
      `(Portkey ${fmt(o.portkeyAddedP50.c16)}, ${times(o.toPortkey.c16)}), p99 c=16 ${fmt(o.addedP99c16)} ms; PostgreSQL CPU ${fmt(o.postgresMs, 3)} ms/request; ` +
      `c=16 backends Lock:* ${fmt(o.waits.lock)}, IO:WalSync ${fmt(o.waits.walSync)}, LWLock:WALWrite ${fmt(o.waits.walWriteLock)}, CPU ${fmt(o.waits.cpu)}`] : []),
    ...(h ? [`hot row (${h.entry}) ${fmt(h.at.c8.rate, 0)} / ${fmt(h.at.c32.rate, 0)} admissions/s at 8 / 32 ` +
      `(rate-limiter-flexible ${fmt(h.at.c8.rlflex, 0)} / ${fmt(h.at.c32.rlflex, 0)}), CPU ${fmt(h.at.c8.cpuMs, 3)} / ${fmt(h.at.c32.cpuMs, 3)} ms each`] : []),
    `load ${fmt(f.load[0])} → ${fmt(f.load[1])}`,
  ].join("; ") + (f.failedChecks.length ? `; FAILED: ${f.failedChecks.join("; ")}` : "");
}

type Commits = Record<"base" | "head" | "harness", string> & { gateway: Record<"base" | "head", string> };

/** One part's table: each round, then each revision's medians. */
function partSection<F>(rounds: RoundFigures[], commits: Commits, pick: (r: RoundFigures) => F | undefined, headers: string[], cells: (f: F) => string[]) {
  const lead = ["revision", "round", "load 1 min (start → end)", "s"];
  const perRound = rounds.flatMap((r) => {
    const f = pick(r);
    return f === undefined ? [] : [[`${r.label} ${r.commit}`, String(r.round), `${fmt(r.load[0])} → ${fmt(r.load[1])}`, fmt(r.seconds), ...cells(f)]];
  });
  const of = (label: "base" | "head") => rounds.filter((r) => r.label === label).map(pick).filter((f): f is F => f !== undefined);
  const medianRows = (["base", "head"] as const).flatMap((label) => {
    const m = medianOf(of(label));
    return m === null ? [] : [[`**${label} ${commits[label]}**`, "median", "", "", ...cells(m)]];
  });
  return { table: partTable(lead, headers, [...perRound, ...medianRows]), base: of("base"), head: of("head") };
}

function summary(args: Args, commits: Commits, rounds: RoundFigures[], startedAt: Date, dirtyNote: string): string {
  const failed = rounds.filter((r) => r.failedChecks.length);
  const loads = rounds.flatMap((r) => r.load);
  const sections: string[] = [];
  if (args.parts.includes("gateway-overhead")) {
    const s = partSection(rounds, commits, (r) => r.overhead, OVERHEAD_HEADERS, overheadCells);
    sections.push(`## gateway-overhead at c=1 and c=16

Added p50/p99 = llm-invoke as on Supabase's percentile minus the direct call's at the same concurrency, in the same run;
Portkey's the same way. CPU per request over the part's rounds at c=16 (PostgreSQL: the whole server; Deno: the
function's process). The c=16 backends: mean active backends of the part's database by wait, \`pg_stat_activity\` read
every ~3 ms in a round of its own at c=16 (the part's "Where c=16 waits").

${s.table}

A median row's "÷ Portkey" is the median of its rounds' ratios (each Portkey's in the same run).

${overheadVerdicts(s.base, s.head).join("\n")}`);
  }
  if (args.parts.includes("hot-row")) {
    const s = partSection(rounds, commits, (r) => r.hotRow, HOT_ROW_HEADERS, hotRowCells);
    sections.push(`## hot-row: one quota group's admissions per second, each revision by its own entry

postgres.js on warmed connections, one hot counter row; the entry is what the revision's llm-invoke sends to reserve ("call":
\`call public.google_ai_reserve_call(...)\`; "statement": the single statement before it), beside
rate-limiter-flexible's consume() upsert in the same rounds; PostgreSQL's CPU (the whole server) per admission.

${s.table}

${hotRowVerdicts(s.base, s.head).join("\n")}`);
  }
  return `# ${commits.head} beside ${commits.base}: bench part(s) ${args.parts.join(", ")}, rounds interleaved${args.tls ? ", upstream over TLS" : ""}

Harness: this checkout's commit ${commits.harness} (bench/, shared/, scripts/), each revision's supabase/ in its own copy${dirtyNote};
supabase/ last changed at ${commits.gateway.base} in base ${commits.base}, at ${commits.gateway.head} in head ${commits.head}.
Started ${startedAt.toISOString()}; ${args.rounds} round(s) per revision${args.smoke ? ", **smoke sizes (not figures to judge by)**" : ""}; load average (1 min) ${fmt(Math.min(...loads))}-${fmt(Math.max(...loads))}.

${sections.join("\n\n")}
${failed.length ? `\nFailed checks: ${failed.map((r) => `${r.label} round ${r.round}: ${r.failedChecks.join("; ")}`).join(" | ")}\n` : "\nEvery check of the part(s) held in every round.\n"}`;
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
        const parts = await runParts(trees[label], path.join(resultsDir, `${label}-${commits[label]}-r${round}`), args, prefix);
        const f: RoundFigures = {
          label, commit: commits[label], round, load: [load0, loadavg()[0]!], seconds: Math.round((Date.now() - t0) / 1000),
          ...figuresOf(parts),
        };
        rounds.push(f);
        console.log(`${prefix} ${roundLine(f)}`);
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
