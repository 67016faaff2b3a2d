// What the OpenAI surface's tests share: a fixed clock and request id, a chat body, parsing it through
// the surface with the default limits, catching the GatewayError a call throws, and an InvokeResult.
import { type GeminiAnswer, hubAnswerOf } from "../../../_shared/providers/google/answer.ts";
import type { InvokeResult } from "../../attempt/context.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest } from "../../contract.ts";
import { openAiSurface } from "../openai.ts";
import { type GoogleView, withGoogleView } from "../gemini/test-fixtures.ts";

export const NOW = 1_763_000_000_123;
export const REQUEST_ID = "req-1";

/** The request the surface reads, with what Google's translation would send of it beside (tests read both). */
export function parse(body: Record<string, unknown>, headers: Record<string, string> = {}): NormalizedRequest & GoogleView {
  return withGoogleView(openAiSurface.parse({ body, headers: new Headers(headers), limits: DEFAULT_REQUEST_LIMITS }));
}

export function chat(more: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: "gemini-2.5-flash", messages: [{ role: "user", content: "Hi" }], ...more };
}

export { refusal } from "../../../../../tests/support/refusal.ts";

export function ctx(request: NormalizedRequest = parse(chat())) {
  return { requestId: REQUEST_ID, request, now: NOW };
}

/** The fields an answer stored for replay by an earlier release may hold. */
export interface StoredEarlier {
  finish_reason?: string | null;
  response?: GeminiAnswer;
}

/** An InvokeResult whose hub answer is a Google answer's (the fixtures are written in Google's words). */
export function result(response: GeminiAnswer, more: Partial<InvokeResult> & StoredEarlier = {}): InvokeResult {
  return {
    text: "",
    model: "gemini-2.5-flash",
    key_alias: "k1",
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
    attempts: 1,
    waited_ms: 0,
    hub: hubAnswerOf(response),
    ...more,
  };
}
