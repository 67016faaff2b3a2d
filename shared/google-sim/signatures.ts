// Gemini 3's thought signatures, for models configured with `thoughtSignatures: 'required'` (none by
// default). Such a model signs what it answers: the first functionCall part of a call (only the
// first one when it calls several functions at once) and the last text part of a text answer, in the
// chunk that carries that part when streamed. A request whose current turn replays a function call
// without the signature it came with is refused with Google's 400, and a signature this simulator
// never issued for that model and function (made up, altered, moved to another call) is refused as
// corrupted. Earlier turns (before the last user message with text) are not checked, as on Google.
//
// A signature is opaque to callers: base64 of a random nonce and an HMAC over (model, function name,
// nonce) under a key of this simulator instance, so it is checked without remembering anything.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ModelSpec } from './config.ts';
import { invalidArgument, type SimAnswer } from './errors.ts';
import { field, isObject } from './json-fields.ts';

export type ThoughtSignatureMode = 'off' | 'required';
export const THOUGHT_SIGNATURE_MODES: readonly ThoughtSignatureMode[] = ['off', 'required'];

/** Values Google documents as accepted in place of a real signature (histories it never signed). */
export const SKIP_SIGNATURE_VALUES: readonly string[] = ['skip_thought_signature_validator', 'context_engineering_is_the_way_to_go'];

const DOCS = 'https://ai.google.dev/gemini-api/docs/thought-signatures';
export const CORRUPTED_SIGNATURE_MESSAGE = 'Corrupted thought signature.';

/** Google's 400 for a current-turn function call sent back without its signature (position is 1-based). */
export function missingSignatureMessage(functionName: string, position: number): string {
  return (
    'Function call is missing a thought_signature in functionCall parts. This is required for tools to work ' +
    'correctly, and missing thought_signature may lead to degraded model performance. Additional data, ' +
    `function call \`default_api:${functionName}\` , position ${position}. Please refer to ${DOCS} for more details.`
  );
}

export function checkSignatureMode(id: string, spec: { thoughtSignatures?: unknown }): void {
  const mode = spec.thoughtSignatures;
  if (mode !== undefined && !THOUGHT_SIGNATURE_MODES.includes(mode as ThoughtSignatureMode)) {
    throw new Error(`google-sim: models.${id}.thoughtSignatures must be one of ${THOUGHT_SIGNATURE_MODES.join(', ')}`);
  }
}

const requires = (spec: ModelSpec): boolean => spec.thoughtSignatures === 'required';

const NONCE_BYTES = 12;
const MAC_BYTES = 16;
/** What a text part's signature is bound to in place of a function name. */
const TEXT_SUBJECT = '\u0000text';

export class ThoughtSigner {
  private readonly key = randomBytes(32);

  private mac(model: string, subject: string, nonce: Buffer): Buffer {
    return createHmac('sha256', this.key).update(`${model}\u0000${subject}\u0000`).update(nonce).digest().subarray(0, MAC_BYTES);
  }

  issue(model: string, subject: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    return Buffer.concat([nonce, this.mac(model, subject, nonce)]).toString('base64');
  }

  /** True when this simulator issued `signature` for this model and subject (or it is a documented skip value). */
  verify(signature: string, model: string, subject: string): boolean {
    if (SKIP_SIGNATURE_VALUES.includes(signature)) return true;
    // Proto JSON takes bytes as base64 in either alphabet.
    const bytes = Buffer.from(signature.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length !== NONCE_BYTES + MAC_BYTES) return false;
    const expected = this.mac(model, subject, bytes.subarray(0, NONCE_BYTES));
    return timingSafeEqual(bytes.subarray(NONCE_BYTES), expected);
  }

  /**
   * The refusal for a request to `model` whose current turn replays a function call without a valid
   * signature; undefined when the model does not require signatures or the history is in order.
   */
  check(contents: readonly unknown[], model: string, spec: ModelSpec): SimAnswer | undefined {
    if (!requires(spec)) return undefined;
    for (let i = currentTurnStart(contents) + 1; i < contents.length; i++) {
      const content = contents[i];
      if (!isObject(content) || content.role !== 'model' || !Array.isArray(content.parts)) continue;
      let first = true;
      for (const part of content.parts) {
        const call = isObject(part) ? field(part, 'functionCall') : undefined;
        if (!isObject(call)) continue;
        const name = typeof call.name === 'string' ? call.name : '';
        const signature = field(part as Record<string, unknown>, 'thoughtSignature');
        // Of calls made together only the first carries one; each step of the turn has its own.
        if (signature === undefined || signature === null || signature === '') {
          if (first) return invalidArgument(missingSignatureMessage(name, i + 1));
        } else if (typeof signature !== 'string' || !this.verify(signature, model, name)) {
          return invalidArgument(CORRUPTED_SIGNATURE_MESSAGE);
        }
        first = false;
      }
    }
    return undefined;
  }

  /**
   * Signs an answer's chunks in place, for a model that requires signatures: in each candidate the
   * first functionCall part, or else the last text part the answer has (the last chunk's, when
   * streamed: Google sends the signature of a text answer at its end).
   */
  sign(chunks: Array<Record<string, unknown>>, model: string, spec: ModelSpec): void {
    if (!requires(spec)) return;
    const lastText = new Map<number, Record<string, unknown>>();
    const called = new Set<number>();
    for (const chunk of chunks) {
      const candidates = Array.isArray(chunk.candidates) ? chunk.candidates : [];
      for (const [position, candidate] of candidates.entries()) {
        const index = typeof candidate.index === 'number' ? candidate.index : position;
        for (const part of candidate.content?.parts ?? []) {
          if (isObject(part.functionCall) && !called.has(index)) {
            called.add(index);
            part.thoughtSignature = this.issue(model, String(part.functionCall.name));
          } else if (typeof part.text === 'string') {
            lastText.set(index, part);
          }
        }
      }
    }
    for (const [index, part] of lastText) {
      if (!called.has(index)) part.thoughtSignature = this.issue(model, TEXT_SUBJECT);
    }
  }
}

/**
 * Index of the content that starts the current turn: the last user content with something besides
 * function responses (a user message). Everything after it is the turn's steps. -1 when none.
 */
export function currentTurnStart(contents: readonly unknown[]): number {
  for (let i = contents.length - 1; i >= 0; i--) {
    const content = contents[i];
    if (!isObject(content) || content.role === 'model' || !Array.isArray(content.parts)) continue;
    if (content.parts.some((p) => isObject(p) && field(p, 'functionResponse') === undefined)) return i;
  }
  return -1;
}
