// Part 5: the peers on the same Postgres. rate-limiter-flexible's RateLimiterPostgres (throughput
// at the connection counts of part 1 against the `select 1` of its own driver, and a burst fired
// from several real child processes at once) and a naive read-then-write limiter (the same burst).
// Their WAIT-mode behaviour at 3× demand is measured in part 3, side by side with ours; the gateway
// peer (Portkey) in part 4.
import { closeClients, openClients, setKeys, setModel, type BenchServer } from "./lib/db.ts";
import { waitForSecondOfMinute } from "./lib/clock.ts";
import { closedLoop, poolRounds, type LoadResult } from "./lib/load.ts";
import { createNaiveTable, naiveLimiter } from "./lib/naive.ts";
import { fmt, pct, table, type PartResult } from "./lib/report.ts";
import { createRlflex } from "./lib/rlflex.ts";
import { rlflexBurst } from "./lib/rlflex-procs.ts";
import { median } from "./lib/stats.ts";
import type { Sql } from "../shared/db/migrate.ts";

export interface PeersConfig {
  concurrencies: number[];
  rounds: number;
  warmupMs: number;
  durationMs: number;
  burst: { connections: number; callers: number; processes: number; limit: number };
}

type Variant = "pgjs-select1" | "ours" | "naive" | "pg-select1" | "rlflex";
const LABEL: Record<Variant, string> = {
  "pgjs-select1": "`select 1` over postgres.js (ceiling for ours and naive)",
  ours: "ours: `google_ai_reserve`, 1 quota group (admitted)",
  naive: "naive read-then-write (admitted; 2 statements)",
  "pg-select1": "`select 1` over pg (ceiling for rate-limiter-flexible)",
  rlflex: "rate-limiter-flexible `consume()` (admitted)",
};
/** The `select 1` each variant is compared with: the same driver, the same connections. */
const CEILING: Record<Variant, Variant> = {
  "pgjs-select1": "pgjs-select1",
  ours: "pgjs-select1",
  naive: "pgjs-select1",
  "pg-select1": "pg-select1",
  rlflex: "pg-select1",
};
const OURS_MODEL = "bench-peers-1-group";

interface Cell extends Omit<LoadResult, "samples"> {
  variant: Variant;
  rounds: number[];
  ratioToSelect1: number | null;
}

export async function runPeers(bench: BenchServer, cfg: PeersConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("peers");
  try {
    await createNaiveTable(db.sql);
    await setModel(db.sql, OURS_MODEL, { rpm: 2_000_000_000, tpm: 2_000_000_000, rpd: 2_000_000_000 });
    await setKeys(db.sql, [{ alias: "peers", project: "proj-peers", models: [OURS_MODEL] }]);
    const cells = await throughput(db.url, cfg, log);
    const burst = await bursts(db.url, db.sql, cfg, log);
    return {
      id: "peers",
      title: "Peers on the same Postgres: rate-limiter-flexible and a naive limiter",
      data: { config: cfg, throughput: cells, burst },
      markdown: markdown(cfg, cells, burst),
      headline: [
        {
          figure: `Burst of ${cfg.burst.callers} against a limit of ${cfg.burst.limit}: admitted by rate-limiter-flexible (${cfg.burst.processes} processes) / naive`,
          value: `${burst.rlflex.admitted} / ${burst.naive.admitted} (over-admission ${burst.rlflex.overAdmission} / ${burst.naive.overAdmission})`,
        },
        ...[8, 32].flatMap((n) => {
          const c = cells.find((x) => x.variant === "rlflex" && x.connections === n);
          const o = cells.find((x) => x.variant === "ours" && x.connections === n);
          return c && o
            ? [{
              figure: `Calls/s at ${n} connections, same rounds: rate-limiter-flexible consume() / ours reserve (each vs its driver's select 1)`,
              value: `${fmt(c.callsPerSecond)} (${pct(c.ratioToSelect1)}) / ${fmt(o.callsPerSecond)} (${pct(o.ratioToSelect1)})`,
            }]
            : [];
        }),
      ],
      checks: [
        {
          name: "peer measurements ran without errors",
          ok: cells.every((c) => c.errors === 0) && burst.rlflex.errors === 0 && burst.naive.errors === 0,
          detail: `throughput errors ${cells.reduce((s, c) => s + c.errors, 0)}, burst errors ${burst.rlflex.errors + burst.naive.errors}`,
        },
      ],
    };
  } finally {
    await db.drop();
  }
}

async function throughput(url: string, cfg: PeersConfig, log: (s: string) => void): Promise<Cell[]> {
  const cells: Cell[] = [];
  const HUGE = 2_000_000_000;
  for (const n of cfg.concurrencies) {
    const rl = await createRlflex(url, n, HUGE);
    const pgjs = await openClients(url, n);
    const naive = pgjs.map((c) => naiveLimiter(c, "naive-tp", HUGE));
    const variants: Variant[] = ["pgjs-select1", "ours", "naive", "pg-select1", "rlflex"];
    const rounds = new Map<Variant, LoadResult[]>(variants.map((v) => [v, []]));
    const ratios = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    try {
      for (let r = 0; r < cfg.rounds; r++) {
        const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
        const rate = new Map<Variant, number>();
        for (const v of order) {
          const workers = Array.from({ length: n }, (_, i) => i);
          const result = await closedLoop({
            clients: workers,
            warmupMs: cfg.warmupMs,
            durationMs: cfg.durationMs,
            call: async (w, _worker, seq) => {
              switch (v) {
                case "pg-select1":
                  await rl.pool.query("select 1");
                  return "ok";
                case "pgjs-select1":
                  await pgjs[w]!`select 1`;
                  return "ok";
                case "ours": {
                  const [row] = await pgjs[w]!<{ r: { ok: boolean } }[]>`
                    select public.google_ai_reserve(${OURS_MODEL}, 100, 'bench-peers', ${`peers-${n}-${r}-${w}-${seq}`}) as r`;
                  return row!.r.ok ? "admitted" : "refused";
                }
                case "rlflex":
                  return (await rl.tryOnce("rlflex-tp")).ok ? "admitted" : "refused";
                case "naive":
                  return (await naive[w]!()).ok ? "admitted" : "refused";
              }
            },
          });
          rounds.get(v)!.push(result);
          rate.set(v, result.callsPerSecond);
        }
        for (const v of variants) ratios.get(v)!.push(rate.get(v)! / rate.get(CEILING[v])!);
      }
    } finally {
      await rl.close();
      await closeClients(pgjs);
    }
    for (const v of variants) {
      const pooled = poolRounds(rounds.get(v)!);
      const cell: Cell = { ...pooled, variant: v, ratioToSelect1: CEILING[v] === v ? null : median(ratios.get(v)!) };
      cells.push(cell);
      log(
        `  ${String(n).padStart(3)} conn  ${v.padEnd(12)} ${String(cell.callsPerSecond).padStart(6)} calls/s  p50 ${fmt(cell.latencyMs.p50)} p99 ${fmt(cell.latencyMs.p99)} ms` +
          (cell.ratioToSelect1 !== null ? `  (${(cell.ratioToSelect1 * 100).toFixed(1)}% of select 1)` : "") +
          (cell.errors ? `  ERRORS ${cell.errors}: ${cell.firstError}` : ""),
      );
    }
  }
  return cells;
}

interface BurstResult {
  limit: number;
  callers: number;
  connections: number;
  processes?: number;
  admitted: number;
  refused: number;
  errors: number;
  overAdmission: number;
  firstError?: string;
  burstMs: number;
}

async function bursts(url: string, sql: Sql, cfg: PeersConfig, log: (s: string) => void): Promise<{ rlflex: BurstResult; naive: BurstResult }> {
  const { connections, callers, processes, limit } = cfg.burst;
  // rate-limiter-flexible: N processes, each with its share of the connections and callers.
  await waitForSecondOfMinute(2, 45);
  const t0 = performance.now();
  const outs = await rlflexBurst(
    Array.from({ length: processes }, (_, p) => ({
      kind: "burst" as const,
      url,
      connections: Math.ceil(connections / processes),
      points: limit,
      key: "rlflex-burst",
      callers: Math.floor(callers / processes) + (p < callers % processes ? 1 : 0),
    })),
  );
  const rlAdmitted = outs.reduce((s, o) => s + o.admitted, 0);
  const rlflex: BurstResult = {
    limit,
    callers,
    connections,
    processes,
    admitted: rlAdmitted,
    refused: outs.reduce((s, o) => s + o.refused, 0),
    errors: outs.reduce((s, o) => s + o.errors, 0),
    overAdmission: Math.max(0, rlAdmitted - limit),
    ...(outs.find((o) => o.firstError) ? { firstError: outs.find((o) => o.firstError)!.firstError } : {}),
    burstMs: Math.round(performance.now() - t0),
  };
  const [{ points }] = await sql<{ points: number }[]>`select points from public.bench_rlflex where key like '%rlflex-burst'`;
  log(`  rate-limiter-flexible, ${processes} processes: ${rlAdmitted} admitted of ${callers} against ${limit} (its row counts ${points} points consumed)`);

  // naive: one process, every caller on its own connection slot, fired at once.
  const clients = await openClients(url, connections);
  try {
    await waitForSecondOfMinute(2, 45);
    const s = performance.now();
    let errors = 0;
    let firstError: string | undefined;
    const answers = await Promise.all(
      Array.from({ length: callers }, async (_, i) => {
        try {
          return (await naiveLimiter(clients[i % clients.length]!, "naive-burst", limit)()).ok;
        } catch (error) {
          errors++;
          firstError ??= String(error);
          return false;
        }
      }),
    );
    const admitted = answers.filter(Boolean).length;
    const [{ used }] = await sql<{ used: number }[]>`select coalesce(sum(used), 0)::int as used from public.bench_naive_counters where key = 'naive-burst'`;
    log(`  naive read-then-write: ${admitted} admitted of ${callers} against ${limit} (its counter says ${used})`);
    return {
      rlflex,
      naive: {
        limit,
        callers,
        connections,
        admitted,
        refused: callers - admitted - errors,
        errors,
        overAdmission: Math.max(0, admitted - limit),
        ...(firstError ? { firstError } : {}),
        burstMs: Math.round(performance.now() - s),
      },
    };
  } finally {
    await closeClients(clients);
  }
}

function markdown(cfg: PeersConfig, cells: Cell[], burst: { rlflex: BurstResult; naive: BurstResult }): string {
  const rows = cells.map((c) => [
    LABEL[c.variant],
    c.connections,
    fmt(c.callsPerSecond),
    c.ratioToSelect1 === null ? "1 (ceiling)" : `${fmt(c.ratioToSelect1 * 100, 1)}%`,
    fmt(c.latencyMs.p50),
    fmt(c.latencyMs.p99),
  ]);
  return `
**Throughput** (closed loop, ${cfg.rounds} interleaved rounds of ${cfg.durationMs / 1000} s per cell, median round; limits
that never bind, one key or quota group). Ours runs again here, in the same rounds as the peers, so the
comparison is made in the same minutes. rate-limiter-flexible runs on node-postgres (pg), ours and the naive
limiter on postgres.js, so each is also compared with \`select 1\` over its own driver and connections.

${table(["limiter", "connections", "calls/s", "vs `select 1`", "p50 ms", "p99 ms"], rows, ["l", "r", "r", "r", "r", "r"])}

**Burst exactness.** ${burst.rlflex.callers} callers at once against a limit of ${burst.rlflex.limit} on one key:

${table(["limiter", "how", "admitted", "over-admission"], [
    ["rate-limiter-flexible", `${burst.rlflex.processes} child processes × ${Math.ceil(burst.rlflex.connections / burst.rlflex.processes!)} connections`, burst.rlflex.admitted, `**${burst.rlflex.overAdmission}**`],
    ["naive read-then-write", `1 process, ${burst.naive.connections} connections`, burst.naive.admitted, `**${burst.naive.overAdmission}**`],
  ], ["l", "l", "r", "r"])}

`;
}
