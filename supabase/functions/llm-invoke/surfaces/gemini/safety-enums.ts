// Google's Python SDK over REST (google.generativeai, transport="rest") writes enums as numbers.
// The safety settings are the only enums the gateway reads, so only they are turned back into the
// names the native schemas check; the names are those of Google's proto, in its order.
import { isObject } from "../../../_shared/json.ts";

const HARM_CATEGORIES = [
  "HARM_CATEGORY_UNSPECIFIED",
  "HARM_CATEGORY_DEROGATORY",
  "HARM_CATEGORY_TOXICITY",
  "HARM_CATEGORY_VIOLENCE",
  "HARM_CATEGORY_SEXUAL",
  "HARM_CATEGORY_MEDICAL",
  "HARM_CATEGORY_DANGEROUS",
  "HARM_CATEGORY_HARASSMENT",
  "HARM_CATEGORY_HATE_SPEECH",
  "HARM_CATEGORY_SEXUALLY_EXPLICIT",
  "HARM_CATEGORY_DANGEROUS_CONTENT",
  "HARM_CATEGORY_CIVIC_INTEGRITY",
];
const HARM_THRESHOLDS = [
  "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
  "BLOCK_LOW_AND_ABOVE",
  "BLOCK_MEDIUM_AND_ABOVE",
  "BLOCK_ONLY_HIGH",
  "BLOCK_NONE",
  "OFF",
];

function enumName(value: unknown, names: readonly string[]): unknown {
  return typeof value === "number" && Number.isInteger(value) && names[value] !== undefined ? names[value] : value;
}

/** safetySettings with numbered categories and thresholds named; anything else is left for the schema to judge. */
export function namedSafetySettings(raw: unknown): unknown {
  if (!Array.isArray(raw)) return raw;
  return raw.map((s) =>
    isObject(s)
      ? { ...s, category: enumName(s.category, HARM_CATEGORIES), threshold: enumName(s.threshold, HARM_THRESHOLDS) }
      : s
  );
}
