// OpenAI (Chat Completions) as the registry holds it (../registry.ts): where it is reached, which
// secrets are its keys, its client (client.ts) and its model list (models.ts).
import type { ProviderModule } from "../../upstream/port.ts";
import { createOpenAiClient } from "./client.ts";
import { DEFAULT_OPENAI_BASE_URL } from "./endpoint.ts";
import { createOpenAiModelLister } from "./models.ts";
import { OPENAI_DISPLAY_NAME } from "./errors.ts";

export const openai: ProviderModule = {
  displayName: OPENAI_DISPLAY_NAME,
  dayZone: "UTC",
  defaultBaseUrl: DEFAULT_OPENAI_BASE_URL,
  baseUrlVariable: "OPENAI_BASE_URL",
  keyEnvPattern: "OPENAI_[A-Z0-9_]{1,100}",
  // OpenAI's money is its 429 insufficient_quota (errors.ts): the project's credit or its budget.
  moneyWords: {
    monthly_cap: (who) =>
      `the project's monthly budget at ${who} is reached: the project is out until its owner raises it or the ` +
      "month turns.",
    billing_cap: (who) =>
      `the organization's billing at ${who} is over its limit: the project is out until its owner raises it.`,
    credits_depleted: (who) =>
      `the project's prepaid credits at ${who} are used up: it is out until its owner adds credits.`,
  },
  createClient: ({ row, baseUrl }) => createOpenAiClient({ baseUrl, displayName: row.display_name }),
  createLister: ({ row, baseUrl }, options = {}) =>
    createOpenAiModelLister({ baseUrl, displayName: row.display_name, ...options }),
};

// The hub's dialect tags include this one (../../upstream/hub.ts).
declare module "../../upstream/hub.ts" {
  interface DialectTags {
    openai: true;
  }
}
