// Conservative estimate of a request's input tokens, used to reserve TPM before calling the provider.
// After the call the reservation is reconciled with the provider's count, so over-estimating
// only holds back capacity for the rest of that minute, while under-estimating lets a burst past
// the TPM limit and earns a 429. Hence: err high, cheaply, without a tokenizer or a countTokens call.
//
// The rule, per text (prompt, each message/part, the system prompt):
//   tokens = digits + ceil(other UTF-8 bytes / 3)
// plus TURN_OVERHEAD per turn and REQUEST_OVERHEAD per request.
//
// Why these numbers:
// - English runs about 4 characters (= 4 bytes) per token on Gemini/Gemma tokenizers; 3 bytes per
//   token over-estimates it by about a third.
// - Russian (the bot's language) is 2 bytes per Cyrillic character in UTF-8 and about 2.5-4
//   characters per token, i.e. 5-8 bytes per token: bytes/3 over-estimates it roughly twofold,
//   which is safe. Characters of 3-4 bytes (CJK, emoji) come out at about one token each.
// - Gemma's tokenizer splits numbers into single digits, so "21.11.2025 19:00" costs about one token
//   per digit; dates, times and prices are common in event texts, so digits count one each.
// - Chat templates add turn markers (<start_of_turn>user ... <end_of_turn>), a few tokens per turn.
// The offline simulator counts ceil(all text bytes / 4); this estimate is never below that.
//
// Other parts: a tool call or a tool's result counts as the text of its JSON; an inline image is
// estimated from its dimensions by images.ts (the request's imageTokens), not from its bytes.
import type { HubMessage, HubPart } from "../../_shared/upstream/hub.ts";
import type { ModelRequest } from "../contract.ts";

export const BYTES_PER_TOKEN = 3;
export const TURN_OVERHEAD = 5;
export const REQUEST_OVERHEAD = 3;

const encoder = new TextEncoder();

/** Estimated tokens of one piece of text (no overhead). */
export function estimateTextTokens(text: string): number {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
  }
  const otherBytes = encoder.encode(text).length - digits;
  return digits + Math.ceil(otherBytes / BYTES_PER_TOKEN);
}

/** A request's input estimate, as one model takes it (its system instruction, or none where it was folded). */
export function estimateRequestTokens(request: Pick<ModelRequest, "messages" | "system">): number {
  return estimateInputTokens(request);
}

/** Estimated input tokens of turns and a system text as sent to the provider (after any system folding). */
export function estimateInputTokens(input: { messages: readonly HubMessage[]; system?: string }): number {
  let tokens = REQUEST_OVERHEAD;
  for (const content of input.messages) {
    tokens += TURN_OVERHEAD;
    for (const part of content.parts) tokens += estimatePartTokens(part);
  }
  if (input.system !== undefined) tokens += TURN_OVERHEAD + estimateTextTokens(input.system);
  return tokens;
}

/** A text part's tokens, or a function call's / response's as JSON text; images are counted apart. */
function estimatePartTokens(part: HubPart): number {
  switch (part.type) {
    case "text":
      return estimateTextTokens(part.text);
    case "media":
      return 0;
    case "tool_call":
      return estimateTextTokens(JSON.stringify({ name: part.name, args: part.args, id: part.id }));
    case "tool_result":
      return estimateTextTokens(JSON.stringify({ name: part.name, response: part.result, id: part.id }));
  }
}
