// Google's models.list with one key (GET /v1beta/models, every page), with one deadline for all of
// it, through the call module as every call to Google goes (../../upstream/call.ts). Never throws for
// a failed call: it returns the models, or an error classified like the generate path's (errors.ts),
// so "invalid_key" means the same thing in llm-invoke and in maintenance. Messages are sanitized with
// the key as a known secret. No Deno globals: vitest runs it against the simulator.
import { callGuard, readJsonAnswer, thrownBy } from "../../upstream/call.ts";
import {
  type CatalogueModel,
  DEFAULT_LIST_TIMEOUT_MS,
  type ListOutcome,
  type ModelLister,
  type UpstreamError,
  upstreamFailure,
} from "../../upstream/port.ts";
import { DEFAULT_GOOGLE_BASE_URL, GOOGLE_API_VERSION, GOOGLE_DIALECT } from "./client.ts";

export interface ModelListerOptions {
  /** Google's endpoint or a compatible server (the offline simulator); no trailing path. */
  baseUrl?: string;
  apiVersion?: string;
  /** Deadline of one key's listing, all pages included. */
  timeoutMs?: number;
  /** Safety stop for a server that pages forever. */
  maxModels?: number;
}

const PAGE_SIZE = 1000;
const DEFAULT_MAX_MODELS = 5000;

export function createModelLister(options: ModelListerOptions = {}): ModelLister {
  const apiBase = `${(options.baseUrl ?? DEFAULT_GOOGLE_BASE_URL).replace(/\/+$/, "")}/${
    options.apiVersion ?? GOOGLE_API_VERSION
  }`;
  const maxModels = options.maxModels ?? DEFAULT_MAX_MODELS;
  return {
    async list(apiKey, call = {}): Promise<ListOutcome> {
      const timeoutMs = call.timeoutMs ?? options.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
      const started = Date.now();
      const guard = callGuard(timeoutMs, call.signal);
      const failed = (error: UpstreamError) => ({
        ok: false as const,
        latencyMs: Date.now() - started,
        error,
      });
      try {
        const models: CatalogueModel[] = [];
        let pageToken: string | undefined;
        do {
          const query = `pageSize=${PAGE_SIZE}${
            pageToken === undefined ? "" : `&pageToken=${encodeURIComponent(pageToken)}`
          }`;
          const read = await readJsonAnswer(
            await fetch(`${apiBase}/models?${query}`, { headers: { "x-goog-api-key": apiKey }, signal: guard.signal }),
            GOOGLE_DIALECT,
            [apiKey],
          );
          if (!read.ok) return failed(read.error);
          const page = read.body.models;
          if (page !== undefined && !Array.isArray(page)) {
            return failed(
              upstreamFailure("malformed", "Google's model list has no list of models.", { httpStatus: 200 }),
            );
          }
          for (const m of page ?? []) {
            const entry = toCatalogueModel(m as RestModel);
            if (entry !== null) models.push(entry);
          }
          const next = read.body.nextPageToken;
          pageToken = typeof next === "string" && next !== "" ? next : undefined;
        } while (pageToken !== undefined && models.length < maxModels);
        return { ok: true, models: models.slice(0, maxModels), latencyMs: Date.now() - started };
      } catch (error) {
        return failed(thrownBy(GOOGLE_DIALECT, error, guard, { apiKey, model: "", timeoutMs, signal: call.signal }));
      } finally {
        guard.done();
      }
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
