// The report: docs/benchmarks.md (or a temp dir in smoke mode), one JSON file of raw figures per
// part, and the console summary. Parts bring their own markdown section; this file only frames it.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BenchServer } from "./db.ts";
import type { MachineInfo } from "./machine.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface PartResult {
  /** Also the JSON file name: bench/results/<id>.json */
  id: string;
  title: string;
  /** Raw figures, written as JSON. */
  data: unknown;
  /** The part's section of the report (without its heading). */
  markdown: string;
  /** Headline rows: a figure's name and its measured value. */
  headline: { figure: string; value: string }[];
  /** Things that must hold (our over-admission is 0, ...): a failed check fails the run. */
  checks: Check[];
}

/** A part of the benchmark: run on the run's server with its sizes, logging its progress. */
export type Part<C> = (bench: BenchServer, cfg: C, log: (s: string) => void) => Promise<PartResult>;

export interface ReportInput {
  mode: "full" | "smoke";
  machine: MachineInfo;
  parts: PartResult[];
  failures: { part: string; error: string }[];
  durationMs: number;
  /** Where the markdown goes. */
  markdownPath: string;
  resultsDir: string;
}

/** The static "History" section: earlier designs against the ones that replaced them, not rerun. */
const HISTORY = new URL("../history.md", import.meta.url);

/** A part's fixed text (how it measures, how to read it): bench/notes/<id>.md, after its figures. */
async function notes(id: string): Promise<string> {
  try {
    return `\n\n${(await readFile(new URL(`../notes/${id}.md`, import.meta.url), "utf8")).trim()}`;
  } catch {
    return "";
  }
}

export function table(headers: string[], rows: (string | number)[][], align?: ("l" | "r")[]): string {
  const sep = headers.map((_, i) => ((align?.[i] ?? "l") === "r" ? "---:" : "---"));
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(headers), `|${sep.join("|")}|`, ...rows.map(line)].join("\n");
}

export function fmt(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (Number.isInteger(value) || (Math.abs(value) >= 1000 && digits <= 2)) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(digits);
}

export function pct(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${(value * 100).toFixed(digits)}%`;
}

/** A ratio, "1.23×" ("—" where there is none). */
export function times(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "—" : `${fmt(value, 2)}×`;
}

/** A latency table's row: who, connections, calls/s, latency p50/p95/p99, and what the gateway added (p50 in bold). */
export function latencyRow(label: string, c: {
  connections: number;
  callsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number };
  addedMs: { p50: number; p95: number; p99: number } | null;
}): (string | number)[] {
  return [
    label,
    c.connections,
    fmt(c.callsPerSecond),
    fmt(c.latencyMs.p50),
    fmt(c.latencyMs.p95),
    fmt(c.latencyMs.p99),
    c.addedMs ? `**${fmt(c.addedMs.p50)}** / ${fmt(c.addedMs.p95)} / ${fmt(c.addedMs.p99)}` : "—",
  ];
}

function machineSection(m: MachineInfo): string {
  const s = m.postgresSettings;
  return table(
    ["", ""],
    [
      ["date (UTC)", m.date.replace("T", " ").replace(/\.\d+Z$/, " UTC")],
      ["code measured", `commit ${m.code}`],
      ["CPU", `${m.nproc} × ${m.cpuModel} (nproc ${m.nproc})`],
      ["RAM", `${m.ramGiB} GiB`],
      ["load average when the run started (1/5/15 min)", m.loadAverageAtStart.join(" / ")],
      ["OS", m.os],
      ["PostgreSQL", `${m.postgres} (engine: ${m.postgresEngine}; fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, shared_buffers=${s.shared_buffers} × 8 kB, max_connections=${s.max_connections})`],
      ["Node.js", m.node],
      ["Deno", m.deno],
    ],
  );
}

/** The parts come in the order run.ts runs them: the issue's. */
export async function writeReport(input: ReportInput): Promise<void> {
  await mkdir(input.resultsDir, { recursive: true });
  await mkdir(path.dirname(input.markdownPath), { recursive: true });
  const generatedAt = input.machine.date;
  for (const part of input.parts) {
    const file = path.join(input.resultsDir, `${part.id}.json`);
    const body = { part: part.id, title: part.title, mode: input.mode, generatedAt, machine: input.machine, checks: part.checks, data: part.data };
    await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
  }

  const relResults = path.relative(path.dirname(input.markdownPath), input.resultsDir) || ".";
  const checks = input.parts.flatMap((p) => p.checks);
  // Blocks of the report, a blank line between each two.
  const blocks = [
    "# Benchmarks",
    `Generated by \`npm run bench${input.mode === "smoke" ? ":smoke" : ""}\` (\`bench/run.ts\`) on ${generatedAt.slice(0, 10)} in ` +
      `${Math.round(input.durationMs / 1000)} s. Every figure below comes from that one run; every ratio compares ` +
      `figures measured side by side in it, except the last section, "History", which is kept as written. Raw figures: ` +
      `\`${relResults}/*.json\` (written by the run, not committed). Do not edit by hand: rerun the benchmark.`,
    ...(input.mode === "smoke"
      ? ["> **Smoke run**: tiny sizes and a few seconds per part, to prove the benchmark still works. The figures mean nothing."]
      : []),
    "## Machine",
    machineSection(input.machine),
    "## Headline",
    table(["figure", "measured"], input.parts.flatMap((p) => p.headline.map((h) => [h.figure, h.value]))),
    ...(checks.length > 0 ? [table(["must hold", "", "measured"], checks.map((c) => [c.name, c.ok ? "✅ holds" : "❌ FAILED", c.detail]))] : []),
    ...(input.failures.length > 0
      ? ["**Parts that crashed in this run:**", input.failures.map((f) => `- ${f.part}: \`${f.error.replaceAll("`", "'")}\``).join("\n")]
      : []),
    "## How to read this",
    (await readFile(new URL("../notes/how-to-read.md", import.meta.url), "utf8")).trim(),
  ];
  for (const [i, part] of input.parts.entries()) blocks.push(`## ${i + 1}. ${part.title}`, part.markdown.trim() + (await notes(part.id)));
  blocks.push((await readFile(HISTORY, "utf8")).trim(), "## Reproduce", REPRODUCE);
  await writeFile(input.markdownPath, `${blocks.join("\n\n")}\n`);
}

const REPRODUCE = `\`\`\`sh
npm ci
npm run bench          # the full run (how long: bench/README.md); rewrites this file and docs/wait-admissions.svg, writes bench/results/*.json
npm run bench:smoke    # seconds per part, tiny sizes, writes to a temp dir; exits 1 if our design over-admits or a part crashes
npm run bench -- --only=rpc-throughput,exactness   # a subset (ids: the JSON file names)
\`\`\``;

export function printSummary(parts: PartResult[], failures: { part: string; error: string }[]): void {
  const rows = parts.flatMap((p) => p.headline.map((h) => [h.figure, h.value]));
  const w = Math.max(...rows.map((r) => r[0]!.length), 10);
  console.log("");
  console.log("figure".padEnd(w) + "  measured");
  console.log("-".repeat(w) + "  --------");
  for (const [figure, value] of rows) console.log(`${figure!.padEnd(w)}  ${value}`);
  const checks = parts.flatMap((p) => p.checks);
  if (checks.length) {
    console.log("");
    for (const c of checks) console.log(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
  }
  for (const f of failures) console.log(`CRASH  ${f.part}: ${f.error}`);
}
