// The outcome write against its earlier design, side by side on the same server: N admissions are
// reserved, then finalized one transaction each (as llm-invoke does), on a database migrated as it
// is now and on one migrated only up to the file before finalize became a heap-only update (an
// index whose predicate names `status`, full pages). Counted, not timed: WAL bytes per finalize and
// how many of the attempt rows' updates were heap-only (HOT), from PostgreSQL's own statistics.
import { connect, type Sql } from "../shared/db/migrate.ts";
import { setKeys, setModel, walBytesSince, walLsn, type BenchServer } from "./lib/db.ts";
import { fmt, pct, table, type PartResult } from "./lib/report.ts";

export interface FinalizeWalConfig {
  /** Admissions reserved, then finalized, per design. */
  admissions: number;
}

interface Design {
  id: string;
  label: string;
  /** Migrated only up to this file (the design before); undefined: as it is now. */
  through?: string;
}

const DESIGNS: Design[] = [
  { id: "before", label: "before (open-row index on status)", through: "20261123010000" },
  { id: "now", label: "now (heap-only outcome)" },
];

const MODEL = "bench-finalize";
const HUGE = 2_000_000_000;

interface Figures {
  design: string;
  label: string;
  finalized: number;
  updates: number;
  hotUpdates: number;
  walBytes: number;
  walBytesPerFinalize: number;
}

export async function runFinalizeWal(bench: BenchServer, cfg: FinalizeWalConfig, log: (s: string) => void): Promise<PartResult> {
  const figures: Figures[] = [];
  for (const design of DESIGNS) {
    const db = await bench.fresh(`finalize_${design.id}`, { through: design.through });
    const client = connect(db.url, { max: 1 });
    try {
      await setModel(db.sql, MODEL, { rpm: HUGE, tpm: HUGE, rpd: HUGE });
      await setKeys(db.sql, [{ alias: "fin", project: "proj-fin", models: [MODEL] }]);
      const ids: string[] = [];
      for (let i = 0; i < cfg.admissions; i++) {
        const [{ r }] = await client<{ r: { ok: boolean; reservation_id: string } }[]>`
          select public.google_ai_reserve(p_model => ${MODEL}, p_estimated_tokens => 10, p_caller => 'bench',
            p_request_id => ${`fin-${i}`}) as r`;
        if (!r.ok) throw new Error(`reservation ${i} refused on ${design.id}`);
        ids.push(r.reservation_id);
      }
      const before = await attemptUpdates(client);
      const lsn = await walLsn(client);
      for (const id of ids) {
        await client`select public.google_ai_finalize(p_reservation_id => ${id}::uuid, p_outcome => 'succeeded',
          p_input_tokens => 8, p_output_tokens => 4, p_http_status => 200, p_latency_ms => 5) as r`;
      }
      const walBytes = await walBytesSince(client, lsn);
      const after = await flushedUpdates(client, before.updates + ids.length);
      const [{ n }] = await client<{ n: string }[]>`
        select count(*)::text as n from public.google_ai_attempts where model = ${MODEL} and status = 'succeeded'`;
      const f: Figures = {
        design: design.id,
        label: design.label,
        finalized: Number(n),
        updates: after.updates - before.updates,
        hotUpdates: after.hot - before.hot,
        walBytes,
        walBytesPerFinalize: walBytes / ids.length,
      };
      figures.push(f);
      log(`   ${design.label}: ${fmt(f.walBytesPerFinalize, 0)} B of WAL per finalize, ${f.hotUpdates}/${f.updates} HOT`);
    } finally {
      await client.end({ timeout: 5 });
      await db.drop();
    }
  }

  const now = figures.find((f) => f.design === "now")!;
  const old = figures.find((f) => f.design === "before")!;
  const ratio = now.walBytesPerFinalize / old.walBytesPerFinalize;
  const markdown = [
    `${cfg.admissions} admissions reserved, then finalized one transaction each, on two fresh databases of the same server: one ` +
    `migrated as it is now, one only up to \`${DESIGNS[0]!.through}\` (before the outcome became a heap-only update). ` +
    `Counted from PostgreSQL: WAL between the first and the last finalize (the outcome also writes \`token_usage\`, the ` +
    `window's admission row and the counter row, the same in both), and the attempt rows' updates and HOT updates ` +
    `(\`pg_stat_user_tables\`).`,
    "",
    table(
      ["design", "finalized", "attempt-row updates", "of them HOT", "WAL per finalize"],
      figures.map((f) => [f.label, f.finalized, f.updates, `${f.hotUpdates} (${pct(f.hotUpdates / Math.max(1, f.updates))})`,
        `${fmt(f.walBytesPerFinalize, 0)} B`]),
      ["l", "r", "r", "r", "r"],
    ),
    "",
    `WAL per finalize now / before: ${fmt(ratio, 2)}.`,
  ].join("\n");

  return {
    id: "finalize-wal",
    title: "Finalize: a heap-only update, against the design before it",
    data: { config: cfg, designs: DESIGNS, figures },
    markdown,
    headline: [{
      figure: "finalize: WAL per call, now vs before (HOT share now)",
      value: `${fmt(now.walBytesPerFinalize, 0)} B vs ${fmt(old.walBytesPerFinalize, 0)} B (${pct(now.hotUpdates / Math.max(1, now.updates))} HOT)`,
    }],
    checks: [
      {
        name: "every admission is finalized exactly once in both designs",
        ok: figures.every((f) => f.finalized === cfg.admissions && f.updates === cfg.admissions),
        detail: figures.map((f) => `${f.design}: ${f.finalized} finalized, ${f.updates} row updates`).join("; "),
      },
      {
        name: "finalize's attempt-row update is heap-only now (at least 95% HOT) and writes less WAL than before",
        ok: now.hotUpdates >= 0.95 * now.updates && ratio < 1,
        detail: `${now.hotUpdates}/${now.updates} HOT; WAL ${fmt(now.walBytesPerFinalize, 0)} B vs ${fmt(old.walBytesPerFinalize, 0)} B`,
      },
    ],
  };
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
