// maintenance: housekeeping on demand, key health against each provider's model list, the model catalogue.
// Only the project's service/secret key may call it (SUPABASE_SERVICE_ROLE_KEY or a value of
// SUPABASE_SECRET_KEYS, as `Authorization: Bearer` or `apikey`); scoped tokens and anything else: 401.
//
// Request:  POST, optional JSON body {housekeeping?: boolean = true, keys?: boolean = true,
//           dry_run?: boolean = false, source?: string}. An empty body runs everything; a dry run
//           runs everything inside one transaction that is rolled back (store.dryRun).
// Answer:   200 the run summary (run.ts RunSummary) with request_id and the gateway's version (version.ts):
//           housekeeping result, every active key's check (ok / invalid -> disabled / missing_secret /
//           error), the catalogue status of each model row against its provider's keys (listed / unlisted /
//           unknown), the life cycle, and `problems` in words. `status` is "failed" when housekeeping or the
//           catalogue failed; the run is logged either way.
// Errors:   the shared envelope's shape and codes (_shared/errors.ts has the one table): 401 for
//           anything but the service key, 400/413/415 for a bad body, 503 when the database cannot
//           answer, 500 for a bug (logged, sanitized, with the request_id).
// GET /metrics (metrics.ts): Prometheus' text format from the database, for the service key only.
// Never a key in an answer or a log line: keys are named by alias and env var name only.
//
// No Deno globals here: index.ts wires it, tests build it with fakes or real dependencies.
import { z } from "zod";
import { authenticate, type ServiceKeys } from "../_shared/auth.ts";
import { GatewayError } from "../_shared/errors.ts";
import { envelope } from "../_shared/envelope.ts";
import { readOptionalJsonObject } from "../_shared/http.ts";
import { sanitizeError } from "../_shared/sanitize.ts";
import { invalidRequest } from "../_shared/validation.ts";
import { checkMetricsCaller, isMetricsPath, METRICS_CONTENT_TYPE } from "./metrics.ts";
import type { MetricsSource } from "./metrics-store.ts";
import { type RunDeps, runMaintenance } from "./run.ts";
import type { MaintenanceStore } from "./store.ts";
import { GATEWAY_VERSION } from "./version.ts";

export const MAX_BODY_BYTES = 16 * 1024;

export interface MaintenanceHandlerDeps {
  serviceKeys: ServiceKeys;
  /** The database, or a GatewayError("unavailable") when none is configured. */
  store: () => MaintenanceStore;
  /** Each usable provider row's model list and key reader (run.ts ProviderAccess), and the rows left out. */
  providers: () => Promise<Pick<RunDeps, "providers" | "providerProblems">>;
  /** The metrics route's database (GET /metrics); without it the route answers 503. */
  metrics?: () => MetricsSource;
  listTimeoutMs?: number;
  newRequestId?: () => string;
  /** Diagnostics: the run's outcome, database and unexpected errors (sanitized). */
  log?: (line: string) => void;
  /** The one JSON line per request (default: console.log). */
  logRequest?: (line: string) => void;
}

export const maintenanceRequestSchema = z.strictObject({
  housekeeping: z.boolean().optional(),
  keys: z.boolean().optional(),
  dry_run: z.boolean().optional(),
  source: z.string().max(64).regex(/^[A-Za-z0-9._:@-]+$/, "letters, digits and ._:@- only").optional(),
});

export function createMaintenanceHandler(deps: MaintenanceHandlerDeps): (req: Request) => Promise<Response> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const note = (text: string, requestId: string) => log(`[maintenance ${requestId}] ${text}`);

  return envelope({
    name: "maintenance",
    headers: { "cache-control": "no-store" },
    newRequestId: deps.newRequestId,
    logLine: deps.logRequest,
    note,
    methods: (req) => isMetricsPath(req.url) ? ["GET"] : ["POST"],
  }, async (req, scope) => {
    if (isMetricsPath(req.url)) {
      await checkMetricsCaller(req.headers, deps.serviceKeys);
      if (deps.metrics === undefined) throw new GatewayError("unavailable", "No database for the metrics.");
      return { text: await deps.metrics().text(), contentType: METRICS_CONTENT_TYPE };
    }
    const caller = await authenticate(req.headers, deps.serviceKeys);
    if (caller.kind !== "service") {
      throw new GatewayError("unauthorized", "This function accepts the project's service key only.");
    }
    const input = await readOptions(req);
    const store = deps.store();
    const summary = await runMaintenance(
      { store, ...await deps.providers(), listTimeoutMs: deps.listTimeoutMs },
      {
        housekeeping: input.housekeeping ?? true,
        keys: input.keys ?? true,
        dryRun: input.dry_run ?? false,
        caller: input.source ?? caller.label,
      },
    );
    scope.annotate({ run_id: summary.run_id, run_status: summary.status });
    scope.note(
      `run ${summary.run_id} ${summary.status} in ${summary.duration_ms} ms` +
        (summary.problems.length > 0 ? `: ${sanitizeError(summary.problems.join("; "), { maxLength: 500 })}` : ""),
    );
    return { body: { ...summary, version: GATEWAY_VERSION } };
  });
}

async function readOptions(req: Request): Promise<z.infer<typeof maintenanceRequestSchema>> {
  const body = await readOptionalJsonObject(req, MAX_BODY_BYTES);
  const parsed = maintenanceRequestSchema.safeParse(body);
  if (!parsed.success) {
    throw invalidRequest(parsed.error, "Allowed fields: housekeeping, keys, dry_run (booleans), source (a label).");
  }
  return parsed.data;
}
