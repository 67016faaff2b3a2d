// Until the port speaks the hub (issue 70): the port still hands a dialect its request, and takes its
// answer, in the gateway's inner shape (../../upstream/shapes.ts: Gemini's contents and candidates).
// This reads that request as a HubRequest and writes a HubAnswer back in it, so the dialect itself
// translates only to and from the hub (request.ts, response.ts). It names no Anthropic field, and goes
// away when the port passes HubRequests and takes HubAnswers.
import type {
  HubAnswer,
  HubMessage,
  HubOptions,
  HubPart,
  HubRequest,
  HubSchema,
  HubTool,
  HubToolChoice,
} from "../../upstream/hub.ts";
import type { Part, UpstreamAnswer, UpstreamRequest } from "../../upstream/shapes.ts";

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

const FINISH_WORD = {
  stop: "STOP",
  max_tokens: "MAX_TOKENS",
  tool_call: "STOP",
  content_filter: "SAFETY",
  prompt_blocked: "OTHER",
  other: "OTHER",
} as const;

function innerPart(p: HubPart): Json {
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

/** A HubAnswer (whole, or one streamed piece) in the port's inner shape. */
export function innerAnswerOf(answer: HubAnswer): UpstreamAnswer {
  const out: UpstreamAnswer = {
    candidates: answer.outputs.map((o) => ({
      index: o.index,
      content: { role: "model", parts: o.parts.map(innerPart) },
      ...(o.finish === null ? {} : { finishReason: FINISH_WORD[o.finish.reason] }),
    })),
  };
  if (answer.usage !== null) {
    const u = answer.usage;
    out.usageMetadata = {
      promptTokenCount: u.inputTokens,
      candidatesTokenCount: u.outputTokens,
      ...(u.thinkingTokens > 0 ? { thoughtsTokenCount: u.thinkingTokens } : {}),
      ...(u.cachedInputTokens > 0 ? { cachedContentTokenCount: u.cachedInputTokens } : {}),
      // Cache writes have no word in Google's shape: the port's own (answer.ts, responseUsage).
      ...(u.cacheWrite5mTokens ? { cacheWrite5mTokenCount: u.cacheWrite5mTokens } : {}),
      ...(u.cacheWrite1hTokens ? { cacheWrite1hTokenCount: u.cacheWrite1hTokens } : {}),
      totalTokenCount: u.totalTokens,
    };
  }
  if (answer.modelVersion !== null) out.modelVersion = answer.modelVersion;
  if (answer.id !== null) out.responseId = answer.id;
  return out;
}
