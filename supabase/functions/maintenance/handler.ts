// maintenance: housekeeping on demand, key health against Google's models.list, the model catalogue.
// Only the project's service/secret key may call it (SUPABASE_SERVICE_ROLE_KEY or a value of
// SUPABASE_SECRET_KEYS, as `Authorization: Bearer` or `apikey`); scoped tokens and anything else: 401.
//
// Request:  POST, optional JSON body {housekeeping?: boolean = true, keys?: boolean = true,
//           dry_run?: boolean = false, source?: string}. An empty body runs everything; a dry run
//           runs everything inside one transaction that is rolled back (store.dryRun).
// Answer:   200 the run summary (run.ts RunSummary) with request_id: housekeeping result, every active
//           key's check (ok / invalid -> disabled / missing_secret / error), the catalogue status of
//           each configured model (listed / unlisted / unknown), and `problems` in words. `status` is
//           "failed" when housekeeping or the catalogue failed; the run is logged either way.
//   | code                   | HTTP | when                                              |
//   |------------------------|------|---------------------------------------------------|
//   | unauthorized           | 401  | missing, unknown or non-service credential        |
//   | method_not_allowed     | 405  | not POST                                          |
//   | unsupported_media_type | 415  | a body that is not application/json               |
//   | body_too_large         | 413  | over 16 KiB                                       |
//   | invalid_json           | 400  | the body is not a JSON object                     |
//   | invalid_request        | 400  | unknown field or wrong type                       |
//   | unavailable            | 503  | no database configured, or it cannot answer       |
//   | internal_error         | 500  | a bug; logged (sanitized) with the request_id     |
// Never a key in an answer or a log line: keys are named by alias and env var name only.
//
// No Deno globals here: index.ts wires it, tests build it with fakes or real dependencies.
import { z } from "zod";
import { authenticate } from "../_shared/auth.ts";
import { GatewayError, jsonResponse } from "../_shared/errors.ts";
import { readOptionalJsonObject } from "../_shared/http.ts";
import { sanitizeError } from "../_shared/sanitize.ts";
import { invalidRequest } from "../_shared/validation.ts";
import { DatabaseUnavailable, retryAfterSeconds } from "../_shared/db.ts";
import type { ModelLister } from "./google-models.ts";
import { runMaintenance } from "./run.ts";
import type { MaintenanceStore } from "./store.ts";

export const MAX_BODY_BYTES = 16 * 1024;

export interface MaintenanceHandlerDeps {
  serviceKeys: readonly string[];
  /** The database, or a GatewayError("unavailable") when none is configured. */
  store: () => MaintenanceStore;
  lister: ModelLister;
  secret: (envVarName: string) => string | undefined;
  listTimeoutMs?: number;
  newRequestId?: () => string;
  log?: (line: string) => void;
}

export const maintenanceRequestSchema = z.strictObject({
  housekeeping: z.boolean().optional(),
  keys: z.boolean().optional(),
  dry_run: z.boolean().optional(),
  source: z.string().max(64).regex(/^[A-Za-z0-9._:@-]+$/, "letters, digits and ._:@- only").optional(),
});

// postgres.js / Node / Deno errors that mean "the database is not reachable now".
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "08006", // connection_failure
  "08001", // sqlclient_unable_to_establish_sqlconnection
  "3D000", // invalid_catalog_name (wrong database)
  "28P01", // invalid_password
]);

export function createMaintenanceHandler(deps: MaintenanceHandlerDeps): (req: Request) => Promise<Response> {
  const newRequestId = deps.newRequestId ?? (() => crypto.randomUUID());
  const log = deps.log ?? ((line: string) => console.log(line));

  return async (req: Request): Promise<Response> => {
    const requestId = newRequestId();
    const note = (line: string) => log(`[maintenance ${requestId}] ${line}`);
    try {
      if (req.method !== "POST") {
        throw new GatewayError("method_not_allowed", "Use POST.", { headers: { allow: "POST" } });
      }
      const caller = await authenticate(req.headers, deps.serviceKeys);
      if (caller.kind !== "service") {
        throw new GatewayError("unauthorized", "This function accepts the project's service key only.");
      }
      const input = await readOptions(req);
      const store = deps.store();
      const summary = await runMaintenance(
        { store, lister: deps.lister, secret: deps.secret, listTimeoutMs: deps.listTimeoutMs },
        {
          housekeeping: input.housekeeping ?? true,
          keys: input.keys ?? true,
          dryRun: input.dry_run ?? false,
          caller: input.source ?? caller.label,
        },
      );
      note(
        `run ${summary.run_id} ${summary.status} in ${summary.duration_ms} ms` +
          (summary.problems.length > 0 ? `: ${sanitizeError(summary.problems.join("; "), { maxLength: 500 })}` : ""),
      );
      return jsonResponse({ ...summary, request_id: requestId }, 200, {
        "x-request-id": requestId,
        "cache-control": "no-store",
      });
    } catch (error) {
      let e: GatewayError;
      if (error instanceof GatewayError) {
        e = error;
      } else if (error instanceof DatabaseUnavailable || isUnavailable(error)) {
        note(`database unavailable: ${sanitizeError(error, { maxLength: 300 })}`);
        e = new GatewayError("unavailable", "The maintenance function cannot reach its database; retry shortly.", {
          headers: { "Retry-After": error instanceof DatabaseUnavailable ? retryAfterSeconds(error) : "30" },
        });
      } else {
        note(`unexpected error: ${sanitizeError(error, { maxLength: 500 })}`);
        e = new GatewayError("internal_error", "Unexpected error; it has been logged with this request_id.");
      }
      return jsonResponse({ ...e.toBody(), request_id: requestId }, e.status, {
        ...e.headers,
        "x-request-id": requestId,
        "cache-control": "no-store",
      });
    }
  };
}

async function readOptions(req: Request): Promise<z.infer<typeof maintenanceRequestSchema>> {
  const body = await readOptionalJsonObject(req, MAX_BODY_BYTES);
  const parsed = maintenanceRequestSchema.safeParse(body);
  if (!parsed.success) {
    throw invalidRequest(parsed.error, "Allowed fields: housekeeping, keys, dry_run (booleans), source (a label).");
  }
  return parsed.data;
}

function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNAVAILABLE_CODES.has(code);
}
