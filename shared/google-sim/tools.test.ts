// Function calling: when the simulated model calls, the args it builds, and Google's 400s.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { ask, call, generate } from './test-helpers.ts';
import { tokensForText, utf8Bytes } from './tokens.ts';

const GEMMA = 'gemma-3-27b-it';
const FLASH = 'gemini-2.5-flash';
const KEY = 'sim-key-a1';

let sim: GoogleSimulator;
beforeAll(async () => {
  sim = await startGoogleSimulator({ models: { [FLASH]: { rpm: 10_000, rpd: 100_000 } } });
});
afterAll(() => sim.close());

const weather = {
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: {
    type: 'OBJECT',
    properties: {
      city: { type: 'STRING' },
      days: { type: 'INTEGER' },
      unit: { type: 'STRING', enum: ['celsius', 'fahrenheit'] },
      detailed: { type: 'BOOLEAN' },
    },
    required: ['city', 'unit'],
  },
};
const book = {
  name: 'book_table',
  parametersJsonSchema: {
    type: 'object',
    properties: {
      guests: { type: 'integer' },
      price: { type: ['number', 'null'] },
      when: { type: 'object', properties: { day: { type: 'string' }, late: { type: 'boolean' } } },
      tags: { type: 'array', items: { type: 'string' } },
      place: { $ref: '#/$defs/place' },
    },
    $defs: { place: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } },
  },
};
const tools = [{ functionDeclarations: [weather, book] }];

describe('function calls', () => {
  it('calls the declared function named in the last user text (mode unset = AUTO), with args from the OpenAPI schema', async () => {
    const r = await generate(sim, FLASH, KEY, ask('please get_weather for me', { tools }));
    expect(r.status).toBe(200);
    expect(r.json.candidates).toEqual([
      {
        content: { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'sim', unit: 'celsius' } } }] },
        finishReason: 'STOP',
        index: 0,
      },
    ]);
    const part = r.json.candidates[0].content.parts[0];
    expect(r.json.usageMetadata.candidatesTokenCount).toBe(tokensForText(JSON.stringify(part)));
  });

  it('builds args from a JSON Schema: all properties when none is required, $ref, type lists, nesting', async () => {
    const r = await generate(sim, FLASH, KEY, ask('book_table tonight', { tools }));
    expect(r.json.candidates[0].content.parts[0].functionCall).toEqual({
      name: 'book_table',
      args: { guests: 1, price: 1.5, when: { day: 'sim', late: true }, tags: [], place: { name: 'sim' } },
    });
  });

  it('answers text when no declared name is mentioned, and under mode NONE', async () => {
    const plain = await generate(sim, FLASH, KEY, ask('hello there', { tools }));
    expect(plain.json.candidates[0].content.parts).toEqual([{ text: `sim(${FLASH}): hello there` }]);
    const none = await generate(sim, FLASH, KEY, ask('get_weather', { tools, toolConfig: { functionCallingConfig: { mode: 'NONE' } } }));
    expect(none.json.candidates[0].content.parts[0].text).toBeDefined();
  });

  it('mode ANY always calls, restricted to allowedFunctionNames', async () => {
    const any = await generate(sim, FLASH, KEY, ask('whatever', { tools, toolConfig: { functionCallingConfig: { mode: 'ANY' } } }));
    expect(any.json.candidates[0].content.parts[0].functionCall.name).toBe('get_weather');
    const only = await generate(sim, FLASH, KEY, ask('get_weather please', {
      tools,
      tool_config: { function_calling_config: { mode: 'ANY', allowed_function_names: ['book_table'] } },
    }));
    expect(only.json.candidates[0].content.parts[0].functionCall.name).toBe('book_table');
  });

  it('streams a call as one chunk', async () => {
    const r = await call(sim, 'POST', `/v1beta/models/${FLASH}:streamGenerateContent?alt=sse`, { key: KEY, body: ask('get_weather', { tools }) });
    const events = r.text.split('\r\n\r\n').filter((e) => e !== '');
    expect(events).toHaveLength(1);
    const chunk = JSON.parse(events[0]!.slice('data: '.length));
    expect(chunk.candidates[0]).toMatchObject({ finishReason: 'STOP', content: { parts: [{ functionCall: { name: 'get_weather' } }] } });
  });

  it('accepts a functionResponse turn, counts it by its JSON bytes, and answers text', async () => {
    const response = { functionResponse: { name: 'get_weather', response: { temperature: 21 } } };
    const body = {
      tools,
      contents: [
        { role: 'user', parts: [{ text: 'get_weather' }] },
        { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'sim', unit: 'celsius' } } }] },
        { role: 'user', parts: [response] },
      ],
    };
    const r = await generate(sim, FLASH, KEY, body);
    expect(r.status).toBe(200);
    expect(r.json.candidates[0].content.parts[0].text).toBe(`sim(${FLASH}): `);
    const call0 = { functionCall: { name: 'get_weather', args: { city: 'sim', unit: 'celsius' } } };
    const bytes = utf8Bytes('get_weather') + utf8Bytes(JSON.stringify(call0)) + utf8Bytes(JSON.stringify(response));
    expect(r.json.usageMetadata.promptTokenCount).toBe(Math.ceil(bytes / 4));
  });
});

describe('function calling errors', () => {
  it('refuses tools on Gemma', async () => {
    const r = await generate(sim, GEMMA, KEY, ask('get_weather', { tools }));
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: `Function calling is not enabled for models/${GEMMA}` });
  });

  it.each([
    ['missing', { description: 'no name' }],
    ['starting with a digit', { name: '1st' }],
    ['with a space', { name: 'get weather' }],
    ['too long', { name: 'f'.repeat(65) }],
  ])('refuses a declaration whose name is %s', async (_label, decl) => {
    const r = await generate(sim, FLASH, KEY, ask('x', { tools: [{ functionDeclarations: [weather, decl] }] }));
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('tools[0].function_declarations[1].name: Invalid function name');
  });

  it('refuses an unknown mode, a non-array tools and an undeclared allowed name', async () => {
    const mode = await generate(sim, FLASH, KEY, ask('x', { tools, toolConfig: { functionCallingConfig: { mode: 'SOMETIMES' } } }));
    expect(mode.status).toBe(400);
    expect(mode.json.error.message).toContain("Invalid value at 'tool_config.function_calling_config.mode'");
    expect((await generate(sim, FLASH, KEY, ask('x', { tools: { functionDeclarations: [weather] } }))).status).toBe(400);
    const allowed = await generate(sim, FLASH, KEY, ask('x', { tools, toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['nope'] } } }));
    expect(allowed.status).toBe(400);
  });

  it('accepts other tool kinds without simulating them', async () => {
    const r = await generate(sim, FLASH, KEY, ask('search the web', { tools: [{ googleSearch: {} }] }));
    expect(r.status).toBe(200);
    expect(r.json.candidates[0].content.parts[0].text).toBe(`sim(${FLASH}): search the web`);
  });
});
