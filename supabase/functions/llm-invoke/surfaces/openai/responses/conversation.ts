// What a stored response keeps of its conversation, and how a follow-up (previous_response_id)
// continues it: the turns in the hub's words (its input as the model was sent it, then the answer's
// own turn, tool calls with the ids the caller saw), so any model, of any provider, can be sent the
// whole. The model's thoughts are left out (they are no turn), its signatures kept (Gemini 3 wants
// them back with the calls they came with). Instructions are not carried over, as OpenAI's are not.
import type { HubMessage, HubPart } from "../../../../_shared/upstream/hub.ts";
import { isObject } from "../../../../_shared/json.ts";
import type { InvokeResult } from "../../../attempt/context.ts";
import { hubOf } from "../../shared/stored-answer.ts";
import { invalid } from "../checks.ts";
import { withCallIds } from "./answer.ts";
import type { ResponsesRequest } from "./request.ts";

export interface Conversation {
  messages: HubMessage[];
  /** The estimate of its inline images (an image's tokens are not in its text). */
  imageTokens: number;
}

/** The conversation a response leaves: what it was sent, then what the model answered. */
export function conversationOf(request: ResponsesRequest, result: InvokeResult, requestId: string): Conversation {
  const first = hubOf(result).outputs.find((o) => o.index === 0);
  const said = withCallIds(first?.parts ?? [], requestId).filter((p) => !(p.type === "text" && p.thought === true));
  return {
    messages: said.length === 0 ? request.messages : appendTurns(request.messages, [{ role: "assistant", parts: said }]),
    imageTokens: request.imageTokens,
  };
}

/** A stored conversation as read back (null: not one this release wrote). */
export function readConversation(value: unknown): Conversation | null {
  if (!isObject(value) || !Array.isArray(value.messages)) return null;
  return { messages: value.messages as HubMessage[], imageTokens: Number(value.imageTokens) || 0 };
}

/** The request continued from a stored conversation: its turns first, the function outputs named by its calls. */
export function continued(request: ResponsesRequest, stored: Conversation): ResponsesRequest {
  const names = new Map<string, string>();
  for (const message of stored.messages) {
    for (const part of message.parts) if (part.type === "tool_call" && part.id !== undefined) names.set(part.id, part.name);
  }
  const unknown = request.responses.unpaired.find((u) => !names.has(u.callId));
  if (unknown !== undefined) {
    throw invalid(unknown.at, "names no function_call of the input nor of the previous response.");
  }
  const messages = request.messages.map((m) => ({
    ...m,
    parts: m.parts.map((p): HubPart =>
      p.type === "tool_result" && p.name === "" ? { ...p, name: names.get(p.id ?? "") ?? "" } : p
    ),
  }));
  return {
    ...request,
    messages: appendTurns(stored.messages, messages),
    imageTokens: request.imageTokens + stored.imageTokens,
  };
}

/** Turns one after another, a turn of the same role as the one before joined to it. */
function appendTurns(before: readonly HubMessage[], after: readonly HubMessage[]): HubMessage[] {
  const out = before.map((m) => ({ ...m, parts: [...m.parts] }));
  for (const message of after) {
    const last = out.at(-1);
    if (last?.role === message.role) last.parts.push(...message.parts);
    else out.push({ ...message, parts: [...message.parts] });
  }
  return out;
}
