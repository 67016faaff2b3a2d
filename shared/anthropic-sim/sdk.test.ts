// The simulator driven through Anthropic's official TypeScript SDK, unchanged but for baseURL and
// apiKey: proves the paths, headers, bodies and named SSE events are what the SDK sends and parses,
// and how Anthropic's errors surface through it.

import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeClock } from '../sim-core/test-helpers.ts';
import { startAnthropicSimulator, type AnthropicSimulator } from './server.ts';

const clock = fakeClock('2026-11-27T10:00:00Z');
let sim: AnthropicSimulator;
let client: Anthropic;
beforeAll(async () => {
  sim = await startAnthropicSimulator({
    now: clock.now,
    organizations: {
      'org-sim-a': { keys: ['sk-ant-sim-a1'] },
      'org-sim-credit': { keys: ['sk-ant-credit'], wallet: 'credit' },
      'org-sim-billing': { keys: ['sk-ant-billing'], wallet: 'billing' },
      'org-sim-spend': { keys: ['sk-ant-spend'], wallet: 'spend_limit' },
      'org-sim-workspace': { keys: ['sk-ant-workspace'], wallet: 'workspace_limit' },
    },
  });
  client = new Anthropic({ baseURL: sim.url, apiKey: 'sk-ant-sim-a1', maxRetries: 0 });
});
afterAll(() => sim.close());

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(Anthropic.APIError);
  return e as InstanceType<typeof Anthropic.APIError>;
}

const ask = (text: string, extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}): Anthropic.MessageCreateParamsNonStreaming => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 100,
  messages: [{ role: 'user', content: text }],
  ...extra,
});

describe('the Anthropic SDK against the simulator', () => {
  it('messages: the answer, its usage and the rate-limit headers (output booked as max_tokens, corrected at the end)', async () => {
    const { data, response } = await client.messages.create(ask('hello from the sdk')).withResponse();
    expect(data.content).toEqual([{ type: 'text', text: 'sim(claude-sonnet-4-5): hello from the sdk' }]);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.model).toBe('claude-sonnet-4-5-20250929');
    // 3 + 4 + ceil(18 / 4) input tokens; ceil(42 / 4) output tokens
    expect(data.usage).toMatchObject({ input_tokens: 12, output_tokens: 11, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    expect(response.headers.get('anthropic-ratelimit-requests-limit')).toBe('50');
    expect(response.headers.get('anthropic-ratelimit-requests-remaining')).toBe('49');
    expect(response.headers.get('anthropic-ratelimit-input-tokens-remaining')).toBe(String(30_000 - 12));
    expect(response.headers.get('anthropic-ratelimit-output-tokens-remaining')).toBe(String(8_000 - 11));
    expect(response.headers.get('anthropic-ratelimit-requests-reset')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    const got = sim.stats().received.at(-1)!;
    // The SDK names its API version (2023-06-01 in Anthropic's docs, a later date from SDK 1.x) and
    // sends the key as a Bearer token; the simulator takes both headers.
    expect(got.anthropicVersion).toMatch(/^\d{4}-\d\d-\d\d$/);
    expect(got.credentialHeader).toBe('authorization');
    expect(got.body).toMatchObject({ model: 'claude-sonnet-4-5', max_tokens: 100 });
  });

  it('streams named events (ping among them) that the SDK rebuilds into the same message', async () => {
    const names: string[] = [];
    const stream = await client.messages.create({ ...ask('stream this please'), stream: true });
    let text = '';
    for await (const event of stream) {
      names.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    expect(text).toBe('sim(claude-sonnet-4-5): stream this please');
    expect(names[0]).toBe('message_start');
    expect(names.at(-2)).toBe('message_delta');
    expect(names.at(-1)).toBe('message_stop');
    const final = await client.messages.stream(ask('stream this please')).finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: 'sim(claude-sonnet-4-5): stream this please' }]);
    expect(final.usage.output_tokens).toBe(11);
    const raw = await fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-ant-sim-a1', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask('raw'), stream: true }),
    });
    const body = await raw.text();
    expect(body).toContain('event: ping\ndata: {"type":"ping"}\n\n');
    expect(body.startsWith('event: message_start\ndata: ')).toBe(true);
  });

  it('tools and thinking: a tool_use block whose input fits the schema, a signed thinking block first', async () => {
    const tools: Anthropic.Tool[] = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    const m = await client.messages.create(ask('get_weather for Paris', { tools, tool_choice: { type: 'any' } }));
    expect(m.stop_reason).toBe('tool_use');
    expect(m.content[0]).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { city: 'sim' } });
    const t = await client.messages.create(ask('think', { max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } }));
    expect(t.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    expect((t.content[0] as Anthropic.ThinkingBlock).signature).toMatch(/^sig-sim-/);
    const cut = await client.messages.create(ask('a long question that will not fit', { max_tokens: 3 }));
    expect(cut.stop_reason).toBe('max_tokens');
    expect(cut.usage.output_tokens).toBe(3);
  });

  it('count_tokens counts the input and spends no limit', async () => {
    const before = sim.stats().buckets['org-sim-a']!['sonnet-4']!.requests;
    const c = await client.messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hello from the sdk' }] });
    expect(c.input_tokens).toBe(12);
    expect(sim.stats().buckets['org-sim-a']!['sonnet-4']!.requests).toBe(before);
  });

  it('models: the list in Anthropic\'s shape, pages, a retired model\'s 404', async () => {
    const page = await client.models.list({ limit: 2 });
    expect(page.data.map((m) => m.type)).toEqual(['model', 'model']);
    expect(page.has_more).toBe(true);
    const all: string[] = [];
    for await (const m of client.models.list({ limit: 1 })) all.push(m.id);
    expect(all).toEqual(['claude-haiku-5-5', 'claude-sonnet-5-5', 'claude-opus-5-5', 'claude-opus-4-5-20251101',
      'claude-haiku-4-5-20251001', 'claude-sonnet-4-5-20250929']);
    const gone = await apiError(client.messages.create(ask('hi', { model: 'claude-3-opus-20240229' })));
    expect(gone).toBeInstanceOf(Anthropic.NotFoundError);
    expect((gone.error as { error: { type: string } }).error.type).toBe('not_found_error');
  });

  it('errors: a bad key, a missing max_tokens, a missing anthropic-version', async () => {
    const bad = new Anthropic({ baseURL: sim.url, apiKey: 'sk-ant-nobody', maxRetries: 0 });
    expect(await apiError(bad.messages.create(ask('hi')))).toBeInstanceOf(Anthropic.AuthenticationError);
    const noMax = await apiError(client.messages.create({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming));
    expect(noMax).toBeInstanceOf(Anthropic.BadRequestError);
    const raw = await fetch(`${sim.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': 'sk-ant-sim-a1' }, body: JSON.stringify(ask('hi')) });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    // The SDK's API version (2026-10-21) refuses temperature; 2023-06-01 takes it.
    expect(await apiError(client.messages.create(ask('hi', { temperature: 0.5 } as never)))).toBeInstanceOf(Anthropic.BadRequestError);
    const old = await fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-ant-sim-a1', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify(ask('hi', { temperature: 0.5 } as never)),
    });
    expect(old.status).toBe(200);
  });

  it('a 5.5 model refuses a thinking budget and non-default sampling with Anthropic\'s 400; the defaults, adaptive thinking and a 4.5 model pass', async () => {
    const post = (body: Record<string, unknown>) => fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-ant-sim-a1', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask('hi', { max_tokens: 4096 }), ...body }),
    });
    const refused = async (body: Record<string, unknown>) => {
      const res = await post(body);
      expect(res.status).toBe(400);
      const answer = (await res.json()) as { type: string; error: { type: string; message: string } };
      expect(answer).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      return answer.error.message;
    };
    const before = sim.stats().total.received;
    expect(await refused({ model: 'claude-sonnet-5-5', thinking: { type: 'enabled', budget_tokens: 2048 } })).toBe(
      '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.',
    );
    expect(await refused({ model: 'claude-opus-5-5', temperature: 0.5 })).toBe('`temperature` is deprecated for this model.');
    expect(await refused({ model: 'claude-haiku-5-5', top_p: 0.9 })).toBe('`top_p` is deprecated for this model.');
    expect(await refused({ model: 'claude-haiku-5-5', top_k: 40 })).toBe('`top_k` is deprecated for this model.');
    for (const body of [
      { model: 'claude-sonnet-5-5', temperature: 1, top_p: 1 },
      { model: 'claude-sonnet-5-5', thinking: { type: 'adaptive' } },
      { model: 'claude-sonnet-4-5', temperature: 0.5, thinking: { type: 'enabled', budget_tokens: 2048 } },
    ]) {
      expect((await post(body)).status).toBe(200);
    }
    expect(sim.stats().total.received - before).toBe(7);
  });

  it('money in four shapes: a 400 about credit, a 402, a 429 whose details name the spend limit, a 400 about a spend limit', async () => {
    const as = (key: string) => new Anthropic({ baseURL: sim.url, apiKey: key, maxRetries: 0 });
    const credit = await apiError(as('sk-ant-credit').messages.create(ask('hi')));
    expect(credit.status).toBe(400);
    expect(credit.message).toMatch(/credit balance/);
    const billing = await apiError(as('sk-ant-billing').messages.create(ask('hi')));
    expect(billing.status).toBe(402);
    expect((billing.error as { error: { type: string } }).error.type).toBe('billing_error');
    const spend = await apiError(as('sk-ant-spend').messages.create(ask('hi')));
    expect(spend).toBeInstanceOf(Anthropic.RateLimitError);
    expect((spend.error as { error: { details: { error_code: string } } }).error.details.error_code).toBe('enforced_spend_limit_reached');
    expect(spend.headers?.get('retry-after')).toBeNull();
    const workspace = await apiError(as('sk-ant-workspace').messages.create(ask('hi')));
    expect(workspace.status).toBe(400);
    expect(workspace.message).toMatch(/limit/);
  });

  it('a 529 is overloaded_error; an error event after the 200 throws out of the SDK\'s stream', async () => {
    sim.addFault({ kind: 'overloaded', count: 1 });
    const over = await apiError(client.messages.create(ask('hi')));
    expect(over.status).toBe(529);
    expect((over.error as { error: { type: string } }).error.type).toBe('overloaded_error');
    sim.addFault({ kind: 'stream_error', count: 1, afterChunks: 3 });
    const stream = await client.messages.create({ ...ask('hi'), stream: true });
    const seen: string[] = [];
    const e = await (async () => {
      for await (const ev of stream) seen.push(ev.type);
    })().then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(Anthropic.APIError);
    expect((e as InstanceType<typeof Anthropic.APIError>).type).toBe('overloaded_error');
    expect(seen[0]).toBe('message_start');
  });
});

describe('buckets refilling continuously, per organization and pool', () => {
  const orgs = (limits: Record<string, unknown>) => ({ 'org-b': { keys: ['sk-ant-b'], limits: { 'sonnet-4': limits } } });

  it('RPM 6 with a capacity of 6: six at once, then a 429 with retry-after; one more every 10 s', async () => {
    const c = fakeClock('2026-11-27T11:00:00Z');
    const s = await startAnthropicSimulator({ now: c.now, organizations: orgs({ rpm: 6 }) });
    const sdk = new Anthropic({ baseURL: s.url, apiKey: 'sk-ant-b', maxRetries: 0 });
    try {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sdk.messages.create(ask(`q${i}`)).then(() => 200, (e: { status: number }) => e.status)));
      expect(results.filter((r) => r === 200)).toHaveLength(6);
      const refused = await apiError(sdk.messages.create(ask('again')));
      expect(refused).toBeInstanceOf(Anthropic.RateLimitError);
      expect(refused.headers?.get('retry-after')).toBe('10');
      expect(refused.headers?.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      c.advance(10_000);
      await sdk.messages.create(ask('after ten seconds'));
      expect(await apiError(sdk.messages.create(ask('too soon')))).toBeInstanceOf(Anthropic.RateLimitError);
      // The sonnet-4 pool is shared: another Sonnet 4.x id draws on the same buckets.
      expect(await apiError(sdk.messages.create(ask('other id', { model: 'claude-sonnet-4-5-20250929' })))).toBeInstanceOf(Anthropic.RateLimitError);
      await sdk.messages.create(ask('other pool', { model: 'claude-haiku-4-5' }));
    } finally {
      await s.close();
    }
  });

  it('a bucket of one refills from its last taking, however late it came, not on a grid of slots', async () => {
    const c = fakeClock('2026-11-27T11:00:00Z');
    const s = await startAnthropicSimulator({ now: c.now, organizations: orgs({ rpm: 6, capacity: { requests: 1 } }) });
    const sdk = new Anthropic({ baseURL: s.url, apiKey: 'sk-ant-b', maxRetries: 0 });
    try {
      await sdk.messages.create(ask('at 0 s'));
      // Taken 5 s late (at 15 s, where a grid's slot was 10 s): the next one a whole refill later, at 25 s.
      c.advance(15_000);
      const late = await sdk.messages.create(ask('at 15 s')).withResponse();
      expect(late.response.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      expect(late.response.headers.get('anthropic-ratelimit-requests-reset')).toBe('2026-11-27T11:00:25Z');
      c.advance(9_999);
      const early = await apiError(sdk.messages.create(ask('at 24.999 s')));
      expect(early).toBeInstanceOf(Anthropic.RateLimitError);
      expect(early.headers?.get('retry-after')).toBe('1');
      c.advance(1);
      await sdk.messages.create(ask('at 25 s'));
    } finally {
      await s.close();
    }
  });

  it('a capacity below the minute\'s limit refuses a burst the minute would allow', async () => {
    const c = fakeClock('2026-11-27T11:00:00Z');
    const s = await startAnthropicSimulator({ now: c.now, organizations: orgs({ rpm: 6 }), capacityRatio: 0.5 });
    const sdk = new Anthropic({ baseURL: s.url, apiKey: 'sk-ant-b', maxRetries: 0 });
    try {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => sdk.messages.create(ask(`q${i}`)).then(() => 200, (e: { status: number }) => e.status)));
      expect(results.filter((r) => r === 200)).toHaveLength(3);
      expect(results.filter((r) => r === 429)).toHaveLength(3);
    } finally {
      await s.close();
    }
  });

  it('OTPM binds on max_tokens at arrival, and the unused part comes back when the answer ends', async () => {
    const c = fakeClock('2026-11-27T11:00:00Z');
    const s = await startAnthropicSimulator({ now: c.now, organizations: orgs({ otpm: 200 }), latencyMs: 50 });
    const sdk = new Anthropic({ baseURL: s.url, apiKey: 'sk-ant-b', maxRetries: 0 });
    try {
      // Concurrent: each books 100 on arrival; two fit in 200, the third is refused on output tokens.
      const results = await Promise.all([0, 1, 2].map((i) => sdk.messages.create(ask(`q${i}`)).then(() => 200, (e: InstanceType<typeof Anthropic.APIError>) => e.message)));
      expect(results.filter((r) => r === 200)).toHaveLength(2);
      // Each answer wrote 7 tokens and gave 93 back: 200 - 14 left; the next books 150 and keeps 7.
      const after = await sdk.messages.create(ask('q0', { max_tokens: 150 })).withResponse();
      expect(after.response.headers.get('anthropic-ratelimit-output-tokens-remaining')).toBe(String(200 - 14 - 7));
    } finally {
      await s.close();
    }
  });

  it('prompt cache: the first call writes the prefix (5 m or 1 h), the next reads it, and reads do not count toward ITPM', async () => {
    const c = fakeClock('2026-11-27T11:00:00Z');
    const s = await startAnthropicSimulator({ now: c.now, organizations: orgs({ itpm: 10_000 }) });
    const sdk = new Anthropic({ baseURL: s.url, apiKey: 'sk-ant-b', maxRetries: 0 });
    const system: Anthropic.TextBlockParam[] = [{ type: 'text', text: 'x'.repeat(4000), cache_control: { type: 'ephemeral', ttl: '1h' } }];
    try {
      const first = await sdk.messages.create(ask('cached?', { system })).withResponse();
      expect(first.data.usage).toMatchObject({ cache_creation_input_tokens: 1000, cache_read_input_tokens: 0, input_tokens: 9 });
      expect(first.data.usage.cache_creation).toEqual({ ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 1000 });
      expect(first.response.headers.get('anthropic-ratelimit-input-tokens-remaining')).toBe(String(10_000 - 1009));
      c.advance(30 * 60_000);
      const second = await sdk.messages.create(ask('cached?', { system })).withResponse();
      expect(second.data.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 1000, input_tokens: 9 });
      // Thirty minutes refilled the bucket; only the 9 uncached tokens were taken.
      expect(second.response.headers.get('anthropic-ratelimit-input-tokens-remaining')).toBe(String(10_000 - 9));
    } finally {
      await s.close();
    }
  });

  it('prompt cache: one call reads a cached prefix and writes the next breakpoints at their own lifetimes', async () => {
    const s = await startAnthropicSimulator({ organizations: orgs({ itpm: 100_000 }) });
    const sdk = new Anthropic({ baseURL: s.url, apiKey: 'sk-ant-b', maxRetries: 0 });
    const block = (c: string, ttl?: '5m' | '1h'): Anthropic.TextBlockParam => ({
      type: 'text', text: c.repeat(4000), ...(ttl ? { cache_control: { type: 'ephemeral', ttl } } : {}),
    });
    try {
      await sdk.messages.create(ask('first', { system: [block('a', '1h')] }));
      const both = await sdk.messages.create(ask('second', { system: [block('a', '1h'), block('b', '1h'), block('c', '5m')] }));
      expect(both.usage).toMatchObject({ cache_read_input_tokens: 1000, cache_creation_input_tokens: 2000 });
      expect(both.usage.cache_creation).toEqual({ ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 1000 });
    } finally {
      await s.close();
    }
  });
});
