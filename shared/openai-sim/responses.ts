// The shapes of a chat completion: one `chat.completion` object, or the `chat.completion.chunk`
// events of a stream (a role chunk, content or tool-call pieces, a finish chunk per choice, with
// stream_options.include_usage a last chunk with `usage` and empty `choices`, then [DONE]).

import { completionTokens, logprobsFor, type ChatRequest, type Choice } from './completions.ts';

export interface Answer {
  id: string;
  /** Epoch seconds. */
  created: number;
  /** The snapshot that answered, e.g. gpt-4o-2024-08-06. */
  model: string;
  choices: Choice[];
  promptTokens: number;
  /** Of the prompt, read from the cache (prompt_tokens_details.cached_tokens). */
  cachedTokens?: number;
  /** Spent reasoning, inside completion_tokens (completion_tokens_details.reasoning_tokens). */
  reasoningTokens?: number;
}

const FINGERPRINT = 'fp_sim';

export function usage(a: Answer): Record<string, unknown> {
  const reasoning = a.reasoningTokens ?? 0;
  const completion = completionTokens(a.choices) + reasoning;
  return {
    prompt_tokens: a.promptTokens,
    completion_tokens: completion,
    total_tokens: a.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: Math.min(a.cachedTokens ?? 0, a.promptTokens), audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function toolCallsJson(c: Choice): Record<string, unknown>[] | undefined {
  return c.toolCalls?.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));
}

export function completionObject(a: Answer, req: ChatRequest): Record<string, unknown> {
  return {
    id: a.id,
    object: 'chat.completion',
    created: a.created,
    model: a.model,
    choices: a.choices.map((c, index) => {
      const message: Record<string, unknown> = { role: 'assistant', content: c.content, refusal: null, annotations: [] };
      const calls = toolCallsJson(c);
      if (calls) message.tool_calls = calls;
      return {
        index,
        message,
        logprobs: req.logprobs ? { content: c.toolCalls ? null : logprobsFor(c.tokens, req.topLogprobs), refusal: null } : null,
        finish_reason: c.finishReason,
      };
    }),
    usage: usage(a),
    service_tier: req.servedTier,
    system_fingerprint: FINGERPRINT,
  };
}

/** Splits `count` items into `parts` runs as even as possible: [start, end) pairs, none empty. */
function runs(count: number, parts: number): [number, number][] {
  const n = Math.max(1, Math.min(parts, count));
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) out.push([Math.floor((i * count) / n), Math.floor(((i + 1) * count) / n)]);
  return out.filter(([a, b]) => b > a);
}

/** The SSE events (JSON text, then "[DONE]") of a streamed answer, `pieces` content chunks per choice. */
export function streamEvents(a: Answer, req: ChatRequest, pieces: number): string[] {
  const events: string[] = [];
  const chunk = (choice: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): void => {
    const body: Record<string, unknown> = {
      id: a.id,
      object: 'chat.completion.chunk',
      created: a.created,
      model: a.model,
      service_tier: req.servedTier,
      system_fingerprint: FINGERPRINT,
      choices: choice ? [choice] : [],
    };
    if (req.includeUsage) body.usage = null;
    events.push(JSON.stringify({ ...body, ...extra }));
  };
  a.choices.forEach((c, index) => {
    const calls = c.toolCalls;
    if (calls) {
      const first = calls.map((t, i) => ({ index: i, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }));
      chunk({ index, delta: { role: 'assistant', content: null, tool_calls: first, refusal: null }, logprobs: null, finish_reason: null });
      calls.forEach((t, i) => {
        const text = t.arguments;
        for (const [from, to] of runs(text.length, pieces)) {
          chunk({ index, delta: { tool_calls: [{ index: i, function: { arguments: text.slice(from, to) } }] }, logprobs: null, finish_reason: null });
        }
      });
    } else {
      chunk({ index, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null });
      for (const [from, to] of runs(c.tokens.length, pieces)) {
        const logprobs = req.logprobs ? { content: logprobsFor(c.tokens, req.topLogprobs, from, to), refusal: null } : null;
        chunk({ index, delta: { content: c.tokens.slice(from, to).join('') }, logprobs, finish_reason: null });
      }
    }
    chunk({ index, delta: {}, logprobs: null, finish_reason: c.finishReason });
  });
  if (req.includeUsage) chunk(undefined, { usage: usage(a) });
  events.push('[DONE]');
  return events;
}
