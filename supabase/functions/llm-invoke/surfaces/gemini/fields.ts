// How Google's REST API reads a JSON object's field names, shared by every body the Gemini routes take:
// snake_case is the same field as camelCase, and a name Google's API lacks is refused in Google's own
// wording rather than ignored (a typo silently dropped would change the answer without a word).
import { GatewayError } from "../../../_shared/errors.ts";
import { boundedName } from "../../../_shared/validation.ts";

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function bad(field: string, message: string): GatewayError {
  return new GatewayError("invalid_request", message, { details: { field } });
}

/** Google's wording for a field its API does not have (it refuses them too, rather than ignoring them). */
export function unknownField(where: string, key: string): GatewayError {
  const name = boundedName(key);
  return bad(
    `${where}${name}`,
    `Invalid JSON payload received. Unknown name "${name}"${
      where === "" ? "" : ` at '${where.slice(0, -1)}'`
    }: Cannot find field.`,
  );
}

/** `max_output_tokens` → `maxOutputTokens`; both spellings of one field at once is ambiguous: refused. */
export function camelKeys(raw: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const name = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (Object.hasOwn(out, name)) {
      throw bad(
        `${where}${name}`,
        `${where}${boundedName(name)} is given twice (camelCase and snake_case); give it once.`,
      );
    }
    // Defined, not assigned: a "__proto__" key stays a key (and is refused as unknown), not a prototype.
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
