// An answer in Google's generateContent shape, for the routes that answer in it (Gemini's own, and the
// native route's finish_reason and candidates): Google's own answer where a provider of its dialect
// served (pass-through), else the hub's answer said in Google's words (the Google dialect's
// geminiAnswerOf). An answer stored for replay by an earlier release keeps Google's shape under
// `response`, or only the gateway's fields before that: both read as they were.
import { type GeminiAnswer, geminiAnswerOf, GOOGLE_DIALECT } from "../../../_shared/providers/google/answer.ts";
import type { InvokeResult } from "../../attempt/context.ts";

/** The fields of an answer stored for replay by an earlier release. */
interface StoredEarlier {
  response?: GeminiAnswer;
  finish_reason?: string | null;
  candidates?: unknown[];
}

export function geminiAnswerFor(result: InvokeResult): GeminiAnswer {
  if (result.dialectAnswer?.dialect === GOOGLE_DIALECT) return result.dialectAnswer.body;
  if (result.hub !== undefined) return geminiAnswerOf(result.hub);
  const earlier = result as InvokeResult & StoredEarlier;
  if (earlier.response !== undefined) return earlier.response;
  return {
    candidates: earlier.candidates ?? [{
      content: { role: "model", parts: [{ text: result.text }] },
      ...(earlier.finish_reason == null ? {} : { finishReason: earlier.finish_reason }),
      index: 0,
    }],
    usageMetadata: {
      promptTokenCount: result.usage.prompt_tokens,
      candidatesTokenCount: result.usage.completion_tokens,
      totalTokenCount: result.usage.total_tokens,
    },
    modelVersion: result.model,
  };
}
