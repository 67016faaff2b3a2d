// Part 9: mixed load. The bot (interactive) and several notebooks (batch, one of which floods the
// queue with a burst) ask for one model at `demandFactor`× its RPM for several whole windows, all in
// WAIT mode. Two designs side by side on the same PostgreSQL, each on its own model and counters,
// driven by the same arrival schedule:
//   queue    llm-invoke's admission as it is: a refusal in WAIT mode takes a ticket and names the
//            turn; the caller sleeps until then and calls again with its ticket (admission.ts's
//            loop at the RPC level, with its own wait rule and answer parser);
//   polling  the rule before the queue (bench/lib/polling-policy.ts): sleep until the named
//            reopening plus jitter, then race everyone for it.
// Reported per class: waits, who lost a turn, starvation; among the batch notebooks: Jain's fairness
// index of their admissions; for the window: utilisation of every saturated 61 s span and the worst
// span (never above the limit); and what admission costs: reserve calls and attempt rows per
// admitted request.
import { setMaxListeners } from "node:events";
import { connect, type Sql } from "../shared/db/migrate.ts";
import { parseReserveResult } from "../supabase/functions/llm-invoke/store/pg-store.ts";
import type { Refusal } from "../supabase/functions/llm-invoke/contract.ts";
import { nextTurn, waitLeftForDatabase } from "../supabase/functions/llm-invoke/attempt/wait-policy.ts";
import { sleep } from "./lib/clock.ts";
import { setKeys, setModel, type BenchServer } from "./lib/db.ts";
import { decideWait } from "./lib/polling-policy.ts";
import { fmt, pct, table, type Check, type PartResult } from "./lib/report.ts";
import { roundSummary, summarize } from "./lib/stats.ts";
import { countBetween } from "./lib/wait-analysis.ts";
import { abortableSleep } from "./lib/wait-client.ts";

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
  admittedAt: number | null;
  /** When the call that admitted it was sent. */
  admitCallAt: number | null;
  /** The request was told to wait (a ticket, or a poll) and was refused later: it lost its turn. */
  lostTurn: boolean;
  refusedAt: number | null;
  cutOff: boolean;
  calls: number;
  error?: string;
}

const TOKENS = 100;
/** The gateway's window: 60 s and the default minute guard. */
const WINDOW_MS = 61_000;
const MODELS: Record<Design, string> = { queue: "bench-mixed-queue", polling: "bench-mixed-polling" };

export async function runMixedLoad(bench: BenchServer, cfg: MixedLoadConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("mixed");
  const pools: Record<Design, Sql> = {
    queue: connect(db.url, { max: cfg.connections, idle_timeout: 0 }),
    polling: connect(db.url, { max: cfg.connections, idle_timeout: 0 }),
  };
  try {
    for (const model of Object.values(MODELS)) await setModel(db.sql, model, { rpm: cfg.limitRpm, tpm: null, rpd: null });
    await setKeys(db.sql, [{ alias: "mixed", project: "proj-mixed", models: Object.values(MODELS) }]);
    await keepAdmissionTimes(db.sql);
    await Promise.all(Object.values(pools).flatMap((sql) => [...Array(cfg.connections)].map(() => sql`select 1`)));

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
    const [queue, polling] = await Promise.all([
      drive(arrivals, (a) => waitingRequest(pools.queue, a, queueRule(cfg.maxWaitMs), controller.signal)),
      drive(arrivals, (a) => waitingRequest(pools.polling, a, pollingRule(cfg), controller.signal)),
    ]);
    clearTimeout(stop);

    const measured = { from: t0 + WINDOW_MS, to: t0 + demandMs };
    const results = {
      queue: await account(db.sql, "queue", queue, cfg, measured),
      polling: await account(db.sql, "polling", polling, cfg, measured),
    };
    for (const r of Object.values(results)) {
      log(
        `  ${r.design.padEnd(7)} admitted ${r.admitted}/${r.requests}; spans ${r.spans.count}: min ${pct(r.spans.minUtilisation)} worst ${r.spans.worst}/${cfg.limitRpm}; ` +
          `bot wait p95 ${fmt(r.byClass.interactive.waitMs.p95 / 1000, 1)} s; Jain ${fmt(r.jain, 3)}; ` +
          `calls/admitted ${fmt(r.callsPerAdmitted, 2)}, rows/admitted ${fmt(r.rowsPerAdmitted, 2)}, own ${fmt(r.callsPerAdmittedRequestItself, 2)}/${fmt(r.rowsPerAdmittedRequestItself, 2)}; ` +
          `starved ${r.starved}; inversions ${r.inversions}`,
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
          detail: `${fmt(q.rowsPerAdmittedRequestItself, 2)} rows, ${fmt(q.callsPerAdmittedRequestItself, 2)} reserve calls ` +
            `(polling: ${fmt(results.polling.rowsPerAdmittedRequestItself, 2)} rows, ${fmt(results.polling.callsPerAdmittedRequestItself, 2)} calls)`,
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
    await Promise.all(Object.values(pools).map((sql) => sql.end({ timeout: 5 })));
    await db.drop();
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

async function drive(arrivals: Arrival[], start: (a: Arrival) => Promise<Outcome>): Promise<Outcome[]> {
  const running: Promise<Outcome>[] = [];
  for (const a of arrivals) {
    const delay = a.at - Date.now();
    if (delay > 0) await sleep(delay);
    running.push(start(a));
  }
  return Promise.all(running);
}

/** How a design waits: what its calls tell the database, and what it does with a refusal. */
interface WaitRule {
  model: string;
  /** The queue's arguments (its ticket, the wait left), or null for a caller that only polls. */
  ask(waitedMs: number, ticket: string | null): { ticket: string | null; waitLeftMs: number } | null;
  next(refusal: Refusal, waitedMs: number): { wait: false } | { wait: true; sleepMs: number; ticket?: string };
}

/** admission.ts at the RPC level: a WAIT refusal names the turn; sleep until then and call with the ticket. */
function queueRule(maxWaitMs: number): WaitRule {
  return {
    model: MODELS.queue,
    ask: (waitedMs, ticket) => ({ ticket, waitLeftMs: waitLeftForDatabase(maxWaitMs - waitedMs) }),
    next: (refusal, waitedMs) => nextTurn(refusal, maxWaitMs - waitedMs),
  };
}

/** The rule before the queue: sleep until the named reopening plus jitter, then race for it. */
function pollingRule(cfg: MixedLoadConfig): WaitRule {
  return {
    model: MODELS.polling,
    ask: () => null,
    next: (refusal, waitedMs) =>
      decideWait({
        retryAfterMs: refusal.retryAfterMs,
        recheckAfterMs: refusal.recheckAfterMs,
        remainingMs: cfg.maxWaitMs - waitedMs,
        jitterMs: Math.floor(Math.random() * cfg.jitterMs),
      }),
  };
}

/** One WAIT request: reserve, and while refused, sleep as the rule says and reserve again. */
async function waitingRequest(sql: Sql, a: Arrival, rule: WaitRule, signal: AbortSignal): Promise<Outcome> {
  const out: Outcome = { arrival: a, admittedAt: null, admitCallAt: null, lostTurn: false, refusedAt: null, cutOff: false, calls: 0 };
  let ticket: string | null = null;
  let waited = 0;
  try {
    for (;;) {
      const sent = Date.now();
      const queue = rule.ask(waited, ticket);
      const [row] = await sql<{ r: unknown }[]>`
        select public.google_ai_reserve(p_model => ${rule.model}, p_estimated_tokens => ${TOKENS}, p_caller => ${a.caller},
          p_request_id => ${`mixed-${a.id}`}, p_priority => ${a.priority},
          p_queue_ticket => ${queue?.ticket ?? null}::uuid, p_wait_left_ms => ${queue?.waitLeftMs ?? 0}::integer) as r`;
      out.calls++;
      const r = parseReserveResult(row!.r);
      if (r.ok) {
        out.admittedAt = Date.now();
        out.admitCallAt = sent;
        return out;
      }
      const decision = rule.next(r, waited);
      if (!decision.wait) {
        out.refusedAt = Date.now();
        out.lostTurn = waited > 0;
        return out;
      }
      ticket = decision.ticket ?? null;
      if (!(await abortableSleep(decision.sleepMs, signal))) {
        out.cutOff = true;
        return out;
      }
      waited += decision.sleepMs;
    }
  } catch (error) {
    out.error = error instanceof Error ? error.message : String(error);
    return out;
  }
}

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
  callsPerAdmittedRequestItself: number;
  rowsPerAdmittedRequestItself: number;
}

async function account(
  sql: Sql,
  design: Design,
  outcomes: Outcome[],
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
  const calls = outcomes.reduce((s, o) => s + o.calls, 0);
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
    callsPerAdmittedRequestItself: admitted.reduce((s, o) => s + o.calls, 0) / Math.max(1, admitted.length),
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
      `max wait ${cfg.maxWaitMs / 1000} s. The same schedule drives both designs at once, each on its own model, at the RPC level ` +
      `(llm-invoke's own answer parser and wait rule for the queue). Spans: every 61 s span (the gateway's window) ending each second ` +
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
      ["design", "61 s spans", "lowest utilisation", "worst span", "starved", "notebook admitted while the bot waited", "batch admissions per notebook", "Jain", "reserve calls / admitted", "attempt rows / admitted", "an admitted request's own calls / rows"],
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
        `${fmt(r.callsPerAdmittedRequestItself, 2)} / ${fmt(r.rowsPerAdmittedRequestItself, 2)}`,
      ]),
      ["l", "r", "r", "r", "r", "r", "l", "r", "r", "r", "r"],
    ),
    "",
    "Reserve calls and attempt rows per admitted request count everything (the requests answered at once included) " +
      "over the requests admitted: at 3× demand about two thirds of the requests cannot be served within their wait, and " +
      "each is answered and logged once, so no design that logs every answer goes below about 3 here. \"An admitted " +
      "request's own\" counts only what the admitted requests did: 1 call when admitted at once, 2 when it waited for its " +
      "turn (the call that queued it and the call at its turn), and 1 attempt row (the refusal that queued it writes none).",
  ].join("\n");
}
