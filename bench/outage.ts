// Part 6: a database outage. llm-invoke served by Deno against its own PostgreSQL, which this part
// stops (the port refuses connections), freezes (SIGSTOP: connections are accepted, nothing answers)
// and restarts. Measured: the time until a caller gets its 503, alone and with 20 at once, and
// whether the first request after a restart is served; then the way back after a freeze, a restart
// and a restart of the pooler in front of it (outage-recovery.ts). Counts are checked; times are reported.
import { type LocalStack, startLocalStack } from "../scripts/local-stack.ts";
import { connect } from "../shared/db/migrate.ts";
import { startStoppablePostgres } from "../shared/db/stoppable-postgres.ts";
import { gatewayRoleUrl } from "../shared/db/gateway-role.ts";
import { hasPgBouncer, startPgBouncer } from "../shared/db/pgbouncer.ts";
import { during, measureRecovery, tally, type Outage, type RecoveryCall } from "./outage-recovery.ts";
import type { RecoveryResult } from "./outage-recovery.ts";
import { DEFAULT_DB_TIMEOUTS } from "../supabase/functions/_shared/db.ts";
import type { BenchServer } from "./lib/db.ts";
import { fmt, table, type PartResult } from "./lib/report.ts";
import { summarize, type Summary } from "./lib/stats.ts";
import { sleep } from "./lib/clock.ts";
import { keepLine, postInvoke } from "./lib/llm-invoke.ts";
import { Teardown } from "./lib/teardown.ts";

export interface OutageConfig {
  /** Rounds of each scenario (a restart between rounds). */
  rounds: number;
  /** Concurrent callers of the crowded scenarios. */
  crowd: number;
  /** Recovery: requests cut by each outage and of each burst after it. */
  burst: number;
  /** Recovery: quiet pauses before the first burst. */
  pausesMs: number[];
  /** Recovery: how long the database stays frozen (above the client deadline: the cut calls end first). */
  freezeMs: number;
}

/** An answer, its Retry-After and how long it took. */
type Call = RecoveryCall & { retryAfter: string | null; ms: number };

interface Scenario {
  id: string;
  title: string;
  /** Answers expected: 503 unavailable, or 200 (after a restart). */
  expect: 503 | 200;
  calls: Call[];
  ms: Summary;
}

/** The part runs its own PostgreSQL (it stops and freezes it), not the run's. */
export async function runOutage(_bench: BenchServer, cfg: OutageConfig, log: (s: string) => void): Promise<PartResult> {
  const fnLog: string[] = [];
  const teardown = new Teardown();
  /** llm-invoke on the local stack against `databaseUrl`; `env` for the functions. */
  const serve = (databaseUrl: string, env?: Record<string, string>) =>
    startLocalStack({
      functionsPort: 0,
      databaseUrl,
      google: "simulator",
      // This part measures outages, not limits: neither the gateway nor Google may refuse its calls.
      // (A reservation the frozen database reaches after its caller gave up is rolled back at commit.)
      simulatorOptions: { models: { "gemma-3-27b-it": { rpm: 1_000_000, tpm: 1_000_000_000, rpd: 1_000_000 } } },
      only: ["llm-invoke"],
      env,
      log: (line) => keepLine(fnLog, line, 50),
    });
  try {
    const db = teardown.closes(await startStoppablePostgres());
    const stack = teardown.closes(await serve(db.url));
    const admin = connect(db.url, { max: 1 });
    try {
      await admin`update public.google_ai_model_limits set rpm = null, tpm = null, rpd = null where model = 'gemma-3-27b-it'`;
    } finally {
      await admin.end();
    }
    const { call, healthy } = caller(stack, fnLog);
    const one = async () => [await call()];
    const crowd = () => Promise.all(Array.from({ length: cfg.crowd }, () => call()));

    const scenarios: Scenario[] = [];
    const scenario = async (id: string, title: string, expect: 503 | 200, measure: () => Promise<Call[]>) => {
      const calls: Call[] = [];
      for (let round = 0; round < cfg.rounds; round++) {
        await healthy();
        calls.push(...(await measure()));
      }
      const ms = summarize(calls.map((c) => c.ms));
      scenarios.push({ id, title, expect, calls, ms });
      log(`   ${title}: p50 ${fmt(ms.p50, 0)} ms, max ${fmt(ms.max, 0)} ms, answers ${JSON.stringify(tally(calls))}`);
    };
    const stopped = { down: () => db.stop(), up: () => db.start() };
    const frozen = { down: () => db.freeze(), up: () => db.thaw() };

    await scenario("stopped-1", "stopped, 1 caller (the first after the stop)", 503, () => during(stopped, one));
    await scenario("stopped-1-next", "stopped, 1 caller, the next 5 one after another", 503, () =>
      during(stopped, async () => {
        await call();
        const out: Call[] = [];
        for (let i = 0; i < 5; i++) out.push(await call());
        return out;
      }));
    await scenario("stopped-crowd", `stopped, ${cfg.crowd} concurrent callers`, 503, () => during(stopped, crowd));
    await scenario("frozen-1", "frozen (SIGSTOP), 1 caller", 503, () => during(frozen, one));
    await scenario("frozen-crowd", `frozen (SIGSTOP), ${cfg.crowd} concurrent callers`, 503, () =>
      during(frozen, crowd));
    await scenario("restarted", "first request after a restart (stale pooled connections)", 200, async () => {
      await db.stop();
      await db.start();
      return [await call()];
    });

    // Recovery: the same database frozen and restarted, then the pooler in front of it restarted.
    const recovery: RecoveryResult[] = [];
    const rcfg = { crowd: cfg.burst, pausesMs: cfg.pausesMs };
    const outages: Outage[] = [
      { id: "freeze", title: `frozen ${cfg.freezeMs / 1000} s (SIGSTOP)`, ...frozen, holdMs: cfg.freezeMs },
      { id: "restart", title: "PostgreSQL restarted (fast shutdown, start)", ...stopped },
    ];
    for (const o of outages) recovery.push(await measureRecovery(rcfg, o, call, healthy, log));
    await stack.close();
    let poolerNote = "PgBouncer is not installed here: the pooler restart was not measured.";
    if (hasPgBouncer()) {
      const pooler = teardown.closes(await startPgBouncer(await gatewayRoleUrl(db.url)));
      const viaPooler = caller(teardown.closes(await serve(db.url, { GATEWAY_DB_URL: pooler.url })), fnLog);
      const restarted: Outage = {
        id: "pooler-restart",
        title: "the pooler (PgBouncer, transaction mode) restarted",
        down: () => pooler.stop(),
        up: () => pooler.start(),
      };
      recovery.push(await measureRecovery(rcfg, restarted, viaPooler.call, viaPooler.healthy, log));
      poolerNote = "llm-invoke through PgBouncer in transaction mode (GATEWAY_DB_URL), the stand-in for Supavisor.";
    }

    const wrong = scenarios.flatMap((s) =>
      s.calls.filter((c) => c.status !== s.expect || (s.expect === 503 && (c.code !== "unavailable" || c.retryAfter === null)))
        .map((c) => `${s.id}: ${c.status} ${c.code ?? ""}`)
    );
    const burst503 = recovery.flatMap((r) => r.bursts.map((b) => ({ r, b }))).filter(({ b }) => b.unavailable > 0);
    const bursts = recovery.reduce((n, r) => n + r.bursts.length, 0);
    const late = recovery.filter((r) => r.repeats.failedLate > 0);
    return {
      id: "outage",
      title: "Database outage: time to a 503, and back",
      data: { config: cfg, timeouts: DEFAULT_DB_TIMEOUTS, scenarios, recovery },
      markdown: markdown(cfg, scenarios) + "\n\n" + recoveryMarkdown(cfg, recovery, poolerNote),
      headline: [
        ...scenarios
          .filter((s) => ["stopped-1", "stopped-crowd", "frozen-crowd"].includes(s.id))
          .map((s) => ({ figure: `Time to a 503, ${s.title}: p50 / max`, value: `${fmt(s.ms.p50, 0)} / ${fmt(s.ms.max, 0)} ms` })),
        ...recovery.map((r) => ({
          figure: `After ${r.title}: last 503 after the return; 503s in the first bursts (${cfg.pausesMs.map((p) => `${p / 1000} s`).join(", ")})`,
          value: `${fmt(r.repeats.lastUnavailableMs, 0)} ms; ${r.bursts.map((b) => b.unavailable).join(", ")} of ${cfg.burst}`,
        })),
      ],
      checks: [
        {
          name: "every caller during an outage got 503 unavailable with Retry-After, and the first after a restart 200",
          ok: wrong.length === 0,
          detail: wrong.length === 0 ? `${scenarios.reduce((n, s) => n + s.calls.length, 0)} answers as expected` : wrong.slice(0, 5).join("; "),
        },
        {
          name: `the first burst of ${cfg.burst} concurrent requests after an outage: 0 answered 503`,
          ok: burst503.length === 0,
          detail: burst503.length === 0
            ? `${bursts} bursts after ${recovery.map((r) => r.outage).join(", ")}, none answered 503`
            : burst503.map(({ r, b }) => `${r.outage} +${b.pauseMs / 1000} s: ${b.unavailable} × 503`).join("; "),
        },
        {
          name: "every request cut by the outage is served on a repeat with its request_id, none answered anything but 200 later than 1 s after the return",
          ok: late.length === 0,
          detail: late.length === 0
            ? `${recovery.length * cfg.burst} callers served; last 503 after the return ` +
              recovery.map((r) => `${r.outage} ${fmt(r.repeats.lastUnavailableMs, 0)} ms`).join(", ")
            : late.map((r) => `${r.outage}: ${r.repeats.failedLate} of ${cfg.burst} failed later or never served`).join("; "),
        },
      ],
    };
  } finally {
    await teardown.run();
  }
}

/** NO_WAIT calls to llm-invoke of `stack`, and a wait until it serves again. */
function caller(stack: LocalStack, fnLog: string[]) {
  const url = `${stack.functionsUrl}/functions/v1/llm-invoke`;
  const call = async (requestId?: string): Promise<Call> => {
    const request = { model: "gemma-3-27b", prompt: "Что такое EVE?", mode: "NO_WAIT", request_id: requestId };
    const started = performance.now();
    const r = await postInvoke(url, request, { credential: stack.serviceKey });
    const at = performance.now();
    return { status: r.status, code: errorCode(r.body), retryAfter: r.retryAfter ?? null, ms: at - started, at };
  };
  /** Until llm-invoke serves again (it may still be in its short down state), its pool warm. */
  const healthy = async () => {
    const deadline = Date.now() + 60_000;
    while ((await call()).status !== 200) {
      if (Date.now() > deadline) throw new Error(`llm-invoke did not recover: ${fnLog.slice(-5).join(" | ")}`);
      await sleep(200);
    }
  };
  return { call, healthy };
}

/** The error code an answer's JSON body names (null: none, or not JSON). */
function errorCode(body: string): string | null {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    return null;
  }
}

/** "3 × 200, 1 × 503 unavailable". */
const answers = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${v} × ${k}`).join(", ");

function recoveryMarkdown(cfg: OutageConfig, recovery: RecoveryResult[], poolerNote: string): string {
  const t = DEFAULT_DB_TIMEOUTS;
  return [
    "**Back after an outage.** Each outage cuts " + `${cfg.burst}` + " concurrent requests (each answered 503); " +
    "then, from the moment the database answers again (thawed; started; the pooler listening again), " +
    "the cut callers repeat their `request_id` every 100 ms until served. In separate rounds, after a quiet " +
    `pause of ${cfg.pausesMs.map((p) => `${p / 1000} s`).join(", ")}, the first burst of ${cfg.burst} concurrent ` +
    `fresh requests. ${poolerNote}`,
    "",
    table(
      ["outage", "the cut requests", "last 503 after the return", "every repeat served by", "repeats' answers",
        ...cfg.pausesMs.map((p) => `first burst after ${p / 1000} s`)],
      recovery.map((r) => [
        r.title,
        answers(r.repeats.cut),
        `${fmt(r.repeats.lastUnavailableMs, 0)} ms`,
        r.repeats.allServedMs === null ? "never" : `${fmt(r.repeats.allServedMs, 0)} ms`,
        answers(r.repeats.answers),
        ...r.bursts.map((b) => answers(b.burst)),
      ]),
      ["l", "l", "r", "r", "l", ...cfg.pausesMs.map(() => "l" as const)],
    ),
    "",
    `After a failure calls are refused at once for ${t.downForMs} ms (no caller waits on a dead pool); then the ` +
    "next call starts a probe (`select 1` on a fresh pool) and every call that comes meanwhile waits for its " +
    `outcome, at most ${t.probeWaitMs} ms from the probe's start: the burst after an outage is served together.`,
  ].join("\n");
}

function markdown(cfg: OutageConfig, scenarios: Scenario[]): string {
  const t = DEFAULT_DB_TIMEOUTS;
  return [
    `llm-invoke against its own PostgreSQL, which is stopped (fast shutdown: the port refuses connections), frozen ` +
    `(SIGSTOP on the postmaster and every backend: the kernel accepts connections, nothing answers) or restarted; ` +
    `${cfg.rounds} round(s) per scenario, llm-invoke's pool warm before each. Settings: the defaults of ` +
    `\`_shared/db.ts\` — connect timeout ${t.connectTimeoutMs} ms, statement timeout ${t.statementTimeoutMs} ms, ` +
    `client deadline ${t.deadlineMs} ms, down state ${t.downForMs} ms (what callers waited before these settings: "History"). Target: under 2 s for a stopped database; ` +
    `a frozen one is bounded by the client deadline.`,
    "",
    table(
      ["scenario", "answers", "p50 ms", "p95 ms", "max ms"],
      scenarios.map((s) => [
        s.title,
        answers(tally(s.calls)),
        fmt(s.ms.p50, 0),
        fmt(s.ms.p95, 0),
        fmt(s.ms.max, 0),
      ]),
      ["l", "l", "r", "r", "r"],
    ),
    "",
    "The first caller after a stop finds the database down (a refused connection); the pool is dropped and every " +
    "caller in the next " + `${t.downForMs} ms` + " gets its 503 without a connect attempt. With the database frozen, " +
    "callers on open connections wait for the client deadline and callers needing a new connection for the connect " +
    `timeout (${t.connectTimeoutMs} ms); the first connect timeout drops the pool, which ends the calls still ` +
    "waiting for a connection at once, while a statement already sent keeps its own deadline (so that the database " +
    "can roll back what it runs after its caller gave up: no ghost reservation after the thaw).",
  ].join("\n");
}
