// Helpers for the simulators' own tests: a settable clock and a thin fetch wrapper; each simulator's
// test-helpers.ts adds how its provider carries the key and what its bodies look like.

export interface FakeClock {
  now: () => number;
  set(iso: string): void;
  advance(ms: number): void;
}

export function fakeClock(iso: string): FakeClock {
  let t = Date.parse(iso);
  return {
    now: () => t,
    set: (next) => {
      t = Date.parse(next);
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed body (any: tests poke into the provider's JSON), undefined when not JSON. */
  json: any;
}

/** One request to a simulator at `url`, with the key's header (if any) as its provider carries it. */
export async function request(
  url: string,
  method: string,
  path: string,
  opts: { keyHeader?: [string, string] | undefined; body?: unknown; rawBody?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.keyHeader) headers[opts.keyHeader[0]] = opts.keyHeader[1];
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body;
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(`${url}${path}`, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
