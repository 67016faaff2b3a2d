// What every route's body is held to, whatever its dialect: the wait a mode allows, the metadata kept in
// every audit row, a chain that names each model once, the most parts and fallbacks a request may
// carry, and system texts joined as one.
import { GatewayError } from "../../../_shared/errors.ts";
import type { InvokeMode, RequestLimits } from "../../contract.ts";

/** Fallbacks after the first model: a chain of at most four models, each a reservation try. */
export const MAX_FALLBACK_MODELS = 3;

/** Most parts a request may carry over all its turns (each is checked, images are read). */
export const MAX_PARTS = 1000;

/** The wait a mode allows: none for NO_WAIT; the caller's (or the default), capped by the budget. */
export function waitFor(mode: InvokeMode, asked: number | undefined, limits: RequestLimits): number {
  return mode === "NO_WAIT" ? 0 : Math.min(asked ?? limits.defaultMaxWaitMs, limits.maxWaitBudgetMs);
}

/**
 * metadata is kept in every audit row, refusals included: its size is capped, and its keys starting
 * with "$" are kept for the gateway's own use, so a caller's key of that kind is refused rather than
 * lost.
 */
export function checkMetadata(metadata: Record<string, unknown>, limits: RequestLimits): void {
  const reserved = Object.keys(metadata).find((k) => k.startsWith("$"));
  if (reserved !== undefined) {
    throw new GatewayError(
      "invalid_request",
      `metadata key "${reserved.slice(0, 64)}": keys starting with "$" are the gateway's own.`,
      { details: { field: "metadata" } },
    );
  }
  checkMetadataSize(metadata, limits);
}

/** metadata's size as JSON is capped. */
function checkMetadataSize(metadata: Record<string, unknown>, limits: RequestLimits): void {
  const bytes = new TextEncoder().encode(JSON.stringify(metadata)).length;
  if (bytes > limits.maxMetadataBytes) {
    throw new GatewayError(
      "invalid_request",
      `metadata is ${bytes} bytes as JSON; the limit is ${limits.maxMetadataBytes}.`,
      { details: { field: "metadata", limit_bytes: limits.maxMetadataBytes } },
    );
  }
}

/** The first fallback that repeats a model before it in the chain (the model, then the fallbacks). */
export function repeatedInChain(
  model: string,
  fallbacks: readonly string[] | undefined,
): { index: number; name: string } | undefined {
  const seen = new Set([model]);
  for (const [index, name] of (fallbacks ?? []).entries()) {
    if (seen.has(name)) return { index, name };
    seen.add(name);
  }
  return undefined;
}

/** System texts given in several places, as one (blank ones left out); undefined: none. */
export function joinText(pieces: ReadonlyArray<string | undefined>): string | undefined {
  const kept = pieces.filter((p): p is string => p !== undefined && p.trim() !== "");
  return kept.length === 0 ? undefined : kept.join("\n\n");
}
