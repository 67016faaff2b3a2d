// The Google simulator's control surface: what a test or the local stack can change at run time,
// programmatically (`SimControl`) and over HTTP under /__sim (`controlRoutes`). It needs no Google key.

import { commonRoutes, stringMap, type ControlRoutes } from '../sim-core/control.ts';
import type { ModelOptions, ModelSpec } from './config.ts';
import { parseFaultSpec, type Fault, type FaultSpec } from './faults.ts';
import type { UsageSnapshot } from './quota.ts';
import { parseQuotaCauseOptions, type QuotaCauseOptions, type QuotaCauseState } from './quota-causes.ts';
import { parseServiceTierOptions, type ServiceTierOptions, type ServiceTierState } from './service-tiers.ts';
import type { SimStats } from './stats.ts';

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
  /**
   * Admitted calls wait before answering until the returned function is called (or the simulator
   * closes): a test sees a call in flight for as long as it needs, whatever the machine's load.
   */
  holdAnswers(): () => void;
}

/** The control routes of the Google simulator (sim-core/control.ts serves them). */
export function controlRoutes(sim: SimControl): ControlRoutes {
  return {
    ...commonRoutes(sim, parseFaultSpec),
    'GET /keys': () => sim.keys(),
    'PUT /keys': setKeys,
    'POST /keys': setKeys,
    'PUT /models': setModels,
    'POST /models': setModels,
    'GET /causes': () => sim.quotaCauses(),
    'PUT /causes': setCauses,
    'POST /causes': setCauses,
    'GET /tiers': () => sim.serviceTiers(),
    'PUT /tiers': setTiers,
    'POST /tiers': setTiers,
  };

  function setKeys(body: unknown): unknown {
    sim.setKeys(stringMap(body, 'a project id string'));
    return sim.keys();
  }
  function setModels(body: unknown): unknown {
    sim.setModels(body as ModelOptions);
    return sim.models();
  }
  function setCauses(body: unknown): unknown {
    sim.setQuotaCauses(parseQuotaCauseOptions(body));
    return sim.quotaCauses();
  }
  function setTiers(body: unknown): unknown {
    sim.setServiceTiers(parseServiceTierOptions(body));
    return sim.serviceTiers();
  }
}
