// The /__sim control API: the HTTP face of the programmatic control surface, for the local stack
// and for tests in other processes. It needs no Google key.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ModelOptions, ModelSpec } from './config.ts';
import { parseFaultSpec, type Fault, type FaultSpec } from './faults.ts';
import { parseJson, readBody, writeJson } from './http.ts';
import type { UsageSnapshot } from './quota.ts';
import { parseQuotaCauseOptions, type QuotaCauseOptions, type QuotaCauseState } from './quota-causes.ts';
import { parseServiceTierOptions, type ServiceTierOptions, type ServiceTierState } from './service-tiers.ts';
import type { SimStats } from './stats.ts';
import { withdrawnList } from './withdrawn.ts';

export interface SimulatorStats extends SimStats {
  /** Current window usage per project, per model. */
  quota: Record<string, Record<string, UsageSnapshot>>;
  /** generateContent/stream calls per project, per model (refused ones included). */
  calls: Record<string, Record<string, number>>;
}

export interface SimControl {
  /** Replaces all fault rules. */
  setFaults(faults: FaultSpec[]): Fault[];
  /** Appends one fault rule. */
  addFault(fault: FaultSpec): Fault;
  clearFaults(): void;
  faults(): Fault[];
  /** Clears quota windows, stats and faults; keeps keys and models. */
  reset(): void;
  stats(): SimulatorStats;
  /** Replaces the api key -> project map. */
  setKeys(keys: Record<string, string>): void;
  keys(): Record<string, string>;
  /** Re-resolves models from defaults plus these overrides; quota usage is kept. */
  setModels(models: ModelOptions): void;
  models(): Record<string, ModelSpec>;
  /** Google stops serving this model (404 NOT_FOUND, absent from models.list) until restore(). */
  withdraw(model: string): void;
  restore(model: string): void;
  /** Replaces the models withdrawn at run time. */
  setWithdrawn(models: readonly string[]): void;
  /** Every withdrawn model (by spec or at run time). */
  withdrawnModels(): string[];
  /** Replaces the `limit: 0` pairs and spend caps (a spend cap's window starts now). */
  setQuotaCauses(causes: QuotaCauseOptions): void;
  quotaCauses(): QuotaCauseState;
  /** Replaces flex shedding and the priority limit. */
  setServiceTiers(tiers: ServiceTierOptions): void;
  serviceTiers(): ServiceTierState;
}

export const CONTROL_PREFIX = '/__sim';

function fail(res: ServerResponse, message: string, code = 400): void {
  writeJson(res, code, { error: { code, message, status: code === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT' } });
}

/** A body of one rule, an array of rules, or {faults: [...]}. */
function faultList(body: unknown): FaultSpec[] {
  const raw = Array.isArray(body)
    ? body
    : body !== null && typeof body === 'object' && Array.isArray((body as { faults?: unknown }).faults)
      ? (body as { faults: unknown[] }).faults
      : [body];
  return raw.map(parseFaultSpec);
}

function stringMap(body: unknown): Record<string, string> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected an object');
  for (const [k, v] of Object.entries(body)) {
    if (typeof v !== 'string') throw new Error(`value for "${k}" must be a project id string`);
  }
  return body as Record<string, string>;
}

export async function handleControl(sim: SimControl, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const { text } = await readBody(req);
  const parsed = parseJson(text);
  if (!parsed.ok) return fail(res, 'body is not valid JSON');
  const body = parsed.value;
  const route = `${req.method} ${path.slice(CONTROL_PREFIX.length) || '/'}`;
  try {
    switch (route) {
      case 'GET /health':
        return writeJson(res, 200, { ok: true });
      case 'GET /stats':
        return writeJson(res, 200, sim.stats());
      case 'GET /faults':
        return writeJson(res, 200, { faults: sim.faults() });
      case 'POST /faults':
        return writeJson(res, 200, { faults: faultList(body).map((f) => sim.addFault(f)) });
      case 'PUT /faults':
        return writeJson(res, 200, { faults: sim.setFaults(faultList(body)) });
      case 'DELETE /faults':
        sim.clearFaults();
        return writeJson(res, 200, { faults: [] });
      case 'POST /reset':
        sim.reset();
        return writeJson(res, 200, { ok: true });
      case 'GET /keys':
        return writeJson(res, 200, sim.keys());
      case 'PUT /keys':
      case 'POST /keys':
        sim.setKeys(stringMap(body));
        return writeJson(res, 200, sim.keys());
      case 'GET /models':
        return writeJson(res, 200, sim.models());
      case 'PUT /models':
      case 'POST /models':
        sim.setModels(body as ModelOptions);
        return writeJson(res, 200, sim.models());
      case 'GET /withdrawn':
        return writeJson(res, 200, { models: sim.withdrawnModels() });
      case 'PUT /withdrawn':
        sim.setWithdrawn(withdrawnList(body));
        return writeJson(res, 200, { models: sim.withdrawnModels() });
      case 'POST /withdrawn':
        for (const m of withdrawnList(body)) sim.withdraw(m);
        return writeJson(res, 200, { models: sim.withdrawnModels() });
      case 'DELETE /withdrawn':
        for (const m of withdrawnList(body)) sim.restore(m);
        return writeJson(res, 200, { models: sim.withdrawnModels() });
      case 'GET /causes':
        return writeJson(res, 200, sim.quotaCauses());
      case 'PUT /causes':
      case 'POST /causes':
        sim.setQuotaCauses(parseQuotaCauseOptions(body));
        return writeJson(res, 200, sim.quotaCauses());
      case 'GET /tiers':
        return writeJson(res, 200, sim.serviceTiers());
      case 'PUT /tiers':
      case 'POST /tiers':
        sim.setServiceTiers(parseServiceTierOptions(body));
        return writeJson(res, 200, sim.serviceTiers());
      default:
        return fail(res, `no control route ${route}`, 404);
    }
  } catch (e) {
    return fail(res, e instanceof Error ? e.message : String(e));
  }
}
