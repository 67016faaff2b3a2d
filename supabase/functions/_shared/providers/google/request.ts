// The hub's request (../../upstream/hub.ts) as Google's generateContent body (v1beta, camelCase). A
// request that carries a body in Google's dialect (`dialectBody`) is sent as it is but for the fields
// the gateway decides (its output cap and thinking budget); any other is
// translated: messages to contents, the system to systemInstruction, options to generationConfig, tools
// to function declarations, the tool choice to toolConfig, the service tier to serviceTier. What only
// Google has a word for (DialectExtras keyed "google": safety settings, tools that are not functions,
// options and part fields the hub lacks) is set over that translation as the caller gave it, so a body
// of Google's shape reaches Google as sent.
import type {
  DialectExtras,
  HubOptions,
  HubPart,
  HubRequest,
  HubRole,
  HubTool,
  HubToolChoice,
} from "../../upstream/hub.ts";
import { isObject } from "../../json.ts";
import { GOOGLE_DIALECT } from "./answer.ts";
import { functionResponseOf } from "./tool-result.ts";

type Json = Record<string, unknown>;

/** Google's own fields of `extras`, set over `translated` (an `undefined` one: left out). */
function withOwn(translated: Json, extras: Json | undefined): Json {
  if (extras === undefined) return translated;
  const out = { ...translated, ...extras };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

const own = (extras: DialectExtras | undefined) => extras?.dialect === GOOGLE_DIALECT ? extras : undefined;

/** A hub part as a Google part. */
export function googlePart(p: HubPart): Json {
  return withOwn(translatedPart(p), own(p.extras)?.fields);
}

function translatedPart(p: HubPart): Json {
  const signature = "signature" in p && p.signature !== undefined ? { thoughtSignature: p.signature } : {};
  switch (p.type) {
    case "text":
      return { text: p.text, ...(p.thought === true ? { thought: true } : {}), ...signature };
    case "media":
      return { inlineData: { mimeType: p.mimeType, data: p.data } };
    case "tool_call":
      return {
        functionCall: { name: p.name, args: p.args, ...(p.id === undefined ? {} : { id: p.id }) },
        ...signature,
      };
    case "tool_result":
      return { functionResponse: { name: p.name, response: functionResponseOf(p), ...(p.id === undefined ? {} : { id: p.id }) } };
  }
}

/** A hub role as Google's: the assistant's turn is the model's. */
export function googleRole(role: HubRole): "user" | "model" {
  return role === "assistant" ? "model" : "user";
}

/** Hub options as generationConfig. */
export function generationConfigOf(o: HubOptions): Json {
  const config: Json = {};
  if (o.temperature !== undefined) config.temperature = o.temperature;
  if (o.maxOutputTokens !== undefined) config.maxOutputTokens = o.maxOutputTokens;
  if (o.topP !== undefined) config.topP = o.topP;
  if (o.topK !== undefined) config.topK = o.topK;
  if (o.stop !== undefined) config.stopSequences = o.stop;
  if (o.outputCount !== undefined) config.candidateCount = o.outputCount;
  if (o.seed !== undefined) config.seed = o.seed;
  if (o.presencePenalty !== undefined) config.presencePenalty = o.presencePenalty;
  if (o.frequencyPenalty !== undefined) config.frequencyPenalty = o.frequencyPenalty;
  if (o.format?.type === "json") {
    config.responseMimeType = "application/json";
    if (o.format.schema !== undefined) {
      config.responseJsonSchema = o.format.schema;
    }
  }
  if (o.thinking !== undefined) {
    config.thinkingConfig = {
      ...(o.thinking.budgetTokens === undefined ? {} : { thinkingBudget: o.thinking.budgetTokens }),
      ...(o.thinking.includeThoughts === undefined ? {} : { includeThoughts: o.thinking.includeThoughts }),
    };
  }
  return config;
}

/**
 * The fields of generationConfig the gateway decides, set over the caller's own (its output cap, its
 * thinking budget): a caller's field that only Google has a word for never carries them past it.
 */
function gatewayFields(config: Json, o: HubOptions): Json {
  const out = { ...config };
  if (o.maxOutputTokens !== undefined) out.maxOutputTokens = o.maxOutputTokens;
  const budget = o.thinking?.budgetTokens;
  if (budget !== undefined) {
    out.thinkingConfig = { ...(isObject(out.thinkingConfig) ? out.thinkingConfig : {}), thinkingBudget: budget };
  }
  return out;
}

/** The hub's tools as Google's (one entry of function declarations); absent: none. */
export function googleTools(tools: readonly HubTool[] | undefined): Json[] | undefined {
  if (tools === undefined || tools.length === 0) return undefined;
  return [{
    functionDeclarations: tools.map((t) => ({
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      ...(t.parameters === undefined ? {} : { parametersJsonSchema: t.parameters }),
    })),
  }];
}

/** The hub's tool choice as toolConfig. */
export function toolConfigOf(choice: HubToolChoice): Json {
  if (choice.mode === "none") return { functionCallingConfig: { mode: "NONE" } };
  if (choice.mode === "auto") return { functionCallingConfig: { mode: "AUTO" } };
  return {
    functionCallingConfig: { mode: "ANY", ...(choice.only === undefined ? {} : { allowedFunctionNames: choice.only }) },
  };
}

/** The generateContent body of a request (everything but the model, which is in the path). */
export function generateContentBody(request: HubRequest): Json {
  if (request.dialectBody?.dialect === GOOGLE_DIALECT) {
    const given = request.dialectBody.body;
    const config = gatewayFields(isObject(given.generationConfig) ? given.generationConfig : {}, request.options);
    return { ...given, ...(Object.keys(config).length === 0 ? {} : { generationConfig: config }) };
  }
  const extras = own(request.dialectExtras);
  const config = gatewayFields(withOwn(generationConfigOf(request.options), extras?.options), request.options);
  const tools = googleTools(request.tools);
  const body = withOwn({
    contents: request.messages.map((m) => ({ role: googleRole(m.role), parts: m.parts.map(googlePart) })),
    ...(request.system === undefined ? {} : { systemInstruction: { parts: [{ text: request.system }] } }),
    ...(Object.keys(config).length === 0 ? {} : { generationConfig: config }),
    ...(tools === undefined ? {} : { tools }),
    ...(request.toolChoice === undefined ? {} : { toolConfig: toolConfigOf(request.toolChoice) }),
  }, extras?.fields);
  // The tier is the gateway's choice for this call (its class's row, or the caller's within it).
  return request.serviceTier === undefined ? body : { ...body, serviceTier: request.serviceTier };
}

/** The countTokens body: the whole generateContentRequest, so the system instruction is counted too. */
export function countTokensBody(request: HubRequest): Json {
  return { generateContentRequest: { model: `models/${request.model}`, ...generateContentBody(request) } };
}
