// The hub's outputs in OpenAI's terms: an output's choice index, its text (thoughts left out), its
// tool calls as tool_calls, and its finish reason. A whole answer (answer.ts) and the chunk stream
// (chunks.ts) both say an output through these, so the two agree.
import type { HubFinish, HubPart } from "../../../_shared/upstream/hub.ts";

/** The hub's finish in OpenAI's words; a blocked prompt is filtered content too. */
export function finishReasonOf(
  finish: HubFinish | null,
  calledFunctions: boolean,
): "stop" | "length" | "tool_calls" | "content_filter" {
  if (finish?.reason === "max_tokens") return "length";
  if (finish?.reason === "content_filter" || finish?.reason === "prompt_blocked") return "content_filter";
  return calledFunctions ? "tool_calls" : "stop";
}

export function textOfParts(parts: readonly HubPart[]): string {
  let text = "";
  for (const part of parts) if (part.type === "text" && part.thought !== true) text += part.text;
  return text;
}

/**
 * Where Google's OpenAI-compatible endpoint puts a Gemini 3 thought signature: on a tool call, or on
 * the message (a delta when streamed) for a text answer's. Opaque to callers: they send it back.
 */
export interface GoogleExtra {
  extra_content?: { google: { thought_signature: string } };
}

export function googleExtra(signature: string | undefined): GoogleExtra {
  return signature === undefined ? {} : { extra_content: { google: { thought_signature: signature } } };
}

/** The signature of a text answer among some parts (Gemini 3 sends it with the text's last piece). */
export function textSignatureOf(parts: readonly HubPart[]): string | undefined {
  let signature: string | undefined;
  for (const part of parts) {
    if (part.type === "text" && part.thought !== true && part.signature !== undefined) signature = part.signature;
  }
  return signature;
}

export interface ToolCall extends GoogleExtra {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** The tool calls of some parts, numbered from `first` within their choice. */
export function toolCallsOf(parts: readonly HubPart[], requestId: string, choice: number, first: number): ToolCall[] {
  const calls: ToolCall[] = [];
  for (const part of parts) {
    if (part.type !== "tool_call") continue;
    const j = first + calls.length;
    calls.push({
      id: part.id !== undefined && part.id !== "" ? part.id : `call_${requestId}_${choice}_${j}`,
      type: "function",
      function: { name: part.name, arguments: JSON.stringify(part.args) },
      // Gemini 3 refuses the next turn without it: given to the caller to send back (messages.ts).
      ...googleExtra(part.signature),
    });
  }
  return calls;
}
