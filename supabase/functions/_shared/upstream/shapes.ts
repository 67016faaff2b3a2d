// The Gemini REST shape of the request the port still carries (v1beta generateContent, camelCase as
// Google's own SDKs send it), and its reading as the hub's (hubRequestOf), which every dialect but
// Google's translates into its wire body; the answer is the hub's (hub.ts). Both go when the port
// takes a HubRequest. Fields the gateway does not interpret are carried as they came, so a new Gemini
// field reaches Google without a code change.
import type { ServiceTier } from "../vocabulary.ts";
import type {
  DialectBody,
  HubMessage,
  HubOptions,
  HubPart,
  HubRequest,
  HubSchema,
  HubTool,
  HubToolChoice,
} from "./hub.ts";

/**
 * One part of a turn: text, an inline image (`inlineData`), a function call or its response. The
 * gateway reads `text` and `inlineData`; every other field is forwarded unchanged.
 */
export interface Part {
  text?: string;
  /** Gemini 2.5 marks its thoughts with `thought: true`; they are not part of the answer's text. */
  thought?: boolean;
  inlineData?: { mimeType: string; data: string };
  functionCall?: { name: string; args?: Record<string, unknown>; id?: string };
  functionResponse?: { name: string; response: Record<string, unknown>; id?: string };
  [field: string]: unknown;
}

export interface Content {
  role: "user" | "model";
  parts: Part[];
}

/** The text-only part the gateway itself writes (prompts, folded system instructions). */
export interface TextPart extends Part {
  text: string;
}

/** generationConfig: the fields the gateway checks are typed; the rest pass through. */
export interface GenerationConfig {
  temperature?: number;
  maxOutputTokens?: number;
  topP?: number;
  topK?: number;
  stopSequences?: string[];
  responseMimeType?: string;
  responseSchema?: unknown;
  responseJsonSchema?: unknown;
  candidateCount?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  thinkingConfig?: { thinkingBudget?: number; includeThoughts?: boolean; [field: string]: unknown };
  [field: string]: unknown;
}

/** The request-level fields forwarded as the caller gave them (function calling, safety). */
export interface RequestExtras {
  tools?: unknown[];
  toolConfig?: Record<string, unknown>;
  safetySettings?: unknown[];
}

/** What is sent to Google for one request. */
export interface UpstreamRequest extends RequestExtras {
  model: string;
  contents: Content[];
  systemInstruction?: string;
  generationConfig: GenerationConfig;
  /** Google's service tier for this call (the body's serviceTier); absent: standard, nothing sent. */
  serviceTier?: ServiceTier;
  /**
   * The output tokens the reservation booked for this call where the caller named no cap (the model
   * row's booked answer): a provider that requires a cap (Anthropic's max_tokens) sends it.
   */
  bookedOutputTokens?: number;
  /**
   * The caller's own body, when it came in this provider's dialect: the provider sends it as it came
   * (only the gateway's fields set) instead of translating the hub shape. Only a provider of that
   * dialect is given one (model/adapt.ts).
   */
  dialectBody?: DialectBody;
}

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
 * The port's request as a HubRequest: what a dialect other than Google's translates into its wire
 * body. Google's own fields the hub has no word for (safety settings, tools other than functions,
 * unknown generationConfig fields) are left out.
 */
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
