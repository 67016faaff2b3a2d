// Gemini's schemas as OpenAI reads them. A Gemini `responseSchema` or a function declaration's
// `parameters` is an OpenAPI 3.0 subset: types in capitals (`OBJECT`, as Google's SDKs write them),
// `nullable`, counts written as strings (int64 in Google's JSON), `propertyOrdering`. OpenAI takes
// JSON Schema: lower-case types, `null` as a type, numbers as numbers. And OpenAI's `response_format`
// takes an object only, where Gemini's answer may be any JSON value (a list is Google's own example):
// such a schema is asked as an object holding the value, and the answer handed back as the value.
import { isObject } from "../../json.ts";

type Json = Record<string, unknown>;


/** Gemini's counts, int64 in Google's JSON (the SDKs write them as strings). */
const COUNTS = ["minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"];
/** Gemini's own words JSON Schema has no such keyword for (nullable becomes a type of its own). */
const GEMINI_ONLY = ["nullable", "propertyOrdering", "example"];
const MAX_DEPTH = 32;

/** A Gemini schema (OpenAPI subset) as JSON Schema; anything that is not an object is kept as it is. */
export function jsonSchemaOf(schema: unknown, depth = 0): unknown {
  if (!isObject(schema) || depth > MAX_DEPTH) return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (GEMINI_ONLY.includes(key) || (key === "format" && value === "enum")) continue;
    if (key === "type" && typeof value === "string") {
      if (value.toUpperCase() !== "TYPE_UNSPECIFIED") out.type = value.toLowerCase();
    } else if (COUNTS.includes(key) && typeof value === "string" && /^\d+$/.test(value)) {
      out[key] = Number(value);
    } else if (key === "properties" && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSchemaOf(v, depth + 1)]));
    } else if (key === "items") {
      out.items = jsonSchemaOf(value, depth + 1);
    } else if (key === "anyOf" && Array.isArray(value)) {
      out.anyOf = value.map((v) => jsonSchemaOf(v, depth + 1));
    } else {
      out[key] = value;
    }
  }
  if (schema.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    else if (Array.isArray(out.anyOf)) out.anyOf = [...out.anyOf, { type: "null" }];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

/** The property that holds an answer whose schema is not an object's. */
const WRAPPED = "value";

/** The schema OpenAI's response_format is asked with, and whether the answer comes wrapped. */
export function responseFormatSchema(schema: unknown): { schema: unknown; wrapped: boolean } {
  if (isObject(schema) && schema.type === "object") return { schema, wrapped: false };
  return {
    schema: { type: "object", properties: { [WRAPPED]: schema }, required: [WRAPPED], additionalProperties: false },
    wrapped: true,
  };
}

/** A wrapped answer's text as the value it holds; text that is not such an object is kept as it is. */
export function unwrappedText(text: string): string {
  try {
    const parsed = JSON.parse(text);
    return isObject(parsed) && WRAPPED in parsed ? JSON.stringify(parsed[WRAPPED]) : text;
  } catch {
    return text;
  }
}
