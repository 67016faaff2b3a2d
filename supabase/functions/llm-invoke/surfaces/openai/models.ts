// GET /v1/models in OpenAI's list shape: each model under its id and under each alias, since callers
// may name a model either way.
import type { ModelEntry } from "../../contract.ts";
import { created } from "./answer.ts";

/** One entry of /v1/models: `id` is the model's id or one of its aliases; `owned_by` its row's provider. */
export function openAiModel(id: string, now: number, entry?: ModelEntry): Record<string, unknown> {
  return { id, object: "model", created: created(now), owned_by: entry?.provider ?? "google" };
}

/** GET /v1/models: every model the gateway serves, under its id and under each alias (each a name callers may use). */
export function openAiModels(models: ModelEntry[], now: number): Record<string, unknown> {
  const seen = new Set<string>();
  const data: Array<Record<string, unknown>> = [];
  for (const entry of models) {
    for (const id of [entry.model, ...entry.aliases]) {
      if (seen.has(id)) continue;
      seen.add(id);
      data.push(openAiModel(id, now, entry));
    }
  }
  return { object: "list", data };
}
