// The /__sim control API: the HTTP face of a simulator's programmatic control surface, for the
// local stack and for tests in other processes. It needs no provider key. Each simulator gives its
// routes as a table from "METHOD /path" (below /__sim) to a handler of the parsed JSON body; a
// handler that throws is answered 400 with its message.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { faultList } from './faults.ts';
import { parseJson, readBody, writeJson } from './http.ts';
import { withdrawnList } from './withdrawn.ts';

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

/** The part of a simulator's control surface that every simulator has. */
export interface CommonControl<Spec, Fault> {
  stats(): unknown;
  faults(): Fault[];
  addFault(spec: Spec): Fault;
  setFaults(specs: Spec[]): Fault[];
  clearFaults(): void;
  reset(): void;
  models(): unknown;
  withdrawnModels(): string[];
  setWithdrawn(models: readonly string[]): void;
  withdraw(model: string): void;
  restore(model: string): void;
}

/**
 * The routes every simulator serves alike: health, stats, faults (each simulator parses its own fault
 * specs), reset, the models' read-back and the withdrawn models. A simulator adds its own to these.
 */
export function commonRoutes<Spec, Fault>(sim: CommonControl<Spec, Fault>, parseFault: (input: unknown) => Spec): ControlRoutes {
  const faults = (body: unknown) => faultList(body, parseFault);
  return {
    'GET /health': () => ({ ok: true }),
    'GET /stats': () => sim.stats(),
    'GET /faults': () => ({ faults: sim.faults() }),
    'POST /faults': (body) => ({ faults: faults(body).map((f) => sim.addFault(f)) }),
    'PUT /faults': (body) => ({ faults: sim.setFaults(faults(body)) }),
    'DELETE /faults': () => {
      sim.clearFaults();
      return { faults: [] };
    },
    'POST /reset': () => {
      sim.reset();
      return { ok: true };
    },
    'GET /models': () => sim.models(),
    'GET /withdrawn': () => ({ models: sim.withdrawnModels() }),
    'PUT /withdrawn': (body) => {
      sim.setWithdrawn(withdrawnList(body));
      return { models: sim.withdrawnModels() };
    },
    'POST /withdrawn': (body) => {
      for (const m of withdrawnList(body)) sim.withdraw(m);
      return { models: sim.withdrawnModels() };
    },
    'DELETE /withdrawn': (body) => {
      for (const m of withdrawnList(body)) sim.restore(m);
      return { models: sim.withdrawnModels() };
    },
  };
}
