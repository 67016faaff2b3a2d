// Google's models.list with one key (GET /v1beta/models, every page), with one deadline for all of
// it, through the call module as every call to Google goes (../../upstream/call.ts). Never throws for
// a failed call: it returns the models, or an error classified like the generate path's (errors.ts),
// so "invalid_key" means the same thing in llm-invoke and in maintenance. Messages are sanitized with
// the key as a known secret. No Deno globals: vitest runs it against the simulator.
import { failureOf, readJsonAnswer, timedCall } from "../../upstream/call.ts";
import {
  type CatalogueModel,
  DEFAULT_LIST_TIMEOUT_MS,
  type ListOutcome,
  type ModelLister,
  upstreamFailure,
} from "../../upstream/port.ts";
import { DEFAULT_GOOGLE_BASE_URL, GOOGLE_API_VERSION, googleRules } from "./client.ts";

export interface ModelListerOptions {
  /** Google's endpoint or a compatible server (the offline simulator); no trailing path. */
  baseUrl?: string;
  apiVersion?: string;
  /** Deadline of one key's listing, all pages included. */
  timeoutMs?: number;
  /** Safety stop for a server that pages forever. */
  maxModels?: number;
  /** Who answers, in messages: the provider row's display name. */
  displayName?: string;
}

const PAGE_SIZE = 1000;
const DEFAULT_MAX_MODELS = 5000;

export function createModelLister(options: ModelListerOptions = {}): ModelLister {
  const apiBase = `${(options.baseUrl ?? DEFAULT_GOOGLE_BASE_URL).replace(/\/+$/, "")}/${
    options.apiVersion ?? GOOGLE_API_VERSION
  }`;
  const maxModels = options.maxModels ?? DEFAULT_MAX_MODELS;
  const rules = googleRules(options.displayName);
  return {
    list(apiKey, call = {}): Promise<ListOutcome> {
      const timeoutMs = call.timeoutMs ?? options.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
      return timedCall({ apiKey, model: "", timeoutMs, signal: call.signal }, rules, async (guard) => {
        const models: CatalogueModel[] = [];
        let pageToken: string | undefined;
        do {
          const page = pageToken === undefined ? "" : `&pageToken=${encodeURIComponent(pageToken)}`;
          const read = await readJsonAnswer(
            await fetch(`${apiBase}/models?pageSize=${PAGE_SIZE}${page}`, {
              headers: { "x-goog-api-key": apiKey },
              signal: guard.signal,
            }),
            rules,
            [apiKey],
          );
          if (!read.ok) return read;
          const listed = read.body.models;
          if (listed !== undefined && !Array.isArray(listed)) {
            const error = upstreamFailure("malformed", `${rules.upstream}'s model list has no list of models.`, {
              httpStatus: 200,
            });
            return { ok: false, error: failureOf(rules, error) };
          }
          for (const m of listed ?? []) {
            const entry = toCatalogueModel(m as RestModel);
            if (entry !== null) models.push(entry);
          }
          const next = read.body.nextPageToken;
          pageToken = typeof next === "string" && next !== "" ? next : undefined;
        } while (pageToken !== undefined && models.length < maxModels);
        return { ok: true as const, models: models.slice(0, maxModels) };
      });
    },
  };
}

interface RestModel {
  name?: string;
  displayName?: string;
  version?: string;
  inputTokenLimit?: number;
  outputTokenLimit?: number;
  supportedGenerationMethods?: string[];
}

/** One Model resource of the list to a catalogue row. */
export function toCatalogueModel(m: RestModel): CatalogueModel | null {
  const id = typeof m?.name === "string" ? m.name.replace(/^models\//, "").trim() : "";
  if (id === "" || id.length > 200) return null;
  const int = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 2_147_483_647 ? v : null);
  const text = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : null);
  return {
    model: id,
    display_name: text(m.displayName, 200),
    version: text(m.version, 100),
    input_token_limit: int(m.inputTokenLimit),
    output_token_limit: int(m.outputTokenLimit),
    supported_methods: Array.isArray(m.supportedGenerationMethods)
      ? m.supportedGenerationMethods.filter((a): a is string => typeof a === "string").slice(0, 50)
      : [],
  };
}
