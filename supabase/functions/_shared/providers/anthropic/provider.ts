// Anthropic (Messages) as the registry holds it (../registry.ts): where it is reached, which secrets
// are its keys, its client (client.ts) and its model list (models.ts).
import type { ProviderModule } from "../../upstream/port.ts";
import { createAnthropicClient, DEFAULT_ANTHROPIC_BASE_URL } from "./client.ts";
import { ANTHROPIC_DISPLAY_NAME } from "./errors.ts";
import { createAnthropicModelLister } from "./models.ts";

export const anthropic: ProviderModule = {
  displayName: ANTHROPIC_DISPLAY_NAME,
  // Anthropic's spend limits turn with the calendar month in UTC (docs/anthropic.md).
  dayZone: "UTC",
  defaultBaseUrl: DEFAULT_ANTHROPIC_BASE_URL,
  baseUrlVariable: "ANTHROPIC_BASE_URL",
  keyEnvPattern: "ANTHROPIC_[A-Z0-9_]{1,100}",
  createClient: ({ row, baseUrl }) => createAnthropicClient({ baseUrl, displayName: row.display_name }),
  createLister: ({ row, baseUrl }, options = {}) =>
    createAnthropicModelLister({ baseUrl, displayName: row.display_name, ...options }),
};

// The hub's dialect tags include this one (../../upstream/hub.ts).
declare module "../../upstream/hub.ts" {
  interface DialectTags {
    anthropic: true;
  }
}
