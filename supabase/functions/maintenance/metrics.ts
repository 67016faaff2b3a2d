// GET /functions/v1/maintenance/metrics: the gateway's metrics in Prometheus' text format, for a
// Prometheus (or Grafana Agent) scraping the project. Guarded as Supabase guards its own metrics
// endpoint: HTTP Basic with the user `service_role` and the service key as password, or the service
// key as a bearer/apikey; anything else is a 401 JSON answer before the database is touched (at most
// a few SHA-256 digests: an unauthenticated scraper costs next to nothing).
// The numbers come from the database in one call (public.google_ai_metrics(): its migration says how
// counters stay monotonic across housekeeping's trims and restarts), because workers are many and
// short-lived: none of them could keep a counter.
import { authenticate, type ServiceKeys } from "../_shared/auth.ts";
import { GatewayError } from "../_shared/errors.ts";

/** Prometheus' text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The user name of HTTP Basic, as Supabase's metrics endpoint has it. */
export const METRICS_BASIC_USER = "service_role";

/** True for the metrics route of this function (`…/maintenance/metrics`, trailing slash allowed). */
export function isMetricsPath(url: string): boolean {
  return /\/metrics\/?$/.test(new URL(url).pathname);
}

const CHALLENGE = { "www-authenticate": `Basic realm="eve-gateway metrics", charset="UTF-8"` };

/** Lets the service key through, as Basic or as a bearer; throws a 401 for anyone else. */
export async function checkMetricsCaller(headers: Headers, keys: ServiceKeys): Promise<void> {
  const authorization = headers.get("authorization") ?? "";
  const basic = /^\s*basic\s+([A-Za-z0-9+/=]{1,2048})\s*$/i.exec(authorization);
  if (basic !== null) {
    const pair = decodeBase64(basic[1]!);
    const colon = pair?.indexOf(":") ?? -1;
    if (pair !== null && colon > 0 && pair.slice(0, colon) === METRICS_BASIC_USER &&
      await keys.matches(await keys.digest(pair.slice(colon + 1)))) return;
    throw unauthorized("Invalid credential.");
  }
  let caller;
  try {
    caller = await authenticate(headers, keys);
  } catch (error) {
    if (error instanceof GatewayError) throw unauthorized(error.message);
    throw error;
  }
  if (caller.kind !== "service") throw unauthorized("The metrics are for the project's service key only.");
}

function unauthorized(message: string): GatewayError {
  return new GatewayError(
    "unauthorized",
    `${message} Scrape with HTTP Basic (user ${METRICS_BASIC_USER}, the service key as password) or 'Authorization: Bearer <service key>'.`,
    { headers: CHALLENGE },
  );
}

function decodeBase64(text: string): string | null {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}
