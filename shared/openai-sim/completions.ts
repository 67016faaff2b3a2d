// POST /v1/chat/completions: reads the body as OpenAI validates it, counts it, and builds the
// answer, a pure function of the request:
// - plain: "sim(<model>): " + the first 200 characters of the question (the last message's text
//   when it is a user, system or developer message; empty after a tool result);
// - response_format json_object: {"model": "<model>", "echo": "<same 200 characters>"};
// - response_format json_schema: a value that fits the schema (sim-core/schema-values.ts, strings
//   = the first 40 characters of the question); every schema is checked like OpenAI's (an object at
//   its root, JSON Schema's type names: Google's `OBJECT` is refused), `strict: true` ones further;
// - tools: tool_choice "required" or a named function always calls (the named one, else the first
//   function whose name is in the question, else the first); "auto" (default) calls the first
//   function whose name is in the question; "none" never; "allowed_tools" does the same as its mode
//   ("auto" or "required") among the tools it lists, each of which must be among the tools given.
//   Arguments fit the function's parameters. A custom tool (type "custom") is taken, never called;
// - n choices: choice i > 0 says "sim(<model>)#<i>: …".
// max_tokens / max_completion_tokens cut each choice's text (finish_reason "length").

import { isObject } from '../sim-core/json.ts';
import { valueForSchema } from '../sim-core/schema-values.ts';
import { tokensForText, truncateToTokens, utf8Bytes } from '../sim-core/text-tokens.ts';
import type { ModelSpec } from './config.ts';
import { badRequest, type SimAnswer } from './errors.ts';

/** Every string argument of a simulated tool call. */
export const FUNCTION_ARG_STRING = 'sim';
/** max_tokens booked on arrival when the request sends none (option `defaultMaxTokens`). */
export const DEFAULT_MAX_TOKENS = 4096;

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export interface ToolFunction {
  name: string;
  parameters: unknown;
}

export interface ChatRequest {
  messages: Record<string, unknown>[];
  stream: boolean;
  includeUsage: boolean;
  /** max_completion_tokens, else max_tokens, else undefined. */
  maxTokens: number | undefined;
  n: number;
  logprobs: boolean;
  topLogprobs: number;
  format: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: unknown };
  tools: ToolFunction[];
  /** `only`: allowed_tools's list, the tools a call may use (absent: any of them). */
  toolChoice: 'none' | 'auto' | 'required' | { name: string } | { mode: 'auto' | 'required'; only: string[] };
  /** The tier that serves it, as the answer's service_tier names it: flex or priority when asked, else default. */
  servedTier: 'default' | 'flex' | 'priority';
}

const SERVICE_TIERS = ['auto', 'default', 'flex', 'scale', 'priority'];

type Parsed<T> = { ok: true; value: T } | { ok: false; answer: SimAnswer };
const fail = (answer: SimAnswer): { ok: false; answer: SimAnswer } => ({ ok: false, answer });

function invalidType(param: string, expected: string, value: unknown): SimAnswer {
  return badRequest(`Invalid type for '${param}': expected ${expected}, but got ${value === null ? 'null' : typeof value} instead.`, param, 'invalid_type');
}

function optionalInteger(body: Record<string, unknown>, param: string, min: number, max: number): Parsed<number | undefined> {
  const v = body[param];
  if (v === undefined || v === null) return { ok: true, value: undefined };
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(invalidType(param, 'an integer', v));
  if (v < min) return fail(badRequest(`Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${v} instead.`, param, 'integer_below_min_value'));
  if (v > max) return fail(badRequest(`Invalid '${param}': integer above maximum value. Expected a value <= ${max}, but got ${v} instead.`, param, 'integer_above_max_value'));
  return { ok: true, value: v };
}

function optionalBoolean(body: Record<string, unknown>, param: string): Parsed<boolean> {
  const v = body[param];
  if (v === undefined || v === null) return { ok: true, value: false };
  if (typeof v !== 'boolean') return fail(invalidType(param, 'a boolean', v));
  return { ok: true, value: v };
}

/** The text of a message's content: a string, or the text parts of an array (others as JSON). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) => (isObject(part) && part.type === 'text' && typeof part.text === 'string' ? part.text : JSON.stringify(part)))
    .join('');
}

/** JSON Schema's type names: OpenAI checks every schema against them (Google's `OBJECT` is none). */
const JSON_TYPES = ['string', 'number', 'integer', 'boolean', 'array', 'object', 'null'];

/** Every schema: its types are JSON Schema's. Returns the first place that breaks the rule. */
function typeProblem(schema: unknown, path: string, depth = 0): string | undefined {
  if (!isObject(schema) || depth > 32) return undefined;
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  const bad = types.find((t) => typeof t !== 'string' || !JSON_TYPES.includes(t));
  if (bad !== undefined) return `In context=(${path}), '${String(bad)}' is not valid under any of the given schemas.`;
  return childProblem(schema, path, depth, typeProblem);
}

/**
 * Strict structured outputs: every object lists all its properties in `required` and sets
 * `additionalProperties: false`. Returns the first place that breaks the rule.
 */
function strictProblem(schema: unknown, path: string, depth = 0): string | undefined {
  if (!isObject(schema) || depth > 32) return undefined;
  const isObjectType = schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object')) || isObject(schema.properties);
  if (isObjectType) {
    if (schema.additionalProperties !== false) return `In context=(${path}), 'additionalProperties' is required to be supplied and to be false.`;
    const props = isObject(schema.properties) ? Object.keys(schema.properties) : [];
    const required = Array.isArray(schema.required) ? schema.required : [];
    const missing = props.find((p) => !required.includes(p));
    if (missing !== undefined) return `In context=(${path}), 'required' is required to be supplied and to be an array including every key in properties. Missing '${missing}'.`;
  }
  return childProblem(schema, path, depth, strictProblem);
}

/** The first problem `rule` finds in a schema's sub-schemas (properties, items, anyOf, $defs). */
function childProblem(schema: Record<string, unknown>, path: string, depth: number,
  rule: (schema: unknown, path: string, depth: number) => string | undefined): string | undefined {
  const children: [string, unknown][] = [];
  if (isObject(schema.properties)) for (const [k, v] of Object.entries(schema.properties)) children.push([`${path}${path ? ', ' : ''}'properties', '${k}'`, v]);
  if (schema.items !== undefined) children.push([`${path}${path ? ', ' : ''}'items'`, schema.items]);
  for (const key of ['anyOf', '$defs', 'definitions'] as const) {
    const group = schema[key];
    const entries = Array.isArray(group) ? group.map((v, i) => [String(i), v] as const) : isObject(group) ? Object.entries(group) : [];
    for (const [k, v] of entries) children.push([`${path}${path ? ', ' : ''}'${key}', '${k}'`, v]);
  }
  for (const [p, child] of children) {
    const problem = rule(child, p, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

function parseFormat(raw: unknown, messages: Record<string, unknown>[]): Parsed<ChatRequest['format']> {
  if (raw === undefined || raw === null) return { ok: true, value: { type: 'text' } };
  if (!isObject(raw)) return fail(invalidType('response_format', 'an object', raw));
  if (raw.type === 'text') return { ok: true, value: { type: 'text' } };
  if (raw.type === 'json_object') {
    const said = messages.some((m) => /json/i.test(contentText(m.content)));
    if (!said) return fail(badRequest("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages'));
    return { ok: true, value: { type: 'json_object' } };
  }
  if (raw.type === 'json_schema') {
    const spec = raw.json_schema;
    if (!isObject(spec)) return fail(badRequest("Missing required parameter: 'response_format.json_schema'.", 'response_format.json_schema', 'missing_required_parameter'));
    if (typeof spec.name !== 'string' || !NAME.test(spec.name)) {
      return fail(badRequest("Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", 'response_format.json_schema.name', 'invalid_value'));
    }
    const schema = spec.schema ?? {};
    // OpenAI's answer is an object: a schema of any other value is refused, whether strict or not.
    const root = isObject(schema) ? schema.type : undefined;
    if (root !== 'object') {
      const got = typeof root === 'string' ? root : 'None';
      return fail(badRequest(`Invalid schema for response_format '${spec.name}': schema must be a JSON Schema of 'type: "object"', got 'type: "${got}"'.`, 'response_format', 'invalid_json_schema'));
    }
    const problem = typeProblem(schema, '') ?? (spec.strict === true ? strictProblem(schema, '') : undefined);
    if (problem) return fail(badRequest(`Invalid schema for response_format '${spec.name}': ${problem}`, 'response_format', 'invalid_json_schema'));
    return { ok: true, value: { type: 'json_schema', schema } };
  }
  return fail(badRequest(`Invalid value: '${String(raw.type)}'. Supported values are: 'json_object', 'json_schema', and 'text'.`, 'response_format.type', 'invalid_value'));
}

function parseTools(raw: unknown, choice: unknown): Parsed<{ tools: ToolFunction[]; toolChoice: ChatRequest['toolChoice'] }> {
  const tools: ToolFunction[] = [];
  const custom: string[] = [];
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw)) return fail(invalidType('tools', 'an array', raw));
    for (const [i, tool] of raw.entries()) {
      if (isObject(tool) && tool.type === 'custom' && isObject(tool.custom)) {
        const name = tool.custom.name;
        if (typeof name !== 'string' || !NAME.test(name)) {
          return fail(badRequest(`Invalid 'tools[${i}].custom.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, `tools[${i}].custom.name`, 'invalid_value'));
        }
        custom.push(name);
        continue;
      }
      if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function)) {
        return fail(badRequest(`Invalid value for 'tools[${i}]': expected {"type": "function", "function": {...}}.`, `tools[${i}]`, 'invalid_value'));
      }
      const name = tool.function.name;
      if (typeof name !== 'string' || !NAME.test(name)) {
        return fail(badRequest(`Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`, `tools[${i}].function.name`, 'invalid_value'));
      }
      if (tool.function.parameters !== undefined) {
        const parameters = tool.function.parameters;
        const problem = typeProblem(parameters, '') ?? (tool.function.strict === true ? strictProblem(parameters, '') : undefined);
        if (problem) return fail(badRequest(`Invalid schema for function '${name}': ${problem}`, `tools[${i}].function.parameters`, 'invalid_function_parameters'));
      }
      tools.push({ name, parameters: tool.function.parameters });
    }
  }
  if (choice === undefined || choice === null) return { ok: true, value: { tools, toolChoice: tools.length > 0 ? 'auto' : 'none' } };
  if (choice === 'none' || choice === 'auto' || choice === 'required') {
    if (choice !== 'none' && tools.length === 0) {
      return fail(badRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice'));
    }
    return { ok: true, value: { tools, toolChoice: choice } };
  }
  if (isObject(choice) && choice.type === 'function' && isObject(choice.function) && typeof choice.function.name === 'string') {
    const name = choice.function.name;
    if (!tools.some((t) => t.name === name)) {
      return fail(badRequest(`Invalid value for 'tool_choice': tool '${name}' is not among the tools given.`, 'tool_choice', 'invalid_value'));
    }
    return { ok: true, value: { tools, toolChoice: { name } } };
  }
  if (isObject(choice) && choice.type === 'allowed_tools' && isObject(choice.allowed_tools)) {
    const { mode, tools: listed } = choice.allowed_tools;
    if ((mode !== 'auto' && mode !== 'required') || !Array.isArray(listed) || listed.length === 0) {
      return fail(badRequest("Invalid value for 'tool_choice.allowed_tools': expected a mode of 'auto' or 'required' and a non-empty list of tools.", 'tool_choice.allowed_tools', 'invalid_value'));
    }
    const only: string[] = [];
    for (const [i, t] of listed.entries()) {
      const name = isObject(t) && t.type === 'function' && isObject(t.function) ? t.function.name
        : isObject(t) && t.type === 'custom' && isObject(t.custom) ? t.custom.name : undefined;
      if (typeof name !== 'string' || !(tools.some((f) => f.name === name) || custom.includes(name))) {
        return fail(badRequest(`Invalid value for 'tool_choice.allowed_tools.tools[${i}]': not among the tools given.`, `tool_choice.allowed_tools.tools[${i}]`, 'invalid_value'));
      }
      only.push(name);
    }
    return { ok: true, value: { tools, toolChoice: { mode, only } } };
  }
  return fail(badRequest("Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}.", 'tool_choice', 'invalid_value'));
}

/** Validates a chat completion body for `spec` (the model is already known). */
export function parseChatRequest(body: unknown, spec: ModelSpec): Parsed<ChatRequest> {
  if (!isObject(body)) return fail(badRequest('The request body must be a JSON object.'));
  const messages = body.messages;
  if (messages === undefined) return fail(badRequest("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter'));
  if (!Array.isArray(messages)) return fail(invalidType('messages', 'an array', messages));
  if (messages.length === 0) return fail(badRequest("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'messages', 'empty_array'));
  for (const [i, m] of messages.entries()) {
    if (!isObject(m)) return fail(invalidType(`messages[${i}]`, 'an object', m));
    if (typeof m.role !== 'string' || !ROLES.includes(m.role)) {
      return fail(badRequest(`Invalid value: '${String(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`, `messages[${i}].role`, 'invalid_value'));
    }
    if (m.role === 'tool' && typeof m.tool_call_id !== 'string') {
      return fail(badRequest(`Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.`, `messages.[${i}].tool_call_id`, 'missing_required_parameter'));
    }
    const hasCalls = m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0;
    if (!hasCalls && typeof m.content !== 'string' && !Array.isArray(m.content)) {
      return fail(invalidType(`messages[${i}].content`, 'one of a string or array of objects', m.content));
    }
  }
  const msgs = messages as Record<string, unknown>[];

  const stream = optionalBoolean(body, 'stream');
  if (!stream.ok) return stream;
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!stream.value) return fail(badRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value'));
    if (!isObject(body.stream_options)) return fail(invalidType('stream_options', 'an object', body.stream_options));
    includeUsage = body.stream_options.include_usage === true;
  }
  const maxCompletion = optionalInteger(body, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER);
  if (!maxCompletion.ok) return maxCompletion;
  const maxTokensField = optionalInteger(body, 'max_tokens', 1, Number.MAX_SAFE_INTEGER);
  if (!maxTokensField.ok) return maxTokensField;
  const maxTokens = maxCompletion.value ?? maxTokensField.value;
  if (maxTokens !== undefined && maxTokens > spec.maxOutputTokens) {
    const param = maxCompletion.value !== undefined ? 'max_completion_tokens' : 'max_tokens';
    return fail(badRequest(`${param} is too large: ${maxTokens}. This model supports at most ${spec.maxOutputTokens} completion tokens, whereas you provided ${maxTokens}.`, param, 'invalid_value'));
  }
  const n = optionalInteger(body, 'n', 1, 128);
  if (!n.ok) return n;
  const logprobs = optionalBoolean(body, 'logprobs');
  if (!logprobs.ok) return logprobs;
  const top = optionalInteger(body, 'top_logprobs', 0, 20);
  if (!top.ok) return top;
  if (top.value !== undefined && !logprobs.value) {
    return fail(badRequest("Invalid value: 'top_logprobs' requires 'logprobs' to be true.", 'top_logprobs', 'invalid_value'));
  }
  const format = parseFormat(body.response_format, msgs);
  if (!format.ok) return format;
  const tools = parseTools(body.tools, body.tool_choice);
  if (!tools.ok) return tools;
  const tier = body.service_tier;
  if (tier !== undefined && tier !== null && (typeof tier !== 'string' || !SERVICE_TIERS.includes(tier))) {
    return fail(badRequest(`Invalid value: '${String(tier)}'. Supported values are: ${SERVICE_TIERS.map((t) => `'${t}'`).join(', ')}.`, 'service_tier', 'invalid_value'));
  }
  return {
    ok: true,
    value: {
      servedTier: tier === 'flex' || tier === 'priority' ? tier : 'default',
      messages: msgs,
      stream: stream.value,
      includeUsage,
      maxTokens,
      n: n.value ?? 1,
      logprobs: logprobs.value,
      topLogprobs: top.value ?? 0,
      format: format.value,
      tools: tools.value.tools,
      toolChoice: tools.value.toolChoice,
    },
  };
}

/**
 * The simulator's count of a request's input (its usage.prompt_tokens): 3 tokens to prime the
 * answer, and per message 3 + the token rule (sim-core/text-tokens.ts) on its text and on the JSON
 * of its tool calls; plus the rule on the JSON of `tools` and of a json_schema's schema.
 */
export function promptTokens(req: Pick<ChatRequest, 'messages' | 'tools' | 'format'>): number {
  let total = 3;
  for (const m of req.messages) {
    total += 3 + tokensForText(contentText(m.content));
    if (Array.isArray(m.tool_calls)) total += tokensForText(JSON.stringify(m.tool_calls));
  }
  if (req.tools.length > 0) total += tokensForText(JSON.stringify(req.tools));
  if (req.format.type === 'json_schema') total += tokensForText(JSON.stringify(req.format.schema));
  return total;
}

/** What a request books against TPM on arrival: input + (max_tokens, else the default) × n. */
export function bookedTokens(req: ChatRequest, input: number, defaultMaxTokens: number): number {
  return input + (req.maxTokens ?? defaultMaxTokens) * req.n;
}

/** The question: the last message's text when it comes from the user side, else ''. */
export function question(req: ChatRequest): string {
  const last = req.messages[req.messages.length - 1]!;
  return last.role === 'user' || last.role === 'system' || last.role === 'developer' ? contentText(last.content) : '';
}

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface Choice {
  content: string | null;
  toolCalls: ToolCall[] | undefined;
  finishReason: 'stop' | 'length' | 'tool_calls';
  /** The answer's tokens as logprobs list them (4 UTF-8 bytes at most each). */
  tokens: string[];
}

function chooseTool(req: ChatRequest, asked: string): ToolFunction | undefined {
  const choice = req.toolChoice;
  if (choice === 'none' || req.tools.length === 0) return undefined;
  if (typeof choice === 'object' && 'name' in choice) return req.tools.find((t) => t.name === choice.name);
  const callable = typeof choice === 'object' ? req.tools.filter((t) => choice.only.includes(t.name)) : req.tools;
  const mode = typeof choice === 'object' ? choice.mode : choice;
  const named = callable.find((t) => asked.includes(t.name));
  return named ?? (mode === 'required' ? callable[0] : undefined);
}

/** Splits text into tokens of at most 4 UTF-8 bytes (the token rule's unit). */
export function splitTokens(text: string): string[] {
  const out: string[] = [];
  let piece = '';
  let bytes = 0;
  for (const ch of text) {
    const size = utf8Bytes(ch);
    if (bytes + size > 4 && piece !== '') {
      out.push(piece);
      piece = '';
      bytes = 0;
    }
    piece += ch;
    bytes += size;
  }
  if (piece !== '') out.push(piece);
  return out;
}

function answerText(model: string, req: ChatRequest, asked: string, index: number): string {
  const excerpt = asked.slice(0, 200);
  if (req.format.type === 'json_schema') return JSON.stringify(valueForSchema(req.format.schema, { strings: asked.slice(0, 40) }));
  if (req.format.type === 'json_object') return JSON.stringify(index === 0 ? { model, echo: excerpt } : { model, echo: excerpt, choice: index });
  return `sim(${model})${index === 0 ? '' : `#${index}`}: ${excerpt}`;
}

/** The choices of the answer; `callId` names each tool call (unique per answer). */
export function buildChoices(model: string, req: ChatRequest, callId: (choice: number) => string): Choice[] {
  const asked = question(req);
  const tool = chooseTool(req, asked);
  const choices: Choice[] = [];
  for (let i = 0; i < req.n; i++) {
    if (tool) {
      const args = tool.parameters === undefined ? {} : valueForSchema(tool.parameters, { strings: FUNCTION_ARG_STRING });
      const call = { id: callId(i), name: tool.name, arguments: JSON.stringify(isObject(args) ? args : {}) };
      choices.push({ content: null, toolCalls: [call], finishReason: 'tool_calls', tokens: [] });
      continue;
    }
    const full = answerText(model, req, asked, i);
    const cut = req.maxTokens === undefined ? { text: full, truncated: false } : truncateToTokens(full, req.maxTokens);
    choices.push({ content: cut.text, toolCalls: undefined, finishReason: cut.truncated ? 'length' : 'stop', tokens: splitTokens(cut.text) });
  }
  return choices;
}

/** usage.completion_tokens: the token rule on every choice's text and tool calls. */
export function completionTokens(choices: readonly Choice[]): number {
  let total = 0;
  for (const c of choices) {
    if (c.content !== null) total += tokensForText(c.content);
    for (const call of c.toolCalls ?? []) total += tokensForText(call.name + call.arguments);
  }
  return total;
}

/** Logprobs of the tokens `tokens[from..to)`: deterministic, with `top` alternatives each. */
export function logprobsFor(tokens: readonly string[], top: number, from = 0, to = tokens.length): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = from; i < to; i++) {
    const token = tokens[i]!;
    const logprob = -0.01 * (1 + (i % 7));
    const alternatives = [{ token, logprob, bytes: [...Buffer.from(token, 'utf8')] }];
    for (let k = 1; k < top; k++) {
      const alt = `${token}~${k}`;
      alternatives.push({ token: alt, logprob: logprob - k, bytes: [...Buffer.from(alt, 'utf8')] });
    }
    out.push({ token, logprob, bytes: [...Buffer.from(token, 'utf8')], top_logprobs: top === 0 ? [] : alternatives });
  }
  return out;
}
