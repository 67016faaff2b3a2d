// The Messages API's request checks, token rule, answer and stream events. The answer is a pure
// function of the request (plus the organization's prompt cache): the question is the last user
// message's text.

import { isObject } from '../sim-core/json.ts';
import { valueForSchema } from '../sim-core/schema-values.ts';
import { tokensForText, truncateToTokens } from '../sim-core/text-tokens.ts';
import type { ModelSpec } from './config.ts';
import { invalidRequest, type SimAnswer } from './errors.ts';

export type Block = Record<string, unknown>;

export interface MessagesRequest {
  model: string;
  maxTokens: number;
  system: Block[];
  messages: { role: 'user' | 'assistant'; content: Block[] }[];
  tools: Block[];
  toolChoice: { type: string; name?: string };
  thinking: { budget: number } | undefined;
  stopSequences: string[];
  stream: boolean;
  /** output_format: {type: 'json_schema', schema} (structured outputs). */
  schema: unknown;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; answer: SimAnswer };
const bad = (message: string): Parsed<never> => ({ ok: false, answer: invalidRequest(message) });

function blocks(content: unknown, where: string): Block[] | string {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return `${where}: Input should be a valid list`;
  for (const [i, b] of content.entries()) {
    if (!isObject(b) || typeof b.type !== 'string') return `${where}.${i}.type: Field required`;
    if (b.type === 'text' && typeof b.text !== 'string') return `${where}.${i}.text: Field required`;
  }
  return content as Block[];
}

/** Checks a body as Anthropic does (max_tokens required, roles user/assistant) and reads it. */
export function parseMessagesRequest(body: unknown, spec: ModelSpec, counting: boolean): Parsed<MessagesRequest> {
  if (!isObject(body)) return bad('Input should be a valid dictionary');
  const model = body.model as string;
  let maxTokens = 0;
  if (!counting) {
    if (body.max_tokens === undefined) return bad('max_tokens: Field required');
    if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) return bad('max_tokens: Input should be greater than or equal to 1');
    maxTokens = body.max_tokens as number;
    if (maxTokens > spec.maxOutputTokens) return bad(`max_tokens: ${maxTokens} > ${spec.maxOutputTokens}, which is the maximum allowed number of output tokens for ${model}`);
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) return bad('messages: at least one message is required');
  const messages: MessagesRequest['messages'] = [];
  for (const [i, m] of body.messages.entries()) {
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) return bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    const content = blocks(m.content, `messages.${i}.content`);
    if (typeof content === 'string') return bad(content);
    messages.push({ role: m.role, content });
  }
  let system: Block[] = [];
  if (body.system !== undefined) {
    const s = blocks(body.system, 'system');
    if (typeof s === 'string') return bad(s);
    system = s;
  }
  const tools = Array.isArray(body.tools) ? (body.tools as Block[]) : [];
  for (const [i, t] of tools.entries()) {
    if (!isObject(t) || typeof t.name !== 'string') return bad(`tools.${i}.name: Field required`);
    if (t.type === undefined && !isObject(t.input_schema)) return bad(`tools.${i}.input_schema: Field required`);
  }
  const tc = isObject(body.tool_choice) ? body.tool_choice : { type: 'auto' };
  if (!['auto', 'any', 'tool', 'none'].includes(tc.type as string)) return bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
  if (!counting) {
    const refused = refusedBySpec(body, spec);
    if (refused !== undefined) return bad(refused);
  }
  let thinking: MessagesRequest['thinking'];
  if (isObject(body.thinking) && body.thinking.type === 'enabled') {
    const budget = body.thinking.budget_tokens;
    if (!Number.isInteger(budget) || (budget as number) < 1024) return bad('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (!counting && (budget as number) >= maxTokens) return bad('`max_tokens` must be greater than `thinking.budget_tokens`');
    thinking = { budget: budget as number };
  }
  const stopSequences = Array.isArray(body.stop_sequences) ? body.stop_sequences.filter((s): s is string => typeof s === 'string') : [];
  const of = isObject(body.output_format) ? body.output_format : undefined;
  return {
    ok: true,
    value: {
      model,
      maxTokens,
      system,
      messages,
      tools,
      toolChoice: { type: tc.type as string, ...(typeof tc.name === 'string' ? { name: tc.name } : {}) },
      thinking,
      stopSequences,
      stream: body.stream === true,
      schema: of?.type === 'json_schema' ? of.schema : undefined,
    },
  };
}

// What Claude's newer models refuse, in Anthropic's words. Anthropic's migration guide
// (platform.claude.com/docs/en/about-claude/models/migration-guide, "Migrating to Claude Opus 4.7", as
// OpenRouter's Claude 4.7 guide and effloow's Opus 4.7 guide quote it): thinking is adaptive only, a
// `thinking: {type: "enabled", budget_tokens}` returns a 400, and temperature, top_p or top_k set to a
// non-default value return a 400; Amazon Bedrock's "Adaptive thinking" page says the same of the Claude 5
// models. The messages are the ones developers report from the API: '"thinking.type.enabled" is not
// supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking
// behavior.' (claude-sonnet-5, MemberJunction's UsesAdaptiveThinking docs) and '`temperature` is
// deprecated for this model.' (Opus 4.7 and 4.8: ComfyUI#13923, picoclaw#2939); the same words are
// assumed for top_p and top_k. The defaults are temperature 1 and top_p 1; top_k has none. count_tokens
// is not held to them: no source says whether it is.
const SAMPLING_DEFAULTS: Record<'temperature' | 'top_p' | 'top_k', number | undefined> = { temperature: 1, top_p: 1, top_k: undefined };

/** The message of Anthropic's 400 for what this model refuses in the body, if it refuses anything. */
function refusedBySpec(body: Record<string, unknown>, spec: ModelSpec): string | undefined {
  if (spec.refusesThinkingBudget === true && isObject(body.thinking) && body.thinking.type === 'enabled') {
    return '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.';
  }
  if (spec.refusesSampling !== true) return undefined;
  for (const [field, fallback] of Object.entries(SAMPLING_DEFAULTS)) {
    const value = body[field];
    if (value !== undefined && value !== null && value !== fallback) return `\`${field}\` is deprecated for this model.`;
  }
  return undefined;
}

/** Tokens of one block under the rule: text by its bytes, an image 1 600, anything else its JSON. */
function blockTokens(b: Block): number {
  if (b.type === 'text') return tokensForText(b.text as string);
  if (b.type === 'image' || b.type === 'document') return 1_600;
  const { cache_control: _c, ...rest } = b;
  return tokensForText(JSON.stringify(rest));
}

/** A block carrying cache_control: the prefix up to and including it. */
export interface CacheBreakpoint {
  /** Tokens of the prefix. */
  tokens: number;
  /** The prefix's identity (its JSON), for the organization's cache. */
  key: string;
  /** The cache lifetime this breakpoint asks for. */
  ttl: '5m' | '1h';
}

export interface InputCount {
  /** Every input token of the request. */
  total: number;
  /** Each block marked cache_control, in order (none: nothing is cached). */
  breakpoints: CacheBreakpoint[];
}

/** Input tokens: tools, system, then 4 per message plus its blocks; each cache breakpoint's prefix apart. */
export function countInput(r: MessagesRequest): InputCount {
  const parts: { tokens: number; block: unknown; cache?: Block }[] = [];
  for (const t of r.tools) parts.push({ tokens: blockTokens(t as Block), block: t, ...(isObject(t.cache_control) ? { cache: t.cache_control } : {}) });
  for (const b of r.system) parts.push({ tokens: blockTokens(b), block: b, ...(isObject(b.cache_control) ? { cache: b.cache_control } : {}) });
  for (const m of r.messages) {
    parts.push({ tokens: 4, block: m.role });
    for (const b of m.content) parts.push({ tokens: blockTokens(b), block: b, ...(isObject(b.cache_control) ? { cache: b.cache_control } : {}) });
  }
  const total = parts.reduce((n, p) => n + p.tokens, 0) + 3;
  const breakpoints: CacheBreakpoint[] = [];
  parts.forEach((p, i) => {
    if (!p.cache) return;
    const prefix = parts.slice(0, i + 1);
    breakpoints.push({
      tokens: prefix.reduce((n, q) => n + q.tokens, 0),
      key: JSON.stringify(prefix.map((q) => q.block)),
      ttl: p.cache.ttl === '1h' ? '1h' : '5m',
    });
  });
  return { total, breakpoints };
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  service_tier: 'standard';
}

export interface Answer {
  id: string;
  model: string;
  content: Block[];
  stopReason: 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';
  stopSequence: string | null;
  usage: Usage;
}

function question(r: MessagesRequest): string {
  const last = r.messages[r.messages.length - 1]!;
  if (last.role !== 'user') return '';
  return last.content.filter((b) => b.type === 'text').map((b) => b.text as string).join(' ');
}

/** Output tokens of blocks: text and thinking by their bytes, a tool call by its name and input JSON. */
export function outputTokens(content: Block[]): number {
  let n = 0;
  for (const b of content) {
    if (b.type === 'text') n += tokensForText(b.text as string);
    else if (b.type === 'thinking') n += tokensForText(b.thinking as string);
    else if (b.type === 'tool_use') n += tokensForText((b.name as string) + JSON.stringify(b.input));
  }
  return Math.max(1, n);
}

/** The answer's blocks and stop reason; `usage.output_tokens` set, input fields left to the caller. */
export function buildAnswer(r: MessagesRequest, id: string, snapshot: string, toolId: string): Answer {
  const q = question(r).slice(0, 200);
  const content: Block[] = [];
  let budget = r.maxTokens;
  if (r.thinking) {
    const thought = `sim thinks about: ${q.slice(0, 60)}`;
    content.push({ type: 'thinking', thinking: thought, signature: `sig-sim-${Buffer.from(thought).toString('base64url').slice(0, 24)}` });
    budget -= tokensForText(thought);
  }
  const fns = r.tools.filter((t) => t.type === undefined || t.type === 'custom');
  let call: Block | undefined;
  if (fns.length > 0 && r.toolChoice.type !== 'none') {
    if (r.toolChoice.type === 'tool') call = fns.find((t) => t.name === r.toolChoice.name);
    else if (r.toolChoice.type === 'any') call = fns.find((t) => q.includes(t.name as string)) ?? fns[0];
    else call = fns.find((t) => q.includes(t.name as string));
  }
  if (call) {
    content.push({ type: 'tool_use', id: toolId, name: call.name, input: valueForSchema(call.input_schema, { strings: 'sim' }) ?? {} });
    return finish(r, id, snapshot, content, 'tool_use', null);
  }
  let text = r.schema !== undefined ? JSON.stringify(valueForSchema(r.schema, { strings: q.slice(0, 40) })) : `sim(${r.model}): ${q}`;
  let stop: Answer['stopReason'] = 'end_turn';
  let stopSequence: string | null = null;
  for (const s of r.stopSequences) {
    const at = s === '' ? -1 : text.indexOf(s);
    if (at >= 0) {
      text = text.slice(0, at);
      stop = 'stop_sequence';
      stopSequence = s;
      break;
    }
  }
  const cut = truncateToTokens(text, Math.max(0, budget));
  if (cut.truncated) {
    text = cut.text;
    stop = 'max_tokens';
    stopSequence = null;
  }
  content.push({ type: 'text', text });
  return finish(r, id, snapshot, content, stop, stopSequence);
}

function finish(_r: MessagesRequest, id: string, model: string, content: Block[], stopReason: Answer['stopReason'], stopSequence: string | null): Answer {
  return {
    id,
    model,
    content,
    stopReason,
    stopSequence,
    usage: {
      input_tokens: 0,
      output_tokens: outputTokens(content),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
      service_tier: 'standard',
    },
  };
}

export function messageObject(a: Answer): Record<string, unknown> {
  return {
    id: a.id,
    type: 'message',
    role: 'assistant',
    model: a.model,
    content: a.content,
    stop_reason: a.stopReason,
    stop_sequence: a.stopSequence,
    usage: a.usage,
  };
}

/** A streamed answer as named events: [event name, JSON data]. */
export function streamEvents(a: Answer, pieces: number): [string, string][] {
  const out: [string, string][] = [];
  const ev = (name: string, data: Record<string, unknown>): void => {
    out.push([name, JSON.stringify({ type: name, ...data })]);
  };
  ev('message_start', {
    message: { ...messageObject(a), content: [], stop_reason: null, stop_sequence: null, usage: { ...a.usage, output_tokens: 1 } },
  });
  out.push(['ping', JSON.stringify({ type: 'ping' })]);
  a.content.forEach((b, index) => {
    const split = (s: string): string[] => {
      const n = Math.max(1, pieces);
      const size = Math.max(1, Math.ceil(s.length / n));
      const parts: string[] = [];
      for (let i = 0; i < s.length; i += size) parts.push(s.slice(i, i + size));
      return parts.length > 0 ? parts : [''];
    };
    if (b.type === 'text') {
      ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
      for (const p of split(b.text as string)) ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } });
    } else if (b.type === 'thinking') {
      ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } });
      for (const p of split(b.thinking as string)) ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: p } });
      ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } });
    } else if (b.type === 'tool_use') {
      ev('content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
      for (const p of split(JSON.stringify(b.input))) ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } });
    }
    ev('content_block_stop', { index });
  });
  ev('message_delta', {
    delta: { stop_reason: a.stopReason, stop_sequence: a.stopSequence },
    usage: {
      output_tokens: a.usage.output_tokens,
      input_tokens: a.usage.input_tokens,
      cache_creation_input_tokens: a.usage.cache_creation_input_tokens,
      cache_read_input_tokens: a.usage.cache_read_input_tokens,
    },
  });
  ev('message_stop', {});
  return out;
}
