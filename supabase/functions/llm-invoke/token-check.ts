// A scoped token is checked before its request body is read: an unknown, revoked or expired token is
// refused after one indexed look-up (google_ai_check_token), never after a body read, a parse and a
// reservation. Answers are kept per worker for a few seconds, so a valid caller pays no extra round
// trip in steady state and a refused token costs at most one look-up per TTL. Refusals answered from
// the cache are handed to the next look-up, which counts them in the database's aggregate row.
// The reservation still validates the token in its own transaction (a revocation takes effect there).
import { GatewayError } from "../_shared/errors.ts";

export type TokenStatus = "ok" | "token_invalid" | "token_expired" | "token_revoked";

export interface TokenCheck {
  status: TokenStatus;
  /** For a valid token: the most output tokens one request of its client may ask for. */
  maxOutputTokens?: number;
  /** For a valid token: the models it may use (canonical ids). */
  models?: readonly string[];
}

export interface TokenChecker {
  /** One round trip: the token's status; a refusal is counted `refusals` times. */
  checkToken(tokenHash: string, refusals: number): Promise<TokenCheck>;
}

export interface TokenCheckCacheOptions {
  okTtlMs: number;
  refusedTtlMs: number;
  maxEntries: number;
  now: () => number;
}

export const DEFAULT_TOKEN_CHECK_CACHE: TokenCheckCacheOptions = {
  okTtlMs: 30_000,
  refusedTtlMs: 10_000,
  maxEntries: 1_000,
  now: () => Date.now(),
};

interface Entry {
  at: number;
  check: TokenCheck;
  /** Refusals answered from this entry, not yet counted by the database. */
  uncounted: number;
}

/** The checker behind a bounded per-worker cache of recent answers (positive and negative). */
export function cachedTokenCheck(
  checker: TokenChecker,
  options: Partial<TokenCheckCacheOptions> = {},
): (tokenHash: string) => Promise<TokenCheck> {
  const o = { ...DEFAULT_TOKEN_CHECK_CACHE, ...options };
  const cache = new Map<string, Entry>();
  return async (tokenHash) => {
    const hit = cache.get(tokenHash);
    const ttl = hit?.check.status === "ok" ? o.okTtlMs : o.refusedTtlMs;
    if (hit !== undefined && o.now() - hit.at < ttl) {
      if (hit.check.status !== "ok") hit.uncounted++;
      return hit.check;
    }
    const check = await checker.checkToken(tokenHash, 1 + (hit?.uncounted ?? 0));
    cache.delete(tokenHash);
    // Bounded: the oldest entry goes first (a Map iterates in insertion order).
    if (cache.size >= o.maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(tokenHash, { at: o.now(), check, uncounted: 0 });
    return check;
  };
}

/** The answer to a token that can never be admitted. */
export function tokenStatusError(status: Exclude<TokenStatus, "ok">): GatewayError {
  switch (status) {
    case "token_invalid":
      return new GatewayError("token_invalid", "Unknown token: get one from issue-kaggle-token.");
    case "token_expired":
      return new GatewayError("token_expired", "The token has expired: get a new one from issue-kaggle-token.");
    case "token_revoked":
      return new GatewayError("token_revoked", "The token or its client has been revoked.");
  }
}
