// WAIT mode at 3× demand: the bot (interactive) and several notebooks (batch, one of which floods
// the queue with a burst) ask at `demandFactor`× the RPM for several whole windows, through
// llm-invoke over HTTP: a refusal in WAIT mode takes a ticket and names the turn; the request sleeps
// in the function until then and asks again with its ticket. Three models take the arrivals at the
// same time, each with its own Google project and key and the same limit: "ideal" the bot's arrivals
// alone (its wait is only that for the next free slot), "queue only" every arrival with admissions
// not spread and no share, "paced" every arrival with admissions spread one per interval while requests
// wait and a share that keeps the bot's demand for the interactive class (a burst that fits the window
// goes at once while nobody waits: the share is a person's room then). Reported per side: the bot's waits; on the shared sides, per class
// waits, who lost a turn, starvation, Jain's fairness index and turns taken past a waiting caller among the notebooks, the utilisation of
// every saturated 61 s span and the worst span (never above the limit); what admission costs:
// reserve calls and attempt rows per admitted request. `runs` repeats the part (a full run: once), each run
// checked on its own. In the first run the peers take the same arrivals on the same Postgres, polling
// (bench/lib/wait-client.ts): rate-limiter-flexible in several child processes and a naive
// read-then-write limiter, each on its own key; every limiter's admissions are counted per calendar
// minute (Google's window) and charted.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { connect, type Sql } from "../shared/db/migrate.ts";
import { startGoogleSimulator } from "../shared/google-sim/server.ts";
import { minuteOf, sleep } from "./lib/clock.ts";
import { type BenchServer, rpcCalls, setKeys, setModel, trackFunctions, UNBOUNDED } from "./lib/db.ts";
import { type Booking, bookings, probeInvoke, serveLlmInvoke, waitInLlmInvoke } from "./lib/llm-invoke.ts";
import { fairTurnBreaches } from "../shared/fair-turns.ts";
import { journalQueue, readQueueJournal, type TicketWrite, turnOrderAt } from "./lib/queue-journal.ts";
import { createNaiveTable, naiveLimiter } from "./lib/naive.ts";
import { fmt, pct, table, type Check, type PartResult } from "./lib/report.ts";
import { rlflexWaitStart } from "./lib/rlflex-procs.ts";
import { roundSummary, summarize } from "./lib/stats.ts";
import { cumulativeByMinute, waitChartSvg } from "./lib/svg.ts";
import { Teardown } from "./lib/teardown.ts";
import { analyse, countBetween, type LimiterResult } from "./lib/wait-analysis.ts";
import { abortAt, driveArrivals, waitForAdmission, type WaitRecord } from "./lib/wait-client.ts";

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
  /** Full runs of the part, one after the other (each reported and checked on its own). */
  runs?: number;
  /** Smoke run: demand for this long instead. */
  smokeDurationMs?: number;
  maxWaitMs: number;
  /** The peers' polling: up to this much jitter after the retry time their limiter named. */
  jitterMs: number;
  rlflexProcesses: number;
  /** The naive limiter's connections (rate-limiter-flexible's, spread over its processes). */
  connections: number;
  chartPath: string;
  /** Machine summary for the chart's subtitle. */
  machineLabel: string;
}

type PriorityClass = "interactive" | "batch";

interface Arrival {
  id: number;
  at: number;
  caller: string;
  priority: PriorityClass;
}

type Outcome = ReturnType<typeof outcomeOf>;

const PROMPT = "Wait for your turn, then answer in one word.";
/** The gateway's window: 60 s and the default minute guard. */
const WINDOW_MS = 61_000;

/** One model, its own Google project and key, taking one stream of the run's arrivals. */
interface Side {
  id: "paced" | "queue" | "ideal";
  label: string;
  model: string;
  /** The bot's arrivals only (the ideal), or every arrival. */
  botOnly: boolean;
  /** google_ai_model_limits.spread_burst (null: admissions not spread). */
  spreadBurst: number | null;
  /** The interactive class's share of the limit (0: no share row). */
  interactiveShare: number;
}

const SIDES: Side[] = [
  { id: "ideal", label: "ideal: the bot alone", model: "bench-mixed-ideal", botOnly: true, spreadBurst: null, interactiveShare: 0 },
  { id: "queue", label: "queue only: no spread, no share", model: "bench-mixed-queue", botOnly: false, spreadBurst: null, interactiveShare: 0 },
  { id: "paced", label: "paced: spread 1, interactive share 60% (the bot's demand)", model: "bench-mixed", botOnly: false, spreadBurst: 1, interactiveShare: 0.6 },
];

const simKey = (s: Side) => `bench-sim-key-${s.id}`;
const keyVar = (s: Side) => `GOOGLE_BENCH_SIM_KEY_${s.id.toUpperCase()}`;
const project = (s: Side) => `proj-mixed-${s.id}`;

type RunResult = Awaited<ReturnType<typeof runOnce>>;

export async function runMixedLoad(bench: BenchServer, cfg: MixedLoadConfig, log: (s: string) => void): Promise<PartResult> {
  const runs: RunResult[] = [];
  const runCount = Math.max(1, cfg.runs ?? 1);
  for (let i = 0; i < runCount; i++) {
    if (runCount > 1) log(`  run ${i + 1} of ${runCount}${i === 0 ? " (with the peers)" : ""}`);
    // The peers and the chart in the first run only: later runs repeat the gateway's sides.
    runs.push(await runOnce(bench, cfg, log, i === 0));
  }
  const smoke = cfg.smokeDurationMs !== undefined;
  const interval = WINDOW_MS / cfg.limitRpm;
  const checks: Check[] = [];
  runs.forEach((r, i) => {
    const n = runCount > 1 ? ` (run ${i + 1})` : "";
    const paced = r.sides.paced;
    const ideal = r.sides.ideal;
    const worst = Math.max(...SIDES.map((s) => r.sides[s.id].spans.worst));
    const errors = SIDES.reduce((sum, s) => sum + r.sides[s.id].errors, 0);
    checks.push(
      { name: `mixed load${n}: no side admits more than the limit in any 61 s span`, ok: worst <= cfg.limitRpm && errors === 0, detail: `worst span ${worst}/${cfg.limitRpm}, errors ${errors}` },
      { name: `mixed load${n}: no request starved while its window had room`, ok: SIDES.every((s) => r.sides[s.id].starved === 0), detail: SIDES.map((s) => `${s.id} ${r.sides[s.id].starved}`).join(", ") },
      { name: `mixed load${n}: the bot never lost its turn (paced)`, ok: paced.byClass.interactive.lostTurn === 0, detail: `${paced.byClass.interactive.lostTurn}` },
      { name: `mixed load${n}: no notebook admitted while the bot waited (paced)`, ok: paced.inversions === 0, detail: `${paced.inversions}` },
    );
    if (smoke) return;
    const p95 = paced.byClass.interactive.waitMs.p95;
    checks.push(
      {
        name: `mixed load${n}: the bot's p95 wait, paced, <= the ideal's p95 + one interval`,
        ok: p95 <= ideal.byClass.interactive.waitMs.p95 + interval,
        detail: `${fmt(p95 / 1000, 1)} s vs ${fmt(ideal.byClass.interactive.waitMs.p95 / 1000, 1)} + ${fmt(interval / 1000, 1)} s`,
      },
      { name: `mixed load${n}: the bot's p95 wait, paced, <= 4 intervals`, ok: p95 <= 4 * interval, detail: `${fmt(p95 / 1000, 1)} s vs ${fmt((4 * interval) / 1000, 1)} s` },
      { name: `mixed load${n}: the bot's requests all admitted (paced)`, ok: paced.byClass.interactive.admitted === paced.byClass.interactive.requests, detail: `${paced.byClass.interactive.admitted} of ${paced.byClass.interactive.requests}` },
      // (Spread slots are window / limit apart, so a 61 s span holds the whole limit only when no slot's
      // waiter woke late: one slot used a little late straddles the span's edge, and the next span has it.)
      {
        name: `mixed load${n}: every saturated 61 s span holds the limit, or one slot less (paced)`,
        ok: Math.round(paced.spans.minUtilisation * cfg.limitRpm) >= cfg.limitRpm - 1,
        detail: `${Math.round(paced.spans.minUtilisation * cfg.limitRpm)}/${cfg.limitRpm} (${pct(paced.spans.minUtilisation)})`,
      },
      { name: `mixed load${n}: Jain's fairness index among batch notebooks >= 0.95 (paced)`, ok: paced.jain >= 0.95, detail: fmt(paced.jain, 3) },
      {
        name: `mixed load${n}: an admitted request leaves one attempt row (every side)`,
        ok: SIDES.every((s) => r.sides[s.id].rowsPerAdmittedRequestItself <= 1),
        detail: SIDES.map((s) => `${s.id} ${fmt(r.sides[s.id].rowsPerAdmittedRequestItself, 2)}`).join(", "),
      },
    );
  });
  const first = runs[0]!;
  const last = runs[runs.length - 1]!;
  return {
    id: "mixed-load",
    title: "WAIT mode at 3× demand: the bot and the notebooks in llm-invoke's queue, against the peers (and the chart)",
    data: { config: { ...cfg, chartPath: undefined }, intervalMs: interval, runs },
    markdown:
      sidesMarkdown(cfg, runs, first.arrivals) + "\n\n" + markdown(cfg, last.sides.paced, last.callsPerAdmitted, first.arrivals) +
      "\n\n" + callersMarkdown(runs) +
      (first.limiters ? peersMarkdown(cfg, first.limiters, first.wholeMinutes.map((w) => Date.parse(w))) : ""),
    headline: [
      ...runs.map((r, i) => ({
        figure: `Mixed load at ${cfg.demandFactor}×${runCount > 1 ? `, run ${i + 1}` : ""}: the bot's wait p50 / p95 / max — ideal; queue only; paced`,
        value: SIDES.map((s) => secs(r.sides[s.id].byClass.interactive.waitMs)).join("; "),
      })),
      { figure: "Mixed load, paced: Jain's fairness among batch notebooks, per run", value: runs.map((r) => fmt(r.sides.paced.jain, 3)).join(", ") },
      { figure: "Mixed load, paced: turn breaches among batch notebooks (pairs / excess admissions), per run", value: runs.map((r) => turnBreaches(r.sides.paced)).join(", ") },
      { figure: "Mixed load, paced: reserve calls / attempt rows per admitted request", value: `${fmt(last.callsPerAdmitted, 2)} / ${fmt(last.sides.paced.rowsPerAdmitted, 2)}` },
      ...(first.limiters ?? []).map((r) => ({
        figure: `WAIT, same arrivals: ${r.label} — admitted per whole calendar minute / limit ${cfg.limitRpm}; over-admission (minutes above the limit)`,
        value: `${r.utilisation.map((u) => u.admitted).join(", ") || "—"}; ${r.overAdmission} (${r.windowsAboveLimit} of ${r.perWindow.length})`,
      })),
    ],
    checks,
  };
}

async function runOnce(bench: BenchServer, cfg: MixedLoadConfig, log: (s: string) => void, withPeers: boolean) {
  const teardown = new Teardown();
  try {
    const db = teardown.closes(await bench.fresh("mixed"));
    const naiveSql = teardown.add(connect(db.url, { max: cfg.connections, idle_timeout: 0 }), (sql) => sql.end({ timeout: 5 }));
    if (withPeers) {
      await createNaiveTable(db.sql);
      await Promise.all([...Array(cfg.connections)].map(() => naiveSql`select 1`));
    }
    for (const s of SIDES) await setSide(db.sql, s, cfg.limitRpm);
    await journalQueue(db.sql); // every ticket written, to tell afterwards who held which turn
    await setKeys(db.sql, SIDES.map((s) => ({ alias: `mixed-${s.id}`, project: project(s), envVar: keyVar(s), models: [s.model] })));
    // llm-invoke on its Deno port (the local Node proxy caps its socket pool), its reserve calls
    // counted by the database; the simulator answers at once.
    await trackFunctions(db);
    const sim = teardown.closes(await startGoogleSimulator({
      keys: Object.fromEntries(SIDES.map((s) => [simKey(s), project(s)])),
      models: Object.fromEntries(SIDES.map((s) => [s.model, UNBOUNDED])),
    }));
    const fnOut: string[] = [];
    const keys = Object.fromEntries(SIDES.map((s) => [keyVar(s), simKey(s)]));
    const env = { LLM_INVOKE_MAX_WAIT_MS: String(cfg.maxWaitMs), ...keys };
    const fns = teardown.closes(await serveLlmInvoke({ dbUrl: db.url, simUrl: sim.url, env, log: fnOut }));
    const invokeUrl = fns.url;
    for (const s of SIDES) {
      await probeInvoke(invokeUrl, { model: s.model, prompt: PROMPT, request_id: `probe-${s.id}` }, fnOut);
    }
    // A clean slate after the probes: their bookings would hold a slot of the first window.
    for (const table of ["google_ai_attempts", "google_ai_usage_counters"]) {
      await db.sql.unsafe(`delete from public.${table}`);
    }
    const callsBefore = reserveCalls(await rpcCalls(db));

    const t0 = Date.now() + (withPeers ? 8_000 : 2_000); // the peers' child processes need a moment
    const demandMs = cfg.smokeDurationMs ?? WINDOW_MS * (1 + cfg.wholeWindows);
    const arrivals = schedule(cfg, t0, demandMs);
    const times = arrivals.map((a) => a.at);
    const stopAt = t0 + demandMs + Math.min(cfg.maxWaitMs, WINDOW_MS) + 2_000;
    const wholeMinutes: number[] = [];
    for (let w = minuteOf(t0) + 60_000; w + 60_000 <= t0 + demandMs && cfg.smokeDurationMs === undefined; w += 60_000) wholeMinutes.push(w);
    // rate-limiter-flexible: the arrivals dealt round-robin to its processes.
    const procs = Math.max(1, cfg.rlflexProcesses);
    const rlflexTasks = Array.from({ length: procs }, (_, p) => {
      const ids = times.map((_, i) => i).filter((i) => i % procs === p);
      return {
        kind: "wait" as const,
        url: db.url,
        connections: Math.max(2, Math.ceil(cfg.connections / procs)),
        points: cfg.limitRpm,
        key: "rlflex-mixed",
        arrivals: ids.map((i) => times[i]!),
        ids,
        jitterMs: cfg.jitterMs,
        maxWaitMs: cfg.maxWaitMs,
        stopAt,
      };
    });
    const rlflexProcs = withPeers ? teardown.closes(await rlflexWaitStart(rlflexTasks)) : undefined;
    log(
      `  limit ${cfg.limitRpm}/min, demand ${cfg.demandFactor}× for ${(demandMs / 1000).toFixed(0)} s: ${arrivals.length} requests ` +
        `(${arrivals.filter((a) => a.priority === "interactive").length} from the bot, batch: ` +
        `${cfg.batchClients.map((c) => `${c.name} ${arrivals.filter((a) => a.caller === c.name).length}`).join(", ")}), max wait ${cfg.maxWaitMs / 1000} s`,
    );

    const run = abortAt(stopAt);
    const policy = { jitterMs: cfg.jitterMs, maxWaitMs: cfg.maxWaitMs, signal: run.signal };
    const naiveTry = naiveLimiter(naiveSql, "naive-mixed", cfg.limitRpm);
    const drive = (s: Side) => {
      const mine = arrivals.filter((a) => !s.botOnly || a.priority === "interactive");
      return driveArrivals(mine.map((a) => a.at), (i) => {
        const a = mine[i]!;
        const body = { model: s.model, prompt: PROMPT, max_wait_ms: cfg.maxWaitMs, priority: a.priority, request_id: `${s.id}-${a.id}` };
        return waitInLlmInvoke(a.id, invokeUrl, body, { signal: run.signal, caller: a.caller });
      });
    };
    const [sideRecords, naiveRecords, rlflexRecords] = await Promise.all([
      Promise.all(SIDES.map(drive)),
      withPeers ? driveArrivals(times, (id) => waitForAdmission(id, naiveTry, policy)) : Promise.resolve([]),
      rlflexProcs ? rlflexProcs.done() : Promise.resolve([]),
    ]);
    run.clear();
    await sleep(500); // finalizes run after the answers
    // The function's connections end here: a backend reports its function counts when it exits
    // (an idle one only every few seconds), so the count below is whole.
    await fns.close();
    await sleep(500);

    const calls = reserveCalls(await rpcCalls(db)) - callsBefore;
    const sides = {} as Record<Side["id"], Result>;
    const outcomesBySide = {} as Record<Side["id"], Outcome[]>;
    for (const [i, s] of SIDES.entries()) {
      const records = sideRecords[i]!;
      // Admissions at the database's booking times and windows (the answer arrives after Google's).
      const booked = await bookings(db.sql, s.model);
      outcomesBySide[s.id] = records.map((rec) => outcomeOf(rec, booked.get(`${s.id}-${rec.id}`), arrivals[rec.id]!));
    }
    // Reserve calls are the database's count for all three models together.
    const all = Object.values(outcomesBySide).flat();
    const admittedAll = all.filter((o) => o.admittedAt !== null).length;
    const refusedAtOnce = all.filter((o) => o.refusedAt !== null && !o.lostTurn).length;
    const lostTurns = all.filter((o) => o.lostTurn).length;
    const ownCallsPerAdmitted = (calls - refusedAtOnce - 2 * lostTurns) / Math.max(1, admittedAll);
    for (const s of SIDES) {
      sides[s.id] = await account(db.sql, s, outcomesBySide[s.id], cfg, { from: t0 + WINDOW_MS, to: t0 + demandMs });
      const q = sides[s.id];
      log(
        `  ${s.id.padEnd(6)} admitted ${q.admitted}/${q.requests}; spans ${q.spans.count}: min ${pct(q.spans.minUtilisation)} worst ${q.spans.worst}/${cfg.limitRpm}; ` +
          `bot wait p50/p95/max ${secs(q.byClass.interactive.waitMs)}; Jain ${fmt(q.jain, 3)}; turn breaches ${turnBreaches(q)}; own rows ${fmt(q.rowsPerAdmittedRequestItself, 2)}; ` +
          `starved ${q.starved}; inversions ${q.inversions}; errors ${q.errors}${q.firstError ? ` (${q.firstError})` : ""}`,
      );
    }

    const paced = SIDES.find((s) => s.id === "paced")!;
    const pacedRequests = await requestLog(db.sql, paced, outcomesBySide.paced, t0, { from: t0 + WINDOW_MS, to: t0 + demandMs });
    log(`  paced, per caller (in the measured span / admitted; refused at once; lost turns; lapsed tickets; mean wait): ` +
      Object.entries(pacedRequests.perCaller).map(([c, f]) =>
        `${c} ${f.inSpan}/${f.admitted}; ${f.refusedAtOnce}; ${f.lostTurn}; ${f.lapsed}; ${fmt(f.meanWaitMs / 1000, 1)} s`).join(" | "));

    let limiters: LimiterResult[] | null = null;
    if (withPeers) {
      const ours = sideRecords[SIDES.findIndex((s) => s.id === "paced")]!;
      limiters = [
        analyse("ours", "ours: llm-invoke paced (WAIT mode over HTTP)", ours, cfg, wholeMinutes, WINDOW_MS),
        analyse("rlflex", `rate-limiter-flexible RateLimiterPostgres, ${procs} processes`, rlflexRecords, cfg, wholeMinutes),
        analyse("naive", "naive read-then-write", naiveRecords, cfg, wholeMinutes),
      ];
      await writeChart(cfg, t0 - 2000, stopAt, times, { ours, rlflex: rlflexRecords, naive: naiveRecords }, procs);
    }
    return {
      sides,
      /** Reserve calls of the three sides together (the database counts per function, not per model). */
      calls,
      callsPerAdmitted: calls / Math.max(1, admittedAll),
      /**
       * Reserve calls of the three sides over their admitted requests, less one per request answered at
       * once and two per lost turn: at most what an admitted request costs on average, more when a lost
       * turn was asked again (the database counts calls per function, not per request).
       */
      ownCallsPerAdmitted,
      limiters,
      /** The paced side's requests one by one (fields: pacedRequests.fields) and per caller. */
      pacedRequests,
      arrivals: arrivals.length,
      startedAt: new Date(t0).toISOString(),
      wholeMinutes: wholeMinutes.map((w) => new Date(w).toISOString()),
    };
  } finally {
    await teardown.run();
  }
}

/**
 * A request's outcome by the database's booking (its time and window put in the waiter's record, whose
 * answer arrives after Google's).
 */
function outcomeOf(rec: WaitRecord, b: Booking | undefined, arrival: Arrival) {
  const at = b?.bookedAt?.getTime() ?? null;
  const error = rec.error ?? (rec.admittedAt !== null && at === null ? "answered 200 without a booking" : undefined);
  rec.admittedAt = rec.admitCallStartedAt = rec.admittedAt !== null ? at : null;
  rec.window = rec.admittedAt !== null ? b!.window!.getTime() : null;
  if (error !== undefined) rec.error = error;
  return {
    arrival,
    /** When the database booked it. */
    admittedAt: rec.admittedAt,
    /** It waited for its turn and was refused later: it lost its turn. */
    lostTurn: rec.gaveUpAt !== null && rec.waitedMs > 0,
    refusedAt: rec.gaveUpAt,
    cutOff: rec.cutOff,
    /** A refusal's cause, as the 429 names it. */
    cause: rec.cause,
    ...(error === undefined ? {} : { error }),
  };
}

const REQUEST_FIELDS = "id caller class arrived outcome at calls tickets turn place told last lapsed ahead due cause";

/**
 * A side's requests one by one (a line of REQUEST_FIELDS each; times in ms from the demand's start,
 * "-" for none), to tell afterwards how the turns went, and per caller. outcome: admitted, refused
 * (at once: no ticket, its turn lay beyond its wait), lost (held a ticket, then refused: it lost its
 * turn), cut (waiting when the run ended) or error; at: the booking (admitted) or the 429; calls:
 * reserve calls (a ticket written per refusal that queued it, and the answer); tickets: its ticket
 * writes (taken, then renewed each time it asked again and was told a later time); turn, place,
 * told: its first ticket's turn, place in line and the time the gateway named; last: the last time
 * named; lapsed: tickets that lapsed before it called (google_ai_queue_lapse); ahead, due: when it
 * was admitted, the live tickets of its class before it in turn order, and how many of them were due.
 */
async function requestLog(sql: Sql, side: Side, outcomes: Outcome[], t0: number, measured: { from: number; to: number }) {
  const journal = await readQueueJournal(sql, side.model);
  const classes = await sql<{ name: string; rank: number }[]>`select name, rank from public.google_ai_priority_classes`;
  const rank = new Map(classes.map((c) => [c.name, c.rank]));
  const writes = new Map<string, TicketWrite[]>();
  for (const w of journal) if (w.requestId !== null) writes.set(w.requestId, [...(writes.get(w.requestId) ?? []), w]);
  const ms = (t: number | null | undefined) => (t === null || t === undefined ? "-" : Math.round(t - t0));
  const windows = Math.max(1, Math.ceil((measured.to - measured.from) / WINDOW_MS));
  const callerFigures = () => ({ inSpan: 0, inSpanByWindow: new Array<number>(windows).fill(0), admitted: 0, refusedAtOnce: 0, lostTurn: 0,
    lapsed: 0, meanWaitMs: 0, callsPerRequest: 0, pastEarlierTurn: 0, pastDueTurn: 0 });
  const perCaller: Record<string, ReturnType<typeof callerFigures>> = {};
  const rows = outcomes.map((o) => {
    const id = `${side.id}-${o.arrival.id}`;
    const mine = writes.get(id) ?? [];
    const tickets = mine.filter((w) => w.op !== "D");
    const lapsed = mine.filter((w) => w.op === "D" && w.leaseUntil < w.at).length;
    const outcome = o.admittedAt !== null ? "admitted" : o.lostTurn ? "lost" : o.refusedAt !== null ? "refused" : o.cutOff ? "cut" : "error";
    const calls = tickets.length + (outcome === "cut" || outcome === "error" ? 0 : 1);
    const order = o.admittedAt === null ? null : turnOrderAt(journal, id, o.arrival.caller, rank.get(o.arrival.priority)!, o.admittedAt);
    const c = (perCaller[o.arrival.caller] ??= callerFigures());
    c.lapsed += lapsed;
    c.callsPerRequest += calls;
    if (outcome === "refused") c.refusedAtOnce++;
    if (outcome === "lost") c.lostTurn++;
    if (o.admittedAt !== null) {
      c.admitted++;
      c.meanWaitMs += o.admittedAt - o.arrival.at;
      if (o.admittedAt >= measured.from && o.admittedAt <= measured.to) {
        c.inSpan++;
        c.inSpanByWindow[Math.min(windows - 1, Math.floor((o.admittedAt - measured.from) / WINDOW_MS))]!++;
      }
      if (order!.ahead > 0) c.pastEarlierTurn++;
      if (order!.dueAhead > 0) c.pastDueTurn++;
    }
    const [first, last] = [tickets[0], tickets[tickets.length - 1]];
    return [o.arrival.id, o.arrival.caller, o.arrival.priority, ms(o.arrival.at), outcome, ms(o.admittedAt ?? o.refusedAt), calls, tickets.length,
      first?.turn ?? "-", first?.position ?? "-", ms(first?.expectedAt), ms(last?.expectedAt), lapsed, order?.ahead ?? "-", order?.dueAhead ?? "-",
      o.cause ?? "-"].join(" ");
  });
  for (const [caller, c] of Object.entries(perCaller)) {
    c.meanWaitMs = Math.round(c.meanWaitMs / Math.max(1, c.admitted));
    c.callsPerRequest = Number((c.callsPerRequest / outcomes.filter((o) => o.arrival.caller === caller).length).toFixed(2));
  }
  return { fields: REQUEST_FIELDS, rows, perCaller };
}

/** A side's model: the limit, its spread, and its shares set explicitly (the seed's defaults replaced). */
async function setSide(sql: Sql, s: Side, limitRpm: number): Promise<void> {
  await setModel(sql, s.model, { rpm: limitRpm, tpm: null, rpd: null });
  await sql`update public.google_ai_model_limits set spread_burst = ${s.spreadBurst} where model = ${s.model}`;
  await sql`delete from public.google_ai_quota_shares where model = ${s.model}`;
  if (s.interactiveShare > 0) {
    await sql`
      insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm, notes)
      values (${s.model}, 'interactive', ${Math.max(1, Math.floor(limitRpm * s.interactiveShare))}, 'bench: the bot''s share')`;
  }
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
  // The notebooks share one rate and phase, so their arrivals coincide, and those of one instant go out
  // in array order: a fixed order would always send the same notebook first, and a queue that serves
  // in arrival order would favour it. Each instant starts with the next notebook (the bot, its own
  // class, always first).
  const batch = streams.length - 1;
  const out: (Omit<Arrival, "id"> & { turn: number })[] = [];
  for (const [k, s] of streams.entries()) {
    const turn = (i: number) => (k === 0 ? 0 : 1 + ((k - 1 + batch - (i % batch)) % batch));
    for (let i = 0; i < s.burst; i++) out.push({ at: t0, caller: s.caller, priority: s.priority, turn: turn(0) });
    if (s.rate <= 0) continue;
    let i = 0;
    for (let t = t0 + 1 / s.rate / 2; t < t0 + demandMs; t += 1 / s.rate, i++) {
      out.push({ at: Math.round(t), caller: s.caller, priority: s.priority, turn: turn(i) });
    }
  }
  return out.sort((a, b) => a.at - b.at || a.turn - b.turn).map(({ turn: _turn, ...a }, id) => ({ ...a, id }));
}

/** Calls of the reservation entries, by the database's own count (pg_stat_user_functions). */
const reserveCalls = (calls: Record<string, number>) =>
  Object.entries(calls).filter(([name]) => name.startsWith("google_ai_reserve")).reduce((s, [, n]) => s + n, 0);

/** When each admission (times: sorted, ms) leaves the gateway's window: the first of its second on time,
 * the others of that second with its last. */
function ringLeaveTimes(times: number[]): number[] {
  const lastOfSecond = new Map<number, number>();
  for (const t of times) lastOfSecond.set(Math.floor(t / 1_000), t);
  return times.map((t, i) => {
    const second = Math.floor(t / 1_000);
    const first = i === 0 || Math.floor(times[i - 1] / 1_000) !== second;
    return (first ? t : lastOfSecond.get(second)!) + WINDOW_MS;
  });
}

type Result = Awaited<ReturnType<typeof account>>;

async function account(
  sql: Sql,
  side: Side,
  outcomes: Outcome[],
  cfg: MixedLoadConfig,
  measured: { from: number; to: number },
) {
  // Admission times are the database's own (when each booking was written), so the spans are exact.
  const booked = await sql<{ admitted_at: Date }[]>`
    select a.admitted_at from public.google_ai_attempts a where a.model = ${side.model} and a.admitted_at is not null
    order by 1`;
  const times = booked.map((b) => b.admitted_at.getTime());
  const [{ rows }] = await sql<{ rows: number }[]>`
    select count(*)::int as rows from public.google_ai_attempts where model = ${side.model}`;
  const admitted = outcomes.filter((o) => o.admittedAt !== null);
  const [{ ownRows }] = await sql<{ ownRows: number }[]>`
    select count(*)::int as "ownRows" from public.google_ai_attempts
    where model = ${side.model} and request_id = any(${sql.array(admitted.map((o) => `${side.id}-${o.arrival.id}`))}::text[])`;
  const classFigures = (c: PriorityClass) => {
    const mine = outcomes.filter((o) => o.arrival.priority === c);
    return {
      requests: mine.length,
      admitted: mine.filter((o) => o.admittedAt !== null).length,
      /** Answered at once: its turn lay beyond its wait when it asked. */
      refusedAtOnce: mine.filter((o) => o.refusedAt !== null && !o.lostTurn).length,
      lostTurn: mine.filter((o) => o.lostTurn).length,
      waitMs: roundSummary(summarize(mine.filter((o) => o.admittedAt !== null).map((o) => o.admittedAt! - o.arrival.at)), 0),
    };
  };
  const byClass = { interactive: classFigures("interactive"), batch: classFigures("batch") };
  // Fairness among the notebooks while all of them had requests waiting: admissions in the measured span.
  const batchAdmitted: Record<string, number> = {};
  for (const c of cfg.batchClients) {
    batchAdmitted[c.name] = admitted.filter((o) => o.arrival.caller === c.name && o.admittedAt! >= measured.from && o.admittedAt! <= measured.to).length;
  }
  const inSpan = (end: number) => countBetween(times, end - WINDOW_MS, end);
  let worst = 0;
  for (const t of times) worst = Math.max(worst, inSpan(t));
  // The saturated period's 61 s spans, one ending on each of its seconds, and the lowest of them.
  const spanEnds: number[] = [];
  for (let end = measured.from + WINDOW_MS; end <= measured.to; end += 1_000) spanEnds.push(end);
  const spanCounts = spanEnds.map(inSpan);
  const lowest = spanCounts.indexOf(Math.min(...spanCounts));
  // Starved: gave up (or lost its turn) although the window had room for a whole second while it waited.
  // A spread window hands out one slot per interval and is below the limit between two of them by
  // design: there, a slot is wasted when two intervals pass without an admission while the window has room.
  // Room is the request's own: for a notebook, the window less what the interactive share still keeps.
  // The window is the gateway's as documented (google_ai_ring_at): a second's first admission leaves it
  // on time, the others with that second's last, so a burst in one second is held up to a second longer
  // than the exact span above. Room the ring does not show yet is not room a waiter could have had.
  const interval = WINDOW_MS / cfg.limitRpm;
  const kept = side.interactiveShare > 0 ? Math.max(1, Math.floor(cfg.limitRpm * side.interactiveShare)) : 0;
  const botTimes = admitted.filter((o) => o.arrival.priority === "interactive").map((o) => o.admittedAt!).sort((a, b) => a - b);
  const leaves = ringLeaveTimes(times);
  const inRing = (t: number) => times.reduce((n, a, i) => n + (a <= t && leaves[i] > t ? 1 : 0), 0);
  const hasRoom = (t: number, priority: PriorityClass) =>
    inRing(t) + (priority === "batch" ? Math.max(0, kept - countBetween(botTimes, t - WINDOW_MS, t)) : 0) < cfg.limitRpm;
  const idleWithRoom = (from: number, to: number, priority: PriorityClass) =>
    times.some((t, i) => {
      const next = times[i + 1] ?? Infinity;
      const start = Math.max(t, from);
      const end = Math.min(next, to);
      return next - t > 2 * interval && end - start > 2 * interval && hasRoom(start + interval, priority);
    });
  const starved = outcomes.filter((o) => {
    if (o.refusedAt === null) return false;
    if (side.spreadBurst !== null) return idleWithRoom(o.arrival.at, o.refusedAt, o.arrival.priority);
    for (let t = o.arrival.at + 1_000; t + 1_000 <= o.refusedAt; t += 1_000) {
      if (hasRoom(t, o.arrival.priority) && hasRoom(t + 1_000, o.arrival.priority)) return true;
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
    botWaiting.some((i) => i.arrival.at < b.admittedAt! - 1_000 && (i.admittedAt ?? i.refusedAt ?? Infinity) > b.admittedAt! + 1_000)
  ).length;
  // Turns taken past a waiting caller (shared/fair-turns.ts), in line from its request's first ticket write.
  const writes = (side.botOnly ? [] : await readQueueJournal(sql, side.model)).filter((w) => w.requestId !== null);
  const firstTicket = new Map([...writes].reverse().map((w) => [w.requestId!, w.at]));
  const lastWrite = new Map(writes.map((w) => [w.requestId!, w.at]));
  const fairTurns = fairTurnBreaches(outcomes.map((o) => ({ caller: o.arrival.caller, priority: o.arrival.priority,
    queuedAt: firstTicket.get(`${side.id}-${o.arrival.id}`), admittedAt: o.admittedAt ?? undefined,
    endedAt: o.admittedAt ?? o.refusedAt ?? lastWrite.get(`${side.id}-${o.arrival.id}`) })));
  const errors = outcomes.filter((o) => o.error !== undefined);
  return {
    requests: outcomes.length,
    admitted: admitted.length,
    errors: errors.length,
    ...(errors[0] ? { firstError: errors[0].error } : {}),
    byClass,
    batchAdmitted,
    jain: jain(Object.values(batchAdmitted)),
    /** Pairs where one caller was admitted more than once more than another of its class that waited; the excess. */
    turnBreaches: { pairs: fairTurns.breaches.length, excess: fairTurns.excess },
    spans: {
      count: spanCounts.length,
      minUtilisation: lowest < 0 ? NaN : spanCounts[lowest]! / cfg.limitRpm,
      worst,
      lowestSpanEndsAfterStartMs: lowest < 0 ? NaN : spanEnds[lowest]! - measured.from + WINDOW_MS,
      counts: spanCounts,
    },
    starved,
    inversions,
    attemptRows: rows,
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

const turnBreaches = (q: { turnBreaches: { pairs: number; excess: number } }) => `${q.turnBreaches.pairs} / ${q.turnBreaches.excess}`;

const secs = (s: { p50: number; p95: number; max: number }) =>
  `${fmt(s.p50 / 1000, 1)} / ${fmt(s.p95 / 1000, 1)} / ${fmt(s.max / 1000, 1)} s`;

function sidesMarkdown(cfg: MixedLoadConfig, runs: RunResult[], requests: number): string {
  const interval = WINDOW_MS / cfg.limitRpm;
  const rows = runs.flatMap((r, i) =>
    SIDES.map((s) => {
      const q = r.sides[s.id];
      return [
        runs.length > 1 ? String(i + 1) : "",
        s.label,
        `${q.byClass.interactive.admitted} / ${q.byClass.interactive.requests}`,
        secs(q.byClass.interactive.waitMs),
        fmt(q.byClass.interactive.waitMs.p95 / interval, 1),
        s.botOnly ? "—" : fmt(q.jain, 3),
        s.botOnly ? "—" : turnBreaches(q),
        s.botOnly ? "—" : pct(q.spans.minUtilisation),
        `${q.spans.worst}/${cfg.limitRpm}`,
        fmt(q.rowsPerAdmittedRequestItself, 2),
      ];
    })
  );
  return [
    `**The bot's wait, three ways at once.** Each run drives three models at the same time, each with its own Google ` +
      `project and key, the same limit of ${cfg.limitRpm} per minute, through the same llm-invoke and simulator. ` +
      `*Ideal* takes the bot's arrivals alone: its wait is only that for the next free slot, as if batch did not exist. ` +
      `*Queue only* takes every arrival with admissions not spread and no share kept, so a flood fills the window at once; ` +
      `*paced* takes the same arrivals with admissions spread (\`spread_burst\` = 1: one per interval, window / limit = ` +
      `${fmt(interval / 1000, 2)} s) and ${pct(SIDES.find((s) => s.id === "paced")!.interactiveShare, 0)} of the limit kept for the interactive class, ` +
      `so a slot comes free every interval and the bot takes the next one. ` +
      `${requests} requests per run; the wait is from arrival to the database's booking. Turn breaches: pairs of notebooks where, while one ` +
      `had a request in line, the other was admitted more than once more than it, and the admissions beyond that one (fair turns: 0 / 0).`,
    "",
    table(
      ["run", "side", "bot admitted", "bot wait p50 / p95 / max", "p95 in intervals", "Jain (notebooks)", "turn breaches (pairs / excess)", "lowest span utilisation", "worst span", "own rows / admitted"],
      rows,
      ["r", "l", "r", "r", "r", "r", "r", "r", "r", "r"],
    ),
    "",
    `Reserve calls per admitted request, at most (three sides, less one call for each request answered at once and two for each lost ` +
      `turn; a lost turn that asked again cost more, counted here against the admitted): ${runs.map((r) => fmt(r.ownCallsPerAdmitted, 2)).join(", ")}. The detail below is the paced side${runs.length > 1 ? " of the last run" : ""}.`,
  ].join("\n");
}

function markdown(cfg: MixedLoadConfig, r: Result, callsPerAdmitted: number, requests: number): string {
  const flood = cfg.batchClients.filter((c) => c.burst > 0).map((c) => `${c.name} sends ${c.burst} at once`).join(", ");
  return [
    `${requests} WAIT requests for one model with a limit of ${cfg.limitRpm} per minute, arriving at ${cfg.demandFactor}× that: ` +
      `the bot (interactive, ${pct(cfg.interactiveShare, 0)} of the steady demand) and ${cfg.batchClients.length} notebooks (batch; ${flood || "no burst"}). ` +
      `max wait ${cfg.maxWaitMs / 1000} s. Each is one request to llm-invoke over HTTP (\`x-caller\` naming the client, \`priority\` ` +
      `its class); admission times are the database's bookings, reserve calls its own count in \`pg_stat_user_functions\`. ` +
      `Spans: every 61 s span (the gateway's window) ending each second of the saturated period; "starved": refused although ` +
      `the window had room for it for a whole second while it waited (the window as the gateway keeps it: a second's first ` +
      `admission leaves on time, its others with its last; spread: two intervals passed with no admission while it had room; ` +
      `a notebook's room is the window less what the interactive share still keeps); "lost its turn": waited, then refused.`,
    "",
    table(
      ["class", "requests", "admitted", "answered at once", "lost its turn", "wait p50 / p95 / max"],
      (["interactive", "batch"] as const).map((c) => [
        c,
        r.byClass[c].requests,
        r.byClass[c].admitted,
        r.byClass[c].refusedAtOnce,
        r.byClass[c].lostTurn,
        secs(r.byClass[c].waitMs),
      ]),
      ["l", "r", "r", "r", "r", "r"],
    ),
    "",
    table(
      ["61 s spans", "lowest utilisation", "worst span", "starved", "notebook admitted while the bot waited", "batch admissions per notebook", "Jain", "reserve calls / admitted (three sides)", "attempt rows / admitted", "an admitted request's own rows"],
      [[
        r.spans.count,
        pct(r.spans.minUtilisation),
        `${r.spans.worst}/${cfg.limitRpm}`,
        r.starved,
        r.inversions,
        Object.entries(r.batchAdmitted).map(([k, v]) => `${k} ${v}`).join(", "),
        fmt(r.jain, 3),
        fmt(callsPerAdmitted, 2),
        fmt(r.rowsPerAdmitted, 2),
        fmt(r.rowsPerAdmittedRequestItself, 2),
      ]],
      ["r", "r", "r", "r", "r", "l", "r", "r", "r", "r"],
    ),
    "",
    "Reserve calls and attempt rows per admitted request count everything (the requests answered at once included) " +
      "over the requests admitted: at 3× demand about two thirds of the requests cannot be served within their wait, and " +
      "each is answered and logged once, so nothing that logs every answer goes below about 3 here. \"An admitted " +
      "request's own\" counts only the rows of the admitted requests: 1 each (the refusal that queued it writes none).",
  ].join("\n");
}

/** The paced side per caller, every run: what its turns came to (the requests one by one are in the JSON). */
function callersMarkdown(runs: RunResult[]): string {
  const rows = runs.flatMap((r, i) =>
    Object.entries(r.pacedRequests.perCaller).map(([caller, c]) => [
      runs.length > 1 ? String(i + 1) : "",
      caller,
      `${c.inSpan} (${c.inSpanByWindow.join(" + ")}) / ${c.admitted}`,
      c.refusedAtOnce,
      c.lostTurn,
      c.lapsed,
      fmt(c.meanWaitMs / 1000, 1),
      fmt(c.callsPerRequest, 2),
      `${c.pastEarlierTurn} (${c.pastDueTurn})`,
    ])
  );
  return [
    "**Paced, per caller.** Admitted in the measured span (the Jain figure's counts; in brackets, per 61 s of the span) " +
      "and in all; requests answered at " +
      "once (no ticket: the turn lay beyond the wait); lost turns (held a ticket, then refused); tickets that lapsed " +
      "before their waiter called; the mean wait of the admitted; reserve calls per request; admissions made while a " +
      "live ticket of the same class stood earlier in turn order (in brackets: one whose time had come). Every request " +
      "of the paced side, with its tickets' turns, places and named times, is in the part's JSON (`runs[].pacedRequests`).",
    "",
    table(
      ["run", "caller", "admitted in span (per window) / all", "refused at once", "lost turns", "lapsed tickets", "mean wait (s)", "reserve calls / request", "admitted past an earlier turn (due)"],
      rows,
      ["r", "l", "r", "r", "r", "r", "r", "r", "r"],
    ),
  ].join("\n");
}

/** Admissions per second (ours) and per calendar minute (every limiter), the arrivals behind them. */
async function writeChart(
  cfg: MixedLoadConfig,
  startMs: number,
  endMs: number,
  arrivals: number[],
  rs: Record<"ours" | "rlflex" | "naive", WaitRecord[]>,
  procs: number,
): Promise<void> {
  const seconds = Math.ceil((endMs - startMs) / 1000);
  const perSecond = (times: number[]) => {
    const out = new Array<number>(seconds).fill(0);
    for (const t of times) {
      const i = Math.floor((t - startMs) / 1000);
      if (i >= 0 && i < seconds) out[i]!++;
    }
    return out;
  };
  const admitted = (records: WaitRecord[]) => records.filter((r) => r.admittedAt !== null);
  const byWindow = (records: WaitRecord[]) => cumulativeByMinute(admitted(records).map((r) => r.admittedAt!), (_, i) => admitted(records)[i]!.window!);
  const svg = waitChartSvg({
    title: `WAIT mode at ${cfg.demandFactor}× the limit: admissions against a limit of ${cfg.limitRpm} requests per minute`,
    subtitle: [
      `${cfg.machineLabel} · ${new Date(startMs).toISOString().slice(0, 10)} · generated by npm run bench`,
      `ours through llm-invoke, rate-limiter-flexible (${procs} processes) and a naive read-then-write limiter, one arrival schedule, one Postgres`,
    ],
    startMs,
    endMs,
    limitPerMinute: cfg.limitRpm,
    admittedPerSecond: perSecond(admitted(rs.ours).map((r) => r.admittedAt!)),
    arrivalsPerSecond: perSecond(arrivals),
    cumulative: [
      { label: "ours", color: "#2b6cb0", points: byWindow(rs.ours) },
      { label: "rate-limiter-flexible", color: "#805ad5", dashed: true, points: cumulativeByMinute(admitted(rs.rlflex).map((r) => r.admittedAt!)) },
      { label: "naive read-then-write", color: "#d69e2e", dashed: true, points: byWindow(rs.naive) },
    ],
  });
  await mkdir(path.dirname(cfg.chartPath), { recursive: true });
  await writeFile(cfg.chartPath, svg);
}

function peersMarkdown(cfg: MixedLoadConfig, results: LimiterResult[], wholeMinutes: number[]): string {
  const windowKeys = [...new Set(results.flatMap((r) => r.perWindow.map((w) => w.window)))].sort();
  const perWindowRows = windowKeys.map((w) => [
    `${w.slice(11, 16)} UTC${wholeMinutes.includes(Date.parse(w)) ? " (whole)" : " (partial)"}`,
    ...results.map((r) => {
      const n = r.perWindow.find((x) => x.window === w)?.admitted ?? 0;
      return n > cfg.limitRpm ? `**${n}** (+${n - cfg.limitRpm})` : String(n);
    }),
  ]);
  const summaryRows = results.map((r) => [
    r.label,
    `${r.admitted} / ${r.arrivals}`,
    r.utilisation.map((u) => pct(u.ratio)).join(", ") || "—",
    `**${r.overAdmission}**`,
    `${fmt(r.waitMs.p50 / 1000, 1)} / ${fmt(r.waitMs.p95 / 1000, 1)} / ${fmt(r.waitMs.max / 1000, 1)}`,
    `${r.gaveUp} (${r.overtakenGaveUp} overtaken)`,
    r.starvedWhileCapacityFree,
  ]);
  const [, rlflex, naive] = results;
  return `

![admissions per second and per minute during the WAIT run](wait-admissions.svg)

**Against the peers.** The same arrivals drive, at the same time and on the same Postgres, rate-limiter-flexible
(\`points\` = ${cfg.limitRpm}, \`duration\` = 60 s, retrying after its \`msBeforeNext\`) and the naive read-then-write
limiter, each on its own key, polling: when refused, sleep the time the limiter named plus up to ${cfg.jitterMs} ms of
jitter, give up after ${cfg.maxWaitMs / 1000} s. Admissions per calendar minute (Google's window; ours and naive by the
window the database booked, rate-limiter-flexible by the minute its answer arrived):

${table(["minute", ...results.map((r) => r.label)], perWindowRows, ["l", "r", "r", "r"])}

${table(["limiter", "admitted / callers", "whole minutes' utilisation", "over-admission", "wait of admitted p50 / p95 / max (s)", "gave up after the max wait", "starved while capacity was free"], summaryRows, ["l", "r", "r", "r", "r", "r", "r"])}

rate-limiter-flexible: ${rlflex!.overAdmission} admissions above the limit in ${rlflex!.windowsAboveLimit} calendar minute(s), ${rlflex!.straddling} of
its admissions straddled a minute boundary in flight. Naive read-then-write: ${naive!.overAdmission} above the limit in
${naive!.windowsAboveLimit} minute(s).`;
}
