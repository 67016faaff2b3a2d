// Part 11: a request's cost does not grow with the log. Two halves, each measured side by side in one run:
//  - Latency: three llm-invoke as on Supabase, each with its own database, in front of both simulators: one
//    with the part's own small log, and two with a month of older attempt rows: spread over the part's
//    groups and models, and in the owner's shape (one organisation's gpt-4o nearly every row: the entry
//    functions' generic plans, made on those statistics, take a quota group or a model for the whole
//    table). Served: Gemma and gpt-4o whole, a gpt-4o stream and a fallback (gpt-4o-mini fails with 503,
//    Gemma answers in the same request). Waiting: a WAIT refused on a full window (its turn, counted
//    first, lies beyond its x-eve-max-wait-ms) and on a cooldown, for Gemma and gpt-4o. Each kind call by
//    call, stack by stack, interleaved. The figure is each kind's p50 with a big log over its p50 with the
//    small one.
//  - The counter row: gpt-4o's reservation and finalize (with OpenAI's room, the path that counts the
//    calls in flight) at concurrency 16, straight to the RPCs, with pg_cron running the migrations' vacuum
//    of the counter rows on its schedule (the server's cron database gets the migration, and the job is
//    pointed at the part's database); google_ai_usage_counters' size, dead rows and heap-only share after
//    the first batch and after five times as many.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { startOpenAISimulator } from "../shared/openai-sim/server.ts";
import { connect, listMigrations, type Sql } from "../shared/db/migrate.ts";
import { type BenchDb, type BenchServer, closeClients, HUGE, openClients, relationBytes, setOpenAIModel } from "./lib/db.ts";
import { postInvoke, probeInvoke, serveLlmInvokeAsOnSupabase, simulatorFor } from "./lib/llm-invoke.ts";
import { fmt, pct, table, times, type Check, type PartResult } from "./lib/report.ts";
import { round, summarize } from "./lib/stats.ts";
import { Teardown } from "./lib/teardown.ts";

export interface LogScaleConfig {
  /** Calls of each kind on each stack in the latency measure, one at a time. */
  calls: number;
  /**
   * The fallback's calls on each stack: each waits for the first provider's 503 (its p50 about 0.4 s, the
   * rest of the kinds' 7-20 ms), and its ratio is reported, not checked.
   */
  fallbackCalls: number;
  /** Older attempt rows in each big log of the latency measure. */
  logRows: number;
  /** The counter row's two measures: after the first count of requests, then after the second in all. */
  counterRequests: [number, number];
  /** Requests in flight for the counter row. */
  concurrency: number;
  /**
   * Whether the ratios and the growth are checks (a full run) or only reported: a smoke run's few calls
   * say nothing of a p50, and its first batch ends before the first vacuum.
   */
  checkFigures: boolean;
}

const GEMMA = "gemma-3-27b-it";
const GPT = "gpt-4o";
/** Always fails with 503 at the OpenAI simulator: each of its calls falls back to Gemma. */
const FAILING = "gpt-4o-mini";
const ORG = "org-scale";
const PROJECT = "proj-scale";
const SECRET = "sk-scale-openai";
const SECRET_VAR = "OPENAI_SCALE_SIM_KEY";
/** A kind's p50 with the big log may be at most this many times its p50 with the small one. */
const MAX_RATIO = 1.2;
/** The counter table after five times the requests may be at most this many times its size after the first. */
const MAX_GROWTH = 2;

type Kind =
  | "gemma" | "gpt-4o" | "gpt-4o stream" | "fallback"
  | "gemma WAIT, full window" | "gpt-4o WAIT, full window" | "gemma WAIT, cooldown" | "gpt-4o WAIT, cooldown";
const SERVED: Kind[] = ["gemma", "gpt-4o", "gpt-4o stream", "fallback"];
const FULL_WINDOW: Kind[] = ["gemma WAIT, full window", "gpt-4o WAIT, full window"];
const COOLDOWN: Kind[] = ["gemma WAIT, cooldown", "gpt-4o WAIT, cooldown"];
const KINDS: Kind[] = [...SERVED, ...FULL_WINDOW, ...COOLDOWN];
/** The kinds the issue's bound is on. */
const BOUND: Kind[] = ["gemma", "gpt-4o", ...FULL_WINDOW];
/** A WAIT's own bound on its wait, shorter than any turn on a full window of one request a minute. */
const MAX_WAIT_MS = 1_000;

/** How the older log falls on the part's groups and models: its rows' model, by row number i (SQL). */
type Shape = "spread" | "owner";
const SHAPES: Shape[] = ["spread", "owner"];
const MODEL_OF_ROW: Record<Shape, string> = {
  spread: `(array['${GPT}', '${GEMMA}'])[1 + i % 2]`,
  // One organisation's gpt-4o: a few Gemma rows in a million (not in ANALYZE's sample).
  owner: `case when i % 200000 = 0 then '${GEMMA}' else '${GPT}' end`,
};
const SHAPE_NAME: Record<Shape, string> = {
  spread: "spread: gpt-4o and Gemma, half each",
  owner: "the owner's: one organisation's gpt-4o",
};

interface Half {
  /** small, or the big log's shape. */
  log: "small" | Shape;
  logRows: number;
  p50: Record<Kind, number>;
  errors: number;
  firstError?: string;
  /** WAITs on a full window that found their turn within their wait (served after waiting, not refused). */
  waitedTurns: number;
}

interface CounterFigures {
  requests: number;
  /** The table's size at the batch's end (heap, indexes, TOAST). */
  tableBytes: number;
  /** Its largest size seen during the batch (sampled every 250 ms): what the load needed at most. */
  peakBytes: number;
  liveRows: number;
  deadRows: number;
  updates: number;
  hotUpdates: number;
  vacuums: number;
}

export async function runLogScale(bench: BenchServer, cfg: LogScaleConfig, log: (s: string) => void): Promise<PartResult> {
  const halves = await latencyHalves(await buildStacks(bench, cfg, log), cfg, log);
  const { figures: counters, cronRuns } = await counterGrowth(bench, cfg, log);
  const [small] = halves;
  const ratios = Object.fromEntries(SHAPES.map((shape) => {
    const big = halves.find((h) => h.log === shape)!;
    return [shape, Object.fromEntries(KINDS.map((k) => [k, round(big.p50[k] / small.p50[k], 3)]))];
  })) as Record<Shape, Record<Kind, number>>;
  for (const k of KINDS) {
    log(`  ${k.padEnd(24)} p50 ${fmt(small.p50[k])} → ${SHAPES.map((sh) => `${sh} ${fmt(halves.find((h) => h.log === sh)!.p50[k])} ms (${times(ratios[sh][k])})`).join(", ")}`);
  }
  const [first, last] = counters;
  const growth = round(last!.peakBytes / first!.peakBytes, 3);
  log(`  counters' peak: ${kb(first!.peakBytes)} in the first ${first!.requests}, ${kb(last!.peakBytes)} in the rest to ${last!.requests} (${times(growth)})`);

  const errors = halves.reduce((n, h) => n + h.errors, 0);
  const waited = halves.reduce((n, h) => n + h.waitedTurns, 0);
  const checks: Check[] = [
    {
      name: "every request of the three stacks answered as asked (200, the fallback by Gemma; a WAIT on a full window or a cooldown 429 with its limit)",
      ok: errors === 0,
      detail: errors === 0
        ? `${halves.length * (cfg.calls * (KINDS.length - 1) + cfg.fallbackCalls)} requests, 0 errors (${waited} WAITs on a full window found their turn within their wait and were served)`
        : `${errors} errors; first: ${halves.find((h) => h.errors)?.firstError}`,
    },
    {
      name: "pg_cron ran the migrations' counter vacuum against the part's database, every run succeeded",
      ok: cronRuns.succeeded > 0 && cronRuns.failed === 0,
      detail: `${cronRuns.succeeded} runs succeeded, ${cronRuns.failed} failed${cronRuns.firstFailure ? `: ${cronRuns.firstFailure}` : ""}`,
    },
  ];
  if (cfg.checkFigures) {
    checks.push({
      name: `the counter table's largest size up to ${last!.requests} requests within ${MAX_GROWTH}× of its largest in the first ${first!.requests}`,
      ok: growth <= MAX_GROWTH,
      detail: `${kb(first!.peakBytes)} → ${kb(last!.peakBytes)} (${times(growth)}); at the end ${kb(last!.tableBytes)}, one live row`,
    });
    for (const shape of SHAPES) {
      checks.push({
        name: `${BOUND.join(", ")}: p50 with ${cfg.logRows.toLocaleString("en")} older attempt rows (${SHAPE_NAME[shape]}) within ${MAX_RATIO}× of a small log's`,
        ok: BOUND.every((k) => ratios[shape][k] <= MAX_RATIO),
        detail: BOUND.map((k) => `${k} ${times(ratios[shape][k])}`).join(", "),
      });
    }
  }
  return {
    id: "log-scale",
    title: "A request's cost with a month of attempts",
    data: { config: cfg, halves, ratios, counters },
    markdown: markdown(cfg, halves, ratios, counters),
    headline: [
      ...SHAPES.map((shape) => ({
        figure: `p50 with ${cfg.logRows.toLocaleString("en")} older attempt rows (${SHAPE_NAME[shape]}) ÷ a small log's (target ≤ ${MAX_RATIO}× for ${BOUND.join(", ")})`,
        value: KINDS.map((k) => `${k} ${times(ratios[shape][k])}`).join(", "),
      })),
      { figure: `counter table's largest size, requests ${first!.requests} to ${last!.requests} ÷ the first ${first!.requests} (target ≤ ${MAX_GROWTH}×)`, value: `${times(growth)} (${kb(first!.peakBytes)} → ${kb(last!.peakBytes)})` },
    ],
    checks,
  };
}

/**
 * Three stacks side by side, each its own database and llm-invoke as on Supabase: the part's own small
 * log, and `logRows` older rows in each shape; every call goes to each in turn, so the load of the
 * machine at any moment falls on all alike.
 */
async function buildStacks(bench: BenchServer, cfg: LogScaleConfig, log: (s: string) => void): Promise<Stacks> {
  const teardown = new Teardown();
  try {
    const openai = teardown.closes(await startOpenAISimulator({
      organizations: { [ORG]: { keys: [SECRET] } },
      models: { [GPT]: { rpm: HUGE, tpm: HUGE }, [FAILING]: { rpm: HUGE, tpm: HUGE } },
      settle: "usage",
    }));
    openai.addFault({ kind: "http503", model: FAILING });
    const stack = async (name: string, shape: Shape | null): Promise<Stack> => {
      const db = teardown.closes(await bench.fresh(name));
      const google = teardown.closes(await simulatorFor(db, GEMMA, PROJECT));
      await openaiRows(db.sql);
      const t0 = performance.now();
      if (shape) {
        await fillLog(db.sql, cfg.logRows, shape);
        log(`  ${cfg.logRows.toLocaleString("en")} older attempt rows (${SHAPE_NAME[shape]}) added and analyzed in ${fmt((performance.now() - t0) / 1000, 1)} s`);
      }
      const fnLog: string[] = [];
      const edge = teardown.closes(await serveLlmInvokeAsOnSupabase({
        dbUrl: db.url,
        simUrl: google.url,
        env: { OPENAI_BASE_URL: openai.url, [SECRET_VAR]: SECRET },
        log: fnLog,
      }));
      const url = `${edge.url}/`;
      // Each probe its own request_id: a second call with the first's, before its finalize ends, is answered 409.
      for (const model of [GEMMA, GPT]) await probeInvoke(url, body(model, `probe-${model}`), fnLog);
      return { url, sql: db.sql, log: shape ?? "small", logRows: shape ? cfg.logRows : 0 };
    };
    // The three are built at once (setup, not measurement: nothing is timed until all are up), so the two
    // logs' inserts share the machine's two cores instead of following each other.
    // (Each settles before the teardown may run: a failed one leaves none still starting.)
    const built = await Promise.allSettled([stack("log_scale_small", null), ...SHAPES.map((shape) => stack(`log_scale_${shape}`, shape))]);
    const failed = built.find((b) => b.status === "rejected");
    if (failed) throw failed.reason;
    return { stacks: built.map((b) => (b as PromiseFulfilledResult<Stack>).value), teardown };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}

/** The latency half's stacks, and what ends them. */
interface Stacks {
  stacks: Stack[];
  teardown: Teardown;
}

/** Each kind on each stack, interleaved; then the stacks are ended. */
async function latencyHalves({ stacks, teardown }: Stacks, cfg: LogScaleConfig, log: (s: string) => void): Promise<Half[]> {
  try {
    const halves = await measure(stacks, cfg.calls, cfg.fallbackCalls);
    for (const h of halves) log(`  log ${h.log} (${h.logRows}): ${KINDS.map((k) => `${k} ${fmt(h.p50[k])} ms`).join(", ")}`);
    return halves;
  } finally {
    await teardown.run();
  }
}

interface Stack {
  url: string;
  sql: Sql;
  log: Half["log"];
  logRows: number;
}

async function openaiRows(sql: Sql): Promise<void> {
  await sql`
    insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
    values ('scale-openai', 'openai', ${SECRET_VAR}, ${ORG}, 100, true)`;
  await setOpenAIModel(sql, GPT);
  await setOpenAIModel(sql, FAILING, [GEMMA]);
}

function body(model: string, id: string, extra: Record<string, unknown> = {}) {
  return { model, prompt: "Summarise in one sentence why a shared rate limiter must be atomic.", request_id: id,
    generationConfig: { maxOutputTokens: 64 }, ...extra };
}

/**
 * Each kind `calls` times on each stack, interleaved call by call (stack by stack, each round from the
 * next stack), one at a time: the served kinds first; then, with Gemma's and gpt-4o's limit at one
 * request a minute (the served calls fill the window, and one NO_WAIT call each before every round keeps
 * it full), the WAITs on a full window; then, each group resting an hour, the WAITs on a cooldown.
 */
async function measure(stacks: Stack[], calls: number, fallbackCalls: number): Promise<Half[]> {
  const halves: Half[] = stacks.map((st) => ({ log: st.log, logRows: st.logRows, p50: {} as Record<Kind, number>, errors: 0, waitedTurns: 0 }));
  const ms = stacks.map(() => Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>);
  const waitRefused = (model: string, limit: string) => async (url: string, id: string, h: Half) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { ...invokeHeaders(), "x-eve-mode": "WAIT", "x-eve-max-wait-ms": String(MAX_WAIT_MS) },
      body: JSON.stringify(body(model, id)),
    });
    const text = await res.text();
    if (res.status === 429 && (JSON.parse(text) as { limit?: string }).limit === limit) return null;
    if (res.status === 200 && limit === "rpm") {
      h.waitedTurns++; // the window's last admission left within the wait: a turn, not an error
      return null;
    }
    return `${res.status} ${text.slice(0, 200)}`;
  };
  const call: Record<Kind, (url: string, id: string, h: Half) => Promise<string | null>> = {
    gemma: async (url, id) => expect200(await postInvoke(url, body(GEMMA, id))),
    "gpt-4o": async (url, id) => expect200(await postInvoke(url, body(GPT, id))),
    "gpt-4o stream": async (url, id) => {
      const res = await fetch(url, { method: "POST", headers: invokeHeaders(), body: JSON.stringify(body(GPT, id, { stream: true })) });
      const text = await res.text();
      return res.status === 200 && text.includes('"type":"done"') ? null : `${res.status} ${text.slice(-200)}`;
    },
    fallback: async (url, id) => {
      const r = await postInvoke(url, body(FAILING, id));
      return r.status === 200 && (JSON.parse(r.body) as { model?: string }).model === GEMMA ? null : `${r.status} ${r.body.slice(0, 200)}`;
    },
    "gemma WAIT, full window": waitRefused(GEMMA, "rpm"),
    "gpt-4o WAIT, full window": waitRefused(GPT, "rpm"),
    "gemma WAIT, cooldown": waitRefused(GEMMA, "cooldown"),
    "gpt-4o WAIT, cooldown": waitRefused(GPT, "cooldown"),
  };
  const phase = async (kinds: Kind[], beforeRound?: (st: Stack) => Promise<void>) => {
    for (let i = 0; i < calls; i++) {
      if (beforeRound) for (const st of stacks) await beforeRound(st);
      for (const k of kinds) {
        if (k === "fallback" && i >= fallbackCalls) continue;
        // Each round starts at the next stack: none is always first after the machine's idle moment.
        for (let j = 0; j < stacks.length; j++) {
          const h = (i + j) % stacks.length;
          const st = stacks[h]!;
          const t0 = performance.now();
          const error = await call[k](st.url, randomUUID(), halves[h]!);
          ms[h]![k].push(performance.now() - t0);
          if (error) {
            halves[h]!.errors++;
            halves[h]!.firstError ??= `${k}: ${error}`;
          }
        }
      }
    }
  };
  await phase(SERVED);
  for (const st of stacks) await st.sql`update public.google_ai_model_limits set rpm = 1 where model in (${GEMMA}, ${GPT})`;
  await phase(FULL_WINDOW, async (st) => {
    for (const model of [GEMMA, GPT]) await postInvoke(st.url, { ...body(model, randomUUID()), mode: "NO_WAIT" });
  });
  for (const st of stacks) {
    await st.sql`update public.google_ai_model_limits set rpm = ${HUGE} where model in (${GEMMA}, ${GPT})`;
    await st.sql`select public.google_ai_cooldown(${PROJECT}, ${GEMMA}, now() + interval '1 hour')`;
    await st.sql`select public.google_ai_cooldown(${ORG}, ${GPT}, now() + interval '1 hour')`;
  }
  await phase(COOLDOWN);
  for (const [h, half] of halves.entries()) for (const k of KINDS) half.p50[k] = round(summarize(ms[h]![k]).p50, 3);
  return halves;
}

function invokeHeaders(): Record<string, string> {
  return { authorization: "Bearer bench-service-key-not-a-secret", "content-type": "application/json" };
}

function expect200(r: { status: number; body: string }): string | null {
  return r.status === 200 ? null : `${r.status} ${r.body.slice(0, 200)}`;
}

/** A month of decided attempts of the part's own groups and caller, in the shape's models, as 30 days of retention keep them. */
async function fillLog(sql: Sql, rows: number, shape: Shape): Promise<void> {
  const batch = 200_000;
  for (let done = 0; done < rows; done += batch) {
    const size = Math.min(batch, rows - done);
    await sql.begin(async (tx) => {
      // Written as a restore would: the live path's triggers (a holder's claim, the commit checks) are not theirs.
      await tx`set local session_replication_role = replica`;
      await tx`
        insert into public.google_ai_attempts (created_at, admitted_at, finished_at, status, request_id, caller, model,
          requested_model, quota_group, key_alias, priority_class, estimated_tokens, input_tokens, output_tokens,
          http_status, latency_ms)
        select at, at, at, 'succeeded', 'old-' || i, 'service', model, model,
               case when model = ${GPT} then ${ORG} else ${PROJECT} end,
               case when model = ${GPT} then 'scale-openai' else 'bench' end,
               'interactive', 120, 100, 40, 200, 500
        from (select i, now() - interval '30 days' + interval '30 days' * (i::float8 / ${rows}) - interval '10 minutes' as at,
                     ${tx.unsafe(MODEL_OF_ROW[shape])} as model
              from generate_series(${done + 1}::int, ${done + size}::int) i) x`;
    });
  }
  await sql`analyze public.google_ai_attempts`;
}

/** gpt-4o's reserve and finalize with OpenAI's room, `concurrency` at a time, to each measure in turn. */
interface CronRuns {
  succeeded: number;
  failed: number;
  firstFailure?: string;
}

async function counterGrowth(
  bench: BenchServer,
  cfg: LogScaleConfig,
  log: (s: string) => void,
): Promise<{ figures: CounterFigures[]; cronRuns: CronRuns }> {
  const db = await bench.fresh("log_scale_counters");
  const clients = await openClients(db.url, cfg.concurrency);
  const cron = connect(bench.server.url, { max: 1 });
  const job = await scheduleCounterVacuum(cron, db.name);
  try {
    await db.sql`update public.google_ai_api_keys set is_active = false`;
    await openaiRows(db.sql);
    const figures: CounterFigures[] = [];
    let done = 0;
    for (const target of cfg.counterRequests) {
      let peak = 0;
      const sampler = setInterval(() => {
        void relationBytes(db.sql, "public.google_ai_usage_counters").then((b) => (peak = Math.max(peak, b)), () => {});
      }, 250);
      try {
        await churn(clients, done, target);
      } finally {
        clearInterval(sampler);
      }
      done = target;
      const f = await counterFigures(db, done);
      f.peakBytes = Math.max(peak, f.tableBytes);
      figures.push(f);
      log(`  counters after ${done}: ${kb(f.tableBytes)} (peak ${kb(f.peakBytes)}), ${f.deadRows} dead, ${f.hotUpdates}/${f.updates} HOT, ${f.vacuums} vacuums`);
    }
    return { figures, cronRuns: await cronRunsOf(cron, job) };
  } finally {
    await cron`select cron.unschedule(${job}::bigint)`;
    await cron.end({ timeout: 5 });
    await closeClients(clients);
    await db.close();
  }
}

/**
 * The counter rows' vacuum as the rows migration schedules it (its interval and command, read from the
 * file), scheduled on the server's cron database, its job then pointed at the part's database (pg_cron
 * runs jobs from one database).
 */
async function scheduleCounterVacuum(cron: Sql, database: string): Promise<string> {
  const migration = (await listMigrations()).find((m) => m.name === "rows_and_schedule");
  const scheduled = migration && /cron\.schedule\('eve-gateway-counters-vacuum', '([^']+)', '([^']+)'\)/.exec(await readFile(migration.file, "utf8"));
  if (!scheduled) throw new Error("the rows migration (*_rows_and_schedule.sql) schedules no 'eve-gateway-counters-vacuum' job");
  await cron`create extension if not exists pg_cron with schema pg_catalog`;
  await cron`select cron.schedule('eve-gateway-counters-vacuum', ${scheduled[1]!}, ${scheduled[2]!})`;
  const [job] = await cron<{ jobid: string }[]>`select jobid::text from cron.job where jobname = 'eve-gateway-counters-vacuum'`;
  if (!job) throw new Error(`${migration!.file}'s job was not scheduled (is pg_cron preloaded on the bench server?)`);
  await cron`select cron.alter_job(${job.jobid}::bigint, database => ${database})`;
  return job.jobid;
}

/** The job's runs, after its next one has ended (a burst shorter than its interval may end before the first). */
async function cronRunsOf(cron: Sql, job: string): Promise<CronRuns> {
  const runs = () => cron<{ status: string; message: string | null }[]>`
    select status, return_message as message from cron.job_run_details
    where jobid = ${job}::bigint and status in ('succeeded', 'failed') order by runid`;
  const deadline = Date.now() + 30_000;
  let seen = await runs();
  while (seen.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    seen = await runs();
  }
  const failed = seen.filter((r) => r.status === "failed");
  return {
    succeeded: seen.length - failed.length,
    failed: failed.length,
    ...(failed[0] ? { firstFailure: String(failed[0].message).slice(0, 200) } : {}),
  };
}

async function churn(clients: Sql[], from: number, to: number): Promise<void> {
  let next = from;
  await Promise.all(clients.map(async (c) => {
    while (next < to) {
      const i = next++;
      const [{ r }] = await c<{ r: { ok: boolean; reservation_id: string } }[]>`
        select public.google_ai_reserve_models(p_models => array[${GPT}], p_estimated_tokens => 120, p_caller => 'bench',
          p_request_id => ${`churn-${i}`}) as r`;
      if (!r.ok) throw new Error(`reservation ${i} refused: ${JSON.stringify(r)}`);
      const outcome = { kind: "succeeded", input_tokens: 100, output_tokens: 40, http_status: 200, latency_ms: 5,
        room_requests: 1000000, room_tokens: 100000000, room_until: new Date(Date.now() + 1000).toISOString() };
      await c`select public.google_ai_finalize(p_reservation_id => ${r.reservation_id}::uuid,
        p_outcome => ${JSON.stringify(outcome)}::text::jsonb)`;
    }
  }));
}

async function counterFigures(db: BenchDb, requests: number): Promise<CounterFigures> {
  await db.sql`select pg_stat_force_next_flush()`;
  // Each client's statistics reach the shared counts within a second of its last transaction.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const [row] = await db.sql.begin(async (tx) => {
    await tx`set local stats_fetch_consistency = none`;
    return tx<{ bytes: string; live: string; dead: string; upd: string; hot: string; vacuums: string }[]>`
      select pg_total_relation_size('public.google_ai_usage_counters')::text as bytes, n_live_tup::text as live,
             n_dead_tup::text as dead, n_tup_upd::text as upd, n_tup_hot_upd::text as hot,
             (vacuum_count + autovacuum_count)::text as vacuums
      from pg_stat_user_tables where relid = 'public.google_ai_usage_counters'::regclass`;
  });
  return {
    requests,
    tableBytes: Number(row!.bytes),
    peakBytes: Number(row!.bytes),
    liveRows: Number(row!.live),
    deadRows: Number(row!.dead),
    updates: Number(row!.upd),
    hotUpdates: Number(row!.hot),
    vacuums: Number(row!.vacuums),
  };
}

function kb(bytes: number): string {
  return `${fmt(bytes / 1024, 0)} kB`;
}

function markdown(cfg: LogScaleConfig, halves: Half[], ratios: Record<Shape, Record<Kind, number>>, counters: CounterFigures[]): string {
  const p50 = (log: Half["log"], k: Kind) => `${fmt(halves.find((h) => h.log === log)!.p50[k])} ms`;
  const waited = halves.reduce((n, h) => n + h.waitedTurns, 0);
  return [
    `Three llm-invoke as on Supabase in front of both simulators, each with its own database: one with the part's own ` +
    `small log, and two with ${cfg.logRows.toLocaleString("en")} older attempt rows of the part's caller (30 days of them, ` +
    `analyzed): *spread*, gpt-4o of the OpenAI organisation and Gemma of the Google project, half each; *owner*, the owner's ` +
    `month, one organisation's gpt-4o (a few Gemma rows in a million). The entry functions run with generic plans, made ` +
    `without the values: on the owner's log a quota group or a model stands for the whole table, for Gemma's statements ` +
    `as for gpt-4o's. Each kind ${cfg.calls} times on each, interleaved call by call and stack by stack, one at a time (the fallback ${cfg.fallbackCalls} times). ` +
    `\`fallback\` asks ${FAILING}, which the OpenAI simulator answers 503, and Gemma answers in the same request. ` +
    `*WAIT, full window*: Gemma's and gpt-4o's limit set to one request a minute after the served kinds (one NO_WAIT call ` +
    `of each before every round keeps the window full); a WAIT with \`x-eve-max-wait-ms: ${MAX_WAIT_MS}\` has its turn ` +
    `counted and is refused (${waited} of them found their turn within the wait and were served). *WAIT, cooldown*: each ` +
    `group resting for an hour (\`google_ai_cooldown\`), the same WAIT refused.`,
    "",
    table(
      ["kind", "p50, small log", `p50, ${SHAPE_NAME.spread}`, "ratio", `p50, ${SHAPE_NAME.owner}`, "ratio"],
      KINDS.map((k) => [k, p50("small", k), p50("spread", k), times(ratios.spread[k]), p50("owner", k), times(ratios.owner[k])]),
      ["l", "r", "r", "r", "r", "r"],
    ),
    "",
    `The counter row: gpt-4o's reservation and finalize (with OpenAI's room, so finalize counts the calls in flight) ` +
    `straight to the RPCs, ${cfg.concurrency} at a time. \`google_ai_usage_counters\` holds one live row; its size counts ` +
    `the heap, its indexes and its TOAST, sampled every 250 ms: a vacuum gives pages back only from the table's end, so the ` +
    `size at one moment says where the live row happened to be; the largest size a batch needed says what the load costs.`,
    "",
    table(
      ["requests (in all)", "largest size in the batch", "size at its end", "dead rows", "updates", "heap-only", "vacuums"],
      counters.map((c) => [c.requests, kb(c.peakBytes), kb(c.tableBytes), c.deadRows, c.updates, pct(c.hotUpdates / Math.max(1, c.updates)), c.vacuums]),
      ["r", "r", "r", "r", "r", "r", "r"],
    ),
  ].join("\n");
}
