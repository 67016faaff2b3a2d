// Field names as Google's REST API reads them, for every route that takes Gemini's shapes (the native
// body's contents and generationConfig, Google's own routes): snake_case is the same field as
// camelCase. The gateway works in camelCase, so a check or a cap written for `maxOutputTokens` also
// sees `max_output_tokens`.
import { GatewayError } from "../../../_shared/errors.ts";
import { boundedName } from "../../../_shared/validation.ts";
import { isObject } from "../../../_shared/json.ts";

/** `max_output_tokens` → `maxOutputTokens`; both spellings of one field at once is ambiguous: refused. */
export function camelKeys(raw: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const name = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (Object.hasOwn(out, name)) {
      throw new GatewayError(
        "invalid_request",
        `${where}${boundedName(name)} is given twice (camelCase and snake_case); give it once.`,
        { details: { field: `${where}${name}` } },
      );
    }
    // Defined, not assigned: a "__proto__" key stays a key (and is refused as unknown), not a prototype.
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** generationConfig in camelCase, its thinkingConfig too; anything that is not an object is left to the schema. */
export function camelGenerationConfig(raw: unknown, where = "generationConfig."): unknown {
  if (!isObject(raw)) return raw;
  const config = camelKeys(raw, where);
  if (isObject(config.thinkingConfig)) {
    config.thinkingConfig = camelKeys(config.thinkingConfig, `${where}thinkingConfig.`);
  }
  return config;
}
