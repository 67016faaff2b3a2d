// The rest a provider's own counts ask for, as finalize takes it (FinalizeParams.room): what is left of
// the group's limits and when all of it is back. The database rests the model until then when no more
// is left than is already on its way (google_ai_settle_call). A bucket's word (Anthropic's: nextMs) is
// the rest itself: nothing left until its buckets hold the next request, nothing to rest for once they do.
import type { FinalizeParams } from "../contract.ts";
import type { ProviderRoom } from "../../_shared/upstream/port.ts";

export function roomUntil(room: ProviderRoom | null | undefined, now: number): FinalizeParams["room"] {
  if (room == null) return null;
  if (room.nextMs !== undefined) {
    return room.nextMs > 0 ? { requests: 0, tokens: 0, until: new Date(now + room.nextMs) } : null;
  }
  return { requests: room.requests, tokens: room.tokens, until: new Date(now + room.resetMs) };
}
