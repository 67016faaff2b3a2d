// Anthropic's error bodies: {"type": "error", "error": {"type", "message"}, "request_id"}. The type
// and the status are the structure a caller can decide on; the messages are drawn for the run from
// several wordings (sim-core/wordings.ts), so a gateway that decides by one English sentence fails on
// some runs. Where Anthropic gives no structure (a 400 invalid_request_error that is about money),
// the wordings keep the stable words Anthropic uses ("credit balance", "spend limit"): docs/anthropic.md.

import { randomBytes } from 'node:crypto';
import { pickWording } from '../sim-core/wordings.ts';
import type { LimitName } from './buckets.ts';

export interface SimAnswer {
  status: number;
  body: Record<string, unknown>;
  /** Extra headers (retry-after on a 429). */
  headers?: Record<string, string>;
}

export function requestId(): string {
  return `req_011C${randomBytes(12).toString('base64url')}`;
}

export function errorBody(type: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { type: 'error', error: { type, message, ...(details ? { details } : {}) }, request_id: requestId() };
}

function answer(status: number, type: string, message: string, extra: Partial<SimAnswer> & { details?: Record<string, unknown> } = {}): SimAnswer {
  return { status, body: errorBody(type, message, extra.details), ...(extra.headers ? { headers: extra.headers } : {}) };
}

export const invalidRequest = (message: string): SimAnswer => answer(400, 'invalid_request_error', message);

export const VERSION_MISSING_WORDINGS = [
  'anthropic-version: header is required',
  'Missing required header: anthropic-version',
] as const;
export const versionMissing = (): SimAnswer => invalidRequest(pickWording('anthropic.version_missing', VERSION_MISSING_WORDINGS));

export const AUTH_WORDINGS = ['invalid x-api-key', 'Invalid API key', 'x-api-key header is required'] as const;
export function authentication(missing: boolean): SimAnswer {
  return answer(401, 'authentication_error', missing ? 'x-api-key header is required' : pickWording('anthropic.auth', AUTH_WORDINGS.slice(0, 2)));
}

export const PERMISSION_WORDINGS = [
  'Your API key does not have permission to use the specified resource.',
  'This organization has been disabled.',
  'Your organization does not have access to this model.',
] as const;
export const permission = (): SimAnswer => answer(403, 'permission_error', pickWording('anthropic.permission', PERMISSION_WORDINGS));

export const MODEL_NOT_FOUND_WORDINGS = [
  (m: string) => `model: ${m}`,
  (m: string) => `The model \`${m}\` does not exist or you do not have access to it.`,
  (m: string) => `model '${m}' not found`,
] as const;
export const modelNotFound = (model: string): SimAnswer => answer(404, 'not_found_error', pickWording('anthropic.model_not_found', MODEL_NOT_FOUND_WORDINGS)(model));
export const routeNotFound = (method: string | undefined, path: string): SimAnswer => answer(404, 'not_found_error', `Not Found: ${method ?? 'GET'} ${path}`);

const LIMIT_WORDS: Record<LimitName, string> = {
  requests: 'requests per minute',
  input_tokens: 'input tokens per minute',
  output_tokens: 'output tokens per minute',
};
export const RATE_LIMIT_WORDINGS = [
  (org: string, limit: number, what: string) =>
    `This request would exceed the rate limit for your organization (${org}) of ${limit.toLocaleString('en-US')} ${what}. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.`,
  (_org: string, limit: number, what: string) => `Number of request tokens has exceeded your per-minute rate limit (${what}: ${limit}).`,
  (_org: string, _limit: number, what: string) => `Rate limit exceeded: ${what}. Please slow down.`,
] as const;
/** A 429 of the organization's own limits, with retry-after in whole seconds. */
export function rateLimited(org: string, limit: LimitName, limitValue: number, retryAfterMs: number): SimAnswer {
  const text = pickWording('anthropic.rate_limit', RATE_LIMIT_WORDINGS)(org, limitValue, LIMIT_WORDS[limit]);
  return answer(429, 'rate_limit_error', text, { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } });
}

export const ACCELERATION_WORDINGS = [
  'Your organization\'s usage increased too quickly. Please ramp up your traffic gradually and try again.',
  'This request would exceed your organization\'s acceleration limit. Please reduce the rate at which you increase usage.',
] as const;
/** A 429 of Anthropic's acceleration limit: a rate, not the minute's limits; retry-after sent. */
export function acceleration(retryAfterMs: number): SimAnswer {
  return answer(429, 'rate_limit_error', pickWording('anthropic.acceleration', ACCELERATION_WORDINGS), {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
  });
}

export const OVERLOADED_WORDINGS = ['Overloaded', 'The API is temporarily overloaded.', 'Anthropic\'s API is temporarily overloaded'] as const;
export const overloaded = (): SimAnswer => answer(529, 'overloaded_error', pickWording('anthropic.overloaded', OVERLOADED_WORDINGS));
export const apiError = (): SimAnswer => answer(500, 'api_error', pickWording('anthropic.api_error', ['Internal server error', 'An unexpected error has occurred internal to Anthropic\'s systems.']));

export const CREDIT_WORDINGS = [
  'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
  'Your credit balance is too low to access the Claude API. Please go to Plans & Billing to upgrade or purchase credits.',
] as const;
export const WORKSPACE_LIMIT_WORDINGS = [
  'You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC.',
  'You have reached your specified workspace API usage limits. You will regain access on 2026-12-01 at 00:00 UTC.',
  'This request would exceed your organization\'s spend limit. Raise the spend limit in the Console to continue.',
] as const;
export const SPEND_LIMIT_WORDINGS = [
  'Your organization has reached its monthly spend limit for its usage tier. Usage resumes on the first of next month.',
  'You have reached your usage tier\'s spend limit.',
] as const;
export const BILLING_WORDINGS = [
  'Your credit balance is too low to make API requests. Please go to Plans & Billing to get more credits.',
  'There is an issue with your billing. Please check your payment method.',
] as const;

/** The answer an organization without money gets, in the shape its wallet names. */
export function noMoney(wallet: 'credit' | 'billing' | 'spend_limit' | 'workspace_limit'): SimAnswer {
  switch (wallet) {
    case 'credit':
      return invalidRequest(pickWording('anthropic.credit', CREDIT_WORDINGS));
    case 'workspace_limit':
      return invalidRequest(pickWording('anthropic.workspace_limit', WORKSPACE_LIMIT_WORDINGS));
    case 'billing':
      return answer(402, 'billing_error', pickWording('anthropic.billing', BILLING_WORDINGS));
    case 'spend_limit':
      // Worn as a rate limit but it is money: no retry-after, its details name the cause.
      return answer(429, 'rate_limit_error', pickWording('anthropic.spend_limit', SPEND_LIMIT_WORDINGS), {
        details: { error_code: 'enforced_spend_limit_reached' },
      });
  }
}

export const requestTooLarge = (): SimAnswer => answer(413, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.');
