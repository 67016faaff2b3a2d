// Only a whole answer is stored: every output ended by `stop`, `max_tokens` (the cap the same request
// asks again) or `tool_call` (the calls are the answer; the caller runs them), at least one output, and
// text or a call in it. Never an answer the provider blocked (the prompt refused, or an output cut by
// its filter: `content_filter`), a refusal (Anthropic's `refusal` is `content_filter`; OpenAI's
// `refusal` text is marked so in the hub), an `other` ending (recitation, a malformed call), an error, or a stream that broke off (its answer is never whole). Several outputs
// (n > 1) are stored together, as one answer, when each of them is whole.
import type { FinishReason, HubAnswer } from "../../_shared/upstream/hub.ts";

export const STORED_FINISH_REASONS: readonly FinishReason[] = ["stop", "max_tokens", "tool_call"];

/** The first output's finish when the answer may be stored; null when it may not. */
export function storableFinish(answer: HubAnswer | undefined): FinishReason | null {
  if (answer === undefined || answer.promptBlocked !== undefined || answer.outputs.length === 0) return null;
  for (const output of answer.outputs) {
    if (output.finish === null || !STORED_FINISH_REASONS.includes(output.finish.reason)) return null;
    if (output.parts.some((p) => p.type === "text" && p.refusal === true)) return null;
    if (!output.parts.some((p) => p.type === "tool_call" || (p.type === "text" && p.thought !== true))) return null;
  }
  return answer.outputs.find((o) => o.index === 0)?.finish?.reason ?? answer.outputs[0]!.finish!.reason;
}
