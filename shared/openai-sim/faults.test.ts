// Faults as OpenAI fails: 5xx (the 502 as an HTML page), injected 429s, an emptied wallet, a cut
// stream and an error event mid-stream; and the control API over HTTP.

import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startOpenAISimulator, type OpenAISimulator } from './server.ts';
import { call, chat, complete } from './test-helpers.ts';

const MODEL = 'gpt-4o';
let sim: OpenAISimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(): Promise<OpenAISimulator> {
  sim = await startOpenAISimulator({ waitStyle: 'milliseconds', streamChunkDelayMs: 5 });
  return sim;
}

/** The raw SSE text of a streamed completion (the body may end cut). */
async function rawStream(s: OpenAISimulator, body: Record<string, unknown>): Promise<{ status: number; text: string; cut: boolean }> {
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-sim-a1', 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  try {
    return { status: res.status, text: await res.text(), cut: false };
  } catch {
    return { status: res.status, text: '', cut: true };
  }
}

describe('faults', () => {
  it('5xx: 500 and 503 in OpenAI\'s JSON, 502 as an HTML page; none spends quota', async () => {
    const s = await start();
    s.setFaults([{ kind: 'http500', count: 1 }, { kind: 'http502', count: 1 }, { kind: 'http503', count: 1 }]);
    const a = await complete(s, 'sk-sim-a1', chat(MODEL, 'x'));
    const b = await complete(s, 'sk-sim-a1', chat(MODEL, 'x'));
    const c = await complete(s, 'sk-sim-a1', chat(MODEL, 'x'));
    expect([a.status, b.status, c.status]).toEqual([500, 502, 503]);
    expect(a.json.error.type).toBe('server_error');
    expect(b.json).toBeUndefined();
    expect(b.text).toContain('<html>');
    expect(c.json.error.type).toBe('server_error');
    // The 500 and the 503 carry the organization's x-ratelimit-*, as OpenAI's errors do: nothing spent.
    for (const r of [a, c]) {
      expect(r.headers.get('x-ratelimit-remaining-tokens')).toBe(r.headers.get('x-ratelimit-limit-tokens'));
      expect(r.headers.get('x-ratelimit-remaining-requests')).not.toBeNull();
    }
    expect(b.headers.get('x-ratelimit-remaining-tokens')).toBeNull();
    expect(s.stats().quota['org-sim-a']?.[MODEL] ?? { minuteRequests: 0, minuteTokens: 0 }).toMatchObject({ minuteRequests: 0, minuteTokens: 0 });
    expect((await complete(s, 'sk-sim-a1', chat(MODEL, 'x'))).status).toBe(200);
  });

  it('rate_limited: 429 of the type asked, the wait in the reset header and (milliseconds) in the message', async () => {
    const s = await start();
    s.addFault({ kind: 'rate_limited', limitType: 'tokens', waitMs: 1500, count: 1 });
    const r = await complete(s, 'sk-sim-a1', chat(MODEL, 'x'));
    expect(r.status).toBe(429);
    expect(r.json.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    expect(r.json.error.message).toContain('1500ms');
    expect(r.headers.get('x-ratelimit-reset-tokens')).toBe('1.5s');
    expect(r.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
  });

  it('insufficient_quota: a fault for one call, or an organization whose wallet is empty until refilled', async () => {
    const s = await start();
    s.addFault({ kind: 'insufficient_quota', count: 1 });
    expect((await complete(s, 'sk-sim-a1', chat(MODEL, 'x'))).json.error.code).toBe('insufficient_quota');
    s.setWallet('org-sim-a', 'empty');
    for (let i = 0; i < 3; i++) {
      const r = await complete(s, 'sk-sim-a2', chat(MODEL, 'x'));
      expect(r.status).toBe(429);
      expect(r.json.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
    }
    expect((await complete(s, 'sk-sim-b1', chat(MODEL, 'x'))).status).toBe(200);
    s.setWallet('org-sim-a', 'funded');
    expect((await complete(s, 'sk-sim-a1', chat(MODEL, 'x'))).status).toBe(200);
  });

  it('model_not_found for one model only: the others still serve', async () => {
    const s = await start();
    s.addFault({ kind: 'model_not_found', model: MODEL });
    expect((await complete(s, 'sk-sim-a1', chat(MODEL, 'x'))).json.error.code).toBe('model_not_found');
    expect((await complete(s, 'sk-sim-a1', chat('gpt-4o-mini', 'x'))).status).toBe(200);
  });

  it('cut_stream: a 200 stream that breaks off without [DONE], after quota was spent', async () => {
    const s = await start();
    s.addFault({ kind: 'cut_stream', afterChunks: 2, count: 1 });
    const r = await rawStream(s, chat(MODEL, 'cut me'));
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('[DONE]');
    expect(s.stats().streams.serverCut).toBe(1);
    expect(s.stats().recent[0]!.chunksSent).toBe(2);
    expect(s.stats().quota['org-sim-a']![MODEL]!.minuteRequests).toBe(1);
  });

  it('stream_error: an error event mid-stream, which the SDK raises', async () => {
    const s = await start();
    s.addFault({ kind: 'stream_error', afterChunks: 2, count: 1 });
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-sim-a1', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], stream: true });
    const read = async (): Promise<number> => {
      let n = 0;
      for await (const _ of stream) n += 1;
      return n;
    };
    await expect(read()).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it('hang: never answered; the caller gives up and the request counts as abandoned', async () => {
    const s = await start();
    s.addFault({ kind: 'hang', count: 1 });
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-sim-a1', maxRetries: 0, timeout: 300 });
    await expect(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(
      OpenAI.APIConnectionTimeoutError,
    );
    await expect.poll(() => s.stats().total.abandoned).toBe(1);
  });
});

describe('control API over HTTP', () => {
  it('faults, organizations, wallet, withdrawn models, stats and reset', async () => {
    const s = await start();
    const ctl = (method: string, path: string, body?: unknown) => call(s, method, `/__sim${path}`, { body });
    expect((await ctl('POST', '/faults', { kind: 'http503', count: 1 })).json.faults[0]).toMatchObject({ kind: 'http503', id: 1 });
    expect((await ctl('POST', '/faults', { kind: 'nonsense' })).status).toBe(400);
    expect((await complete(s, 'sk-sim-a1', chat(MODEL, 'x'))).status).toBe(503);

    await ctl('PUT', '/organizations', { 'org-new': { keys: ['sk-new'], limits: { [MODEL]: { rpm: 1 } } } });
    expect((await complete(s, 'sk-sim-a1', chat(MODEL, 'x'))).status).toBe(401);
    expect((await complete(s, 'sk-new', chat(MODEL, 'x'))).status).toBe(200);
    expect((await complete(s, 'sk-new', chat(MODEL, 'x'))).status).toBe(429);

    await ctl('PUT', '/wallet', { organization: 'org-new', wallet: 'empty' });
    expect((await complete(s, 'sk-new', chat(MODEL, 'x'))).json.error.code).toBe('insufficient_quota');

    await ctl('POST', '/withdrawn', { model: 'gpt-4o-mini' });
    expect((await call(s, 'GET', '/v1/models/gpt-4o-mini', { key: 'sk-new' })).json.error.code).toBe('model_not_found');
    await ctl('DELETE', '/withdrawn', { model: 'gpt-4o-mini' });
    expect((await call(s, 'GET', '/v1/models/gpt-4o-mini', { key: 'sk-new' })).status).toBe(200);

    const stats = (await ctl('GET', '/stats')).json;
    expect(stats.byOrganization['org-new'].byStatus).toEqual({ '200': 2, '404': 1, '429': 2 }); // completions and models.get
    await ctl('POST', '/reset');
    expect((await ctl('GET', '/stats')).json.total.received).toBe(0);
    expect((await ctl('GET', '/nothing')).status).toBe(404);
  });
});

describe('requests OpenAI refuses', () => {
  it('400 invalid_request_error with the param named; 404 JSON for a path OpenAI does not have', async () => {
    const s = await start();
    const cases: [Record<string, unknown>, string][] = [
      [{ model: MODEL, messages: [] }, 'messages'],
      [{ model: MODEL, messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
      [{ ...chat(MODEL, 'x'), max_tokens: 1_000_000 }, 'max_tokens'],
      [{ ...chat(MODEL, 'x'), stream_options: { include_usage: true } }, 'stream_options'],
      [{ ...chat(MODEL, 'x'), top_logprobs: 3 }, 'top_logprobs'],
      [{ ...chat(MODEL, 'x'), response_format: { type: 'json_object' } }, 'messages'],
      [{ ...chat(MODEL, 'x'), tool_choice: 'required' }, 'tool_choice'],
    ];
    for (const [body, param] of cases) {
      const r = await complete(s, 'sk-sim-a1', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', param });
    }
    expect((await complete(s, 'sk-sim-a1', chat('gpt-4o', 'x'.repeat(600_000)))).json.error.code).toBe('context_length_exceeded');
    const missing = await call(s, 'POST', '/v1/completions-that-never-were', { key: 'sk-sim-a1', body: {} });
    expect(missing.status).toBe(404);
    expect(missing.json.error.type).toBe('invalid_request_error');
    expect(s.stats().quota['org-sim-a']?.[MODEL]?.minuteRequests ?? 0).toBe(0);
  });
});
