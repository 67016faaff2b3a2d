// The real thing: Debian's Prometheus scrapes the local stack (llm-invoke and maintenance served by
// Deno, the Google simulator, PostgreSQL) through GET /functions/v1/maintenance/metrics during a load.
//   - the counters equal the attempt rows and the simulator's own counts;
//   - every query of the Grafana dashboard returns series from the scraped data;
//   - the alert rules load in Prometheus and are healthy;
//   - no counter decreases across a housekeeping run that deletes every row it counted, nor across a
//     PostgreSQL restart (Prometheus' own resets() sees none).
// The rows' times (added_ms, first_byte_ms, wait_ms) are llm-invoke's own: the test never rewrites a
// decided row, since a scrape may have counted it already, and moving a counted observation to another
// bucket would lower a cumulative bucket or a _sum (a reset for Prometheus, caused by the test, not the
// gateway). Without Prometheus: skipped, or failed in CI.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { repoRoot } from "../../shared/db/migrate.ts";
import { type StoppablePostgres, startStoppablePostgres } from "../../shared/db/stoppable-postgres.ts";
import { queryOnce } from "../support/query-once.ts";
import { eventually, GENEROUS_SIM_MODELS, sleep } from "../functions/llm-invoke-helpers.ts";
import { inCi, prometheusBinary, type PromResult, type RunningPrometheus, startPrometheus } from "../support/prometheus.ts";
import { FINALIZE_OUTCOMES } from "../../supabase/functions/_shared/vocabulary.ts";

const available = prometheusBinary() !== null;
const ALERTS = readFileSync(path.join(repoRoot, "docs", "prometheus", "eve-gateway-alerts.yml"), "utf8");
const DASHBOARD = JSON.parse(readFileSync(path.join(repoRoot, "docs", "grafana", "eve-gateway.json"), "utf8")) as {
  panels: { type: string; title: string; targets?: { expr: string; legendFormat: string }[] }[];
  templating: { list: { name: string; allValue?: string }[] };
};
/** The metrics that carry the provider (google, openai): their panels split and filter by it. */
const BY_PROVIDER = ["eve_gateway_upstream_calls_total", "eve_gateway_upstream_429_total", "eve_gateway_cooldown_seconds_left",
  "eve_gateway_keys", "eve_gateway_quota_used", "eve_gateway_quota_limit"];
const KEYS = [
  { alias: "metrics-a", project: "proj-a", env: "GOOGLE_TEST_KEY_METRICS_A", simKey: "sim-metrics-a" },
  { alias: "metrics-b", project: "proj-b", env: "GOOGLE_TEST_KEY_METRICS_B", simKey: "sim-metrics-b" },
];
/** Statuses of attempts that called Google. */
const CALLED_GOOGLE: readonly string[] = FINALIZE_OUTCOMES;

let pg: StoppablePostgres;
let stack: LocalStack;
let prom: RunningPrometheus;

/** Queries on a short-lived connection (none may outlive the database's restart). */
const query = <T extends object>(text: string) => queryOnce<T>(pg.url, text);

async function count(where: string): Promise<number> {
  const [row] = await query<{ n: number }>(`select count(*)::int as n from public.google_ai_attempts where ${where}`);
  return row!.n;
}

async function value(expr: string): Promise<number> {
  const result = await prom.query(expr);
  return result.length === 0 ? NaN : Number(result[0]!.value[1]);
}

/** Waits until Prometheus' answer for `expr` equals `expected` (a scrape after the change landed). */
async function scrapedValue(expr: string, expected: number): Promise<void> {
  let last = NaN;
  try {
    await eventually(async () => (last = await value(expr)) === expected, 30_000);
  } catch {
    throw new Error(`${expr}: Prometheus says ${last}, expected ${expected}`);
  }
}

/** Every counter-like series (counters and histogram parts) with its current value. */
async function counterSeries(): Promise<Map<string, number>> {
  const result = await prom.query('{__name__=~"eve_gateway_.*(_total|_bucket|_count|_sum)"}');
  return new Map(result.map((r: PromResult) => [JSON.stringify(r.metric), Number(r.value[1])]));
}

function decreased(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...before].filter(([k, v]) => !((after.get(k) ?? -1) >= v - 1e-9)).map(([k, v]) => `${k}: ${v} -> ${after.get(k)}`);
}

async function invoke(model: string, caller: string): Promise<number> {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/llm-invoke`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.serviceKey}`, "x-caller": caller },
    body: JSON.stringify({ model, prompt: "Что такое EVE?", mode: "NO_WAIT" }),
  });
  await res.text();
  return res.status;
}

async function maintenance(body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/maintenance`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.serviceKey}` },
    body: JSON.stringify(body),
  });
  return await res.json() as Record<string, any>;
}

describe.skipIf(!available && !inCi)("Prometheus scraping the local stack", () => {
  beforeAll(async () => {
    if (!available) return;
    pg = await startStoppablePostgres();
    await query(`update public.google_ai_api_keys set is_active = false`);
    for (const k of KEYS) {
      await query(`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active)
                   values ('${k.alias}', '${k.env}', '${k.project}', 1, true)`);
    }
    // The metrics are tested here, not the window's spread: the requests of a round go at once.
    await query(`update public.google_ai_model_limits set spread_burst = null`);
    await query(`update public.google_ai_model_limits set rpm = 12 where model = 'gemma-3-27b-it'`);
    await query(`update public.google_ai_model_limits set rpm = 1000, rpd = 100000 where model = 'gemini-2.5-flash'`);
    stack = await startLocalStack({
      functionsPort: 0,
      databaseUrl: pg.url,
      google: "simulator",
      env: Object.fromEntries(KEYS.map((k) => [k.env, k.simKey])),
      simulatorOptions: {
        models: GENEROUS_SIM_MODELS,
        keys: Object.fromEntries(KEYS.map((k) => [k.simKey, `sim-${k.project}`])),
        // Google's own 429s: three calls of gemini-2.5-flash, whatever the gateway admitted.
        faults: [{ kind: "rate_limited", model: "gemini-2.5-flash", count: 3, retryDelay: "1s" }],
      },
      only: ["llm-invoke", "maintenance"],
      log: () => {},
    });
    const port = new URL(stack.functionsUrl).port;
    prom = await startPrometheus({
      files: { "alerts.yml": ALERTS },
      config: [
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}",
        "rule_files: [alerts.yml]",
        "scrape_configs:",
        "  - job_name: eve-gateway",
        "    metrics_path: /functions/v1/maintenance/metrics",
        `    basic_auth: {username: service_role, password: ${stack.serviceKey}}`,
        `    static_configs: [{targets: ['127.0.0.1:${port}']}]`,
        "",
      ].join("\n"),
    });
  }, 180_000);

  afterAll(async () => {
    await prom?.close();
    await stack?.close();
    await pg?.close();
  });

  it("Prometheus is installed (.ci/run installs Debian's prometheus package)", () => {
    expect(available, "prometheus not found: apt-get install prometheus").toBe(true);
  });

  it("the endpoint refuses a scraper without the service key, with a JSON 401, and takes it as a bearer", async () => {
    const url = `${stack.functionsUrl}/functions/v1/maintenance/metrics`;
    const refused: Record<string, string>[] = [{}, { authorization: `Basic ${btoa("service_role:wrong")}` },
      { authorization: `Basic ${btoa(`postgres:${stack.serviceKey}`)}` }, { authorization: "Bearer nope" }];
    for (const headers of refused) {
      const res = await fetch(url, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic /);
      expect((await res.json() as { error: { code: string } }).error.code).toBe("unauthorized");
    }
    const ok = await fetch(url, { headers: { authorization: `Bearer ${stack.serviceKey}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await ok.text()).toContain("# TYPE eve_gateway_attempts_total counter");
    expect((await fetch(url, { method: "POST", headers: { authorization: `Bearer ${stack.serviceKey}` } })).status).toBe(405);
  });

  it("during a load, the scraped counters equal the attempt rows and the simulator's counts", async () => {
    // State the panels show besides the load: a Kaggle client's budget, a model's shutdown date, a
    // cooldown, a waiting request, a reservation whose finalize never came (housekeeping abandons it).
    await query(`select public.google_ai_create_client('nb-metrics', array['gemma-3-27b-it'], p_daily_max_requests => 100)`);
    await query(`update public.google_ai_model_limits set shutdown_date = current_date + 10, successor = 'gemini-3-flash'
                 where model = 'gemini-2.5-flash'`);
    await query(`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, cause)
                 values ('proj-b', 'gemma-3-27b-it', now() + interval '1 hour', 'test', 'spend_cap')`);
    await query(`insert into public.google_ai_queue (model, priority_class, class_rank, caller, turn, enqueued_at, tokens,
                   limit_hit, expected_at, lease_until, position)
                 values ('gemma-3-27b-it', 'batch', 10, 'client:nb-metrics', 1, now(), 10, 'rpm', now() + interval '1 hour',
                   now() + interval '1 hour', 1)`);
    await query(`insert into public.google_ai_attempts (created_at, status, caller, model, quota_group, priority_class)
                 values (now() - interval '20 minutes', 'reserved', 'bot', 'gemma-3-27b-it', 'proj-a', 'interactive')`);

    const jobs = [
      ...Array.from({ length: 24 }, (_, i) => () => invoke("gemma-3-27b", i % 2 === 0 ? "eve-bot" : "parser")),
      ...Array.from({ length: 16 }, () => () => invoke("gemini-2.5-flash", "eve-bot")),
    ];
    const statuses: number[] = [];
    await Promise.all(Array.from({ length: 6 }, async (_, w) => {
      for (let i = w; i < jobs.length; i += 6) statuses.push(await jobs[i]!());
    }));
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);

    // The histograms' observations are the ones llm-invoke wrote: every success has its times.
    expect(await count("status = 'succeeded' and (added_ms is null or first_byte_ms is null or wait_ms is null)")).toBe(0);
    // A refusal is counted once no waiting caller can update it any more (minutes later): let that time pass.
    await query(`update public.google_ai_attempts set created_at = created_at - interval '10 minutes' where status = 'refused'`);
    const run = await maintenance({ keys: true });
    expect(run.status).toBe("succeeded");

    const decided = await count("status <> 'reserved'");
    await scrapedValue("sum(eve_gateway_attempts_total)", decided);
    expect(await value('sum(eve_gateway_attempts_total{status="refused"})')).toBe(await count("status = 'refused'"));
    expect(await value('sum(eve_gateway_finalizes_lost_total)')).toBe(1);
    expect(await value('sum(eve_gateway_tokens_total{gen_ai_token_type="input"})'))
      .toBe(Number((await query<{ n: string }>(`select coalesce(sum(input_tokens), 0) as n from public.google_ai_attempts`))[0]!.n));
    // The simulator's own counts: every call that reached Google, its 200s and its 429s.
    const sim = stack.simulator!.stats().byMethod.generateContent!;
    const called = CALLED_GOOGLE.map((s) => `status="${s}"`);
    const reached = await Promise.all(called.map((c) => value(`sum(eve_gateway_attempts_total{${c}}) or vector(0)`)));
    expect(reached.reduce((a, b) => a + b, 0)).toBe(sim.received);
    expect(await value('sum(eve_gateway_upstream_calls_total{service_tier="standard"})')).toBe(sim.received);
    expect(await value('sum(eve_gateway_attempts_total{status="succeeded"})')).toBe(sim.byStatus["200"]);
    expect(await value("sum(eve_gateway_upstream_429_total)")).toBe(sim.byStatus["429"]);
    // The former names (eve_gateway_google_calls_total, _429_total, _latency_seconds) are gone since 1.0:
    // no series is scraped under them.
    expect(await prom.query('{__name__=~"eve_gateway_google_.*"}')).toEqual([]);
    // The fault answers the first three calls that reach Google for Flash; how many of the load's
    // calls reach Google while the groups cool down depends on timing, so: at least one, at most three.
    expect(sim.byStatus["429"]).toBeGreaterThanOrEqual(1);
    expect(sim.byStatus["429"]).toBeLessThanOrEqual(3);
    // Labels: callers the operator did not name are 'service'; no key alias anywhere.
    const callers = (await prom.query("sum by (caller) (eve_gateway_attempts_total)")).map((r) => r.metric.caller);
    expect(callers).toEqual(["service"]);
    const all = await prom.query('{__name__=~"eve_gateway_.*"}');
    expect(JSON.stringify(all)).not.toMatch(/metrics-a|metrics-b/);
  }, 120_000);

  it("every panel of the Grafana dashboard returns series from the scraped data", async () => {
    // Rates need a series to grow between two scrapes inside their range: more traffic, now that
    // every series has been scraped once. (The histograms' series are exported at zero before their
    // first row: whether the load had a Flash success, which its 429s leave to timing, does not matter.)
    await eventually(async () => (await value("min(count_over_time(eve_gateway_attempts_total[2m]))")) >= 2, 30_000);
    // Every row of the earlier load counted (a success's finalize may land after its answer), so
    // that what follows adds exactly the four new requests.
    const countable = () => count(`status <> 'reserved' and (status <> 'refused' or created_at < now() - interval '8 minutes')`);
    const seen = await countable();
    await scrapedValue("sum(eve_gateway_attempts_total)", seen);
    for (let i = 0; i < 4; i++) await invoke("gemini-2.5-flash", "eve-bot");
    // At least the four new requests' rows (more if one met a Flash fault left from the load and was
    // retried), and every countable row exactly: compared afresh until a scrape has them all.
    let scraped = NaN;
    let rows = NaN;
    await eventually(async () => {
      [scraped, rows] = [await value("sum(eve_gateway_attempts_total)"), await countable()];
      return scraped === rows && rows >= seen + 4;
    }, 30_000).catch(() => {
      throw new Error(`sum(eve_gateway_attempts_total): Prometheus says ${scraped}, the rows ${rows} (before: ${seen})`);
    });
    const targets = DASHBOARD.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, legend: t.legendFormat })));
    expect(targets.length).toBeGreaterThanOrEqual(15);
    expect(DASHBOARD.templating.list.filter((v) => v.allValue === ".*").map((v) => v.name)).toEqual(["model", "provider"]);
    const empty: string[] = [];
    const unsplit: string[] = [];
    for (const t of targets) {
      const expr = t.expr.replaceAll("$__rate_interval", "2m").replaceAll("$model", ".*").replaceAll("$provider", ".*");
      const result = await prom.query(expr);
      if (!result.some((r) => Number.isFinite(Number(r.value[1])))) empty.push(`${t.panel}: ${expr}`);
      // A panel of a provider's metric is filtered by the variable and names the provider of each series.
      if (BY_PROVIDER.some((m) => t.expr.includes(m)) && (!t.expr.includes('provider=~"$provider"')
          || !t.legend.includes("{{provider}}") || !result.every((r) => ["google", "openai"].includes(r.metric.provider!)))) {
        unsplit.push(`${t.panel}: ${t.expr}`);
      }
    }
    expect(empty).toEqual([]);
    expect(unsplit).toEqual([]);
    expect(targets.filter((t) => BY_PROVIDER.some((m) => t.expr.includes(m))).length).toBe(7);
    const rules = await prom.rules();
    expect(rules.length).toBe((ALERTS.match(/- alert:/g) ?? []).length);
    expect(rules.filter((r) => r.health !== "ok")).toEqual([]);
  }, 60_000);

  it("no counter decreases across a housekeeping run that deletes the rows, nor across a PostgreSQL restart", async () => {
    const total = await value("sum(eve_gateway_attempts_total)");
    const before = await counterSeries();
    // Every row past retention: housekeeping deletes them all (folding those the scrapes had not).
    await query(`update public.google_ai_attempts set created_at = created_at - interval '40 days'`);
    const run = await maintenance({ keys: false });
    expect(run.status).toBe("succeeded");
    expect(await count("true")).toBe(0);
    await scrapedValue("sum(eve_gateway_metrics_live_rows)", 0);
    expect(await value("sum(eve_gateway_attempts_total)")).toBe(total);
    expect(decreased(before, await counterSeries())).toEqual([]);

    await pg.stop();
    await scrapedValue('up{job="eve-gateway"}', 0);
    await pg.start();
    await scrapedValue('up{job="eve-gateway"}', 1);
    await sleep(1500);
    expect(await value("sum(eve_gateway_attempts_total)")).toBe(total);
    expect(decreased(before, await counterSeries())).toEqual([]);

    // And they go on counting: three more requests, three more attempts (the table was empty).
    for (let i = 0; i < 3; i++) expect(await invoke("gemini-2.5-flash", "eve-bot")).toBe(200);
    expect(await count("true")).toBe(3);
    await scrapedValue("sum(eve_gateway_attempts_total)", total + 3);
    // Prometheus' own view over the whole test: not one counter reset.
    const names = [...new Set([...before.keys()].map((k) => (JSON.parse(k) as { __name__: string }).__name__))];
    expect(names.length).toBeGreaterThan(8);
    for (const name of names) expect(await value(`sum(resets(${name}[10m]))`), name).toBe(0);
  }, 120_000);
});
