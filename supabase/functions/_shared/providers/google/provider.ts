// Google (the Gemini API) as the registry holds it (../registry.ts): where it is reached, which
// secrets are its keys, its client (client.ts) and its model list (models.ts).
import type { ProviderModule } from "../../upstream/port.ts";
import { createGoogleClient, DEFAULT_GOOGLE_BASE_URL, GOOGLE_DISPLAY_NAME } from "./client.ts";
import { createModelLister } from "./models.ts";

export const google: ProviderModule = {
  displayName: GOOGLE_DISPLAY_NAME,
  dayZone: "America/Los_Angeles",
  defaultBaseUrl: DEFAULT_GOOGLE_BASE_URL,
  baseUrlVariable: "GOOGLE_AI_BASE_URL",
  keyEnvPattern: "GOOGLE_[A-Z0-9_]{1,100}",
  // Google's words for a project out of money (docs/google-429s.md).
  moneyWords: {
    monthly_cap: (who) =>
      `the project's monthly spending cap at ${who}: the project is out until its owner raises it or the month turns.`,
    billing_cap: (who) =>
      `the billing account's monthly spending cap at ${who}: the project is out until its owner raises it or the ` +
      "month turns.",
    credits_depleted: (who) =>
      `the project's prepaid credits at ${who} are used up: it is out until its owner adds credits.`,
  },
  createClient: ({ row, baseUrl }) => createGoogleClient({ baseUrl, displayName: row.display_name }),
  createLister: ({ row, baseUrl }, options = {}) =>
    createModelLister({ baseUrl, displayName: row.display_name, ...options }),
};

// The hub's dialect tags include this one (../../upstream/hub.ts).
declare module "../../upstream/hub.ts" {
  interface DialectTags {
    google: true;
  }
}
