// Waiting in the admission queue: a pure rule. A WAIT refusal that carries a ticket names the exact
// time this request's turn comes (the database counted every ticket ahead of it); the waiter sleeps
// until then, holding no connection, and calls again with its ticket. No jitter: the queue, not a
// race, decides who goes next, so waking together does no harm. A refusal without a ticket is final:
// the database found the turn beyond the caller's wait, or the limit is not one that waiting lifts,
// and said when instead.
import type { Refusal } from "../contract.ts";

/** Kept back from the wait left when the database is told it: the round trip itself takes time. */
export const ROUND_TRIP_ALLOWANCE_MS = 100;

export type TurnDecision = { wait: true; sleepMs: number; ticket: string } | { wait: false };

export function nextTurn(refusal: Pick<Refusal, "queue" | "retryAfterMs">, remainingMs: number): TurnDecision {
  const queue = refusal.queue;
  if (queue === undefined || queue === null || refusal.retryAfterMs === null) return { wait: false };
  if (remainingMs <= 0 || refusal.retryAfterMs > remainingMs) return { wait: false };
  return { wait: true, sleepMs: refusal.retryAfterMs, ticket: queue.ticket };
}

/** What the database is told of the caller's wait: what is left of it, less the round trip. */
export function waitLeftForDatabase(remainingMs: number): number {
  return Math.max(0, Math.floor(remainingMs - ROUND_TRIP_ALLOWANCE_MS));
}
