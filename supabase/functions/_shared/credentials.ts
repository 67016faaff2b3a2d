// The shapes of Kaggle credentials, and minting a token. Both are 256 random bits in base64url
// (43 characters) behind a prefix that secret scanners can match:
//   evegw_cs_<43>   a client's long-lived secret (created by public.google_ai_create_client)
//   evegw_tok_<43>  a short-lived scoped token (minted by issue-kaggle-token)
// Only SHA-256 hex digests of either ever reach the database (auth.ts sha256Hex).
// No Deno globals: runs under Deno and Node (vitest).

export const CLIENT_SECRET_PREFIX = "evegw_cs_";
export const KAGGLE_TOKEN_PREFIX = "evegw_tok_";
export const CLIENT_SECRET_SHAPE = /^evegw_cs_[A-Za-z0-9_-]{43}$/;
export const KAGGLE_TOKEN_SHAPE = /^evegw_tok_[A-Za-z0-9_-]{43}$/;

/** Anything that looks like one of our credentials, even cut short, for redaction. */
const CREDENTIAL_ANYWHERE = /evegw_(?:cs|tok)_[A-Za-z0-9_-]*/g;

/** A new token: 32 bytes from the platform CSPRNG, base64url without padding. */
export function newKaggleToken(randomBytes: (n: number) => Uint8Array = cryptoRandomBytes): string {
  const bytes = randomBytes(32);
  if (bytes.length !== 32) throw new Error("newKaggleToken needs 32 random bytes");
  return KAGGLE_TOKEN_PREFIX + base64Url(bytes);
}

export function isClientSecret(value: string): boolean {
  return CLIENT_SECRET_SHAPE.test(value);
}

export function isKaggleToken(value: string): boolean {
  return KAGGLE_TOKEN_SHAPE.test(value);
}

/** Replaces every client secret or token in `text` (whole or partial) with [redacted]. */
export function redactCredentials(text: string): string {
  return text.replace(CREDENTIAL_ANYWHERE, "[redacted]");
}

function cryptoRandomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
