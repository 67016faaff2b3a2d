// POST /v1/responses as OpenAI answers it, for the chat models: the body's `input` (a string or items:
// messages, function_call, function_call_output; reasoning items skipped), `instructions`, function tools
// (built-in ones accepted and not run), tool_choice, text.format and max_output_tokens are read as the
// chat completion they amount to (completions.ts decides the answer, its tokens and its booking alike),
// and the answer is said as a `response` object, or as its named events (response.created …
// response.completed, each with its sequence_number). `store` is taken and nothing is stored.
import { isObject } from '../sim-core/json.ts';
import type { Answer } from './responses.ts';
import { completionTokens, type ChatRequest } from './completions.ts';

/** The chat completion body a Responses body amounts to. */
export function chatBodyOfResponses(body: Record<string, unknown>): Record<string, unknown> {
  const messages: Record<string, unknown>[] = [];
  if (typeof body.instructions === 'string') messages.push({ role: 'system', content: body.instructions });
  const input = body.input;
  if (typeof input === 'string') messages.push({ role: 'user', content: input });
  for (const item of Array.isArray(input) ? input : []) {
    if (!isObject(item)) continue;
    const type = item.type ?? 'message';
    if (type === 'message') {
      const content = typeof item.content === 'string'
        ? item.content
        : Array.isArray(item.content)
        ? item.content.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('')
        : '';
      messages.push({ role: item.role, content });
    } else if (type === 'function_call') {
      messages.push({
        role: 'assistant',
        content: null,
        tool_calls: [{ id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } }],
      });
    } else if (type === 'function_call_output') {
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: typeof item.output === 'string' ? item.output : JSON.stringify(item.output) });
    }
  }
  const tools = (Array.isArray(body.tools) ? body.tools : [])
    .filter((t) => isObject(t) && t.type === 'function')
    .map((t) => ({ type: 'function', function: { name: (t as Record<string, unknown>).name, parameters: (t as Record<string, unknown>).parameters } }));
  const choice = body.tool_choice;
  const format = isObject(body.text) && isObject(body.text.format) ? body.text.format : undefined;
  return {
    model: body.model,
    messages,
    ...(tools.length === 0 ? {} : { tools }),
    ...(choice === undefined || tools.length === 0
      ? {}
      : { tool_choice: isObject(choice) && choice.type === 'function' ? { type: 'function', function: { name: choice.name } } : choice }),
    ...(format === undefined || format.type === 'text'
      ? {}
      : format.type === 'json_schema'
      ? { response_format: { type: 'json_schema', json_schema: { name: format.name ?? 'schema', schema: format.schema } } }
      : { response_format: { type: 'json_object' } }),
    ...(typeof body.max_output_tokens === 'number' ? { max_completion_tokens: body.max_output_tokens } : {}),
    stream: body.stream === true,
  };
}

/** The `response` object of an answer (its first choice). */
export function responseObject(answer: Answer, request: ChatRequest, body: Record<string, unknown>): Record<string, unknown> {
  const choice = answer.choices[0]!;
  const output: Record<string, unknown>[] = [];
  const id = answer.id.replace('chatcmpl-', 'resp_');
  if (choice.content !== null) {
    output.push({
      id: `msg_${id}`, type: 'message', status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', text: choice.content, annotations: [], logprobs: [] }],
    });
  }
  for (const call of choice.toolCalls ?? []) {
    output.push({ id: `fc_${call.id}`, type: 'function_call', status: 'completed', call_id: call.id, name: call.name, arguments: call.arguments });
  }
  const reasoning = answer.reasoningTokens ?? 0;
  const outputTokens = completionTokens([choice]) + reasoning;
  const incomplete = choice.finishReason === 'length';
  return {
    id, object: 'response', created_at: answer.created, status: incomplete ? 'incomplete' : 'completed',
    error: null, incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null, max_output_tokens: request.maxTokens ?? null, model: answer.model,
    output, parallel_tool_calls: true, previous_response_id: null, store: body.store !== false,
    temperature: 1, text: { format: isObject(body.text) && isObject(body.text.format) ? body.text.format : { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto', tools: body.tools ?? [], top_p: 1, truncation: 'disabled',
    usage: {
      input_tokens: answer.promptTokens,
      input_tokens_details: { cached_tokens: Math.min(answer.cachedTokens ?? 0, answer.promptTokens) },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: answer.promptTokens + outputTokens,
    },
    metadata: body.metadata ?? {},
  };
}

/** The named events of a streamed response: each `event: <type>` with its JSON, numbered in order. */
export function responseEvents(whole: Record<string, unknown>, pieces: number): string[] {
  const events: string[] = [];
  let n = 0;
  const add = (type: string, fields: Record<string, unknown>) =>
    events.push(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n++, ...fields })}\n\n`);
  const head = { ...whole, status: 'in_progress', output: [], usage: null };
  add('response.created', { response: head });
  add('response.in_progress', { response: head });
  (whole.output as Record<string, unknown>[]).forEach((item, index) => {
    if (item.type === 'message') {
      const text = ((item.content as Array<{ text: string }>)[0]?.text) ?? '';
      add('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress', content: [] } });
      add('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
      const size = Math.max(1, Math.ceil(text.length / pieces));
      for (let at = 0; at < text.length; at += size) {
        add('response.output_text.delta', { item_id: item.id, output_index: index, content_index: 0, delta: text.slice(at, at + size), logprobs: [] });
      }
      add('response.output_text.done', { item_id: item.id, output_index: index, content_index: 0, text, logprobs: [] });
      add('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
    } else {
      add('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress', arguments: '' } });
      add('response.function_call_arguments.delta', { item_id: item.id, output_index: index, delta: item.arguments });
      add('response.function_call_arguments.done', { item_id: item.id, output_index: index, arguments: item.arguments });
    }
    add('response.output_item.done', { output_index: index, item });
  });
  add(whole.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: whole });
  return events;
}
