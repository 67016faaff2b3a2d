// The simulator's token rule. Real Gemini tokenizers are not available offline, so the simulator
// uses a rule that is deterministic and documented, and the gateway builds its estimator against it:
//
//   tokens(request) = ceil(B / 4) + I, where
//   B = the UTF-8 byte length of every text part in `contents` and `systemInstruction`, plus, for
//       any other part (functionCall, functionResponse, fileData, inlineData that is not a counted
//       image, ...), the UTF-8 byte length of that part's JSON serialisation;
//   I = the sum over inlineData images of type image/png, image/jpeg or image/webp of
//       imageTokensByGoogleRule(width, height) (images.ts): 258 when both sides are ≤ 384 px,
//       else 258 × ceil(width / 768) × ceil(height / 768), with the size read from the image header.
//
// One sum of bytes over the whole request, one ceil, then the image tokens added. Output tokens use
// the byte rule on the answer text. An image whose header cannot be read is refused with 400 before
// counting (see findUnreadableImage).

import { tokensForBytes, utf8Bytes } from '../sim-core/text-tokens.ts';
import { imageTokensByGoogleRule, inlineImage, readImageSize } from './images.ts';

export { tokensForBytes, tokensForText, truncateToTokens, utf8Bytes } from '../sim-core/text-tokens.ts';

interface Tally {
  bytes: number;
  imageTokens: number;
}

/** Adds one `Content` ({role, parts}) to the tally; anything malformed counts as zero. */
function addContent(content: unknown, tally: Tally): void {
  if (content === null || typeof content !== 'object') return;
  const parts = (content as { parts?: unknown }).parts;
  if (!Array.isArray(parts)) return;
  for (const part of parts) {
    if (part !== null && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
      tally.bytes += utf8Bytes((part as { text: string }).text);
      continue;
    }
    const image = inlineImage(part);
    const size = image && readImageSize(image.mimeType, image.data);
    if (size) tally.imageTokens += imageTokensByGoogleRule(size.width, size.height);
    else if (part !== undefined) tally.bytes += utf8Bytes(JSON.stringify(part));
  }
}

function contentsOf(contents: unknown, systemInstruction: unknown): unknown[] {
  const all = Array.isArray(contents) ? [...contents] : [];
  if (systemInstruction !== undefined && systemInstruction !== null) all.push(systemInstruction);
  return all;
}

/** Input tokens split as usageMetadata.promptTokensDetails reports them: text (with other parts) and images. */
export function countRequestTokensByModality(contents: unknown, systemInstruction?: unknown): { text: number; image: number } {
  const tally: Tally = { bytes: 0, imageTokens: 0 };
  for (const c of contentsOf(contents, systemInstruction)) addContent(c, tally);
  return { text: tokensForBytes(tally.bytes), image: tally.imageTokens };
}

/** Input tokens of a request: its contents plus its system instruction. */
export function countRequestTokens(contents: unknown, systemInstruction?: unknown): number {
  const { text, image } = countRequestTokensByModality(contents, systemInstruction);
  return text + image;
}

/** True when some png/jpeg/webp inlineData part has a header that cannot be read (Google: 400). */
export function hasUnreadableImage(contents: unknown, systemInstruction?: unknown): boolean {
  for (const c of contentsOf(contents, systemInstruction)) {
    const parts = c !== null && typeof c === 'object' ? (c as { parts?: unknown }).parts : undefined;
    if (!Array.isArray(parts)) continue;
    for (const part of parts) {
      const image = inlineImage(part);
      if (image && !readImageSize(image.mimeType, image.data)) return true;
    }
  }
  return false;
}
