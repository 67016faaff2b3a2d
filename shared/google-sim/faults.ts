// Fault injection: rules that make the next matching requests fail the way Google sometimes does.
// A rule matches by model, api key and/or project (all optional) and by API method (default: the
// two generate methods, since those are what a gateway retries). The first matching rule wins and
// spends one of its `count` uses; a rule without `count` stays until cleared.

export const FAULT_KINDS = [
  'http500',
  'http503',
  'hang',
  'malformed',
  'rate_limited',
  'day_exhausted',
  'invalid_key',
  'bad_request',
  'model_not_found',
  'cut_stream',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const API_METHODS = ['generateContent', 'streamGenerateContent', 'countTokens', 'models.get', 'models.list'] as const;
export type ApiMethod = (typeof API_METHODS)[number];

const DEFAULT_METHODS: readonly ApiMethod[] = ['generateContent', 'streamGenerateContent'];

export interface FaultSpec {
  kind: FaultKind;
  /** Model id without the "models/" prefix. */
  model?: string;
  apiKey?: string;
  project?: string;
  /** Defaults to generateContent and streamGenerateContent. */
  methods?: ApiMethod[];
  /** How many matching requests this rule applies to; omitted = every one until cleared. */
  count?: number;
  /** rate_limited: the quotaId reported (default: the per-minute requests quota). */
  quotaId?: string;
  /** rate_limited: the retryDelay reported, e.g. "22s"; null = no RetryInfo (default: to next minute). */
  retryDelay?: string | null;
  /** rate_limited: quotaValue reported (default: the model's limit for that quota). */
  quotaValue?: string;
  /** bad_request, model_not_found: the error message (model_not_found: default Google's own for the model). */
  message?: string;
  /**
   * cut_stream: SSE events sent before the socket is destroyed (default 1; the final event, the
   * one with finishReason, is never sent). generateContent is cut before any byte of its body.
   */
  afterChunks?: number;
}

export interface Fault extends FaultSpec {
  id: number;
  /** Requests this rule has hit so far. */
  hits: number;
}

export interface FaultTarget {
  method: ApiMethod;
  model: string | undefined;
  apiKey: string | undefined;
  project: string | undefined;
}

/** Validates a rule that came in over HTTP; throws a readable message on nonsense. */
export function parseFaultSpec(input: unknown): FaultSpec {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('a fault must be an object');
  const f = input as Record<string, unknown>;
  if (!FAULT_KINDS.includes(f.kind as FaultKind)) {
    throw new Error(`fault.kind must be one of ${FAULT_KINDS.join(', ')}`);
  }
  for (const field of ['model', 'apiKey', 'project', 'quotaId', 'quotaValue', 'message'] as const) {
    if (f[field] !== undefined && typeof f[field] !== 'string') throw new Error(`fault.${field} must be a string`);
  }
  if (f.retryDelay !== undefined && f.retryDelay !== null && typeof f.retryDelay !== 'string') {
    throw new Error('fault.retryDelay must be a string such as "22s", or null');
  }
  if (f.count !== undefined && !(Number.isInteger(f.count) && (f.count as number) > 0)) {
    throw new Error('fault.count must be a positive integer');
  }
  if (f.afterChunks !== undefined && !(Number.isInteger(f.afterChunks) && (f.afterChunks as number) >= 0)) {
    throw new Error('fault.afterChunks must be a non-negative integer');
  }
  if (f.methods !== undefined) {
    if (!Array.isArray(f.methods) || !f.methods.every((m) => API_METHODS.includes(m as ApiMethod))) {
      throw new Error(`fault.methods must list some of ${API_METHODS.join(', ')}`);
    }
  }
  return f as unknown as FaultSpec;
}

export class FaultBook {
  private faults: Fault[] = [];
  private nextId = 1;

  add(spec: FaultSpec): Fault {
    const fault: Fault = { ...spec, id: this.nextId++, hits: 0 };
    this.faults.push(fault);
    return fault;
  }

  set(specs: FaultSpec[]): Fault[] {
    this.faults = [];
    return specs.map((s) => this.add(s));
  }

  clear(): void {
    this.faults = [];
  }

  list(): Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  /** Finds the first rule matching `target` and spends one use of it. */
  take(target: FaultTarget): Fault | undefined {
    const index = this.faults.findIndex((f) => matches(f, target));
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    fault.hits += 1;
    if (fault.count !== undefined && fault.hits >= fault.count) this.faults.splice(index, 1);
    return { ...fault };
  }
}

function matches(f: Fault, t: FaultTarget): boolean {
  if (!(f.methods ?? DEFAULT_METHODS).includes(t.method)) return false;
  if (f.model !== undefined && f.model !== t.model) return false;
  if (f.apiKey !== undefined && f.apiKey !== t.apiKey) return false;
  if (f.project !== undefined && f.project !== t.project) return false;
  return true;
}
