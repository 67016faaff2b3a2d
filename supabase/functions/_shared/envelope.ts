// The HTTP envelope every function's handler runs in: request id, method (POST unless a function
// allows another for a path), one JSON log line, and
// the one policy for turning failures into answers. A handler only does its own work and either
// returns an answer or throws:
//   GatewayError           → its code's status and JSON shape (errors.ts), with its headers;
//   database unavailable   → 503 `unavailable` with Retry-After (db.ts: DatabaseUnavailable, or a
//                            driver error that means the server cannot be reached);
//   anything else          → 500 `internal_error`, noted sanitized with the request id.
// An error no retry within two minutes can cure says so, `x-should-retry: false` (errors.ts: retryCannotCure).
// Every error answer is `{...extra, request_id, error: {code, message, details?}}` with `x-request-id`.
// A function that asks for it (`serverTiming`) gets a phase recorder per request (scope.timing) and
// every answer, errors and streams included, carries `Server-Timing` as it stood when the answer began.
import { GatewayError, jsonResponse, retryCannotCure } from "./errors.ts";
import { DatabaseUnavailable, isDatabaseUnreachable, retryAfterSeconds } from "./db.ts";
import { sanitizeError } from "./sanitize.ts";
import { type PhaseTimer, ServerTiming, untimed } from "./server-timing.ts";

/** A successful answer: its JSON body (request_id is added unless `asIs`) and extra headers. */
export interface JsonAnswer {
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  /** The body is another API's shape (Google's, OpenAI's): sent exactly as given. */
  asIs?: boolean;
}

/** A streamed answer (server-sent events): status 200, the envelope's headers, the bytes as they come. */
export interface StreamAnswer {
  stream: ReadableStream<Uint8Array>;
  headers: Record<string, string>;
}

/** A plain-text answer (maintenance's /metrics: Prometheus' text format), status 200. */
export interface TextAnswer {
  text: string;
  contentType: string;
  headers?: Record<string, string>;
}

export type Answer = JsonAnswer | StreamAnswer | TextAnswer;

/** An error in another API's shape, for routes that speak one (see EnvelopeOptions.errorShape). */
export interface ErrorAnswer {
  body: unknown;
  headers?: Record<string, string>;
  /** Where the API spoken answers another status for the same error (OpenAI's 404 for a model it does not know). */
  status?: number;
}

/** What the envelope gives a handler for one request. */
export interface RequestScope {
  /** This request's id: generated, or the caller's own once `useRequestId` was called. */
  readonly requestId: string;
  /** The caller named the request (llm-invoke's `request_id`): answers and logs use that name. */
  useRequestId(id: string): void;
  /** Adds fields to this request's JSON log line (never a credential, a prompt or an answer). */
  annotate(fields: Record<string, unknown>): void;
  /** A diagnostic line about this request, already free of secrets. */
  note(text: string): void;
  /**
   * Headers for this request's answer, whatever it turns out to be, success or error (e.g. the quota
   * the request saw). Set again, a header is replaced. The answer's own headers come on top.
   */
  setHeaders(headers: Record<string, string>): void;
  /** Where the handler records its phases (server-timing.ts); records nothing unless `serverTiming`. */
  readonly timing: PhaseTimer;
}

export interface EnvelopeOptions {
  /** The function's name: the `function` field of its log lines. */
  name: string;
  /** Headers of every answer, e.g. `cache-control: no-store` where answers carry credentials. */
  headers?: Record<string, string>;
  /**
   * The methods a request may use (default POST only): anything else is 405 with `Allow`, before the
   * handler runs. Per request, so a function may allow GET on one path (llm-invoke's quota route).
   */
  methods?: (req: Request) => readonly string[];
  newRequestId?: () => string;
  now?: () => number;
  /** Where the one JSON line per request goes (default: console.log). */
  logLine?: (line: string) => void;
  /** Where diagnostics go, with the request id (default: console.error). */
  note?: (text: string, requestId: string) => void;
  /**
   * How errors of a request are shaped, for routes that speak another API (Google's, OpenAI's); the
   * status and the code's headers stay the gateway's. Default: the gateway's own shape.
   */
  errorShape?: (req: Request) => ((error: GatewayError, requestId: string) => ErrorAnswer) | undefined;
  /**
   * Every answer carries `Server-Timing` (the phases the handler recorded in scope.timing, and the
   * total since the request arrived). `timingNow` is its clock (default performance.now()).
   */
  serverTiming?: boolean;
  timingNow?: () => number;
}

export type ScopedHandler = (req: Request, scope: RequestScope) => Promise<Answer>;

/** The one request line of every function, for Supabase's log explorer. */
export interface RequestLine {
  function: string;
  request_id: string;
  method: string;
  /** "ok", or the error code of the answer. */
  outcome: string;
  status: number;
  /** The limit a 429 names (rpm, tpm, token_budget, mint_rate, ...). */
  limit?: string;
  latency_ms: number;
  [field: string]: unknown;
}

export function envelope(options: EnvelopeOptions, handle: ScopedHandler): (req: Request) => Promise<Response> {
  const newRequestId = options.newRequestId ?? (() => crypto.randomUUID());
  const now = options.now ?? (() => Date.now());
  const logLine = options.logLine ?? ((line: string) => console.log(line));
  const note = options.note ?? ((text: string, id: string) => console.error(`[${options.name} ${id}] ${text}`));

  return async (req: Request): Promise<Response> => {
    const started = now();
    const timing = options.serverTiming === true ? new ServerTiming(options.timingNow) : null;
    // Read when an answer is built: what was spent before its headers left.
    const timingHeader = (): Record<string, string> => timing === null ? {} : { "server-timing": timing.header() };
    let requestId = newRequestId();
    const fields: Record<string, unknown> = {};
    const scopedHeaders: Record<string, string> = {};
    const scope: RequestScope = {
      get requestId() {
        return requestId;
      },
      useRequestId: (id) => {
        requestId = id;
      },
      annotate: (more) => Object.assign(fields, more),
      note: (text) => note(text, requestId),
      setHeaders: (more) => Object.assign(scopedHeaders, more),
      timing: timing ?? untimed,
    };

    let response: Response;
    let outcome = "ok";
    let limit: string | undefined;
    try {
      const methods = options.methods?.(req) ?? ["POST"];
      if (!methods.includes(req.method)) {
        throw new GatewayError(
          "method_not_allowed",
          methods.length === 1 && methods[0] === "POST"
            ? "Use POST with a JSON body."
            : `Use ${methods.join(" or ")} here.`,
          { headers: { allow: methods.join(", ") } },
        );
      }
      const answer = await handle(req, scope);
      const headers = {
        ...options.headers,
        ...scopedHeaders,
        ...answer.headers,
        ...timingHeader(),
        "x-request-id": requestId,
      };
      if ("stream" in answer) {
        // A stream's line is written when it ends, with how it ended (annotations made meanwhile
        // included): a stream that begins well may still end in an error event.
        fields.stream = true;
        fields.first_byte_ms = now() - started;
        const body = onEnd(answer.stream, (end) => {
          fields.stream_end = end;
          writeLine(200, "ok", undefined);
        });
        return new Response(body, { status: 200, headers });
      }
      if ("text" in answer) {
        response = new Response(answer.text, { status: 200, headers: { ...headers, "content-type": answer.contentType } });
        writeLine(200, "ok", undefined);
        return response;
      }
      response = jsonResponse(
        answer.asIs === true ? answer.body : { ...answer.body, request_id: requestId },
        200,
        headers,
      );
    } catch (thrown) {
      const error = asGatewayError(thrown, scope);
      outcome = error.code;
      if (typeof error.extra?.limit === "string") limit = error.extra.limit;
      // A provider's 429's cause, or the cause of the cooldown that refused (minute, day, limit_zero, ...).
      if (typeof error.extra?.cause === "string") fields.quota_cause = error.extra.cause;
      const shaped = options.errorShape?.(req)?.(error, requestId);
      response = jsonResponse(
        shaped === undefined ? { ...error.extra, request_id: requestId, error: error.toBody().error } : shaped.body,
        shaped?.status ?? error.status,
        {
          ...options.headers,
          ...scopedHeaders,
          ...error.headers,
          ...shaped?.headers,
          // Said on every route alike: a client's own retries cannot cure it (errors.ts).
          ...(retryCannotCure(error) ? { "x-should-retry": "false" } : {}),
          ...timingHeader(),
          "x-request-id": requestId,
        },
      );
    }

    writeLine(response.status, outcome, limit);
    return response;

    function writeLine(status: number, outcome: string, limit: string | undefined): void {
      const line: RequestLine = {
        function: options.name,
        request_id: requestId,
        method: req.method,
        ...fields,
        outcome,
        status,
        ...(limit === undefined ? {} : { limit }),
        latency_ms: now() - started,
      };
      logLine(JSON.stringify(line));
    }
  };
}

/** The same bytes; `end` is told once how the stream ended: read to its end, cancelled, or failed. */
function onEnd(stream: ReadableStream<Uint8Array>, end: (how: "done" | "cancelled" | "failed") => void) {
  const reader = stream.getReader();
  let told = false;
  const tell = (how: "done" | "cancelled" | "failed") => {
    if (told) return;
    told = true;
    end(how);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          tell("done");
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        controller.error(error);
        tell("failed");
      }
    },
    async cancel(reason) {
      await reader.cancel(reason);
      tell("cancelled");
    },
  });
}

/** The one policy for failures that are not already an answer. */
function asGatewayError(thrown: unknown, scope: RequestScope): GatewayError {
  if (thrown instanceof GatewayError) return thrown;
  if (isDatabaseUnreachable(thrown)) {
    scope.note(`database unavailable: ${sanitizeError(thrown, { maxLength: 300 })}`);
    return databaseUnavailable(thrown instanceof DatabaseUnavailable ? thrown : null);
  }
  scope.note(`unexpected error: ${sanitizeError(thrown, { maxLength: 500 })}`);
  return new GatewayError("internal_error", "Unexpected error; it has been logged with this request_id.");
}

/** The 503 of a database outage: Retry-After is the database's own estimate when known, else 5 s. */
export function databaseUnavailable(cause: DatabaseUnavailable | null): GatewayError {
  return new GatewayError("unavailable", "The gateway's database is not reachable now; retry shortly.", {
    headers: { "Retry-After": cause === null ? "5" : retryAfterSeconds(cause) },
  });
}
