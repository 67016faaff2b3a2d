// The dialects the gateway speaks, one module each (./<dialect>/provider.ts, the port's ProviderModule),
// and what a provider row (google_ai_providers: name, dialect, display name, base URL, key-secret
// pattern) means. A provider is a row; a dialect is code: an OpenAI-compatible service is a row of
// dialect openai, a new wire format its folder beside these and its entry here (an import and a line:
// an ES module cannot name another without importing it). The seeded rows are the built-in dialects'
// own (BUILT_IN_PROVIDERS; tests/db/providers.test.ts holds the database's seed equal to it); a dialect
// needs no row of its own until an operator, or a test, inserts one. A dialect's name is one a provider
// row may take (lower-case letters and digits, a letter first: registry.test.ts holds it). Nothing
// outside this file and the dialect folders names a provider (provider-names.test.ts holds it).
import type { DialectTag } from "../upstream/hub.ts";
import type { ProviderModule, ProviderRow } from "../upstream/port.ts";
import { anthropic } from "./anthropic/provider.ts";
import { google } from "./google/provider.ts";
import { openai } from "./openai/provider.ts";

const REGISTRY = { google, openai, anthropic } as const satisfies Record<DialectTag, ProviderModule>;

export type Dialect = keyof typeof REGISTRY;
export const DIALECTS = Object.keys(REGISTRY) as [Dialect, ...Dialect[]];

/** A provider: a google_ai_providers row's name (key rows and model rows name it). */
export type Provider = string;

export type { ProviderRow };

type Env = (name: string) => string | undefined;

export function isDialect(name: string): name is Dialect {
  return Object.hasOwn(REGISTRY, name);
}

export function dialectModule(dialect: Dialect): ProviderModule {
  return REGISTRY[dialect];
}

/** The dialects whose own rows the database holds built in (the rows migrations), by name as it lists them. */
const BUILT_IN_DIALECTS = ["anthropic", "google", "openai"] as const satisfies readonly Dialect[];

/** The rows the database seeds: each built-in dialect as its own provider. */
export const BUILT_IN_PROVIDERS: readonly ProviderRow[] = BUILT_IN_DIALECTS.map((d) => ({
  name: d,
  dialect: d,
  display_name: REGISTRY[d].displayName,
  base_url: null,
  key_env_pattern: null,
  day_zone: REGISTRY[d].dayZone,
  // OpenAI's own row serves its Responses API; a compatible service's row says so itself (false by default).
  has_responses_api: d === "openai",
}));

/**
 * An http(s) base URL without credentials, query or fragment, as given; throws naming `what`
 * otherwise: a key is never sent to where a typo points.
 */
export function checkedBaseUrl(value: string, what: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (
    url === null || (url.protocol !== "https:" && url.protocol !== "http:") || url.search !== "" || url.hash !== "" ||
    url.username !== "" || url.password !== ""
  ) {
    throw new Error(`${what} is not an http(s) base URL without a query: ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Where a provider row is reached: a dialect's own row at its variable's value (a compatible server, a
 * simulator), else the row's URL, else the dialect's default (if it has one); another row at its own
 * URL, which it must have. A value that is not an http(s) URL throws with a message naming the variable or the row.
 */
export function baseUrlOf(
  row: ProviderRow & { dialect: Dialect },
  get: Env,
  module: Pick<ProviderModule, "baseUrlVariable" | "defaultBaseUrl"> = REGISTRY[row.dialect],
): string {
  if (row.name === row.dialect) {
    const value = get(module.baseUrlVariable)?.trim();
    if (value !== undefined && value !== "") return checkedBaseUrl(value, module.baseUrlVariable);
  }
  const own = row.base_url?.trim();
  if (own !== undefined && own !== "") return checkedBaseUrl(own, `provider ${row.name}'s base_url`);
  if (row.name !== row.dialect) {
    throw new Error(`provider ${row.name} has no base_url (only a dialect's own row may leave it to the dialect)`);
  }
  if (module.defaultBaseUrl === undefined) {
    throw new Error(
      `provider ${row.name} has no base_url, and its dialect no default endpoint (set ${module.baseUrlVariable} or the row's base_url)`,
    );
  }
  return module.defaultBaseUrl;
}
