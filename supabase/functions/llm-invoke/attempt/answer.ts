// The answer's shape: who served (the model and its provider, why a fallback served, the key, the
// calls made) and, for a whole answer, what it says and what it cost.
import type { Reservation } from "../contract.ts";
import type { Provider } from "../../_shared/providers/registry.ts";
import type { HubUsage } from "../../_shared/upstream/hub.ts";
import { answerUsage, type InvokeResult } from "./context.ts";
import type { AnswerParts } from "./operation.ts";
import { fallbackSteps } from "./refusals.ts";

/** Who served: the model and its provider, why a fallback served, the key, the calls made. */
export function headOf(requestedModel: string, reservation: Reservation, attempts: number, provider: Provider) {
  // A fallback served: the answer says what was asked for and why each model before it was passed over.
  const passedOver = (reservation.fallbackFrom ?? []).filter((s) => s.model !== reservation.model);
  const fallback = reservation.model === requestedModel
    ? {}
    : { requested_model: requestedModel, fallback_from: fallbackSteps(passedOver) };
  return { model: reservation.model, provider, ...fallback, key_alias: reservation.keyAlias, attempts };
}

/**
 * The whole answer: its parts, who served (`head`), its usage (the provider's count, else the input as
 * estimated and booked) and the time it waited for its turn.
 */
export function answerOf(
  parts: AnswerParts,
  usage: HubUsage | null,
  head: ReturnType<typeof headOf>,
  inputTokens: number,
  waitedMs: number,
): InvokeResult {
  const { model, key_alias, ...rest } = head;
  const { text, ...answered } = parts;
  return {
    text,
    model,
    ...rest,
    key_alias,
    usage: answerUsage(usage, inputTokens),
    waited_ms: waitedMs,
    ...answered,
  };
}
