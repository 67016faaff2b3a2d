// OpenAI's durations and the wordings drawn per run: every wording keeps the structure (status,
// type, code) and carries the facts a client may need, so only a client that reads English breaks.

import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  INSUFFICIENT_QUOTA_WORDINGS,
  insufficientQuota,
  maskKey,
  MODEL_NOT_FOUND_WORDINGS,
  rateLimited,
  RATE_LIMIT_WORDINGS,
  wordWait,
  type RateLimitFacts,
} from './errors.ts';
import { pickWording } from '../sim-core/wordings.ts';

describe('formatDuration (x-ratelimit-reset-*)', () => {
  it('writes OpenAI\'s forms', () => {
    expect([0, 6, 20, 999, 1000, 18_642, 59_999, 60_000, 90_500, 360_000, 3_600_000].map(formatDuration)).toEqual([
      '0s', '6ms', '20ms', '999ms', '1s', '18.642s', '59.999s', '1m0s', '1m30.5s', '6m0s', '1h0m0s',
    ]);
  });
});

describe('the wait in a rate limit\'s message', () => {
  it('in seconds, in milliseconds, OpenAI\'s mix of both, or not at all', () => {
    expect(wordWait(18_642, 'natural')).toBe('18.642s');
    expect(wordWait(174, 'natural')).toBe('174ms');
    expect(wordWait(174, 'seconds')).toBe('0.174s');
    expect(wordWait(18_642, 'milliseconds')).toBe('18642ms');
    expect(wordWait(18_642, 'none')).toBeUndefined();
  });

  const facts: RateLimitFacts = { kind: 'tokens', per: 'min', model: 'gpt-4o', organization: 'org-x', limit: 30000, used: 14567, requested: 24754, wait: '18.642s' };

  it('every wording names the wait when there is one, and none when there is not', () => {
    for (const word of RATE_LIMIT_WORDINGS) {
      expect(word(facts)).toContain('18.642s');
      expect(word({ ...facts, wait: undefined })).not.toMatch(/try again/i);
      expect(word(facts)).toContain('30000');
    }
  });

  it('the structure never changes: 429, type requests or tokens, code rate_limit_exceeded', () => {
    const a = rateLimited(facts);
    expect(a.status).toBe(429);
    expect(a.body.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded', param: null });
    expect(rateLimited({ ...facts, kind: 'requests' }).body.error.type).toBe('requests');
  });
});

describe('wordings drawn per run', () => {
  it('different seeds draw different wordings of each case', () => {
    for (const [name, list] of [
      ['openai.rate_limit', RATE_LIMIT_WORDINGS],
      ['openai.insufficient_quota', INSUFFICIENT_QUOTA_WORDINGS],
      ['openai.model_not_found', MODEL_NOT_FOUND_WORDINGS],
    ] as const) {
      const drawn = new Set<unknown>();
      for (let seed = 0; seed < 200; seed++) drawn.add(pickWording(name, list as readonly unknown[], seed));
      expect(drawn.size).toBe(list.length);
    }
  });

  it('insufficient_quota is 429 like a rate limit, told apart by type and code only', () => {
    expect(insufficientQuota()).toMatchObject({ status: 429, body: { error: { type: 'insufficient_quota', code: 'insufficient_quota' } } });
    for (const m of MODEL_NOT_FOUND_WORDINGS) expect(m('gpt-4-32k', 'gpt-4.1-mini')).toContain('gpt-4-32k');
  });

  it('a 401 shows the key masked, never whole', () => {
    expect(maskKey('sk-proj-abcdefghijklmnop1234')).toMatch(/^sk-\*+1234$/);
  });
});
