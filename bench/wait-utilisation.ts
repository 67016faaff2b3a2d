// Part 3 (and the chart, part 6): WAIT mode at 3× the limit for at least two whole minute windows.
// Arrivals come at a steady 3× the per-minute limit; each arrival is a WAIT caller: ours through
// llm-invoke (its admission queue), the peers polling (bench/lib/wait-client.ts). The same arrival schedule drives, side by side on
// the same Postgres, our reservation RPC, rate-limiter-flexible in several child processes and a
// naive read-then-write limiter, each with the same limit on its own key. Admissions are counted per
// calendar minute (Google's windows): utilisation of each whole window, over-admission anywhere.
import { setMaxListeners } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { connect, type Sql } from "../shared/db/migrate.ts";
import type { FunctionsServer } from "../scripts/serve-functions.ts";
import { startGoogleSimulator, type GoogleSimulator } from "../shared/google-sim/server.ts";
import { minuteOf, sleep } from "./lib/clock.ts";
import { setKeys, setModel, type BenchServer } from "./lib/db.ts";
import { createNaiveTable, naiveLimiter } from "./lib/naive.ts";
import { fmt, pct, table, type PartResult } from "./lib/report.ts";
import { BENCH_SIM_KEY as SIM_KEY, BENCH_SIM_KEY_VAR, bookings, postInvoke, serveLlmInvoke, waitInLlmInvoke } from "./lib/llm-invoke.ts";
import { createRlflex } from "./lib/rlflex.ts";
import { rlflexWaitStart } from "./lib/rlflex-procs.ts";
import { analyse, type LimiterResult } from "./lib/wait-analysis.ts";
import { cumulativeByMinute, waitChartSvg } from "./lib/svg.ts";
import { driveArrivals, waitForAdmission, type WaitRecord } from "./lib/wait-client.ts";

export interface WaitConfig {
  limitRpm: number;
  demandFactor: number;
  jitterMs: number;
  maxWaitMs: number;
  /** Full run: start demand at second :50 and keep it up for `fullWindows` whole minutes after. */
  fullWindows: number;
  /** Smoke run: demand for this long, starting now (no alignment). */
  smokeDurationMs?: number;
  /** After demand stops: time for the next window opening to serve the waiters left. */
  tailMs: number;
  rlflexProcesses: number;
  connections: number;
  chartPath: string;
  /** Machine summary for the chart's subtitle. */
  machineLabel: string;
}

const MODEL = "bench-wait";
const PROMPT = "Wait for your turn, then answer in one word.";
const HUGE = 2_000_000_000;
/** The gateway's minute guard (google_ai_admission_settings.minute_guard_ms, default): its window is 60 s + this. */
const SLIDING_GUARD_MS = 1000;

export async function runWaitUtilisation(bench: BenchServer, cfg: WaitConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("wait");
  const naiveSql: Sql = connect(db.url, { max: cfg.connections, idle_timeout: 0 });
  let rlflexProcs: Awaited<ReturnType<typeof rlflexWaitStart>> | undefined;
  let sim: GoogleSimulator | undefined;
  let fns: FunctionsServer | undefined;
  try {
    await setModel(db.sql, MODEL, { rpm: cfg.limitRpm, tpm: null, rpd: null });
    await setKeys(db.sql, [{ alias: "wait", project: "proj-wait", models: [MODEL] }]);
    await createNaiveTable(db.sql);
    await (await createRlflex(db.url, 1, cfg.limitRpm)).close(); // creates its table once
    await Promise.all([...Array(cfg.connections)].map(() => naiveSql`select 1`));

    // Our callers go through llm-invoke: its admission queue.
    sim = await startGoogleSimulator({ keys: { [SIM_KEY]: "proj-wait" }, models: { [MODEL]: { rpm: HUGE, tpm: HUGE, rpd: HUGE } } });
    await db.sql`update public.google_ai_api_keys set env_var_name = ${BENCH_SIM_KEY_VAR} where key_alias = 'wait'`;
    const fnOut: string[] = [];
    fns = await serveLlmInvoke({ dbUrl: db.url, simUrl: sim.url, env: { LLM_INVOKE_MAX_WAIT_MS: String(cfg.maxWaitMs) }, log: fnOut, keep: 50 });
    // Straight to the function's Deno port: the local Node proxy pools at most 256 sockets,
    // fewer than the callers waiting at once here (Supabase's own gateway has no such limit).
    const invokeUrl = `http://127.0.0.1:${fns.functions["llm-invoke"]!.port}/`;
    const probe = await postInvoke(invokeUrl, { model: MODEL, prompt: PROMPT, mode: "NO_WAIT", request_id: "probe" });
    if (probe.status !== 200) throw new Error(`probe: HTTP ${probe.status} ${probe.body.slice(0, 200)} ${fnOut.slice(-5).join(" | ")}`);
    await db.sql`delete from public.google_ai_attempts`;
    await db.sql`update public.google_ai_usage_counters set rpm_used = 0, tpm_used = 0, rpd_used = 0`;

    // Schedule: start at the next second :50 at least 8 s away (the child processes need a moment).
    const now = Date.now();
    let t0: number;
    let demandEnd: number;
    if (cfg.smokeDurationMs !== undefined) {
      t0 = now + 3000;
      demandEnd = t0 + cfg.smokeDurationMs;
    } else {
      t0 = minuteOf(now) + 50_000;
      while (t0 - now < 8000) t0 += 60_000;
      demandEnd = minuteOf(t0) + 60_000 * (1 + cfg.fullWindows);
    }
    const stopAt = demandEnd + cfg.tailMs;
    const interval = 60_000 / (cfg.limitRpm * cfg.demandFactor);
    const arrivals: number[] = [];
    for (let t = t0; t < demandEnd; t += interval) arrivals.push(Math.round(t));
    const fullWindows: number[] = [];
    if (cfg.smokeDurationMs === undefined) for (let w = minuteOf(t0) + 60_000; w < demandEnd; w += 60_000) fullWindows.push(w);
    log(
      `  limit ${cfg.limitRpm}/min, demand ${cfg.demandFactor}× = ${arrivals.length} arrivals from ${new Date(t0).toISOString().slice(11, 19)} ` +
        `to ${new Date(demandEnd).toISOString().slice(11, 19)} UTC (${fullWindows.length} whole windows), max wait ${cfg.maxWaitMs / 1000} s, jitter ${cfg.jitterMs} ms`,
    );

    // rate-limiter-flexible: the arrivals dealt round-robin to its processes.
    const procs = Math.max(1, cfg.rlflexProcesses);
    rlflexProcs = await rlflexWaitStart(
      Array.from({ length: procs }, (_, p) => {
        const ids = arrivals.map((_, i) => i).filter((i) => i % procs === p);
        return {
          kind: "wait" as const,
          url: db.url,
          connections: Math.max(2, Math.ceil(cfg.connections / procs)),
          points: cfg.limitRpm,
          key: "proj-wait",
          arrivals: ids.map((i) => arrivals[i]!),
          ids,
          jitterMs: cfg.jitterMs,
          maxWaitMs: cfg.maxWaitMs,
          stopAt,
        };
      }),
    );
    log(`  ${procs} rate-limiter-flexible processes ready; waiting for ${new Date(t0).toISOString().slice(11, 19)}`);

    const controller = new AbortController();
    setMaxListeners(0, controller.signal); // one listener per sleeping waiter
    const stop = setTimeout(() => controller.abort(), stopAt - Date.now());
    const policy = { jitterMs: cfg.jitterMs, maxWaitMs: cfg.maxWaitMs, signal: controller.signal };
    const ours = (id: number) =>
      waitInLlmInvoke(id, invokeUrl, { model: MODEL, prompt: PROMPT, max_wait_ms: cfg.maxWaitMs, request_id: `wait-${id}` }, { signal: controller.signal });
    const naiveTry = naiveLimiter(naiveSql, "proj-wait", cfg.limitRpm);
    const naive = (id: number) => waitForAdmission(id, naiveTry, policy);

    const [oursRecords, naiveRecords, rlflexRecords] = await Promise.all([
      driveArrivals(arrivals, ours),
      driveArrivals(arrivals, naive),
      rlflexProcs.done(),
    ]);
    clearTimeout(stop);
    await sleep(500);
    // The database's account: when each caller's reservation was booked, in which window, and
    // how many reservation calls (refusals included) it took.
    const booked = await bookings(db.sql, MODEL);
    let mismatches = 0;
    for (const rec of oursRecords) {
      const row = booked.get(`wait-${rec.id}`);
      rec.calls = row?.rows ?? 0;
      if (row?.bookedAt) {
        if (rec.admittedAt === null && !rec.cutOff) mismatches++;
        rec.admitCallStartedAt = row.bookedAt.getTime();
        rec.admittedAt = row.bookedAt.getTime();
        rec.window = row.window!.getTime();
      } else if (rec.admittedAt !== null) {
        mismatches++;
        rec.admittedAt = null;
      }
    }
    const httpCheck = mismatches === 0 ? "" : `${mismatches} callers whose answer disagrees with the attempt log`;

    // Cross-check ours against the attempt log (the database's own account of each window).
    const logged = await db.sql<{ window: Date; admitted: number; refused: number }[]>`
      select minute_bucket as window, count(*)::int as admitted, 0 as refused
      from public.google_ai_attempts where model = ${MODEL} and status not in ('refused', 'released') group by 1 order by 1`;
    const [{ refusedRows }] = await db.sql<{ refusedRows: number }[]>`
      select count(*)::int as "refusedRows" from public.google_ai_attempts where model = ${MODEL} and status = 'refused'`;

    const results = [
      analyse("ours", "ours: llm-invoke (WAIT mode over HTTP)", oursRecords, cfg, fullWindows, 60_000 + SLIDING_GUARD_MS),
      analyse("rlflex", `rate-limiter-flexible RateLimiterPostgres, ${procs} processes`, rlflexRecords, cfg, fullWindows),
      analyse("naive", "naive read-then-write", naiveRecords, cfg, fullWindows),
    ];
    const oursLog = Object.fromEntries(logged.map((l) => [l.window.toISOString(), l.admitted]));
    const oursResult = results[0]!;
    const logAgrees = httpCheck === "" && oursResult.perWindow.every((w) => (oursLog[w.window] ?? 0) === w.admitted) &&
      logged.reduce((s, l) => s + l.admitted, 0) === oursResult.admitted;

    for (const r of results) {
      log(
        `  ${r.id.padEnd(7)} admitted ${r.admitted}/${r.arrivals}, per window ${r.perWindow.map((w) => `${w.window.slice(11, 16)} ${w.admitted}${w.full ? "*" : ""}`).join(", ")}` +
          `; over-admission ${r.overAdmission}; gave up ${r.gaveUp}, cut off ${r.cutOff}, errors ${r.errors}` +
          `; wait p50 ${fmt(r.waitMs.p50 / 1000, 1)} s p99 ${fmt(r.waitMs.p99 / 1000, 1)} s`,
      );
    }

    // The chart.
    const chartStart = t0 - 2000;
    const seconds = Math.ceil((stopAt - chartStart) / 1000);
    const perSecond = (times: number[]) => {
      const out = new Array<number>(seconds).fill(0);
      for (const t of times) {
        const i = Math.floor((t - chartStart) / 1000);
        if (i >= 0 && i < seconds) out[i]!++;
      }
      return out;
    };
    const admittedTimes = (rs: WaitRecord[]) => rs.filter((r) => r.admittedAt !== null);
    const oursAdm = admittedTimes(oursRecords);
    const svg = waitChartSvg({
      title: `WAIT mode at ${cfg.demandFactor}× the limit: admissions against a limit of ${cfg.limitRpm} requests per minute`,
      subtitle: [
        `${cfg.machineLabel} · ${new Date(t0).toISOString().slice(0, 10)} · generated by npm run bench`,
        `ours through llm-invoke, rate-limiter-flexible (${procs} processes) and a naive read-then-write limiter, one arrival schedule, one Postgres`,
      ],
      startMs: chartStart,
      endMs: stopAt,
      limitPerMinute: cfg.limitRpm,
      admittedPerSecond: perSecond(oursAdm.map((r) => r.admittedAt!)),
      arrivalsPerSecond: perSecond(arrivals),
      cumulative: [
        { label: "ours", color: "#2b6cb0", points: cumulativeByMinute(oursAdm.map((r) => r.admittedAt!), (_, i) => oursAdm[i]!.window!) },
        {
          label: "rate-limiter-flexible",
          color: "#805ad5",
          dashed: true,
          points: cumulativeByMinute(admittedTimes(rlflexRecords).map((r) => r.admittedAt!)),
        },
        {
          label: "naive read-then-write",
          color: "#d69e2e",
          dashed: true,
          points: cumulativeByMinute(admittedTimes(naiveRecords).map((r) => r.admittedAt!), (_, i) => admittedTimes(naiveRecords)[i]!.window!),
        },
      ],
    });
    await mkdir(path.dirname(cfg.chartPath), { recursive: true });
    await writeFile(cfg.chartPath, svg);

    const full = cfg.smokeDurationMs === undefined;
    // The gateway's window slides: at most the limit in any 60 s + guard. Its utilisation is how full
    // every such span inside the whole windows is (each 1 s apart); calendar minutes are reported above.
    const spanMs = 60_000 + SLIDING_GUARD_MS;
    const oursTimes = oursRecords.filter((r) => r.admittedAt !== null).map((r) => r.admittedAt!);
    const spans: number[] = [];
    if (fullWindows.length > 0) {
      const last = fullWindows.at(-1)! + 60_000;
      for (let start = fullWindows[0]!; start + spanMs <= last; start += 1000) {
        spans.push(oursTimes.filter((t) => t >= start && t < start + spanMs).length / cfg.limitRpm);
      }
    }
    const minSpan = spans.length === 0 ? 0 : Math.min(...spans);
    const checks = [
      { name: "our over-admission in WAIT mode is 0", ok: oursResult.overAdmission === 0, detail: `${oursResult.overAdmission} over the limit in ${oursResult.perWindow.length} windows` },
      {
        name: "WAIT run: our callers' admissions agree with the attempt log",
        ok: logAgrees && oursResult.errors === 0,
        detail: logAgrees ? `agree; ${oursResult.errors} errors` : httpCheck || `callers ${JSON.stringify(oursResult.perWindow)} vs log ${JSON.stringify(oursLog)}`,
      },
    ];
    if (full) {
      checks.push({
        name: `our utilisation at 3× demand is ≥ 97% in every ${spanMs / 1000} s span of the whole windows (the sliding window: 60 s + guard)`,
        ok: spans.length > 0 && minSpan >= 0.97,
        detail: `lowest ${pct(minSpan)} over ${spans.length} spans; calendar minutes ${oursResult.utilisation.map((u) => `${u.window.slice(11, 16)} ${pct(u.ratio)}`).join(", ")}`,
      });
    }
    return {
      id: "wait-utilisation",
      title: "Utilisation in WAIT mode at 3× demand (and the chart)",
      data: {
        config: { ...cfg, chartPath: undefined },
        client: "llm-invoke",
        startedAt: new Date(t0).toISOString(),
        demandEndedAt: new Date(demandEnd).toISOString(),
        arrivals: arrivals.length,
        wholeWindows: fullWindows.map((w) => new Date(w).toISOString()),
        oursAttemptLog: { admittedPerWindow: oursLog, refusedRows },
        limiters: results,
      },
      markdown: markdown(cfg, results, fullWindows, arrivals.length, refusedRows, procs),
      headline: [
        {
          figure: `WAIT at ${cfg.demandFactor}× demand through llm-invoke: our admitted per whole minute / limit ${cfg.limitRpm}`,
          value: oursResult.utilisation.length
            ? oursResult.utilisation.map((u) => `${u.admitted} (${pct(u.ratio)})`).join(", ") + `; over-admission ${oursResult.overAdmission}`
            : `smoke: over-admission ${oursResult.overAdmission}`,
        },
        {
          figure: "WAIT: wait of admitted callers p50 / p95 / max; callers starved while capacity was free",
          value: `${fmt(oursResult.waitMs.p50 / 1000, 1)} / ${fmt(oursResult.waitMs.p95 / 1000, 1)} / ${fmt(oursResult.waitMs.max / 1000, 1)} s; ${oursResult.starvedWhileCapacityFree}`,
        },
        ...results.slice(1).map((r) => ({
          figure: `WAIT, same demand: ${r.label} — over-admission (windows above the limit)`,
          value: `${r.overAdmission} (${r.windowsAboveLimit} of ${r.perWindow.length} windows); whole windows ${r.utilisation.map((u) => u.admitted).join(", ") || "—"}`,
        })),
      ],
      checks,
    };
  } finally {
    rlflexProcs?.kill();
    await fns?.close();
    await sim?.close();
    await naiveSql.end({ timeout: 5 });
    await db.drop();
  }
}

function markdown(
  cfg: WaitConfig,
  results: LimiterResult[],
  fullWindows: number[],
  arrivals: number,
  refusedRows: number,
  procs: number,
): string {
  const ours = results[0]!;
  const hhmm = (iso: string) => iso.slice(11, 16);
  const windowKeys = [...new Set(results.flatMap((r) => r.perWindow.map((w) => w.window)))].sort();
  const perWindowRows = windowKeys.map((w) => [
    `${hhmm(w)} UTC${fullWindows.includes(Date.parse(w)) ? " (whole)" : " (partial)"}`,
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
    `${fmt(r.waitMs.p50 / 1000, 1)} / ${fmt(r.waitMs.p95 / 1000, 1)} / ${fmt(r.waitMs.p99 / 1000, 1)} / ${fmt(r.waitMs.max / 1000, 1)}`,
    `${r.gaveUp} (${r.overtakenGaveUp} overtaken)`,
    r.starvedWhileCapacityFree,
    fmt(r.callsPerAdmission, 2),
  ]);
  const openings = Object.entries(ours.windowOpeningsWaitedThrough).sort().map(([k, v]) => `${v} after ${k} window opening${k === "1" ? "" : "s"}`).join(", ");
  return `
![admissions per second and per minute during the WAIT run](${"wait-admissions.svg"})

Demand: a new WAIT caller every ${fmt(60_000 / (cfg.limitRpm * cfg.demandFactor), 1)} ms, i.e. ${cfg.demandFactor}× the limit of ${cfg.limitRpm}
requests per minute on one quota group, from second :50 of a minute through ${fullWindows.length} whole minute windows
(${arrivals} callers). The peers' callers poll (\`bench/lib/wait-client.ts\` with \`bench/lib/polling-policy.ts\`, llm-invoke's rule
before its admission queue): reserve; when refused, sleep the \`retry_after_ms\` the limiter named plus up to
${cfg.jitterMs} ms of jitter; give up after ${cfg.maxWaitMs / 1000} s of waiting (llm-invoke's cap). **Our callers go through llm-invoke itself**, so they wait in its admission queue: one HTTP request each (\`mode: "WAIT"\`, \`max_wait_ms: ${cfg.maxWaitMs}\`) to the function served by Deno (on its own port: the local Node proxy caps its socket pool below the number of callers waiting at once), the function calling the simulator after each reservation; admission times and windows are the database's (the attempt log's booking rows), and "limiter calls" for ours are attempt rows (the refusal that queues a request writes none; part 9 counts reserve calls). The same arrival schedule drives, at the same time and on the same Postgres,
rate-limiter-flexible (${procs} child processes, \`points\` = ${cfg.limitRpm}, \`duration\` = 60 s, retrying after its
\`msBeforeNext\`) and the naive read-then-write limiter, each on its own key.

Admissions per calendar minute (Google's window; ours and naive by the window the database booked, rate-limiter-flexible
by the minute its answer arrived):

${table(["minute", ...results.map((r) => r.label)], perWindowRows, ["l", "r", "r", "r"])}

${table(["limiter", "admitted / callers", "utilisation of whole windows", "over-admission", "wait of admitted callers p50 / p95 / p99 / max (s)", "gave up after the max wait", "starved while capacity was free", "limiter calls per admission"], summaryRows, ["l", "r", "r", "r", "r", "r", "r", "r"])}

- **Utilisation**: ours admitted ${ours.utilisation.map((u) => `${u.admitted} (${pct(u.ratio)})`).join(" and ")} of ${cfg.limitRpm} in the whole calendar minutes, never above. Its window slides (at most the limit in any 60 s + 1 s guard, so that Google's own clock cannot see more), so a calendar minute holds between about ${Math.floor(cfg.limitRpm * 60 / 61)} and ${cfg.limitRpm} depending on where the admissions bunch; the run's check is that every 61 s span inside the whole windows is ≥ 97% full (capacity is reused as soon as an admission leaves the window).
- **Wait spread**: admitted callers got in ${openings} (waits p50 ${fmt(ours.waitMs.p50 / 1000, 1)} s, p95 ${fmt(ours.waitMs.p95 / 1000, 1)} s, max ${fmt(ours.waitMs.max / 1000, 1)} s). The callers left over when a window fills wait for the next opening; at ${cfg.demandFactor}× demand at most one caller in ${cfg.demandFactor} can get in, so the others wait up to ${cfg.maxWaitMs / 1000} s and then get a 429 (${ours.gaveUp} here; ${ours.cutOff} more were still waiting when the run ended) — that is the limit working, not starvation.
- **Starvation**: a caller counts as *starved* if it gave up although capacity was left while it waited — for ours, its sliding window (60 s + guard) held fewer than the limit for a whole second; for the peers, a calendar minute it waited through ended below the limit: ${ours.starvedWhileCapacityFree} for ours (${results[1]!.starvedWhileCapacityFree} for rate-limiter-flexible, whose windows leave calendar minutes partly empty, ${results[2]!.starvedWhileCapacityFree} for the naive limiter). ${ours.overtakenGaveUp} of the ${ours.gaveUp} callers of ours who gave up were overtaken by a caller who arrived after them (in the queue, a caller whose turn lies beyond its wait is answered at once, and one who arrives later may be served in an opening the earlier one could not wait for).
- **Cost of waiting**: ${fmt(ours.callsPerAdmission, 2)} reservation calls per admission for ours (counted from the attempt log); each refusal is one attempt row (${refusedRows} refused rows in this run).
- **rate-limiter-flexible**: its window starts at the key's first hit (here second :50), not at :00, so a window it fills is split across two calendar minutes and the next one opens mid-minute: ${results[1]!.overAdmission} admissions above the limit in ${results[1]!.windowsAboveLimit} calendar minute(s). Within its own 60-second windows it is exact (its upsert is atomic); Google counts calendar minutes. ${results[1]!.straddling} of its admissions straddled a minute boundary in flight.
- **naive read-then-write**: ${results[2]!.overAdmission} above the limit in ${results[2]!.windowsAboveLimit} window(s) — the race at each window opening, when many waiters read the same count before any of them writes.
`;
}
