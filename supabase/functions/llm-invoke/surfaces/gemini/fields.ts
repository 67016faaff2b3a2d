// How Google's REST API reads a JSON object's field names, shared by every body the Gemini routes take:
// snake_case is the same field as camelCase, and a name Google's API lacks is refused in Google's own
// wording rather than ignored (a typo silently dropped would change the answer without a word).
import { GatewayError } from "../../../_shared/errors.ts";
import { boundedName } from "../../../_shared/validation.ts";

export { camelKeys } from "./json-keys.ts";

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
