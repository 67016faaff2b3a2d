// A tool's result reaches every provider as the caller gave it, on every route: each dialect a caller may
// speak (native, Gemini, Chat Completions, Responses, Anthropic's Messages) answers a tool call with the
// text `42`, in its own form, and each dialect a model is reached in (Google's, OpenAI's with and without
// its Responses API, Anthropic's) receives `42` in its own: Google's functionResponse.response is an
// object, so `{output: "42"}` (the form Google's documentation names a function's output, and the form a
// Gemini caller gives text in); OpenAI's tool message and function_call_output and Anthropic's
// tool_result content are strings, so `42`, never the JSON of a wrapper. Each provider is its offline
// simulator over HTTP, which records the body it received; the result must also name its call.
//
// A new route surface joins with one row of ROUTES, a new provider dialect with one row of PROVIDERS.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../shared/google-sim/server.ts";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { createAnthropicClient } from "../../supabase/functions/_shared/providers/anthropic/client.ts";
import { createGoogleClient } from "../../supabase/functions/_shared/providers/google/client.ts";
import { createOpenAiClient } from "../../supabase/functions/_shared/providers/openai/client.ts";
import type { Dialect } from "../../supabase/functions/_shared/providers/registry.ts";
import type { UpstreamClient } from "../../supabase/functions/_shared/upstream/port.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest } from "../../supabase/functions/llm-invoke/contract.ts";
import { adaptToModel } from "../../supabase/functions/llm-invoke/model/adapt.ts";
import { anthropicSurface } from "../../supabase/functions/llm-invoke/surfaces/anthropic.ts";
import { geminiSurface } from "../../supabase/functions/llm-invoke/surfaces/gemini.ts";
import { nativeSurface } from "../../supabase/functions/llm-invoke/surfaces/native.ts";
import { openAiSurface } from "../../supabase/functions/llm-invoke/surfaces/openai.ts";
import { responsesSurface } from "../../supabase/functions/llm-invoke/surfaces/openai/responses.ts";
import type { Surface } from "../../supabase/functions/llm-invoke/surfaces/shared/surface.ts";

type Json = Record<string, any>;

const CALLERS_MODEL = "callers-own-name";
const QUESTION = "What is six times seven? Use the tool.";
const TOOL = "multiply";
const CALL_ID = "call_1";
const ARGS = { a: 6, b: 7 };
const PARAMETERS = { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } };
/** What the tool answered, as text. */
const RESULT = "42";

interface RouteRow {
  name: string;
  surface: Surface<any>;
  /** The caller's conversation: the question, the model's call of TOOL, the tool's RESULT in the route's form. */
  body: Json;
  /** What the path says beside the body (Gemini's route: the model). */
  path?: { model: string; stream: boolean };
}

const geminiFields = {
  contents: [
    { role: "user", parts: [{ text: QUESTION }] },
    { role: "model", parts: [{ functionCall: { name: TOOL, args: ARGS, id: CALL_ID } }] },
    // Google's response is an object: a text result is its `output`.
    { role: "user", parts: [{ functionResponse: { name: TOOL, response: { output: RESULT }, id: CALL_ID } }] },
  ],
  tools: [{ functionDeclarations: [{ name: TOOL, parametersJsonSchema: PARAMETERS }] }],
};

const ROUTES: RouteRow[] = [
  { name: "native", surface: nativeSurface, body: { model: CALLERS_MODEL, ...geminiFields } },
  { name: "gemini", surface: geminiSurface, body: geminiFields, path: { model: CALLERS_MODEL, stream: false } },
  {
    name: "openai",
    surface: openAiSurface,
    body: {
      model: CALLERS_MODEL,
      messages: [
        { role: "user", content: QUESTION },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: CALL_ID, type: "function", function: { name: TOOL, arguments: JSON.stringify(ARGS) } }],
        },
        { role: "tool", tool_call_id: CALL_ID, content: RESULT },
      ],
      tools: [{ type: "function", function: { name: TOOL, parameters: PARAMETERS } }],
    },
  },
  {
    name: "responses",
    surface: responsesSurface,
    body: {
      model: CALLERS_MODEL,
      input: [
        { role: "user", content: QUESTION },
        { type: "function_call", call_id: CALL_ID, name: TOOL, arguments: JSON.stringify(ARGS) },
        { type: "function_call_output", call_id: CALL_ID, output: RESULT },
      ],
      tools: [{ type: "function", name: TOOL, parameters: PARAMETERS }],
      store: false,
    },
  },
  {
    name: "anthropic",
    surface: anthropicSurface,
    body: {
      model: CALLERS_MODEL,
      max_tokens: 100,
      messages: [
        { role: "user", content: QUESTION },
        { role: "assistant", content: [{ type: "tool_use", id: CALL_ID, name: TOOL, input: ARGS }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: CALL_ID, content: RESULT }] },
      ],
      tools: [{ name: TOOL, input_schema: PARAMETERS }],
    },
  },
];

/** The tool result a provider received, in its own form, and whether it names the call before it. */
interface Received {
  result: unknown;
  namesItsCall: boolean;
}

interface ProviderRow {
  name: string;
  dialect: Dialect;
  model: string;
  apiKey: string;
  /** OpenAI's own has its Responses API; a compatible service has chat completions only. */
  hasResponsesApi?: boolean;
  client(): UpstreamClient;
  /** The last generation body its simulator received. */
  lastBody(): Json;
  toolResult(body: Json): Received;
  /** RESULT in its own form. */
  expected: unknown;
}

let google: GoogleSimulator;
let openai: OpenAISimulator;
let anthropic: AnthropicSimulator;

const lastOf = (bodies: unknown[], dialect: string): Json => {
  expect(bodies.length, `${dialect} received no generation call`).toBeGreaterThan(0);
  return bodies.at(-1) as Json;
};

/** Chat Completions' tool message, or the Responses API's function_call_output. */
function openAiToolResult(body: Json): Received {
  if (Array.isArray(body.input)) {
    const call = body.input.find((i: Json) => i.type === "function_call");
    const output = body.input.find((i: Json) => i.type === "function_call_output");
    return { result: output?.output, namesItsCall: call !== undefined && output?.call_id === call.call_id };
  }
  const call = body.messages.find((m: Json) => m.role === "assistant")?.tool_calls?.[0];
  const tool = body.messages.find((m: Json) => m.role === "tool");
  return { result: tool?.content, namesItsCall: call !== undefined && tool?.tool_call_id === call.id };
}

const openAiRow = (name: string, hasResponsesApi: boolean): ProviderRow => ({
  name,
  dialect: "openai",
  model: "gpt-4o",
  apiKey: "sk-sim-tools",
  hasResponsesApi,
  client: () => createOpenAiClient({ baseUrl: openai.url }),
  lastBody: () => {
    const calls = openai.stats().recent.filter((r) => r.method === "chat.completions" || r.method === "responses");
    return lastOf(calls.map((r) => r.body), name);
  },
  toolResult: openAiToolResult,
  expected: RESULT,
});

const PROVIDERS: ProviderRow[] = [
  {
    name: "google",
    dialect: "google",
    model: "gemini-2.5-flash",
    apiKey: "sim-key-tools",
    client: () => createGoogleClient({ baseUrl: google.url }),
    lastBody: () =>
      lastOf(google.stats().recent.filter((r) => r.method === "generateContent").map((r) => r.body), "google"),
    toolResult: (body) => {
      const parts: Json[] = body.contents.flatMap((c: Json) => c.parts);
      const call = parts.find((p) => p.functionCall !== undefined)?.functionCall;
      const response = parts.find((p) => p.functionResponse !== undefined)?.functionResponse;
      return { result: response?.response, namesItsCall: call !== undefined && response?.name === call.name };
    },
    expected: { output: RESULT },
  },
  openAiRow("openai", true),
  openAiRow("openai-compatible", false),
  {
    name: "anthropic",
    dialect: "anthropic",
    model: "claude-sonnet-4-5-20250929",
    apiKey: "sk-ant-sim-tools",
    client: () => createAnthropicClient({ baseUrl: anthropic.url }),
    lastBody: () =>
      lastOf(anthropic.stats().received.filter((r) => r.method === "messages").map((r) => r.body), "anthropic"),
    toolResult: (body) => {
      const blocks: Json[] = body.messages.flatMap((m: Json) => (Array.isArray(m.content) ? m.content : []));
      const use = blocks.find((b) => b.type === "tool_use");
      const result = blocks.find((b) => b.type === "tool_result");
      return {
        result: result === undefined ? undefined : { content: result.content, is_error: result.is_error },
        namesItsCall: use !== undefined && result?.tool_use_id === use.id,
      };
    },
    expected: { content: RESULT, is_error: undefined },
  },
];

beforeAll(async () => {
  google = await startGoogleSimulator({ keys: { "sim-key-tools": "proj-tools" } });
  openai = await startOpenAISimulator({ organizations: { "org-tools": { keys: ["sk-sim-tools"] } } });
  anthropic = await startAnthropicSimulator({ organizations: { "org-tools": { keys: ["sk-ant-sim-tools"] } } });
});
afterAll(async () => {
  await google?.close();
  await openai?.close();
  await anthropic?.close();
});
beforeEach(() => {
  google.reset();
  openai.reset();
  anthropic.reset();
});

function parse(route: RouteRow): NormalizedRequest {
  const input = { body: route.body, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS };
  return route.surface.parse({ ...input, ...(route.path ?? {}) });
}

describe.each(ROUTES)("a caller of the $name route answering a tool call with the text 42", (route) => {
  it.each(PROVIDERS)("a $name model receives 42 as its dialect carries a tool's text, with its call", async (p) => {
    const caps = {
      model: p.model,
      dialect: p.dialect,
      hasResponsesApi: p.hasResponsesApi === true,
      supportsSystemInstruction: true,
      supportsJsonMode: true,
      supportsTools: true,
    };
    const request = adaptToModel(caps, parse(route));
    const outcome = await p.client().generate({ apiKey: p.apiKey, request, timeoutMs: 10_000 });
    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    expect(p.toolResult(p.lastBody())).toEqual({ result: p.expected, namesItsCall: true });
  });
});
