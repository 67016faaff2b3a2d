// The hub's answer of an InvokeResult, which a route writes its caller's answer from: as the attempt
// loop gave it, or, for an answer stored for replay by an earlier release (Google's shape then, or
// only the gateway's fields), read through the Google dialect.
import type { HubAnswer } from "../../_shared/upstream/hub.ts";
import { hubAnswerOf } from "../../_shared/providers/google/answer.ts";
import type { InvokeResult } from "../attempt/context.ts";
import { geminiAnswerFor } from "./gemini/answer.ts";

export function hubOf(result: InvokeResult): HubAnswer {
  return result.hub ?? hubAnswerOf(geminiAnswerFor(result));
}
