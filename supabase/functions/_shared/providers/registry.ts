// The providers the gateway speaks, one module each (./<dialect>/provider.ts, the port's
// ProviderModule), keyed by the name their key and model rows give (google_ai_provider in the
// database; tests/db/providers.test.ts keeps the two lists equal). Adding a provider: its folder
// beside these and one line here. Nothing outside this file and the provider folders names a
// provider (provider-names.test.ts holds it).
import type { ModelLister, ProviderModule, UpstreamClient } from "../upstream/port.ts";
import { google } from "./google/provider.ts";
import { openai } from "./openai/provider.ts";

const REGISTRY = { google, openai } as const satisfies Record<string, ProviderModule>;

export type Provider = keyof typeof REGISTRY;
export const PROVIDERS = Object.keys(REGISTRY) as [Provider, ...Provider[]];

/** The provider of a model row that names none: the database's column default. */
export const DEFAULT_PROVIDER: Provider = "google";

type Env = (name: string) => string | undefined;

export function providerModule(provider: Provider): ProviderModule {
  return REGISTRY[provider];
}

/** Who answers for a provider, in messages ("Google"). */
export function providerName(provider: Provider): string {
  return REGISTRY[provider].displayName;
}

/**
 * Where a provider is reached: its base URL variable's value (a compatible server, a simulator), else
 * its own. A value that is not an http(s) URL stops the worker with a message naming the variable: a
 * key is never sent to where a typo points.
 */
export function baseUrlOf(provider: Provider, get: Env): string {
  const module = REGISTRY[provider];
  const value = get(module.baseUrlVariable)?.trim();
  if (value === undefined || value === "") return module.defaultBaseUrl;
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (url === null || (url.protocol !== "https:" && url.protocol !== "http:") || url.search !== "" || url.hash !== "") {
    throw new Error(`${module.baseUrlVariable} is not an http(s) base URL without a query: ${JSON.stringify(value)}`);
  }
  return value;
}

/** Every provider's client, each reached at its base URL. */
export function upstreamClients(get: Env): Record<Provider, UpstreamClient> {
  return Object.fromEntries(
    PROVIDERS.map((p) => [p, REGISTRY[p].createClient({ baseUrl: baseUrlOf(p, get) })]),
  ) as Record<Provider, UpstreamClient>;
}

/** Every provider's model list (maintenance's key checks), each reached at its base URL. */
export function modelListers(get: Env, options: { timeoutMs?: number } = {}): Record<Provider, ModelLister> {
  return Object.fromEntries(
    PROVIDERS.map((p) => [p, REGISTRY[p].createLister({ baseUrl: baseUrlOf(p, get), ...options })]),
  ) as Record<Provider, ModelLister>;
}
