// How long a provider's money refusal rests its quota group (every model of it), and so the Retry-After
// of the refusal: an hour (MONEY_REST_MS), after which one call asks the provider again; but a monthly
// cap (the project's, monthly_cap; the billing account's, billing_cap) lifts when the month turns, so
// its rest ends no later than that, in the zone the provider's day turns in (its row's day_zone:
// Pacific for Google, UTC for OpenAI and Anthropic). Empty prepaid credits (credits_depleted) do not
// refill with the month: an hour.
import { isOneOf, MONEY_CAUSES, MONEY_REST_MS, type MoneyCause } from "../../_shared/vocabulary.ts";
import type { UpstreamError } from "../../_shared/upstream/port.ts";

/** The causes the month's turn lifts. */
const MONTHLY: readonly MoneyCause[] = ["monthly_cap", "billing_cap"];

export function moneyRestMs(cause: MoneyCause, now: number, dayZone: string): number {
  if (!MONTHLY.includes(cause)) return MONEY_REST_MS;
  return Math.max(1000, Math.min(MONEY_REST_MS, monthTurnAfter(now, dayZone) - now));
}

/** The moment the month after `at`'s begins in `zone` (an IANA name). */
export function monthTurnAfter(at: number, zone: string): number {
  const { year, month } = partsIn(at, zone);
  // Midnight of the next month's first day as if the zone were UTC, moved by the zone's offset then.
  const naive = Date.UTC(year, month, 1); // `month` is 1-based: Date.UTC's index of the next month
  const guess = naive - offsetMs(naive, zone);
  return naive - offsetMs(guess, zone);
}

function partsIn(at: number, zone: string): Record<"year" | "month" | "day" | "hour" | "minute" | "second", number> {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  });
  const parts = Object.fromEntries(format.formatToParts(new Date(at)).map((p) => [p.type, Number(p.value)]));
  return parts as Record<"year" | "month" | "day" | "hour" | "minute" | "second", number>;
}

/** How far `zone`'s wall clock is ahead of UTC at `at`. */
function offsetMs(at: number, zone: string): number {
  const p = partsIn(at, zone);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(at / 1000) * 1000;
}

/**
 * A provider's money refusal, its wait the rest's end (`restUntil`, what finalize rests the group until):
 * the caller is told when the provider is asked again, not the provider's own delay. Other errors as they are.
 */
export function moneyRested(error: UpstreamError, restUntil: Date | null, now: number): UpstreamError {
  const money = error.class === "rate_limited" && error.quotaCause !== null && isOneOf(MONEY_CAUSES, error.quotaCause);
  return money && restUntil !== null ? { ...error, retryAfterMs: restUntil.getTime() - now } : error;
}
