// Part 1d: one quota group's ceiling. Admissions per second on one hot counter row at 8 and 32
// connections, by the entry the database's llm-invoke sends to reserve (the CALL of
// public.google_ai_reserve_call where the database has it, else the single statement older revisions
// sent: google_ai_reserve_models in a materialized CTE with the answer's quota and the cooldown's cause),
// over postgres.js as llm-invoke sends it, beside rate-limiter-flexible's RateLimiterPostgres consume() on
// one key (its own driver, pg), in rotated rounds on warm connections, with PostgreSQL's CPU per
// admission from the kernel's accounting: what the machine's cores would allow at that cost. Where the
// database has google_ai_reserve_calls, the entry llm-invoke sends for reservations of one caller and chain
// that meet in a worker is measured too ("batch"): each connection a worker, each call BATCH of them.
import { availableParallelism } from "node:os";
import { closeClients, HUGE, openClients, setKeys, setModel, UNBOUNDED, type BenchServer } from "./lib/db.ts";
import { closedLoop, rotatedRounds, type LoadResult } from "./lib/load.ts";
import { postmasterPid, serverCpuSeconds } from "./lib/pg-cpu.ts";
import { createRlflex, RLFLEX_TABLE, type RlflexHandle } from "./lib/rlflex.ts";
import { median } from "./lib/stats.ts";
import { fmt, pct, table, times, type PartResult } from "./lib/report.ts";
import type { Sql } from "../shared/db/migrate.ts";

export interface HotRowConfig {
  connections: number[];
  /** Each cell runs this many times, interleaved (rotated order); a rate is the median round. */
  rounds: number;
  warmupMs: number;
  durationMs: number;
}

type Variant = "entry" | "batch" | "rlflex";

/**
 * Reservations per call of the batch entry: the median batch, counted by reservation, that llm-invoke's
 * worker made at c=16 in part 4 (gateway overhead) when this cell was written (a worker's calls of one
 * caller and chain that met while one of theirs was being made: store/pg-store.ts).
 */
export const BATCH = 8;

const MODEL = "bench-hot";
/** The chain's second model, as llm-invoke sends a model with its fallback (never reached: MODEL always books). */
const FALLBACK = "bench-hot-fallback";
const CALLER = "bench-hot";
/** Calls per connection before any round: a new backend's first call costs it 100-200 ms (its caches). */
const WARM_CALLS = 3;

/** google_ai_reserve_models' named arguments as llm-invoke passes them for a named request of the service caller ($1: its request id). */
const RESERVE_ARGS = `p_models => array['${MODEL}', '${FALLBACK}']::text[], p_estimated_tokens => 10, p_caller => '${CALLER}',
  p_token_hash => null, p_request_id => $1, p_exclude_key_ids => '{}'::uuid[], p_attempt => 1, p_wait_ms => 0,
  p_metadata => '{}'::jsonb, p_idempotent => true, p_priority => null, p_queue_ticket => null::uuid, p_wait_left_ms => 0,
  p_reply_by => now() + interval '20 seconds', p_hold_until => now() + interval '6 minutes', p_holder => gen_random_uuid(),
  p_output_tokens => null::integer[])`;

/** The entry llm-invoke sends since the reservation commits before its flush (85_reserve_call.sql): one CALL, alone. */
const CALL_ENTRY = `call public.google_ai_reserve_call(${RESERVE_ARGS}`;

/** The entry for reservations that met (85_reserve_call.sql): $1, a JSON array of google_ai_reservation records. */
const BATCH_ENTRY = "call public.google_ai_reserve_calls(p_calls => $1::text::jsonb)";

/** What llm-invoke sent before (its store/pg-store.ts at 4da7385): one statement, one transaction. */
const STATEMENT_ENTRY = `with reserved as materialized (select public.google_ai_reserve_models(${RESERVE_ARGS} as r)
select reserved.r - 'quota' as o_reservation,
       coalesce(reserved.r -> 'quota', public.google_ai_answer_quota(p_answer => reserved.r, p_model => '${MODEL}',
         p_exclude_key_ids => '{}'::uuid[])) as o_quota,
       case when reserved.r ->> 'limit' = 'cooldown'
            then public.google_ai_cooldown_cause(p_model => coalesce(reserved.r ->> 'model', '${MODEL}')) end as o_cause
from reserved`;

/** The entry this database's llm-invoke uses, the procedure where it exists, and whether it books reservations that met together. */
type Entry = { kind: "call" | "statement"; text: string; batches: boolean };

async function entryOf(sql: Sql): Promise<Entry> {
  const [{ call, batches }] = await sql<{ call: boolean; batches: boolean }[]>`
    select bool_or(p.proname = 'google_ai_reserve_call') as call, bool_or(p.proname = 'google_ai_reserve_calls') as batches
    from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.prokind = 'p'`;
  return call ? { kind: "call", text: CALL_ENTRY, batches: batches === true } : { kind: "statement", text: STATEMENT_ENTRY, batches: false };
}

/** One reservation by the entry, prepared as postgres.js prepares llm-invoke's; "admitted" when it booked. */
async function reserve(c: Sql, entry: Entry, requestId: string): Promise<string> {
  const [row] = await c.unsafe<{ o_reservation: { ok: boolean; limit?: string } }[]>(entry.text, [requestId], { prepare: true });
  return row?.o_reservation.ok ? "admitted" : `refused:${row?.o_reservation.limit}`;
}

/**
 * BATCH reservations in one call of the batch entry, each with its own request id and holder, as llm-invoke's
 * store sends them; one the database answers {"alone": true} is made again by the single entry, as the store
 * does. "admitted" when every one booked.
 */
async function reserveBatch(c: Sql, entry: Entry, requestId: string): Promise<string> {
  const now = Date.now();
  const calls = Array.from({ length: BATCH }, (_, i) => ({
    models: [MODEL, FALLBACK], estimated_tokens: 10, caller: CALLER, token_hash: null, request_id: `${requestId}-${i}`,
    exclude_key_ids: [], attempt: 1, wait_ms: 0, metadata: {}, idempotent: true, priority: null, queue_ticket: null,
    wait_left_ms: 0, reply_by: new Date(now + 20_000).toISOString(), hold_until: new Date(now + 360_000).toISOString(),
    holder: crypto.randomUUID(), output_tokens: null,
  }));
  const [row] = await c.unsafe<{ o_answers: { alone?: true; o_reservation?: { ok: boolean; limit?: string } }[] }[]>(
    BATCH_ENTRY, [JSON.stringify(calls)], { prepare: true });
  const outcomes = await Promise.all((row?.o_answers ?? []).map((a, i) =>
    a.alone ? reserve(c, entry, `${requestId}-${i}`) : a.o_reservation?.ok ? "admitted" : `refused:${a.o_reservation?.limit}`));
  return outcomes.length === BATCH && outcomes.every((o) => o === "admitted") ? "admitted" : outcomes.find((o) => o !== "admitted") ?? "no answer";
}

/** Admissions so far: the entry's admitted attempt rows, or the limiter key's points (the round's own key, stored behind its prefix). */
async function admissions(sql: Sql, v: Variant, key: string): Promise<number> {
  const [row] = v === "rlflex"
    ? await sql.unsafe<{ n: string }[]>(`select coalesce(max(points), 0)::text as n from public.${RLFLEX_TABLE} where key like '%:' || $1`, [key])
    : await sql<{ n: string }[]>`select count(*)::text as n from public.google_ai_attempts where caller = ${CALLER} and status = 'reserved'`;
  return Number(row!.n);
}

interface RoundFigures {
  /** The round's calls (one admission each, BATCH of the batch entry's). */
  result: Omit<LoadResult, "samples">;
  /** PostgreSQL's CPU seconds over the round (warm-up included), null where unreadable. */
  cpuSeconds: number | null;
  /** Admissions the round wrote (attempt rows or points): every call's, if none was refused or lost. */
  admitted: number;
  /** This process's CPU seconds over the round (the clients that drive it share PostgreSQL's cores), and the round's. */
  clientCpuSeconds: number;
  wallSeconds: number;
}

type Cell = ReturnType<typeof cellOf>;

export async function runHotRow(bench: BenchServer, cfg: HotRowConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("hot_row");
  let clients: Sql[] = [];
  let rl: RlflexHandle | undefined;
  try {
    for (const model of [MODEL, FALLBACK]) await setModel(db.sql, model, UNBOUNDED);
    await setKeys(db.sql, [{ alias: "hot", project: "proj-hot", models: [MODEL, FALLBACK] }]);
    const entry = await entryOf(db.sql);
    const variants: Variant[] = entry.batches ? ["entry", "batch", "rlflex"] : ["entry", "rlflex"];
    const postmaster = await postmasterPid(db.sql);
    const cores = availableParallelism();
    log(`  entry: ${entry.kind === "call" ? "call public.google_ai_reserve_call" : "the single statement (google_ai_reserve_models)"}; ` +
      `${cores} cores; fsync=${bench.settings.fsync}, synchronous_commit=${bench.settings.synchronous_commit}`);
    clients = await openClients(db.url, Math.max(...cfg.connections));
    let warmed = 0;
    const cells: Cell[] = [];
    for (const n of cfg.connections) {
      const cellClients = clients.slice(0, n);
      // Every backend warm before any round: connections opened now pay their first calls here.
      await Promise.all(cellClients.slice(warmed).map(async (c, i) => {
        for (let k = 0; k < WARM_CALLS; k++) await reserve(c, entry, `warm-${n}-${i}-${k}`);
        for (let k = 0; entry.batches && k < WARM_CALLS; k++) await reserveBatch(c, entry, `warm-batch-${n}-${i}-${k}`);
      }));
      warmed = Math.max(warmed, n);
      rl = await createRlflex(db.url, n, HUGE);
      for (let k = 0; k < WARM_CALLS; k++) await Promise.all(Array.from({ length: n }, () => rl!.tryOnce("hot-warm")));
      const figures = await rotatedRounds<Variant, RoundFigures>(variants, cfg.rounds, async (v, r) => {
        // rate-limiter-flexible: a key of its own per round, so its points are that round's admissions (within its 60 s).
        const key = `hot-${n}-${r}`;
        const before = await admissions(db.sql, v, key);
        const cpu0 = postmaster === undefined ? null : serverCpuSeconds(postmaster);
        const [client0, wall0] = [process.cpuUsage(), performance.now()];
        const { samples: _, ...result } = await closedLoop({
          clients: cellClients,
          warmupMs: cfg.warmupMs,
          durationMs: cfg.durationMs,
          call: async (c, w, seq) => v === "entry" ? await reserve(c, entry, `hot-${n}-${r}-${w}-${seq}`)
            : v === "batch" ? await reserveBatch(c, entry, `hot-${n}-${r}-${w}-${seq}`)
            : (await rl!.tryOnce(key)).ok ? "admitted" : "refused",
        });
        const cpu1 = postmaster === undefined ? null : serverCpuSeconds(postmaster);
        const client = process.cpuUsage(client0);
        const f = {
          result, cpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, admitted: (await admissions(db.sql, v, key)) - before,
          clientCpuSeconds: (client.user + client.system) / 1e6, wallSeconds: (performance.now() - wall0) / 1000,
        };
        const per = perCall(v);
        log(`  ${String(n).padStart(3)} conn  round ${r + 1}  ${v.padEnd(6)} ${String(Math.round(result.callsPerSecond * per)).padStart(6)} admissions/s` +
          (f.cpuSeconds !== null ? `  ${fmt((f.cpuSeconds * 1000) / (result.totalCalls * per), 3)} ms CPU each` : "") +
          `  p50 ${fmt(result.latencyMs.p50)} p99 ${fmt(result.latencyMs.p99)} ms` +
          (result.errors ? `  ERRORS ${result.errors}: ${result.firstError}` : ""));
        return f;
      });
      await rl.close();
      rl = undefined;
      cells.push(...variants.map((v) => cellOf(v, n, figures, cores)));
    }

    const all = cells.flatMap((c) => c.rounds.map((f) => ({ c, f })));
    const broken = all.filter(({ f }) => f.result.errors > 0 || Object.keys(f.result.outcomes).some((o) => o !== "admitted"));
    const inexact = all.filter(({ c, f }) => f.admitted !== f.result.totalCalls * perCall(c.variant));
    const describe = ({ c, f }: { c: Cell; f: RoundFigures }) =>
      `${c.variant} at ${c.connections}: ${f.result.totalCalls} calls, ${f.result.errors} errors (${f.result.firstError ?? "none"}), ` +
      `outcomes ${JSON.stringify(f.result.outcomes)}, ${f.admitted} admissions written (${perCall(c.variant)} a call)`;
    return {
      id: "hot-row",
      title: "One quota group's ceiling: admissions per second on one hot row, by llm-invoke's entry, beside rate-limiter-flexible",
      data: { config: cfg, cores, entry: entry.kind, entryText: entry.text, cpuMeasured: postmaster !== undefined, cells },
      markdown: markdown(cfg, cells, entry, cores),
      headline: headline(cells, entry),
      checks: [
        {
          name: "hot-row cells ran without errors, every call admitted",
          ok: broken.length === 0,
          detail: broken.length === 0 ? `${all.length} rounds, 0 errors` : broken.slice(0, 3).map(describe).join("; "),
        },
        {
          name: "hot-row counts are exact: one admitted attempt row (or one point) per reservation",
          ok: inexact.length === 0,
          detail: inexact.length === 0
            ? `${all.length} rounds, ${all.reduce((s, { c, f }) => s + f.result.totalCalls * perCall(c.variant), 0)} reservations, admissions = reservations in each`
            : inexact.slice(0, 3).map(describe).join("; "),
        },
      ],
    };
  } finally {
    await rl?.close();
    await closeClients(clients);
    await db.close();
  }
}

/** Admissions one call of the variant makes. */
const perCall = (v: Variant) => (v === "batch" ? BATCH : 1);

/** One variant at one connection count, over its rounds. */
function cellOf(v: Variant, n: number, figures: Map<Variant, RoundFigures[]>, cores: number) {
  const rounds = figures.get(v)!;
  const per = perCall(v);
  const admissions = rounds.reduce((s, f) => s + f.result.totalCalls * per, 0);
  const cpu = rounds.every((f) => f.cpuSeconds !== null) ? rounds.reduce((s, f) => s + f.cpuSeconds!, 0) : null;
  const cpuMs = cpu === null || admissions === 0 ? null : (cpu * 1000) / admissions;
  const rate = median(rounds.map((f) => f.result.callsPerSecond * per));
  const rlflex = figures.get("rlflex")!;
  // The cores the driving clients left PostgreSQL, over the rounds.
  const clientCores = rounds.reduce((s, f) => s + f.clientCpuSeconds, 0) / rounds.reduce((s, f) => s + f.wallSeconds, 0);
  // The share of the rate `onCores` cores allow at that CPU per admission.
  const reached = (onCores: number) => (cpuMs === null ? null : rate / ((onCores * 1000) / cpuMs));
  return {
    variant: v,
    connections: n,
    rounds,
    /** Median round (calls started in the measured window, per second). */
    admissionsPerSecond: rate,
    /** The entry's rate ÷ rate-limiter-flexible's, median of the rounds' (each pair in the same round); null for it. */
    toRlflex: v === "rlflex" ? null : median(rounds.map((f, r) => (f.result.callsPerSecond * per) / rlflex[r]!.result.callsPerSecond)),
    /** PostgreSQL's CPU (the whole server) over the rounds, warm-up included, per admission. */
    cpuMsPerAdmission: cpuMs,
    /** Admissions a second if PostgreSQL had every core at that CPU per admission, and the share of it reached. */
    cpuAllows: cpuMs === null ? null : (cores * 1000) / cpuMs,
    ofCpuAllows: reached(cores),
    /** The cores this process's clients kept busy, and the share reached of what the cores they left allow at that CPU. */
    clientCores,
    ofCpuLeftAllows: reached(cores - clientCores),
    /** p50 of a call (of the batch entry: of its BATCH reservations together). */
    latencyMs: median(rounds.map((f) => f.result.latencyMs.p50)),
  };
}

const get = (cells: Cell[], v: Variant, n: number) => cells.find((c) => c.variant === v && c.connections === n);

function headline(cells: Cell[], entry: Entry) {
  const ns = [...new Set(cells.map((c) => c.connections))];
  const e = ns.map((n) => get(cells, "entry", n));
  const r = ns.map((n) => get(cells, "rlflex", n));
  const b = ns.map((n) => get(cells, "batch", n));
  return [{
    figure: `One hot row, admissions/s at ${ns.join(" / ")} connections: llm-invoke's entry (${entry.kind === "call" ? "the CALL" : "the statement"}) ` +
      `/ rate-limiter-flexible consume(); the entry ÷ it; PostgreSQL CPU ms per admission of the entry; share of what that CPU allows ` +
      `on every core / on the cores the driving clients leave`,
    value: `${e.map((c) => fmt(c?.admissionsPerSecond, 0)).join(" / ")} / ${r.map((c) => fmt(c?.admissionsPerSecond, 0)).join(" / ")}; ` +
      `${e.map((c) => times(c?.toRlflex)).join(" / ")}; ${e.map((c) => fmt(c?.cpuMsPerAdmission, 3)).join(" / ")} ms; ` +
      `${e.map((c) => pct(c?.ofCpuAllows, 0)).join(" / ")} / ${e.map((c) => pct(c?.ofCpuLeftAllows, 0)).join(" / ")}`,
  }, ...(entry.batches ? [{
    figure: `The same, reservations that met in a worker (google_ai_reserve_calls, ${BATCH} a call): admissions/s at ${ns.join(" / ")} ` +
      `connections; ÷ rate-limiter-flexible; PostgreSQL CPU ms per admission; share of what that CPU allows`,
    value: `${b.map((c) => fmt(c?.admissionsPerSecond, 0)).join(" / ")}; ${b.map((c) => times(c?.toRlflex)).join(" / ")}; ` +
      `${b.map((c) => fmt(c?.cpuMsPerAdmission, 3)).join(" / ")} ms; ${b.map((c) => pct(c?.ofCpuAllows, 0)).join(" / ")}`,
  }] : [])];
}

function markdown(cfg: HotRowConfig, cells: Cell[], entry: Entry, cores: number): string {
  const label = (v: Variant) => v === "entry"
    ? (entry.kind === "call" ? "llm-invoke's entry: `call public.google_ai_reserve_call(...)`" : "llm-invoke's entry: the single statement")
    : v === "batch" ? `llm-invoke's entry for reservations that met: \`call public.google_ai_reserve_calls(...)\`, ${BATCH} a call`
    : "rate-limiter-flexible `consume()`";
  const rows = cells.map((c) => [
    label(c.variant), c.connections, fmt(c.admissionsPerSecond, 0),
    c.rounds.map((f) => fmt(f.result.callsPerSecond * perCall(c.variant), 0)).join(", "),
    times(c.toRlflex), fmt(c.latencyMs), fmt(c.cpuMsPerAdmission, 3), fmt(c.cpuAllows, 0), pct(c.ofCpuAllows, 0),
    fmt(c.clientCores, 2), pct(c.ofCpuLeftAllows, 0),
  ]);
  return `
Closed loop on warm connections, ${cfg.rounds} round(s) of ${cfg.durationMs / 1000} s after ${cfg.warmupMs / 1000} s of warm-up per cell, in
rotated order; a rate is the median round. ${cores} cores.${entry.batches ? ` The batch entry's p50 is a call's: its ${BATCH} reservations answered together.` : ""}

${table(["variant", "connections", "admissions/s", "rounds", "÷ rate-limiter-flexible (same round)", "p50 ms", "PostgreSQL CPU ms / admission", `admissions/s ${cores} cores allow at that CPU`, "reached",
    "cores the clients used", "reached of what the cores they left allow"],
    rows, ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"])}

The entry, as sent (\`$1\`: a request id per call; the model \`${MODEL}\` with limits that never bind, and its fallback, served by one key):

\`\`\`sql
${entry.text}
\`\`\`
${entry.batches ? `
Reservations that met (\`$1\`: a JSON array of ${BATCH} \`google_ai_reservation\` records with the same arguments, each its own request id
and holder; one answered \`{"alone": true}\` is made again by the entry above, as llm-invoke's store does). ${BATCH}: the median batch,
counted by reservation, that llm-invoke's worker made at c=16 in part 4 when this cell was written. Each connection stands for a
worker whose callers of one caller and chain meet:

\`\`\`sql
${BATCH_ENTRY}
\`\`\`
` : ""}`;
}
