// Part 4: what the gateway adds to a call. The same prompt, at concurrency 1 and 16, sent
//   - directly to the Google simulator (generateContent, the caller holding the key): the baseline;
//   - to llm-invoke as on Supabase: its index.ts on its Deno port with EdgeRuntime.waitUntil
//     defined (lib/edge-runtime-entry.ts), so a success's finalize runs after the answer as in
//     production: the figure compared with Portkey and the floor;
//   - to the floor: an empty Deno.serve that answers through the same path plus one database round
//     trip (lib/floor-server.ts);
//   - to @portkey-ai/gateway in front of the same simulator (OpenAI format in, Gemini out): the peer.
// Rounds of each target are interleaved; added latency = a target's percentile − the direct
// percentile at the same concurrency; the production figure is also given as a ratio to the floor's
// and to Portkey's. At the highest concurrency the CPU per request of the Deno process and of
// PostgreSQL is read from the kernel for llm-invoke as on Supabase and for the floor.
// Then the first streamed byte: the same prompt streamed, directly (streamGenerateContent) and
// through llm-invoke as on Supabase ("stream": true), sequentially and interleaved, time to the
// first chunk's bytes, beside the non-streaming added latency at c=1. Then the database round trips
// per successful llm-invoke request: statement logging on the part's database (and the transaction
// counter as a cross-check) over a window of sequential requests to llm-invoke as on Supabase, with a
// fresh function process so no earlier connection escapes it; finalize, handed to waitUntil, is
// counted as off the caller's path. At concurrency 1 the Server-Timing header of llm-invoke as on
// Supabase's answers gives the latency budget: per phase inside the function, beside the added latency
// and what lies outside the function (lib/latency-budget.ts).
// Then the network round trips, direct and through PgBouncer in transaction mode (the stand-in for
// Supavisor), counted at a proxy (lib/pooler-round-trips.ts).
// BENCH_UPSTREAM_TLS=1: llm-invoke as on Supabase and the floor reach the simulator over TLS, through a
// TLS front (lib/tls-front.ts, a certificate made for the run, trusted by them through DENO_CERT), as
// they reach a provider; the direct call and Portkey stay on plain HTTP, so the added latency then
// includes the TLS leg (compare-revisions.ts runs it so for both revisions alike).
import { randomUUID } from "node:crypto";
import type { GoogleSimulator } from "../shared/google-sim/server.ts";
import { quoteIdent } from "../shared/db/migrate.ts";
import { mintToken } from "../shared/db/scoped-token.ts";
import { sleep } from "./lib/clock.ts";
import { FINALIZE_BATCH_RPC, rpcCalls, trackFunctions, type BenchDb, type BenchServer } from "./lib/db.ts";
import type { ServerProcess } from "./lib/server-process.ts";
import { createFloorTables, floorAdmissions, serveFloor } from "./lib/floor.ts";
import { type LatencyBudget, latencyBudget, latencyBudgetMarkdown } from "./lib/latency-budget.ts";
import { FLOOR_STATEMENT } from "./lib/floor-statement.ts";
import { closedLoop, type LoadResult, poolRounds, rotatedRounds } from "./lib/load.ts";
import { postmasterPid, serverCpuSeconds, processCpuSeconds } from "./lib/pg-cpu.ts";
import { type PoolerRoundTrips, poolerRoundTrips, poolerRoundTripsMarkdown } from "./lib/pooler-round-trips.ts";
import { startPortkey, type Portkey } from "./lib/portkey.ts";
import { fmt, latencyRow, table, times, type PartResult } from "./lib/report.ts";
import { round, summarize } from "./lib/stats.ts";
import { Teardown } from "./lib/teardown.ts";
import { openWaitSampler, type WaitSummary } from "./lib/wait-sampler.ts";
import { tlsFront } from "./lib/tls-front.ts";
import { parseServerTiming } from "../supabase/functions/_shared/server-timing.ts";
import {
  BENCH_SERVICE_KEY as SERVICE_KEY,
  BENCH_SIM_KEY as SIM_KEY,
  postInvoke,
  probeInvoke,
  serveLlmInvokeAsOnSupabase,
  simulatorFor,
  waitUntilCounts,
} from "./lib/llm-invoke.ts";

export interface OverheadConfig {
  concurrencies: number[];
  rounds: number;
  warmupMs: number;
  durationMs: number;
  /** Sequential requests in the round-trip counting window. */
  roundTripRequests: number;
  /** Streams per target in the first-byte measurement. */
  firstByteSamples: number;
}

/** The simulator waits this long between a stream's chunks: a gateway that held chunks back would show it. */
const STREAM_CHUNK_DELAY_MS = 25;

const MODEL = "gemma-3-27b-it";
const PROMPT = "Summarise in one sentence why a shared rate limiter must be atomic.";
/** The concurrency whose llm-invoke-as-on-Supabase answers give the latency budget. */
const BUDGET_AT = 1;
/** The concurrency of the round whose database waits are sampled (issue 89 judges c=16). */
const WAITS_AT = 16;

type Target = "direct" | "llm-invoke-edge" | "floor" | "portkey";
const LABEL: Record<Target, string> = {
  direct: "direct to the simulator (baseline)",
  "llm-invoke-edge": "**llm-invoke as on Supabase** (Deno port, `EdgeRuntime.waitUntil`: finalize after the answer)",
  floor: "floor: Deno.serve + one database round trip",
  portkey: "@portkey-ai/gateway in front of the simulator",
};
/** The targets whose Deno process and PostgreSQL CPU per request are read. */
const CPU_TARGETS = ["llm-invoke-edge", "floor"] as const;
type CpuTarget = (typeof CPU_TARGETS)[number];

type Percentiles = { p50: number; p95: number; p99: number };

interface Cell extends ReturnType<typeof poolRounds> {
  target: Target;
  addedMs: Percentiles | null;
}

type CpuPerRequest = ReturnType<typeof cpuPerRequest>;
/** CPU seconds a target's Deno process and PostgreSQL spent over its rounds, and the requests completed. */
type CpuSpent = Record<"deno" | "postgres" | "requests", number>;
type Ratio = ReturnType<typeof ratioAt>;

export async function runGatewayOverhead(bench: BenchServer, cfg: OverheadConfig, log: (s: string) => void): Promise<PartResult> {
  const teardown = new Teardown();
  let portkey: Portkey | undefined;
  let portkeyError: string | undefined;
  try {
    const db = teardown.closes(await bench.fresh("overhead"));
    await createFloorTables(db.sql);
    const sim = teardown.closes(await simulatorFor(db, MODEL, "proj-overhead", { streamChunkDelayMs: STREAM_CHUNK_DELAY_MS }));
    try {
      portkey = teardown.closes(await startPortkey());
    } catch (error) {
      portkeyError = error instanceof Error ? error.message : String(error);
      log(`  portkey could not start: ${portkeyError}`);
    }

    // Round trips first, on a function process whose every connection is opened under logging.
    const roundTrips = await countRoundTrips(bench, db, sim, cfg.roundTripRequests);
    // Then network round trips at a proxy, direct and through PgBouncer in transaction mode.
    const pooled = await poolerRoundTrips({
      dbUrl: db.url,
      simUrl: sim.url,
      requests: cfg.roundTripRequests,
      token: (await mintToken(db.sql, "bench-pooler", { models: [MODEL] })).token,
      call: callInvoke,
    });

    const tls = process.env.BENCH_UPSTREAM_TLS === "1" ? teardown.closes(await tlsFront(sim.url)) : undefined;
    const upstream = tls === undefined ? { simUrl: sim.url } : { simUrl: tls.url, env: { DENO_CERT: tls.caFile } };
    if (tls !== undefined) log(`  llm-invoke and the floor reach the simulator over TLS: ${tls.url}`);
    const edge = teardown.closes(await serveLlmInvokeAsOnSupabase({ dbUrl: db.url, ...upstream }));
    const floor = teardown.closes(await serveFloor({ dbUrl: db.url, ...upstream }));
    const edgeUrl = `${edge.url}/`;
    const floorUrl = `${floor.url}/`;
    const probe = { model: MODEL, prompt: PROMPT, request_id: "probe" };
    for (const url of [edgeUrl, floorUrl]) await probeInvoke(url, probe);
    const postmaster = await postmasterPid(db.sql);
    const pids: Record<CpuTarget, number> = { "llm-invoke-edge": edge.pid, floor: floor.pid };

    // Server-Timing of the answers of llm-invoke as on Supabase at BUDGET_AT: the measured ones of each round.
    const timings: Record<string, number>[] = [];
    let timed: Record<string, number>[] | null = null;
    const targets: Target[] = ["direct", "llm-invoke-edge", "floor", ...(portkey ? (["portkey"] as const) : [])];
    const direct = jsonPost(`${sim.url}/v1beta/models/${MODEL}:generateContent`, GOOGLE_KEY, GOOGLE_BODY);
    const viaPortkey = jsonPost(`${portkey?.url}/v1/chat/completions`, {
      "x-portkey-provider": "google",
      "x-portkey-custom-host": sim.url,
      authorization: `Bearer ${SIM_KEY}`,
    }, { model: MODEL, messages: [{ role: "user", content: PROMPT }] });
    const calls: Record<Target, (seq: string) => Promise<string>> = {
      direct: async () => await status(await fetch(...direct)),
      "llm-invoke-edge": async (id) => {
        const r = await callInvoke(edgeUrl, id);
        timed?.push(parseServerTiming(r.serverTiming ?? null));
        return String(r.status);
      },
      // The floor is sent llm-invoke's request, bytes and headers alike.
      floor: async (id) => String((await callInvoke(floorUrl, id)).status),
      portkey: async () => await status(await fetch(...viaPortkey)),
    };

    const cpuAt = Math.max(...cfg.concurrencies);
    // CPU seconds so far of a target's Deno process and of the whole PostgreSQL server (NaN where unreadable).
    const cpuNow = (t: CpuTarget) => ({
      deno: processCpuSeconds(pids[t]) ?? NaN,
      postgres: postmaster === undefined ? NaN : serverCpuSeconds(postmaster),
    });
    const cpuSpent = new Map(CPU_TARGETS.map((t) => [t, { deno: 0, postgres: 0, requests: 0 }]));
    const cells: Cell[] = [];
    for (const n of cfg.concurrencies) {
      const rounds = await rotatedRounds(targets, cfg.rounds, async (t, r) => {
        const cpuTarget = n === cpuAt ? CPU_TARGETS.find((c) => c === t) : undefined;
        const before = cpuTarget && cpuNow(cpuTarget);
        if (t === "llm-invoke-edge" && n === BUDGET_AT) timed = [];
        const result = await closedLoop({
          clients: Array.from({ length: n }, (_, i) => i),
          warmupMs: cfg.warmupMs,
          durationMs: cfg.durationMs,
          call: async (w, _worker, seq) => {
            const outcome = await calls[t](`b-${t}-${n}-${r}-${w}-${seq}`);
            if (outcome !== "200") throw new Error(`${t}: HTTP ${outcome}`);
            return outcome;
          },
      });
      // Only the round's last answers were measured (at concurrency 1 the warm-up calls come first).
      if (timed) timings.push(...timed.slice(Math.max(0, timed.length - result.calls)));
      timed = null;
      // Finalizes handed to waitUntil may still run: let them end inside this target's turn.
      if (t === "llm-invoke-edge") await sleep(SETTLE_MS);
      if (cpuTarget && before) {
        const after = cpuNow(cpuTarget);
        const spent = cpuSpent.get(cpuTarget)!;
        spent.deno += after.deno - before.deno;
        spent.postgres += after.postgres - before.postgres;
        spent.requests += result.totalCalls;
      }
      return result;
      });
      const pooled = new Map(targets.map((t) => [t, poolRounds(rounds.get(t)!)]));
      const base = pooled.get("direct")!.latencyMs;
      for (const t of targets) {
        const p = pooled.get(t)!;
        const cell: Cell = {
          ...p,
          target: t,
          addedMs: t === "direct" ? null : { p50: p.latencyMs.p50 - base.p50, p95: p.latencyMs.p95 - base.p95, p99: p.latencyMs.p99 - base.p99 },
        };
        cells.push(cell);
        log(
          `  c=${String(n).padStart(2)} ${t.padEnd(16)} ${String(cell.callsPerSecond).padStart(5)} req/s  p50 ${fmt(cell.latencyMs.p50)} p95 ${fmt(cell.latencyMs.p95)} p99 ${fmt(cell.latencyMs.p99)} ms` +
            (cell.addedMs ? `  added p50 ${fmt(cell.addedMs.p50)} p95 ${fmt(cell.addedMs.p95)} p99 ${fmt(cell.addedMs.p99)} ms` : "") +
            (cell.errors ? `  ERRORS ${cell.errors}: ${cell.firstError}` : ""),
        );
      }
    }

    // Then one more round of llm-invoke as on Supabase at WAITS_AT with pg_stat_activity sampled: its own
    // round, so the sampler's queries (a few hundred a second) touch none of the figures above.
    const sampledFrom = Date.now();
    const waits = await sampledWaits(db.url, cfg, WAITS_AT, (w, seq) => calls["llm-invoke-edge"](`b-waits-${w}-${seq}`));
    log(`  c=${WAITS_AT} llm-invoke-edge, pg_stat_activity sampled (${waits.samples} samples, every ${fmt(waits.meanIntervalMs)} ms): ` +
      `active ${fmt(waits.active)}: Lock:* ${fmt(waits.lock)}, IO:WalSync ${fmt(waits.walSync)}, CPU ${fmt(waits.cpu)} ` +
      `(${waits.callsPerSecond} req/s in the round; ${fmt((Date.now() - sampledFrom) / 1000, 1)} s)`);

    const cpu = CPU_TARGETS.map((t) => cpuPerRequest(t, cpuAt, cpuSpent.get(t)!));
    const ratios = cfg.concurrencies.map((n) => ratioAt(cells, n));
    const callerP50 = get(cells, "llm-invoke-edge", BUDGET_AT)?.latencyMs.p50;
    const directP50 = get(cells, "direct", BUDGET_AT)?.latencyMs.p50;
    const budget: LatencyBudget | null = callerP50 !== undefined && directP50 !== undefined
      ? latencyBudget(timings, { concurrency: BUDGET_AT, callerP50, directP50 })
      : null;
    const floorRows = await floorAdmissions(db.sql);
    const firstByte = await measureFirstByte(sim.url, edgeUrl, cfg.firstByteSamples);

    const failing = cells.filter((c) => c.errors > 0);
    const errors = cells.reduce((s, c) => s + c.errors, 0) + firstByte.errors;
    const simStats = sim.stats();
    return {
      id: "gateway-overhead",
      title: "Gateway overhead: llm-invoke (and Portkey) against calling the simulator directly",
      data: {
        config: cfg,
        prompt: PROMPT,
        model: MODEL,
        targets: Object.fromEntries(targets.map((t) => [t, LABEL[t].replaceAll("*", "").replaceAll("`", "")])),
        portkey: portkey ? { version: portkey.version } : { error: portkeyError },
        cells,
        ratios,
        cpu: { concurrency: cpuAt, postgresMeasured: postmaster !== undefined, perRequest: cpu },
        floor: { statement: FLOOR_STATEMENT, admissions: floorRows },
        firstByte,
        waits,
        latencyBudget: budget,
        roundTrips,
        poolerRoundTrips: pooled,
        simulator: { received: simStats.total.received, byStatus: simStats.total.byStatus },
        upstreamOverTls: tls !== undefined,
      },
      markdown: (tls === undefined ? "" : "\n**Upstream over TLS** (BENCH_UPSTREAM_TLS=1): llm-invoke and the floor call the simulator through a TLS front; the direct call and Portkey do not.\n") +
        markdown(cfg, cells, ratios, cpu, roundTrips, portkey, portkeyError) +
        waitsMarkdown(waits) +
        latencyBudgetMarkdown(budget, "llm-invoke as on Supabase") +
        firstByteMarkdown(firstByte, cells) +
        poolerRoundTripsMarkdown(pooled),
      headline: [...headline(cells, ratios, cpu, roundTrips), {
        figure: "Added latency to the first streamed byte, p50 (a whole answer's at c=1), llm-invoke as on Supabase",
        value: `${fmt(firstByte.addedMs.p50)} ms (${fmt(get(cells, "llm-invoke-edge", 1)?.addedMs?.p50 ?? NaN)} ms)`,
      }, {
        figure: `Where c=${WAITS_AT} waits, llm-invoke as on Supabase: mean active backends in any Lock:* wait / IO:WalSync / on CPU (pg_stat_activity every ~3 ms)`,
        value: `${fmt(waits.lock)} / ${fmt(waits.walSync)} / ${fmt(waits.cpu)} of ${fmt(waits.active)}`,
      }, ...(budget
        ? [{
          figure: `Latency budget at c=${BUDGET_AT}, llm-invoke as on Supabase, p50 ms (Server-Timing): phases; function total; outside the function`,
          value: `${budget.phases.map((p) => `${p.phase} ${fmt(p.p50, 2)}`).join(", ")}; total ${fmt(budget.totalP50, 2)}; ` +
            `outside ${fmt(budget.outsideP50, 2)} of ${fmt(budget.addedP50, 2)} added`,
        }]
        : []), ...pooledHeadline(pooled)],
      checks: [
        {
          name: "gateway overhead requests all answered 200, in every target",
          ok: errors === 0,
          detail: errors === 0
            ? `${cells.reduce((s, c) => s + c.totalCalls, 0)} requests over ${targets.length} targets, 0 errors; ${firstByte.samples * 2} streams, 0 errors`
            : `${errors} errors${failing.length ? ` in ${[...new Set(failing.map((c) => c.target))].join(", ")}: ${failing[0]!.firstError}` : ` in streams`}`,
        },
        {
          // Counted, so exact on any machine: the statements a success waits for, beyond the once-per-worker look-ups.
          name: "one database round trip on the caller's path per successful request, with the service key and with a scoped token",
          ok: onPathPerRequest(roundTrips.byStatement, roundTrips.succeeded) === 1 &&
            onPathPerRequest(roundTrips.token.byStatement, roundTrips.token.succeeded) === 1,
          detail: `service key: ${roundTripSummary(roundTrips)}; scoped token: ${tokenRoundTripSummary(roundTrips)}`,
        },
        {
          // Counted at a proxy, so exact: PgBouncer in transaction mode stands in for Supavisor (port 6543).
          name: "one network round trip on the caller's path per successful request, direct and through a transaction-mode pooler, with either credential",
          ok: pooled.rows.length > 0 && pooled.rows.every((r) => r.succeeded > 0 && r.onPathPerRequest === 1),
          detail: pooled.rows.map((r) => `${r.path}, ${r.credential}: ${r.onPathPerRequest} (${r.succeeded}/${r.requests} succeeded)`).join("; ") +
            (pooled.pgbouncer ? "" : "; PgBouncer not installed: the pooler was not measured"),
        },
      ],
    };
  } finally {
    await teardown.run();
  }
}

type Waits = Awaited<ReturnType<typeof sampledWaits>>;

/**
 * One closed-loop round of `call` at `n` callers, with the database's active backends sampled
 * (lib/wait-sampler.ts) over its measured window only (from the end of its warm-up).
 */
async function sampledWaits(dbUrl: string, cfg: OverheadConfig, n: number, call: (w: number, seq: number) => Promise<string>) {
  const sampler = await openWaitSampler(dbUrl);
  let summary: WaitSummary;
  let result: LoadResult;
  try {
    const round = closedLoop({
      clients: Array.from({ length: n }, (_, i) => i),
      warmupMs: cfg.warmupMs,
      durationMs: cfg.durationMs,
      call: async (w, _worker, seq) => {
        const outcome = await call(w, seq);
        if (outcome !== "200") throw new Error(`llm-invoke-edge (sampled round): HTTP ${outcome}`);
        return outcome;
      },
    });
    round.catch(() => undefined); // awaited below: a failure during the warm-up must not go unhandled
    await sleep(cfg.warmupMs);
    const sampling = sampler.sample(cfg.durationMs);
    sampling.catch(() => undefined); // the same
    result = await round;
    summary = await sampling;
  } catch (error) {
    await sampler.close();
    throw error;
  }
  await sleep(SETTLE_MS);
  return {
    concurrency: n,
    ...summary,
    /** The sampled round's own rate and latency (not pooled with the measured rounds). */
    callsPerSecond: result.callsPerSecond,
    latencyMs: result.latencyMs,
    errors: result.errors,
  };
}

function waitsMarkdown(w: Waits): string {
  const events = w.byEvent.slice(0, 8).map((e) => `\`${e.event}\` ${fmt(e.mean)}`).join(", ");
  const whom = w.byStatement.slice(0, 8)
    .map((e) => `\`${e.event}\` ${e.entry}${e.blockedBy === null ? "" : ` ← ${e.blockedBy}`} ${fmt(e.mean)}`).join(", ");
  return `
**Where c=${w.concurrency} waits.** One more round of llm-invoke as on Supabase at c=${w.concurrency} (${fmt(w.callsPerSecond)} requests a
second, p50 ${fmt(w.latencyMs.p50)} ms; not pooled with the rounds above), with \`pg_stat_activity\` read every ~3 ms on a
connection of its own over its measured window (${w.samples} samples, ${fmt(w.meanIntervalMs)} ms apart on average): the part's
database's client backends running a statement, the sampler's excluded, by what they waited on.

${table(["mean active backends", "in any `Lock:*` wait (advisory included)", "in `IO:WalSync`", "in `LWLock:WALWrite` (another's flush)", "on CPU (no wait)", "other"], [[
    fmt(w.active), fmt(w.lock), fmt(w.walSync), fmt(w.walWriteLock), fmt(w.cpu), fmt(w.active - w.lock - w.walSync - w.walWriteLock - w.cpu),
  ]], ["r", "r", "r", "r", "r", "r"])}

Every event seen, mean backends: ${events || "none"}.

Who waits for whom (the function each backend's statement calls; for a lock wait, ← the function the backend it
waits for is running), mean backends: ${whom || "none"}.
`;
}

/** After each round of llm-invoke as on Supabase, time for the finalizes it handed to waitUntil to end (the notes name it). */
const SETTLE_MS = 200;

type FirstByte = Awaited<ReturnType<typeof measureFirstByte>>;

/** Milliseconds to the first bytes of a streamed answer's body; the rest is read (and checked) too. */
async function timeToFirstByte(url: string, init: RequestInit): Promise<{ ms: number; ok: boolean }> {
  const started = performance.now();
  const res = await fetch(url, init);
  const reader = res.body!.getReader();
  let first = await reader.read();
  while (first.done !== true && first.value.byteLength === 0) first = await reader.read();
  const ms = performance.now() - started;
  let text = first.done === true ? "" : new TextDecoder().decode(first.value);
  for (let next = await reader.read(); next.done !== true; next = await reader.read()) text += new TextDecoder().decode(next.value);
  return { ms, ok: res.status === 200 && (text.includes("finishReason") || text.includes('"type":"done"')) };
}

async function measureFirstByte(simUrl: string, gatewayUrl: string, samples: number) {
  const gatewayBody = { model: MODEL, prompt: PROMPT, mode: "NO_WAIT", stream: true };
  const streams = {
    direct: jsonPost(`${simUrl}/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, GOOGLE_KEY, GOOGLE_BODY),
    gateway: jsonPost(gatewayUrl, { authorization: `Bearer ${SERVICE_KEY}` }, gatewayBody),
  };
  const ms = { direct: [] as number[], gateway: [] as number[] };
  let errors = 0;
  for (let i = 0; i < samples; i++) {
    // Interleaved, alternating which goes first.
    for (const k of i % 2 === 0 ? (["direct", "gateway"] as const) : (["gateway", "direct"] as const)) {
      const r = await timeToFirstByte(...streams[k]);
      ms[k].push(r.ms);
      if (!r.ok) errors++;
    }
  }
  const [d, g] = [summarize(ms.direct), summarize(ms.gateway)];
  // errors: streams that did not answer 200 or whose text was not whole.
  const added = { p50: g.p50 - d.p50, p95: g.p95 - d.p95 };
  return { samples, direct: { p50: d.p50, p95: d.p95 }, gateway: { p50: g.p50, p95: g.p95 }, addedMs: added, errors };
}

function firstByteMarkdown(fb: FirstByte, cells: Cell[]): string {
  const whole = get(cells, "llm-invoke-edge", 1)?.addedMs;
  return `
**The first streamed byte.** The same prompt streamed ${fb.samples} times per target, sequentially and interleaved: directly
from the simulator (\`streamGenerateContent?alt=sse\`) and through llm-invoke as on Supabase (\`"stream": true\`). The
simulator waits ${STREAM_CHUNK_DELAY_MS} ms between chunks, so a gateway that held chunks back would add that much. Time to the
first body bytes:

${table(["target", "p50 ms", "p95 ms"], [
    ["direct stream (baseline)", fmt(fb.direct.p50), fmt(fb.direct.p95)],
    ["llm-invoke stream", fmt(fb.gateway.p50), fmt(fb.gateway.p95)],
    ["added to the first byte", `**${fmt(fb.addedMs.p50)}**`, fmt(fb.addedMs.p95)],
    ["added to a whole non-streamed answer at c=1 (above)", whole ? fmt(whole.p50) : "—", whole ? fmt(whole.p95) : "—"],
  ], ["l", "r", "r"])}

The stream's first byte waits for the reservation (one round trip) and Google's first chunk, nothing else: finalize
runs after the last chunk.
`;
}

async function status(res: Response): Promise<string> {
  await res.arrayBuffer(); // the body is part of the call
  return String(res.status);
}

/** Google's request for the prompt, and its key, as the caller sends them directly. */
const GOOGLE_BODY = { contents: [{ role: "user", parts: [{ text: PROMPT }] }] };
const GOOGLE_KEY = { "x-goog-api-key": SIM_KEY };

/** A JSON POST: its URL and init (the body a string, so one init serves every call). */
function jsonPost(url: string, headers: Record<string, string>, body: unknown): [string, RequestInit] {
  const init = { method: "POST", headers: { "content-type": "application/json", ...headers } };
  return [url, { ...init, body: JSON.stringify(body) }];
}

/** llm-invoke's request (the floor is sent the same), with a request_id of its own. */
function callInvoke(url: string, id: string, credential?: string) {
  const body = { model: MODEL, prompt: PROMPT, mode: "NO_WAIT", request_id: `${id}-${randomUUID().slice(0, 8)}` };
  return postInvoke(url, body, { credential });
}

type RoundTrips = Awaited<ReturnType<typeof countRoundTrips>>;

async function countRoundTrips(
  bench: BenchServer,
  db: BenchDb,
  sim: GoogleSimulator,
  requests: number,
) {
  // Settings a session takes at connect: set them before the function opens any connection.
  await db.sql.unsafe(`alter database ${quoteIdent(db.name)} set log_statement = 'all'`);
  await trackFunctions(db);
  const entries: string[] = [];
  let counting = false;
  const off = bench.onLog((line) => {
    if (!counting) return;
    if (/\bLOG:\s+(execute\b|statement:)/.test(line)) entries.push(line);
    else if (!/\b(LOG|DETAIL|ERROR|WARNING|HINT|CONTEXT|STATEMENT):/.test(line) && entries.length) entries[entries.length - 1] += ` ${line.trim()}`;
  });
  let fn: ServerProcess | undefined;
  try {
    const { token } = await mintToken(db.sql, "bench-round-trips", { models: [MODEL] });
    const before = await rpcCalls(db);
    // A fresh function process, as on Supabase: everything it sends to this database is in the window,
    // its connection set-up and capability look-up included (they show up as once-per-worker lines),
    // and the finalizes it runs after the answers.
    fn = await serveLlmInvokeAsOnSupabase({ dbUrl: db.url, simUrl: sim.url });
    const url = `${fn.url}/`;
    /** `requests` sequential requests with one credential; how many succeeded (at least one must). */
    const sendAll = async (prefix: string, credential: string, what: string): Promise<number> => {
      let ok = 0;
      let lastFailure = "";
      for (let i = 0; i < requests; i++) {
        const r = await callInvoke(url, `${prefix}-${i}`, credential);
        if (r.status === 200) ok++;
        else lastFailure = `HTTP ${r.status} ${r.body.slice(0, 300)}`;
      }
      if (ok === 0) throw new Error(`llm-invoke ${what}: ${lastFailure}`);
      await sleep(1000); // a finalize runs after the answer
      return ok;
    };
    counting = true;
    const succeeded = await sendAll("rt", SERVICE_KEY, "is not ready");
    // Then the same number of requests with a scoped token: its check is cached per worker.
    const serviceEntries = entries.length;
    const tokenSucceeded = await sendAll("rt-token", token, "refused the scoped token");
    counting = false;
    // Backends exit and flush their function statistics; the process prints its waitUntil counts.
    const output = await fn.close();
    fn = undefined;
    const waitUntil = waitUntilCounts(output);
    await sleep(700);
    const after = await rpcCalls(db);
    const byStatement = countStatements(entries.slice(0, serviceEntries));
    const tokenByStatement = countStatements(entries.slice(serviceEntries));
    const rpc = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    // A batch's finalizes are counted under google_ai_finalize_attempt already: the batch itself is not added.
    const rpcTotal = Object.entries(rpc).filter(([k]) => k !== FINALIZE_BATCH_RPC).reduce((s: number, [, v]) => s + (v as number), 0);
    // (How they are counted: the part's notes.)
    return {
      requests,
      succeeded,
      /** The function process's own count of the tasks handed to waitUntil, at its exit (null if it printed none). */
      waitUntil,
      /** Calls of the top-level RPCs by pg_stat_user_functions, per successful request. */
      rpcCallsPerRequest: round(rpcTotal / Math.max(1, succeeded + tokenSucceeded), 2),
      rpcCalls: rpc,
      byStatement,
      /** The same process's requests with a scoped token (Kaggle's credential), after the service key's. */
      token: { requests, succeeded: tokenSucceeded, byStatement: tokenByStatement },
    };
  } finally {
    off();
    await fn?.close();
    await db.sql.unsafe(`alter database ${quoteIdent(db.name)} reset log_statement`);
    await db.sql.unsafe(`alter database ${quoteIdent(db.name)} reset track_functions`);
  }
}

/** Statements from the server log, named: a gateway RPC by its name, the once-per-worker ones by what they are. */
function countStatements(entries: string[]): Record<string, number> {
  const byStatement: Record<string, number> = {};
  for (const e of entries) {
    // The cached look-ups first: they are google_ai_ functions too, but made once per worker.
    const name = (/google_ai_model_(traits|features|limits)\b/.test(e) ? "model capabilities (cached per worker)" : undefined) ??
      (/google_ai_service_tier_list\b/.test(e) ? "service tiers (cached per worker)" : undefined) ??
      (/google_ai_provider_list\b/.test(e) ? "provider rows (cached per worker)" : undefined) ??
      (/google_ai_check_token\b/.test(e) ? "token check (cached per worker, then refreshed in the background)" : undefined) ??
      (/google_ai_cache_defaults_exist\b/.test(e)
        ? "whether the owner set response cache defaults (cached per worker, then refreshed in the background)"
        : undefined) ??
      /public\.(google_ai_\w+)\s*\(/.exec(e)?.[1] ??
      (/pg_catalog\.pg_type/.test(e) ? "postgres.js type look-up (per new connection)" : undefined) ??
      e.replace(/^.*?(execute[^:]*|statement):\s*/, "").slice(0, 50);
    byStatement[name] = (byStatement[name] ?? 0) + 1;
  }
  return byStatement;
}

/**
 * The statements a success runs in its waitUntil task, after the answer: google_ai_finalize alone, or
 * google_ai_finalize_calls for the successes that met while one was being written (store/finalize-queue.ts).
 */
const AFTER_ANSWER = /^google_ai_finalize/;

/** Headline rows of the pooler comparison: round trips and sequential latency, direct beside the pooler. */
function pooledHeadline(p: PoolerRoundTrips) {
  const row = (path: string, credential: string) => p.rows.find((r) => r.path === path && r.credential === credential);
  // Direct is always counted; the pooler only where PgBouncer is installed.
  return (["service key", "scoped token"] as const).map((credential) => {
    const d = row("direct", credential)!;
    const q = row("pooler", credential);
    return {
      figure: `Network round trips on the caller's path per request, direct / through PgBouncer in transaction mode (${credential}); sequential p50`,
      value: `${d.onPathPerRequest} / ${q ? q.onPathPerRequest : "—"}; ${fmt(d.latencyP50Ms, 2)} / ${q ? fmt(q.latencyP50Ms, 2) : "—"} ms`,
    };
  });
}

/** CPU per request over a target's rounds at one concurrency (warm-up calls included on both sides). */
function cpuPerRequest(target: CpuTarget, concurrency: number, spent: CpuSpent) {
  const per = (s: number) => (Number.isNaN(s) || !spent.requests ? null : (s * 1000) / spent.requests);
  // requests: completed in the measured rounds, warm-up included (the CPU was read around all of them).
  return { target, concurrency, requests: spent.requests, denoMs: per(spent.deno), postgresMs: per(spent.postgres) };
}

/**
 * llm-invoke as on Supabase: its added latency divided by the floor's and by Portkey's, same concurrency;
 * null where the other target's added latency is not above zero.
 */
function ratioAt(cells: Cell[], n: number) {
  const e = get(cells, "llm-invoke-edge", n)?.addedMs;
  // A ratio to an added latency that is not above zero (noise at a tail) has no meaning: null.
  const div = (a: number, b: number) => (b > 0 ? a / b : null);
  const over = (other: Percentiles | null | undefined) =>
    e && other ? { p50: div(e.p50, other.p50), p95: div(e.p95, other.p95), p99: div(e.p99, other.p99) } : null;
  const to = (t: Target) => over(get(cells, t, n)?.addedMs);
  return { concurrency: n, toFloor: to("floor"), toPortkey: to("portkey") };
}

function get(cells: Cell[], t: Target, n: number) {
  return cells.find((c) => c.target === t && c.connections === n);
}

const added = (a: Percentiles | null | undefined) => (a ? `${fmt(a.p50)} / ${fmt(a.p95)} / ${fmt(a.p99)} ms` : "—");

function headline(cells: Cell[], ratios: Ratio[], cpu: CpuPerRequest[], rt: RoundTrips) {
  const ns = [...new Set(cells.map((c) => c.connections))];
  const rows = ns.flatMap((n) => {
    const e = get(cells, "llm-invoke-edge", n);
    return e?.addedMs
      ? [{
        figure: `Added latency at concurrency ${n}, p50 / p95 / p99: llm-invoke as on Supabase (Portkey; floor)`,
        value: `${added(e.addedMs)} (${added(get(cells, "portkey", n)?.addedMs)}; ${added(get(cells, "floor", n)?.addedMs)})`,
      }]
      : [];
  });
  rows.push({
    figure: `llm-invoke as on Supabase, added latency p50 ÷ the floor's / ÷ Portkey's, at concurrency ${ratios.map((r) => r.concurrency).join(" / ")}`,
    value: ratios.map((r) => `${times(r.toFloor?.p50)} / ${times(r.toPortkey?.p50)} at c=${r.concurrency}`).join("; "),
  });
  const e = cpu.find((c) => c.target === "llm-invoke-edge");
  const f = cpu.find((c) => c.target === "floor");
  if (e && f) {
    rows.push({
      figure: `CPU per request at concurrency ${e.concurrency}, Deno / PostgreSQL: llm-invoke as on Supabase (floor)`,
      value: `${fmt(e.denoMs, 3)} / ${fmt(e.postgresMs, 3)} ms (${fmt(f.denoMs, 3)} / ${fmt(f.postgresMs, 3)} ms)`,
    });
  }
  rows.push({ figure: "Database round trips per successful llm-invoke request (as on Supabase)", value: roundTripSummary(rt) });
  rows.push({ figure: "The same with a scoped token (Kaggle's credential), same process", value: tokenRoundTripSummary(rt) });
  return rows;
}

/** "1 on the caller's path (reserve 1), 1 after the answer in waitUntil (finalize 1; ...), plus once per worker (...)". */
function roundTripSummary(rt: RoundTrips): string {
  const wu = rt.waitUntil;
  return statementSummary(rt.byStatement, rt.succeeded, wu
    ? `${wu.handed} tasks handed to waitUntil for ${rt.succeeded + rt.token.succeeded} successes with both credentials, ${wu.rejected} rejected`
    : "the process printed no waitUntil count");
}

/** The same for the scoped token's requests (same process, after the service key's). */
const tokenRoundTripSummary = (rt: RoundTrips) => statementSummary(rt.token.byStatement, rt.token.succeeded, null);

/** Counted statements by where they fall: before the answer, after it (waitUntil), once per worker. */
function byPlace(byStatement: Record<string, number>) {
  const per = Object.entries(byStatement).filter(([k]) => k.startsWith("google_ai_"));
  return {
    onPath: per.filter(([k]) => !AFTER_ANSWER.test(k)),
    after: per.filter(([k]) => AFTER_ANSWER.test(k)),
    once: Object.entries(byStatement).filter(([k]) => !k.startsWith("google_ai_")),
  };
}

const perRequest = (xs: [string, number][], succeeded: number) => xs.reduce((s, [, v]) => s + v, 0) / Math.max(1, succeeded);

/** Per successful request: the gateway statements before the answer (the once-per-worker look-ups left out). */
function onPathPerRequest(byStatement: Record<string, number>, succeeded: number): number {
  return perRequest(byPlace(byStatement).onPath, succeeded);
}

function statementSummary(byStatement: Record<string, number>, succeeded: number, waitUntilNote: string | null): string {
  const { onPath, after, once } = byPlace(byStatement);
  const n = Math.max(1, succeeded);
  const list = (xs: [string, number][]) => xs.map(([k, v]) => `\`${k}\` ${fmt(v / n, 2)}`).join(", ");
  const sum = (xs: [string, number][]) => perRequest(xs, succeeded);
  return `${fmt(sum(onPath), 2)} on the caller's path (${list(onPath)}), ${fmt(sum(after), 2)} after the answer in \`EdgeRuntime.waitUntil\` ` +
    `(${list(after)}${waitUntilNote === null ? "" : `; ${waitUntilNote}`})` +
    (once.length ? `, plus once per worker process: ${once.map(([k, v]) => `${k} × ${v}`).join(", ")} over ${succeeded} requests` : "");
}

function markdown(
  cfg: OverheadConfig,
  cells: Cell[],
  ratios: Ratio[],
  cpu: CpuPerRequest[],
  rt: RoundTrips,
  portkey: Portkey | undefined,
  portkeyError: string | undefined,
): string {
  const rows = cells.map((c) => latencyRow(LABEL[c.target], c));
  const ratioRows = ratios.map((r) => [
    r.concurrency,
    fmt(get(cells, "llm-invoke-edge", r.concurrency)?.addedMs?.p50),
    fmt(get(cells, "floor", r.concurrency)?.addedMs?.p50),
    fmt(get(cells, "portkey", r.concurrency)?.addedMs?.p50),
    `**${times(r.toFloor?.p50)}** / ${times(r.toFloor?.p95)}`,
    `**${times(r.toPortkey?.p50)}** / ${times(r.toPortkey?.p95)}`,
  ]);
  const cpuRows = cpu.map((c) => [LABEL[c.target], c.concurrency, fmt(c.requests), fmt(c.denoMs, 3), fmt(c.postgresMs, 3)]);
  return `
One prompt (${PROMPT.length} characters), model \`${MODEL}\`, the Google simulator answering at once (no
artificial latency), limits that never bind. Closed loop at concurrency ${cfg.concurrencies.join(" and ")}, ${cfg.rounds}
interleaved rounds of ${cfg.durationMs / 1000} s per target; latency as the calling Node.js process sees it (fetch,
keep-alive). Added latency = the target's percentile minus the direct call's at the same concurrency.

Targets (how each is served: below): direct, llm-invoke as on Supabase, the floor, Portkey.

${table(["target", "concurrency", "requests/s", "p50 ms", "p95 ms", "p99 ms", "added p50 / p95 / p99 ms"], rows, ["l", "r", "r", "r", "r", "r", "r"])}

**llm-invoke as on Supabase against the floor and against Portkey**: its added latency divided by theirs, at
the same concurrency in the same rounds (p50 in bold, then p95; "—" where the other's added latency is not
above zero). The targets set for this figure are within
1.5× of Portkey's added latency at concurrency 1 and within 2× at concurrency 16; they are reported here, not
asserted (a ratio of two small differences moves a lot from run to run on a shared machine).

${table(["concurrency", "added p50 ms: as on Supabase", "floor", "Portkey", "÷ floor, p50 / p95", "÷ Portkey, p50 / p95"], ratioRows, ["r", "r", "r", "r", "r", "r"])}

**CPU per request** at concurrency ${cpu[0]?.concurrency ?? "—"} (how it is read: below):

${table(["target", "concurrency", "requests", "Deno CPU ms/request", "PostgreSQL CPU ms/request"], cpuRows, ["l", "r", "r", "r", "r"])}

**Database round trips per successful request: ${roundTripSummary(rt)}**; with a scoped token (the same process,
${rt.token.requests} requests after the service key's): **${tokenRoundTripSummary(rt)}**; the
gateway's RPCs called per request by \`pg_stat_user_functions\`: ${rt.rpcCallsPerRequest}, over ${rt.requests} sequential requests
(each finalize once, one written inside a \`google_ai_finalize_calls\` batch included; batches:
${rt.rpcCalls[FINALIZE_BATCH_RPC] ?? 0}; how they are counted: below).

**Portkey**: ${portkey ? `@portkey-ai/gateway ${portkey.version} (how it is set up: below)` : `not measured, it could not be started in this run: ${portkeyError}`}.
`;
}
