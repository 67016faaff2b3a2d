// Thought signatures (Gemini 3): a model configured with thoughtSignatures 'required' signs its
// function calls and text answers, and refuses a current turn that replays a call without its
// signature, or with one it never issued; models without the option behave as before.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSimulator, type GoogleSimulator } from './server.ts';
import { CORRUPTED_SIGNATURE_MESSAGE, missingSignatureMessage } from './signatures.ts';
import { ask, call, generate } from './test-helpers.ts';

const G3 = 'gemini-3.5-flash';
const OTHER_G3 = 'gemini-3.8-flash';
const FLASH = 'gemini-2.5-flash';
const KEY = 'sim-key-a1';
const generous = { rpm: 10_000, rpd: 100_000 };

let sim: GoogleSimulator;
beforeAll(async () => {
  sim = await startGoogleSimulator({
    models: {
      [FLASH]: generous,
      [G3]: { ...generous, thoughtSignatures: 'required' },
      [OTHER_G3]: { ...generous, thoughtSignatures: 'required' },
    },
  });
});
afterAll(() => sim.close());

const weather = { name: 'get_weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } };
const time = { name: 'get_time', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } };
const tools = [{ functionDeclarations: [weather, time] }];
const QUESTION = 'call get_weather for Riga';

/** The model's function-call turn for QUESTION, as the model answered it. */
async function callTurn(model = G3): Promise<{ role: string; parts: Array<Record<string, any>> }> {
  const res = await generate(sim, model, KEY, ask(QUESTION, { tools }));
  expect(res.status).toBe(200);
  return res.json.candidates[0].content;
}

/** The request after the tool ran: question, the model's call turn, the tool's result. */
function replay(modelTurn: unknown, extra: Array<Record<string, unknown>> = []): Record<string, unknown> {
  return {
    contents: [
      { role: 'user', parts: [{ text: QUESTION }] },
      modelTurn,
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temperature_c: 3 } } }] },
      ...extra,
    ],
    tools,
  };
}

describe('a model that requires thought signatures', () => {
  it('signs its function call, and the round trip with the signature succeeds', async () => {
    const turn = await callTurn();
    expect(turn.parts).toHaveLength(1);
    expect(turn.parts[0]!.functionCall.name).toBe('get_weather');
    expect(typeof turn.parts[0]!.thoughtSignature).toBe('string');
    expect(turn.parts[0]!.thoughtSignature.length).toBeGreaterThan(20);

    const final = await generate(sim, G3, KEY, replay(turn));
    expect(final.status).toBe(200);
    expect(final.json.candidates[0].content.parts[0].text).toBe(`sim(${G3}): `);
  });

  it("refuses the same round trip without the signature, with Google's 400 naming the call and its position", async () => {
    const turn = await callTurn();
    const { thoughtSignature: _dropped, ...unsigned } = turn.parts[0]!;
    const res = await generate(sim, G3, KEY, replay({ ...turn, parts: [unsigned] }));
    expect(res.status).toBe(400);
    expect(res.json.error).toEqual({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: missingSignatureMessage('get_weather', 2),
    });
    expect(res.json.error.message).toContain('Function call is missing a thought_signature in functionCall parts');
  });

  it('refuses a signature it never issued: altered, moved to another function, or from another model', async () => {
    const turn = await callTurn();
    const signature: string = turn.parts[0]!.thoughtSignature;
    const flipped = signature.slice(0, 5) + (signature[5] === 'A' ? 'B' : 'A') + signature.slice(6);
    const moved = { ...turn, parts: [{ functionCall: { name: 'get_time', args: { city: 'sim' } }, thoughtSignature: signature }] };
    for (const body of [
      replay({ ...turn, parts: [{ ...turn.parts[0], thoughtSignature: flipped }] }),
      replay({ ...turn, parts: [{ ...turn.parts[0], thoughtSignature: 'made-up' }] }),
      replay(moved),
    ]) {
      const res = await generate(sim, G3, KEY, body);
      expect(res.status).toBe(400);
      expect(res.json.error.message).toBe(CORRUPTED_SIGNATURE_MESSAGE);
    }
    const elsewhere = await generate(sim, OTHER_G3, KEY, replay(turn));
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.json.error.message).toBe(CORRUPTED_SIGNATURE_MESSAGE);
  });

  it('accepts snake_case thought_signature and the skip value Google documents', async () => {
    const turn = await callTurn();
    const { thoughtSignature, ...rest } = turn.parts[0]!;
    expect((await generate(sim, G3, KEY, replay({ ...turn, parts: [{ ...rest, thought_signature: thoughtSignature }] }))).status).toBe(200);
    const skip = { ...rest, thoughtSignature: 'skip_thought_signature_validator' };
    expect((await generate(sim, G3, KEY, replay({ ...turn, parts: [skip] }))).status).toBe(200);
  });

  it('checks only the current turn: an unsigned call before the last user message is accepted', async () => {
    const turn = await callTurn();
    const { thoughtSignature: _dropped, ...unsigned } = turn.parts[0]!;
    const res = await generate(sim, G3, KEY, replay({ ...turn, parts: [unsigned] }, [
      { role: 'model', parts: [{ text: 'It is 3 degrees.' }] },
      { role: 'user', parts: [{ text: 'thanks' }] },
    ]));
    expect(res.status).toBe(200);
  });

  it('parallel calls: only the first call of a step needs the signature', async () => {
    const turn = await callTurn();
    const second = { functionCall: { name: 'get_time', args: { city: 'sim' } } };
    const twoCalls = {
      contents: [
        { role: 'user', parts: [{ text: QUESTION }] },
        { ...turn, parts: [turn.parts[0], second] },
        {
          role: 'user',
          parts: [
            { functionResponse: { name: 'get_weather', response: { temperature_c: 3 } } },
            { functionResponse: { name: 'get_time', response: { time: '10:00' } } },
          ],
        },
      ],
      tools,
    };
    expect((await generate(sim, G3, KEY, twoCalls)).status).toBe(200);
    const { thoughtSignature: _dropped, ...unsignedFirst } = turn.parts[0]!;
    const swapped = structuredClone(twoCalls);
    swapped.contents[1]!.parts = [unsignedFirst, second];
    const res = await generate(sim, G3, KEY, swapped);
    expect(res.status).toBe(400);
    expect(res.json.error.message).toBe(missingSignatureMessage('get_weather', 2));
  });

  it('streams the signature in the chunk with the call, and at the end of a text answer', async () => {
    const streamed = await call(sim, 'POST', `/v1beta/models/${G3}:streamGenerateContent?alt=sse`, {
      key: KEY,
      body: ask(QUESTION, { tools }),
    });
    const chunks = sseChunks(streamed.text);
    expect(chunks).toHaveLength(1);
    const part = chunks[0]!.candidates[0].content.parts[0];
    expect(part.functionCall.name).toBe('get_weather');
    expect(typeof part.thoughtSignature).toBe('string');
    expect((await generate(sim, G3, KEY, replay(chunks[0]!.candidates[0].content))).status).toBe(200);

    const text = await call(sim, 'POST', `/v1beta/models/${G3}:streamGenerateContent?alt=sse`, {
      key: KEY,
      body: ask('a plain question'),
    });
    const textChunks = sseChunks(text.text);
    expect(textChunks.length).toBeGreaterThan(1);
    const signed = textChunks.map((c) => c.candidates[0].content.parts.some((p: any) => typeof p.thoughtSignature === 'string'));
    expect(signed).toEqual([...textChunks.slice(1).map(() => false), true]);
  });
});

describe('models without the option', () => {
  it('answer without signatures and take an unsigned history, as before', async () => {
    const turn = await callTurn(FLASH);
    expect(turn.parts[0]).not.toHaveProperty('thoughtSignature');
    const res = await generate(sim, FLASH, KEY, replay(turn));
    expect(res.status).toBe(200);
    expect(res.json.candidates[0].content.parts[0]).not.toHaveProperty('thoughtSignature');
  });

  it('a wrong option value is refused when the simulator starts', async () => {
    await expect(startGoogleSimulator({ models: { [G3]: { thoughtSignatures: 'always' as never } } })).rejects.toThrow(
      /thoughtSignatures must be one of off, required/,
    );
  });
});

function sseChunks(text: string): any[] {
  return text
    .split('\r\n\r\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => JSON.parse(e.slice('data: '.length)));
}
