// The surfaces, one row per API shape a route speaks (routes.ts' SurfaceName): each row's front (its error shape,
// where its SDKs send the key) is loaded with the handler, since an error may come before anything else
// is read; the surface whole on its first use, so a worker spends no start-up time on the surfaces it
// is not asked in (the native route's first answer comes sooner; surfaces/loading.test.ts). The import
// is of bundled code; a failed one is tried again by the next request. A new surface is a row here. A
// surface's embedding routes (operation `embed`) have a surface of their own beside its generation's,
// loaded on its first use too, under the same front.
import { anthropicFront } from "../surfaces/anthropic/errors.ts";
import { geminiFront } from "../surfaces/gemini/errors.ts";
import { nativeSurface } from "../surfaces/native.ts";
import { openAiFront } from "../surfaces/openai/errors.ts";
import type { EmbeddingSurface, Surface, SurfaceFront } from "../surfaces/shared/surface.ts";
import type { SurfaceName } from "./routes.ts";

export interface SurfaceRow {
  front: SurfaceFront;
  load: () => Promise<Surface>;
  /** Its embedding routes' surface; absent: the surface has none. */
  embeddings?: () => Promise<EmbeddingSurface>;
}

function onFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    loading ??= load().catch((error) => {
      loading = undefined;
      throw error;
    });
}

export const SURFACES: Readonly<Record<SurfaceName, SurfaceRow>> = {
  native: { front: nativeSurface, load: () => Promise.resolve(nativeSurface as Surface) },
  gemini: {
    front: geminiFront,
    load: onFirstUse(async () => (await import("../surfaces/gemini.ts")).geminiSurface),
    // Google's embedContent and batchEmbedContents.
    embeddings: onFirstUse(async () =>
      (await import("../surfaces/gemini/embeddings.ts")).geminiEmbeddingsSurface as EmbeddingSurface
    ),
  },
  openai: {
    front: openAiFront,
    load: onFirstUse(async () => (await import("../surfaces/openai.ts")).openAiSurface),
    // OpenAI's embeddings.
    embeddings: onFirstUse(async () =>
      (await import("../surfaces/openai/embeddings.ts")).embeddingsSurface as EmbeddingSurface
    ),
  },
  // OpenAI's Responses API: OpenAI's errors and key, its own request, answer and stream.
  responses: {
    front: openAiFront,
    load: onFirstUse(async () => (await import("../surfaces/openai/responses.ts")).responsesSurface as Surface),
  },
  anthropic: {
    front: anthropicFront,
    load: onFirstUse(async () => (await import("../surfaces/anthropic.ts")).anthropicSurface),
  },
};
