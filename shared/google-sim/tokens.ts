// The simulator's token rule. Real Gemini tokenizers are not available offline, so the simulator
// uses a rule that is deterministic and documented, and the gateway builds its estimator against it:
//
//   tokens(request) = ceil(B / 4), where B = the UTF-8 byte length of every text part in
//   `contents` and `systemInstruction`, plus, for any non-text part (inlineData, functionCall, ...),
//   the UTF-8 byte length of that part's JSON serialisation.
//
// One sum over the whole request, one ceil at the end. Output tokens use the same rule on the
// answer text.

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

/** Bytes of one `Content` ({role, parts}); anything malformed counts as zero. */
function contentBytes(content: unknown): number {
  if (content === null || typeof content !== 'object') return 0;
  const parts = (content as { parts?: unknown }).parts;
  if (!Array.isArray(parts)) return 0;
  let bytes = 0;
  for (const part of parts) {
    if (part !== null && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
      bytes += utf8Bytes((part as { text: string }).text);
    } else if (part !== undefined) {
      bytes += utf8Bytes(JSON.stringify(part));
    }
  }
  return bytes;
}

/** Input tokens of a request: its contents plus its system instruction. */
export function countRequestTokens(contents: unknown, systemInstruction?: unknown): number {
  let bytes = 0;
  if (Array.isArray(contents)) for (const c of contents) bytes += contentBytes(c);
  if (systemInstruction !== undefined && systemInstruction !== null) bytes += contentBytes(systemInstruction);
  return tokensForBytes(bytes);
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
