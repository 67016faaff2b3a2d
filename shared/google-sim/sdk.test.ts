// The simulator driven through @google/genai itself: proves the paths, headers, bodies and SSE
// framing are what the real SDK sends and parses, and how its errors surface.

import { ApiError, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUOTA_IDS, startGoogleSimulator, type GoogleSimulator } from './server.ts';

const GEMMA = 'gemma-3-27b-it';
const FLASH = 'gemini-2.5-flash';

let sim: GoogleSimulator;
let ai: GoogleGenAI;
beforeAll(async () => {
  sim = await startGoogleSimulator({ models: { [FLASH]: { rpm: 1000, rpd: 1000 } } });
  ai = new GoogleGenAI({ apiKey: 'sim-key-a1', httpOptions: { baseUrl: sim.url } });
});
afterAll(() => sim.close());

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApiError);
  return e as ApiError;
}

describe('@google/genai against the simulator', () => {
  it('generateContent', async () => {
    const r = await ai.models.generateContent({ model: GEMMA, contents: 'hello from the sdk' });
    expect(r.text).toBe(`sim(${GEMMA}): hello from the sdk`);
    expect(r.candidates?.[0]?.finishReason).toBe('STOP');
    expect(r.usageMetadata).toMatchObject({ promptTokenCount: 5, totalTokenCount: expect.any(Number) });
    expect(r.modelVersion).toBe(GEMMA);
    expect(r.responseId).toMatch(/^sim-/);
    expect(sim.stats().byKey['sim-key-a1']!.received).toBeGreaterThanOrEqual(1); // the key travelled in a header
  });

  it('generateContent with config: system instruction, JSON mode and maxOutputTokens on Gemini', async () => {
    const r = await ai.models.generateContent({
      model: FLASH,
      contents: 'as json',
      config: { systemInstruction: 'You are terse.', responseMimeType: 'application/json' },
    });
    expect(JSON.parse(r.text ?? '')).toEqual({ model: FLASH, echo: 'as json' });
    const cut = await ai.models.generateContent({ model: FLASH, contents: 'long', config: { maxOutputTokens: 2 } });
    expect(cut.candidates?.[0]?.finishReason).toBe('MAX_TOKENS');
    expect(cut.text).toBe('sim(gemi'); // 2 tokens = 8 bytes
  });

  it('generateContentStream', async () => {
    const stream = await ai.models.generateContentStream({ model: FLASH, contents: 'stream through the sdk' });
    const texts: string[] = [];
    let last: { finishReason?: string | undefined; total?: number | undefined } = {};
    for await (const chunk of stream) {
      texts.push(chunk.text ?? '');
      last = { finishReason: chunk.candidates?.[0]?.finishReason, total: chunk.usageMetadata?.totalTokenCount };
    }
    expect(texts.length).toBe(3);
    expect(texts.join('')).toBe(`sim(${FLASH}): stream through the sdk`);
    expect(last.finishReason).toBe('STOP');
    expect(last.total).toBeGreaterThan(0);
  });

  it('function calls, schema answers, candidates and thinking as the SDK sends and reads them', async () => {
    const tools = [{ functionDeclarations: [{ name: 'lookup', parametersJsonSchema: { type: 'object', properties: { q: { type: 'string' } } } }] }];
    const called = await ai.models.generateContent({ model: FLASH, contents: 'please lookup', config: { tools } });
    expect(called.functionCalls).toEqual([{ name: 'lookup', args: { q: 'sim' } }]);
    const shaped = await ai.models.generateContent({
      model: FLASH,
      contents: 'shape',
      config: { responseMimeType: 'application/json', responseJsonSchema: { type: 'object', properties: { n: { type: 'integer' } } }, candidateCount: 2, thinkingConfig: { thinkingBudget: 64 } },
    });
    expect(JSON.parse(shaped.text ?? '')).toEqual({ n: 1 });
    expect(shaped.candidates).toHaveLength(2);
    expect(shaped.usageMetadata?.thoughtsTokenCount).toBeGreaterThan(0);
  });

  it('countTokens agrees with the documented rule', async () => {
    const r = await ai.models.countTokens({ model: GEMMA, contents: 'twelve bytes' });
    expect(r.totalTokens).toBe(3);
  });

  it('models.list and models.get', async () => {
    const names: string[] = [];
    for await (const m of await ai.models.list()) names.push(m.name ?? '');
    expect(names).toEqual(expect.arrayContaining([`models/${GEMMA}`, `models/${FLASH}`]));
    const flash = await ai.models.get({ model: FLASH });
    expect(flash).toMatchObject({ name: `models/${FLASH}`, inputTokenLimit: 1_048_576, outputTokenLimit: 65_536 });
  });

  it('surfaces Gemma\'s system-instruction refusal as ApiError 400', async () => {
    const e = await apiError(ai.models.generateContent({ model: GEMMA, contents: 'x', config: { systemInstruction: 'no' } }));
    expect(e.status).toBe(400);
    expect(JSON.parse(e.message).error.message).toBe('Developer instruction is not enabled for models/gemma-3-27b-it');
  });

  it('surfaces a 429 as ApiError whose message is the Google body, details intact', async () => {
    sim.addFault({ kind: 'rate_limited', quotaId: QUOTA_IDS.rpd, retryDelay: '22s', count: 1 });
    const e = await apiError(ai.models.generateContent({ model: FLASH, contents: 'x' }));
    expect(e.status).toBe(429);
    const body = JSON.parse(e.message);
    expect(body.error.status).toBe('RESOURCE_EXHAUSTED');
    const types = body.error.details.map((d: { '@type': string }) => d['@type']);
    expect(types).toEqual(expect.arrayContaining([
      'type.googleapis.com/google.rpc.QuotaFailure',
      'type.googleapis.com/google.rpc.RetryInfo',
      'type.googleapis.com/google.rpc.Help',
    ]));
  });

  it('surfaces a bad key and an unknown model', async () => {
    const bad = new GoogleGenAI({ apiKey: 'wrong', httpOptions: { baseUrl: sim.url } });
    const e = await apiError(bad.models.generateContent({ model: GEMMA, contents: 'x' }));
    expect(e.status).toBe(400);
    expect(e.message).toContain('API_KEY_INVALID');
    expect((await apiError(ai.models.generateContent({ model: 'gemma-3-27b', contents: 'x' }))).status).toBe(404);
  });

  it('a malformed 200 makes the SDK throw rather than return a result', async () => {
    sim.addFault({ kind: 'malformed', count: 1 });
    await expect(ai.models.generateContent({ model: GEMMA, contents: 'x' })).rejects.toThrow();
  });

  it('a hanging request ends at the SDK timeout', async () => {
    sim.addFault({ kind: 'hang', count: 1 });
    const impatient = new GoogleGenAI({ apiKey: 'sim-key-a1', httpOptions: { baseUrl: sim.url, timeout: 300 } });
    const started = Date.now();
    await expect(impatient.models.generateContent({ model: GEMMA, contents: 'x' })).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});
