import { describe, expect, it } from 'vitest';
import { countRequestTokens, tokensForText, truncateToTokens, utf8Bytes } from './tokens.ts';

describe('token rule: ceil(utf8 bytes / 4) over the whole request', () => {
  it('counts UTF-8 bytes, not characters', () => {
    expect(utf8Bytes('abcd')).toBe(4);
    expect(utf8Bytes('é')).toBe(2);
    expect(utf8Bytes('日本')).toBe(6);
    expect(utf8Bytes('🙂')).toBe(4);
    expect(tokensForText('')).toBe(0);
    expect(tokensForText('abcde')).toBe(2);
    expect(tokensForText('日本')).toBe(2);
  });

  it('sums all parts first and rounds up once, including the system instruction', () => {
    // Three 1-byte parts: one ceil over 3 bytes = 1 token (per-part ceil would give 3).
    const contents = [
      { role: 'user', parts: [{ text: 'a' }, { text: 'b' }] },
      { role: 'model', parts: [{ text: 'c' }] },
    ];
    expect(countRequestTokens(contents)).toBe(1);
    expect(countRequestTokens(contents, { parts: [{ text: 'xxxxxx' }] })).toBe(3); // 9 bytes
  });

  it('counts a non-text, non-image part as the bytes of its JSON', () => {
    const part = { functionResponse: { name: 'lookup', response: { ok: true } } };
    const bytes = utf8Bytes(JSON.stringify(part));
    expect(countRequestTokens([{ role: 'user', parts: [part] }])).toBe(Math.ceil(bytes / 4));
  });

  it('ignores malformed contents instead of throwing', () => {
    expect(countRequestTokens([null, 3, { parts: 'x' }])).toBe(0);
  });

  it('truncates to 4 bytes per token without splitting a character', () => {
    expect(truncateToTokens('abcdefgh', 2)).toEqual({ text: 'abcdefgh', truncated: false });
    expect(truncateToTokens('abcdefghi', 2)).toEqual({ text: 'abcdefgh', truncated: true });
    // 'aéé' = 5 bytes; a 1-token budget holds 'aé' (3 bytes) but not half of the second é.
    expect(truncateToTokens('aéé', 1)).toEqual({ text: 'aé', truncated: true });
    expect(truncateToTokens('🙂🙂', 1)).toEqual({ text: '🙂', truncated: true });
  });
});
