// The hub's answer of an InvokeResult, which a route writes its caller's answer from: as the attempt
// loop gave it, or, for an answer stored for replay by an earlier release (Google's shape then, under
// `response`, or only the gateway's fields before that), read through the Google dialect, the one
// those releases spoke.
import type { HubAnswer } from "../../../_shared/upstream/hub.ts";
import { earlierStoredAnswer, GOOGLE_DIALECT, hubAnswerOf } from "../../../_shared/providers/google/answer.ts";
import type { InvokeResult } from "../../attempt/context.ts";

export function hubOf(result: InvokeResult): HubAnswer {
  if (result.hub !== undefined) return result.hub;
  return hubAnswerOf(
    result.dialectAnswer?.dialect === GOOGLE_DIALECT ? result.dialectAnswer.body : earlierStoredAnswer(result),
  );
}
