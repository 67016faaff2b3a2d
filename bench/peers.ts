// Part 5: the peers' exactness under a burst on the same Postgres: rate-limiter-flexible's
// RateLimiterPostgres, fired from several real child processes at once, and a naive read-then-write
// limiter. Their throughput runs in the reservation RPC part's rounds beside ours, their WAIT-mode
// behaviour at 3× demand in the WAIT part, the gateway peer (Portkey) in the gateway overhead part.
import { closeClients, openClients, type BenchServer } from "./lib/db.ts";
import { waitForSecondOfMinute } from "./lib/clock.ts";
import { naiveLimiter, createNaiveTable } from "./lib/naive.ts";
import { table, type PartResult } from "./lib/report.ts";
import { rlflexBurst } from "./lib/rlflex-procs.ts";
import type { Sql } from "../shared/db/migrate.ts";

export interface PeersConfig {
  burst: { connections: number; callers: number; processes: number; limit: number };
}

export async function runPeers(bench: BenchServer, cfg: PeersConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("peers");
  try {
    await createNaiveTable(db.sql);
    const burst = await bursts(db.url, db.sql, cfg, log);
    return {
      id: "peers",
      title: "Peers on the same Postgres: rate-limiter-flexible and a naive limiter under a burst",
      data: { config: cfg, burst },
      markdown: markdown(burst),
      headline: [
        {
          figure: `Burst of ${cfg.burst.callers} against a limit of ${cfg.burst.limit}: admitted by rate-limiter-flexible (${cfg.burst.processes} processes) / naive`,
          value: `${burst.rlflex.admitted} / ${burst.naive.admitted} (over-admission ${burst.rlflex.overAdmission} / ${burst.naive.overAdmission})`,
        },
      ],
      checks: [
        {
          name: "peer bursts ran without errors",
          ok: burst.rlflex.errors === 0 && burst.naive.errors === 0,
          detail: `burst errors ${burst.rlflex.errors + burst.naive.errors}`,
        },
      ],
    };
  } finally {
    await db.drop();
  }
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

function markdown(burst: { rlflex: BurstResult; naive: BurstResult }): string {
  return `
**Burst exactness.** ${burst.rlflex.callers} callers at once against a limit of ${burst.rlflex.limit} on one key:

${table(["limiter", "how", "admitted", "over-admission"], [
    ["rate-limiter-flexible", `${burst.rlflex.processes} child processes × ${Math.ceil(burst.rlflex.connections / burst.rlflex.processes!)} connections`, burst.rlflex.admitted, `**${burst.rlflex.overAdmission}**`],
    ["naive read-then-write", `1 process, ${burst.naive.connections} connections`, burst.naive.admitted, `**${burst.naive.overAdmission}**`],
  ], ["l", "l", "r", "r"])}
`;
}
