// The simulators' token rule for text: ceil(UTF-8 bytes / 4). Real tokenizers are not available
// offline, so the rule is deterministic and documented, and the gateway builds its estimators
// against it.

const encoder = new TextEncoder();

export function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

export function tokensForBytes(bytes: number): number {
  return Math.ceil(bytes / 4);
}

export function tokensForText(text: string): number {
  return tokensForBytes(utf8Bytes(text));
}

/**
 * Cuts `text` to at most `maxTokens` tokens under the rule above (so at most 4*maxTokens bytes),
 * never splitting a UTF-8 character.
 */
export function truncateToTokens(text: string, maxTokens: number): { text: string; truncated: boolean } {
  const budget = Math.max(0, Math.floor(maxTokens)) * 4;
  if (utf8Bytes(text) <= budget) return { text, truncated: false };
  let used = 0;
  let out = '';
  for (const ch of text) {
    const size = utf8Bytes(ch);
    if (used + size > budget) break;
    used += size;
    out += ch;
  }
  return { text: out, truncated: true };
}
