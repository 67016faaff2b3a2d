import { describe, expect, it } from 'vitest';
import { formatDuration, quotaExceeded, VIOLATION_LINE_WORDINGS } from './errors.ts';
import { QUOTA_IDS, violation } from './quota.ts';

describe('formatDuration (protobuf JSON Duration)', () => {
  it('uses 0, 3, 6 or 9 fractional digits', () => {
    expect(formatDuration(22_000)).toBe('22s');
    expect(formatDuration(22_500)).toBe('22.500s');
    expect(formatDuration(22_500.25)).toBe('22.500250s');
    expect(formatDuration(10_689.924287)).toBe('10.689924287s');
    expect(formatDuration(-5)).toBe('0s');
  });
});

describe('quotaExceeded', () => {
  const v = [violation(QUOTA_IDS.rpd, 'gemini-2.5-flash', 20)];

  it('lists every violation in the message and carries the delay twice', () => {
    const { status, body } = quotaExceeded(v, '10.689924287s');
    expect(status).toBe(429);
    // The line as this run's wording says it (wordings.ts).
    expect(body.error.message).toContain(VIOLATION_LINE_WORDINGS.map((w) => w(v[0]!)).find((l) => body.error.message.includes(l)));
    expect(body.error.message.endsWith('Please retry in 10.689924287s.')).toBe(true);
    expect(body.error.details).toContainEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '10.689924287s' });
    expect(quotaExceeded(v, '10.689924287s', true).body.error.details).toContainEqual(
      expect.objectContaining({ retryDelay: '10s' }),
    );
  });

  it('can leave RetryInfo and the retry sentence out, as older Google 429s do', () => {
    const { body } = quotaExceeded(v, null);
    expect(body.error.message).not.toContain('Please retry');
    expect(body.error.details?.map((d) => d['@type'])).toEqual([
      'type.googleapis.com/google.rpc.QuotaFailure',
      'type.googleapis.com/google.rpc.Help',
    ]);
  });
});
