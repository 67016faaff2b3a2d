// Where the metrics route reads from: one RPC per scrape (the functions' role may call nothing else),
// the counting in SQL (supabase/schemas/91_metrics.sql), the text here (metrics-text.ts).
import type { Database } from "../_shared/db.ts";
import { type MetricSample, metricsText } from "./metrics-text.ts";
import { GATEWAY_VERSION } from "./version.ts";

/** The version as a sample (eve_gateway_build_info), beside the database's. */
export const BUILD_INFO: MetricSample = {
  family: "eve_gateway_build_info",
  sample: "eve_gateway_build_info",
  labels: `version="${GATEWAY_VERSION}"`,
  value: "1",
};

export interface MetricsSource {
  /** One scrape's text, in Prometheus' text format. */
  text(): Promise<string>;
}

/** One round trip: the fold, then every sample read in one statement (one snapshot). */
export function createPgMetricsSource(db: Pick<Database, "run">): MetricsSource {
  return {
    text: () =>
      db.run("metrics", async (sql) => {
        const rows = await sql<MetricSample[]>`
          select family, sample, labels, value::text as value from public.google_ai_metrics()`;
        return metricsText([...rows, BUILD_INFO]);
      }),
  };
}
