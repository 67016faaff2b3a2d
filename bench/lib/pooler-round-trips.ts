// Network round trips of llm-invoke as on Supabase, direct and through a transaction-mode pooler
// (PgBouncer from Debian standing in for Supavisor, port 6543 on Supabase): a counting proxy sits
// between the function and PostgreSQL (direct, SUPABASE_DB_URL, prepared statements) or PgBouncer
// (GATEWAY_DB_URL, no prepared statements), and counts the client's flights per statement
// (shared/db/pgbouncer.ts). Over sequential requests after a warm-up, with the service key and a
// scoped token: the reservation's flights are the caller's path, finalize's run after the answer
// (waitUntil). The sequential latency beside it shows what a second round trip would cost.
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { hasPgBouncer, PREPARE, startFlightCounter, startPgBouncer } from "../../shared/db/pgbouncer.ts";
import { sleep } from "./clock.ts";
import { serveLlmInvokeAsOnSupabase } from "./llm-invoke.ts";
import { median, round } from "./stats.ts";
import { Teardown } from "./teardown.ts";

export type DbPath = "direct" | "pooler";

export interface PathRoundTrips {
  path: DbPath;
  credential: "service key" | "scoped token";
  requests: number;
  succeeded: number;
  /** Flights of the reservation per successful request: the caller's path. */
  onPathPerRequest: number;
  /**
   * Flights of finalize per successful request (after the answer, in waitUntil): google_ai_finalize, or one
   * google_ai_finalize_calls for the successes that met in the worker (not with sequential requests).
   */
  afterAnswerPerRequest: number;
  /** Any other flights in the window, by statement (a token check's background refresh, a connection preparing a statement). */
  other: Record<string, number>;
  /** Median of the sequential requests' latency, ms (client side). */
  latencyP50Ms: number;
}

export type PoolerRoundTrips = Awaited<ReturnType<typeof poolerRoundTrips>>;

type Call = (url: string, id: string, credential?: string) => Promise<{ status: number; body: string }>;

/** A statement by the gateway function it calls; preparing a named statement is once per connection. */
const nameOf = (text: string) =>
  (text.startsWith(PREPARE) ? "prepare (once per connection and statement, direct only): " : "") +
  (/public\.(google_ai_\w+)\s*\(/.exec(text)?.[1] ?? text.slice(0, 40));

export async function poolerRoundTrips(opts: {
  dbUrl: string;
  simUrl: string;
  requests: number;
  token: string;
  call: Call;
}) {
  const gatewayUrl = await gatewayRoleUrl(opts.dbUrl);
  const paths: DbPath[] = hasPgBouncer() ? ["direct", "pooler"] : ["direct"];
  const rows: PathRoundTrips[] = [];
  for (const path of paths) {
    const teardown = new Teardown();
    try {
      const bouncer = path === "pooler" ? teardown.closes(await startPgBouncer(gatewayUrl)) : undefined;
      const counter = teardown.closes(await startFlightCounter(bouncer?.url ?? gatewayUrl));
      const env = { [path === "pooler" ? "GATEWAY_DB_URL" : "SUPABASE_DB_URL"]: counter.url };
      const fn = teardown.closes(await serveLlmInvokeAsOnSupabase({ dbUrl: opts.dbUrl, simUrl: opts.simUrl, env }));
      const url = `${fn.url}/`;
      for (const [credential, secret] of [["service key", undefined], ["scoped token", opts.token]] as const) {
        // Warm-up: the worker's connections, capability look-up and token check are made once.
        for (let i = 0; i < 3; i++) await opts.call(url, `pooler-warm-${path}`, secret);
        await sleep(300);
        counter.resetFlights();
        const ms: number[] = [];
        let succeeded = 0;
        for (let i = 0; i < opts.requests; i++) {
          const started = performance.now();
          const r = await opts.call(url, `pooler-${path}`, secret);
          ms.push(performance.now() - started);
          if (r.status === 200) succeeded++;
        }
        await sleep(500); // finalize runs after the answer
        const by: Record<string, number> = {};
        for (const [text, n] of counter.flights.byStatement) by[nameOf(text)] = (by[nameOf(text)] ?? 0) + n;
        const sum = (re: RegExp) => Object.entries(by).filter(([k]) => re.test(k)).reduce((s, [, n]) => s + n, 0);
        const per = (n: number) => round(n / Math.max(1, succeeded), 2);
        rows.push({
          path,
          credential,
          requests: opts.requests,
          succeeded,
          onPathPerRequest: per(sum(/^google_ai_reserve/)),
          afterAnswerPerRequest: per(sum(/^google_ai_finalize/)),
          other: Object.fromEntries(Object.entries(by).filter(([k]) => !/^google_ai_(reserve|finalize)/.test(k))),
          latencyP50Ms: round(median(ms), 2),
        });
      }
    } finally {
      await teardown.run();
    }
  }
  return {
    /** Null when PgBouncer is not installed (then only direct is counted). */
    pgbouncer: paths.includes("pooler") ? "PgBouncer (Debian), pool_mode = transaction" : null,
    rows,
    method:
      "a TCP proxy between llm-invoke as on Supabase and PostgreSQL (direct: SUPABASE_DB_URL, prepared statements) or " +
      "PgBouncer in transaction mode (GATEWAY_DB_URL: no prepared statements, one text statement each) counts the client's " +
      "flights (what it sends before it next hears back) per statement, over sequential requests after a warm-up",
  };
}

/** Markdown rows: flights per request and sequential latency, direct beside the pooler. */
export function poolerRoundTripsMarkdown(rt: PoolerRoundTrips): string {
  const lines = [
    "",
    "### Round trips direct and through a transaction-mode pooler",
    "",
    `Counted at a proxy (${rt.method}). ${rt.pgbouncer ?? "PgBouncer is not installed here: direct only."}`,
    "",
    "| path | credential | successes | round trips on the caller's path (reserve) | after the answer (finalize) | other | sequential p50 |",
    "|---|---|---|---|---|---|---|",
    ...rt.rows.map((r) =>
      `| ${r.path} | ${r.credential} | ${r.succeeded}/${r.requests} | ${r.onPathPerRequest} | ${r.afterAnswerPerRequest} | ` +
      `${Object.entries(r.other).map(([k, n]) => `${k} ${n}`).join(", ") || "—"} | ${r.latencyP50Ms} ms |`
    ),
    "",
  ];
  return lines.join("\n");
}
