// A model row as the model routes read it (pg-store's modelList), for the dialects' tests.
import type { ModelEntry } from "../../supabase/functions/llm-invoke/contract.ts";

export function modelEntry(model: string, aliases: string[], more: Partial<ModelEntry> = {}): ModelEntry {
  return {
    model,
    aliases,
    displayName: null,
    inputTokenLimit: null,
    outputTokenLimit: null,
    rpm: null,
    tpm: null,
    rpd: null,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    provider: "google",
    ...more,
  };
}
