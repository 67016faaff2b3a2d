// The hub's schemas (JSON Schema) as OpenAI's response_format takes them: an object only, where the
// answer asked for may be any JSON value (a list is Google's own example): such a schema is asked as
// an object holding the value, and the answer handed back as the value.
import { isObject } from "../../json.ts";

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
