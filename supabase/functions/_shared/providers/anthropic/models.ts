// Anthropic's model list with one key: GET /v1/models (x-api-key, anthropic-version), every page
// (`has_more`, `after_id`), with one deadline. The port's ModelLister (../../upstream/port.ts): never
// throws for a failed call; it returns the models, or an error classified as llm-invoke classifies
// Anthropic's answers (errors.ts): a 401 or 403 is "invalid_key", a 429, a 529 or a network failure
// is retryable or a rest (nothing concluded). The list gives `id`, `display_name`, `created_at` (and,
// newer, `max_input_tokens`, `max_tokens`, which are kept where given).
import { failureOf, readJsonAnswer, timedCall } from "../../upstream/call.ts";
import {
  type CatalogueModel,
  DEFAULT_LIST_TIMEOUT_MS,
  type ModelLister,
  upstreamFailure,
} from "../../upstream/port.ts";
import { anthropicApiUrl, anthropicHeaders } from "./client.ts";
import { anthropicRules } from "./errors.ts";

const PAGE = 1000;
const MAX_PAGES = 20;

export function createAnthropicModelLister(
  options: { baseUrl?: string; timeoutMs?: number; displayName?: string } = {},
): ModelLister {
  const url = `${anthropicApiUrl(options.baseUrl)}/models`;
  const rules = anthropicRules(options.displayName);
  return {
    list(apiKey, call = {}) {
      const timeoutMs = call.timeoutMs ?? options.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
      const secrets = [apiKey];
      return timedCall({ apiKey, model: "", timeoutMs, signal: call.signal }, rules, async (guard) => {
        const models: CatalogueModel[] = [];
        let after: string | null = null;
        for (let page = 0; page < MAX_PAGES; page++) {
          const query = `?limit=${PAGE}${after === null ? "" : `&after_id=${encodeURIComponent(after)}`}`;
          const answer = await fetch(`${url}${query}`, { headers: anthropicHeaders(apiKey), signal: guard.signal });
          const read = await readJsonAnswer(answer, rules, secrets);
          if (!read.ok) return read;
          const data = read.body.data;
          if (!Array.isArray(data)) {
            const error = upstreamFailure(
              "malformed",
              `${rules.upstream} answered the model list without a data array.`,
              {
                httpStatus: answer.status,
                secrets,
              },
            );
            return { ok: false, error: failureOf(rules, error) };
          }
          for (const item of data) {
            const entry = catalogueModel(item);
            if (entry !== null) models.push(entry);
          }
          after = typeof read.body.last_id === "string" ? read.body.last_id : null;
          if (read.body.has_more !== true || after === null) break;
        }
        return { ok: true as const, models };
      });
    },
  };
}

/** One `{type: "model", id, display_name, created_at}` as a catalogue row; null when it has no id. */
export function catalogueModel(item: unknown): CatalogueModel | null {
  if (typeof item !== "object" || item === null) return null;
  const m = item as Record<string, unknown>;
  if (typeof m.id !== "string" || m.id === "") return null;
  const count = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : null);
  return {
    model: m.id.slice(0, 200),
    display_name: typeof m.display_name === "string" ? m.display_name.slice(0, 200) : null,
    version: typeof m.created_at === "string" ? m.created_at.slice(0, 40) : null,
    input_token_limit: count(m.max_input_tokens),
    output_token_limit: count(m.max_tokens),
    supported_methods: ["messages", "count_tokens"],
  };
}
