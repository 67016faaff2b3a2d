// One JSON line per request, the same shape in every function, for Supabase's log explorer. This
// wrapper gives it to issue-kaggle-token and maintenance from the outside (their answers already carry
// x-request-id and, when refused, a JSON error with its code); llm-invoke's handler writes a richer
// line itself (caller, model, attempts, tokens). Never a credential, a prompt or an answer.

export interface RequestLine {
  function: string;
  request_id: string | null;
  method: string;
  /** "ok", or the error code of the answer. */
  outcome: string;
  status: number;
  latency_ms: number;
}

export interface RequestLogOptions {
  log?: (line: string) => void;
  now?: () => number;
}

export function withRequestLog(
  name: string,
  handler: (req: Request) => Promise<Response>,
  options: RequestLogOptions = {},
): (req: Request) => Promise<Response> {
  const log = options.log ?? ((line: string) => console.log(line));
  const now = options.now ?? (() => Date.now());
  return async (req) => {
    const started = now();
    const response = await handler(req);
    const line: RequestLine = {
      function: name,
      request_id: response.headers.get("x-request-id"),
      method: req.method,
      outcome: response.status < 400 ? "ok" : await errorCode(response),
      status: response.status,
      latency_ms: now() - started,
    };
    log(JSON.stringify(line));
    return response;
  };
}

/** The `error.code` of a JSON error answer (these are small), or "error" if it has none. */
async function errorCode(response: Response): Promise<string> {
  try {
    const body = await response.clone().json() as { error?: { code?: unknown } };
    return typeof body.error?.code === "string" ? body.error.code : "error";
  } catch {
    return "error";
  }
}
