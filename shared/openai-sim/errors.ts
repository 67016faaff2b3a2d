// OpenAI-shaped answers: {error: {message, type, param, code}} (research: openai-errors.md). The
// structure (status, type, code) is fixed; the messages are drawn per run from several wordings
// (sim-core/wordings.ts), so a client that decides by one English sentence breaks on some runs.

import { pickWording } from '../sim-core/wordings.ts';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface SimAnswer {
  status: number;
  body: OpenAIErrorBody;
}

export function answer(status: number, type: string, message: string, code: string | null = null, param: string | null = null): SimAnswer {
  return { status, body: { error: { message, type, param, code } } };
}

/** OpenAI's durations, as in x-ratelimit-reset-*: "20ms", "1s", "18.642s", "6m0s", "1h0m0s". */
export function formatDuration(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1000) return whole === 0 ? '0s' : `${whole}ms`;
  const hours = Math.floor(whole / 3_600_000);
  const minutes = Math.floor((whole % 3_600_000) / 60_000);
  const seconds = (whole % 60_000) / 1000;
  const s = `${Number(seconds.toFixed(3))}s`;
  if (hours > 0) return `${hours}h${minutes}m${s}`;
  if (minutes > 0) return `${minutes}m${s}`;
  return s;
}

/**
 * How a rate limit's message gives the wait: OpenAI's own way ("174ms" under a second, "18.642s"
 * above), always in seconds, always in milliseconds, not at all (the wait is then only in
 * x-ratelimit-reset-*), or `mixed`: the three in turn, answer after answer.
 */
export const WAIT_STYLES = ['natural', 'seconds', 'milliseconds', 'none', 'mixed'] as const;
export type WaitStyle = (typeof WAIT_STYLES)[number];

/** The wait as one message words it; undefined = the message names no wait. */
export function wordWait(ms: number, style: Exclude<WaitStyle, 'mixed'>): string | undefined {
  const whole = Math.max(1, Math.ceil(ms));
  switch (style) {
    case 'none':
      return undefined;
    case 'milliseconds':
      return `${whole}ms`;
    case 'seconds':
      return `${Number((whole / 1000).toFixed(3))}s`;
    case 'natural':
      return whole < 1000 ? `${whole}ms` : `${Number((whole / 1000).toFixed(3))}s`;
  }
}

export interface RateLimitFacts {
  /** 'requests' (RPM, RPD) or 'tokens' (TPM): OpenAI's error.type. */
  kind: 'requests' | 'tokens';
  /** 'min' or 'day'. */
  per: 'min' | 'day';
  model: string;
  organization: string;
  limit: number;
  used: number;
  requested: number;
  /** The wait as worded, or undefined for a message without one. */
  wait: string | undefined;
}

const RATE_LIMIT_LINK = 'Visit https://platform.openai.com/account/rate-limits to learn more.';
const HELP_CENTER = 'Contact us through our help center at help.openai.com if you continue to have issues.';

function abbreviation(f: RateLimitFacts): string {
  return `${f.kind === 'requests' ? 'R' : 'T'}P${f.per === 'min' ? 'M' : 'D'}`;
}

function retry(f: RateLimitFacts): string {
  return f.wait === undefined ? '' : ` Please try again in ${f.wait}.`;
}

/** Ways OpenAI has worded a rate limit's message, 2023-2026, and one of ours. */
export const RATE_LIMIT_WORDINGS: readonly ((f: RateLimitFacts) => string)[] = [
  (f) =>
    `Rate limit reached for ${f.model} in organization ${f.organization} on ${f.kind} per ${f.per} (${abbreviation(f)}): Limit ${f.limit}, Used ${f.used}, Requested ${f.requested}.${retry(f)} ${RATE_LIMIT_LINK}`,
  (f) =>
    `Rate limit reached for default-${f.model} in organization ${f.organization} on ${f.kind} per ${f.per}. Limit: ${f.limit} / ${f.per}.${retry(f)} ${HELP_CENTER}`,
  (f) =>
    `Rate limit reached for ${f.model} in organization ${f.organization} on ${f.kind} per ${f.per}. Limit: ${f.limit} / ${f.per}. Current: ${f.used} / ${f.per}.${retry(f)} ${HELP_CENTER}`,
  (f) => `You are sending ${f.kind} too quickly for ${f.model}.${retry(f)}\nLimit: ${f.limit} ${f.kind} per ${f.per === 'min' ? 'minute' : 'day'}.`,
];

export function rateLimited(f: RateLimitFacts): SimAnswer {
  const word = pickWording('openai.rate_limit', RATE_LIMIT_WORDINGS);
  return answer(429, f.kind, word(f), 'rate_limit_exceeded');
}

/** An organization without credit: the same status as a rate limit, told apart only by type/code. */
export const INSUFFICIENT_QUOTA_WORDINGS: readonly string[] = [
  'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
  'You exceeded your current quota, please check your plan and billing details.',
  'Your organization has run out of credits. Add credits at https://platform.openai.com/settings/organization/billing to keep using the API.',
];

export function insufficientQuota(): SimAnswer {
  return answer(429, 'insufficient_quota', pickWording('openai.insufficient_quota', INSUFFICIENT_QUOTA_WORDINGS), 'insufficient_quota');
}

/** The same 404 for a retired model and one the organization may not use. */
export const MODEL_NOT_FOUND_WORDINGS: readonly ((model: string, replacement: string | undefined) => string)[] = [
  (m) => `The model \`${m}\` does not exist or you do not have access to it.`,
  (m) => `The model \`${m}\` does not exist.`,
  (m) => `The model \`${m}\` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations`,
  (m, r) => `The model '${m}' was shut down${r === undefined ? '' : ` and replaced by '${r}'`}. See https://platform.openai.com/docs/deprecations.`,
];

export function modelNotFound(model: string, replacement?: string): SimAnswer {
  const word = pickWording('openai.model_not_found', MODEL_NOT_FOUND_WORDINGS);
  return answer(404, 'invalid_request_error', word(model, replacement), 'model_not_found');
}

/** The key as OpenAI shows it in its 401: the start and the end, the rest masked. */
export function maskKey(key: string): string {
  if (key.length <= 8) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}${'*'.repeat(Math.min(40, key.length - 7))}${key.slice(-4)}`;
}

export function invalidApiKey(key: string | undefined): SimAnswer {
  if (key === undefined || key === '') {
    return answer(
      401,
      'invalid_request_error',
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
    );
  }
  return answer(
    401,
    'invalid_request_error',
    `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    'invalid_api_key',
  );
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): SimAnswer {
  return answer(400, 'invalid_request_error', message, code, param);
}

export function invalidJson(): SimAnswer {
  return badRequest(
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
  );
}

export function serverError(): SimAnswer {
  return answer(500, 'server_error', 'The server had an error while processing your request. Sorry about that!');
}

export function overloaded(): SimAnswer {
  return answer(503, 'server_error', 'The server is overloaded or not ready yet.');
}

/** OpenAI's edge answers some failures with an HTML page, not JSON. */
export const BAD_GATEWAY_PAGE = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n';

export function routeNotFound(method: string | undefined, path: string): SimAnswer {
  return answer(404, 'invalid_request_error', `Invalid URL (${method ?? 'GET'} ${path})`);
}

export function payloadTooLarge(limit: number): SimAnswer {
  return answer(413, 'invalid_request_error', `Request body too large: the limit is ${limit} bytes.`);
}
