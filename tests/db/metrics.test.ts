// /metrics' SQL (supabase/schemas/91_metrics.sql) against a real PostgreSQL: every counter equals the
// attempt rows it counts, histograms are cumulative, labels never name a key, and the counters never
// go down when the fold moves rows into the totals, when housekeeping deletes rows (folded or not)
// or when scrapes, folds and housekeeping run at once.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { type Exposition, parseExposition, total } from "../../shared/prometheus/exposition.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { createPgMetricsSource } from "../../supabase/functions/maintenance/metrics-store.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await freshDatabase("metrics");
  sql = db.sql;
});

afterAll(async () => {
  await db?.drop();
});

/** One scrape's text as the metrics route writes it (one call of public.google_ai_metrics()). */
function scrapeText(on: Sql = sql): Promise<string> {
  return createPgMetricsSource({ run: (_what, work) => work(on) }).text();
}

async function scrape(on: Sql = sql): Promise<Exposition> {
  return parseExposition(await scrapeText(on));
}

/** Attempt rows written as llm-invoke's RPCs leave them (the columns the metrics read). */
async function insertAttempts(n: number, row: Record<string, unknown>, createdAgo = "0 seconds"): Promise<void> {
  const r = {
    status: "succeeded", caller: "bot", model: "gemma-3-27b-it", quota_group: "proj-a", key_alias: "secret-alias-a",
    priority_class: "interactive", http_status: 200, input_tokens: 10, output_tokens: 20, latency_ms: 300,
    quota_cause: null, wait_ms: null, added_ms: 12, first_byte_ms: 40, limit_hit: null, refusal_cause: null, client_id: null, ...row,
  };
  await sql`
    insert into public.google_ai_attempts (created_at, finished_at, status, caller, client_id, model, quota_group,
      key_alias, priority_class, http_status, input_tokens, output_tokens, latency_ms, quota_cause, wait_ms,
      added_ms, first_byte_ms, limit_hit, refusal_cause)
    select now() - ${createdAgo}::interval, now(), ${r.status as string}, ${r.caller as string}, ${r.client_id as string | null},
      ${r.model as string}, ${r.quota_group as string | null}, ${r.key_alias as string}, ${r.priority_class as string},
      ${r.http_status as number | null}, ${r.input_tokens as number | null}, ${r.output_tokens as number | null},
      ${r.latency_ms as number | null}, ${r.quota_cause as string | null}, ${r.wait_ms as number | null},
      ${r.added_ms as number | null}, ${r.first_byte_ms as number | null}, ${r.limit_hit as string | null},
      ${r.refusal_cause as string | null}
    from generate_series(1, ${n})`;
}

async function rowCount(where = sql`true`): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_attempts where ${where}`;
  return n;
}

/** Every counter and histogram sample, by name and labels. */
function counters(e: Exposition): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of e.samples) {
    const type = e.types[s.name] ?? e.types[s.name.replace(/_(bucket|sum|count)$/, "")];
    if (type === "counter" || type === "histogram") out.set(`${s.name}${JSON.stringify(s.labels)}`, s.value);
  }
  return out;
}

function expectNoDecrease(before: Map<string, number>, after: Map<string, number>): void {
  const dropped = [...before].filter(([k, v]) => (after.get(k) ?? 0) < v - 1e-9);
  expect(dropped).toEqual([]);
}

describe("google_ai_metrics", () => {
  it("counts decided attempt rows by status, cause, limit, refusal cause and tokens; open reservations are in flight", async () => {
    await sql`delete from public.google_ai_attempts`;
    await insertAttempts(7, {});
    await insertAttempts(3, { status: "upstream_error", http_status: 429, quota_cause: "day", input_tokens: null, output_tokens: null });
    await insertAttempts(2, { status: "upstream_error", http_status: 429, quota_cause: null, input_tokens: null, output_tokens: null });
    // Refusals settled (older than a waiting caller may still update them): counted.
    await insertAttempts(3, { status: "refused", http_status: null, limit_hit: "rpm", refusal_cause: "spread", quota_group: null, latency_ms: null, input_tokens: null, output_tokens: null }, "10 minutes");
    // (A row written before refusals named a cause: its limit's.)
    await insertAttempts(1, { status: "refused", http_status: null, limit_hit: "rpm", quota_group: null, latency_ms: null, input_tokens: null, output_tokens: null }, "10 minutes");
    await insertAttempts(2, { status: "reserved", http_status: null, input_tokens: null, output_tokens: null, latency_ms: null });
    await insertAttempts(1, { status: "abandoned", http_status: null, input_tokens: null, output_tokens: null });
    const m = await scrape();

    expect(total(m, "eve_gateway_attempts_total")).toBe(await rowCount(sql`status <> 'reserved'`));
    expect(total(m, "eve_gateway_attempts_total", { status: "succeeded", model: "gemma-3-27b-it", quota_group: "proj-a" })).toBe(7);
    expect(total(m, "eve_gateway_upstream_429_total", { cause: "day" })).toBe(3);
    expect(total(m, "eve_gateway_upstream_429_total", { cause: "unknown" })).toBe(2);
    expect(total(m, "eve_gateway_refusals_total", { limit: "rpm" })).toBe(4);
    expect(total(m, "eve_gateway_refusals_total", { limit: "rpm", cause: "spread" })).toBe(3);
    expect(total(m, "eve_gateway_refusals_total", { limit: "rpm", cause: "window_full" })).toBe(1);
    expect(total(m, "eve_gateway_finalizes_lost_total")).toBe(1);
    expect(total(m, "eve_gateway_attempts_in_flight")).toBe(2);
    expect(total(m, "eve_gateway_tokens_total", { gen_ai_token_type: "input" })).toBe(70);
    expect(total(m, "eve_gateway_tokens_total", { gen_ai_token_type: "output" })).toBe(140);
    // Histograms: cumulative buckets, +Inf = _count = the rows that have the column.
    const ttfbRows = await rowCount(sql`status <> 'reserved' and first_byte_ms is not null`);
    expect(total(m, "eve_gateway_time_to_first_byte_seconds_count")).toBe(ttfbRows);
    expect(total(m, "eve_gateway_time_to_first_byte_seconds_bucket", { le: "+Inf" })).toBe(ttfbRows);
    expect(total(m, "eve_gateway_time_to_first_byte_seconds_bucket", { le: "0.025" })).toBe(0);
    expect(total(m, "eve_gateway_time_to_first_byte_seconds_bucket", { le: "0.05" })).toBe(ttfbRows);
    expect(total(m, "eve_gateway_added_latency_seconds_sum")).toBeCloseTo(ttfbRows * 0.012, 9);
    // A bound is inclusive (le): 300 ms is in the 0.25 s bucket? No: in 0.5 s, and not in 0.25 s.
    expect(total(m, "eve_gateway_upstream_latency_seconds_bucket", { le: "0.25" })).toBe(0);
    expect(total(m, "eve_gateway_upstream_latency_seconds_bucket", { le: "0.5" })).toBe(total(m, "eve_gateway_upstream_latency_seconds_count"));
    // No label names a key.
    const text = await scrapeText();
    expect(text).not.toContain("secret-alias-a");
    expect(text).toMatch(/^# HELP eve_gateway_/m);
    // Every family the database exports is one the route describes; none under a former name (1.0).
    expect(text).not.toContain(" untyped\n");
    expect(text).not.toContain("eve_gateway_google_");
  });

  it("a bucket's bound is inclusive, as Prometheus reads le", async () => {
    const [r] = await sql<{ a: string; b: string; c: string; d: string }[]>`
      select public.google_ai_metric_le(5)::text as a, public.google_ai_metric_le(6)::text as b,
             public.google_ai_metric_le(0)::text as c, public.google_ai_metric_le(999999)::text as d`;
    expect(r).toEqual({ a: "0.005", b: "0.01", c: "0.005", d: "Infinity" });
  });

  it("the fold moves old decided rows into the totals without changing a counter", async () => {
    const before = await scrape();
    expect(total(before, "eve_gateway_metrics_live_rows")).toBeGreaterThan(0);
    // Rows older than stale_reservation_after can no longer change: the next scrape folds them.
    await sql`update public.google_ai_attempts set created_at = created_at - interval '1 hour' where status <> 'reserved'`;
    // An open reservation holds the fold back: rows after it stay live until it is decided.
    const held = await scrape();
    expect(total(held, "eve_gateway_metrics_live_rows")).toBe(await rowCount(sql`id >= (select min(id) from public.google_ai_attempts where status = 'reserved')`));
    await sql`update public.google_ai_attempts set status = 'released', created_at = created_at - interval '1 hour' where status = 'reserved'`;
    const after = await scrape();
    const again = await scrape();
    expect(total(again, "eve_gateway_metrics_live_rows")).toBe(0);
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_metric_totals`;
    expect(n).toBeGreaterThan(0);
    expectNoDecrease(counters(before), counters(again));
    expect(total(again, "eve_gateway_attempts_total")).toBe(await rowCount());
    expect(total(after, "eve_gateway_attempts_total", { status: "released" })).toBe(2);
  });

  it("housekeeping's trim changes no counter, for folded rows and for rows it folds as it deletes", async () => {
    // Rows past retention: some folded already, some behind an open reservation that holds the mark.
    await insertAttempts(5, { status: "reserved", http_status: null }, "1 minute");
    await insertAttempts(11, { model: "gemini-2.5-flash" }, "40 days");
    await insertAttempts(6, { status: "upstream_error", http_status: 429, quota_cause: "minute" }, "40 days");
    const before = counters(await scrape());
    const rows = await rowCount();
    const [{ r }] = await sql<{ r: any }[]>`select public.google_ai_housekeeping() as r`;
    expect(r.status).toBe("succeeded");
    expect(r.steps.attempts_retention.deleted).toBeGreaterThanOrEqual(17);
    expect(await rowCount()).toBe(rows - r.steps.attempts_retention.deleted);
    const after = await scrape();
    expectNoDecrease(before, counters(after));
    expect(total(after, "eve_gateway_attempts_total", { model: "gemini-2.5-flash" })).toBe(11);
    expect(total(after, "eve_gateway_upstream_429_total", { cause: "minute" })).toBe(6);
    const decided = await rowCount(sql`status <> 'reserved'`);
    expect(total(after, "eve_gateway_attempts_total")).toBe(decided + r.steps.attempts_retention.deleted);
  });

  it("scrapes, folds and housekeeping at once count every row exactly once", async () => {
    const start = total(await scrape(), "eve_gateway_attempts_total");
    const conns = Array.from({ length: 6 }, () => connect(db.url, { max: 1 }));
    try {
      let written = 0;
      const writes = (async () => {
        for (let i = 0; i < 20; i++) {
          await insertAttempts(25, {}, i % 2 === 0 ? "2 hours" : "41 days");
          written += 25;
        }
      })();
      const scrapes = conns.slice(0, 5).map(async (c) => {
        for (let i = 0; i < 10; i++) await scrape(c);
      });
      const hk = (async () => {
        for (let i = 0; i < 4; i++) await conns[5]!`select public.google_ai_housekeeping()`;
      })();
      await Promise.all([writes, ...scrapes, hk]);
      const [{ r }] = await sql<{ r: any }[]>`select public.google_ai_housekeeping() as r`;
      expect(r.status).toBe("succeeded");
      expect(total(await scrape(), "eve_gateway_attempts_total")).toBe(start + written);
    } finally {
      await Promise.all(conns.map((c) => c.end({ timeout: 5 })));
    }
  });

  it("the functions' role may scrape and nothing more; nobody else may", async () => {
    const gateway = connect(await gatewayRoleUrl(db.url), { max: 1 });
    try {
      const m = await scrapeText(gateway);
      expect(m).toContain("eve_gateway_attempts_total");
      await expect(gateway`select * from public.google_ai_metric_totals`).rejects.toThrow(/permission denied/);
      await expect(gateway`select public.google_ai_metrics_fold()`).rejects.toThrow(/permission denied/);
    } finally {
      await gateway.end({ timeout: 5 });
    }
    const [{ anon }] = await sql<{ anon: boolean }[]>`
      select has_function_privilege('anon', 'public.google_ai_metrics()', 'execute') as anon`;
    expect(anon).toBe(false);
  });
  // Issue 26, 1: an id handed out before a committed higher one, whose insert commits after a scrape.
  it("a row whose insert commits after a scrape folded past younger ids is still counted", async () => {
    // Nothing open holds the fold back: every row is old and decided.
    await sql`update public.google_ai_attempts set status = 'released' where status = 'reserved'`;
    await sql`update public.google_ai_attempts set created_at = created_at - interval '1 hour'`;
    const start = total(await scrape(), "eve_gateway_attempts_total");
    await insertAttempts(3, {}, "1 hour");
    const a = connect(db.url, { max: 1 });
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    let inserted!: () => void;
    const holding = new Promise<void>((resolve) => (inserted = resolve));
    try {
      const txA = a.begin(async (tx) => {
        await tx`insert into public.google_ai_attempts (created_at, status, caller, model, quota_group, priority_class)
                 values (now() - interval '1 hour', 'succeeded', 'bot', 'gemma-3-27b-it', 'proj-a', 'interactive')`;
        inserted();
        await committed;
      });
      await holding;
      await insertAttempts(1, {}, "1 hour"); // a higher id, committed while the lower one is not
      expect(total(await scrape(), "eve_gateway_attempts_total")).toBe(start + 4);
      commit();
      await txA;
      expect(total(await scrape(), "eve_gateway_attempts_total")).toBe(start + 5);
      // And the fold, once nothing is uncommitted below the rows, keeps it.
      expect(total(await scrape(), "eve_gateway_attempts_total")).toBe(start + 5);
    } finally {
      commit();
      await a.end({ timeout: 5 });
    }
  });

  it("a gap a rolled-back insert left holds the fold back only until it is older than any open transaction", async () => {
    const a = connect(db.url, { max: 1 });
    try {
      await a.begin(async (tx) => {
        await tx`insert into public.google_ai_attempts (status, caller, model, priority_class)
                 values ('succeeded', 'bot', 'gemma-3-27b-it', 'interactive')`;
        await tx`select 1/0`; // rolled back: its id is a gap for good
      }).catch(() => {});
    } finally {
      await a.end({ timeout: 5 });
    }
    await insertAttempts(4, {}, "1 hour");
    const before = await scrape();
    // The gap is young: the rows after it stay live (counted, not folded).
    expect(total(before, "eve_gateway_metrics_live_rows")).toBeGreaterThanOrEqual(4);
    // Time passes (the fold's fence ages past stale_reservation_after twice: once to take a new
    // fence above the gap, once for that fence to be old): the gap is permanent, the fold crosses it.
    for (let i = 0; i < 2; i++) {
      await sql`update public.google_ai_metric_fold set fence_at = fence_at - interval '1 hour'`;
      await scrape();
    }
    const after = await scrape();
    expect(total(after, "eve_gateway_metrics_live_rows")).toBe(0);
    expect(total(after, "eve_gateway_attempts_total")).toBe(total(before, "eve_gateway_attempts_total"));
    expectNoDecrease(counters(before), counters(after));
  });

  it("the migration folds a log with old gaps at once: the log's own times date its gaps", async () => {
    const a = connect(db.url, { max: 1 });
    try {
      await a.begin(async (tx) => {
        await tx`insert into public.google_ai_attempts (status, caller, model, priority_class)
                 values ('succeeded', 'bot', 'gemma-3-27b-it', 'interactive')`;
        await tx`select 1/0`;
      }).catch(() => {});
    } finally {
      await a.end({ timeout: 5 });
    }
    await insertAttempts(3, {}, "2 hours");
    // As on a project's log the moment the migration creates the fence: it is young.
    await sql`update public.google_ai_metric_fold set fence_at = now()`;
    const before = await scrape();
    const [{ last }] = await sql<{ last: string }[]>`select max(id)::text as last from public.google_ai_attempts`;
    expect(total(before, "eve_gateway_metrics_live_rows")).toBeGreaterThanOrEqual(3);
    await sql.unsafe(readFileSync(new URL("../../supabase/migrations/20261122000200_rows_and_schedule.sql", import.meta.url), "utf8"));
    const [{ through }] = await sql<{ through: string }[]>`select folded_through::text as through from public.google_ai_metric_fold`;
    expect(BigInt(through)).toBe(BigInt(last));
    const after = await scrape();
    expect(total(after, "eve_gateway_metrics_live_rows")).toBe(0);
    expectNoDecrease(counters(before), counters(after));
  });

  // Issue 26, 2: a label must not depend on anything that changes after the row is counted.
  it("no series goes down when a caller is named in google_ai_caller_budgets between scrapes", async () => {
    await insertAttempts(2, { caller: "parser" });
    await insertAttempts(2, { caller: "parser" }, "1 hour");
    const before = counters(await scrape());
    await sql`insert into public.google_ai_caller_budgets (caller) values ('parser') on conflict do nothing`;
    const after = await scrape();
    expectNoDecrease(before, counters(after));
    expect(total(after, "eve_gateway_attempts_total", { caller: "parser" })).toBe(0);
    await sql`delete from public.google_ai_caller_budgets where caller = 'parser'`;
    expectNoDecrease(counters(after), counters(await scrape()));
  });

  it("a waiting caller's refusal is counted once it can no longer change, under its last limit", async () => {
    await sql`insert into public.google_ai_attempts (status, request_id, caller, model, requested_model, attempt,
                limit_hit, wait_ms, priority_class)
              values ('refused', 'wait-1', 'bot', 'gemma-3-27b-it', 'gemma-3-27b-it', 1, 'rpm', 1000, 'interactive')`;
    const rpm = total(await scrape(), "eve_gateway_refusals_total", { limit: "rpm" });
    const tpm = total(await scrape(), "eve_gateway_refusals_total", { limit: "tpm" });
    const before = counters(await scrape());
    // The caller asks again while it waits: its refusal row now says tpm.
    await sql`select public.google_ai_refusal_at(p_now => now(),
                p_request => row('gemma-3-27b-it', 'bot', null, null, null, 'wait-1', 1, 10, null, 3000, 0, '{}',
                  null, '{}', null, false, 1, null, null, null)::public.google_ai_request,
                p_limits => jsonb_populate_record(null::public.google_ai_model_limits, '{"model": "gemma-3-27b-it"}'),
                p_class => (select pc from public.google_ai_priority_classes pc where pc.name = 'interactive'),
                p_refusal => row('tpm', 'window_full', null, null, true, null, null, null, null, null,
                  null)::public.google_ai_refusal)`;
    expect(await rowCount(sql`request_id = 'wait-1'`)).toBe(1);
    const after = await scrape();
    expectNoDecrease(before, counters(after));
    // Past the longest wait plus a minute, the row is final: counted once, under tpm.
    await sql`update public.google_ai_attempts set created_at = created_at - interval '10 minutes' where request_id = 'wait-1'`;
    const settled = await scrape();
    expectNoDecrease(counters(after), counters(settled));
    expect(total(settled, "eve_gateway_refusals_total", { limit: "tpm" })).toBe(tpm + 1);
    expect(total(settled, "eve_gateway_refusals_total", { limit: "rpm" })).toBe(rpm);
  });

  // Issue 26, 3: a waiter leaving the queue is not a lost finalize, and its time in line is no wait.
  it("queue lapses are counted apart: not as lost finalizes nor in the wait histogram", async () => {
    const before = await scrape();
    await sql`insert into public.google_ai_queue (model, priority_class, class_rank, caller, turn, enqueued_at, tokens,
                limit_hit, expected_at, lease_until, position)
              values ('gemma-3-27b-it', 'batch', 10, 'parser', 1, now() - interval '2 minutes', 10, 'rpm',
                now() - interval '1 minute', now() - interval '30 seconds', 1)`;
    const [{ n }] = await sql<{ n: number }[]>`select public.google_ai_queue_lapse('gemma-3-27b-it', now()) as n`;
    expect(n).toBe(1);
    // A reservation no finalize reached: housekeeping abandons it.
    await sql`insert into public.google_ai_attempts (created_at, status, caller, model, quota_group, priority_class, wait_ms)
              values (now() - interval '20 minutes', 'reserved', 'bot', 'gemma-3-27b-it', 'proj-a', 'interactive', 2000)`;
    const [{ r }] = await sql<{ r: any }[]>`select public.google_ai_housekeeping() as r`;
    expect(r.steps.abandon_stale_reservations.abandoned).toBe(1);
    const after = await scrape();
    expect(total(after, "eve_gateway_finalizes_lost_total") - total(before, "eve_gateway_finalizes_lost_total")).toBe(1);
    expect(total(after, "eve_gateway_queue_lapses_total", { priority_class: "batch" })
      - total(before, "eve_gateway_queue_lapses_total", { priority_class: "batch" })).toBe(1);
    // The wait histogram took the abandoned reservation's wait, not the lapse's time in line.
    expect(total(after, "eve_gateway_wait_seconds_count", { priority_class: "batch" }))
      .toBe(total(before, "eve_gateway_wait_seconds_count", { priority_class: "batch" }));
    expect(total(after, "eve_gateway_wait_seconds_count", { priority_class: "interactive" })
      - total(before, "eve_gateway_wait_seconds_count", { priority_class: "interactive" })).toBe(1);
    expect(total(after, "eve_gateway_attempts_total", { status: "abandoned" })
      - total(before, "eve_gateway_attempts_total", { status: "abandoned" })).toBe(2);
  });

  // A series that first appears already holding its first rows starts at that value for Prometheus,
  // which rate() and increase() never count: a model's first requests would show in no latency panel.
  it("the histograms and alerted counters of active models and serving quota groups are exported at zero before their first row", async () => {
    const [{ model }] = await sql<{ model: string }[]>`select l.model from public.google_ai_model_limits l
      where l.is_active and l.provider = 'google'
        and not exists (select 1 from public.google_ai_attempts a where a.model = l.model)
        and not exists (select 1 from public.google_ai_metric_totals t
                        where strpos(t.labels, public.google_ai_metric_label('model', l.model)) > 0)
      order by l.model limit 1`;
    await sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active)
              values ('zero-a', 'GOOGLE_TEST_KEY_ZERO_A', 'proj-zero', 1, true)`;
    const histograms: [string, Record<string, string>][] = [
      ["eve_gateway_upstream_latency_seconds", { model, quota_group: "proj-zero" }],
      ["eve_gateway_time_to_first_byte_seconds", { model, priority_class: "interactive" }],
      ["eve_gateway_added_latency_seconds", { model, priority_class: "batch" }],
      ["eve_gateway_wait_seconds", { model, priority_class: "interactive" }],
    ];
    const series = (e: Exposition, name: string, labels: Record<string, string>) =>
      e.samples.filter((s) => s.name === name && Object.keys(s.labels).filter((k) => k !== "le").length === Object.keys(labels).length
        && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    const before = await scrape();
    // The counters the alerts read with increase(): a group's first provider 429 or lost finalize fires them.
    const causes = ["minute", "day", "limit_zero", "spend_cap", "monthly_cap", "billing_cap", "credits_depleted", "unknown"];
    expect(causes.map((cause) => series(before, "eve_gateway_upstream_429_total", { model, quota_group: "proj-zero", provider: "google", cause })
      .map((s) => s.value))).toEqual(causes.map(() => [0]));
    expect(series(before, "eve_gateway_finalizes_lost_total", { model, quota_group: "proj-zero" }).map((s) => s.value)).toEqual([0]);
    for (const [family, labels] of histograms) {
      expect(series(before, `${family}_bucket`, labels).map((s) => s.value), family).toEqual(Array(16).fill(0));
      expect(series(before, `${family}_bucket`, labels).some((s) => s.labels.le === "+Inf"), family).toBe(true);
      expect(series(before, `${family}_count`, labels).map((s) => s.value), family).toEqual([0]);
      expect(series(before, `${family}_sum`, labels).map((s) => s.value), family).toEqual([0]);
    }
    // Their first rows add to the same series (no second one with the same labels): one per class, both in proj-zero.
    await insertAttempts(1, { model, quota_group: "proj-zero", wait_ms: 0 });
    await insertAttempts(1, { model, quota_group: "proj-zero", wait_ms: 0, priority_class: "batch" });
    const after = await scrape();
    expectNoDecrease(counters(before), counters(after));
    for (const [family, labels] of histograms) {
      expect(series(after, `${family}_count`, labels).map((s) => s.value), family).toEqual([labels.quota_group ? 2 : 1]);
      expect(series(after, `${family}_bucket`, labels).length, family).toBe(16);
    }
    // And the counters' first events too.
    await insertAttempts(1, { model, quota_group: "proj-zero", status: "upstream_error", http_status: 429, quota_cause: "spend_cap" });
    await insertAttempts(1, { model, quota_group: "proj-zero", status: "abandoned", http_status: null });
    const counted = await scrape();
    expectNoDecrease(counters(after), counters(counted));
    expect(series(counted, "eve_gateway_upstream_429_total", { model, quota_group: "proj-zero", provider: "google", cause: "spend_cap" }).map((s) => s.value)).toEqual([1]);
    expect(series(counted, "eve_gateway_finalizes_lost_total", { model, quota_group: "proj-zero" }).map((s) => s.value)).toEqual([1]);
    await sql`delete from public.google_ai_api_keys where key_alias = 'zero-a'`;
  });

  it("quota gauges: used always, a limit only when set, yesterday's day count as 0; an owner's log row without times is no sample", async () => {
    const model = "metrics-gauge-model";
    const labels = { model, quota_group: "proj-gauge" };
    await sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values (${model}, 10, null, 100)`;
    await sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active)
              values ('gauge-a', 'GOOGLE_TEST_KEY_GAUGE_A', 'proj-gauge', 1, true)`;
    await sql`insert into public.google_ai_usage_counters (quota_group, model, day_bucket, rpd_used)
              values ('proj-gauge', ${model}, public.google_ai_pacific_day(now()) - 1, 5)`;
    // An adopted log may hold rows without their times: newest first, nulls lead.
    await sql`insert into public.google_ai_maintenance_log (operation, status) values ('housekeeping', 'succeeded')`;
    const gauge = (e: Exposition, name: string, w: Record<string, string>) =>
      e.samples.filter((s) => s.name === name && Object.entries({ ...labels, ...w }).every(([k, v]) => s.labels[k] === v))
        .map((s) => s.value);
    try {
      const m = await scrape();
      expect(gauge(m, "eve_gateway_quota_used", { window: "day", unit: "requests" })).toEqual([0]);
      expect(gauge(m, "eve_gateway_quota_used", { window: "minute", unit: "tokens" })).toEqual([0]);
      expect(gauge(m, "eve_gateway_quota_limit", { window: "minute", unit: "requests" })).toEqual([10]);
      expect(gauge(m, "eve_gateway_quota_limit", { window: "day", unit: "requests" })).toEqual([100]);
      expect(gauge(m, "eve_gateway_quota_limit", { window: "minute", unit: "tokens" })).toEqual([]);
      expect(m.samples.filter((s) => s.name === "eve_gateway_housekeeping_last_run_timestamp_seconds")).toEqual([]);
      expect(m.samples.filter((s) => s.name === "eve_gateway_housekeeping_last_run_failed").map((s) => s.value)).toEqual([0]);
      expect(m.samples.filter((s) => !Number.isFinite(s.value) && s.labels.le !== "+Inf")).toEqual([]);
      await sql`update public.google_ai_usage_counters set day_bucket = public.google_ai_pacific_day(now())
                where quota_group = 'proj-gauge'`;
      expect(gauge(await scrape(), "eve_gateway_quota_used", { window: "day", unit: "requests" })).toEqual([5]);
    } finally {
      await sql`delete from public.google_ai_maintenance_log where started_at is null`;
      await sql`delete from public.google_ai_usage_counters where quota_group = 'proj-gauge'`;
      await sql`delete from public.google_ai_api_keys where key_alias = 'gauge-a'`;
      await sql`delete from public.google_ai_model_limits where model = ${model}`;
    }
  });
});
