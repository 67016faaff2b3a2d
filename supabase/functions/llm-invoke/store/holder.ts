// The holder's deadlines: what each reservation statement tells the database about the invocation
// that sends it, so that a claim nobody holds is known as such within seconds
// (supabase/schemas/55_claims.sql):
//   reply_by    when this invocation stops waiting for the statement's answer (its database deadline,
//               less a margin for clock skew and the commit's way back). Whatever the statement would
//               commit later (a reservation, a refusal, a queue ticket) is rolled back: a 503 before
//               any call never calls the provider and leaves nothing behind.
//   holder      (a request the caller named: it has a claim) the invocation's own id: only its
//               statements renew the claim, only its end of request ends it, only its success turns
//               it into the stored answer.
//   hold_until  (the same) the invocation's end plus two database deadlines: once an admission may
//               have reached a provider, a success's finalize retries until the invocation's end
//               (attempt/finalize.ts), and its last try may take one deadline to be answered and one
//               more to commit. The claim is held until then, or while the request holds a live
//               ticket in the admission queue.
// Sent as the reservation's p_reply_by, p_hold_until and p_holder (google_ai_reserve_models); the
// database holds them as fields of the request record (google_ai_request), which every attempt row
// and queue ticket of the statement carries.

import type { ClaimHolder } from "../contract.ts";

/** At most this much of the database deadline is kept between reply_by and the moment the caller gives up. */
const REPLY_MARGIN_MS = 1_000;

export interface HolderTimes {
  reply_by: string;
  /** Absent for a request the caller did not name: it has no claim to hold. */
  hold_until?: string;
  holder?: string;
}

/**
 * The times of a reservation statement started at `startedAt` (epoch ms) under a database deadline of
 * `deadlineMs`, by the invocation `claim` (null: a request the caller did not name).
 */
export function holderTimes(startedAt: number, deadlineMs: number, claim: ClaimHolder | null): HolderTimes {
  const replyBy = startedAt + deadlineMs - Math.min(REPLY_MARGIN_MS, Math.floor(deadlineMs / 4));
  if (claim === null) return { reply_by: new Date(replyBy).toISOString() };
  const holdUntil = Math.max(replyBy, claimEnd(claim.invocationEnd, deadlineMs));
  return {
    reply_by: new Date(replyBy).toISOString(),
    hold_until: new Date(holdUntil).toISOString(),
    holder: claim.id,
  };
}

/**
 * Until when an invocation ending at `invocationEnd` holds its request's claim: the last finalize
 * try starts by the end, and is answered (one deadline) and committed (one more) within two.
 */
export function claimEnd(invocationEnd: number, deadlineMs: number): number {
  return invocationEnd + 2 * deadlineMs;
}
