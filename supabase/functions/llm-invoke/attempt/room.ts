// The rest a provider's own counts ask for, as finalize takes it (FinalizeParams.room): what is left of
// the group's limits and when all of it is back. The database rests the model until then when no more
// is left than twice the group's other calls out since the answered one was admitted (on their way, or
// back), plus the answered one and those admitted since it (google_ai_settle_call). A bucket's word
// (Anthropic's: `next`) is the rest itself: nothing left, in the buckets that do not hold the next request
// (requests, tokens: 0; the others null), until they do; nothing to rest for once they hold it. (Its
// request bucket's word alone, the database weighs against the gateway's own request bucket: what is
// left is rounded down.)
import type { FinalizeParams } from "../contract.ts";
import type { ProviderRoom } from "../../_shared/upstream/port.ts";

export function roomUntil(room: ProviderRoom | null | undefined, now: number): FinalizeParams["room"] {
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
  return { requests: room.requests, tokens: room.tokens, until: new Date(now + room.resetMs) };
}
