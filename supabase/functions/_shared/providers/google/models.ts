// Google's models.list with one key, through @google/genai (every page), with a deadline. Never
// throws for a failed call: it returns the models, or an error classified like the generate path's
// (_shared/google/errors.ts), so "invalid_key" means the same thing in llm-invoke and here. Messages
// are sanitized with the key as a known secret. No Deno globals: vitest runs it against the simulator.
import { GoogleGenAI } from "@google/genai";
import { callGuard, classifyThrown } from "../_shared/upstream/call.ts";
import { DEFAULT_GOOGLE_BASE_URL, GOOGLE_API_VERSION, GOOGLE_DIALECT } from "../_shared/google/client.ts";
import type { ClassifiedGoogleError } from "../_shared/google/errors.ts";

/** One model as the catalogue stores it (google_ai_record_key_check's p_models). */
export interface CatalogueModel {
  /** Google's id without "models/", e.g. gemma-3-27b-it. */
  model: string;
  display_name: string | null;
  version: string | null;
  input_token_limit: number | null;
  output_token_limit: number | null;
  supported_methods: string[];
}

export type ListOutcome =
  | { ok: true; models: CatalogueModel[]; latencyMs: number }
  | { ok: false; error: ClassifiedGoogleError; latencyMs: number };

export interface ModelLister {
  list(apiKey: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<ListOutcome>;
}

export interface ModelListerOptions {
  /** Google's endpoint or a compatible server (the offline simulator); no trailing path. */
  baseUrl?: string;
  apiVersion?: string;
  /** Deadline of one key's listing, all pages included. */
  timeoutMs?: number;
  /** Safety stop for a server that pages forever. */
  maxModels?: number;
}

export const DEFAULT_LIST_TIMEOUT_MS = 15_000;
const PAGE_SIZE = 1000;
const DEFAULT_MAX_MODELS = 5000;

export function createModelLister(options: ModelListerOptions = {}): ModelLister {
  const baseUrl = options.baseUrl ?? DEFAULT_GOOGLE_BASE_URL;
  const apiVersion = options.apiVersion ?? GOOGLE_API_VERSION;
  const maxModels = options.maxModels ?? DEFAULT_MAX_MODELS;
  return {
    async list(apiKey, call = {}) {
      const timeoutMs = call.timeoutMs ?? options.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
      const started = Date.now();
      const guard = callGuard(timeoutMs, call.signal);
      const { signal, recordingFetch } = guard;
      try {
        // vertexai: false so that GOOGLE_GENAI_USE_VERTEXAI in the environment cannot redirect calls.
        const ai = new GoogleGenAI({ apiKey, vertexai: false, httpOptions: { baseUrl, apiVersion } });
        const pager = await ai.models.list({
          config: { pageSize: PAGE_SIZE, abortSignal: signal, httpOptions: { fetch: recordingFetch } },
        });
        const models: CatalogueModel[] = [];
        for await (const m of pager) {
          const entry = toCatalogueModel(m);
          if (entry !== null) models.push(entry);
          if (models.length >= maxModels) break;
        }
        return { ok: true, models, latencyMs: Date.now() - started };
      } catch (error) {
        return {
          ok: false,
          latencyMs: Date.now() - started,
          error: classifyThrown(error, {
            dialect: GOOGLE_DIALECT,
            timedOut: guard.timedOut(),
            callerAborted: call.signal?.aborted === true,
            httpStatus: guard.httpStatus(),
            secrets: [apiKey],
            timeoutMs,
          }),
        };
      } finally {
        guard.done();
      }
    },
  };
}

interface SdkModel {
  name?: string;
  displayName?: string;
  version?: string;
  inputTokenLimit?: number;
  outputTokenLimit?: number;
  supportedActions?: string[];
}

/** The SDK's Model (supportedGenerationMethods arrive as supportedActions) to a catalogue row. */
export function toCatalogueModel(m: SdkModel): CatalogueModel | null {
  const id = typeof m.name === "string" ? m.name.replace(/^models\//, "").trim() : "";
  if (id === "" || id.length > 200) return null;
  const int = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 2_147_483_647 ? v : null);
  const text = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : null);
  return {
    model: id,
    display_name: text(m.displayName, 200),
    version: text(m.version, 100),
    input_token_limit: int(m.inputTokenLimit),
    output_token_limit: int(m.outputTokenLimit),
    supported_methods: Array.isArray(m.supportedActions)
      ? m.supportedActions.filter((a): a is string => typeof a === "string").slice(0, 50)
      : [],
  };
}
