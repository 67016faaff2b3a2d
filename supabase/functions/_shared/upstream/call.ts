// A call to a provider's REST over `fetch`, as every provider's client and model list make it
// (../providers/<dialect>/): a deadline that also follows the caller's signal, the answer read whole
// or opened as a stream, and whatever fails classified with its message sanitized of the key. What
// differs between providers is their WireRules: who answers, and how its HTTP errors read. A failure no
// provider answered (a timeout, the network) is classified alike for every provider, in the port's
// one error shape (port.ts).
import { type ModelCall, type ModelOutcome, StreamCut, type UpstreamError, upstreamFailure } from "./port.ts";
import { sanitizeError } from "../sanitize.ts";
import { sseData } from "./sse.ts";
import { postOnce } from "./post.ts";

/** What a generation's call (client.ts GenerateCall) tells this module: the key, the deadlines, the model. */
interface GenerateCall {
  apiKey: string;
  request: { model: string };
  timeoutMs: number;
  streamTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * What differs between providers in the calls every client makes: who answers (the provider row's
 * display name), and how its dialect's HTTP errors read. Every failure a call returns is said to be
 * `upstream`'s.
 */
export interface WireRules {
  /** Who answers, in messages (the provider row's display name). */
  upstream: string;
  /** `model`: the model called, if any (only a 404 naming it is model_withdrawn). */
  classifyHttp(
    status: number,
    body: unknown,
    headers: Headers,
    options: { secrets: string[]; model?: string },
  ): UpstreamError;
}

/** A failure, said to be the provider's (whatever classified it). */
export function failureOf(rules: WireRules, error: UpstreamError): UpstreamError {
  return { ...error, upstream: rules.upstream };
}

/** A failed HTTP answer, classified by the provider's rules and said to be its. */
export function classifiedHttp(
  rules: WireRules,
  status: number,
  body: unknown,
  headers: Headers,
  options: { secrets: string[]; model?: string },
): UpstreamError {
  return failureOf(rules, rules.classifyHttp(status, body, headers, options));
}

/** An outcome with the call's time. */
export type Timed<T> = (T & { latencyMs: number }) | { ok: false; error: UpstreamError; latencyMs: number };

/**
 * One call with its deadline (the call's timeoutMs, following the caller's signal): `work` makes it
 * with the guard's signal; whatever it throws is classified by the dialect; the outcome carries the
 * call's time. Every whole-answer call of every provider is one.
 */
export async function timedCall<T extends { ok: true }>(
  call: GenerateCall | ModelCall,
  rules: WireRules,
  work: (guard: CallGuard) => Promise<T | { ok: false; error: UpstreamError }>,
): Promise<Timed<T>> {
  const started = Date.now();
  const guard = callGuard(call.timeoutMs, call.signal);
  try {
    const outcome = await work(guard);
    return { ...outcome, latencyMs: Date.now() - started } as Timed<T>;
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: thrownBy(rules, error, guard, call) };
  } finally {
    guard.done();
  }
}

/**
 * A provider's server-sent events as JSON objects, as they arrive. `done`: the data that ends the
 * stream (OpenAI's `[DONE]`), else its end does; `errorOf`: the dialect's reading of an error event
 * (undefined: not one). Anything that breaks the stream off (an error event, an event that is not a
 * JSON object, the network, the deadline) ends it with a StreamCut; the guard is done when it ends.
 */
export async function* sseEvents(
  body: ReadableStream<Uint8Array>,
  guard: CallGuard,
  call: GenerateCall,
  rules: WireRules,
  read: { done?: string; errorOf: (event: Record<string, unknown>, secrets: string[]) => UpstreamError | undefined },
): AsyncGenerator<Record<string, unknown>, void, undefined> {
  const secrets = [call.apiKey];
  const cut = (message: string) =>
    new StreamCut(failureOf(rules, upstreamFailure("malformed", message, { httpStatus: 200, secrets })));
  try {
    for await (const data of sseData(body)) {
      if (read.done !== undefined && data.trim() === read.done) return;
      let event: unknown;
      try {
        event = JSON.parse(data);
      } catch {
        throw cut(`${rules.upstream} sent a stream event that is not JSON.`);
      }
      if (typeof event !== "object" || event === null || Array.isArray(event)) {
        throw cut(`${rules.upstream} sent a stream event that is not an object.`);
      }
      const error = read.errorOf(event as Record<string, unknown>, secrets);
      if (error !== undefined) throw new StreamCut(failureOf(rules, error));
      yield event as Record<string, unknown>;
    }
  } catch (error) {
    if (error instanceof StreamCut) throw error;
    throw new StreamCut(thrownBy(rules, error, guard, call));
  } finally {
    guard.done();
  }
}

/** Reads a whole answer: its JSON object, or the classified error of a non-2xx status. */
export async function readJsonAnswer(
  response: Response,
  rules: WireRules,
  secrets: string[],
  model?: string,
): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; error: UpstreamError }> {
  const text = await response.text();
  let body: unknown = text;
  let parsed = false;
  try {
    body = JSON.parse(text);
    parsed = true;
  } catch {
    // Not JSON: an error is classified on its status and raw text; a 200 is malformed.
  }
  if (!response.ok) {
    return { ok: false, error: classifiedHttp(rules, response.status, body, response.headers, { secrets, model }) };
  }
  if (!parsed || typeof body !== "object" || body === null || Array.isArray(body)) {
    const who = rules.upstream;
    return {
      ok: false,
      error: failureOf(
        rules,
        upstreamFailure("malformed", `${who} answered 200 with a body that is not a JSON object.`, {
          httpStatus: response.status,
          secrets,
        }),
      ),
    };
  }
  return { ok: true, body: body as Record<string, unknown> };
}

/** Whether a key sees a model: GET `url` with the key's `headers`; ok on 200, else the classified error. */
export function fetchModel(
  url: string,
  headers: Record<string, string>,
  call: ModelCall,
  rules: WireRules,
): Promise<ModelOutcome> {
  return timedCall(call, rules, async (guard) => {
    const read = await readJsonAnswer(
      await fetch(url, { headers, signal: guard.signal }),
      rules,
      [call.apiKey],
      call.model,
    );
    return read.ok ? { ok: true as const } : read;
  });
}

/**
 * Opens a stream: POSTs `body` and resolves when the provider's headers arrive (within the call's
 * timeoutMs), with the guard that bounds the whole stream (streamTimeoutMs); a non-2xx answer, or
 * one without a body, is read whole and classified.
 */
export async function openStream(
  url: string,
  init: { headers: Record<string, string>; body: unknown },
  call: GenerateCall,
  rules: WireRules,
): Promise<
  | { ok: true; response: Response & { body: ReadableStream<Uint8Array> }; guard: CallGuard; latencyMs: number }
  | { ok: false; error: UpstreamError; latencyMs: number }
> {
  const started = Date.now();
  // One deadline for the whole stream; the attempt's own deadline covers the wait for headers.
  const guard = callGuard(Math.max(call.timeoutMs, call.streamTimeoutMs ?? call.timeoutMs), call.signal);
  const first = callGuard(call.timeoutMs, guard.signal);
  let response: Response;
  try {
    response = await postOnce(url, init.headers, init.body, first.signal);
  } catch (error) {
    guard.done();
    return { ok: false, latencyMs: Date.now() - started, error: thrownBy(rules, error, first, call) };
  } finally {
    first.done();
  }
  const latencyMs = Date.now() - started;
  if (response.ok && response.body !== null) {
    return { ok: true, response: response as Response & { body: ReadableStream<Uint8Array> }, guard, latencyMs };
  }
  const read = await readJsonAnswer(response, rules, [call.apiKey], call.request.model).catch((error) => ({
    ok: false as const,
    error: thrownBy(rules, error, guard, call),
  }));
  guard.done();
  const error = read.ok
    ? failureOf(
      rules,
      upstreamFailure("malformed", `${rules.upstream} answered the stream without a body.`, {
        httpStatus: response.status,
      }),
    )
    : read.error;
  return { ok: false, latencyMs, error };
}

/** What a call that threw comes to, said to be the provider's. */
export function thrownBy(
  rules: WireRules,
  error: unknown,
  guard: CallGuard,
  call: GenerateCall | ModelCall,
): UpstreamError {
  return failureOf(rules, classifyThrown(error, thrownContext(guard, call, rules)));
}

/** What is known about a call that threw: whose deadline ran out, what to redact. */
function thrownContext(guard: CallGuard, call: GenerateCall | ModelCall, rules: WireRules): ThrownContext {
  return {
    rules,
    timedOut: guard.timedOut(),
    callerAborted: call.signal?.aborted === true,
    secrets: [call.apiKey],
    timeoutMs: call.timeoutMs,
  };
}

export interface ThrownContext {
  /** Who was called. */
  rules: WireRules;
  timedOut: boolean;
  callerAborted: boolean;
  secrets: string[];
  timeoutMs: number;
}

/**
 * What every call to a provider needs: a deadline, aborting with the caller's own signal too, and
 * remembering that it fired. Call done() when the call is over.
 */
export interface CallGuard {
  signal: AbortSignal;
  timedOut: () => boolean;
  done: () => void;
}

export function callGuard(timeoutMs: number, callerSignal?: AbortSignal): CallGuard {
  const deadline = new AbortController();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    deadline.abort();
  }, timeoutMs);
  return {
    signal: callerSignal === undefined ? deadline.signal : AbortSignal.any([deadline.signal, callerSignal]),
    timedOut: () => fired,
    done: () => clearTimeout(timer),
  };
}

/**
 * What a call that threw comes to: our deadline, the caller's cancellation, an answer that was not
 * JSON, or the network. (A failed HTTP answer is read, not thrown: readJsonAnswer.)
 */
export function classifyThrown(error: unknown, ctx: ThrownContext): UpstreamError {
  const { secrets } = ctx;
  // Checked first, by our own flags: an aborted fetch rejects with whatever reason the signal
  // carries (AbortError, TimeoutError or any value), so the error itself cannot tell.
  const who = ctx.rules.upstream;
  if (ctx.timedOut) {
    return upstreamFailure("timeout", `${who} did not answer within ${ctx.timeoutMs} ms.`, { secrets });
  }
  if (ctx.callerAborted || isAbort(error)) {
    return upstreamFailure("aborted", `The call to ${who} was cancelled.`, { secrets });
  }
  if (error instanceof SyntaxError) {
    return upstreamFailure("malformed", sanitizeError(error, { secrets }), { secrets });
  }
  return upstreamFailure("network", sanitizeError(error, { secrets }), { secrets });
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
}
