// Part 9: mixed load. The bot (interactive) and several notebooks (batch, one of which floods the
// queue with a burst) ask for one model at `demandFactor`× its RPM for several whole windows, all in
// WAIT mode. Two designs side by side, each on its own database, driven by the same arrival schedule:
//   queue    llm-invoke itself, over HTTP: a refusal in WAIT mode takes a ticket and names the turn;
//            the request sleeps in the function until then and asks again with its ticket;
//   polling  the rule before the queue (bench/lib/polling-policy.ts through wait-client.ts), at the
//            RPC level: sleep until the named reopening plus jitter, then race everyone for it.
// Reported per class: waits, who lost a turn, starvation; among the batch notebooks: Jain's fairness
// index of their admissions; for the window: utilisation of every saturated 61 s span and the worst
// span (never above the limit); and what admission costs: reserve calls and attempt rows per
// admitted request.
import { setMaxListeners } from "node:events";
import type { FunctionsServer } from "../scripts/serve-functions.ts";
import { connect, type Sql } from "../shared/db/migrate.ts";
import { startGoogleSimulator, type GoogleSimulator } from "../shared/google-sim/server.ts";
import { sleep } from "./lib/clock.ts";
import { type BenchDb, type BenchServer, rpcCalls, setKeys, setModel, trackFunctions } from "./lib/db.ts";
import { BENCH_SIM_KEY, BENCH_SIM_KEY_VAR, bookings, postInvoke, serveLlmInvoke, waitInLlmInvoke } from "./lib/llm-invoke.ts";
import { fmt, pct, table, type Check, type PartResult } from "./lib/report.ts";
import { roundSummary, summarize } from "./lib/stats.ts";
import { countBetween } from "./lib/wait-analysis.ts";
import { driveArrivals, type TryResult, waitForAdmission, type WaitRecord } from "./lib/wait-client.ts";

export interface BatchClient {
  name: string;
  /** Share of the batch demand that arrives steadily. */
  weight: number;
  /** Requests it sends at once when the demand starts (a notebook's flood). */
  burst: number;
}

export interface MixedLoadConfig {
  limitRpm: number;
  /** Arrivals per minute over the limit (3: three times what the window admits). */
  demandFactor: number;
  /** Share of the steady demand that is the bot's (interactive). */
  interactiveShare: number;
  batchClients: BatchClient[];
  /** Length of the demand in whole windows after the first (full run). */
  wholeWindows: number;
  /** Smoke run: demand for this long instead. */
  smokeDurationMs?: number;
  maxWaitMs: number;
  jitterMs: number;
  connections: number;
}

type Design = "queue" | "polling";
type PriorityClass = "interactive" | "batch";

interface Arrival {
  id: number;
  at: number;
  caller: string;
  priority: PriorityClass;
}

interface Outcome {
  arrival: Arrival;
  /** When the database booked it (queue), or when the admitting call returned (polling). */
  admittedAt: number | null;
  /** When the call that admitted it was sent (the booking time for the queue). */
  admitCallAt: number | null;
  /** The request waited (a ticket, or a poll) and was refused later: it lost its turn. */
  lostTurn: boolean;
  refusedAt: number | null;
  cutOff: boolean;
  /** Reserve calls it made (polling; the queue's are counted by the database, in total). */
  calls: number;
  error?: string;
}

const TOKENS = 100;
const PROMPT = "Wait for your turn, then answer in one word.";
const HUGE = 2_000_000_000;
/** The gateway's window: 60 s and the default minute guard. */
const WINDOW_MS = 61_000;
const MODELS: Record<Design, string> = { queue: "bench-mixed-queue", polling: "bench-mixed-polling" };

export async function runMixedLoad(bench: BenchServer, cfg: MixedLoadConfig, log: (s: string) => void): Promise<PartResult> {
  const dbs = {} as Record<Design, BenchDb>;
  let pool: Sql | undefined;
  let sim: GoogleSimulator | undefined;
  let fns: FunctionsServer | undefined;
  try {
    for (const design of ["queue", "polling"] as const) {
      const db = (dbs[design] = await bench.fresh(`mixed_${design}`));
      await setModel(db.sql, MODELS[design], { rpm: cfg.limitRpm, tpm: null, rpd: null });
      await setKeys(db.sql, [{ alias: "mixed", project: "proj-mixed", envVar: BENCH_SIM_KEY_VAR, models: [MODELS[design]] }]);
      await keepAdmissionTimes(db.sql);
    }
    // The queue: llm-invoke on its Deno port (the local Node proxy caps its socket pool), its reserve
    // calls counted by the database; the simulator answers at once.
    await trackFunctions(dbs.queue);
    sim = await startGoogleSimulator({ keys: { [BENCH_SIM_KEY]: "proj-mixed" }, models: { [MODELS.queue]: { rpm: HUGE, tpm: HUGE, rpd: HUGE } } });
    const fnOut: string[] = [];
    fns = await serveLlmInvoke({ dbUrl: dbs.queue.url, simUrl: sim.url, env: { LLM_INVOKE_MAX_WAIT_MS: String(cfg.maxWaitMs) }, log: fnOut, keep: 50 });
    const invokeUrl = `http://127.0.0.1:${fns.functions["llm-invoke"]!.port}/`;
    const probe = await postInvoke(invokeUrl, { model: MODELS.queue, prompt: PROMPT, mode: "NO_WAIT", request_id: "probe" });
    if (probe.status !== 200) throw new Error(`probe: HTTP ${probe.status} ${probe.body.slice(0, 200)} ${fnOut.slice(-5).join(" | ")}`);
    // A clean slate after the probe: its booking would hold a slot of the first window.
    for (const table of ["google_ai_attempts", "google_ai_admissions", "google_ai_usage_counters", "bench_admission_log"]) {
      await dbs.queue.sql.unsafe(`delete from public.${table}`);
    }
    const callsBefore = reserveCalls(await rpcCalls(dbs.queue));
    // The polling clients: the RPC over a pool of their own.
    pool = connect(dbs.polling.url, { max: cfg.connections, idle_timeout: 0 });
    await Promise.all([...Array(cfg.connections)].map(() => pool!`select 1`));

    const t0 = Date.now() + 2_000;
    const demandMs = cfg.smokeDurationMs ?? WINDOW_MS * (1 + cfg.wholeWindows);
    const arrivals = schedule(cfg, t0, demandMs);
    const stopAt = t0 + demandMs + Math.min(cfg.maxWaitMs, WINDOW_MS) + 2_000;
    log(
      `  limit ${cfg.limitRpm}/min, demand ${cfg.demandFactor}× for ${(demandMs / 1000).toFixed(0)} s: ${arrivals.length} requests ` +
        `(${arrivals.filter((a) => a.priority === "interactive").length} from the bot, batch: ` +
        `${cfg.batchClients.map((c) => `${c.name} ${arrivals.filter((a) => a.caller === c.name).length}`).join(", ")}), max wait ${cfg.maxWaitMs / 1000} s`,
    );

    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const stop = setTimeout(() => controller.abort(), stopAt - Date.now());
    const policy = { jitterMs: cfg.jitterMs, maxWaitMs: cfg.maxWaitMs, signal: controller.signal };
    const times = arrivals.map((a) => a.at);
    const [queueRecords, pollingRecords] = await Promise.all([
      driveArrivals(times, (id) => {
        const a = arrivals[id]!;
        const body = { model: MODELS.queue, prompt: PROMPT, max_wait_ms: cfg.maxWaitMs, priority: a.priority, request_id: `mixed-${id}` };
        return waitInLlmInvoke(id, invokeUrl, body, { signal: controller.signal, caller: a.caller });
      }),
      driveArrivals(times, (id) => waitForAdmission(id, () => reserveOnce(pool!, arrivals[id]!), policy)),
    ]);
    clearTimeout(stop);
    await sleep(500); // finalizes run after the answers

    // The queue's admissions at the database's booking times (the answer arrives after Google's).
    const booked = await bookings(dbs.queue.sql, MODELS.queue);
    const queue = queueRecords.map((rec) => {
      const at = booked.get(`mixed-${rec.id}`)?.bookedAt?.getTime() ?? null;
      const admitted = rec.admittedAt !== null && at !== null;
      const error = rec.error ?? (rec.admittedAt !== null && at === null ? "answered 200 without a booking" : undefined);
      return outcome(arrivals[rec.id]!, { ...rec, admittedAt: admitted ? at : null, admitCallStartedAt: admitted ? at : null, ...(error ? { error } : {}) });
    });
    const polling = pollingRecords.map((rec) => outcome(arrivals[rec.id]!, rec));
    const queueCalls = reserveCalls(await rpcCalls(dbs.queue)) - callsBefore;

    const measured = { from: t0 + WINDOW_MS, to: t0 + demandMs };
    const results = {
      queue: await account(dbs.queue.sql, "queue", queue, queueCalls, cfg, measured),
      polling: await account(dbs.polling.sql, "polling", polling, polling.reduce((s, o) => s + o.calls, 0), cfg, measured),
    };
    for (const r of Object.values(results)) {
      log(
        `  ${r.design.padEnd(7)} admitted ${r.admitted}/${r.requests}; spans ${r.spans.count}: min ${pct(r.spans.minUtilisation)} worst ${r.spans.worst}/${cfg.limitRpm}; ` +
          `bot wait p95 ${fmt(r.byClass.interactive.waitMs.p95 / 1000, 1)} s; Jain ${fmt(r.jain, 3)}; ` +
          `calls/admitted ${fmt(r.callsPerAdmitted, 2)}, rows/admitted ${fmt(r.rowsPerAdmitted, 2)}, own rows ${fmt(r.rowsPerAdmittedRequestItself, 2)}; ` +
          `starved ${r.starved}; inversions ${r.inversions}; errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ""}`,
      );
    }
    const q = results.queue;
    const smoke = cfg.smokeDurationMs !== undefined;
    const checks: Check[] = [
      { name: "mixed load: the queue never admits more than the limit in any 61 s span", ok: q.spans.worst <= cfg.limitRpm && q.errors === 0, detail: `worst span ${q.spans.worst}/${cfg.limitRpm}, errors ${q.errors}` },
      { name: "mixed load: no request starved while its window had room", ok: q.starved === 0, detail: `${q.starved}` },
      { name: "mixed load: the bot never lost its turn", ok: q.byClass.interactive.lostTurn === 0, detail: `${q.byClass.interactive.lostTurn}` },
      { name: "mixed load: no notebook admitted while the bot waited", ok: q.inversions === 0, detail: `${q.inversions} (polling: ${results.polling.inversions})` },
    ];
    if (!smoke) {
      checks.push(
        { name: "mixed load: utilisation of every saturated 61 s span >= 97%", ok: q.spans.minUtilisation >= 0.97, detail: pct(q.spans.minUtilisation) },
        { name: "mixed load: Jain's fairness index among batch notebooks >= 0.95", ok: q.jain >= 0.95, detail: fmt(q.jain, 3) },
        {
          name: "mixed load: an admitted request leaves one attempt row (the refusal that queued it writes none)",
          ok: q.rowsPerAdmittedRequestItself <= 1,
          detail: `${fmt(q.rowsPerAdmittedRequestItself, 2)} rows (polling: ${fmt(results.polling.rowsPerAdmittedRequestItself, 2)})`,
        },
      );
    }
    return {
      id: "mixed-load",
      title: "Mixed load: the bot and the notebooks in WAIT mode at 3× demand, queue against polling",
      data: { config: cfg, results },
      markdown: markdown(cfg, results, arrivals.length),
      headline: [
        { figure: `Mixed load at ${cfg.demandFactor}×: the bot's wait p50 / p95 / max (queue; polling)`, value: `${secs(q.byClass.interactive.waitMs)}; ${secs(results.polling.byClass.interactive.waitMs)}` },
        { figure: "Mixed load: Jain's fairness among batch notebooks (queue; polling)", value: `${fmt(q.jain, 3)}; ${fmt(results.polling.jain, 3)}` },
        { figure: "Mixed load: reserve calls / attempt rows per admitted request (queue; polling)", value: `${fmt(q.callsPerAdmitted, 2)} / ${fmt(q.rowsPerAdmitted, 2)}; ${fmt(results.polling.callsPerAdmitted, 2)} / ${fmt(results.polling.rowsPerAdmitted, 2)}` },
      ],
      checks,
    };
  } finally {
    await fns?.close();
    await sim?.close();
    await pool?.end({ timeout: 5 });
    for (const db of Object.values(dbs)) await db.drop();
  }
}

/**
 * The window's admission rows leave it after 61 s (the next booking expires them), so the benchmark's
 * own database copies each one as it is written: the spans below are counted on the database's own
 * admission times, every one of them.
 */
async function keepAdmissionTimes(sql: Sql): Promise<void> {
  await sql.unsafe(`
    create table public.bench_admission_log (model text not null, admitted_at timestamptz not null);
    create function public.bench_log_admission() returns trigger language plpgsql set search_path = '' as $$
    begin
      insert into public.bench_admission_log (model, admitted_at) values (new.model, new.admitted_at);
      return new;
    end $$;
    create trigger bench_log_admission after insert on public.google_ai_admissions
      for each row execute function public.bench_log_admission();`);
}

/** The bot and the steady notebooks evenly spaced; each flooding notebook's burst at the start. */
function schedule(cfg: MixedLoadConfig, t0: number, demandMs: number): Arrival[] {
  const perMs = (cfg.limitRpm * cfg.demandFactor) / 60_000;
  const streams: { caller: string; priority: PriorityClass; rate: number; burst: number }[] = [
    { caller: "bot", priority: "interactive", rate: perMs * cfg.interactiveShare, burst: 0 },
  ];
  const weights = cfg.batchClients.reduce((s, c) => s + c.weight, 0);
  for (const c of cfg.batchClients) {
    streams.push({ caller: c.name, priority: "batch", rate: (perMs * (1 - cfg.interactiveShare) * c.weight) / weights, burst: c.burst });
  }
  const out: Omit<Arrival, "id">[] = [];
  for (const s of streams) {
    for (let i = 0; i < s.burst; i++) out.push({ at: t0, caller: s.caller, priority: s.priority });
    if (s.rate > 0) for (let t = t0 + 1 / s.rate / 2; t < t0 + demandMs; t += 1 / s.rate) out.push({ at: Math.round(t), caller: s.caller, priority: s.priority });
  }
  return out.sort((a, b) => a.at - b.at).map((a, id) => ({ ...a, id }));
}

/** One polling call: the reservation RPC, as the request's caller and class, without a ticket. */
async function reserveOnce(sql: Sql, a: Arrival): Promise<TryResult> {
  const [row] = await sql<{ r: { ok: boolean; retry_after_ms?: number | null; recheck_after_ms?: number | null } }[]>`
    select public.google_ai_reserve(p_model => ${MODELS.polling}, p_estimated_tokens => ${TOKENS}, p_caller => ${a.caller},
      p_request_id => ${`mixed-${a.id}`}, p_priority => ${a.priority}) as r`;
  const r = row!.r;
  return r.ok ? { ok: true } : { ok: false, retryAfterMs: r.retry_after_ms ?? null, recheckAfterMs: r.recheck_after_ms ?? null };
}

function outcome(arrival: Arrival, rec: WaitRecord): Outcome {
  return {
    arrival,
    admittedAt: rec.admittedAt,
    admitCallAt: rec.admitCallStartedAt,
    lostTurn: rec.gaveUpAt !== null && rec.waitedMs > 0,
    refusedAt: rec.gaveUpAt,
    cutOff: rec.cutOff,
    calls: rec.calls,
    ...(rec.error === undefined ? {} : { error: rec.error }),
  };
}

/** Calls of the reservation entries, by the database's own count (pg_stat_user_functions). */
const reserveCalls = (calls: Record<string, number>) =>
  Object.entries(calls).filter(([name]) => name.startsWith("google_ai_reserve")).reduce((s, [, n]) => s + n, 0);

interface ClassFigures {
  requests: number;
  admitted: number;
  /** Answered at once: its turn lay beyond its wait when it asked. */
  refusedAtOnce: number;
  lostTurn: number;
  waitMs: ReturnType<typeof summarize>;
}

interface DesignResult {
  design: Design;
  requests: number;
  admitted: number;
  errors: number;
  firstError?: string;
  byClass: Record<PriorityClass, ClassFigures>;
  batchAdmitted: Record<string, number>;
  jain: number;
  spans: { count: number; minUtilisation: number; worst: number; lowestSpanEndsAfterStartMs: number; counts: number[] };
  perCaller: Record<string, { admitted: number; refusedAtOnce: number; lostTurn: number }>;
  starved: number;
  inversions: number;
  calls: number;
  attemptRows: number;
  callsPerAdmitted: number;
  rowsPerAdmitted: number;
  rowsPerAdmittedRequestItself: number;
}

async function account(
  sql: Sql,
  design: Design,
  outcomes: Outcome[],
  calls: number,
  cfg: MixedLoadConfig,
  measured: { from: number; to: number },
): Promise<DesignResult> {
  // Admission times are the database's own (when each booking was written), so the spans are exact.
  const booked = await sql<{ admitted_at: Date }[]>`
    select a.admitted_at from public.bench_admission_log a where a.model = ${MODELS[design]} order by 1`;
  const times = booked.map((b) => b.admitted_at.getTime());
  const [{ rows }] = await sql<{ rows: number }[]>`
    select count(*)::int as rows from public.google_ai_attempts where model = ${MODELS[design]}`;
  const admitted = outcomes.filter((o) => o.admittedAt !== null);
  const [{ ownRows }] = await sql<{ ownRows: number }[]>`
    select count(*)::int as "ownRows" from public.google_ai_attempts
    where model = ${MODELS[design]} and request_id = any(${sql.array(admitted.map((o) => `mixed-${o.arrival.id}`))}::text[])`;
  const byClass = {} as Record<PriorityClass, ClassFigures>;
  for (const c of ["interactive", "batch"] as const) {
    const mine = outcomes.filter((o) => o.arrival.priority === c);
    byClass[c] = {
      requests: mine.length,
      admitted: mine.filter((o) => o.admittedAt !== null).length,
      refusedAtOnce: mine.filter((o) => o.refusedAt !== null && !o.lostTurn).length,
      lostTurn: mine.filter((o) => o.lostTurn).length,
      waitMs: roundSummary(summarize(mine.filter((o) => o.admittedAt !== null).map((o) => o.admittedAt! - o.arrival.at)), 0),
    };
  }
  // Fairness among the notebooks while all of them had requests waiting: admissions in the measured span.
  const batchAdmitted: Record<string, number> = {};
  for (const c of cfg.batchClients) {
    batchAdmitted[c.name] = admitted.filter((o) => o.arrival.caller === c.name && o.admittedAt! >= measured.from && o.admittedAt! <= measured.to).length;
  }
  const inSpan = (end: number) => countBetween(times, end - WINDOW_MS, end);
  let worst = 0;
  for (const t of times) worst = Math.max(worst, inSpan(t));
  let minUtilisation = Infinity;
  let lowestSpanEnd = NaN;
  let count = 0;
  const spanCounts: number[] = [];
  for (let end = measured.from + WINDOW_MS; end <= measured.to; end += 1_000) {
    spanCounts.push(inSpan(end));
    if (inSpan(end) / cfg.limitRpm < minUtilisation) {
      minUtilisation = inSpan(end) / cfg.limitRpm;
      lowestSpanEnd = end;
    }
    count++;
  }
  const perCaller: Record<string, { admitted: number; refusedAtOnce: number; lostTurn: number }> = {};
  for (const o of outcomes) {
    const c = (perCaller[o.arrival.caller] ??= { admitted: 0, refusedAtOnce: 0, lostTurn: 0 });
    if (o.admittedAt !== null) c.admitted++;
    else if (o.lostTurn) c.lostTurn++;
    else if (o.refusedAt !== null) c.refusedAtOnce++;
  }
  // Starved: gave up (or lost its turn) although the window had room for a whole second while it waited.
  const starved = outcomes.filter((o) => {
    if (o.refusedAt === null) return false;
    for (let t = o.arrival.at + 1_000; t + 1_000 <= o.refusedAt; t += 1_000) {
      if (inSpan(t) < cfg.limitRpm && inSpan(t + 1_000) < cfg.limitRpm) return true;
    }
    return false;
  }).length;
  // Priority inversions: a notebook admitted while the bot had a request waiting (it had arrived before
  // the notebook's admitting call was sent, and was admitted, or refused, only after that call returned).
  const botWaiting = outcomes.filter((o) => o.arrival.priority === "interactive");
  // A second's margin either side: at an opening many slots come free at once, and a notebook's call
  // may return a few milliseconds before the bot's, both served by the same opening.
  const inversions = admitted.filter((b) =>
    b.arrival.priority === "batch" &&
    botWaiting.some((i) => i.arrival.at < b.admitCallAt! - 1_000 && (i.admittedAt ?? i.refusedAt ?? Infinity) > b.admittedAt! + 1_000)
  ).length;
  const errors = outcomes.filter((o) => o.error !== undefined);
  return {
    design,
    requests: outcomes.length,
    admitted: admitted.length,
    errors: errors.length,
    ...(errors[0] ? { firstError: errors[0].error } : {}),
    byClass,
    batchAdmitted,
    jain: jain(Object.values(batchAdmitted)),
    spans: { count, minUtilisation: count === 0 ? NaN : minUtilisation, worst, lowestSpanEndsAfterStartMs: lowestSpanEnd - measured.from + WINDOW_MS, counts: spanCounts },
    perCaller,
    starved,
    inversions,
    calls,
    attemptRows: rows,
    callsPerAdmitted: calls / Math.max(1, admitted.length),
    rowsPerAdmitted: rows / Math.max(1, admitted.length),
    rowsPerAdmittedRequestItself: ownRows / Math.max(1, admitted.length),
  };
}

/** Jain's fairness index: 1 when every client got the same, 1/n when one got everything. */
export function jain(xs: number[]): number {
  const sum = xs.reduce((s, x) => s + x, 0);
  const squares = xs.reduce((s, x) => s + x * x, 0);
  return squares === 0 ? NaN : (sum * sum) / (xs.length * squares);
}

const secs = (s: { p50: number; p95: number; max: number }) =>
  `${fmt(s.p50 / 1000, 1)} / ${fmt(s.p95 / 1000, 1)} / ${fmt(s.max / 1000, 1)} s`;

function markdown(cfg: MixedLoadConfig, results: Record<Design, DesignResult>, requests: number): string {
  const rs = [results.queue, results.polling];
  const label = (d: Design) => (d === "queue" ? "queue (llm-invoke's admission)" : "polling (before the queue)");
  const flood = cfg.batchClients.filter((c) => c.burst > 0).map((c) => `${c.name} sends ${c.burst} at once`).join(", ");
  return [
    `${requests} WAIT requests for one model with a limit of ${cfg.limitRpm} per minute, arriving at ${cfg.demandFactor}× that: ` +
      `the bot (interactive, ${pct(cfg.interactiveShare, 0)} of the steady demand) and ${cfg.batchClients.length} notebooks (batch; ${flood || "no burst"}). ` +
      `max wait ${cfg.maxWaitMs / 1000} s. The same schedule drives both designs at once, each on its own database: the queue ` +
      `through llm-invoke over HTTP (one WAIT request each, \`x-caller\` naming the client, \`priority\` its class; admission times ` +
      `are the database's bookings, reserve calls its own count in \`pg_stat_user_functions\`), polling at the RPC level ` +
      `(\`bench/lib/wait-client.ts\`). Spans: every 61 s span (the gateway's window) ending each second ` +
      `of the saturated period; "starved": refused although the window had room for a whole second while it waited; ` +
      `"lost its turn": waited, then refused.`,
    "",
    table(
      ["design", "class", "requests", "admitted", "answered at once", "lost its turn", "wait p50 / p95 / max"],
      rs.flatMap((r) =>
        (["interactive", "batch"] as const).map((c) => [
          label(r.design),
          c,
          r.byClass[c].requests,
          r.byClass[c].admitted,
          r.byClass[c].refusedAtOnce,
          r.byClass[c].lostTurn,
          secs(r.byClass[c].waitMs),
        ])
      ),
      ["l", "l", "r", "r", "r", "r", "r"],
    ),
    "",
    table(
      ["design", "61 s spans", "lowest utilisation", "worst span", "starved", "notebook admitted while the bot waited", "batch admissions per notebook", "Jain", "reserve calls / admitted", "attempt rows / admitted", "an admitted request's own rows"],
      rs.map((r) => [
        label(r.design),
        r.spans.count,
        pct(r.spans.minUtilisation),
        `${r.spans.worst}/${cfg.limitRpm}`,
        r.starved,
        r.inversions,
        Object.entries(r.batchAdmitted).map(([k, v]) => `${k} ${v}`).join(", "),
        fmt(r.jain, 3),
        fmt(r.callsPerAdmitted, 2),
        fmt(r.rowsPerAdmitted, 2),
        fmt(r.rowsPerAdmittedRequestItself, 2),
      ]),
      ["l", "r", "r", "r", "r", "r", "l", "r", "r", "r", "r"],
    ),
    "",
    "Reserve calls and attempt rows per admitted request count everything (the requests answered at once included) " +
      "over the requests admitted: at 3× demand about two thirds of the requests cannot be served within their wait, and " +
      "each is answered and logged once, so no design that logs every answer goes below about 3 here. \"An admitted " +
      "request's own\" counts only the rows of the admitted requests: 1 each in the queue (the refusal that queued it writes none).",
  ].join("\n");
}
