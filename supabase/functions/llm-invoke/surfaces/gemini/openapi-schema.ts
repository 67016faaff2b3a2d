// Google's schema form into the hub's. A Gemini `responseSchema` or a function declaration's
// `parameters` is an OpenAPI 3.0 subset: types in capitals (`OBJECT`, as Google's SDKs write them),
// `nullable`, counts written as strings (int64 in Google's JSON), `propertyOrdering`. The hub holds
// JSON Schema only (lower-case types, `null` as a type, numbers as numbers): Gemini's routes convert
// Google's form here on the way in, once, so every provider is given one schema. (Google itself reads
// JSON Schema too, under responseJsonSchema and parametersJsonSchema; a Google model is still sent
// the caller's own field as given: hub.ts.)
import { isObject } from "../../../_shared/json.ts";

type Json = Record<string, unknown>;

/** Gemini's counts, int64 in Google's JSON (the SDKs write them as strings). */
const COUNTS = ["minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"];
/** Gemini's own words JSON Schema has no such keyword for (nullable becomes a type of its own). */
const GEMINI_ONLY = ["nullable", "propertyOrdering", "example"];
const MAX_DEPTH = 32;

/** A Gemini schema (OpenAPI subset) as JSON Schema; anything that is not an object is kept as it is. */
export function jsonSchemaOfOpenApi(schema: unknown, depth = 0): unknown {
  if (!isObject(schema) || depth > MAX_DEPTH) return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (GEMINI_ONLY.includes(key) || (key === "format" && value === "enum")) continue;
    if (key === "type" && typeof value === "string") {
      if (value.toUpperCase() !== "TYPE_UNSPECIFIED") out.type = value.toLowerCase();
    } else if (COUNTS.includes(key) && typeof value === "string" && /^\d+$/.test(value)) {
      out[key] = Number(value);
    } else if (key === "properties" && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSchemaOfOpenApi(v, depth + 1)]));
    } else if (key === "items") {
      out.items = jsonSchemaOfOpenApi(value, depth + 1);
    } else if (key === "anyOf" && Array.isArray(value)) {
      out.anyOf = value.map((v) => jsonSchemaOfOpenApi(v, depth + 1));
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

