// The two refusals a field of OpenAI-shaped JSON earns across this surface (invalid_request,
// unsupported_feature), each naming the field in details.field so that OpenAI's `param` points at it
// (errors.ts).
import { GatewayError } from "../../../_shared/errors.ts";

export function unsupported(field: string, message: string): GatewayError {
  return new GatewayError("unsupported_feature", `${field}: ${message}.`, { details: { field, feature: field } });
}

export function invalid(field: string, message: string): GatewayError {
  return new GatewayError("invalid_request", `${field}: ${message}`, { details: { field } });
}

