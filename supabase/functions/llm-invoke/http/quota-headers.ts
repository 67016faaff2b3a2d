// The quota an answer reports, as the rate-limit headers OpenAI-style clients already parse:
//   x-ratelimit-limit-requests / -remaining-requests / -reset-requests       the sliding minute (RPM)
//   x-ratelimit-limit-tokens   / -remaining-tokens   / -reset-tokens         the sliding minute (TPM)
//   x-ratelimit-limit-requests-day / -remaining-requests-day / -reset-requests-day   the provider's day (RPD)
// Limits are the effective ones (after the safety margin) of one quota group; a limit the model does
// not have is left out with its two companions. A reset is the time until the remaining figure next
// grows, written as OpenAI writes it (Go's duration format at millisecond resolution: "12ms", "1s",
// "59.5s", "6m0s", "7h3m0.25s").
// What reserved shares keep of the same limits (the default share of the `interactive` class, any
// other share row), for the class the answer names, only where a share keeps something:
//   x-ratelimit-kept-others-requests / -requests-day   kept for other owners: this caller books only
//                                                      what their unused part leaves over
//   x-ratelimit-kept-own-requests    / -requests-day   kept for this caller's class (or for itself)
import type { QuotaSnapshot } from "../contract.ts";

export function quotaHeaders(q: QuotaSnapshot): Record<string, string> {
  const headers: Record<string, string> = {};
  const add = (suffix: string, limit: number | null, left: number | null, resetMs: number | null) => {
    if (limit === null) return;
    headers[`x-ratelimit-limit-${suffix}`] = String(limit);
    headers[`x-ratelimit-remaining-${suffix}`] = String(Math.max(0, left ?? 0));
    headers[`x-ratelimit-reset-${suffix}`] = formatResetDuration(resetMs ?? 0);
  };
  add("requests", q.rpm, q.requestsLeft, q.requestsResetMs);
  add("tokens", q.tpm, q.tokensLeft, q.tokensResetMs);
  add("requests-day", q.rpd, q.dayLeft, q.dayResetMs);
  const kept = (name: string, requests: number | null | undefined) => {
    if (requests != null && requests > 0) headers[`x-ratelimit-${name}`] = String(requests);
  };
  kept("kept-others-requests", q.kept?.rpmForOthers);
  kept("kept-own-requests", q.kept?.rpmForYou);
  kept("kept-others-requests-day", q.kept?.rpdForOthers);
  kept("kept-own-requests-day", q.kept?.rpdForYou);
  return headers;
}

/** Milliseconds as Go's time.Duration prints them (what OpenAI's reset headers use), to the millisecond. */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const millis = total % 60_000;
  const seconds = `${Math.floor(millis / 1000)}${
    millis % 1000 === 0 ? "" : `.${String(millis % 1000).padStart(3, "0").replace(/0+$/, "")}`
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/** The reverse, for tests and clients: "6m0s" → 360000, "12ms" → 12; null if it is not a duration. */
export function parseResetDuration(text: string): number | null {
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(text.trim());
  if (m === null || text.trim() === "" || m.slice(1).every((g) => g === undefined)) return null;
  const [, h, min, s, msPart] = m;
  return Math.round(
    Number(h ?? 0) * 3_600_000 + Number(min ?? 0) * 60_000 + Number(s ?? 0) * 1000 + Number(msPart ?? 0),
  );
}
