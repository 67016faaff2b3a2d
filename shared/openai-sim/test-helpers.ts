// Helpers for the OpenAI simulator's own tests: a settable clock and a thin fetch wrapper.

import { type HttpResult, request } from '../sim-core/test-helpers.ts';
import type { OpenAISimulator } from './server.ts';

export { type FakeClock, fakeClock, type HttpResult } from '../sim-core/test-helpers.ts';

export function call(
  sim: OpenAISimulator,
  method: string,
  path: string,
  opts: { key?: string | undefined; body?: unknown; rawBody?: string } = {},
): Promise<HttpResult> {
  const keyHeader: [string, string] | undefined = opts.key === undefined ? undefined : ['authorization', `Bearer ${opts.key}`];
  return request(sim.url, method, path, { ...opts, keyHeader });
}

/** A one-message chat body. */
export function chat(model: string, text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model, messages: [{ role: 'user', content: text }], ...extra };
}

export function complete(sim: OpenAISimulator, key: string, body: unknown): Promise<HttpResult> {
  return call(sim, 'POST', '/v1/chat/completions', { key, body });
}
