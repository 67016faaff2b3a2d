// The rest a provider's own counts ask for, as finalize takes it (FinalizeParams.room): what is left of
// the group's limits and when all of it is back. The database rests the model until then when no more
// is left than twice the group's other calls out since the answered one was admitted (on their way, or
// back), plus those admitted since it (google_ai_room_rest, read before the counter row is locked, in a
// batch too). A bucket's word (Anthropic's: `next`) is
// the rest itself: nothing left, in the buckets that do not hold the next request (requests, tokens: 0;
// the others null), until they do; nothing to rest for once they hold it. (Its request bucket's word
// alone, the database weighs against the gateway's own request bucket: what is left is rounded down.)
//
// The answered call's own caller: when the answer leaves before its finalize lands, that caller may be
// admitting its next call already, which the database cannot see until it commits. Where little is left
// (writeBeforeAnswer: the room at or below the margin), the finalize is written before the answer leaves,
// alone and at once (google_ai_finalize_call, as every success: committed, then flushed, so the counter
// row is not held through the flush), and the count is the provider's as it said it. Otherwise the answer goes first, the finalize
// with the other successes of its counter row (store/finalize-queue.ts), and what it says is left is the
// provider's less that next call (one request, and this call's booking): left for the others.
//
// The limits the answer states travel with it too (FinalizeParams.statedLimits: ProviderRoom.limits, or a
// Google 429's quota value), noted on the counter row by the database. On a row that follows its provider,
// an answer that states a limit below the one its booking counted against is written before it leaves
// (lowersFollowed), so the next admission counts against the lowered limit; a raise waits for two answers.
import type { FinalizeParams, QuotaSnapshot } from "../contract.ts";
import { type ProviderRoom, STATED_LIMIT_COLUMNS, type StatedLimits } from "../../_shared/upstream/port.ts";

/**
 * Where the provider's room is at or below this many of the answered call (requests; tokens: as many
 * of its booking), its finalize is written before the answer leaves. A caller alone needs it there: its
 * next call's finalize counts this one out twice while this one's write is not in, and its own next call
 * once; three then leave room for all it may send, to the last request the provider has.
 */
export const WRITE_BEFORE_ANSWER_CALLS = 3;

/**
 * Whether a success's finalize is written before its answer leaves: the provider's room says the model
 * may rest now (a bucket's word that it does not hold the next request), or is near it (a sliding window's
 * remaining counts within WRITE_BEFORE_ANSWER_CALLS of this call). `bookedTokens`: what this call booked.
 */
export function writeBeforeAnswer(
  room: ProviderRoom | null | undefined,
  bookedTokens: number,
  booked?: QuotaSnapshot | null,
): boolean {
  if (room == null) return false;
  if (lowersFollowed(room.limits, booked)) return true;
  if (room.next !== undefined) return room.next.requestsMs > 0 || room.next.tokensMs > 0;
  return (room.requests !== null && room.requests <= WRITE_BEFORE_ANSWER_CALLS) ||
    (room.tokens !== null && room.tokens <= WRITE_BEFORE_ANSWER_CALLS * Math.max(1, bookedTokens));
}

/**
 * Whether an answer states a limit below the one its booking followed (`booked`: the reservation's quota,
 * `followed` only on a row that follows its provider): a lowering the next admission must see, so its
 * finalize is written before the answer leaves. A figure the group had no statement of yet is weighed
 * against the limit the booking counted against (rpm, tpm, rpd; after the row's margin, so a stated
 * figure at the row's is no lowering). A row that keeps its own limits: never (the booking does not read them).
 */
export function lowersFollowed(stated: StatedLimits | undefined, booked: QuotaSnapshot | null | undefined): boolean {
  const followed = booked?.followed;
  if (stated === undefined || followed === undefined) return false;
  const counted: StatedLimits = {
    ...(booked!.rpm === null ? {} : { rpm: booked!.rpm }),
    ...(booked!.tpm === null ? {} : { tpm: booked!.tpm }),
    ...(booked!.rpd === null ? {} : { rpd: booked!.rpd }),
  };
  return STATED_LIMIT_COLUMNS.some((c) => {
    const now = stated[c];
    const before = followed[c] ?? counted[c];
    return now !== undefined && before !== undefined && now < before;
  });
}

/**
 * The room as finalize takes it. `answeredFirst`: the answer leaves before this write lands; what is
 * left is then the provider's less the answered caller's next call (its booking: this call's).
 */
export function roomUntil(
  room: ProviderRoom | null | undefined,
  now: number,
  answeredFirst?: { bookedTokens: number },
): FinalizeParams["room"] {
  if (room == null) return null;
  if (room.next !== undefined) {
    const { requestsMs, tokensMs } = room.next;
    if (requestsMs <= 0 && tokensMs <= 0) return null;
    return {
      requests: requestsMs > 0 ? 0 : null,
      tokens: tokensMs > 0 ? 0 : null,
      until: new Date(now + Math.max(requestsMs, tokensMs)),
    };
  }
  const less = (left: number | null, next: number) => left === null ? null : Math.max(0, left - next);
  return {
    requests: answeredFirst === undefined ? room.requests : less(room.requests, 1),
    tokens: answeredFirst === undefined ? room.tokens : less(room.tokens, answeredFirst.bookedTokens),
    until: new Date(now + room.resetMs),
  };
}
