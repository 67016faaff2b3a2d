// GET models and GET models/{model} in Google's Model shape, so SDKs that list or look up models before
// calling (and tools that pick one from the list) see what the gateway serves, aliases included.
import { GatewayError } from "../../../_shared/errors.ts";
import { boundedName } from "../../../_shared/validation.ts";
import { type ModelEntry, modelNamed } from "../../contract.ts";
import { bad } from "./fields.ts";

const GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"];
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

/** Google's Model resource (the fields the gateway knows; unknown token limits are left out). */
export interface GeminiModel {
  name: string;
  baseModelId: string;
  displayName: string;
  description: string;
  inputTokenLimit?: number;
  outputTokenLimit?: number;
  supportedGenerationMethods: string[];
}

function limitsText(entry: ModelEntry): string {
  const known = [["RPM", entry.rpm], ["TPM", entry.tpm], ["RPD", entry.rpd]].filter(([, v]) => v !== null)
    .map(([name, v]) => `${name} ${v}`);
  return known.length === 0
    ? "with no request or token limit of its own"
    : `within ${known.join(", ")} shared by all its callers`;
}

function modelResource(entry: ModelEntry, id: string): GeminiModel {
  const alias = id === entry.model ? "" : `Alias of models/${entry.model}. `;
  return {
    name: `models/${id}`,
    baseModelId: entry.model,
    displayName: entry.displayName ?? entry.model,
    description: `${alias}Served through EVE LLM Gateway ${limitsText(entry)}.`,
    ...(entry.inputTokenLimit === null ? {} : { inputTokenLimit: entry.inputTokenLimit }),
    ...(entry.outputTokenLimit === null ? {} : { outputTokenLimit: entry.outputTokenLimit }),
    supportedGenerationMethods: [...GENERATION_METHODS],
  };
}

/** Every name a caller may use: each model, then its aliases, each its own entry (as Google lists aliases). */
function allResources(models: readonly ModelEntry[]): GeminiModel[] {
  return models.flatMap((m) => [m.model, ...m.aliases].map((id) => modelResource(m, id)));
}

/**
 * GET models: Google's ListModelsResponse. pageSize as Google's (default 50, at most 1000); the page
 * token is the offset of the next entry, valid while the model list does not change.
 */
export function geminiModels(
  models: ModelEntry[],
  pageSize?: number,
  pageToken?: string,
): { models: GeminiModel[]; nextPageToken?: string } {
  if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 0)) {
    throw bad("pageSize", "pageSize must be a whole number (at most 1000 are returned).");
  }
  const size = pageSize === undefined || pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  const all = allResources(models);
  let start = 0;
  if (pageToken !== undefined && pageToken !== "") {
    if (!/^\d{1,6}$/.test(pageToken) || Number(pageToken) > all.length) {
      throw bad("pageToken", "pageToken is not one this gateway gave; list again from the first page.");
    }
    start = Number(pageToken);
  }
  const end = start + size;
  return { models: all.slice(start, end), ...(end < all.length ? { nextPageToken: String(end) } : {}) };
}

/** GET models/{model}: the model by its id or an alias, or 404 not_found (said in Google's shape by error()). */
export function geminiModel(models: ModelEntry[], id: string): GeminiModel {
  const name = id.replace(/^models\//, "");
  const entry = modelNamed(models, name);
  if (entry === undefined) {
    throw new GatewayError(
      "not_found",
      `models/${
        boundedName(name)
      } is not found for API version v1beta. Call ListModels to see the models the gateway serves.`,
    );
  }
  return modelResource(entry, name);
}
