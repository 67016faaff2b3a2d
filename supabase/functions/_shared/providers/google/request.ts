// The hub's request (../../upstream/hub.ts) as Google's generateContent body (v1beta, camelCase). A
// request already in Google's dialect (`dialectBody`: the gateway's own request, or a caller's body on
// a route of Google's shape) is sent as it is; any other is translated: messages to contents, the
// system to systemInstruction, options to generationConfig, tools to function declarations, the tool
// choice to toolConfig, the service tier to serviceTier.
import type { HubOptions, HubPart, HubRequest, HubSchema, HubToolChoice } from "../../upstream/hub.ts";
import { GOOGLE_DIALECT } from "./answer.ts";

type Json = Record<string, unknown>;

function partOf(p: HubPart): Json {
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
      return { functionResponse: { name: p.name, response: p.result, ...(p.id === undefined ? {} : { id: p.id }) } };
  }
}

/** A schema under the field Google reads for its flavour. */
function schemaField(schema: HubSchema, jsonField: string, openApiField: string): Json {
  return { [schema.flavour === "json-schema" ? jsonField : openApiField]: schema.schema };
}

function generationConfigOf(o: HubOptions): Json {
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
      Object.assign(config, schemaField(o.format.schema, "responseJsonSchema", "responseSchema"));
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

function toolConfigOf(choice: HubToolChoice): Json {
  if (choice.mode === "none") return { functionCallingConfig: { mode: "NONE" } };
  if (choice.mode === "auto") return { functionCallingConfig: { mode: "AUTO" } };
  return {
    functionCallingConfig: { mode: "ANY", ...(choice.only === undefined ? {} : { allowedFunctionNames: choice.only }) },
  };
}

/** The generateContent body of a request (everything but the model, which is in the path). */
export function generateContentBody(request: HubRequest): Json {
  if (request.dialectBody?.dialect === GOOGLE_DIALECT) return request.dialectBody.body;
  const config = generationConfigOf(request.options);
  const tools = request.tools ?? [];
  return {
    contents: request.messages.map((m) => ({ role: m.role, parts: m.parts.map(partOf) })),
    ...(request.system === undefined ? {} : { systemInstruction: { parts: [{ text: request.system }] } }),
    ...(Object.keys(config).length === 0 ? {} : { generationConfig: config }),
    ...(tools.length === 0 ? {} : {
      tools: [{
        functionDeclarations: tools.map((t) => ({
          name: t.name,
          ...(t.description === undefined ? {} : { description: t.description }),
          ...(t.parameters === undefined ? {} : schemaField(t.parameters, "parametersJsonSchema", "parameters")),
        })),
      }],
    }),
    ...(request.toolChoice === undefined ? {} : { toolConfig: toolConfigOf(request.toolChoice) }),
    ...(request.dialectExtras?.dialect === GOOGLE_DIALECT ? request.dialectExtras.fields : {}),
    ...(request.serviceTier === undefined ? {} : { serviceTier: request.serviceTier }),
  };
}

/** The countTokens body: the whole generateContentRequest, so the system instruction is counted too. */
export function countTokensBody(request: HubRequest): Json {
  return { generateContentRequest: { model: `models/${request.model}`, ...generateContentBody(request) } };
}
