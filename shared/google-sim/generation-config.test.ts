// generationConfig surfaces: schema-shaped JSON answers, several candidates, thinking tokens, and
// the type checks on knobs the simulator otherwise ignores.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIM_THOUGHTS_TOKENS } from './generation-config.ts';
import { valueForSchema } from '../sim-core/schema-values.ts';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { ask, call, generate } from './test-helpers.ts';
import { tokensForText } from './tokens.ts';

const GEMMA = 'gemma-3-27b-it';
const FLASH = 'gemini-2.5-flash';
const KEY = 'sim-key-a1';

let sim: GoogleSimulator;
beforeAll(async () => {
  sim = await startGoogleSimulator({
    models: { [FLASH]: { rpm: 10_000, rpd: 100_000 }, [GEMMA]: { rpm: 10_000, rpd: 100_000 } },
  });
});
afterAll(() => sim.close());

const withConfig = (text: string, generationConfig: Record<string, unknown>): Record<string, unknown> => ask(text, { generationConfig });
const answerText = (r: { json: any }, i = 0): string => r.json.candidates[i].content.parts[0].text;

describe('valueForSchema', () => {
  it('follows enum, const, anyOf, propertyOrdering and nullable type lists', () => {
    const rule = { strings: 'x' };
    expect(valueForSchema({ type: 'STRING', enum: ['b', 'a'] }, rule)).toBe('b');
    expect(valueForSchema({ const: 42 }, rule)).toBe(42);
    expect(valueForSchema({ anyOf: [{ type: 'integer' }, { type: 'string' }] }, rule)).toBe(1);
    expect(valueForSchema({ type: ['null', 'boolean'] }, rule)).toBe(true);
    const ordered = valueForSchema({ type: 'OBJECT', properties: { a: { type: 'NUMBER' }, b: { type: 'ARRAY' } }, propertyOrdering: ['b', 'a'] }, rule);
    expect(Object.keys(ordered as object)).toEqual(['b', 'a']);
  });

  it('stops on a schema that refers to itself', () => {
    const tree = { $ref: '#/$defs/node', $defs: { node: { type: 'object', properties: { child: { $ref: '#/$defs/node' } } } } };
    expect(JSON.stringify(valueForSchema(tree, { strings: 'x' }))).toContain('"child":null');
  });
});

describe('JSON schema answers', () => {
  const schema = {
    type: 'OBJECT',
    properties: { title: { type: 'STRING' }, score: { type: 'NUMBER' }, tags: { type: 'ARRAY', items: { type: 'STRING' } }, kind: { type: 'STRING', enum: ['a', 'b'] } },
    required: ['title', 'score', 'kind'],
  };

  it('answers JSON built from responseSchema, strings = the first 40 chars of the question', async () => {
    const question = 'Summarise the quarterly report of the north-east region for me';
    const r = await generate(sim, FLASH, KEY, withConfig(question, { responseMimeType: 'application/json', responseSchema: schema }));
    expect(r.status).toBe(200);
    expect(JSON.parse(answerText(r))).toEqual({ title: question.slice(0, 40), score: 1.5, kind: 'a' });
    expect(r.json.usageMetadata.candidatesTokenCount).toBe(tokensForText(answerText(r)));
  });

  it('answers JSON built from responseJsonSchema', async () => {
    const jsonSchema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' }, list: { type: 'array' } } };
    const r = await generate(sim, FLASH, KEY, withConfig('q', { responseMimeType: 'application/json', responseJsonSchema: jsonSchema }));
    expect(JSON.parse(answerText(r))).toEqual({ ok: true, n: 1, list: [] });
  });

  it('refuses both schemas at once, and any schema on Gemma', async () => {
    const both = await generate(sim, FLASH, KEY, withConfig('q', { responseSchema: schema, responseJsonSchema: { type: 'object' } }));
    expect(both.status).toBe(400);
    expect(both.json.error.message).toBe('response_schema must not be set when response_json_schema is set.');
    const gemma = await generate(sim, GEMMA, KEY, withConfig('q', { responseSchema: schema }));
    expect(gemma.json.error.message).toBe(`JSON mode is not enabled for models/${GEMMA}`);
  });

  it('keeps {model, echo} for JSON mode without a schema', async () => {
    const r = await generate(sim, FLASH, KEY, withConfig('plain json', { responseMimeType: 'application/json' }));
    expect(JSON.parse(answerText(r))).toEqual({ model: FLASH, echo: 'plain json' });
  });
});

describe('candidateCount', () => {
  it('answers n candidates, each with its index and a text that tells it apart', async () => {
    const r = await generate(sim, FLASH, KEY, withConfig('three ways', { candidateCount: 3 }));
    expect(r.json.candidates.map((c: { index: number }) => c.index)).toEqual([0, 1, 2]);
    expect([0, 1, 2].map((i) => answerText(r, i))).toEqual([`sim(${FLASH}): three ways`, `sim(${FLASH})#1: three ways`, `sim(${FLASH})#2: three ways`]);
    const all = [0, 1, 2].reduce((sum, i) => sum + tokensForText(answerText(r, i)), 0);
    expect(r.json.usageMetadata.candidatesTokenCount).toBe(all);
    expect(r.json.candidates.every((c: { finishReason: string }) => c.finishReason === 'STOP')).toBe(true);
  });

  it('streams every candidate\'s piece in each chunk', async () => {
    const body = withConfig('stream two candidates', { candidateCount: 2 });
    const plain = await generate(sim, FLASH, KEY, body);
    const r = await call(sim, 'POST', `/v1beta/models/${FLASH}:streamGenerateContent?alt=sse`, { key: KEY, body });
    const chunks = r.text.split('\r\n\r\n').filter((e) => e !== '').map((e) => JSON.parse(e.slice('data: '.length)));
    expect(chunks).toHaveLength(3);
    expect(chunks.every((c) => c.candidates.length === 2)).toBe(true);
    for (const i of [0, 1]) {
      expect(chunks.map((c) => c.candidates[i].content.parts[0].text).join('')).toBe(answerText(plain, i));
      expect(chunks.at(-1).candidates[i].finishReason).toBe('STOP');
    }
    expect(chunks.at(-1).usageMetadata).toEqual(plain.json.usageMetadata);
  });

  it('refuses several candidates on Gemma and more than 8 on Gemini; 0 means one', async () => {
    const gemma = await generate(sim, GEMMA, KEY, withConfig('q', { candidateCount: 2 }));
    expect(gemma.status).toBe(400);
    expect(gemma.json.error.message).toBe(`Multiple candidates is not enabled for models/${GEMMA}`);
    expect((await generate(sim, FLASH, KEY, withConfig('q', { candidateCount: 9 }))).status).toBe(400);
    expect((await generate(sim, FLASH, KEY, withConfig('q', { candidateCount: 8 }))).json.candidates).toHaveLength(8);
    expect((await generate(sim, GEMMA, KEY, withConfig('q', { candidateCount: 0 }))).json.candidates).toHaveLength(1);
  });
});

describe('thinking', () => {
  const usage = async (thinkingConfig?: unknown): Promise<any> => {
    const config = thinkingConfig === undefined ? {} : { thinkingConfig };
    const r = await generate(sim, FLASH, KEY, withConfig('think', config));
    expect(r.status).toBe(200);
    return r.json.usageMetadata;
  };

  it('reports thoughts when a budget or dynamic thinking is asked for, and counts them in the total', async () => {
    const on = await usage({ thinkingBudget: 1024 });
    expect(on.thoughtsTokenCount).toBe(SIM_THOUGHTS_TOKENS);
    expect(on.totalTokenCount).toBe(on.promptTokenCount + on.candidatesTokenCount + SIM_THOUGHTS_TOKENS);
    expect((await usage({ thinkingBudget: -1 })).thoughtsTokenCount).toBe(SIM_THOUGHTS_TOKENS);
    expect((await usage({ thinkingBudget: 3 })).thoughtsTokenCount).toBe(3); // a budget caps them
  });

  it('reports none for budget 0, or without thinkingConfig (unless the model is set to think unasked)', async () => {
    for (const u of [await usage({ thinkingBudget: 0 }), await usage()]) {
      expect(u.thoughtsTokenCount).toBeUndefined();
      expect(u.totalTokenCount).toBe(u.promptTokenCount + u.candidatesTokenCount);
    }
    const thinker = await startGoogleSimulator({ models: { [FLASH]: { defaultThoughtsTokens: 5 } } });
    try {
      const r = await generate(thinker, FLASH, KEY, ask('think'));
      expect(r.json.usageMetadata.thoughtsTokenCount).toBe(5);
    } finally {
      await thinker.close();
    }
  });

  it('refuses thinkingConfig on Gemma and a budget that is not an integer', async () => {
    const gemma = await generate(sim, GEMMA, KEY, withConfig('q', { thinkingConfig: { thinkingBudget: 0 } }));
    expect(gemma.status).toBe(400);
    expect(gemma.json.error.message).toBe(`Thinking is not enabled for models/${GEMMA}`);
    const bad = await generate(sim, FLASH, KEY, withConfig('q', { thinkingConfig: { thinkingBudget: 'lots' } }));
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32)");
  });
});

describe('knobs accepted and ignored', () => {
  it('accepts safetySettings, seed, penalties and logprobs of the right types', async () => {
    const r = await generate(sim, GEMMA, KEY, ask('q', {
      safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }],
      generationConfig: { seed: 7, presencePenalty: 0.5, frequencyPenalty: -0.25, responseLogprobs: true, logprobs: 3, temperature: 0.2, topP: 0.9, topK: 40, stopSequences: ['END'] },
    }));
    expect(r.status).toBe(200);
    expect(answerText(r)).toBe(`sim(${GEMMA}): q`);
  });

  it.each([
    ['seed', { generationConfig: { seed: 1.5 } }, "'generation_config.seed' (TYPE_INT32), 1.5"],
    ['presencePenalty', { generationConfig: { presencePenalty: 'high' } }, "'generation_config.presence_penalty' (TYPE_FLOAT)"],
    ['frequencyPenalty', { generationConfig: { frequency_penalty: true } }, "'generation_config.frequency_penalty' (TYPE_FLOAT)"],
    ['responseLogprobs', { generationConfig: { responseLogprobs: 'yes' } }, "'generation_config.response_logprobs' (TYPE_BOOL)"],
    ['logprobs', { generationConfig: { logprobs: '3' } }, "'generation_config.logprobs' (TYPE_INT32)"],
    ['safetySettings', { safetySettings: { category: 'x' } }, "'safety_settings'"],
    ['safety category', { safety_settings: [{ category: 7, threshold: 'BLOCK_NONE' }] }, "'safety_settings[0].category'"],
    ['safety threshold', { safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: null }, { threshold: 2 }] }, "'safety_settings[1].threshold'"],
  ])('refuses a wrong %s type with Google\'s "Invalid value at"', async (_label, extra, where) => {
    const r = await generate(sim, FLASH, KEY, ask('q', extra));
    expect(r.status).toBe(400);
    expect(r.json.error.status).toBe('INVALID_ARGUMENT');
    expect(r.json.error.message).toContain(`Invalid value at ${where}`);
  });
});
