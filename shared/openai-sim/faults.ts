// Fault injection: rules that make the next matching requests fail the way OpenAI sometimes does.
// A rule matches by model, api key and/or organization (all optional) and by API method (default:
// chat completions). The book (sim-core/faults.ts) keeps them: the first matching rule wins and
// spends one of its `count` uses; a rule without `count` stays until cleared.

import { checkFaultRule, FaultBook as RuleBook, type Booked } from '../sim-core/faults.ts';

export const FAULT_KINDS = [
  'http500',
  'http502',
  'http503',
  'hang',
  'malformed',
  'rate_limited',
  'insufficient_quota',
  'invalid_key',
  'bad_request',
  'model_not_found',
  'cut_stream',
  'stream_error',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const API_METHODS = ['chat.completions', 'responses', 'embeddings', 'models.list', 'models.get'] as const;
export type ApiMethod = (typeof API_METHODS)[number];

const DEFAULT_METHODS: readonly ApiMethod[] = ['chat.completions'];

export interface FaultSpec {
  kind: FaultKind;
  model?: string;
  apiKey?: string;
  organization?: string;
  /** Defaults to chat.completions. */
  methods?: ApiMethod[];
  /** How many matching requests this rule applies to; omitted = every one until cleared. */
  count?: number;
  /** rate_limited: OpenAI's error.type, 'requests' (default) or 'tokens'. */
  limitType?: 'requests' | 'tokens';
  /** rate_limited: the wait named in the message and the reset headers (default 1000 ms). */
  waitMs?: number;
  /** bad_request: the message (default "Invalid request."). */
  message?: string;
  /**
   * cut_stream: SSE events sent before the socket closes (default 1; the last, [DONE], never).
   * stream_error: events sent before the error event. Non-streamed calls: cut before any byte.
   */
  afterChunks?: number;
}

export type Fault = Booked<FaultSpec>;

export interface FaultTarget {
  method: ApiMethod;
  model: string | undefined;
  apiKey: string | undefined;
  organization: string | undefined;
}

/** Validates a rule that came in over HTTP; throws a readable message on nonsense. */
export function parseFaultSpec(input: unknown): FaultSpec {
  const f = checkFaultRule(input, FAULT_KINDS, API_METHODS, ['model', 'apiKey', 'organization', 'message']);
  if (f.limitType !== undefined && f.limitType !== 'requests' && f.limitType !== 'tokens') {
    throw new Error('fault.limitType must be "requests" or "tokens"');
  }
  if (f.waitMs !== undefined && !(typeof f.waitMs === 'number' && Number.isFinite(f.waitMs) && f.waitMs >= 0)) {
    throw new Error('fault.waitMs must be a non-negative number');
  }
  return f as unknown as FaultSpec;
}

function matches(f: FaultSpec, t: FaultTarget): boolean {
  if (!(f.methods ?? DEFAULT_METHODS).includes(t.method)) return false;
  if (f.model !== undefined && f.model !== t.model) return false;
  if (f.apiKey !== undefined && f.apiKey !== t.apiKey) return false;
  if (f.organization !== undefined && f.organization !== t.organization) return false;
  return true;
}

export class FaultBook extends RuleBook<FaultSpec, FaultTarget> {
  constructor() {
    super(matches);
  }
}
