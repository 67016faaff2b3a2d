// Helpers for the simulator's own tests: a settable clock and a thin fetch wrapper.

import { type HttpResult, request } from '../sim-core/test-helpers.ts';
import type { GoogleSimulator } from './server.ts';

export { type FakeClock, fakeClock, type HttpResult } from '../sim-core/test-helpers.ts';

export function call(
  sim: GoogleSimulator,
  method: string,
  path: string,
  opts: { key?: string | undefined; body?: unknown; rawBody?: string; signal?: AbortSignal } = {},
): Promise<HttpResult> {
  const keyHeader: [string, string] | undefined = opts.key === undefined ? undefined : ['x-goog-api-key', opts.key];
  return request(sim.url, method, path, { ...opts, keyHeader });
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
