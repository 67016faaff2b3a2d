// Helpers for the OpenAI simulator's own tests: a settable clock and a thin fetch wrapper.

import type { OpenAISimulator } from './server.ts';

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
  /** Parsed body (any: tests poke into OpenAI-shaped JSON), undefined when not JSON. */
  json: any;
}

export async function call(
  sim: OpenAISimulator,
  method: string,
  path: string,
  opts: { key?: string | undefined; body?: unknown; rawBody?: string } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body;
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

/** A one-message chat body. */
export function chat(model: string, text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model, messages: [{ role: 'user', content: text }], ...extra };
}

export function complete(sim: OpenAISimulator, key: string, body: unknown): Promise<HttpResult> {
  return call(sim, 'POST', '/v1/chat/completions', { key, body });
}
