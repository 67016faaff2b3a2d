// The request as one model takes it (ModelRequest, the normalized request's shape: Gemini's) as the
// provider port takes it: in the hub's words (hubRequestOf), which every dialect but Google's
// translates into its wire body, and, unless the caller's own body of the serving provider's dialect
// goes instead, as the inner request's own dialect's generateContent body, which a provider of that
// dialect sends as it is (so every field the caller gave reaches it, those the hub has no word for too).
import { INNER_REQUEST_DIALECT } from "../../_shared/providers/registry.ts";
import type {
  HubMessage,
  HubOptions,
  HubPart,
  HubRequest,
  HubSchema,
  HubTool,
  HubToolChoice,
} from "../../_shared/upstream/hub.ts";
import type { ModelRequest, Part } from "../contract.ts";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function partOf(p: Part): HubPart | null {
  const signature = typeof p.thoughtSignature === "string" ? { signature: p.thoughtSignature } : {};
  if (typeof p.text === "string") {
    return { type: "text", text: p.text, ...(p.thought === true ? { thought: true } : {}), ...signature };
  }
  if (p.inlineData !== undefined) return { type: "media", mimeType: p.inlineData.mimeType, data: p.inlineData.data };
  if (p.functionCall !== undefined) {
    const { name, args, id } = p.functionCall;
    return { type: "tool_call", ...(id === undefined ? {} : { id }), name, args: args ?? {}, ...signature };
  }
  if (p.functionResponse !== undefined) {
    const { name, response, id } = p.functionResponse;
    return { type: "tool_result", ...(id === undefined ? {} : { id }), name, result: response };
  }
  return null;
}

function schemaOf(jsonSchema: unknown, openApi: unknown): HubSchema | undefined {
  if (jsonSchema !== undefined) return { flavour: "json-schema", schema: jsonSchema };
  if (openApi !== undefined) return { flavour: "openapi-3.0", schema: openApi };
  return undefined;
}

function toolsOf(tools: unknown[] | undefined): HubTool[] {
  const out: HubTool[] = [];
  for (const t of tools ?? []) {
    if (!isObject(t) || !Array.isArray(t.functionDeclarations)) continue;
    for (const f of t.functionDeclarations) {
      if (!isObject(f) || typeof f.name !== "string") continue;
      const parameters = schemaOf(f.parametersJsonSchema, f.parameters);
      out.push({
        name: f.name,
        ...(typeof f.description === "string" ? { description: f.description } : {}),
        ...(parameters === undefined ? {} : { parameters }),
      });
    }
  }
  return out;
}

function toolChoiceOf(config: Json | undefined): HubToolChoice | undefined {
  const fc = isObject(config?.functionCallingConfig) ? config.functionCallingConfig : undefined;
  const mode = typeof fc?.mode === "string" ? fc.mode.toUpperCase() : undefined;
  if (mode === "NONE") return { mode: "none" };
  if (mode === "ANY") {
    const only = Array.isArray(fc?.allowedFunctionNames)
      ? fc.allowedFunctionNames.filter((n) => typeof n === "string")
      : [];
    return only.length > 0 ? { mode: "required", only } : { mode: "required" };
  }
  // AUTO, VALIDATED (a call or text, the calls held to their schemas), anything else: the model decides.
  return mode === undefined ? undefined : { mode: "auto" };
}

/**
 * The request in the hub's words: what a dialect other than Google's translates into its wire body.
 * Google's own fields the hub has no word for (safety settings, tools other than functions, unknown
 * generationConfig fields) are left out: the inner dialect's own body carries them (portRequestOf).
 */
export function hubRequestOf(request: ModelRequest): HubRequest {
  const g = request.generationConfig;
  const messages: HubMessage[] = request.contents.map((c) => ({
    role: c.role,
    parts: c.parts.map(partOf).filter((p): p is HubPart => p !== null),
  }));
  const options: HubOptions = {};
  if (g.maxOutputTokens !== undefined) options.maxOutputTokens = g.maxOutputTokens;
  if (g.temperature !== undefined) options.temperature = g.temperature;
  if (g.topP !== undefined) options.topP = g.topP;
  if (g.topK !== undefined) options.topK = g.topK;
  if (g.stopSequences !== undefined) options.stop = g.stopSequences;
  if (g.candidateCount !== undefined) options.outputCount = g.candidateCount;
  if (g.seed !== undefined) options.seed = g.seed;
  if (g.presencePenalty !== undefined) options.presencePenalty = g.presencePenalty;
  if (g.frequencyPenalty !== undefined) options.frequencyPenalty = g.frequencyPenalty;
  // A schema asks for JSON held to it, whatever the MIME type says.
  const schema = schemaOf(g.responseJsonSchema, g.responseSchema);
  if (schema !== undefined) options.format = { type: "json", schema };
  else if (g.responseMimeType === "application/json") options.format = { type: "json" };
  if (g.thinkingConfig !== undefined) {
    options.thinking = {
      ...(g.thinkingConfig.thinkingBudget === undefined ? {} : { budgetTokens: g.thinkingConfig.thinkingBudget }),
      ...(g.thinkingConfig.includeThoughts === undefined ? {} : { includeThoughts: g.thinkingConfig.includeThoughts }),
    };
  }
  const tools = toolsOf(request.tools);
  const toolChoice = toolChoiceOf(request.toolConfig);
  return {
    model: request.model,
    ...(request.systemInstruction === undefined ? {} : { system: request.systemInstruction }),
    messages,
    options,
    ...(tools.length === 0 ? {} : { tools }),
    ...(toolChoice === undefined ? {} : { toolChoice }),
    ...(request.serviceTier === undefined ? {} : { serviceTier: request.serviceTier }),
    ...(request.dialectBody === undefined ? {} : { dialectBody: request.dialectBody }),
  };
}

/** The generateContent body of a request (everything but the model, which is in the path). */
export function innerBody(request: ModelRequest): Record<string, unknown> {
  return {
    contents: request.contents,
    ...(request.systemInstruction === undefined
      ? {}
      : { systemInstruction: { parts: [{ text: request.systemInstruction }] } }),
    ...(Object.keys(request.generationConfig).length === 0 ? {} : { generationConfig: request.generationConfig }),
    ...(request.tools === undefined ? {} : { tools: request.tools }),
    ...(request.toolConfig === undefined ? {} : { toolConfig: request.toolConfig }),
    ...(request.safetySettings === undefined ? {} : { safetySettings: request.safetySettings }),
    ...(request.serviceTier === undefined ? {} : { serviceTier: request.serviceTier }),
  };
}

/** The request as the port takes it (see the head of this file). */
export function portRequestOf(request: ModelRequest): HubRequest {
  return {
    ...hubRequestOf(request),
    ...(request.bookedOutputTokens === undefined ? {} : { bookedOutputTokens: request.bookedOutputTokens }),
    dialectBody: request.dialectBody ?? { dialect: INNER_REQUEST_DIALECT, body: innerBody(request) },
  };
}
