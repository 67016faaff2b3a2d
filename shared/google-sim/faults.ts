// Fault injection: rules that make the next matching requests fail the way Google sometimes does.
// A rule matches by model, api key and/or project (all optional) and by API method (default: the
// two generate methods, since those are what a gateway retries). The book (sim-core/faults.ts) keeps
// them: the first matching rule wins and spends one of its `count` uses.

import { checkFaultRule, FaultBook as RuleBook, type Booked } from '../sim-core/faults.ts';

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

export const API_METHODS = [
  'generateContent',
  'streamGenerateContent',
  'countTokens',
  'embedContent',
  'batchEmbedContents',
  'models.get',
  'models.list',
] as const;
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

export type Fault = Booked<FaultSpec>;

export interface FaultTarget {
  method: ApiMethod;
  model: string | undefined;
  apiKey: string | undefined;
  project: string | undefined;
}

/** Validates a rule that came in over HTTP; throws a readable message on nonsense. */
export function parseFaultSpec(input: unknown): FaultSpec {
  const f = checkFaultRule(input, FAULT_KINDS, API_METHODS, ['model', 'apiKey', 'project', 'quotaId', 'quotaValue', 'message']);
  if (f.retryDelay !== undefined && f.retryDelay !== null && typeof f.retryDelay !== 'string') {
    throw new Error('fault.retryDelay must be a string such as "22s", or null');
  }
  return f as unknown as FaultSpec;
}

export class FaultBook extends RuleBook<FaultSpec, FaultTarget> {
  constructor() {
    super(matches);
  }
}

function matches(f: FaultSpec, t: FaultTarget): boolean {
  if (!(f.methods ?? DEFAULT_METHODS).includes(t.method)) return false;
  if (f.model !== undefined && f.model !== t.model) return false;
  if (f.apiKey !== undefined && f.apiKey !== t.apiKey) return false;
  if (f.project !== undefined && f.project !== t.project) return false;
  return true;
}
