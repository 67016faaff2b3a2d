// :countTokens. Google takes two body forms, `{contents}` and `{generateContentRequest: {...}}`; both
// become the request the gateway would run, so the count is of exactly what generateContent would send.
import { GatewayError } from "../../../_shared/errors.ts";
import type { NormalizedRequest, RequestLimits } from "../../contract.ts";
import { bad, camelKeys, unknownField } from "./fields.ts";
import { isObject } from "../../../_shared/json.ts";
import { normalized, parseGenerateBody, pathModel } from "./request.ts";

/**
 * A countTokens body in either of Google's forms, `{contents}` or `{generateContentRequest: {...}}`, as
 * the request the gateway would run (its defaults for mode and wait; the count books no quota).
 */
export function parseCountTokens(body: unknown, model: string, limits: RequestLimits): NormalizedRequest {
  const id = pathModel(model);
  if (!isObject(body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  const fields = camelKeys(body, "");
  for (const key of Object.keys(fields)) {
    if (key === "model") {
      if (typeof fields.model !== "string" || fields.model.replace(/^models\//, "") !== id) {
        throw bad("model", `model must be the path's model (models/${id}) or left out.`);
      }
    } else if (key !== "contents" && key !== "generateContentRequest") {
      throw unknownField("", key);
    }
  }
  const { contents, generateContentRequest } = fields;
  if (contents !== undefined && generateContentRequest !== undefined) {
    throw bad("contents", "Give contents or generateContentRequest, not both.");
  }
  if (contents === undefined && generateContentRequest === undefined) {
    throw new GatewayError("empty_input", "Give contents or generateContentRequest.");
  }
  const parsed = generateContentRequest === undefined
    ? parseGenerateBody({ contents }, id)
    : parseGenerateBody(generateContentRequest, id, "generateContentRequest");
  return normalized(id, parsed, new Headers(), limits, false);
}

/** Google's countTokens answer (cachedContentTokenCount and the per-modality details are left out). */
export function countTokensAnswer(totalTokens: number): { totalTokens: number } {
  return { totalTokens };
}
