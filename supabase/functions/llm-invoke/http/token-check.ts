// A scoped token is checked before its request body is read: an unknown, revoked or expired token is
// refused after one indexed look-up (google_ai_check_token), never after a body read, a parse and a
// reservation. Answers are kept per worker, so a refused token costs at most one look-up per TTL and a
// valid caller's requests make no extra round trip: a valid answer older than its TTL still answers,
// for a while (okStaleMs), while one look-up refreshes it in the background (stale-while-revalidate);
// only a token's first request in a worker, or one after a long pause, waits for the look-up.
// Serving a valid answer late is safe: the reservation validates the token in its own transaction, so
// a revocation or an expiry takes effect there (the request gets the same 401), and the refresh then
// caches the refusal. A background look-up is made for no request, so it counts no refusal; refusals
// answered from the cache are handed to the next look-up, which counts them in the aggregate row.
import type { TokenCheck, TokenChecker } from "../store/store.ts";

export interface TokenCheckCacheOptions {
  /** A valid answer is fresh this long. */
  okTtlMs: number;
  /** Then, this much longer, it still answers while one background look-up refreshes it. */
  okStaleMs: number;
  refusedTtlMs: number;
  maxEntries: number;
  now: () => number;
}

export const DEFAULT_TOKEN_CHECK_CACHE: TokenCheckCacheOptions = {
  okTtlMs: 30_000,
  okStaleMs: 60_000,
  refusedTtlMs: 10_000,
  maxEntries: 1_000,
  now: () => Date.now(),
};

interface Entry {
  at: number;
  check: TokenCheck;
  /** Refusals answered from this entry, not yet counted by the database. */
  uncounted: number;
  /** A background look-up of this token is under way. */
  refreshing: boolean;
}

/** The checker behind a bounded per-worker cache of recent answers (positive and negative). */
export function cachedTokenCheck(
  checker: TokenChecker,
  options: Partial<TokenCheckCacheOptions> = {},
): (tokenHash: string) => Promise<TokenCheck> {
  const o = { ...DEFAULT_TOKEN_CHECK_CACHE, ...options };
  const cache = new Map<string, Entry>();

  function remember(tokenHash: string, check: TokenCheck): void {
    cache.delete(tokenHash);
    // Bounded: the oldest entry goes first (a Map iterates in insertion order).
    if (cache.size >= o.maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(tokenHash, { at: o.now(), check, uncounted: 0, refreshing: false });
  }

  /** One look-up for no request; a failure keeps the entry (a later request tries again). */
  function refresh(tokenHash: string, entry: Entry): void {
    entry.refreshing = true;
    new Promise<TokenCheck>((resolve) => resolve(checker.checkToken(tokenHash, 0))).then(
      (check) => {
        if (cache.get(tokenHash) === entry) remember(tokenHash, check);
      },
      () => {
        entry.refreshing = false;
      },
    );
  }

  return async (tokenHash) => {
    const hit = cache.get(tokenHash);
    if (hit !== undefined) {
      const age = o.now() - hit.at;
      if (hit.check.status === "ok") {
        if (age < o.okTtlMs) return hit.check;
        if (age < o.okTtlMs + o.okStaleMs) {
          if (!hit.refreshing) refresh(tokenHash, hit);
          return hit.check;
        }
      } else if (age < o.refusedTtlMs) {
        hit.uncounted++;
        return hit.check;
      }
    }
    const check = await checker.checkToken(tokenHash, 1 + (hit?.uncounted ?? 0));
    remember(tokenHash, check);
    return check;
  };
}
