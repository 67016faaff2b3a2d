// The reservation RPC against its floor: the least an exact, durable, audited admission must write
// (one statement that increments a hot counter row and inserts one audit row with a uuid key,
// committed with fsync on), both driven by pgbench with prepared statements on one hot row, at
// several connection counts, with PostgreSQL's CPU per transaction from the kernel's accounting.
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setKeys, setModel, UNBOUNDED, walBytesSince, walLsn, type BenchServer } from "./lib/db.ts";
import { sleep } from "./lib/clock.ts";
import { FLOOR_TABLES } from "./lib/floor.ts";
import { FLOOR_STATEMENT } from "./lib/floor-statement.ts";
import { findPgbench, pgbenchArgs, pgbenchVersion, runPgbench, type PgbenchRun } from "./lib/pgbench.ts";
import { postmasterPid, serverCpuSeconds } from "./lib/pg-cpu.ts";
import { canCount, countInstructions } from "./lib/callgrind.ts";
import { median } from "./lib/stats.ts";
import { rotatedRounds } from "./lib/load.ts";
import { fmt, pct as percent, table, times, type PartResult } from "./lib/report.ts";
import type { Sql } from "../shared/db/migrate.ts";

/** A fixture of bench/sql/: the variants' SQL, with what each is and why in its own comments. */
const benchSql = (file: string) => readFileSync(new URL(`./sql/${file}`, import.meta.url), "utf8").trim();

export interface RpcFloorConfig {
  connections: number[];
  /** Each cell runs this many times, interleaved (rotated order); tps is the median round. */
  rounds: number;
  /** pgbench -T, whole seconds: warm-up, then the measured window, then a short tail. */
  durationSec: number;
  /** From pgbench's start to the window: connections open and every backend has warmed its caches. */
  warmupSec: number;
  /** The measured window, inside the run: admissions, CPU and WAL are read at its two ends. */
  windowSec: number;
  /** Instructions are counted (lib/callgrind.ts) over these two runs of each script on one connection. */
  countedTransactions: [number, number];
}

type Variant = "floor" | "logged" | "lean" | "rules" | "rpc" | "invoke";

const MODEL = "bench-floor";
/** The lean admission's own model (its own counter row and window), served by the same key. */
const LEAN_MODEL = "bench-lean";

const TABLES = `${FLOOR_TABLES}
-- The attempt log as the gateway keeps it: google_ai_attempts' columns, defaults, constraints and
-- indexes, and its fillfactor.
create table public.bench_floor_attempts (like public.google_ai_attempts including all);
alter table public.bench_floor_attempts set (fillfactor = 80);
-- The lean admission's window log: one row per admission of the last 61 s.
create table public.bench_lean_admissions (reservation_id uuid primary key, quota_group text not null,
  model text not null, admitted_at timestamptz not null, tokens integer not null);
create index on public.bench_lean_admissions (quota_group, model, admitted_at);`;

const LEAN_FUNCTION = benchSql("lean-admission.sql");

// One statement, one transaction: the counter row's lock is taken and the audit row written in the
// same round trip, and the commit waits for its WAL flush like any admission must.
const FLOOR_SCRIPT = `${FLOOR_STATEMENT};`;

/**
 * The service caller's reservation of `models`, with the named arguments llm-invoke's pg-store passes
 * (a request id per call, no excluded keys, first attempt, not waiting); `holder`: its last ones; `entry`:
 * the function, or the procedure llm-invoke calls.
 */
const reserveCall = (models: string[], idempotent: boolean, holder = "", entry = "google_ai_reserve_models") =>
  `public.${entry}(
  p_models => array[${models.map((m) => `'${m}'`).join(", ")}], p_estimated_tokens => 10, p_caller => 'bench',
  p_request_id => :rid::text, p_exclude_key_ids => '{}'::uuid[],
  p_attempt => 1, p_wait_ms => 0, p_metadata => '{}'::jsonb,
  p_idempotent => ${idempotent}, p_priority => null, p_queue_ticket => null::uuid,
  p_wait_left_ms => 0${holder})`;

// The reservation as the service caller sends it: not idempotent.
const RESERVE_CALL = reserveCall([MODEL], false);

const REQUEST_ID = "\\set rid random(1, 9000000000000000000)";

const RPC_SCRIPT = `${REQUEST_ID}\nselect ${RESERVE_CALL} as r;`;

const LEAN_SCRIPT = `${REQUEST_ID}\nselect public.bench_lean_admit('${LEAN_MODEL}', 10, 'bench-lean', :rid::text) as r;`;

// The floor, with the audit row written as the gateway must write it: the attempt row, in the attempt
// log's own shape and with its indexes ("every attempt logged"), filled as a reservation fills it.
const LOGGED_SCRIPT = `${REQUEST_ID}
with c as (update public.bench_floor_counter set used = used + 1 where id = 1 returning id)
insert into public.bench_floor_attempts (status, request_id, caller, model, requested_model, attempt, api_key_id,
  key_alias, quota_group, minute_bucket, day_bucket, estimated_tokens, wait_ms, metadata, priority_class)
select 'reserved', :rid::text, 'bench', '${MODEL}', '${MODEL}', 1, gen_random_uuid(), 'floor', 'proj-floor',
  date_trunc('minute', now()), current_date, 10, 0, '{}', 'interactive'
from c;`;

const RULES_MODEL = "bench-rules";
const RULES_FUNCTIONS = benchSql("rules-floor.sql");

const RULES_SCRIPT = `${REQUEST_ID}\nselect public.bench_rules_admit('${RULES_MODEL}', 10, 'bench-rules', :rid::text) as r;`;

/** The model llm-invoke falls back to when MODEL cannot serve (never asked here: MODEL always can). */
const FALLBACK_MODEL = "bench-floor-fallback";

// What llm-invoke actually sends for a named request (pg-store.ts): one CALL of
// google_ai_reserve_call, the model with its fallback, the caller's request id (a claim on it), the
// holder's deadlines; the procedure books in a first transaction, reads the quota its answer carries
// (and the causes of a refusal) and waits for the flush in a second. A count of it covers both.
const INVOKE_SCRIPT = `${REQUEST_ID}
call ${reserveCall([MODEL, FALLBACK_MODEL], true, `, p_reply_by => now() + interval '20 seconds',
  p_hold_until => now() + interval '6 minutes', p_holder => gen_random_uuid()`, "google_ai_reserve_call")};`;

const SCRIPTS: Record<Variant, { file: string; text: string }> = {
  floor: { file: "floor.sql", text: FLOOR_SCRIPT },
  logged: { file: "floor-logged.sql", text: LOGGED_SCRIPT },
  lean: { file: "lean-admission.sql", text: LEAN_SCRIPT },
  rules: { file: "rules-floor.sql", text: RULES_SCRIPT },
  rpc: { file: "reserve.sql", text: RPC_SCRIPT },
  invoke: { file: "reserve-as-invoked.sql", text: INVOKE_SCRIPT },
};

type RoundFigures = Awaited<ReturnType<typeof measure>>;

/** The part's models, key, tables and functions, in a migrated database. */
async function prepare(sql: Sql): Promise<void> {
  const models = [MODEL, LEAN_MODEL, FALLBACK_MODEL, RULES_MODEL];
  for (const model of models) await setModel(sql, model, UNBOUNDED);
  await setKeys(sql, [{ alias: "floor", project: "proj-floor", models }]);
  await sql.unsafe(TABLES);
  await sql.unsafe(LEAN_FUNCTION);
  await sql.unsafe(RULES_FUNCTIONS);
  // The lean admission and the rules' floors update their counter row (and the class's share use);
  // the gateway's first booking of the model makes them, as the gateway keeps them (with the ring).
  for (const model of [LEAN_MODEL, RULES_MODEL]) {
    await sql`select public.google_ai_reserve_models(p_models => array[${model}], p_estimated_tokens => 0,
      p_caller => 'bench-setup', p_request_id => null)`;
  }
}

/** Instructions per transaction of each variant (lib/callgrind.ts), and how many of the counted ones each admitted. */
async function counted(bench: BenchServer, cfg: RpcFloorConfig, dir: string, variants: Variant[]) {
  if (!canCount(bench.server.engine)) return null;
  const admitted: Partial<Record<Variant, [transactions: number, admitted: number]>> = {};
  const rowsSoFar = new Map<string, number>(); // the RPC's and llm-invoke's statement write one log
  const scripts = Object.fromEntries(variants.map((v) => [v, path.join(dir, SCRIPTS[v].file)]));
  // (A failed count fails the part's check, not the part: the timed figures stand.)
  const perTransaction = await countInstructions(bench.server.engine, prepare, scripts, cfg.countedTransactions,
    async (sql, v, transactions) => {
      const log = v === "invoke" ? "rpc" : v;
      const rows = await loggedRows(sql, v as Variant);
      // (Every row admitted, or a refusal, cheaper than an admission, was counted among them.)
      const admittedNow = rows.all === rows.admitted ? rows.admitted : -1;
      admitted[v as Variant] = [transactions, admittedNow - (rowsSoFar.get(log) ?? 0)];
      rowsSoFar.set(log, admittedNow);
    }).catch((e: Error) => e);
  if (perTransaction instanceof Error) {
    return { perTransaction: {} as Record<Variant, number>, admitted, error: perTransaction.message };
  }
  return { perTransaction: perTransaction as Record<Variant, number>, admitted, error: null };
}
type Cell = ReturnType<typeof cellOf>;

export async function runRpcFloor(bench: BenchServer, cfg: RpcFloorConfig, log: (s: string) => void): Promise<PartResult> {
  const bin = findPgbench();
  if (!bin) throw new Error("pgbench not found (install the PostgreSQL client tools, e.g. apt-get install postgresql-client)");
  const version = pgbenchVersion(bin);
  const variants: Variant[] = ["floor", "logged", "lean", "rules", "rpc", "invoke"];
  const dir = await mkdtemp(path.join(tmpdir(), "eve-bench-floor-"));
  const db = await bench.fresh("rpc_floor");
  try {
    await prepare(db.sql);
    for (const v of variants) await writeFile(path.join(dir, SCRIPTS[v].file), `${SCRIPTS[v].text}\n`);
    const postmaster = await postmasterPid(db.sql);
    if (postmaster === undefined) log("  PostgreSQL is not a local process: CPU per transaction not measured");
    log(`  ${version}; fsync=${bench.settings.fsync}, synchronous_commit=${bench.settings.synchronous_commit}`);

    const cells: Cell[] = [];
    for (const n of cfg.connections) {
      const threads = Math.min(n, 2);
      // Rotate the order each round so neither the floor nor the RPC always runs first.
      const figures = await rotatedRounds(variants, cfg.rounds, async (v, r) => {
        const scriptPath = path.join(dir, SCRIPTS[v].file);
        const f = await measure(db.sql, postmaster, v, cfg, () =>
          runPgbench(bin, { url: db.url, scriptPath, clients: n, threads, durationSec: cfg.durationSec })
        );
        log(
          `  ${String(n).padStart(3)} conn  round ${r + 1}  ${v.padEnd(6)} ${fmt(f.tps, 1).padStart(8)} tps` +
            ` (pgbench: ${fmt(f.pgbenchTps, 1)})` +
            (f.cpuSeconds !== null && f.windowTransactions > 0
              ? `  ${fmt((f.cpuSeconds * 1000) / f.windowTransactions, 3)} ms CPU/tx`
              : "") +
            (f.windowInsideRun ? "" : "  (window outlasted the run)") +
            (f.problem ? `\n    PROBLEM (exit ${f.exitCode}): ${f.problem.replaceAll("\n", "\n    ")}` : ""),
        );
        return f;
      });
      cells.push(...variants.map((v) => cellOf(v, n, figures)));
    }

    log("  counting instructions per transaction under callgrind");
    const instructions = await counted(bench, cfg, dir, variants);
    if (instructions === null) log("  valgrind is not installed: instructions not counted");

    const all = cells.flatMap((c) => c.rounds.map((f) => ({ c, f })));
    const broken = all.filter(({ f }) => f.exitCode !== 0 || f.failed > 0 || f.problem !== "" || f.transactions === 0);
    const inexact = all.filter(({ f }) => f.rowsWritten !== f.transactions || f.rowsAdmitted !== f.transactions);
    const describe = ({ c, f }: { c: Cell; f: RoundFigures }) =>
      `${c.variant} at ${c.connections}: ${f.transactions} tx, exit ${f.exitCode}, ${f.failed} failed, ${f.rowsWritten} rows (${f.rowsAdmitted} admitted)`;

    return {
      id: "rpc-floor",
      title: "Reservation RPC against its floor (pgbench)",
      data: {
        config: cfg,
        pgbench: version,
        settings: { fsync: bench.settings.fsync, synchronous_commit: bench.settings.synchronous_commit },
        scripts: Object.fromEntries(variants.map((v) => [v, SCRIPTS[v].text])),
        floorTables: TABLES,
        leanFunction: LEAN_FUNCTION,
        rulesFunctions: RULES_FUNCTIONS,
        cpuMeasured: postmaster !== undefined,
        cells,
        instructions,
      },
      markdown: markdown(cfg, cells, version) + countedMarkdown(cfg, instructions),
      headline: [...headline(cells, cfg.connections), ...countedHeadline(instructions)],
      checks: [
        {
          name: "floor and RPC cells ran without errors (pgbench exit 0, no failed transactions)",
          ok: broken.length === 0,
          detail: broken.length === 0 ? `${all.length} pgbench runs, 0 errors` : broken.slice(0, 3).map(describe).join("; "),
        },
        {
          name: "counts are exact: one attempt row (admitted) per RPC transaction, one audit (or attempt) row per floor transaction",
          ok: inexact.length === 0,
          detail: inexact.length === 0
            ? `${all.length} runs, ${all.reduce((s, { f }) => s + f.transactions, 0)} transactions, rows = transactions in each`
            : inexact.slice(0, 3).map(describe).join("; "),
        },
        countedCheck(instructions),
      ],
    };
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** One variant at one connection count, over its rounds. */
function cellOf(v: Variant, n: number, figures: Map<Variant, RoundFigures[]>) {
  const rounds = figures.get(v)!;
  /** The median of the per-round ratios to `base`, measured in the same round. */
  const ratioTo = (base: Variant) =>
    median(rounds.map((f, r) => {
      const b = figures.get(base)![r]!.tps;
      return b > 0 ? f.tps / b : NaN;
    }));
  const inWindows = rounds.reduce((s, f) => s + f.windowTransactions, 0);
  const cpu = rounds.every((f) => f.cpuSeconds !== null) ? rounds.reduce((s, f) => s + f.cpuSeconds!, 0) : null;
  return {
    variant: v,
    connections: n,
    threads: Math.min(n, 2),
    rounds,
    /** Median round (measured window). */
    tps: median(rounds.map((f) => f.tps)),
    /** Median round of pgbench's own tps (whole run). */
    pgbenchTps: median(rounds.map((f) => f.pgbenchTps)),
    /** Median of the per-round ratios to the floor measured in the same round (null for the floor). */
    ratioToFloor: v === "floor" ? null : ratioTo("floor"),
    /** The same against the floor with the attempt row (null for the two floors). */
    ratioToLogged: v === "floor" || v === "logged" ? null : ratioTo("logged"),
    /** The RPC's against the lean exact admission measured in the same round (null for the others). */
    ratioToLean: v === "rpc" ? ratioTo("lean") : null,
    transactions: rounds.reduce((s, f) => s + f.transactions, 0),
    /** CPU and WAL over the windows of every round, divided by the admissions in them. */
    cpuMsPerTransaction: cpu === null || inWindows === 0 ? null : (cpu * 1000) / inWindows,
    walBytesPerTransaction: inWindows ? Math.round(rounds.reduce((s, f) => s + f.walBytes, 0) / inWindows) : 0,
  };
}

/**
 * One pgbench run, measured in a window inside it: the first seconds open the connections and warm
 * each new backend's caches (a cost a pooled production connection pays once, not per request), so
 * admissions, CPU and WAL are read once every connection is warm and again before pgbench stops.
 */
async function measure(
  sql: Sql,
  postmaster: number | undefined,
  v: Variant,
  cfg: RpcFloorConfig,
  drive: () => Promise<PgbenchRun>,
) {
  const before = await loggedRows(sql, v);
  let ended = false;
  const started = Date.now();
  const running = drive().finally(() => (ended = true));
  const snapshot = async () => {
    const cpu = postmaster === undefined ? null : serverCpuSeconds(postmaster);
    const at = performance.now();
    const [lsn, rows] = await Promise.all([walLsn(sql), loggedRows(sql, v)]);
    return { cpu, at, lsn, rows: rows.admitted };
  };
  await sleep(cfg.warmupSec * 1000 - (Date.now() - started));
  const open = await snapshot();
  await sleep(Math.max(0, cfg.windowSec * 1000 - (performance.now() - open.at)));
  const windowInsideRun = !ended;
  const cpuEnd = postmaster === undefined ? null : serverCpuSeconds(postmaster);
  const closedAt = performance.now();
  const walBytes = await walBytesSince(sql, open.lsn);
  const closed = await loggedRows(sql, v);
  const run = await running;
  const after = await loggedRows(sql, v);
  const windowSeconds = (closedAt - open.at) / 1000;
  const windowTransactions = closed.admitted - open.rows;
  return {
    /** Admissions per second in the measured window (committed rows counted at its two ends). */
    tps: windowTransactions / windowSeconds,
    /** pgbench's own tps for the whole run (warm-up included, connection time excluded). */
    pgbenchTps: run.tps,
    /** Transactions pgbench completed over the whole run. */
    transactions: run.transactions,
    failed: run.failed,
    exitCode: run.exitCode,
    problem: run.problem,
    windowSeconds,
    windowTransactions,
    /** false when pgbench had already ended when the window closed (the window then saw its exit). */
    windowInsideRun,
    cpuSeconds: open.cpu === null || cpuEnd === null ? null : cpuEnd - open.cpu,
    walBytes,
    /** Rows the whole run added to its log: audit rows (floor) or attempt rows (RPC). */
    rowsWritten: after.all - before.all,
    /** Of those, admissions (attempt rows with status 'reserved'; every audit row for the floor). */
    rowsAdmitted: after.admitted - before.admitted,
  };
}

async function loggedRows(sql: Sql, v: Variant): Promise<{ all: number; admitted: number }> {
  if (v === "floor" || v === "logged") {
    const table = v === "floor" ? "bench_floor_audit" : "bench_floor_attempts";
    const [{ n }] = await sql.unsafe<{ n: string }[]>(`select count(*)::text as n from public.${table}`);
    return { all: Number(n), admitted: Number(n) };
  }
  const caller = v === "lean" || v === "rules" ? `bench-${v}` : "bench";
  const [row] = await sql<{ all: string; admitted: string }[]>`
    select count(*)::text as all, (count(*) filter (where status = 'reserved'))::text as admitted
    from public.google_ai_attempts where caller = ${caller}`;
  return { all: Number(row!.all), admitted: Number(row!.admitted) };
}

function get(cells: Cell[], v: Variant, n: number): Cell | undefined {
  return cells.find((c) => c.variant === v && c.connections === n);
}

/** CPU per admission of one variant over another's, at one connection count. */
function cpuRatio(cells: Cell[], v: Variant, over: Variant, n: number): number | null {
  const a = get(cells, v, n)?.cpuMsPerTransaction;
  const b = get(cells, over, n)?.cpuMsPerTransaction;
  return a == null || b == null || b <= 0 ? null : a / b;
}

/** A ratio as a whole percentage. */
const pct = (x: number | null | undefined) => percent(x, 0);
const ms = (x: number | null | undefined) => fmt(x, 3);

function headline(cells: Cell[], ns: number[]) {
  const over = (pick: (n: number) => string) => ns.map(pick).join(" / ");
  return [
    {
      figure: `Reserve RPC / floor (pgbench, prepared, one hot row, fsync on) at ${ns.join(" / ")} connections`,
      value: `${over((n) => pct(get(cells, "rpc", n)?.ratioToFloor))} (floor ${over((n) => fmt(get(cells, "floor", n)?.tps, 0))} tps; ` +
        `RPC ${over((n) => fmt(get(cells, "rpc", n)?.tps, 0))} tps)`,
    },
    {
      figure: `The floor with the attempt row (the log's shape and indexes) / floor; reserve RPC / it, at ${ns.join(" / ")} connections`,
      value: `${over((n) => pct(get(cells, "logged", n)?.ratioToFloor))} (${over((n) => fmt(get(cells, "logged", n)?.tps, 0))} tps); ` +
        `RPC ${over((n) => pct(get(cells, "rpc", n)?.ratioToLogged))}`,
    },
    {
      figure: `The lean exact admission (model, key, queue and cooldown read; the sliding window kept; the attempt row), PostgreSQL CPU per admission ÷ the floor with the attempt row; the reserve RPC's ÷ the lean admission's, at ${ns.join(" / ")} connections`,
      value: `${over((n) => times(cpuRatio(cells, "lean", "logged", n)))} (${over((n) => ms(get(cells, "lean", n)?.cpuMsPerTransaction))} ms); ` +
        `RPC ${over((n) => times(cpuRatio(cells, "rpc", "lean", n)))} (tps ${over((n) => pct(get(cells, "rpc", n)?.ratioToLean))} of it)`,
    },
    {
      figure: `The rules' floor (their reads and writes, none of their arithmetic): tps ÷ the floor with the attempt row and PostgreSQL CPU per admission ÷ the lean admission's, at ${ns.join(" / ")} connections`,
      value: `${over((n) => pct(get(cells, "rules", n)?.ratioToLogged))}, ${over((n) => times(cpuRatio(cells, "rules", "lean", n)))}`,
    },
    {
      figure: `Reserve as llm-invoke sends a named request with a fallback (and its quota read) / floor at ${ns.join(" / ")} connections`,
      value: `${over((n) => pct(get(cells, "invoke", n)?.ratioToFloor))} (${over((n) => fmt(get(cells, "invoke", n)?.tps, 0))} tps)`,
    },
    {
      figure: `PostgreSQL CPU per admission, RPC vs floor (pgbench) at ${ns.join(" / ")} connections`,
      value: `RPC ${over((n) => ms(get(cells, "rpc", n)?.cpuMsPerTransaction))} ms; floor ${over((n) => ms(get(cells, "floor", n)?.cpuMsPerTransaction))} ms; ` +
        `floor with the attempt row ${over((n) => ms(get(cells, "logged", n)?.cpuMsPerTransaction))} ms`,
    },
  ];
}

/** A fenced SQL block of the report. */
const sqlBlock = (text: string) => `\`\`\`sql\n${text}\n\`\`\``;

/** A column of a table by connection count: its header and its cell. */
type Column = readonly [string, (n: number) => string | number];

function markdown(cfg: RpcFloorConfig, cells: Cell[], version: string): string {
  const ns = cfg.connections;
  const all = cells.reduce((s, c) => s + c.rounds.length, 0);
  const overran = cells.reduce((s, c) => s + c.rounds.filter((f) => !f.windowInsideRun).length, 0);
  /** A table with a row per connection count: each column's header and its cell. */
  const byConnections = (columns: Column[]) =>
    table(columns.map(([h]) => h), ns.map((n) => columns.map(([, cell]) => cell(n))), columns.map(() => "r"));
  const at = (v: Variant, n: number) => get(cells, v, n);
  const tpsTable = byConnections([
    ["connections", (n) => n],
    ["pgbench threads", (n) => Math.min(n, 2)],
    ["floor tps", (n) => fmt(at("floor", n)?.tps, 0)],
    ["floor with the attempt row tps", (n) => fmt(at("logged", n)?.tps, 0)],
    ["it / floor", (n) => pct(at("logged", n)?.ratioToFloor)],
    ["reserve RPC tps", (n) => fmt(at("rpc", n)?.tps, 0)],
    ["RPC / floor", (n) => pct(at("rpc", n)?.ratioToFloor)],
    ["RPC / floor with the attempt row", (n) => pct(at("rpc", n)?.ratioToLogged)],
    ["lean exact admission tps", (n) => fmt(at("lean", n)?.tps, 0)],
    ["it / floor with the attempt row", (n) => pct(at("lean", n)?.ratioToLogged)],
    ["RPC / lean admission", (n) => pct(at("rpc", n)?.ratioToLean)],
    ["the rules' floor / floor with the attempt row", (n) => pct(at("rules", n)?.ratioToLogged)],
    ["llm-invoke's statement tps", (n) => fmt(at("invoke", n)?.tps, 0)],
    ["it / floor", (n) => pct(at("invoke", n)?.ratioToFloor)],
    ["pgbench's tps, whole run: floor / RPC", (n) =>
      `${fmt(at("floor", n)?.pgbenchTps, 0)} / ${fmt(at("rpc", n)?.pgbenchTps, 0)}`],
  ]);
  const costTable = byConnections([
    ["connections", (n) => n],
    ["floor CPU ms/tx", (n) => ms(at("floor", n)?.cpuMsPerTransaction)],
    ["floor with the attempt row CPU ms/tx", (n) => ms(at("logged", n)?.cpuMsPerTransaction)],
    ["lean exact admission CPU ms/tx", (n) => ms(at("lean", n)?.cpuMsPerTransaction)],
    ["RPC CPU ms/tx", (n) => ms(at("rpc", n)?.cpuMsPerTransaction)],
    ["lean ÷ floor with the attempt row", (n) => times(cpuRatio(cells, "lean", "logged", n))],
    ["RPC ÷ floor with the attempt row", (n) => times(cpuRatio(cells, "rpc", "logged", n))],
    ["RPC ÷ lean", (n) => times(cpuRatio(cells, "rpc", "lean", n))],
    ["the rules' floor ÷ lean", (n) => times(cpuRatio(cells, "rules", "lean", n))],
    ["llm-invoke's statement CPU ms/tx", (n) => ms(at("invoke", n)?.cpuMsPerTransaction)],
    ["floor WAL bytes/tx", (n) => fmt(at("floor", n)?.walBytesPerTransaction, 0)],
    ["floor with the attempt row WAL bytes/tx", (n) => fmt(at("logged", n)?.walBytesPerTransaction, 0)],
    ["RPC WAL bytes/tx", (n) => fmt(at("rpc", n)?.walBytesPerTransaction, 0)],
  ]);
  const cmd = (file: string, n: number) => `pgbench ${pgbenchArgs({ clients: n, threads: Math.min(n, 2), durationSec: cfg.durationSec, scriptPath: file, database: "<db>" }).join(" ")}`;
  return `
Both are driven by pgbench, PostgreSQL's own C load driver (${version}): one connection per client,
prepared statements (\`-M prepared\`), \`-T ${cfg.durationSec}\` per cell, at ${ns.join(", ")} connections on one hot
row (one quota group for the RPC, with limits that never bind, so every call is admitted and writes its
attempt row). Each cell ran ${cfg.rounds} time${cfg.rounds === 1 ? "" : "s"}, interleaved with the others in
rotated order; tps is the median round and a ratio is the median of the per-round ratios to the floor
measured in the same round.

**The measured window.** A new connection's first calls are slow: the backend loads the catalog entries and
plans of every function the RPC touches. A pooled production connection pays that once, not per request, so
each figure is taken in a window inside the run: from ${cfg.warmupSec} s after pgbench starts (every
connection open and warm) for ${cfg.windowSec} s, before pgbench stops. The admissions in the window are
counted as committed rows (audit rows for the floor, admitted attempt rows for the RPC) at its two ends;
tps = admissions / window, and CPU and WAL per transaction are the window's CPU and WAL divided by the same
admissions. pgbench's own tps over the whole run (warm-up included) is shown beside it.
**The lean exact admission** (\`bench_lean_admit\`, created in the part's database; not a path of the
gateway) is the least an exact admission of one model does in PostgreSQL, written the way the reservation
is written (one PL/pgSQL call with generic plans, on the gateway's own tables): it reads the model row by its
name, asks whether anyone is queued for the model, takes the best key and asks whether its group is cooling
down, locks the counter row, keeps the guarded sliding window as a log of admission rows (removes the
admissions that left it, writes one), updates the counter row and writes the attempt row. It has none of the classes, shares, spread,
budgets or the answer's quota. Beside it, the reserve RPC's cost is what those add; against the floor with
the attempt row, its own is what reading the configuration and keeping the window cost.
**The rules' floor** (\`bench_rules_admit\`) makes the lean admission's reads and writes without its window log, and
also those the reservation's rules need here: the caller's class, its daily budget row locked, the
model's shares with their owners' use in the group, the request counted in its class's share (the
interactive class keeps 20% of every model). It keeps none of the rules' arithmetic (its window is the
row's running sums): no reservation with the rules can cost less.
"llm-invoke's statement" is the call as the function sends it for a named request of a model with a fallback: \`call public.google_ai_reserve_call(...)\` with both models, the caller's request id (its claim is taken), the holder's reply_by, hold_until and id; the procedure commits the booking, then reads the quota its answer carries and waits for a flush covering it in a second transaction (its count covers both).

${tpsTable}
${overran ? `\n${overran} of ${all} windows closed after their pgbench run had ended (a slow machine): those include the run's last transactions and its disconnections.\n` : ""}
**PostgreSQL's cost per transaction**: CPU and WAL per admission (per transaction: every transaction
admits one request).

${costTable}

**Reproduce by hand.** The two tables, in any database (the bench uses a fresh copy of the migrated
schema):

${sqlBlock(TABLES)}

The floor script (\`floor.sql\`):

${sqlBlock(FLOOR_SCRIPT)}

The floor with the attempt row (\`floor-logged.sql\`):

${sqlBlock(LOGGED_SCRIPT)}

The lean exact admission (\`lean-admission.sql\`; a model \`${LEAN_MODEL}\` like \`${MODEL}\` below, served by
the same key, whose counter row one reservation made), and its function:

${sqlBlock(LEAN_SCRIPT)}

${sqlBlock(LEAN_FUNCTION)}

The rules' floor (\`rules-floor.sql\`; a model \`${RULES_MODEL}\` made as \`${LEAN_MODEL}\` is):

${sqlBlock(RULES_SCRIPT)}

${sqlBlock(RULES_FUNCTIONS)}

The RPC script (\`reserve.sql\`; a model \`${MODEL}\` with limits that never bind, served by one active key —
the part sets them with \`bench/lib/db.ts\`'s \`setModel\` and \`setKeys\`):

${sqlBlock(RPC_SCRIPT)}

Then, for each connection count N (threads: \`min(N, 2)\`), with PGHOST/PGPORT/PGUSER pointing at the server
(fsync and synchronous_commit on, the defaults):

\`\`\`sh
${ns.map((n) => ["floor", "floor-logged", "lean-admission", "rules-floor", "reserve"].map((f) => cmd(`${f}.sql`, n)).join("\n")).join("\n")}
\`\`\`

Then compare their \`tps\` lines (below: how, and how to read the CPU).
`;
}

type Counted = Awaited<ReturnType<typeof counted>>;

/** The counted instructions of one variant over another's. */
const countRatio = (c: NonNullable<Counted>, v: Variant, over: Variant) => c.perTransaction[v] / c.perTransaction[over];

function countedHeadline(c: Counted) {
  return c === null || c.error ? [] : [{
    figure: "Instructions per admission, counted (callgrind, one connection; the same on any machine): the reserve RPC " +
      "÷ the lean exact admission and ÷ the floor with the attempt row; the rules' floor ÷ the lean admission",
    value: `RPC ${times(countRatio(c, "rpc", "lean"))}, ${times(countRatio(c, "rpc", "logged"))} ` +
      `(${fmt(c.perTransaction.rpc / 1000, 0)}k against ${fmt(c.perTransaction.lean / 1000, 0)}k and ` +
      `${fmt(c.perTransaction.logged / 1000, 0)}k); the rules' floor ${times(countRatio(c, "rules", "lean"))}`,
  }];
}

function countedCheck(c: Counted) {
  const short = Object.entries(c?.admitted ?? {}).filter(([v, [n, admitted]]) =>
    admitted !== n || !(c!.perTransaction[v as Variant] > 0));
  return {
    name: "instructions counted (valgrind installed), over admitted transactions only",
    ok: c !== null && !c.error && short.length === 0,
    detail: c === null ? "valgrind is not installed (apt-get install valgrind), or the server is not ours (DATABASE_URL)"
      : c.error ? `the count failed: ${c.error}`
      : short.map(([v, [n, admitted]]) => `${v}: ${admitted} of ${n} admitted`).join("; ") || "every counted transaction admitted",
  };
}

function countedMarkdown(cfg: RpcFloorConfig, c: Counted): string {
  if (c === null || c.error) return `\n\n**Instructions:** not counted (${c?.error ?? "valgrind is not installed"}).`;
  const [n1, n2] = cfg.countedTransactions;
  const rows = (Object.keys(c.perTransaction) as Variant[]).map((v) =>
    [v, fmt(c.perTransaction[v] / 1000, 1), times(countRatio(c, v, "logged")), times(countRatio(c, v, "lean"))]);
  return `

**Instructions per transaction, counted** (\`bench/lib/callgrind.ts\`): the CPU figures above move by up to a
third between runs on a shared machine; a count does not. The part's database is served again under
valgrind's callgrind and each script runs on one connection for ${n1}, then ${n2} transactions; a
transaction's count is the two backends' difference over ${n2 - n1}. User space only (not the commit's flush).

${table(["variant", "k instructions / tx", "÷ floor with the attempt row", "÷ lean admission"], rows, ["l", "r", "r", "r"])}`;
}
