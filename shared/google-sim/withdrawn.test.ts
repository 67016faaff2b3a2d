// Withdrawn models and the models of December 2026, through @google/genai: a withdrawn model gets
// Google's own 404 on generate, stream and countTokens and leaves models.list, by option or at run
// time (programmatic and over /__sim/withdrawn); the calls it still gets are counted per model.
// Gemma 4 takes what Gemma 3 refused.

import { ApiError, GoogleGenAI, Type } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { call } from './test-helpers.ts';
import { MODEL_GET_NOT_FOUND_WORDINGS, MODEL_NOT_FOUND_WORDINGS, modelNotFound } from './errors.ts';

const GEMMA3 = 'gemma-3-27b-it';
const GEMMA4 = 'gemma-4-31b-it';
const FLASH = 'gemini-2.5-flash';
// The run's wording (drawn from GOOGLE_SIM_WORDING_SEED, wordings.ts): the same on every call of a run.
const notFound = (m: string, method: string) => modelNotFound(m, method).body.error.message;

let sim: GoogleSimulator;
let ai: GoogleGenAI;
beforeAll(async () => {
  sim = await startGoogleSimulator({ models: { [FLASH]: { withdrawn: true } } });
  ai = new GoogleGenAI({ apiKey: 'sim-key-a1', httpOptions: { baseUrl: sim.url } });
});
afterAll(() => sim.close());
beforeEach(() => {
  sim.setWithdrawn([]);
  sim.reset();
});

async function apiError(p: Promise<unknown>): Promise<{ status: number; body: any }> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ApiError);
  return { status: (e as ApiError).status, body: JSON.parse((e as ApiError).message) };
}

async function listed(): Promise<string[]> {
  const names: string[] = [];
  for await (const m of await ai.models.list()) names.push(m.name ?? '');
  return names;
}

describe('withdrawn models', () => {
  it('a model_not_found fault: the 404 on the methods it names, models.get still answers the model', async () => {
    sim.addFault({ kind: 'model_not_found', model: GEMMA4, count: 1 });
    const gen = await apiError(ai.models.generateContent({ model: GEMMA4, contents: 'x' }));
    expect(gen.body.error).toEqual({ code: 404, message: notFound(GEMMA4, 'generateContent'), status: 'NOT_FOUND' });
    expect((await ai.models.get({ model: GEMMA4 })).name).toBe(`models/${GEMMA4}`);
    sim.addFault({ kind: 'model_not_found', model: GEMMA4, count: 1, message: 'not here' });
    expect((await apiError(ai.models.generateContent({ model: GEMMA4, contents: 'x' }))).body.error.message)
      .toBe('not here');
    expect((await ai.models.generateContent({ model: GEMMA4, contents: 'x' })).text).toContain('x');
  });

  it('by option: 404 NOT_FOUND in Google words on generate, stream and countTokens; absent from models.list', async () => {
    const gen = await apiError(ai.models.generateContent({ model: FLASH, contents: 'x' }));
    expect(gen.status).toBe(404);
    expect(gen.body.error).toEqual({ code: 404, message: notFound(FLASH, 'generateContent'), status: 'NOT_FOUND' });
    const stream = await apiError(ai.models.generateContentStream({ model: FLASH, contents: 'x' }));
    expect(stream.body.error.status).toBe('NOT_FOUND');
    const count = await apiError(ai.models.countTokens({ model: FLASH, contents: 'x' }));
    expect(count.body.error.message).toBe(notFound(FLASH, 'countTokens'));
    expect(await listed()).not.toContain(`models/${FLASH}`);
    expect(await listed()).toContain(`models/${GEMMA3}`);
    // Counted per model all the same: a test can assert how many calls still reached "Google".
    expect(sim.stats().byModel[FLASH]?.received).toBe(3);
    expect(sim.withdrawnModels()).toEqual([FLASH]);
  });

  it('at run time, and back', async () => {
    expect((await ai.models.generateContent({ model: GEMMA3, contents: 'x' })).text).toBe(`sim(${GEMMA3}): x`);
    sim.withdraw(GEMMA3);
    expect((await apiError(ai.models.generateContent({ model: GEMMA3, contents: 'x' }))).status).toBe(404);
    expect(await listed()).not.toContain(`models/${GEMMA3}`);
    sim.restore(GEMMA3);
    expect((await ai.models.generateContent({ model: GEMMA3, contents: 'x' })).text).toBe(`sim(${GEMMA3}): x`);
    sim.restore(FLASH); // a spec's withdrawal can be undone at run time too
    expect((await ai.models.generateContent({ model: FLASH, contents: 'x' })).text).toBe(`sim(${FLASH}): x`);
    sim.setWithdrawn([]);
  });

  it('over the control API', async () => {
    const put = await call(sim, 'PUT', '/__sim/withdrawn', { body: { models: [GEMMA3] } });
    expect(put.json.models).toEqual([FLASH, GEMMA3].sort());
    expect((await apiError(ai.models.generateContent({ model: GEMMA3, contents: 'x' }))).status).toBe(404);
    await call(sim, 'DELETE', '/__sim/withdrawn', { body: { model: GEMMA3 } });
    expect((await call(sim, 'GET', '/__sim/withdrawn')).json.models).toEqual([FLASH]);
    expect((await call(sim, 'POST', '/__sim/withdrawn', { body: { nope: 1 } })).status).toBe(400);
  });
});

describe('the models of December 2026', () => {
  it('Gemma 4 takes a system instruction and tools; Gemma 3 still refuses them', async () => {
    const r = await ai.models.generateContent({
      model: GEMMA4,
      contents: 'call lookup please',
      config: {
        systemInstruction: 'be brief',
        tools: [{ functionDeclarations: [{ name: 'lookup', parameters: { type: Type.OBJECT, properties: {} } }] }],
      },
    });
    expect(r.functionCalls?.[0]?.name).toBe('lookup');
    const e = await apiError(ai.models.generateContent({ model: GEMMA3, contents: 'x', config: { systemInstruction: 'no' } }));
    expect(e.status).toBe(400);
  });

  it('models.list names them', async () => {
    expect(await listed()).toEqual(expect.arrayContaining(
      ['gemma-4-31b-it', 'gemma-4-26b-a4b-it', 'gemini-2.5-flash-lite', 'gemini-3.1-flash-lite', 'gemini-3.5-flash',
        'gemini-3.5-flash-lite'].map((m) => `models/${m}`),
    ));
  });

  it('worded as drawn for the run: each wording appears for some seed, the same seed always says the same', () => {
    const calls = new Set<string>();
    const gets = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      calls.add(modelNotFound(GEMMA3, 'generateContent', GEMMA4, seed).body.error.message);
      gets.add(modelNotFound(GEMMA3, 'get', undefined, seed).body.error.message);
      expect(modelNotFound(GEMMA3, 'get', undefined, seed)).toEqual(modelNotFound(GEMMA3, 'get', undefined, seed));
    }
    expect(calls.size).toBe(MODEL_NOT_FOUND_WORDINGS.length);
    expect(gets.size).toBe(MODEL_GET_NOT_FOUND_WORDINGS.length);
    // Google's own models.get sentence is among them (google-errors.md).
    expect(gets).toContain(`Model is not found: models/${GEMMA3} for api version v1beta`);
    // Always the same structure: 404 NOT_FOUND, no details.
    for (let seed = 0; seed < 20; seed++) {
      expect(modelNotFound(GEMMA3, 'countTokens', undefined, seed)).toMatchObject({ status: 404,
        body: { error: { code: 404, status: 'NOT_FOUND' } } });
      expect(modelNotFound(GEMMA3, 'countTokens', undefined, seed).body.error).not.toHaveProperty('details');
    }
  });
});
