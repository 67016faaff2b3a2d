// Part 2: exactness under a burst. Far more simultaneous callers than the limit allows, each a
// reservation on its own connection slot, fired at once; then every window is counted from the
// attempt log (and cross-checked against the callers' answers and the counter rows). Over-admission
// = the sum over (quota group, window) of admitted − limit where positive: it must be 0. Then the
// peers take the same burst on one key: rate-limiter-flexible from several real child processes at
// once, and a naive read-then-write limiter.
import { closeClients, openClients, setKeys, setModel, type BenchServer, type KeySpec, type ModelLimits } from "./lib/db.ts";
import { waitForSecondOfMinute } from "./lib/clock.ts";
import { naiveLimiter, createNaiveTable } from "./lib/naive.ts";
import { fmt, table, type PartResult } from "./lib/report.ts";
import { rlflexBurst } from "./lib/rlflex-procs.ts";
import { type Burst, fireAtOnce } from "./lib/wait-client.ts";
import type { Sql } from "../shared/db/migrate.ts";

export interface ExactnessConfig {
  connections: number;
  callers: number;
  /** The peers' burst: rate-limiter-flexible's processes and the limit on their key. */
  peers: { processes: number; limit: number };
}

interface Scenario {
  id: string;
  title: string;
  limits: ModelLimits;
  /** Tokens for caller i. */
  tokens: (i: number) => number;
  /** Injected clock for caller i (null: the database clock, i.e. google_ai_reserve_models). */
  at: ((i: number) => string) | null;
}

// 4 keys in 3 quota groups: two keys of one Google project share its quota, one project with one
// key, and one key without a project (its own group, key:<id>).
const KEYS: KeySpec[] = [
  { alias: "a1", project: "proj-a" },
  { alias: "a2", project: "proj-a" },
  { alias: "b1", project: "proj-b" },
  { alias: "c1", project: "proj-c" },
];
const GROUPS = 3;

const mixed = (i: number) => 50 + ((i * 7919) % 1000); // deterministic sizes, 50..1049 tokens

const SCENARIOS: Scenario[] = [
  { id: "rpm", title: "RPM 30 (gemma-3-27b-it's limit)", limits: { rpm: 30, tpm: null, rpd: null }, tokens: () => 100, at: null },
  { id: "tpm", title: "TPM 15,000, requests of 50–1,049 tokens", limits: { rpm: null, tpm: 15_000, rpd: null }, tokens: mixed, at: null },
  { id: "rpd", title: "RPD 20 (gemini-2.5-flash's limit)", limits: { rpm: null, tpm: null, rpd: 20 }, tokens: () => 100, at: null },
  {
    id: "all-three",
    title: "RPM 30 + TPM 15,000 + RPD 75 at once, a burst in each of 3 minutes of one day (injected clock): large requests in the 1st minute (TPM binds), small ones after (RPM, then RPD binds)",
    limits: { rpm: 30, tpm: 15_000, rpd: 75 },
    tokens: (i) => (i % 3 === 0 ? 400 + ((i * 7919) % 650) : 20 + ((i * 7919) % 180)),
    at: (i) => `2026-11-23 18:0${i % 3}:30+00`,
  },
];

interface Window {
  group: string;
  window: string;
  admitted: number;
  tokens: number;
}

type ScenarioResult = Awaited<ReturnType<typeof count>>;

export async function runExactness(bench: BenchServer, cfg: ExactnessConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("exactness");
  let clients: Sql[] = [];
  try {
    await setKeys(db.sql, KEYS);
    log(`  opening ${cfg.connections} connections`);
    clients = await openClients(db.url, cfg.connections);
    // Warm every connection (statements prepared, function plans cached) with a call that books
    // nothing: an unknown model is refused before any counter is touched.
    await Promise.all(clients.map((c) => c`select public.google_ai_reserve_models(array['bench-warm-up-no-such-model'], 1, 'burst', null, 'warm')`));
    await Promise.all(clients.map((c) => c`select public.google_ai_reserve_models_at(now(), jsonb_populate_record(null::public.google_ai_reservation,
      ${JSON.stringify({ models: ["bench-warm-up-no-such-model"], estimated_tokens: 1, caller: "burst", request_id: "warm" })}::text::jsonb))`));
    const results: ScenarioResult[] = [];
    for (const sc of SCENARIOS) {
      const model = `burst-${sc.id}`;
      await setModel(db.sql, model, sc.limits);
      // Real-clock bursts start away from a minute boundary, so one burst is one minute window.
      if (sc.at === null) await waitForSecondOfMinute(2, 50);
      const t0 = performance.now();
      // Injected clocks move forward like real time: the callers of each minute burst together, one
      // minute after the other (the RPC never moves a window backwards, so out-of-order clocks
      // would all land in the latest minute).
      const phases = new Map<string, number[]>();
      for (let i = 0; i < cfg.callers; i++) {
        const key = sc.at === null ? "now" : sc.at(i);
        phases.set(key, [...(phases.get(key) ?? []), i]);
      }
      const answers: (Answer & { i: number })[] = [];
      for (const [, callers] of [...phases.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        answers.push(...(await Promise.all(
          callers.map(async (i) => {
            const c = clients[i % clients.length]!;
            try {
              const [row] = sc.at === null
                ? await c<{ r: Answer }[]>`select public.google_ai_reserve_models(array[${model}], ${sc.tokens(i)}, 'burst', null, ${`${sc.id}-${i}`}) as r`
                : await c<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${sc.at(i)}::timestamptz, jsonb_populate_record(
                    null::public.google_ai_reservation, ${JSON.stringify({ models: [model], estimated_tokens: sc.tokens(i),
                      caller: "burst", request_id: `${sc.id}-${i}` })}::text::jsonb)) as r`;
              return { i, ...row!.r };
            } catch (error) {
              return { i, ok: false, limit: "error", error: String(error) } as Answer & { i: number };
            }
          }),
        )));
      }
      const burstMs = performance.now() - t0;
      const r = await count(db.sql, model, sc, answers, cfg, burstMs);
      results.push(r);
      log(
        `  ${sc.id.padEnd(10)} ${cfg.callers} callers: admitted ${r.admitted}, over-admission ${r.overAdmission.total}` +
          ` (rpm ${r.overAdmission.rpm}, tpm ${r.overAdmission.tpm}, rpd ${r.overAdmission.rpd}), refused ${JSON.stringify(r.refusedBy)}` +
          `, ${Math.round(burstMs)} ms${r.consistent ? "" : `  INCONSISTENT: ${r.consistencyNote}`}`,
      );
    }
    const over = results.reduce((s, r) => s + r.overAdmission.total, 0);
    const errors = results.reduce((s, r) => s + r.errors, 0);
    await createNaiveTable(db.sql);
    const peers = await peerBursts(db.url, db.sql, clients, cfg, log);
    clients = [];
    return {
      id: "exactness",
      title: "Exactness under a burst",
      data: { config: cfg, keys: KEYS.map((k) => ({ alias: k.alias, project: k.project })), scenarios: results, peers },
      markdown: markdown(cfg, results) + peersMarkdown(peers),
      headline: [
        {
          figure: `Burst: over-admission, ${cfg.callers} callers on ${cfg.connections} connections, ${results.length} scenarios`,
          value: `${over} (admitted: ${results.map((r) => `${r.id} ${r.admitted}`).join(", ")})`,
        },
        {
          figure: `Burst of ${cfg.callers} against a limit of ${cfg.peers.limit}: admitted by rate-limiter-flexible (${cfg.peers.processes} processes) / naive`,
          value: `${peers.rlflex.admitted} / ${peers.naive.admitted} (over-admission ${peers.rlflex.overAdmission} / ${peers.naive.overAdmission})`,
        },
      ],
      checks: [
        { name: "our over-admission under a burst is 0", ok: over === 0, detail: `${over} over the limit across ${results.length} scenarios` },
        {
          name: "burst answers agree with the attempt log and the counters",
          ok: results.every((r) => r.consistent) && errors === 0,
          detail: results.every((r) => r.consistent) && errors === 0 ? "all agree, 0 errors" : results.map((r) => r.consistencyNote).join("; "),
        },
        {
          name: "peer bursts ran without errors",
          ok: peers.rlflex.errors === 0 && peers.naive.errors === 0,
          detail: `burst errors ${peers.rlflex.errors + peers.naive.errors}`,
        },
      ],
    };
  } finally {
    await closeClients(clients);
    await db.close();
  }
}

interface Answer {
  ok: boolean;
  limit?: string;
  error?: string;
}

async function count(
  sql: Sql,
  model: string,
  sc: Scenario,
  answers: (Answer & { i: number })[],
  cfg: ExactnessConfig,
  burstMs: number,
) {
  const windows = (bucket: "minute_bucket" | "day_bucket") => sql<Window[]>`
    select quota_group as group, ${sql(bucket)}::text as window,
           count(*)::int as admitted, sum(estimated_tokens)::int as tokens
    from public.google_ai_attempts where model = ${model} and status = 'reserved'
    group by 1, 2 order by 1, 2`;
  const minute = await windows("minute_bucket");
  const day = await windows("day_bucket");
  const { rpm, tpm, rpd } = sc.limits;
  const over = { rpm: 0, tpm: 0, rpd: 0, total: 0 };
  for (const w of minute) {
    if (rpm !== null) over.rpm += Math.max(0, w.admitted - rpm);
    if (tpm !== null) over.tpm += Math.max(0, w.tokens - tpm);
  }
  for (const w of day) if (rpd !== null) over.rpd += Math.max(0, w.admitted - rpd);
  over.total = over.rpm + over.tpm + over.rpd;

  const refusedBy: Record<string, number> = {};
  for (const a of answers) if (!a.ok) refusedBy[a.limit ?? "?"] = (refusedBy[a.limit ?? "?"] ?? 0) + 1;
  const admitted = answers.filter((a) => a.ok).length;
  const errors = refusedBy.error ?? 0;

  // Capacity left while callers were turned away (a busy row mistaken for a full one would show here).
  const left = { rpm: 0, rpd: 0, tpmGroupsThatCouldStillFitARefusedRequest: 0 };
  if (rpm !== null && (refusedBy.rpm ?? 0) > 0 && sc.at === null) for (const w of minute) left.rpm += Math.max(0, rpm - w.admitted);
  if (rpd !== null && (refusedBy.rpd ?? 0) > 0) for (const w of day) left.rpd += Math.max(0, rpd - w.admitted);
  if (tpm !== null && sc.at === null) {
    const refusedTokens = answers.filter((a) => !a.ok && a.limit === "tpm").map((a) => sc.tokens(a.i));
    const smallest = refusedTokens.length ? Math.min(...refusedTokens) : Infinity;
    left.tpmGroupsThatCouldStillFitARefusedRequest = minute.filter((w) => tpm - w.tokens >= smallest).length;
  }

  // Cross-checks: answers vs attempt log vs counter rows.
  const [{ logged }] = await sql<{ logged: number }[]>`
    select count(*)::int as logged from public.google_ai_attempts where model = ${model} and status = 'reserved'`;
  const counters = await sql<{ rpd_used: number }[]>`select rpd_used from public.google_ai_usage_counters where model = ${model}`;
  const counterRequests = counters.reduce((s, c) => s + c.rpd_used, 0);
  const notes: string[] = [];
  if (logged !== admitted) notes.push(`answers ${admitted} vs attempt log ${logged}`);
  if (sc.limits.rpd !== null || sc.at === null) {
    // rpd_used counts every booking of the current Pacific day.
    if (counterRequests !== admitted) notes.push(`answers ${admitted} vs counters ${counterRequests}`);
  }
  if (errors > 0) notes.push(`${errors} errors: ${answers.find((a) => a.error)?.error}`);

  return {
    id: sc.id,
    title: sc.title,
    limits: sc.limits,
    callers: cfg.callers,
    connections: cfg.connections,
    burstMs: Math.round(burstMs),
    admitted,
    refusedBy,
    errors,
    minuteWindows: minute,
    dayWindows: day,
    overAdmission: over,
    /** Admitted per group and window short of the limit while callers were refused for that limit. */
    capacityLeft: left,
    consistent: notes.length === 0,
    consistencyNote: notes.join(", ") || "ok",
  };
}

function markdown(cfg: ExactnessConfig, results: ScenarioResult[]): string {
  const list = (ws: Window[], tokens: boolean) => ws.map((w) => fmt(tokens ? w.tokens : w.admitted)).join(", ");
  const rows = results.map((r) => {
    const { rpm, tpm, rpd } = r.limits;
    const parts: string[] = [];
    const minutes = new Set(r.minuteWindows.map((w) => w.window)).size;
    if (rpm !== null) parts.push(`requests per group and minute (limit ${rpm}): ${list(r.minuteWindows, false)}`);
    if (tpm !== null) parts.push(`tokens per group and minute (limit ${fmt(tpm)}): ${list(r.minuteWindows, true)}`);
    if (rpd !== null) parts.push(`requests per group and day (limit ${rpd}): ${list(r.dayWindows, false)}`);
    return [
      r.title,
      `${r.callers} / ${r.connections}`,
      `${GROUPS} groups × ${minutes} minute${minutes === 1 ? "" : "s"}`,
      parts.join("; "),
      r.admitted,
      Object.entries(r.refusedBy).map(([k, v]) => `${k} ${v}`).join(", "),
      `**${r.overAdmission.total}**`,
      fmt(r.burstMs),
    ];
  });
  const left = results.map((r) => r.capacityLeft.rpm + r.capacityLeft.rpd + r.capacityLeft.tpmGroupsThatCouldStillFitARefusedRequest);
  return `
${cfg.callers} callers at once, spread over ${cfg.connections} open connections (one PostgreSQL backend each), each
calling the reservation RPC once for one model served by 4 keys in ${GROUPS} quota groups (two keys of one
Google project share its quota; one key has no project and is its own group). The first three scenarios
use the database clock (\`google_ai_reserve_models\`, as the gateway does) and start away from a minute boundary;
the last injects the clock (\`google_ai_reserve_models_at\`): a third of the callers burst in each of three consecutive
minutes of one Pacific day, which exercises RPM, TPM and RPD together across windows. Admissions are counted per quota
group and window from the attempt log, and cross-checked against the callers' answers and the counter rows.

${table(["scenario", "callers / connections", "windows", "admitted per quota group and window", "admitted", "refused (limit named)", "over-admission", "burst ms"], rows, ["l", "r", "l", "l", "r", "l", "r", "r"])}

Over-admission is the sum, over every (quota group, window), of what was admitted beyond the limit:
${results.every((r) => r.overAdmission.total === 0) ? "**0 in every scenario**" : "**NOT 0: see the table**"}. Capacity left unused while callers were refused
(a busy row mistaken for a full one would show here): ${left.every((l) => l === 0) ? "none" : left.join(", ")}${results.some((r) => r.id === "tpm") ? " (for TPM: no group had room left for the smallest refused request)" : ""}.
`;
}

type BurstResult = ReturnType<typeof burstResult>;

/**
 * The peers' bursts: naive on the part's open connections (which it then closes: the peer's
 * processes open as many of their own), then rate-limiter-flexible.
 */
async function peerBursts(url: string, sql: Sql, clients: Sql[], cfg: ExactnessConfig, log: (s: string) => void) {
  const { connections, callers } = cfg;
  const { processes, limit } = cfg.peers;
  // naive: one process, every caller on its own connection slot, fired at once.
  await waitForSecondOfMinute(2, 45);
  const s = performance.now();
  const naiveOut = await fireAtOnce(callers, (i) => naiveLimiter(clients[i % clients.length]!, "naive-burst", limit)());
  const naive = burstResult(cfg, [naiveOut], performance.now() - s);
  const [{ used }] = await sql<{ used: number }[]>`
    select coalesce(sum(used), 0)::int as used from public.bench_naive_counters where key = 'naive-burst'`;
  log(`  naive read-then-write: ${naive.admitted} admitted of ${callers} against ${limit} (its counter says ${used})`);
  await closeClients(clients);
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
  const rlflex = burstResult(cfg, outs, performance.now() - t0, processes);
  const [{ points }] = await sql<{ points: number }[]>`select points from public.bench_rlflex where key like '%rlflex-burst'`;
  log(
    `  rate-limiter-flexible, ${processes} processes: ${rlflex.admitted} admitted of ${callers} against ${limit} ` +
      `(its row counts ${points} points consumed)`,
  );
  return { rlflex, naive };
}

/** A peer's burst against its limit: the counts of its processes added up. */
function burstResult(cfg: ExactnessConfig, outs: Burst[], ms: number, processes?: number) {
  const sum = (k: "admitted" | "refused" | "errors") => outs.reduce((s, o) => s + o[k], 0);
  const firstError = outs.find((o) => o.firstError)?.firstError;
  return {
    limit: cfg.peers.limit,
    callers: cfg.callers,
    connections: cfg.connections,
    ...(processes === undefined ? {} : { processes }),
    admitted: sum("admitted"),
    refused: sum("refused"),
    errors: sum("errors"),
    overAdmission: Math.max(0, sum("admitted") - cfg.peers.limit),
    ...(firstError ? { firstError } : {}),
    burstMs: Math.round(ms),
  };
}

function peersMarkdown(burst: { rlflex: BurstResult; naive: BurstResult }): string {
  return `
**The peers under the same burst.** ${burst.rlflex.callers} callers at once against a limit of ${burst.rlflex.limit} on one key:

${table(["limiter", "how", "admitted", "over-admission"], [
    ["rate-limiter-flexible", `${burst.rlflex.processes} child processes × ${Math.ceil(burst.rlflex.connections / burst.rlflex.processes!)} connections`, burst.rlflex.admitted, `**${burst.rlflex.overAdmission}**`],
    ["naive read-then-write", `1 process, ${burst.naive.connections} connections`, burst.naive.admitted, `**${burst.naive.overAdmission}**`],
  ], ["l", "l", "r", "r"])}
`;
}
