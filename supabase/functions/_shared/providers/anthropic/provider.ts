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
  // Anthropic's words for its money (docs/anthropic.md, "Money wears several shapes"): an organization's
  // spend limit (its tier's, or one it set) and its credit balance, both kept in the Claude Console.
  moneyWords: {
    monthly_cap: (who) =>
      `the organization has reached its spend limit at ${who}: it is out until its owner raises the limit ` +
      "(Claude Console, Settings > Limits) or buys credits for a higher tier, or the month turns (UTC).",
    credits_depleted: (who) =>
      `the organization's credit balance at ${who} is too low: it is out until its owner buys credits ` +
      "(Claude Console, Plans & Billing).",
    billing_cap: (who) =>
      `${who} refuses the organization's billing: it is out until its owner settles it (Claude Console, ` +
      "Plans & Billing).",
  },
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
