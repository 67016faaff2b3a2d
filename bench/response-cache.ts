// Part 4d: what a response cache hit costs the caller, beside a replay and a served request, in one
// run: llm-invoke as on Supabase (finalize after the answer) in front of the Google simulator
// answering at once, sequential requests interleaved in rotated order:
//   - served: a new prompt each time, the cache not asked: reserve, the provider's call, the answer;
//   - replay: the same request_id again: the stored answer, from the reservation's round trip;
//   - hit: the same prompt with x-eve-cache: on: the stored answer, from the cache's one round trip;
//   - direct: the simulator itself, the baseline each target's added latency is measured against.
// Checks: every hit said `hit` and the simulator was called once for all of them.
import type { BenchServer } from "./lib/db.ts";
import { BENCH_SERVICE_KEY, BENCH_SIM_KEY, probeInvoke, serveLlmInvokeAsOnSupabase, simulatorFor } from "./lib/llm-invoke.ts";
import { rotatedRounds } from "./lib/load.ts";
import { fmt, table, type PartResult } from "./lib/report.ts";
import { round, summarize } from "./lib/stats.ts";
import { Teardown } from "./lib/teardown.ts";

export interface ResponseCacheConfig {
  /** Requests per target, interleaved. */
  samples: number;
}

const MODEL = "gemma-3-27b-it";
const PROMPT = "Say hello in one word.";
type Target = "direct" | "served" | "replay" | "hit";
interface Sample {
  ms: number;
  status: number;
  cache: string | null;
}
const TARGETS: Target[] = ["direct", "served", "replay", "hit"];

export async function runResponseCache(bench: BenchServer, cfg: ResponseCacheConfig, log: (s: string) => void): Promise<PartResult> {
  const teardown = new Teardown();
  try {
    const db = teardown.closes(await bench.fresh("response_cache"));
    const sim = teardown.closes(await simulatorFor(db, MODEL, "proj-cache"));
    const fnLog: string[] = [];
    const edge = teardown.closes(await serveLlmInvokeAsOnSupabase({ dbUrl: db.url, simUrl: sim.url, log: fnLog }));
    const url = `${edge.url}/`;
    await probeInvoke(url, { model: MODEL, prompt: "probe", generationConfig: { maxOutputTokens: 8 } }, fnLog);

    const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Sample> => {
      const started = performance.now();
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${BENCH_SERVICE_KEY}`, ...headers },
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      return { ms: performance.now() - started, status: res.status, cache: res.headers.get("x-eve-cache-status") };
    };
    const ask = (prompt: string) => ({ model: MODEL, prompt, mode: "NO_WAIT", generationConfig: { maxOutputTokens: 8 } });
    // The entry and the stored replay, made before the measurement. Both are written after their answers
    // (the entry after the call's finalize, as on Supabase), so the measurement waits until a hit says hit
    // and the replay is served: a NO_WAIT request that meets the entry's flight still open calls the provider.
    await post(ask(PROMPT), { "x-eve-cache": "on" });
    await post({ ...ask(PROMPT), request_id: "bench-replay" });
    for (let tries = 0; ; tries++) {
      const [hit, replay] = [await post(ask(PROMPT), { "x-eve-cache": "on" }), await post({ ...ask(PROMPT), request_id: "bench-replay" })];
      if (hit.cache === "hit" && replay.status === 200) break;
      if (tries === 50) throw new Error("the cache entry or the stored replay did not land within 5 s of their answers");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const callsBefore = sim.stats().total.received;

    const direct = async (): Promise<Sample> => {
      const started = performance.now();
      const res = await fetch(`${sim.url}/v1beta/models/${MODEL}:generateContent`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-goog-api-key": BENCH_SIM_KEY },
        body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: PROMPT }] }], generationConfig: { maxOutputTokens: 8 } }),
      });
      await res.arrayBuffer();
      return { ms: performance.now() - started, status: res.status, cache: null };
    };
    const each: Record<Target, (i: number) => Promise<Sample>> = {
      direct,
      served: (i) => post(ask(`${PROMPT} #${i}`)),
      replay: () => post({ ...ask(PROMPT), request_id: "bench-replay" }),
      hit: () => post(ask(PROMPT), { "x-eve-cache": "on" }),
    };
    const samples = new Map<Target, Sample[]>(TARGETS.map((t) => [t, []]));
    await rotatedRounds(TARGETS, cfg.samples, async (t, r) => samples.get(t)!.push(await each[t](r)));
    const hitCalls = sim.stats().total.received - callsBefore - cfg.samples * 2; // direct and served call it

    const base = summarize(samples.get("direct")!.map((s) => s.ms));
    const rows = TARGETS.map((t) => {
      const all = samples.get(t)!;
      const s = summarize(all.map((x) => x.ms));
      return { target: t, p50: round(s.p50, 3), p95: round(s.p95, 3), addedP50: t === "direct" ? null : round(s.p50 - base.p50, 3), errors: all.filter((x) => x.status !== 200).length };
    });
    for (const r of rows) log(`  ${r.target.padEnd(7)} p50 ${fmt(r.p50)} ms, added p50 ${fmt(r.addedP50)} ms, errors ${r.errors}`);
    const hits = samples.get("hit")!;
    const added = (t: Target) => rows.find((r) => r.target === t)!.addedP50!;
    return {
      id: "response-cache",
      title: "4d. a response cache hit, beside a replay and a served request",
      data: { samples: cfg.samples, rows, hitCalls },
      markdown: [
        `${cfg.samples} sequential requests per target, interleaved; llm-invoke as on Supabase in front of the Google`,
        "simulator answering at once; added latency = the target's p50 less the simulator's own (direct).",
        "",
        table(["target", "p50 ms", "p95 ms", "added p50 ms", "errors"],
          rows.map((r) => [r.target, fmt(r.p50), fmt(r.p95), fmt(r.addedP50), r.errors])),
        "",
        `Provider calls made for the ${hits.length} hits: ${hitCalls}.`,
      ].join("\n"),
      headline: [
        { figure: "response cache hit, added p50", value: `${fmt(added("hit"))} ms` },
        { figure: "hit ÷ served, added p50", value: fmt(added("hit") / added("served")) },
      ],
      checks: [
        { name: "every hit said hit", ok: hits.every((h) => h.status === 200 && h.cache === "hit"), detail: `${hits.filter((h) => h.cache === "hit").length}/${hits.length}` },
        { name: "no provider call for a hit", ok: hitCalls === 0, detail: String(hitCalls) },
      ],
    };
  } finally {
    await teardown.run();
  }
}
