// The simulator driven through OpenAI's official SDK, unchanged but for baseURL and apiKey: proves
// the paths, headers, bodies and SSE framing are what the SDK sends and parses, and how OpenAI's
// errors surface through it.

import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ARG_STRING, startOpenAISimulator, type OpenAISimulator } from './server.ts';
import { fakeClock } from './test-helpers.ts';

let sim: OpenAISimulator;
let client: OpenAI;
beforeAll(async () => {
  sim = await startOpenAISimulator({
    // One minute for the whole file: the counts below cannot straddle a window.
    now: fakeClock('2026-11-27T10:00:00Z').now,
    organizations: {
      // gpt-4o's Tier 1 TPM (30 000) books about seven requests without max_tokens: room for this file.
      'org-sim-a': { keys: ['sk-sim-a1'], limits: { 'gpt-4o-mini': { rpm: 2 }, 'gpt-4o': { tpm: 1_000_000 } } },
      'org-sim-broke': { keys: ['sk-sim-broke'], wallet: 'empty' },
    },
  });
  client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-sim-a1', maxRetries: 0 });
});
afterAll(() => sim.close());

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OpenAI.APIError);
  return e as InstanceType<typeof OpenAI.APIError>;
}

describe('the openai SDK against the simulator', () => {
  it('chat: the answer, its usage and the rate-limit headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello from the sdk' }], max_tokens: 100 })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('sim(gpt-4o): hello from the sdk');
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.model).toBe('gpt-4o-2024-08-06');
    // 3 + (3 + ceil(18 / 4)) prompt tokens; ceil(31 / 4) completion tokens
    expect(data.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 8, total_tokens: 19 });
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('500');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('499');
    // TPM books input + max_tokens on arrival: 1 000 000 - (11 + 100)
    expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe('999889');
    expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$/);
  });

  it('stream with include_usage: the pieces join to the answer and the last chunk carries the usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'stream this please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('sim(gpt-4o): stream this please');
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 8, total_tokens: 19 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks[chunks.length - 2]!.choices[0]!.finish_reason).toBe('stop');
    expect(sim.stats().streams.completed).toBeGreaterThanOrEqual(1);
  });

  it('tools: a named function is called with arguments that fit its parameters, and its result answered', async () => {
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer' } },
            required: ['city', 'unit', 'days'],
            additionalProperties: false,
          },
          strict: true,
        },
      },
    ];
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'call get_weather for Oslo' }];
    const first = await client.chat.completions.create({ model: 'gpt-4o', messages, tools });
    const call = first.choices[0]!.message.tool_calls![0]!;
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type).toBe('function');
    if (call.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: FUNCTION_ARG_STRING, unit: 'celsius', days: 1 });

    const second = await client.chat.completions.create({
      model: 'gpt-4o',
      tools,
      messages: [...messages, first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 3}' }],
    });
    expect(second.choices[0]!.finish_reason).toBe('stop');
    expect(second.choices[0]!.message.tool_calls).toBeUndefined();

    // The same call streamed: the SDK's accumulator rebuilds it from the pieces.
    const streamed = client.chat.completions.stream({ model: 'gpt-4o', messages, tools });
    const done = await streamed.finalChatCompletion();
    const again = done.choices[0]!.message.tool_calls![0]!;
    if (again.type !== 'function') throw new Error('expected a function call');
    expect(JSON.parse(again.function.arguments)).toEqual({ city: FUNCTION_ARG_STRING, unit: 'celsius', days: 1 });
  });

  it('allowed_tools: the call is among the listed tools, optional in auto, forced in required; custom tools taken', async () => {
    const fn = (name: string): OpenAI.Chat.Completions.ChatCompletionTool => ({
      type: 'function',
      function: { name, parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    });
    const tools = [fn('get_weather'), fn('get_time'), { type: 'custom' as const, custom: { name: 'sql' } }];
    const allowed = (mode: 'auto' | 'required') => ({
      type: 'allowed_tools' as const,
      allowed_tools: { mode, tools: [{ type: 'function', function: { name: 'get_time' } }] },
    });
    const ask = (content: string, mode: 'auto' | 'required') =>
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }], tools, tool_choice: allowed(mode) });
    // get_weather is named but not allowed: auto answers in text, required calls the allowed one.
    expect((await ask('get_weather in Oslo', 'auto')).choices[0]!.message.tool_calls).toBeUndefined();
    const forced = (await ask('get_weather in Oslo', 'required')).choices[0]!.message.tool_calls![0]!;
    expect(forced.type === 'function' && forced.function.name).toBe('get_time');
    const chosen = (await ask('get_time in Oslo', 'auto')).choices[0]!.message.tool_calls![0]!;
    expect(chosen.type === 'function' && chosen.function.name).toBe('get_time');
    const stray = await apiError(client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      tools,
      tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [{ type: 'function', function: { name: 'nope' } }] } },
    }));
    expect(stray.param).toBe('tool_choice.allowed_tools.tools[0]');
  });

  it('strict JSON schema: the answer parses and fits the schema', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Parse: concert on Friday at 8' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'event',
          strict: true,
          schema: {
            type: 'object',
            properties: {
              title: { type: 'string' },
              weekday: { type: 'string', enum: ['friday', 'saturday'] },
              hour: { type: 'integer' },
              price: { type: ['number', 'null'] },
              tags: { type: 'array', items: { type: 'string' } },
              venue: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false },
            },
            required: ['title', 'weekday', 'hour', 'price', 'tags', 'venue'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(JSON.parse(r.choices[0]!.message.content!)).toEqual({
      title: 'Parse: concert on Friday at 8',
      weekday: 'friday',
      hour: 1,
      price: 1.5,
      tags: [],
      venue: { name: 'Parse: concert on Friday at 8' },
    });

    // A strict schema OpenAI would refuse (a property left out of `required`) is refused here too.
    const e = await apiError(client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'bad', strict: true, schema: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false } },
      },
    }));
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(e.param).toBe('response_format');
  });

  it("any schema, strict or not: an object at the root of response_format, JSON Schema's type names", async () => {
    const asked = (schema: Record<string, unknown>) => apiError(client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'loose', schema } },
    }));
    for (const schema of [{ type: 'array', items: { type: 'string' } }, { type: 'OBJECT', properties: {} },
      { type: 'object', properties: { a: { type: 'STRING' } } }]) {
      const e = await asked(schema);
      expect(e, JSON.stringify(schema)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(e.param).toBe('response_format');
    }
    const tool = await apiError(client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'OBJECT', properties: {} } } }],
    }));
    expect(tool).toBeInstanceOf(OpenAI.BadRequestError);
    expect(tool.param).toBe('tools[0].function.parameters');
    // Lower-case JSON Schema, a nullable type among them, is answered.
    const fine = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'loose', schema: { type: 'object', properties: { a: { type: ['string', 'null'] } } } },
      },
    });
    expect(JSON.parse(fine.choices[0]!.message.content!)).toEqual({ a: 'x' });
  });

  it('logprobs: one entry per token, with the top alternatives asked for', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'abcdefgh' }],
      logprobs: true,
      top_logprobs: 2,
    });
    const content = r.choices[0]!.message.content!;
    const entries = r.choices[0]!.logprobs!.content!;
    expect(entries.map((e) => e.token).join('')).toBe(content);
    expect(entries).toHaveLength(r.usage!.completion_tokens);
    for (const e of entries) {
      expect(e.logprob).toBeLessThan(0);
      expect(e.top_logprobs).toHaveLength(2);
      expect(e.top_logprobs[0]!.token).toBe(e.token);
    }
  });

  it('n choices, streamed and not: choice i > 0 is marked #i; the SDK rebuilds every choice from the stream', async () => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'two please' }], n: 2 };
    const r = await client.chat.completions.create(body);
    expect(r.choices.map((c) => c.message.content)).toEqual(['sim(gpt-4o): two please', 'sim(gpt-4o)#1: two please']);
    const streamed = await client.chat.completions.stream(body).finalChatCompletion();
    expect(streamed.choices.map((c) => c.message.content)).toEqual(['sim(gpt-4o): two please', 'sim(gpt-4o)#1: two please']);
  });

  it('models: list and retrieve; a withdrawn model is absent and answers 404 model_not_found', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain('gpt-4o');
    expect(ids).not.toContain('gpt-3.5-turbo');
    expect((await client.models.retrieve('gpt-4o')).id).toBe('gpt-4o');
    const e = await apiError(client.models.retrieve('gpt-3.5-turbo'));
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect(e.code).toBe('model_not_found');
    const c = await apiError(client.chat.completions.create({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'x' }] }));
    expect(c.status).toBe(404);
    expect(c.code).toBe('model_not_found');
  });

  it('RateLimitError on the RPM limit, with the headers; insufficient_quota is the same status told apart by code', async () => {
    const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'x' }], max_tokens: 10 };
    await client.chat.completions.create(ask);
    await client.chat.completions.create(ask);
    const limited = await apiError(client.chat.completions.create(ask));
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.status).toBe(429);
    expect(limited.code).toBe('rate_limit_exceeded');
    expect(limited.type).toBe('requests');
    expect(limited.headers?.get('x-ratelimit-limit-requests')).toBe('2');
    expect(limited.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(limited.headers?.get('x-ratelimit-reset-requests')).toMatch(/s$/);

    const broke = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-sim-broke', maxRetries: 0 });
    const empty = await apiError(broke.chat.completions.create({ ...ask, model: 'gpt-4o' }));
    expect(empty).toBeInstanceOf(OpenAI.RateLimitError);
    expect(empty.code).toBe('insufficient_quota');
    expect(empty.type).toBe('insufficient_quota');
  });

  it('AuthenticationError for a key no organization has', async () => {
    const stranger = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-not-a-sim-key-123456', maxRetries: 0 });
    const e = await apiError(stranger.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }));
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(e.code).toBe('invalid_api_key');
    expect(e.message).not.toContain('sk-not-a-sim-key-123456');
  });

  it('service_tier: flex and priority answer that they served it, whole and streamed; others default; an unknown one 400', async () => {
    const ask = (service_tier: 'auto' | 'flex' | 'priority' | undefined) =>
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'tier' }], service_tier });
    expect((await ask('flex')).service_tier).toBe('flex');
    expect((await ask('priority')).service_tier).toBe('priority');
    expect((await ask('auto')).service_tier).toBe('default');
    expect((await ask(undefined)).service_tier).toBe('default');
    const stream = await client.chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'tier' }], service_tier: 'flex', stream: true,
    });
    const tiers = new Set<string | null | undefined>();
    for await (const chunk of stream) tiers.add(chunk.service_tier);
    expect([...tiers]).toEqual(['flex']);
    const e = await apiError(client.chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: 'tier' }], service_tier: 'standard' as never,
    }));
    expect(e.status).toBe(400);
    expect(e.param).toBe('service_tier');
  });
});
