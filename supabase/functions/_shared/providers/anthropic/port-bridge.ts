// Until the port's request is the hub's: the port still hands a dialect its request in the gateway's
// inner shape (../../upstream/shapes.ts: Gemini's contents). This reads it as a HubRequest, so the
// dialect itself translates only from the hub (request.ts). It names no Anthropic field, and goes away
// when the port passes HubRequests.
import type {
  HubMessage,
  HubOptions,
  HubPart,
  HubRequest,
  HubSchema,
  HubTool,
  HubToolChoice,
} from "../../upstream/hub.ts";
import type { Part, UpstreamRequest } from "../../upstream/shapes.ts";

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
  if (mode === "ANY" || mode === "VALIDATED") {
    const only = Array.isArray(fc?.allowedFunctionNames)
      ? fc.allowedFunctionNames.filter((n) => typeof n === "string")
      : [];
    return only.length > 0 ? { mode: "required", only } : { mode: "required" };
  }
  return mode === undefined ? undefined : { mode: "auto" };
}

/** The port's request as a HubRequest. */
export function hubRequestOf(request: UpstreamRequest): HubRequest {
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
  if (g.responseMimeType === "application/json") {
    const schema = schemaOf(g.responseJsonSchema, g.responseSchema);
    options.format = schema === undefined ? { type: "json" } : { type: "json", schema };
  }
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
