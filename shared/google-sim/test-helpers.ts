// Helpers for the simulator's own tests: a settable clock and a thin fetch wrapper.

import type { GoogleSimulator } from './server.ts';

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
  /** Parsed body (any: tests poke into Google-shaped JSON), undefined when not JSON. */
  json: any;
}

export async function call(
  sim: GoogleSimulator,
  method: string,
  path: string,
  opts: { key?: string | undefined; body?: unknown; rawBody?: string; signal?: AbortSignal } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key !== undefined) headers['x-goog-api-key'] = opts.key;
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body;
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(`${sim.url}${path}`, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A one-turn user request body. */
export function ask(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { contents: [{ role: 'user', parts: [{ text }] }], ...extra };
}

export function generate(sim: GoogleSimulator, model: string, key: string, body: unknown): Promise<HttpResult> {
  return call(sim, 'POST', `/v1beta/models/${model}:generateContent`, { key, body });
}

/** Finds a typed entry in error.details by its @type suffix, e.g. "RetryInfo". */
export function detail(json: { error?: { details?: Array<Record<string, unknown>> } }, type: string): Record<string, unknown> | undefined {
  return json.error?.details?.find((d) => d['@type'] === `type.googleapis.com/google.rpc.${type}`);
}
