// The API surface over real HTTP: shapes, validation errors, streaming, countTokens.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { ask, call, generate } from './test-helpers.ts';
import { modelNotFound } from './errors.ts';

const GEMMA = 'gemma-3-27b-it';
const FLASH = 'gemini-2.5-flash';
const KEY = 'sim-key-a1';

let sim: GoogleSimulator;
beforeAll(async () => {
  // Large limits so this file tests shapes, not quotas.
  sim = await startGoogleSimulator({
    models: { [GEMMA]: { rpm: 10_000, rpd: 100_000 }, [FLASH]: { rpm: 10_000, rpd: 100_000 } },
  });
});
afterAll(() => sim.close());

describe('models', () => {
  it('lists the configured models with Google resource fields', async () => {
    const r = await call(sim, 'GET', '/v1beta/models', { key: KEY });
    expect(r.status).toBe(200);
    const gemma = r.json.models.find((m: { name: string }) => m.name === `models/${GEMMA}`);
    expect(gemma).toMatchObject({
      displayName: 'Gemma 3 27B',
      inputTokenLimit: 131_072,
      outputTokenLimit: 8_192,
      supportedGenerationMethods: expect.arrayContaining(['generateContent', 'countTokens']),
    });
    expect(r.json.models.map((m: { name: string }) => m.name)).toContain(`models/${FLASH}`);
  });

  it('pages with pageSize and nextPageToken', async () => {
    const first = await call(sim, 'GET', '/v1beta/models?pageSize=1', { key: KEY });
    expect(first.json.models).toHaveLength(1);
    expect(typeof first.json.nextPageToken).toBe('string');
    const second = await call(sim, 'GET', `/v1beta/models?pageSize=1&pageToken=${first.json.nextPageToken}`, { key: KEY });
    expect(second.json.models).toHaveLength(1);
    expect(second.json.models[0].name).not.toBe(first.json.models[0].name);
  });

  it('gets one model and 404s an unknown one', async () => {
    const r = await call(sim, 'GET', `/v1beta/models/${FLASH}`, { key: KEY });
    expect(r.json).toMatchObject({ name: `models/${FLASH}`, inputTokenLimit: 1_048_576 });
    const missing = await call(sim, 'GET', '/v1beta/models/gemma-3-27b', { key: KEY });
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
  });
});

describe('api keys', () => {
  it('accepts the key in ?key= as well as in x-goog-api-key', async () => {
    const r = await call(sim, 'POST', `/v1beta/models/${GEMMA}:generateContent?key=${KEY}`, { body: ask('hi') });
    expect(r.status).toBe(200);
  });

  it.each([
    ['unknown', 'not-a-key'],
    ['missing', undefined],
  ])('answers an %s key with 400 API_KEY_INVALID', async (_label, key) => {
    const r = await call(sim, 'POST', `/v1beta/models/${GEMMA}:generateContent`, { key, body: ask('hi') });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.' });
    expect(r.json.error.details).toContainEqual(
      expect.objectContaining({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }),
    );
  });

  it('checks the key on models.list too', async () => {
    expect((await call(sim, 'GET', '/v1beta/models', { key: 'nope' })).status).toBe(400);
  });
});

describe('generateContent', () => {
  it('answers deterministically from the last user text, with usage and ids', async () => {
    const body = {
      contents: [
        { role: 'user', parts: [{ text: 'first question' }] },
        { role: 'model', parts: [{ text: 'an answer' }] },
        { role: 'user', parts: [{ text: 'second ' }, { text: 'question' }] },
      ],
    };
    const a = await generate(sim, GEMMA, KEY, body);
    const b = await generate(sim, GEMMA, KEY, body);
    expect(a.status).toBe(200);
    expect(a.headers.get('retry-after')).toBeNull();
    const cand = a.json.candidates[0];
    expect(cand.content).toEqual({ role: 'model', parts: [{ text: `sim(${GEMMA}): second question` }] });
    expect(cand.finishReason).toBe('STOP');
    const promptBytes = 'first question'.length + 'an answer'.length + 'second question'.length;
    const outBytes = `sim(${GEMMA}): second question`.length;
    expect(a.json.usageMetadata).toMatchObject({
      promptTokenCount: Math.ceil(promptBytes / 4),
      candidatesTokenCount: Math.ceil(outBytes / 4),
      totalTokenCount: Math.ceil(promptBytes / 4) + Math.ceil(outBytes / 4),
    });
    expect(a.json.modelVersion).toBe(GEMMA);
    expect(b.json.candidates[0].content).toEqual(cand.content);
    expect(a.json.responseId).not.toBe(b.json.responseId);
  });

  it('echoes at most 200 characters of the user text', async () => {
    const r = await generate(sim, FLASH, KEY, ask('x'.repeat(500)));
    expect(r.json.candidates[0].content.parts[0].text).toBe(`sim(${FLASH}): ${'x'.repeat(200)}`);
  });

  it('honours maxOutputTokens: truncates and reports MAX_TOKENS', async () => {
    const r = await generate(sim, FLASH, KEY, ask('a long enough question', { generationConfig: { maxOutputTokens: 3 } }));
    const cand = r.json.candidates[0];
    expect(cand.finishReason).toBe('MAX_TOKENS');
    expect(cand.content.parts[0].text).toBe('sim(gemini-2'); // 12 bytes = 3 tokens
    expect(r.json.usageMetadata.candidatesTokenCount).toBe(3);
  });

  it('answers valid JSON in JSON mode on a model that supports it', async () => {
    const r = await generate(sim, FLASH, KEY, ask('give json', { generationConfig: { responseMimeType: 'application/json' } }));
    expect(JSON.parse(r.json.candidates[0].content.parts[0].text)).toEqual({ model: FLASH, echo: 'give json' });
  });

  it('accepts a system instruction on Gemini and counts it as input', async () => {
    const r = await generate(sim, FLASH, KEY, ask('abcd', { systemInstruction: { parts: [{ text: 'efgh' }] } }));
    expect(r.status).toBe(200);
    expect(r.json.usageMetadata.promptTokenCount).toBe(2);
  });

  it('rejects a system instruction on Gemma with Google\'s message', async () => {
    const r = await generate(sim, GEMMA, KEY, ask('hi', { systemInstruction: { parts: [{ text: 'be brief' }] } }));
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({
      status: 'INVALID_ARGUMENT',
      message: 'Developer instruction is not enabled for models/gemma-3-27b-it',
    });
  });

  it('rejects JSON mode on Gemma', async () => {
    const r = await generate(sim, GEMMA, KEY, ask('hi', { generationConfig: { responseMimeType: 'application/json' } }));
    expect(r.status).toBe(400);
    expect(r.json.error.message).toBe('JSON mode is not enabled for models/gemma-3-27b-it');
  });

  it('rejects a body that is not JSON', async () => {
    const r = await call(sim, 'POST', `/v1beta/models/${GEMMA}:generateContent`, { key: KEY, rawBody: '{"contents": [' });
    expect(r.status).toBe(400);
    expect(r.json.error.status).toBe('INVALID_ARGUMENT');
    expect(r.json.error.message).toMatch(/^Invalid JSON payload received/);
  });

  it('rejects unknown field names and roles other than user/model', async () => {
    const unknown = await generate(sim, GEMMA, KEY, ask('hi', { config: {} }));
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.message).toContain('Unknown name "config"');
    const role = await generate(sim, GEMMA, KEY, { contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] });
    expect(role.status).toBe(400);
    expect(role.json.error.message).toBe('Please use a valid role: user, model.');
    const empty = await generate(sim, GEMMA, KEY, { contents: [] });
    expect(empty.status).toBe(400);
  });

  it('accepts snake_case field names like the real API', async () => {
    const r = await generate(sim, FLASH, KEY, ask('hi', { generation_config: { max_output_tokens: 1 } }));
    expect(r.status).toBe(200);
    expect(r.json.candidates[0].finishReason).toBe('MAX_TOKENS');
  });

  it('404s an unknown model with NOT_FOUND and no details', async () => {
    const r = await generate(sim, 'gemma-3-27b', KEY, ask('hi'));
    expect(r.status).toBe(404);
    expect(r.json.error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
    expect(r.json.error.message).toBe(modelNotFound('gemma-3-27b', 'generateContent').body.error.message);
    expect(r.json.error.details).toBeUndefined();
  });

  it('rejects input over the model\'s inputTokenLimit', async () => {
    const small = await startGoogleSimulator({ models: { [GEMMA]: { inputTokenLimit: 2 } } });
    try {
      expect((await generate(small, GEMMA, KEY, ask('12345678'))).status).toBe(200); // 2 tokens
      const r = await generate(small, GEMMA, KEY, ask('123456789'));
      expect(r.status).toBe(400);
      expect(r.json.error.message).toBe('The input token count (3) exceeds the maximum number of tokens allowed (2).');
    } finally {
      await small.close();
    }
  });
});

describe('streamGenerateContent', () => {
  it('streams SSE chunks whose texts add up to the generateContent answer', async () => {
    const body = ask('stream me something');
    const plain = await generate(sim, FLASH, KEY, body);
    const r = await call(sim, 'POST', `/v1beta/models/${FLASH}:streamGenerateContent?alt=sse`, { key: KEY, body });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const events = r.text.split('\r\n\r\n').filter((e) => e !== '');
    expect(events.length).toBe(3);
    const chunks = events.map((e) => {
      expect(e.startsWith('data: ')).toBe(true);
      return JSON.parse(e.slice('data: '.length));
    });
    expect(chunks.map((c) => c.candidates[0].content.parts[0].text).join('')).toBe(plain.json.candidates[0].content.parts[0].text);
    expect(chunks.slice(0, -1).every((c) => c.candidates[0].finishReason === undefined)).toBe(true);
    const last = chunks.at(-1);
    expect(last.candidates[0].finishReason).toBe('STOP');
    expect(last.usageMetadata).toEqual(plain.json.usageMetadata);
  });

  it('answers errors on the stream endpoint as plain JSON with the HTTP status', async () => {
    const r = await call(sim, 'POST', `/v1beta/models/${GEMMA}:streamGenerateContent?alt=sse`, {
      key: KEY,
      body: ask('x', { systemInstruction: { parts: [{ text: 'y' }] } }),
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('Developer instruction');
  });
});

describe('countTokens', () => {
  it('returns totalTokens equal to the promptTokenCount generateContent reports', async () => {
    const body = ask('count these tokens, é included');
    const counted = await call(sim, 'POST', `/v1beta/models/${FLASH}:countTokens`, { key: KEY, body });
    const generated = await generate(sim, FLASH, KEY, body);
    expect(counted.status).toBe(200);
    expect(counted.json).toEqual({ totalTokens: generated.json.usageMetadata.promptTokenCount });
  });

  it('accepts {generateContentRequest} and counts its system instruction', async () => {
    const r = await call(sim, 'POST', `/v1beta/models/${FLASH}:countTokens`, {
      key: KEY,
      body: { generateContentRequest: { model: `models/${FLASH}`, ...ask('abcd', { systemInstruction: { parts: [{ text: 'efghi' }] } }) } },
    });
    expect(r.json).toEqual({ totalTokens: 3 });
  });

  it('does not spend generate quota', async () => {
    const strict = await startGoogleSimulator({ models: { [GEMMA]: { rpm: 1 } } });
    try {
      for (let i = 0; i < 3; i++) {
        expect((await call(strict, 'POST', `/v1beta/models/${GEMMA}:countTokens`, { key: KEY, body: ask('x') })).status).toBe(200);
      }
      expect((await generate(strict, GEMMA, KEY, ask('x'))).status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

it('404s unknown routes and wrong HTTP methods', async () => {
  expect((await call(sim, 'GET', `/v1beta/models/${GEMMA}:generateContent`, { key: KEY })).status).toBe(404);
  expect((await call(sim, 'POST', '/v1beta/somethingElse', { key: KEY, body: {} })).status).toBe(404);
});

describe('what it was sent', () => {
  it('keeps each request body as received, its JSON parsed, on the stats record', async () => {
    sim.reset();
    const body = ask('what was I sent?', { generationConfig: { maxOutputTokens: 5 } });
    expect((await generate(sim, GEMMA, KEY, body)).status).toBe(200);
    expect(sim.stats().recent.map((r) => [r.method, r.body])).toEqual([['generateContent', body]]);
  });
});
