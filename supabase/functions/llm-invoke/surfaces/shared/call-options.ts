// The gateway's own options on routes that speak another API's body (Google's, OpenAI's): they come
// as headers, with the same defaults as the native route's body fields.
//   x-eve-mode              WAIT (default) | NO_WAIT
//   x-eve-max-wait-ms       how long a WAIT request may wait for capacity (capped by the budget)
//   x-eve-request-id        the caller's own id: answers of a repeated id are replayed, not re-run
//   x-eve-priority          a lower class than the credential's (interactive | batch)
//   x-eve-fallback-models   models to try in order when the first cannot serve (comma-separated)
//   x-caller                a service caller's name for logs and budgets (auth.ts)
import { GatewayError } from "../../../_shared/errors.ts";
import { MAX_FALLBACK_MODELS, waitFor } from "./request-rules.ts";
import { PRIORITY_CLASSES, type PriorityClass, type InvokeMode, type RequestLimits } from "../../contract.ts";

export interface CallOptions {
  mode: InvokeMode;
  maxWaitMs: number;
  requestId?: string;
  priority?: PriorityClass;
  fallbackModels?: string[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function bad(header: string, message: string): GatewayError {
  return new GatewayError("invalid_request", `${header}: ${message}`, { details: { header } });
}

export function callOptionsFromHeaders(headers: Headers, limits: RequestLimits): CallOptions {
  const rawMode = headers.get("x-eve-mode")?.trim().toUpperCase();
  if (rawMode !== undefined && rawMode !== "WAIT" && rawMode !== "NO_WAIT") {
    throw bad("x-eve-mode", "must be WAIT or NO_WAIT.");
  }
  const mode: InvokeMode = rawMode ?? "WAIT";

  const rawWait = headers.get("x-eve-max-wait-ms")?.trim();
  if (rawWait !== undefined && !/^\d{1,9}$/.test(rawWait)) {
    throw bad("x-eve-max-wait-ms", "must be a whole number of milliseconds.");
  }
  const maxWaitMs = waitFor(mode, rawWait === undefined ? undefined : Number(rawWait), limits);

  const requestId = headers.get("x-eve-request-id")?.trim();
  if (requestId !== undefined && !REQUEST_ID.test(requestId)) {
    throw bad("x-eve-request-id", "must be 1-128 characters of A-Z a-z 0-9 . _ : -");
  }

  const priority = headers.get("x-eve-priority")?.trim().toLowerCase();
  if (priority !== undefined && !(PRIORITY_CLASSES as readonly string[]).includes(priority)) {
    throw bad("x-eve-priority", `must be one of ${PRIORITY_CLASSES.join(", ")}.`);
  }

  const rawFallbacks = headers.get("x-eve-fallback-models");
  let fallbackModels: string[] | undefined;
  if (rawFallbacks !== null) {
    fallbackModels = rawFallbacks.split(",").map((m) => m.trim().replace(/^models\//, "")).filter((m) => m !== "");
    if (fallbackModels.length > MAX_FALLBACK_MODELS || fallbackModels.some((m) => !MODEL_NAME.test(m))) {
      throw bad("x-eve-fallback-models", `at most ${MAX_FALLBACK_MODELS} model ids, comma-separated.`);
    }
  }

  return {
    mode,
    maxWaitMs,
    ...(requestId === undefined ? {} : { requestId }),
    ...(priority === undefined ? {} : { priority: priority as PriorityClass }),
    ...(fallbackModels === undefined ? {} : { fallbackModels }),
  };
}
