// Part 8: fidelity to Google's counting. Google counts a request when it ARRIVES, on its own clock,
// with an algorithm it does not publish. The gateway admits so that no 60-second span however aligned
// sees more than the limit arrive (a sliding window of 60 s + a guard, supabase/schemas/
// 20_windows.sql). This part runs llm-invoke against simulators that count
// differently — fixed minutes aligned with ours, fixed minutes 2 s behind and 2 s ahead, and a
// sliding 60 s window — each behind 100 ms ± 50 ms of network delay, and counts the Google 429s the
// gateway's admissions draw (the calendar-minute booking before the guard: docs/benchmarks.md, "History"):
//   (a) the boundary straddle: 40 requests booked in the last 300 ms of a minute + 40 at :00.5
//       (limit 40), NO_WAIT;
//   (b) 3x demand in WAIT mode for whole minute windows (the product's main path: waiters rush in
//       when a window opens, which is where a clock offset bites).
// Wall time: the four modes run at the same time, each on its own simulator behind one router, on
// its own model rows (= quota groups) of one gateway, so the part takes one run's time (about
// 3 minutes in full, waiting for the first boundary included) instead of four. The straddle
// comes first and is over before the demand starts, so the two scenarios do not compete for the
// CPU at a window opening.
import { arrivalsByMinute, startGoogleSimulator, type GoogleSimulator, type MinuteWindow } from "../shared/google-sim/server.ts";
import { minuteOf, sleep } from "./lib/clock.ts";
import { HUGE, setKeys, setModel, type BenchServer } from "./lib/db.ts";
import { BENCH_SIM_KEY, BENCH_SIM_KEY_VAR, type InvokeAnswer, postInvoke, probeInvoke } from "./lib/llm-invoke.ts";
import { serveLlmInvoke } from "./lib/llm-invoke.ts";
import { pct, type Check, type PartResult } from "./lib/report.ts";
import { startSimRouter } from "./lib/sim-router.ts";
import { countBy } from "./lib/stats.ts";
import { Teardown } from "./lib/teardown.ts";
import { abortAt } from "./lib/wait-client.ts";

export interface FidelityConfig {
  /** Network delay between llm-invoke and the simulator, ± uniform jitter. */
  arrivalDelayMs: number;
  arrivalJitterMs: number;
  burst: { limitRpm: number; late: number; lateSpanMs: number; early: number; earlyAtMs: number };
  demand: {
    limitRpm: number;
    factor: number;
    /** Full run: whole minute windows of demand after the burst's minute. */
    wholeWindows: number;
    /** Smoke run: demand for this long instead, right after the burst. */
    smokeDurationMs?: number;
    maxWaitMs: number;
  };
}

/** How one simulator counts. */
interface CountingMode {
  id: string;
  label: string;
  window: MinuteWindow;
  clockOffsetMs: number;
}

const MODES: CountingMode[] = [
  { id: "fixed", label: "fixed minutes, aligned", window: "fixed", clockOffsetMs: 0 },
  { id: "fixed-minus2s", label: "fixed minutes, Google's clock 2 s behind", window: "fixed", clockOffsetMs: -2000 },
  { id: "fixed-plus2s", label: "fixed minutes, Google's clock 2 s ahead", window: "fixed", clockOffsetMs: 2000 },
  { id: "sliding", label: "sliding 60 s window", window: "sliding", clockOffsetMs: 0 },
];

interface Row {
  mode: CountingMode;
  burstModel: string;
  demandModel: string;
  /** The simulator of its counting mode. */
  sim: GoogleSimulator;
}

interface WindowCount {
  window: string;
  count: number;
  whole: boolean;
}

type RowResult = ReturnType<typeof rowResult>;

const PROMPT = "Count me in your minute.";
const slug = (s: string) => s.replace(/[^a-z0-9]/gi, "-");

export async function runFidelity(bench: BenchServer, cfg: FidelityConfig, log: (s: string) => void): Promise<PartResult> {
  const teardown = new Teardown();
  try {
    const db = teardown.closes(await bench.fresh("fidelity"));
    const rows: Row[] = [];
    // One row per counting mode: its models and, Google's limits equal to the gateway's (TPM/RPD out
    // of play), its simulator.
    for (const [i, mode] of MODES.entries()) {
      const burstModel = `fid-burst-${mode.id}`;
      const demandModel = `fid-demand-${mode.id}`;
      await setModel(db.sql, burstModel, { rpm: cfg.burst.limitRpm, tpm: null, rpd: null });
      await setModel(db.sql, demandModel, { rpm: cfg.demand.limitRpm, tpm: null, rpd: null });
      const sim = teardown.closes(await startGoogleSimulator({
        keys: { [BENCH_SIM_KEY]: "proj-fidelity" },
        models: {
          [burstModel]: { rpm: cfg.burst.limitRpm, tpm: HUGE, rpd: HUGE },
          [demandModel]: { rpm: cfg.demand.limitRpm, tpm: HUGE, rpd: HUGE },
        },
        window: mode.window,
        clockOffsetMs: mode.clockOffsetMs,
        arrivalDelayMs: cfg.arrivalDelayMs,
        arrivalJitterMs: cfg.arrivalJitterMs,
        seed: 1000 + i,
      }));
      rows.push({ mode, burstModel, demandModel, sim });
    }
    // One key row (= quota group) per model row, all reading the same simulator key.
    await setKeys(
      db.sql,
      rows.flatMap((r) => [r.burstModel, r.demandModel]).map((model) => ({
        alias: model,
        project: `proj-${model}`,
        envVar: BENCH_SIM_KEY_VAR,
        models: [model],
      })),
    );
    const routes = rows.flatMap((r) => [[r.burstModel, r.sim.url], [r.demandModel, r.sim.url]] as const);
    const router = teardown.closes(await startSimRouter(new Map(routes)));
    const fnOut: string[] = [];
    const env = { LLM_INVOKE_MAX_WAIT_MS: String(cfg.demand.maxWaitMs) };
    const fns = teardown.closes(await serveLlmInvoke({ dbUrl: db.url, simUrl: router.url, env, log: fnOut }));
    const invokeUrl = fns.url;
    // Request ids repeat across the rows' models: a random suffix keeps each one new.
    const call = (model: string, id: string, mode: "WAIT" | "NO_WAIT", signal?: AbortSignal) =>
      postInvoke(invokeUrl, { model, prompt: PROMPT, mode, max_wait_ms: cfg.demand.maxWaitMs, request_id: `${slug(id)}-${Math.random().toString(16).slice(2, 10).padEnd(8, "0")}` }, signal ? { signal } : {});
    for (const r of rows) {
      await probeInvoke(invokeUrl, { model: r.burstModel, prompt: PROMPT, request_id: `probe-${r.mode.id}` }, fnOut);
    }

    // The schedule: the straddle at boundary B; the demand from 10 s after it (2 s in the smoke run).
    let boundary = minuteOf(Date.now()) + 60_000;
    if (boundary - Date.now() < 6000) boundary += 60_000;
    const demandStart = boundary + (cfg.demand.smokeDurationMs === undefined ? 10_000 : 2000);
    const demandEnd = cfg.demand.smokeDurationMs === undefined
      ? boundary + 60_000 * (1 + cfg.demand.wholeWindows)
      : demandStart + cfg.demand.smokeDurationMs;
    const tailMs = 3000;
    const stopAt = demandEnd + tailMs;
    const wholeWindows: number[] = [];
    for (let w = minuteOf(demandStart) + (demandStart % 60_000 === 0 ? 0 : 60_000); w + 60_000 <= demandEnd; w += 60_000) wholeWindows.push(w);
    const interval = 60_000 / (cfg.demand.limitRpm * cfg.demand.factor);
    const arrivals: number[] = [];
    for (let t = demandStart; t < demandEnd; t += interval) arrivals.push(Math.round(t));
    log(
      `  ${MODES.length} counting modes, delay ${cfg.arrivalDelayMs} ± ${cfg.arrivalJitterMs} ms; ` +
        `straddle at ${iso(boundary)}, demand ${cfg.demand.factor}× of ${cfg.demand.limitRpm}/min ${iso(demandStart)}–${iso(demandEnd)} ` +
        `(${wholeWindows.length} whole windows)`,
    );

    // Clean slate after the probes: no attempt rows, counters, cooldowns or Google usage.
    await sleep(boundary - 3000 - Date.now());
    await db.sql`delete from public.google_ai_attempts`;
    await db.sql`delete from public.google_ai_usage_counters`;
    await db.sql`delete from public.google_ai_cooldowns`;
    for (const r of rows) r.sim.reset();

    // (a) The straddle: every counting mode at once.
    const burstCalls: Promise<InvokeAnswer & { row: Row }>[] = [];
    const spacing = cfg.burst.late > 1 ? (cfg.burst.lateSpanMs - 100) / (cfg.burst.late - 1) : 0;
    for (let i = 0; i < cfg.burst.late; i++) {
      await sleep(boundary - cfg.burst.lateSpanMs + i * spacing - Date.now());
      for (const row of rows) burstCalls.push(call(row.burstModel, `late-${i}`, "NO_WAIT").then((a) => ({ ...a, row })));
    }
    await sleep(boundary + cfg.burst.earlyAtMs - Date.now());
    for (let i = 0; i < cfg.burst.early; i++) {
      for (const row of rows) burstCalls.push(call(row.burstModel, `early-${i}`, "NO_WAIT").then((a) => ({ ...a, row })));
    }
    const burstAnswers = await Promise.all(burstCalls);
    log(`  straddle done: ${burstAnswers.length} calls`);

    // (b) 3x demand in WAIT mode, every row at once.
    const run = abortAt(stopAt);
    const demandCalls: Promise<InvokeAnswer & { row: Row }>[] = [];
    for (const [k, at] of arrivals.entries()) {
      await sleep(at - Date.now());
      for (const row of rows) {
        demandCalls.push(call(row.demandModel, `wait-${k}`, "WAIT", run.signal).then((a) => ({ ...a, row })));
      }
    }
    const demandAnswers = await Promise.all(demandCalls);
    run.clear();
    await sleep(500); // finalizes run after the answers

    // The gateway's own account (attempt log) and Google's (each simulator's records).
    const booked = await db.sql<{ model: string; window: Date; n: number }[]>`
      select model, minute_bucket as window, count(*)::int as n from public.google_ai_attempts
      where status not in ('refused', 'released') and request_id not like 'probe-%'
      group by 1, 2 order by 1, 2`;
    const demand = { start: demandStart, end: demandEnd + tailMs, wholeWindows, arrivals: arrivals.length };
    const answers = { burst: burstAnswers, demand: demandAnswers };
    const results = rows.map((row) => rowResult(cfg, row, booked, demand, answers));

    const totalOver = results.reduce((s, r) => s + r.overAdmission, 0);
    const google429 = results.reduce((s, r) => s + r.burst.google429 + r.demand.google429, 0);
    const wholeUtilisation = results.flatMap((r) => r.demand.utilisation);
    const checks: Check[] = [
      {
        name: "fidelity: over-admission against the gateway's own counters is 0 under every counting mode",
        ok: totalOver === 0,
        detail: results.map((r) => `${r.mode} ${r.overAdmission}`).join(", "),
      },
      {
        name: "fidelity: the gateway draws 0 Google 429s under every counting mode (straddle and demand)",
        ok: google429 === 0,
        detail: results.map((r) => `${r.mode} ${r.burst.google429}+${r.demand.google429}`).join(", "),
      },
      ...(wholeUtilisation.length === 0 ? [] : [{
        name: "fidelity: the gateway uses ≥ 97% of the limit at 3× demand (mean over whole windows, every mode)",
        ok: results.every((r) => mean(r.demand.utilisation) >= 0.97),
        detail: results.map((r) => `${r.mode} ${pct(mean(r.demand.utilisation))}`).join(", "),
      }]),
    ];
    return {
      id: "fidelity",
      title: "Fidelity to Google's counting: Google 429s under other counting modes",
      data: {
        config: cfg,
        modes: MODES,
        straddleBoundary: new Date(boundary).toISOString(),
        demandStart: new Date(demandStart).toISOString(),
        demandEnd: new Date(demandEnd).toISOString(),
        wholeWindows: wholeWindows.map((w) => new Date(w).toISOString()),
        rows: results,
      },
      markdown: markdown(cfg, results, wholeWindows.length),
      headline: results.map((r) => ({
        figure: `fidelity, Google ${r.modeLabel} (delay ${cfg.arrivalDelayMs} ± ${cfg.arrivalJitterMs} ms): Google 429s for admitted requests, straddle / ${cfg.demand.factor}× WAIT demand`,
        value: `${r.burst.google429} / ${r.demand.google429}; utilisation ${r.demand.utilisation.length === 0 ? "—" : pct(mean(r.demand.utilisation))}; over-admission vs our counters ${r.overAdmission}`,
      })),
      checks,
    };
  } finally {
    await teardown.run();
  }
}

/**
 * A row's figures: the gateway's bookings (its attempt log) beside what its simulator counted. `demand`:
 * the demand's span on our clock (its tail included), its whole windows and its arrivals.
 */
function rowResult(
  cfg: FidelityConfig,
  row: Row,
  booked: { model: string; window: Date; n: number }[],
  demand: { start: number; end: number; wholeWindows: number[]; arrivals: number },
  answers: Record<"burst" | "demand", (InvokeAnswer & { row: Row })[]>,
) {
  const stats = row.sim.stats();
  const bookedOf = (model: string, whole: (w: number) => boolean): WindowCount[] =>
    booked.filter((b) => b.model === model)
      .map((b) => ({ window: b.window.toISOString(), count: b.n, whole: whole(b.window.getTime()) }));
  const googleWhole = (w: { window: string }) => {
    // A minute of Google's clock is whole when the demand covered all of it on ours.
    const ours = Date.parse(w.window) - row.mode.clockOffsetMs;
    return demand.wholeWindows.length > 0 && ours >= demand.start && ours + 60_000 <= demand.end;
  };
  const googleBurst = arrivalsByMinute(stats.recent, row.burstModel);
  const googleDemand = arrivalsByMinute(stats.recent, row.demandModel);
  const burstBooked = bookedOf(row.burstModel, () => false);
  const demandBooked = bookedOf(row.demandModel, (w) => demand.wholeWindows.includes(w));
  const over = (ws: WindowCount[], limit: number) => ws.reduce((s, w) => s + Math.max(0, w.count - limit), 0);
  const status429 = (model: string) => stats.byModel[model]?.byStatus["429"] ?? 0;
  return {
    mode: row.mode.id,
    modeLabel: row.mode.label,
    burst: {
      bookedPerWindow: burstBooked,
      googleReceivedPerWindow: googleBurst.map((w) => ({ window: w.window, count: w.arrived, whole: false })),
      google429: status429(row.burstModel),
      callers: outcomes(answers.burst, row),
    },
    demand: {
      arrivals: demand.arrivals,
      bookedPerWindow: demandBooked,
      googleAcceptedPerWindow: googleDemand.map((w) => ({ window: w.window, count: w.ok, whole: googleWhole(w) })),
      utilisation: demandBooked.filter((w) => w.whole).map((w) => w.count / cfg.demand.limitRpm),
      googleUtilisation: googleDemand.filter(googleWhole).map((w) => w.ok / cfg.demand.limitRpm),
      google429: status429(row.demandModel),
      callers: outcomes(answers.demand, row),
    },
    /** Bookings above the limit in any of the gateway's own windows (must be 0). */
    overAdmission: over(burstBooked, cfg.burst.limitRpm) + over(demandBooked, cfg.demand.limitRpm),
    /** The simulator dropped old records from `recent` (per-window Google figures incomplete). */
    googleRecordsTruncated: stats.total.received > stats.recent.length,
  };
}

/** A row's answers by HTTP status. */
const outcomes = (answers: (InvokeAnswer & { row: Row })[], row: Row) =>
  countBy(answers.filter((a) => a.row === row), (a) => String(a.status));

const iso = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

function markdown(cfg: FidelityConfig, results: RowResult[], wholeWindows: number): string {
  const hhmmss = (isoTime: string) => isoTime.slice(11, 19);
  const windows = (ws: WindowCount[]) => ws.map((w) => `${w.count}${w.whole ? "" : "·"}`).join(" + ") || "—";
  const rows = results.map((r) => [
    r.modeLabel,
    `${windows(r.burst.bookedPerWindow)} → ${r.burst.googleReceivedPerWindow.map((w) => `${w.count} @${hhmmss(w.window)}`).join(", ") || "—"}`,
    `**${r.burst.google429}**`,
    r.demand.bookedPerWindow.filter((w) => w.whole).map((w) => String(w.count)).join(", ") || "—",
    r.demand.utilisation.map((u) => pct(u)).join(", ") || "—",
    r.demand.googleAcceptedPerWindow.filter((w) => w.whole).map((w) => String(w.count)).join(", ") || "—",
    `**${r.demand.google429}**`,
    String(r.overAdmission),
  ]);
  const truncated = results.some((r) => r.googleRecordsTruncated);
  return `
llm-invoke calls four simulators at once, each counting its way, each behind ${cfg.arrivalDelayMs} ms ± ${cfg.arrivalJitterMs} ms
(uniform) of network delay applied before a request is counted (how, and why: below).

- **Straddle**: per row, ${cfg.burst.late} NO_WAIT requests sent over the last ${cfg.burst.lateSpanMs} ms before a \`:00\`
  (the last one 100 ms before it) plus ${cfg.burst.early} at \`:00.${String(cfg.burst.earlyAtMs).padStart(3, "0")}\`, limit ${cfg.burst.limitRpm} RPM,
  all four modes at once. How many of the late ones the gateway books before \`:00\` depends on how fast this machine
  serves four rows' calls at once: the first figure of the second column.
- **Demand**: WAIT callers at ${cfg.demand.factor}× the limit of ${cfg.demand.limitRpm} RPM, starting after the straddle is over,
  ${wholeWindows} whole window${wholeWindows === 1 ? "" : "s"} (the waiters rush in when a window opens).
- Utilisation is admissions per whole calendar window over the limit (the sliding window's cost: at most 60/61 of
  the limit per minute in steady state).

| Google counts | straddle: booked per our minute → arrived per Google minute | straddle: Google 429s | demand: booked per whole window | utilisation | demand: Google accepted per whole Google minute | demand: Google 429s | over-admission vs our counters |
|---|---|---:|---|---|---|---:|---:|
${rows.map((r) => `| ${r.join(" | ")} |`).join("\n")}

(\`·\` marks a partial window.)${truncated ? "\n\n> The per-minute Google figures of some rows are incomplete: the simulator keeps its last 1000 records; the 429 totals are exact." : ""}
`;
}
