// Redaction of secrets from any text that may be logged, stored in the audit log or returned.
// Applied to every error message we did not write ourselves (providers' bodies, exceptions), because
// upstream messages and stack traces can echo URLs, headers or connection strings.

export interface SanitizeOptions {
  /** Exact values to redact wherever they appear (e.g. the provider's key used for this attempt). */
  secrets?: readonly string[];
  /** Longest result in characters; longer text is cut and marked. */
  maxLength?: number;
}

export const REDACTED = "[redacted]";
export const DEFAULT_MAX_LENGTH = 1000;
const TRUNCATED = "…[truncated]";

// Order matters: specific shapes first, so that the generic `key=` rule does not eat half a key.
// Every quantifier that can be followed by a failing part is bounded, so no pattern backtracks over
// more than a few hundred characters from any starting point: the cost is linear in the input, and
// the input is cut before the patterns run (see sanitize).
const PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // Google API keys: "AIza" + 35 url-safe characters (matched loosely so that a cut key is caught too).
  [/AIza[0-9A-Za-z_-]{10,}/g, REDACTED],
  // OpenAI API keys: "sk-", then the key's kind (proj-, svcacct-, admin-) and its characters.
  [/\bsk-[0-9A-Za-z_-]{8,}/g, REDACTED],
  // Supabase secret keys, our scoped tokens (evegw_tok_) and Kaggle client secrets (evegw_cs_).
  [/sb_secret_[0-9A-Za-z_-]+/g, REDACTED],
  [/evegw_(?:tok|cs)_[0-9A-Za-z_-]+/g, REDACTED],
  // JWTs (legacy service_role/anon keys, user tokens): three base64url segments, header starts "eyJ".
  [/eyJ[0-9A-Za-z_-]{5,2048}\.[0-9A-Za-z_-]{5,8192}\.[0-9A-Za-z_-]*/g, REDACTED],
  // Passwords inside connection strings: scheme://user:password@host.
  [/([a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/@]{1,256}:)[^\s@/]{1,512}@/gi, `$1${REDACTED}@`],
  // Authorization headers of any scheme.
  [/\b(bearer|basic)\s{1,16}[^\s"',;]+/gi, `$1 ${REDACTED}`],
  // JSON fields and query/config assignments that name a secret: "apiKey":"...", key=..., token: ...
  [
    /("(?:[a-z_-]{0,64}key|[a-z_-]{0,64}token|secret|password|authorization)"\s{0,16}:\s{0,16}")[^"]*(")/gi,
    `$1${REDACTED}$2`,
  ],
  [
    /\b([a-z_-]{0,64}(?:key|token|secret|password))(\s{0,16}[=:]\s{0,16})(?!\[redacted\])[^\s"'&,;)}]+/gi,
    `$1$2${REDACTED}`,
  ],
];

/**
 * Characters kept beyond maxLength before redaction: a secret that straddles the final cut is still
 * seen whole by the patterns (the longest shape we redact is a JWT, well under this).
 */
const CUT_MARGIN = 12_288;

/** Returns `text` with secrets replaced by `[redacted]`, NUL bytes removed and length capped. */
export function sanitize(text: string, options: SanitizeOptions = {}): string {
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  // Cut first: whatever the caller sent, the patterns below only ever see a bounded text.
  let out = text.length > maxLength + CUT_MARGIN ? text.slice(0, maxLength + CUT_MARGIN) : text;
  // Known secrets first: they may not look like any pattern (e.g. simulator keys).
  for (const secret of options.secrets ?? []) {
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  // Postgres text columns reject NUL; other control characters are kept (newlines are useful).
  out = out.replaceAll("\u0000", "");
  if (out.length > maxLength || text.length > maxLength + CUT_MARGIN) {
    out = out.slice(0, Math.max(0, maxLength - TRUNCATED.length)) + TRUNCATED;
  }
  return out;
}

/** Message of an unknown thrown value, sanitized. Never includes the stack. */
export function sanitizeError(error: unknown, options: SanitizeOptions = {}): string {
  const message = error instanceof Error
    ? `${error.name}: ${error.message}`
    : typeof error === "string"
    ? error
    : safeJson(error);
  return sanitize(message, options);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
