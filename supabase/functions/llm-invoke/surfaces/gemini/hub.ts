// Gemini's request (checked contents, generationConfig, tools, toolConfig, safetySettings: the Gemini
// routes' bodies and the native body's Gemini fields) in the hub's words. What the hub has no word for
// is carried keyed by Google's dialect (DialectExtras): each field whose value Google's own translation
// of the hub's words (_shared/providers/google/request.ts) would not give back as the caller wrote it,
// so a Google model receives the body as sent. Of those, what would change another provider's answer
// (a part's own field, a tool that is not a function, an option the hub lacks) is listed in `only`: a
// model of another dialect refuses it by name. Safety settings are not: docs/gemini.md says they are
// not sent where the provider has no such field.
import { GOOGLE_DIALECT } from "../../../_shared/providers/google/answer.ts";
import { toolResultOf } from "../../../_shared/providers/google/tool-result.ts";
import {
  generationConfigOf,
  googlePart,
  googleTools,
  toolConfigOf,
} from "../../../_shared/providers/google/request.ts";
import { jsonSchemaOfOpenApi } from "./openapi-schema.ts";
import type {
  DialectExtras,
  HubMessage,
  HubOptions,
  HubPart,
  HubSchema,
  HubTool,
  HubToolChoice,
} from "../../../_shared/upstream/hub.ts";
import type { Ask, NormalizedRequest, OnlyField } from "../../contract.ts";
import { OUTPUT_CAP_CODE } from "../../field-codes.ts";
import { boundedName } from "../../../_shared/validation.ts";
import { camelKeys } from "./json-keys.ts";
import { isObject } from "../../../_shared/json.ts";
import type { Content, Part } from "./parts.ts";

type Json = Record<string, unknown>;

/** The hub's words for a Gemini request's fields, with what only Google has a word for. */
export type GeminiInHub = Pick<
  NormalizedRequest,
  | "messages"
  | "options"
  | "tools"
  | "toolChoice"
  | "dialectExtras"
  | "only"
  | "asks"
  | "outputCapField"
  | "optionFields"
>;

/** Gemini's fields as a caller may give them (checked by the route's schema). */
export interface GeminiFields {
  contents: readonly Content[];
  generationConfig?: Json;
  tools?: unknown[];
  toolConfig?: Json;
  safetySettings?: unknown[];
}

/** generationConfig's fields the hub has a word for. */
const OPTION_FIELDS = new Set([
  "temperature", "maxOutputTokens", "topP", "topK", "stopSequences", "candidateCount", "seed", "presencePenalty",
  "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
]);
const PLAIN_TEXT = "text/plain";
const JSON_MIME = "application/json";
/** A part's fields the hub has a word for. */
const PART_FIELDS = new Set(["text", "thought", "thoughtSignature", "inlineData", "functionCall", "functionResponse"]);
const DECLARATION_FIELDS = new Set([
  "name", "description", "parameters", "parametersJsonSchema", "parameters_json_schema",
]);

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => same(v, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => same(a[k], b[k]));
}

/** The fields of `given` that `translated` does not say as given (a field only translated: undefined). */
function differences(given: Json, translated: Json): Json {
  const out: Json = {};
  for (const key of new Set([...Object.keys(given), ...Object.keys(translated)])) {
    if (!same(given[key], translated[key])) out[key] = given[key];
  }
  return out;
}

const extrasOf = (fields: Json): DialectExtras | undefined =>
  Object.keys(fields).length === 0 ? undefined : { dialect: GOOGLE_DIALECT, fields };

function partOf(p: Part, where: string, only: OnlyField[]): HubPart {
  const signature = typeof p.thoughtSignature === "string" ? { signature: p.thoughtSignature } : {};
  let part: HubPart;
  if (typeof p.text === "string") {
    part = { type: "text", text: p.text, ...(p.thought === true ? { thought: true } : {}), ...signature };
  } else if (p.inlineData !== undefined) {
    part = { type: "media", mimeType: p.inlineData.mimeType, data: p.inlineData.data };
  } else if (p.functionCall !== undefined) {
    const { name, args, id } = p.functionCall;
    part = {
      type: "tool_call",
      ...(typeof id === "string" ? { id } : {}),
      name,
      args: args ?? {},
      ...signature,
    };
  } else {
    const { name, response, id } = p.functionResponse!;
    part = { type: "tool_result", ...(typeof id === "string" ? { id } : {}), name, ...toolResultOf(response) };
  }
  const extras = extrasOf(differences(p, googlePart(part)));
  for (const key of Object.keys(p)) {
    if (!PART_FIELDS.has(key)) only.push({ field: `${where}.${boundedName(key)}`, why: "a part's field only Google's models take" });
  }
  return extras === undefined ? part : { ...part, extras };
}

/** Checked Gemini contents as hub messages. */
function messagesOf(contents: readonly Content[], field: string, only: OnlyField[]): HubMessage[] {
  return contents.map((c, i) => ({
    role: c.role === "model" ? "assistant" : "user",
    parts: c.parts.map((p, j) => partOf(p, `${field}[${i}].parts[${j}]`, only)),
  }));
}

/** A schema given in JSON Schema, or in Google's OpenAPI subset (converted: the hub holds JSON Schema only). */
function schemaOf(jsonSchema: unknown, openApi: unknown): HubSchema | undefined {
  if (jsonSchema !== undefined) return jsonSchema;
  if (openApi !== undefined) return jsonSchemaOfOpenApi(openApi);
  return undefined;
}

/** generationConfig in the hub's words (its other fields go as Google's own options). */
function optionsOf(g: Json): HubOptions {
  const options: HubOptions = {};
  const num = (v: unknown) => (typeof v === "number" ? v : undefined);
  const set = <K extends keyof HubOptions>(key: K, value: HubOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set("maxOutputTokens", num(g.maxOutputTokens));
  set("temperature", num(g.temperature));
  set("topP", num(g.topP));
  set("topK", num(g.topK));
  set("stop", Array.isArray(g.stopSequences) ? g.stopSequences as string[] : undefined);
  set("outputCount", num(g.candidateCount));
  set("seed", num(g.seed));
  set("presencePenalty", num(g.presencePenalty));
  set("frequencyPenalty", num(g.frequencyPenalty));
  // A schema asks for JSON held to it, whatever the MIME type says.
  const schema = schemaOf(g.responseJsonSchema, g.responseSchema);
  if (schema !== undefined) options.format = { type: "json", schema };
  else if (g.responseMimeType === JSON_MIME) options.format = { type: "json" };
  if (isObject(g.thinkingConfig)) {
    const { thinkingBudget, includeThoughts } = g.thinkingConfig;
    options.thinking = {
      ...(typeof thinkingBudget === "number" ? { budgetTokens: thinkingBudget } : {}),
      ...(typeof includeThoughts === "boolean" ? { includeThoughts } : {}),
    };
  }
  return options;
}

function toolsOf(tools: readonly unknown[], at: string, only: OnlyField[]): HubTool[] {
  const out: HubTool[] = [];
  tools.forEach((t, i) => {
    if (!isObject(t)) return;
    // Inside tools Google's REST reads snake_case too.
    const declarations = t.functionDeclarations ?? t.function_declarations;
    for (const key of Object.keys(t)) {
      if (key !== "functionDeclarations" && key !== "function_declarations") only.push({ field: `${at}tools[${i}].${boundedName(key)}`, why: `the ${boundedName(key)} tool is Google's` });
    }
    if (!Array.isArray(declarations)) return;
    declarations.forEach((f: unknown, j: number) => {
      if (!isObject(f) || typeof f.name !== "string") return;
      for (const key of Object.keys(f)) {
        if (!DECLARATION_FIELDS.has(key)) {
          only.push({ field: `${at}tools[${i}].functionDeclarations[${j}].${boundedName(key)}`, why: "a function's field only Google's models take" });
        }
      }
      const parameters = schemaOf(f.parametersJsonSchema ?? f.parameters_json_schema, f.parameters);
      out.push({
        name: f.name,
        ...(typeof f.description === "string" ? { description: f.description } : {}),
        ...(parameters === undefined ? {} : { parameters }),
      });
    });
  });
  return out;
}

function toolChoiceOf(given: Json, at: string, only: OnlyField[]): HubToolChoice | undefined {
  // Google's REST reads toolConfig in snake_case too: function_calling_config is functionCallingConfig.
  const config = camelKeys(given, `${at}toolConfig.`);
  for (const key of Object.keys(config)) {
    if (key !== "functionCallingConfig") only.push({ field: `${at}toolConfig.${boundedName(key)}`, why: "Google's own tool setting" });
  }
  const fc = isObject(config.functionCallingConfig)
    ? camelKeys(config.functionCallingConfig, `${at}toolConfig.functionCallingConfig.`)
    : undefined;
  const mode = typeof fc?.mode === "string" ? fc.mode.toUpperCase() : undefined;
  if (mode === "NONE") return { mode: "none" };
  if (mode === "ANY") {
    const names = Array.isArray(fc?.allowedFunctionNames)
      ? fc.allowedFunctionNames.filter((n): n is string => typeof n === "string")
      : [];
    return names.length > 0 ? { mode: "required", only: names } : { mode: "required" };
  }
  // AUTO, VALIDATED (a call or text, the calls held to their schemas), anything else: the model decides.
  return mode === undefined ? undefined : { mode: "auto" };
}

/** What a request asks that a model may lack, by the Gemini field that asks it. */
function asksOf(g: Json, fields: GeminiFields): GeminiInHub["asks"] {
  const asks: GeminiInHub["asks"] = {};
  const mime = g.responseMimeType;
  if (typeof mime === "string" && mime !== PLAIN_TEXT) {
    asks.json = { feature: "responseMimeType", words: `responseMimeType ${mime}` };
  } else {
    for (const feature of ["responseSchema", "responseJsonSchema"]) {
      if (g[feature] !== undefined && asks.json === undefined) asks.json = { feature, words: feature };
    }
  }
  const tools: Ask | undefined = fields.tools !== undefined
    ? { feature: "tools", words: "tools (function calling)" }
    : fields.toolConfig !== undefined
    ? { feature: "toolConfig", words: "toolConfig (function calling)" }
    : undefined;
  return { ...asks, ...(tools === undefined ? {} : { tools }) };
}

/**
 * A Gemini request's fields in the hub's words (`field`: where its contents are, for the names a
 * refusal gives; `at`: the prefix of its other fields).
 */
export function geminiInHub(fields: GeminiFields, field = "contents", at = ""): GeminiInHub {
  const only: OnlyField[] = [];
  const messages = messagesOf(fields.contents, field, only);
  const g = fields.generationConfig ?? {};
  const options = optionsOf(g);
  const ownOptions = differences(g, generationConfigOf(options));
  for (const key of Object.keys(g)) {
    const unknown = !OPTION_FIELDS.has(key) ||
      (key === "responseMimeType" && g[key] !== PLAIN_TEXT && g[key] !== JSON_MIME);
    if (unknown) only.push({ field: `${at}generationConfig.${boundedName(key)}`, why: "an option only Google's models take" });
  }
  const tools = toolsOf(fields.tools ?? [], at, only);
  const toolChoice = fields.toolConfig === undefined ? undefined : toolChoiceOf(fields.toolConfig, at, only);
  const own: Json = {};
  if (fields.tools !== undefined && !same(fields.tools, googleTools(tools))) own.tools = fields.tools;
  if (fields.toolConfig !== undefined && !same(fields.toolConfig, toolChoice && toolConfigOf(toolChoice))) {
    own.toolConfig = fields.toolConfig;
  }
  if (fields.safetySettings !== undefined) own.safetySettings = fields.safetySettings;
  const extras: DialectExtras | undefined = Object.keys(own).length === 0 && Object.keys(ownOptions).length === 0
    ? undefined
    : { dialect: GOOGLE_DIALECT, fields: own, ...(Object.keys(ownOptions).length === 0 ? {} : { options: ownOptions }) };
  return {
    messages,
    options,
    ...(tools.length === 0 ? {} : { tools }),
    ...(toolChoice === undefined ? {} : { toolChoice }),
    ...(extras === undefined ? {} : { dialectExtras: extras }),
    ...(only.length === 0 ? {} : { only: { dialect: GOOGLE_DIALECT, fields: only } }),
    asks: asksOf(g, fields),
    outputCapField: { words: `${at}generationConfig.maxOutputTokens`, code: OUTPUT_CAP_CODE },
    optionFields: {
      temperature: `${at}generationConfig.temperature`,
      topP: `${at}generationConfig.topP`,
      topK: `${at}generationConfig.topK`,
      thinkingBudget: `${at}generationConfig.thinkingConfig.thinkingBudget`,
    },
  };
}
