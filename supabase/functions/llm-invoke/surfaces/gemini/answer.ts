// An answer in Google's generateContent shape, for the routes that answer in it (Gemini's own, and the
// native route's finish_reason and candidates): Google's own answer where a provider of its dialect
// served (pass-through), else the hub's answer said in Google's words (the Google dialect's
// geminiAnswerOf). An answer stored for replay by an earlier release is read as it was
// (earlierStoredAnswer).
import {
  earlierStoredAnswer,
  type GeminiAnswer,
  geminiAnswerOf,
  GOOGLE_DIALECT,
} from "../../../_shared/providers/google/answer.ts";
import type { InvokeResult } from "../../attempt/context.ts";
import { withUsageMarked } from "../shared/cache-mark.ts";

/** The answer in Google's shape; a response-cache hit says so in its usageMetadata (shared/cache-mark.ts). */
export function geminiAnswerFor(result: InvokeResult): GeminiAnswer {
  return withUsageMarked(geminiAnswerOfResult(result) as Record<string, unknown>, "usageMetadata", result) as GeminiAnswer;
}

function geminiAnswerOfResult(result: InvokeResult): GeminiAnswer {
  if (result.dialectAnswer?.dialect === GOOGLE_DIALECT) return result.dialectAnswer.body;
  if (result.hub !== undefined) return geminiAnswerOf(result.hub);
  return earlierStoredAnswer(result);
}
