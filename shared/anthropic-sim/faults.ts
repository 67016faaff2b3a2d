// Fault rules of the Anthropic simulator (sim-core/faults.ts keeps the book).

import { checkFaultRule, FaultBook as CoreBook, type Booked, type FaultRule } from '../sim-core/faults.ts';
import { WALLETS, type Wallet } from './config.ts';

export type ApiMethod = 'messages' | 'count_tokens' | 'models.list' | 'models.get';
export const API_METHODS: readonly ApiMethod[] = ['messages', 'count_tokens', 'models.list', 'models.get'];

export type FaultKind =
  | 'overloaded'
  | 'api_error'
  | 'rate_limited'
  | 'acceleration'
  | 'invalid_key'
  | 'permission'
  | 'no_money'
  | 'bad_request'
  | 'model_not_found'
  | 'hang'
  | 'cut_stream'
  | 'stream_error';
export const FAULT_KINDS: readonly FaultKind[] = [
  'overloaded', 'api_error', 'rate_limited', 'acceleration', 'invalid_key', 'permission', 'no_money', 'bad_request', 'model_not_found', 'hang', 'cut_stream', 'stream_error',
];

export interface FaultSpec extends FaultRule {
  kind: FaultKind;
  model?: string;
  apiKey?: string;
  organization?: string;
  /** Default ['messages']. */
  methods?: ApiMethod[];
  /** rate_limited, acceleration: the wait in retry-after (default 1000 ms). */
  waitMs?: number;
  /** rate_limited: which limit the 429 names (default requests). */
  limit?: 'requests' | 'input_tokens' | 'output_tokens';
  /** no_money: the shape (default credit). */
  wallet?: Exclude<Wallet, 'funded'>;
  /** bad_request: the message. */
  message?: string;
  /** cut_stream, stream_error: events sent first (default 1). */
  afterChunks?: number;
  /** stream_error: the error type of the event (default overloaded_error). */
  errorType?: string;
}

export type Fault = Booked<FaultSpec>;

export interface FaultTarget {
  method: ApiMethod;
  model: string | undefined;
  apiKey: string | undefined;
  organization: string | undefined;
}

export class FaultBook extends CoreBook<FaultSpec, FaultTarget> {
  constructor() {
    super((f, t) =>
      (f.methods ?? ['messages']).includes(t.method) &&
      (f.model === undefined || f.model === t.model) &&
      (f.apiKey === undefined || f.apiKey === t.apiKey) &&
      (f.organization === undefined || f.organization === t.organization));
  }
}

export function parseFaultSpec(input: unknown): FaultSpec {
  const f = checkFaultRule(input, FAULT_KINDS, API_METHODS, ['model', 'apiKey', 'organization', 'message', 'errorType']);
  if (f.waitMs !== undefined && !(Number.isInteger(f.waitMs) && (f.waitMs as number) >= 0)) throw new Error('fault.waitMs must be a non-negative integer');
  if (f.limit !== undefined && !['requests', 'input_tokens', 'output_tokens'].includes(f.limit as string)) throw new Error('fault.limit must be requests, input_tokens or output_tokens');
  if (f.wallet !== undefined && (f.wallet === 'funded' || !WALLETS.includes(f.wallet as Wallet))) throw new Error('fault.wallet must be credit, billing, spend_limit or workspace_limit');
  return f as unknown as FaultSpec;
}
