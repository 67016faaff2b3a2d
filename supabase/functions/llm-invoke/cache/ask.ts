// What a request asks of the response cache, read from its headers on every route (the SDKs send extra
// headers: OpenAI's defaultHeaders / extra_headers, google-genai's httpOptions.headers, Anthropic's):
//   x-eve-cache: on        read a stored answer, else call and store the whole answer
//                refresh   do not read; call and store (replaces the entry)
//                no-store  neither read nor store (the owner's default does not apply)
//   (absent)              the owner's default for the client and model (google_ai_response_cache_defaults), if any
//   x-eve-cache-ttl: <s>  the lifetime of what is stored, in seconds (capped by the settings' max_ttl)
// Anything else is a 400 invalid_request naming the header: a typo must not silently call the provider.
import { GatewayError } from "../../_shared/errors.ts";

export type CacheMode = "on" | "refresh" | "no-store" | "default";

export interface CacheAsk {
  mode: CacheMode;
  /** Seconds; absent: the settings' default_ttl (or the owner's default row's). */
  ttlS?: number;
}

export const CACHE_HEADER = "x-eve-cache";
export const CACHE_TTL_HEADER = "x-eve-cache-ttl";
const MODES: readonly CacheMode[] = ["on", "refresh", "no-store"];
/** A year: longer is refused as a typo (the settings cap it lower anyway). */
const MAX_TTL_S = 31_536_000;

export function cacheAskOf(headers: Headers): CacheAsk {
  const raw = headers.get(CACHE_HEADER)?.trim().toLowerCase();
  const mode = raw === undefined || raw === "" ? "default" : raw;
  if (mode !== "default" && !MODES.includes(mode as CacheMode)) {
    throw new GatewayError("invalid_request", `${CACHE_HEADER} must be one of ${MODES.join(", ")}.`, {
      details: { field: CACHE_HEADER },
    });
  }
  const ttl = headers.get(CACHE_TTL_HEADER)?.trim();
  if (ttl === undefined || ttl === "") return { mode: mode as CacheMode };
  const seconds = Number(ttl);
  if (!/^\d+$/.test(ttl) || seconds < 1 || seconds > MAX_TTL_S) {
    throw new GatewayError("invalid_request", `${CACHE_TTL_HEADER} must be whole seconds from 1 to ${MAX_TTL_S}.`, {
      details: { field: CACHE_TTL_HEADER },
    });
  }
  return { mode: mode as CacheMode, ttlS: seconds };
}

/**
 * What the answer says of the cache: `hit` (served from it, `ageS` old, no provider called), `stored`
 * (called; the whole answer is kept), `miss` (called; not kept: not whole, or a stream, whose answer is
 * kept when it ends whole), `bypass` (the cache was not asked, or could not be used for this caller).
 */
export interface CacheReport {
  status: "hit" | "miss" | "stored" | "bypass";
  ageS?: number;
}

export function cacheHeaders(report: CacheReport): Record<string, string> {
  return {
    "x-eve-cache-status": report.status,
    ...(report.ageS === undefined ? {} : { "x-eve-cache-age": String(report.ageS) }),
  };
}
