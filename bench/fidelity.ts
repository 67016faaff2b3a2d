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
// 4.5 minutes in full, waiting for the first boundary included) instead of four. The straddle
// comes first and is over before the demand starts, so the two scenarios do not compete for the
// CPU at a window opening.
import { setMaxListeners } from "node:events";
import type { FunctionsServer } from "../scripts/serve-functions.ts";
import { arrivalsByMinute, startGoogleSimulator, type GoogleSimulator, type MinuteWindow } from "../shared/google-sim/server.ts";
import { minuteOf, sleep } from "./lib/clock.ts";
import { setKeys, setModel, type BenchServer } from "./lib/db.ts";
import { BENCH_SIM_KEY, BENCH_SIM_KEY_VAR, type InvokeAnswer, postInvoke, serveLlmInvoke } from "./lib/llm-invoke.ts";
import { pct, type Check, type PartResult } from "./lib/report.ts";
import { startSimRouter, type SimRouter } from "./lib/sim-router.ts";

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
}

interface WindowCount {
  window: string;
  count: number;
  whole: boolean;
}

interface RowResult {
  mode: string;
  modeLabel: string;
  burst: {
    bookedPerWindow: WindowCount[];
    googleReceivedPerWindow: WindowCount[];
    google429: number;
    callers: Record<string, number>;
  };
  demand: {
    arrivals: number;
    bookedPerWindow: WindowCount[];
    googleAcceptedPerWindow: WindowCount[];
    utilisation: number[];
    googleUtilisation: number[];
    google429: number;
    callers: Record<string, number>;
  };
  /** Bookings above the limit in any of the gateway's own windows (must be 0). */
  overAdmission: number;
  /** The simulator dropped old records from `recent` (per-window Google figures incomplete). */
  googleRecordsTruncated: boolean;
}

const PROMPT = "Count me in your minute.";
const HUGE = 2_000_000_000;
const slug = (s: string) => s.replace(/[^a-z0-9]/gi, "-");

export async function runFidelity(bench: BenchServer, cfg: FidelityConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("fidelity");
  const sims: GoogleSimulator[] = [];
  let router: SimRouter | undefined;
  let fns: FunctionsServer | undefined;
  try {
    const rows: Row[] = MODES.map((mode) => ({ mode, burstModel: `fid-burst-${mode.id}`, demandModel: `fid-demand-${mode.id}` }));
    for (const r of rows) {
      await setModel(db.sql, r.burstModel, { rpm: cfg.burst.limitRpm, tpm: null, rpd: null });
      await setModel(db.sql, r.demandModel, { rpm: cfg.demand.limitRpm, tpm: null, rpd: null });
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

    // One simulator per counting mode; Google's limits equal the gateway's (TPM/RPD out of play).
    const routes = new Map<string, string>();
    const simOf = new Map<string, GoogleSimulator>();
    for (const [i, mode] of MODES.entries()) {
      const mine = rows.filter((r) => r.mode === mode);
      const sim = await startGoogleSimulator({
        keys: { [BENCH_SIM_KEY]: "proj-fidelity" },
        models: Object.fromEntries(
          mine.flatMap((r) => [
            [r.burstModel, { rpm: cfg.burst.limitRpm, tpm: HUGE, rpd: HUGE }],
            [r.demandModel, { rpm: cfg.demand.limitRpm, tpm: HUGE, rpd: HUGE }],
          ]),
        ),
        window: mode.window,
        clockOffsetMs: mode.clockOffsetMs,
        arrivalDelayMs: cfg.arrivalDelayMs,
        arrivalJitterMs: cfg.arrivalJitterMs,
        seed: 1000 + i,
      });
      sims.push(sim);
      simOf.set(mode.id, sim);
      for (const r of mine) {
        routes.set(r.burstModel, sim.url);
        routes.set(r.demandModel, sim.url);
      }
    }
    router = await startSimRouter(routes);
    const fnOut: string[] = [];
    fns = await serveLlmInvoke({
      dbUrl: db.url,
      simUrl: router.url,
      env: { LLM_INVOKE_MAX_WAIT_MS: String(cfg.demand.maxWaitMs) },
      log: fnOut,
      keep: 50,
    });
    // Straight to the function's Deno port (the local Node proxy caps its socket pool).
    const invokeUrl = `http://127.0.0.1:${fns.functions["llm-invoke"]!.port}/`;
    // Request ids repeat across the rows' models: a random suffix keeps each one new.
    const call = (model: string, id: string, mode: "WAIT" | "NO_WAIT", signal?: AbortSignal) =>
      postInvoke(invokeUrl, { model, prompt: PROMPT, mode, max_wait_ms: cfg.demand.maxWaitMs, request_id: `${slug(id)}-${Math.random().toString(16).slice(2, 10).padEnd(8, "0")}` }, signal ? { signal } : {});
    for (const r of rows) {
      const probe = await call(r.burstModel, `probe-${r.burstModel}`, "NO_WAIT");
      if (probe.status !== 200) throw new Error(`probe: HTTP ${probe.status} ${probe.body.slice(0, 200)} ${fnOut.slice(-5).join(" | ")}`);
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
    await db.sql`delete from public.google_ai_admissions`;
    await db.sql`delete from public.google_ai_cooldowns`;
    for (const sim of sims) sim.reset();

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
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const stop = setTimeout(() => controller.abort(), stopAt - Date.now());
    const demandCalls: Promise<InvokeAnswer & { row: Row }>[] = [];
    for (const [k, at] of arrivals.entries()) {
      await sleep(at - Date.now());
      for (const row of rows) demandCalls.push(call(row.demandModel, `wait-${k}`, "WAIT", controller.signal).then((a) => ({ ...a, row })));
    }
    const demandAnswers = await Promise.all(demandCalls);
    clearTimeout(stop);
    await sleep(500); // finalizes run after the answers

    // The gateway's own account (attempt log) and Google's (each simulator's records).
    const booked = await db.sql<{ model: string; window: Date; n: number }[]>`
      select model, minute_bucket as window, count(*)::int as n from public.google_ai_attempts
      where status not in ('refused', 'released') and request_id not like 'probe-%'
      group by 1, 2 order by 1, 2`;
    const statsOf = new Map(MODES.map((m) => [m.id, simOf.get(m.id)!.stats()]));
    const results: RowResult[] = rows.map((row) => {
      const stats = statsOf.get(row.mode.id)!;
      const truncated = stats.total.received > stats.recent.length;
      const bookedOf = (model: string, whole: (w: number) => boolean) =>
        booked.filter((b) => b.model === model).map((b) => ({ window: b.window.toISOString(), count: b.n, whole: whole(b.window.getTime()) }));
      const googleWindowWhole = (simMinute: number) => {
        // A minute of Google's clock is whole when the demand covered all of it on ours.
        const ours = simMinute - row.mode.clockOffsetMs;
        return wholeWindows.length > 0 && ours >= demandStart && ours + 60_000 <= demandEnd + tailMs;
      };
      const googleBurst = arrivalsByMinute(stats.recent, row.burstModel);
      const googleDemand = arrivalsByMinute(stats.recent, row.demandModel);
      const burstBooked = bookedOf(row.burstModel, () => false);
      const demandBooked = bookedOf(row.demandModel, (w) => wholeWindows.includes(w));
      const over = (ws: WindowCount[], limit: number) => ws.reduce((s, w) => s + Math.max(0, w.count - limit), 0);
      const status429 = (model: string) => stats.byModel[model]?.byStatus["429"] ?? 0;
      return {
        mode: row.mode.id,
        modeLabel: row.mode.label,
        burst: {
          bookedPerWindow: burstBooked,
          googleReceivedPerWindow: googleBurst.map((w) => ({ window: w.window, count: w.arrived, whole: false })),
          google429: status429(row.burstModel),
          callers: outcomes(burstAnswers.filter((a) => a.row === row)),
        },
        demand: {
          arrivals: arrivals.length,
          bookedPerWindow: demandBooked,
          googleAcceptedPerWindow: googleDemand.map((w) => ({ window: w.window, count: w.ok, whole: googleWindowWhole(Date.parse(w.window)) })),
          utilisation: demandBooked.filter((w) => w.whole).map((w) => w.count / cfg.demand.limitRpm),
          googleUtilisation: googleDemand.filter((w) => googleWindowWhole(Date.parse(w.window))).map((w) => w.ok / cfg.demand.limitRpm),
          google429: status429(row.demandModel),
          callers: outcomes(demandAnswers.filter((a) => a.row === row)),
        },
        overAdmission: over(burstBooked, cfg.burst.limitRpm) + over(demandBooked, cfg.demand.limitRpm),
        googleRecordsTruncated: truncated,
      };
    });

    for (const r of results) {
      log(
        `  ${r.mode.padEnd(14)} burst: booked ${r.burst.bookedPerWindow.map((w) => w.count).join("+")}, ` +
          `Google got ${r.burst.googleReceivedPerWindow.map((w) => w.count).join("+")}, Google 429s ${r.burst.google429}; ` +
          `demand: booked ${r.demand.bookedPerWindow.map((w) => `${w.count}${w.whole ? "*" : ""}`).join(", ")}, ` +
          `Google 429s ${r.demand.google429}; over-admission ${r.overAdmission}`,
      );
    }

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
      headline: results.map((r) => {
        return {
          figure: `fidelity, Google ${r.modeLabel} (delay ${cfg.arrivalDelayMs} ± ${cfg.arrivalJitterMs} ms): Google 429s for admitted requests, straddle / ${cfg.demand.factor}× WAIT demand`,
          value: `${r.burst.google429} / ${r.demand.google429}; utilisation ${r.demand.utilisation.length === 0 ? "—" : pct(mean(r.demand.utilisation))}; over-admission vs our counters ${r.overAdmission}`,
        };
      }),
      checks,
    };
  } finally {
    await fns?.close();
    await router?.close();
    for (const sim of sims) await sim.close();
    await db.drop();
  }
}

function outcomes(answers: InvokeAnswer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[String(a.status)] = (out[String(a.status)] ?? 0) + 1;
  return out;
}

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
