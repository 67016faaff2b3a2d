// Google (the Gemini API) as the registry holds it (../registry.ts): where it is reached, which
// secrets are its keys, its client (client.ts) and its model list (models.ts).
import type { ProviderModule } from "../../upstream/port.ts";
import { createGoogleClient, DEFAULT_GOOGLE_BASE_URL } from "./client.ts";
import { createModelLister } from "./models.ts";

export const google: ProviderModule = {
  displayName: "Google",
  defaultBaseUrl: DEFAULT_GOOGLE_BASE_URL,
  baseUrlVariable: "GOOGLE_AI_BASE_URL",
  keyEnvPattern: "GOOGLE_[A-Z0-9_]{1,100}",
  createClient: ({ baseUrl }) => createGoogleClient({ baseUrl }),
  createLister: ({ baseUrl, timeoutMs }) => createModelLister({ baseUrl, timeoutMs }),
};
