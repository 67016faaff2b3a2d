// Google-shaped error answers: {error: {code, message, status, details?}}.
// Shapes and wording copy what generativelanguage.googleapis.com answers, including where Google
// leaves `details` out (404, 500, 503), so a gateway's parser meets the same variety it will in
// production.

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: Array<Record<string, unknown>> };
}

export interface SimAnswer {
  status: number;
  body: GoogleErrorBody;
}

import { pickWording } from '../sim-core/wordings.ts';

const SERVICE = 'generativelanguage.googleapis.com';
const RATE_LIMIT_DOCS = 'https://ai.google.dev/gemini-api/docs/rate-limits';

export function answer(code: number, status: string, message: string, details?: Array<Record<string, unknown>>): SimAnswer {
  const error: GoogleErrorBody['error'] = { code, message, status };
  if (details) error.details = details;
  return { status: code, body: { error } };
}

export function apiKeyInvalid(): SimAnswer {
  const message = 'API key not valid. Please pass a valid API key.';
  return answer(400, 'INVALID_ARGUMENT', message, [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'API_KEY_INVALID',
      domain: 'googleapis.com',
      metadata: { service: SERVICE },
    },
    { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message },
  ]);
}

export function invalidArgument(message: string): SimAnswer {
  return answer(400, 'INVALID_ARGUMENT', message);
}

/** Google's answer to a body that is not JSON or names a field the API does not have. */
export function invalidJson(detail: string): SimAnswer {
  const message = `Invalid JSON payload received. ${detail}`;
  return answer(400, 'INVALID_ARGUMENT', message, [
    { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ description: message }] },
  ]);
}

export function payloadTooLarge(limit: number): SimAnswer {
  return answer(400, 'INVALID_ARGUMENT', `Request payload size exceeds the limit: ${limit} bytes.`);
}

/**
 * How Google words a call for a model it does not serve, on generate, stream and countTokens: its own
 * sentences (research: google-errors.md), the one models.get uses, one that names a replacement
 * (`replacement` when the model's spec has one, else a sentence without it), and variants of ours:
 * another API version in the text, other casing, extra lines. One is drawn per run (wordings.ts).
 */
export const MODEL_NOT_FOUND_WORDINGS: ReadonlyArray<(model: string, method: string, replacement?: string) => string> = [
  (m, method) => `models/${m} is not found for API version v1beta, or is not supported for ${method}. ` +
    'Call ListModels to see the list of available models and their supported methods.',
  (m) => `Model is not found: models/${m} for api version v1beta`,
  (m, _method, r) => r === undefined
    ? `models/${m} is no longer available.`
    : `models/${m} is no longer available. Please update your code to use models/${r}`,
  (m, method) => `MODELS/${m.toUpperCase()} IS NOT FOUND FOR API VERSION V1, OR IS NOT SUPPORTED FOR ${method.toUpperCase()}.`,
  (m, _method, r) => `Publisher model ${m} was retired.\nIt is not served to this project any more.` +
    (r === undefined ? '' : `\nSuggested replacement: models/${r}.`),
];

/** How Google words models.get for a model it does not serve (its own sentence first), drawn per run. */
export const MODEL_GET_NOT_FOUND_WORDINGS: ReadonlyArray<(model: string) => string> = [
  (m) => `Model is not found: models/${m} for api version v1beta`,
  () => 'Requested entity was not found.',
  (m) => `models/${m} is not found for API version v1beta, or is not supported for get. Call ListModels to see ` +
    'the list of available models and their supported methods.',
  (m) => `model not found\n(models/${m}, api version v1alpha)`,
];

/** Google's 404 for a model it does not serve: always 404 NOT_FOUND without details, worded as drawn. */
export function modelNotFound(model: string, method: string, replacement?: string, seed?: number): SimAnswer {
  const message = method === 'get'
    ? pickWording('model-not-found.get', MODEL_GET_NOT_FOUND_WORDINGS, seed)(model)
    : pickWording('model-not-found.call', MODEL_NOT_FOUND_WORDINGS, seed)(model, method, replacement);
  return answer(404, 'NOT_FOUND', message);
}

/** A path the API does not have: Google's front end answers with an HTML page, not a JSON error. */
export function routeNotFoundPage(path: string): string {
  const safe = path.replace(/[<>&"]/g, '');
  return '<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n' +
    `  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>${safe}</code> was not found on this server.` +
    '  <ins>That\u2019s all we know.</ins>\n';
}

export function internal(): SimAnswer {
  return answer(
    500,
    'INTERNAL',
    'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  );
}

export function unavailable(): SimAnswer {
  return answer(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
}

export interface QuotaViolation {
  quotaMetric: string;
  quotaId: string;
  quotaDimensions: { location: string; model: string };
  quotaValue: string;
}

/**
 * 429 RESOURCE_EXHAUSTED. `retryDelay` is a protobuf Duration string such as "10.689924287s".
 * The message always carries it in full; RetryInfo does too unless `wholeSeconds` is set, which
 * truncates it to "10s" (Google has been seen answering both ways, so a client must parse
 * fractions and must not trust a truncated value to land after the window opens).
 * `null` leaves RetryInfo and the "Please retry" sentence out (older Google 429s look so).
 */
/**
 * How Google words one violation's line: its own first, then variants (spacing, casing, order). A
 * project without quota for the model is told by its QuotaFailure's quotaValue "0" whatever the line
 * says; the line's "limit: 0" is the only carrier when a body comes without quotaValue (as users quote it).
 */
export const VIOLATION_LINE_WORDINGS: ReadonlyArray<(v: QuotaViolation) => string> = [
  (v) => `* Quota exceeded for metric: ${v.quotaMetric}, limit: ${v.quotaValue}, model: ${v.quotaDimensions.model}`,
  (v) => `* Quota exceeded for metric: ${v.quotaMetric}, limit:${v.quotaValue}, model: ${v.quotaDimensions.model}`,
  (v) => `* QUOTA EXCEEDED FOR ${v.quotaDimensions.model.toUpperCase()} (metric ${v.quotaMetric}), Limit: ${v.quotaValue}`,
  (v) => `* Quota exceeded for metric: ${v.quotaMetric},\n  limit: ${v.quotaValue},\n  model: ${v.quotaDimensions.model}`,
];

export function quotaExceeded(
  violations: QuotaViolation[],
  retryDelay: string | null,
  wholeSeconds = false,
  seed?: number,
): SimAnswer {
  const line = pickWording('quota.violation-line', VIOLATION_LINE_WORDINGS, seed);
  const lines = violations.map(line);
  let message =
    'You exceeded your current quota, please check your plan and billing details. For more information on ' +
    `this error, head to: ${RATE_LIMIT_DOCS}. To monitor your current usage, head to: ` +
    'https://ai.dev/usage?tab=rate-limit. \n' +
    lines.join('\n');
  const details: Array<Record<string, unknown>> = [
    { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations },
    {
      '@type': 'type.googleapis.com/google.rpc.Help',
      links: [{ description: 'Learn more about Gemini API quotas', url: RATE_LIMIT_DOCS }],
    },
  ];
  if (retryDelay !== null) {
    message += `\nPlease retry in ${retryDelay}.`;
    details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: wholeSeconds ? truncateSeconds(retryDelay) : retryDelay });
  }
  return answer(429, 'RESOURCE_EXHAUSTED', message, details);
}

/** Formats milliseconds as a protobuf JSON Duration: 0, 3, 6 or 9 fractional digits. */
export function formatDuration(ms: number): string {
  const totalNanos = Math.max(0, Math.round(ms * 1e6));
  const seconds = Math.floor(totalNanos / 1e9);
  const nanos = totalNanos % 1e9;
  if (nanos === 0) return `${seconds}s`;
  const digits = nanos % 1e6 === 0 ? 3 : nanos % 1e3 === 0 ? 6 : 9;
  const frac = String(nanos).padStart(9, '0').slice(0, digits);
  return `${seconds}.${frac}s`;
}

/** "10.689924287s" -> "10s"; anything that is not a Duration string is passed through. */
function truncateSeconds(duration: string): string {
  const m = /^(\d+)(?:\.\d+)?s$/.exec(duration);
  return m ? `${m[1]}s` : duration;
}

/**
 * The simulator's spend-cap 429 (its own choice: no verbatim body is public, see README "Quota
 * causes"). Google documents spend-based limits per billing account over a rolling 10-minute window
 * answered with 429 RESOURCE_EXHAUSTED; this body says so in words, names the window, and carries
 * the time left in the window as RetryInfo.
 */
/** The spend-based rate limit's sentence, drawn per run: the window in minutes is in each. */
export const SPEND_RATE_WORDINGS: ReadonlyArray<(minutes: number) => string> = [
  (m) => `Your billing account has reached its spend-based rate limit for the rolling ${m}-minute window. ` +
    `For more information on this error, head to: ${RATE_LIMIT_DOCS}.`,
  (m) => `Spend-based rate limit reached for your usage tier (rolling ${m}-minute window).`,
  (m) => `SPENDING RATE LIMIT EXCEEDED\nYour project spent its tier's allowance for the last ${m} minutes.`,
];

export function spendCapExceeded(windowMs: number, retryAfterMs: number, seed?: number): SimAnswer {
  const minutes = Math.max(1, Math.round(windowMs / 60_000));
  const delay = formatDuration(Math.max(0, retryAfterMs));
  return answer(
    429,
    'RESOURCE_EXHAUSTED',
    `${pickWording('money.spend_rate', SPEND_RATE_WORDINGS, seed)(minutes)}\nPlease retry in ${delay}.`,
    [
      {
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [{ description: 'Learn more about Gemini API spend-based rate limits', url: RATE_LIMIT_DOCS }],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: delay },
    ],
  );
}

/** What a project is out of: money, not quota (google-errors.md). */
export type MoneyKind = 'monthly_cap' | 'billing_cap' | 'credits_depleted';

/**
 * How Google words each money 429 (status RESOURCE_EXHAUSTED, no QuotaFailure, no RetryInfo): its own
 * sentence first (google-errors.md), then variants of ours (other sentences, casing, extra lines).
 * One per kind is drawn per run (wordings.ts).
 */
export const MONEY_WORDINGS: Readonly<Record<MoneyKind, readonly string[]>> = {
  monthly_cap: [
    'Your project has exceeded its monthly spending cap. Please go to AI Studio at https://ai.studio/spend',
    'This project reached the monthly spend limit set for it. Raise the limit at https://ai.studio/spend to continue.',
    'YOUR PROJECT HAS EXCEEDED ITS MONTHLY SPENDING CAP.\nManage it in AI Studio: https://ai.studio/spend',
  ],
  billing_cap: [
    'Your billing account has exceeded its monthly spending cap. Please go to AI Studio at https://ai.studio/spend',
    'The billing account of this project has hit its monthly spend cap.',
    'Billing account spending cap reached for this month.\nAsk the account administrator to raise it.',
  ],
  credits_depleted: [
    'Your prepayment credits are depleted. Please go to AI Studio at https://ai.studio/projects to manage your project.',
    'Prepaid credit balance exhausted: add credits to keep using the API.',
    'YOUR PREPAID CREDITS HAVE RUN OUT.\nTop up the balance at https://ai.studio/projects',
  ],
};

/** A project out of money: the 429 Google sends, worded as drawn for the run. */
export function moneyExhausted(kind: MoneyKind, seed?: number): SimAnswer {
  return answer(429, 'RESOURCE_EXHAUSTED', pickWording(`money.${kind}`, MONEY_WORDINGS[kind], seed));
}

/** Google's 429 without details (googleapis/python-genai#2065: a Tier 1 user under every quota). */
export function bareResourceExhausted(): SimAnswer {
  return answer(429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).');
}
