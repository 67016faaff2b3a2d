// The /__sim control API: the HTTP face of a simulator's programmatic control surface, for the
// local stack and for tests in other processes. It needs no provider key. Each simulator gives its
// routes as a table from "METHOD /path" (below /__sim) to a handler of the parsed JSON body; a
// handler that throws is answered 400 with its message.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseJson, readBody, writeJson } from './http.ts';

export const CONTROL_PREFIX = '/__sim';
/** Control bodies are small; this only stops a runaway client. */
const CONTROL_BODY_BYTES = 10 * 1024 * 1024;

export type ControlRoutes = Record<string, (body: unknown) => unknown>;

export function isControlPath(path: string): boolean {
  return path === CONTROL_PREFIX || path.startsWith(`${CONTROL_PREFIX}/`);
}

function fail(res: ServerResponse, message: string, code = 400): void {
  writeJson(res, code, { error: { code, message, status: code === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT' } });
}

export async function serveControl(routes: ControlRoutes, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const { text } = await readBody(req, CONTROL_BODY_BYTES);
  const parsed = parseJson(text);
  if (!parsed.ok) return fail(res, 'body is not valid JSON');
  const route = `${req.method} ${path.slice(CONTROL_PREFIX.length) || '/'}`;
  const handler = routes[route];
  if (!handler) return fail(res, `no control route ${route}`, 404);
  try {
    writeJson(res, 200, handler(parsed.value));
  } catch (e) {
    fail(res, e instanceof Error ? e.message : String(e));
  }
}

/** A `{"<name>": "<string>"}` body, such as api key → project. */
export function stringMap(body: unknown, what: string): Record<string, string> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected an object');
  for (const [k, v] of Object.entries(body)) {
    if (typeof v !== 'string') throw new Error(`value for "${k}" must be ${what}`);
  }
  return body as Record<string, string>;
}
