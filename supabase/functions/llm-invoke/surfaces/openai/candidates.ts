// Google's candidates in OpenAI's terms: a candidate's choice index, its text (thoughts left out), its
// function calls as tool_calls, and its finish reason. A whole answer (answer.ts) and the chunk stream
// (chunks.ts) both say a candidate through these, so the two agree.
import type { UpstreamAnswer } from "../../../_shared/upstream/shapes.ts";
import { isObject } from "./checks.ts";

export interface RawPart {
  text?: unknown;
  thought?: unknown;
  thoughtSignature?: unknown;
  functionCall?: { name?: unknown; args?: unknown; id?: unknown };
}
export interface RawCandidate {
  index?: unknown;
  content?: { parts?: RawPart[] };
  finishReason?: unknown;
}

const FILTERED = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
]);

/** Google's finishReason in OpenAI's words; a blocked prompt (BLOCKED_<reason>) is filtered content too. */
export function finishReasonOf(
  reason: unknown,
  calledFunctions: boolean,
): "stop" | "length" | "tool_calls" | "content_filter" {
  if (reason === "MAX_TOKENS") return "length";
  if (typeof reason === "string" && (FILTERED.has(reason) || reason.startsWith("BLOCKED_"))) return "content_filter";
  return calledFunctions ? "tool_calls" : "stop";
}

export function candidatesOf(response: UpstreamAnswer): RawCandidate[] {
  return Array.isArray(response.candidates) ? response.candidates as RawCandidate[] : [];
}

export function indexOf(candidate: RawCandidate, position: number): number {
  return typeof candidate.index === "number" ? candidate.index : position;
}

export function textOfParts(parts: readonly RawPart[]): string {
  let text = "";
  for (const part of parts) if (typeof part.text === "string" && part.thought !== true) text += part.text;
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
export function textSignatureOf(parts: readonly RawPart[]): string | undefined {
  let signature: string | undefined;
  for (const part of parts) {
    if (typeof part.text === "string" && part.thought !== true && typeof part.thoughtSignature === "string") {
      signature = part.thoughtSignature;
    }
  }
  return signature;
}

export interface ToolCall extends GoogleExtra {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** The function calls of some parts, numbered from `first` within their choice. */
export function toolCallsOf(parts: readonly RawPart[], requestId: string, choice: number, first: number): ToolCall[] {
  const calls: ToolCall[] = [];
  for (const part of parts) {
    const call = part.functionCall;
    if (!isObject(call) || typeof call.name !== "string") continue;
    const j = first + calls.length;
    calls.push({
      id: typeof call.id === "string" && call.id !== "" ? call.id : `call_${requestId}_${choice}_${j}`,
      type: "function",
      function: { name: call.name, arguments: JSON.stringify(call.args ?? {}) },
      // Gemini 3 refuses the next turn without it: given to the caller to send back (messages.ts).
      ...googleExtra(typeof part.thoughtSignature === "string" ? part.thoughtSignature : undefined),
    });
  }
  return calls;
}
