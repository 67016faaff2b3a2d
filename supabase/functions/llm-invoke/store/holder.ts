// The holder's deadlines: what each reservation statement tells the database about the invocation
// that sends it, so that a claim nobody holds is known as such within seconds
// (supabase/schemas/30_reservation.sql):
//   reply_by    when this invocation stops waiting for the statement's answer (its database deadline,
//               less a margin for clock skew and the commit's way back). A reservation the database
//               would commit later is rolled back: a 503 before Google never calls Google.
//   hold_until  (a request the caller named: it has a claim)
//               when it will have sent its next reservation statement about the request, or be gone,
//               plus two database deadlines (the finalize between, and that statement's own): the
//               request's in-flight claim is held until then, and each reservation statement renews
//               it (a wait in line is held by the queue ticket's lease).
// Sent as the reservation's p_reply_by and p_hold_until (google_ai_reserve_models); the database
// carries them to the attempt row under the metadata key "$holder", overwriting a caller's own key
// of that name, and takes it out before the row is stored.

/** At most this much of the database deadline is kept between reply_by and the moment the caller gives up. */
const REPLY_MARGIN_MS = 1_000;

export interface HolderTimes {
  reply_by: string;
  /** Absent for a request the caller did not name: it has no claim to hold. */
  hold_until?: string;
}

/**
 * The times of a reservation statement started at `startedAt` (epoch ms) under a database deadline of
 * `deadlineMs`, by an invocation that will send its next reservation statement by `nextContactBy`.
 */
export function holderTimes(startedAt: number, deadlineMs: number, nextContactBy: number | null): HolderTimes {
  const replyBy = startedAt + deadlineMs - Math.min(REPLY_MARGIN_MS, Math.floor(deadlineMs / 4));
  if (nextContactBy === null) return { reply_by: new Date(replyBy).toISOString() };
  const holdUntil = Math.max(replyBy, nextContactBy + 2 * deadlineMs);
  return { reply_by: new Date(replyBy).toISOString(), hold_until: new Date(holdUntil).toISOString() };
}

/**
 * When an invocation admitted now will have sent its next reservation statement about the request:
 * after the time an admission allows (`afterAdmissionMs`: the call to Google, its finalize, a backoff,
 * or Google's count of the input after a refusal), never after the invocation's end. A wait for a
 * turn in line needs no allowance here: the queue ticket's lease holds the claim meanwhile.
 */
export function nextContactBy(now: number, afterAdmissionMs: number, invocationEnd: number): number {
  return Math.min(invocationEnd, now + afterAdmissionMs);
}

/**
 * How long after an admission the invocation may go before its next statement: the call to Google
 * (a stream's runs to the invocation's end), an error outcome's finalize tries, the longest backoff.
 */
export function afterAdmissionMs(
  options: { attemptTimeoutMs: number; backoffBaseMs: number; jitterMs: number },
  stream: boolean,
  maxAttempts: number,
  errorOutcomeBudgetMs: number,
): number {
  if (stream) return Number.POSITIVE_INFINITY;
  const longestBackoff = options.backoffBaseMs * 2 ** (maxAttempts - 1) + options.jitterMs;
  return options.attemptTimeoutMs + errorOutcomeBudgetMs + longestBackoff;
}
