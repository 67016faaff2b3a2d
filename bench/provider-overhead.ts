// Part 4c: what the gateway adds to a gpt-4o call beside what it adds to a Google call. One llm-invoke
// as on Supabase in front of both simulators, with a Google model on a Google key and gpt-4o on an
// OpenAI key; four targets: the Google simulator directly (generateContent), llm-invoke with the Google
// model, the OpenAI simulator directly (Chat Completions), llm-invoke with gpt-4o (the native JSON
// route). Same prompt and the same output cap everywhere. The targets are interleaved call by call,
// not round by round: the figure is a ratio of two small differences, and on a shared machine the load
// moves within seconds, so rounds a few seconds apart gave ratios from 0.5× to 2× from run to run.
// Added latency = a target's percentile − its provider's direct percentile in the same load; the
// figure is gpt-4o's added latency over Google's.
import { randomUUID } from "node:crypto";
import { startOpenAISimulator } from "../shared/openai-sim/server.ts";
import { HUGE, setOpenAIModel, type BenchServer } from "./lib/db.ts";
import { BENCH_SIM_KEY, postInvoke, probeInvoke, serveLlmInvokeAsOnSupabase, simulatorFor } from "./lib/llm-invoke.ts";
import { performance } from "node:perf_hooks";
import { fmt, latencyRow, table, times, type Check, type PartResult } from "./lib/report.ts";
import { round, roundSummary, summarize, type Summary } from "./lib/stats.ts";
import { Teardown } from "./lib/teardown.ts";
import { PHASES, parseServerTiming } from "../supabase/functions/_shared/server-timing.ts";

export interface ProviderOverheadConfig {
  /** Requests in flight, the four targets together. */
  concurrencies: number[];
  warmupMs: number;
  /** Measured time per concurrency, shared by the four targets. */
  durationMs: number;
  /** Whether the ratio is a check (a full run) or only reported (a smoke run's figures mean nothing). */
  checkRatio: boolean;
}

const GOOGLE_MODEL = "gemma-3-27b-it";
const OPENAI_MODEL = "gpt-4o";
const PROMPT = "Summarise in one sentence why a shared rate limiter must be atomic.";
const MAX_OUTPUT_TOKENS = 64;
/** gpt-4o's added latency may be at most this many times Google's (p50, each concurrency). */
const MAX_RATIO = 1.2;
const OPENAI_ORG = "org-bench";
const OPENAI_SECRET = "sk-bench-openai";
/** A name among OpenAI's secret names: the key row names it, the function reads it. */
const OPENAI_SECRET_VAR = "OPENAI_BENCH_SIM_KEY";

type Target = "google-direct" | "google-invoke" | "openai-direct" | "openai-invoke";
const TARGETS: Target[] = ["google-direct", "google-invoke", "openai-direct", "openai-invoke"];
const LABEL: Record<Target, string> = {
  "google-direct": `direct to the Google simulator (\`generateContent\`, ${GOOGLE_MODEL})`,
  "google-invoke": `llm-invoke as on Supabase, \`${GOOGLE_MODEL}\``,
  "openai-direct": "direct to the OpenAI simulator (`/v1/chat/completions`, gpt-4o)",
  "openai-invoke": "llm-invoke as on Supabase, `gpt-4o`",
};
/** Each gateway target's baseline: its provider called directly. */
const BASE: Partial<Record<Target, Target>> = { "google-invoke": "google-direct", "openai-invoke": "openai-direct" };

type Percentiles = { p50: number; p95: number; p99: number };
interface Cell {
  target: Target;
  /** Requests in flight, all targets together. */
  connections: number;
  /** Measured calls of this target, and their rate. */
  calls: number;
  callsPerSecond: number;
  latencyMs: Summary;
  addedMs: Percentiles | null;
  errors: number;
  firstError?: string;
}

export async function runProviderOverhead(
  bench: BenchServer,
  cfg: ProviderOverheadConfig,
  log: (s: string) => void,
): Promise<PartResult> {
  const teardown = new Teardown();
  try {
    const db = teardown.closes(await bench.fresh("provider_overhead"));
    const google = teardown.closes(await simulatorFor(db, GOOGLE_MODEL, "proj-provider"));
    const openai = teardown.closes(await startOpenAISimulator({
      organizations: { [OPENAI_ORG]: { keys: [OPENAI_SECRET] } },
      models: { [OPENAI_MODEL]: { rpm: HUGE, tpm: HUGE } },
      settle: "usage",
    }));
    await db.sql`
      insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
      values ('bench-openai', 'openai', ${OPENAI_SECRET_VAR}, ${OPENAI_ORG}, 100, true)`;
    await setOpenAIModel(db.sql, OPENAI_MODEL);
    const fnLog: string[] = [];
    const edge = teardown.closes(await serveLlmInvokeAsOnSupabase({
      dbUrl: db.url,
      simUrl: google.url,
      env: { OPENAI_BASE_URL: openai.url, [OPENAI_SECRET_VAR]: OPENAI_SECRET },
      log: fnLog,
    }));
    const edgeUrl = `${edge.url}/`;
    // Each probe its own request_id: a second call with the first's, before its finalize ends, is answered 409.
    for (const model of [GOOGLE_MODEL, OPENAI_MODEL]) await probeInvoke(edgeUrl, invokeBody(model, `probe-${model}`), fnLog);

    const googleDirect = jsonPost(`${google.url}/v1beta/models/${GOOGLE_MODEL}:generateContent`, { "x-goog-api-key": BENCH_SIM_KEY }, {
      contents: [{ role: "user", parts: [{ text: PROMPT }] }],
      generationConfig: { maxOutputTokens: MAX_OUTPUT_TOKENS },
    });
    const openaiDirect = jsonPost(`${openai.url}/v1/chat/completions`, { authorization: `Bearer ${OPENAI_SECRET}` }, {
      model: OPENAI_MODEL,
      messages: [{ role: "user", content: PROMPT }],
      max_completion_tokens: MAX_OUTPUT_TOKENS,
    });
    const invoke = async (model: string, id: string) => {
      const r = await postInvoke(edgeUrl, invokeBody(model, id));
      return { outcome: r.status === 200 ? "200" : `${r.status} ${r.body.slice(0, 200)}`, timing: parseServerTiming(r.serverTiming ?? null) };
    };
    const calls: Record<Target, (id: string) => Promise<{ outcome: string; timing?: Record<string, number> }>> = {
      "google-direct": async () => ({ outcome: await status(await fetch(...googleDirect)) }),
      "google-invoke": (id) => invoke(GOOGLE_MODEL, id),
      "openai-direct": async () => ({ outcome: await status(await fetch(...openaiDirect)) }),
      "openai-invoke": (id) => invoke(OPENAI_MODEL, id),
    };

    const cells: Cell[] = [];
    const phases: PhaseRow[] = [];
    for (const n of cfg.concurrencies) {
      const measured = await interleavedLoop(n, cfg, calls);
      // A success's finalize runs after the answer (waitUntil): let the last ones end before the next load.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (const t of ["google-invoke", "openai-invoke"] as const) phases.push(phaseRow(t, n, measured.get(t)!.timings));
      for (const t of TARGETS) {
        const m = measured.get(t)!;
        const latencyMs = roundSummary(summarize(m.latencies), 3);
        const base = BASE[t] && summarize(measured.get(BASE[t]!)!.latencies);
        const addedMs = base
          ? { p50: round(latencyMs.p50 - base.p50, 3), p95: round(latencyMs.p95 - base.p95, 3), p99: round(latencyMs.p99 - base.p99, 3) }
          : null;
        const cell: Cell = {
          target: t,
          connections: n,
          calls: m.latencies.length,
          callsPerSecond: Math.round((m.latencies.length / m.measuredMs) * 1000),
          latencyMs,
          addedMs,
          errors: m.errors,
          ...(m.firstError === undefined ? {} : { firstError: m.firstError }),
        };
        cells.push(cell);
        log(
          `  c=${String(n).padStart(2)} ${t.padEnd(13)} ${String(cell.callsPerSecond).padStart(5)} req/s  p50 ${fmt(latencyMs.p50)} p95 ${fmt(latencyMs.p95)} ms` +
            (addedMs ? `  added p50 ${fmt(addedMs.p50)} p95 ${fmt(addedMs.p95)} ms` : "") +
            (cell.errors ? `  ERRORS ${cell.errors}: ${cell.firstError}` : ""),
        );
      }
    }

    const ratios = cfg.concurrencies.map((n) => ratioAt(cells, n));
    for (const r of ratios) log(`  c=${String(r.concurrency).padStart(2)} gpt-4o added ÷ Google added: p50 ${times(r.p50)}, p95 ${times(r.p95)}`);
    const errors = cells.reduce((s, c) => s + c.errors, 0);
    const checks: Check[] = [{
      name: "provider overhead requests all answered 200, in every target",
      ok: errors === 0,
      detail: errors === 0
        ? `${cells.reduce((s, c) => s + c.calls, 0)} measured requests over ${TARGETS.length} targets, 0 errors`
        : `${errors} errors; first: ${cells.find((c) => c.errors > 0)?.firstError}`,
    }];
    if (cfg.checkRatio) {
      checks.push({
        name: `llm-invoke's added latency for gpt-4o within ${MAX_RATIO}× of Google's (p50, each concurrency)`,
        ok: ratios.every((r) => r.p50 !== null && r.p50 <= MAX_RATIO),
        detail: ratioDetail(cells, ratios),
      });
    }
    return {
      id: "provider-overhead",
      title: "Provider overhead: llm-invoke's added latency for gpt-4o beside Google's",
      data: {
        config: cfg,
        prompt: PROMPT,
        maxOutputTokens: MAX_OUTPUT_TOKENS,
        models: { google: GOOGLE_MODEL, openai: OPENAI_MODEL },
        targets: Object.fromEntries(TARGETS.map((t) => [t, LABEL[t].replaceAll("`", "")])),
        cells,
        ratios,
        serverTimingP50: phases,
        simulators: { google: google.stats().total.received, openai: openai.stats().total.received },
      },
      markdown: markdown(cfg, cells, ratios, phases),
      headline: [{
        figure: `Added latency p50 / p95, llm-invoke as on Supabase: gpt-4o ÷ ${GOOGLE_MODEL} (target ≤ ${MAX_RATIO}×)`,
        value: ratioDetail(cells, ratios),
      }],
      checks,
    };
  } finally {
    await teardown.run();
  }
}

/** After each round through llm-invoke, time for the finalizes it handed to waitUntil to end. */
const SETTLE_MS = 200;

/** What a target's calls measured in one interleaved load. */
interface Measured {
  latencies: number[];
  timings: Record<string, number>[];
  errors: number;
  firstError?: string;
  measuredMs: number;
}

/**
 * A closed loop of `n` clients, each calling the four targets in turn (client w starting at target w),
 * so that whatever else loads the machine falls on all four alike. Calls started in the warm-up are not
 * counted; a failed call is counted as an error, not timed.
 */
async function interleavedLoop(
  n: number,
  cfg: ProviderOverheadConfig,
  calls: Record<Target, (id: string) => Promise<{ outcome: string; timing?: Record<string, number> }>>,
): Promise<Map<Target, Measured>> {
  const measured = new Map<Target, Measured>(TARGETS.map((t) => [t, { latencies: [], timings: [], errors: 0, measuredMs: 0 }]));
  const start = performance.now();
  const measureFrom = start + cfg.warmupMs;
  const stopAt = measureFrom + cfg.durationMs;
  let lastEnd = measureFrom;
  await Promise.all(Array.from({ length: n }, async (_, w) => {
    for (let seq = 0; ; seq++) {
      const t0 = performance.now();
      if (t0 >= stopAt) return;
      const t = TARGETS[(w + seq) % TARGETS.length]!;
      const m = measured.get(t)!;
      const { outcome, timing } = await calls[t](`p-${n}-${w}-${seq}`).catch((error: unknown) => ({
        outcome: error instanceof Error ? error.message : String(error),
        timing: undefined,
      }));
      const t1 = performance.now();
      if (outcome !== "200") {
        m.errors++;
        m.firstError ??= `${t}: HTTP ${outcome}`;
      } else if (t0 >= measureFrom) {
        m.latencies.push(t1 - t0);
        if (timing) m.timings.push(timing);
        lastEnd = Math.max(lastEnd, t1);
      }
    }
  }));
  for (const m of measured.values()) m.measuredMs = Math.max(cfg.durationMs, lastEnd - measureFrom);
  return measured;
}

/** llm-invoke's native request for `model`, with a request_id of its own. */
function invokeBody(model: string, id: string) {
  return {
    model,
    prompt: PROMPT,
    generationConfig: { maxOutputTokens: MAX_OUTPUT_TOKENS },
    mode: "NO_WAIT",
    request_id: `${id}-${randomUUID().slice(0, 8)}`,
  };
}

/** A JSON POST: its URL and init (the body a string, so one init serves every call). */
function jsonPost(url: string, headers: Record<string, string>, body: unknown): [string, RequestInit] {
  return [url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }];
}

/** "200", or the status with the start of the body; the body is read either way. */
async function status(res: Response): Promise<string> {
  const text = await res.text();
  return res.status === 200 ? "200" : `${res.status} ${text.slice(0, 200)}`;
}

function get(cells: Cell[], t: Target, n: number) {
  return cells.find((c) => c.target === t && c.connections === n);
}

/** gpt-4o's added latency ÷ Google's at concurrency `n`; null where Google's is not above zero (noise). */
function ratioAt(cells: Cell[], n: number) {
  const g = get(cells, "google-invoke", n)?.addedMs;
  const o = get(cells, "openai-invoke", n)?.addedMs;
  const div = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
  return { concurrency: n, p50: div(o?.p50, g?.p50), p95: div(o?.p95, g?.p95) };
}

type Ratio = ReturnType<typeof ratioAt>;

/** "c=1: 1.02× / 0.95× (gpt-4o 2.10 / 3.00 ms, Google 2.05 / 3.15 ms); c=16: …" */
function ratioDetail(cells: Cell[], ratios: Ratio[]): string {
  return ratios.map((r) => {
    const o = get(cells, "openai-invoke", r.concurrency)?.addedMs;
    const g = get(cells, "google-invoke", r.concurrency)?.addedMs;
    return `c=${r.concurrency}: ${times(r.p50)} / ${times(r.p95)} (gpt-4o ${fmt(o?.p50)} / ${fmt(o?.p95)} ms, Google ${fmt(g?.p50)} / ${fmt(g?.p95)} ms)`;
  }).join("; ");
}

/** The p50 of each Server-Timing phase (and the total) over a gateway target's measured answers. */
function phaseRow(target: Target, concurrency: number, samples: Record<string, number>[]) {
  const p50 = (name: string) => {
    const xs = samples.filter((s) => name in s).map((s) => s[name]!);
    return xs.length === 0 ? null : round(summarize(xs).p50, 3);
  };
  const p50ms: Record<string, number | null> = Object.fromEntries([...PHASES, "total"].map((p) => [p, p50(p)]));
  return { target, concurrency, answers: samples.length, p50ms };
}

type PhaseRow = ReturnType<typeof phaseRow>;

function markdown(cfg: ProviderOverheadConfig, cells: Cell[], ratios: Ratio[], phases: PhaseRow[]): string {
  const rows = cells.map((c) => latencyRow(LABEL[c.target], c));
  const ratioRows = ratios.map((r) => [
    r.concurrency,
    fmt(get(cells, "google-invoke", r.concurrency)?.addedMs?.p50),
    fmt(get(cells, "openai-invoke", r.concurrency)?.addedMs?.p50),
    `**${times(r.p50)}** / ${times(r.p95)}`,
  ]);
  const shown = [...PHASES, "total"].filter((p) => phases.some((r) => r.p50ms[p] != null));
  const phaseRows = phases.map((r) => [
    LABEL[r.target],
    r.concurrency,
    ...shown.map((p) => fmt(r.p50ms[p], 2)),
  ]);
  return `
One prompt (${PROMPT.length} characters) capped at ${MAX_OUTPUT_TOKENS} output tokens, one llm-invoke as on Supabase in
front of both simulators (each answering at once, limits that never bind): \`${GOOGLE_MODEL}\` on a Google key,
\`gpt-4o\` on an OpenAI key. Closed loop of ${cfg.concurrencies.join(" and then ")} clients for ${cfg.durationMs / 1000} s each, every client
calling the four targets in turn (client *w* starting at target *w*), so the machine's other load falls on all four
alike; "concurrency" is the requests in flight, all targets together. Added latency = the target's percentile minus
its provider's direct call's in the same load.

${table(["target", "concurrency", "requests/s", "p50 ms", "p95 ms", "p99 ms", "added p50 / p95 / p99 ms"], rows, ["l", "r", "r", "r", "r", "r", "r"])}

**gpt-4o's added latency ÷ ${GOOGLE_MODEL}'s** (p50 in bold, then p95; "—" where Google's added latency is not above
zero). ${cfg.checkRatio ? `Checked: p50 at most ${MAX_RATIO}× at each concurrency.` : "Not checked in a smoke run."}

${table(["concurrency", `added p50 ms: ${GOOGLE_MODEL}`, "gpt-4o", "gpt-4o ÷ Google, p50 / p95"], ratioRows, ["r", "r", "r", "r"])}

Where the time goes inside the function: the p50 of each phase its \`Server-Timing\` header names, over the measured
answers (\`google\` is the call to the model's provider, whichever it is).

${table(["target", "concurrency", ...shown.map((p) => `${p} p50 ms`)], phaseRows, ["l", "r", ...shown.map(() => "r" as const)])}
`;
}
