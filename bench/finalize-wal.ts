// The outcome write: N admissions are reserved, then finalized one transaction each (as llm-invoke
// does). Counted, not timed: WAL bytes per finalize and how many of the attempt rows' updates were
// heap-only (HOT), from PostgreSQL's own statistics. (Against the design before it: docs/benchmarks.md,
// "History".)
import { connect, type Sql } from "../shared/db/migrate.ts";
import { setKeys, setModel, UNBOUNDED, walBytesSince, walLsn, type BenchServer } from "./lib/db.ts";
import { fmt, pct, table, type PartResult } from "./lib/report.ts";

export interface FinalizeWalConfig {
  /** Admissions reserved, then finalized. */
  admissions: number;
}

const MODEL = "bench-finalize";

export async function runFinalizeWal(bench: BenchServer, cfg: FinalizeWalConfig, log: (s: string) => void): Promise<PartResult> {
  const db = await bench.fresh("finalize");
  const client = connect(db.url, { max: 1 });
  try {
    await setModel(db.sql, MODEL, UNBOUNDED);
    await setKeys(db.sql, [{ alias: "fin", project: "proj-fin", models: [MODEL] }]);
    const ids: string[] = [];
    for (let i = 0; i < cfg.admissions; i++) {
      const [{ r }] = await client<{ r: { ok: boolean; reservation_id: string } }[]>`
        select public.google_ai_reserve_models(p_models => array[${MODEL}], p_estimated_tokens => 10, p_caller => 'bench',
          p_request_id => ${`fin-${i}`}) as r`;
      if (!r.ok) throw new Error(`reservation ${i} refused`);
      ids.push(r.reservation_id);
    }
    const start = await attemptUpdates(client);
    const lsn = await walLsn(client);
    for (const id of ids) {
      await client`select public.google_ai_finalize(p_reservation_id => ${id}::uuid,
        p_outcome => ${'{"kind":"succeeded","input_tokens":8,"output_tokens":4,"http_status":200,"latency_ms":5}'}::text::jsonb) as r`;
    }
    const walBytes = await walBytesSince(client, lsn);
    const end = await flushedUpdates(client, start.updates + ids.length);
    const [{ n }] = await client<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where model = ${MODEL} and status = 'succeeded'`;
    const f = { finalized: n, updates: end.updates - start.updates, hotUpdates: end.hot - start.hot, walBytes, walBytesPerFinalize: walBytes / ids.length };
    const hot = `${f.hotUpdates}/${f.updates} HOT (${pct(f.hotUpdates / Math.max(1, f.updates))})`;
    const markdown = [
      `${cfg.admissions} admissions reserved, then finalized one transaction each. Counted from PostgreSQL: WAL between ` +
      `the first and the last finalize (the outcome also writes \`token_usage\`, the window's admission row and the counter ` +
      `row), and the attempt rows' updates and HOT updates (\`pg_stat_user_tables\`).`,
      "",
      table(
        ["finalized", "attempt-row updates", "of them HOT", "WAL per finalize"],
        [[f.finalized, f.updates, `${f.hotUpdates} (${pct(f.hotUpdates / Math.max(1, f.updates))})`, `${fmt(f.walBytesPerFinalize, 0)} B`]],
        ["r", "r", "r", "r"],
      ),
    ].join("\n");
    return {
      id: "finalize-wal",
      title: "Finalize: a heap-only update",
      data: { config: cfg, figures: f },
      markdown,
      headline: [{ figure: "finalize: WAL per call (HOT share)", value: `${fmt(f.walBytesPerFinalize, 0)} B (${pct(f.hotUpdates / Math.max(1, f.updates))} HOT)` }],
      checks: [
        {
          name: "every admission is finalized exactly once",
          ok: f.finalized === cfg.admissions && f.updates === cfg.admissions,
          detail: `${f.finalized} finalized, ${f.updates} row updates`,
        },
        { name: "finalize's attempt-row update is heap-only (at least 95% HOT)", ok: f.hotUpdates >= 0.95 * f.updates, detail: hot },
      ],
    };
  } finally {
    await client.end({ timeout: 5 });
    await db.close();
  }
}

async function attemptUpdates(sql: Sql): Promise<{ updates: number; hot: number }> {
  const [row] = await sql<{ upd: string; hot: string }[]>`
    select n_tup_upd::text as upd, n_tup_hot_upd::text as hot
    from pg_stat_user_tables where relid = 'public.google_ai_attempts'::regclass`;
  return { updates: Number(row!.upd), hot: Number(row!.hot) };
}

/** The statistics once this connection's counts have reached the shared ones (flushed at most each second). */
async function flushedUpdates(sql: Sql, expected: number): Promise<{ updates: number; hot: number }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await sql`select pg_stat_force_next_flush()`;
    await sql`select 1`;
    const now = await attemptUpdates(sql);
    if (now.updates >= expected || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 250));
  }
}
