// The one place that reads a provider's API key: by a key row's env_var_name, from the function's
// secrets. Pure (the environment is passed in), so vitest covers it; each index.ts passes Deno.env.get.
import { type Provider, providerModule, PROVIDERS } from "./providers/registry.ts";

export { type Provider, PROVIDERS };

type Env = (name: string) => string | undefined;

/**
 * Which secrets a key row of each provider may name, by default: that provider's key names only, so a
 * key row (which an operator or a mistake can write) cannot make a function send any other Edge secret,
 * or another provider's key, to a provider. GATEWAY_<PROVIDER>_KEY_ENV_PATTERN (keyEnvPatternVariable)
 * replaces a provider's (a regular expression the whole name must match).
 */
export const DEFAULT_KEY_ENV_PATTERNS: Readonly<Record<Provider, string>> = Object.fromEntries(
  PROVIDERS.map((p) => [p, providerModule(p).keyEnvPattern]),
) as Record<Provider, string>;

/** The variable that replaces a provider's key name pattern: GATEWAY_GOOGLE_KEY_ENV_PATTERN, … */
export const keyEnvPatternVariable = (provider: Provider) => `GATEWAY_${provider.toUpperCase()}_KEY_ENV_PATTERN`;

// Secrets that are never a provider's key, whatever a key row or a pattern says: the project's own
// credentials must not reach a provider (or whatever its base URL variable names).
const NEVER_A_KEY = /^(SUPABASE_|GATEWAY_DB_|DATABASE_URL$|PG[A-Z]*$|DENO_|PATH$|HOME$)/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** A provider's pattern: its variable's, else the default (a malformed one must not open every secret). */
function namePattern(get: Env, provider: Provider): RegExp {
  const configured = get(keyEnvPatternVariable(provider))?.trim();
  if (configured) {
    try {
      return new RegExp(`^(?:${configured})$`);
    } catch {
      // keep the default
    }
  }
  return new RegExp(`^(?:${DEFAULT_KEY_ENV_PATTERNS[provider]})$`);
}

/**
 * The key of `provider` named by a key row's env_var_name, or undefined when the secret is not set or
 * the name is not one of that provider's: outside its pattern, or inside another provider's (a pattern
 * widened for one provider never hands it another's keys). Then the reservation is released and
 * another key is tried.
 */
export function keyReader(get: Env, provider: Provider): (envVarName: string) => string | undefined {
  const own = namePattern(get, provider);
  const others = PROVIDERS.filter((p) => p !== provider).map((p) => namePattern(get, p));
  // A worker's secrets are fixed when it starts: a key found once is kept, not looked up and checked
  // again for every request. One not found is looked up again (it is rare, and may be set meanwhile
  // where the environment can change, as in tests).
  const found = new Map<string, string>();
  return (name) => {
    const known = found.get(name);
    if (known !== undefined) return known;
    if (!ENV_NAME.test(name) || NEVER_A_KEY.test(name) || !own.test(name)) return undefined;
    if (others.some((pattern) => pattern.test(name))) return undefined;
    const value = get(name)?.trim();
    if (value === undefined || value === "") return undefined;
    found.set(name, value);
    return value;
  };
}

/** Every provider's reader: a key row's secret, read by the names of the provider the row is for. */
export function keyReaders(get: Env): (envVarName: string, provider: Provider) => string | undefined {
  const readers = Object.fromEntries(PROVIDERS.map((p) => [p, keyReader(get, p)])) as Record<
    Provider,
    (envVarName: string) => string | undefined
  >;
  return (envVarName, provider) => readers[provider](envVarName);
}
