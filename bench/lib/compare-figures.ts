// What compare-revisions.ts reads from one run's results/<part>.json, per part it can compare, and how it
// prints rounds and medians. The concurrencies and connection counts are named, not "the part's highest":
// issue 89 judges the gateway at 1 and 16 callers and one hot row at 8 and 32 connections.
import { fmt, pct, table, times } from "./report.ts";

/** The parts a comparison can run and summarise. */
export const COMPARABLE_PARTS = ["gateway-overhead", "hot-row"] as const;
export type ComparablePart = (typeof COMPARABLE_PARTS)[number];

const C1 = 1;
const C16 = 16;
const HOT_CONNECTIONS = [8, 32] as const;

type N = number | null;

export interface OverheadFigures {
  addedP50: { c1: N; c16: N };
  portkeyAddedP50: { c1: N; c16: N };
  /** llm-invoke's added p50 ÷ Portkey's, as the part computes it. */
  toPortkey: { c1: N; c16: N };
  addedP99c16: N;
  portkeyAddedP99c16: N;
  /** CPU ms per request at c=16 (null when the part read its CPU at another concurrency). */
  postgresMs: N;
  denoMs: N;
  floorPostgresMs: N;
  /** Mean active backends at c=16 (pg_stat_activity sampled; null where the part has no sampled round). */
  waits: { active: N; lock: N; walSync: N; walWriteLock: N; cpu: N };
  requests: number;
}

export interface HotRowFigures {
  /** The entry the revision's database has: "call" (google_ai_reserve_call) or "statement". */
  entry: string;
  /**
   * At 8 and 32 connections: admissions/s, rate-limiter-flexible's, the ratio, PostgreSQL CPU ms per admission;
   * reachedLeft: the share of what that CPU allows on the cores the driving clients leave (null where the run did
   * not measure it); batch, batchCpuMs: the same by the entry for reservations that met (null where the revision has none).
   */
  at: Record<"c8" | "c32", { rate: N; rlflex: N; toRlflex: N; cpuMs: N; reachedLeft: N; batch: N; batchCpuMs: N }>;
}

export interface PartJson {
  checks: { name: string; ok: boolean; detail: string }[];
  data: unknown;
}

interface OverheadData {
  cells: { target: string; connections: number; totalCalls: number; addedMs: { p50: number; p99: number } | null }[];
  ratios: { concurrency: number; toPortkey: { p50: number | null } | null }[];
  cpu: { concurrency: number; perRequest: { target: string; postgresMs: number | null; denoMs: number | null }[] };
  waits?: { concurrency: number; active: number; lock: number; walSync: number; walWriteLock?: number; cpu: number };
}

export function overheadFigures(json: PartJson): OverheadFigures {
  const { cells, ratios, cpu, waits } = json.data as OverheadData;
  const cell = (target: string, n: number) => cells.find((c) => c.target === target && c.connections === n)?.addedMs ?? null;
  const ratio = (n: number) => ratios.find((r) => r.concurrency === n)?.toPortkey?.p50 ?? null;
  const cpuOf = (target: string) => (cpu.concurrency === C16 ? cpu.perRequest.find((c) => c.target === target) : undefined);
  const w = waits?.concurrency === C16 ? waits : undefined;
  return {
    addedP50: { c1: cell("llm-invoke-edge", C1)?.p50 ?? null, c16: cell("llm-invoke-edge", C16)?.p50 ?? null },
    portkeyAddedP50: { c1: cell("portkey", C1)?.p50 ?? null, c16: cell("portkey", C16)?.p50 ?? null },
    toPortkey: { c1: ratio(C1), c16: ratio(C16) },
    addedP99c16: cell("llm-invoke-edge", C16)?.p99 ?? null,
    portkeyAddedP99c16: cell("portkey", C16)?.p99 ?? null,
    postgresMs: cpuOf("llm-invoke-edge")?.postgresMs ?? null,
    denoMs: cpuOf("llm-invoke-edge")?.denoMs ?? null,
    floorPostgresMs: cpuOf("floor")?.postgresMs ?? null,
    waits: { active: w?.active ?? null, lock: w?.lock ?? null, walSync: w?.walSync ?? null, walWriteLock: w?.walWriteLock ?? null, cpu: w?.cpu ?? null },
    requests: cells.filter((c) => c.target === "llm-invoke-edge").reduce((s, c) => s + c.totalCalls, 0),
  };
}

interface HotRowData {
  entry: string;
  cells: {
    variant: string; connections: number; admissionsPerSecond: number; toRlflex: number | null; cpuMsPerAdmission: number | null;
    ofCpuLeftAllows?: number | null;
  }[];
}

export function hotRowFigures(json: PartJson): HotRowFigures {
  const { entry, cells } = json.data as HotRowData;
  const at = (n: number) => {
    const e = cells.find((c) => c.variant === "entry" && c.connections === n);
    const r = cells.find((c) => c.variant === "rlflex" && c.connections === n);
    const b = cells.find((c) => c.variant === "batch" && c.connections === n);
    return {
      rate: e?.admissionsPerSecond ?? null, rlflex: r?.admissionsPerSecond ?? null, toRlflex: e?.toRlflex ?? null, cpuMs: e?.cpuMsPerAdmission ?? null,
      reachedLeft: e?.ofCpuLeftAllows ?? null, batch: b?.admissionsPerSecond ?? null, batchCpuMs: b?.cpuMsPerAdmission ?? null,
    };
  };
  return { entry, at: { c8: at(HOT_CONNECTIONS[0]), c32: at(HOT_CONNECTIONS[1]) } };
}

/** The middle value; of an even count, the mean of the two middle ones (of two rounds: their mean). */
export function median(values: N[]): N {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** Every number of `rows` replaced by the median of its values across them (the shape of the first). */
export function medianOf<T>(rows: T[]): T | null {
  if (rows.length === 0) return null;
  const walk = (parts: unknown[]): unknown => {
    const first = parts[0];
    if (typeof first === "number" || first === null) return median(parts as N[]);
    if (typeof first === "object" && first !== null) {
      return Object.fromEntries(Object.keys(first).map((k) => [k, walk(parts.map((p) => (p as Record<string, unknown>)[k]))]));
    }
    return first;
  };
  return walk(rows) as T;
}

const over = (x: N, y: N) => (x !== null && y !== null && y > 0 ? x / y : null);
const yesNo = (ok: boolean | null) => (ok === null ? "—" : ok ? "yes" : "no");

export const OVERHEAD_HEADERS = [
  "added p50 c=1 ms", "Portkey c=1 ms", "÷ Portkey c=1", "added p50 c=16 ms", "Portkey c=16 ms", "÷ Portkey c=16",
  "added p99 c=16 ms", "Portkey p99 c=16 ms", "PostgreSQL CPU ms/req c=16", "Deno CPU ms/req c=16", "floor's PostgreSQL CPU ms/req c=16",
  "c=16 backends: Lock:*", "IO:WalSync", "LWLock:WALWrite", "CPU", "active",
];

export function overheadCells(f: OverheadFigures): string[] {
  return [
    fmt(f.addedP50.c1), fmt(f.portkeyAddedP50.c1), times(f.toPortkey.c1),
    fmt(f.addedP50.c16), fmt(f.portkeyAddedP50.c16), times(f.toPortkey.c16),
    fmt(f.addedP99c16), fmt(f.portkeyAddedP99c16), fmt(f.postgresMs, 3), fmt(f.denoMs, 3), fmt(f.floorPostgresMs, 3),
    fmt(f.waits.lock), fmt(f.waits.walSync), fmt(f.waits.walWriteLock), fmt(f.waits.cpu), fmt(f.waits.active),
  ];
}

export const HOT_ROW_HEADERS = [
  "entry", "admissions/s 8 conn", "rate-limiter-flexible 8", "÷ it 8", "CPU ms/admission 8",
  "admissions/s 32 conn", "rate-limiter-flexible 32", "÷ it 32", "CPU ms/admission 32",
  "reached of what the CPU the clients leave allows 8 / 32", "batch entry admissions/s 8 / 32", "its CPU ms/admission 8 / 32",
];

export function hotRowCells(f: HotRowFigures): string[] {
  const at = (a: HotRowFigures["at"]["c8"]) => [fmt(a.rate, 0), fmt(a.rlflex, 0), times(a.toRlflex), fmt(a.cpuMs, 3)];
  return [f.entry, ...at(f.at.c8), ...at(f.at.c32), `${pct(f.at.c8.reachedLeft, 0)} / ${pct(f.at.c32.reachedLeft, 0)}`,
    `${fmt(f.at.c8.batch, 0)} / ${fmt(f.at.c32.batch, 0)}`,
    `${fmt(f.at.c8.batchCpuMs, 3)} / ${fmt(f.at.c32.batchCpuMs, 3)}`];
}

/** Round rows and median rows as one markdown table: `lead` columns (revision, round, load...) first. */
export function partTable(leadHeaders: string[], headers: string[], rows: string[][]): string {
  const all = [...leadHeaders, ...headers];
  return table(all, rows, all.map((_, i) => (i === 0 ? "l" : "r")));
}

/** What issue 89's "Done when" asks of gateway-overhead, from the rounds and medians of base and head. */
export function overheadVerdicts(base: OverheadFigures[], head: OverheadFigures[]): string[] {
  const [b, h] = [medianOf(base), medianOf(head)];
  if (!b || !h) return [];
  const ratios = head.map((f) => f.toPortkey.c16);
  const eachWithin2 = ratios.every((r) => r !== null) ? ratios.every((r) => r! <= 2) : null;
  const waitsOf = (f: OverheadFigures) => (f.waits.lock === null || f.waits.walSync === null ? null : f.waits.lock + f.waits.walSync);
  return [
    `Head ÷ base (medians): added p50 c=1 ${times(over(h.addedP50.c1, b.addedP50.c1))}, c=16 ${times(over(h.addedP50.c16, b.addedP50.c16))}; ` +
    `added p99 c=16 ${times(over(h.addedP99c16, b.addedP99c16))}; PostgreSQL CPU per request c=16 ${times(over(h.postgresMs, b.postgresMs))}; ` +
    `Deno CPU per request c=16 ${times(over(h.denoMs, b.denoMs))}.`,
    `Head's added p50 at c=16 ≤ 2× Portkey's in every round: ${yesNo(eachWithin2)} (${ratios.map((r) => times(r)).join(", ")}; median ${times(h.toPortkey.c16)}); ` +
    `head's median added p99 at c=16 within 10% of base's or lower: ${yesNo(h.addedP99c16 === null || b.addedP99c16 === null ? null : h.addedP99c16 <= 1.1 * b.addedP99c16)}; ` +
    `head's median added p50 at c=1 no higher than base's: ${yesNo(h.addedP50.c1 === null || b.addedP50.c1 === null ? null : h.addedP50.c1 <= b.addedP50.c1)}.`,
    `c=16 backends in any Lock:* wait or IO:WalSync, median: base ${fmt(waitsOf(b))}, head ${fmt(waitsOf(h))} (≤ 0.5: ${yesNo(waitsOf(h) === null ? null : waitsOf(h)! <= 0.5)}).`,
  ];
}

/** What issue 89's "Done when" asks of the hot row: head's admissions/s over base's at 8 and 32 connections. */
export function hotRowVerdicts(base: HotRowFigures[], head: HotRowFigures[]): string[] {
  const [b, h] = [medianOf(base), medianOf(head)];
  if (!b || !h) return [];
  const line = (k: "c8" | "c32", n: number) =>
    `at ${n} connections ${times(over(h.at[k].rate, b.at[k].rate))} (${fmt(h.at[k].rate, 0)} against ${fmt(b.at[k].rate, 0)}; ` +
    `CPU per admission ${fmt(h.at[k].cpuMs, 3)} against ${fmt(b.at[k].cpuMs, 3)} ms; reached of what that CPU allows on the cores ` +
    `the clients leave ${pct(h.at[k].reachedLeft, 0)} against ${pct(b.at[k].reachedLeft, 0)}; ÷ rate-limiter-flexible ${times(h.at[k].toRlflex)} against ${times(b.at[k].toRlflex)})`;
  const both = (ok: (k: "c8" | "c32") => boolean | null) => {
    const [a, c] = [ok("c8"), ok("c32")];
    return a === null || c === null ? null : a && c;
  };
  const twice = both((k) => {
    const ratio = over(h.at[k].rate, b.at[k].rate);
    return ratio === null ? null : ratio >= 2;
  });
  const reached = both((k) => (h.at[k].reachedLeft === null ? null : h.at[k].reachedLeft! >= 0.8));
  const batch = (k: "c8" | "c32", n: number) =>
    `at ${n} connections ${times(over(h.at[k].batch, b.at[k].rate))} (${fmt(h.at[k].batch, 0)}; CPU per admission ${fmt(h.at[k].batchCpuMs, 3)} ms)`;
  return [
    `One hot row, head's entry (${h.entry}) ÷ base's (${b.entry}), median admissions/s: ${line("c8", 8)}; ${line("c32", 32)}.`,
    `Head's entry ≥ 2× base's at 8 and 32 connections: ${yesNo(twice)}; or, where the CPU cannot give it, ≥ 80% of what ` +
    `that CPU allows on the cores the clients leave at both: ${yesNo(reached)}.`,
    ...(h.at.c8.batch === null ? [] : [`Head's entry for reservations that met (google_ai_reserve_calls) ÷ base's entry: ${batch("c8", 8)}; ${batch("c32", 32)}.`]),
  ];
}
