// OpenAI's model list with one key: GET /v1/models (Authorization: Bearer), with a deadline. The port's
// ModelLister (../../upstream/port.ts): never throws for a failed call; it returns the models, or an
// error classified as llm-invoke classifies OpenAI's answers (errors.ts),
// by status, `type` and `code`: a 401 is "invalid_key" (the key out of rotation), a 429, a 5xx or a
// network failure is retryable (nothing concluded). Messages are sanitized with the key as a known
// secret. The list gives `id`, `created` and `owned_by`, no token limits: those stay null.
// No Deno globals: vitest runs it against the simulator.
import { failureOf, readJsonAnswer, timedCall } from "../../upstream/call.ts";
import { openAiApiUrl } from "./endpoint.ts";
import { openAiRules } from "./errors.ts";
import {
  type CatalogueModel,
  DEFAULT_LIST_TIMEOUT_MS,
  type ModelLister,
  upstreamFailure,
} from "../../upstream/port.ts";
import { isObject } from "../../json.ts";

export interface OpenAiModelListerOptions {
  /** OpenAI's endpoint or a compatible server (the offline simulator), with or without /v1. */
  baseUrl?: string;
  /** Deadline of one key's listing. */
  timeoutMs?: number;
  /** Safety stop for a list that never ends. */
  maxModels?: number;
  /** Who answers, in messages: the provider row's display name. */
  displayName?: string;
}

const DEFAULT_MAX_MODELS = 5000;

export function createOpenAiModelLister(options: OpenAiModelListerOptions = {}): ModelLister {
  const url = `${openAiApiUrl(options.baseUrl)}/models`;
  const maxModels = options.maxModels ?? DEFAULT_MAX_MODELS;
  const rules = openAiRules(options.displayName);
  return {
    list(apiKey, call = {}) {
      const timeoutMs = call.timeoutMs ?? options.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
      const secrets = [apiKey];
      return timedCall({ apiKey, model: "", timeoutMs, signal: call.signal }, rules, async (guard) => {
        const answer = await fetch(url, { headers: { authorization: `Bearer ${apiKey}` }, signal: guard.signal });
        const read = await readJsonAnswer(answer, rules, secrets);
        if (!read.ok) return read;
        const models = modelsOf(read.body, maxModels);
        if (models === null) {
          const error = upstreamFailure("malformed", `${rules.upstream} answered the model list without a data array.`, {
            httpStatus: answer.status,
            secrets,
          });
          return { ok: false, error: failureOf(rules, error) };
        }
        return { ok: true as const, models };
      });
    },
  };
}

/** `{object: "list", data: [{id, created, owned_by}, …]}` as catalogue rows; null when there is no list. */
export function modelsOf(body: unknown, maxModels = DEFAULT_MAX_MODELS): CatalogueModel[] | null {
  const data = isObject(body) ? body.data : undefined;
  if (!Array.isArray(data)) return null;
  const models: CatalogueModel[] = [];
  for (const item of data) {
    const entry = toCatalogueModel(item);
    if (entry !== null) models.push(entry);
    if (models.length >= maxModels) break;
  }
  return models;
}

/** One entry of OpenAI's list as a catalogue row: its id; OpenAI says nothing of limits or methods. */
export function toCatalogueModel(item: unknown): CatalogueModel | null {
  const id = isObject(item) ? item.id : undefined;
  const model = typeof id === "string" ? id.trim() : "";
  if (model === "" || model.length > 200) return null;
  return {
    model,
    display_name: null,
    version: null,
    input_token_limit: null,
    output_token_limit: null,
    supported_methods: [],
  };
}
