// Where the metrics route reads from: one RPC per scrape (the functions' role may call nothing else),
// the work in SQL (supabase/schemas/91_metrics.sql).
import type { Database } from "../_shared/db.ts";

export interface MetricsSource {
  /** One scrape's text, in Prometheus' text format. */
  text(): Promise<string>;
}

/** One round trip: the fold and the text, in the database (supabase/schemas/91_metrics.sql). */
export function createPgMetricsSource(db: Pick<Database, "run">): MetricsSource {
  return {
    text: () =>
      db.run("metrics", async (sql) => {
        const [row] = await sql<{ m: string }[]>`select public.google_ai_metrics() as m`;
        return row!.m;
      }),
  };
}
