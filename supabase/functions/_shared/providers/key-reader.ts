// The one place that reads a provider's API key: by a key row's env_var_name, from the function's
// secrets. Pure (the environment and the provider rows are passed in), so vitest covers it.
import { BUILT_IN_PROVIDERS, dialectModule, isDialect, type Provider, type ProviderRow } from "./registry.ts";

type Env = (name: string) => string | undefined;

/**
 * The variable that replaces a provider's key name pattern: GATEWAY_GOOGLE_KEY_ENV_PATTERN, … (a
 * regular expression the whole name must match). By default a provider's key names are its row's
 * pattern, else its dialect's (GOOGLE_…, OPENAI_…), so a key row (which an operator or a mistake can
 * write) cannot make a function send any other Edge secret, or another provider's key, to a provider.
 */
export const keyEnvPatternVariable = (provider: Provider) => `GATEWAY_${provider.toUpperCase()}_KEY_ENV_PATTERN`;

// Secrets that are never a provider's key, whatever a key row or a pattern says: the project's own
// credentials must not reach a provider (or whatever its base URL names).
const NEVER_A_KEY = /^(SUPABASE_|GATEWAY_DB_|DATABASE_URL$|PG[A-Z]*$|DENO_|PATH$|HOME$)/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function wholeName(source: string): RegExp | null {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch {
    return null;
  }
}

/**
 * A provider row's key names: its variable's (a malformed one is ignored: it must not open every
 * secret), else the row's, else its dialect's. Null: the row's own pattern is no regular expression,
 * or its dialect is unknown (such a row reads no key).
 */
export function keyNamePattern(get: Env, row: ProviderRow): RegExp | null {
  const configured = get(keyEnvPatternVariable(row.name))?.trim();
  const fromVariable = configured ? wholeName(configured) : null;
  if (fromVariable !== null) return fromVariable;
  const source = row.key_env_pattern ?? (isDialect(row.dialect) ? dialectModule(row.dialect).keyEnvPattern : null);
  return source === null ? null : wholeName(source);
}

/**
 * Why a key row's secret was read for no key, in words that name no secret: its name is taken by two
 * providers' patterns (`overlap`), is outside its provider's (`outside`), is never a key (`never`), its
 * provider's pattern is unusable (`no_pattern`), or the secret is not set (`unset`).
 */
export type KeyRefusal = "overlap" | "outside" | "never" | "no_pattern" | "unset";

/**
 * A provider's key by a key row's env_var_name, or undefined; `refusal` says why not, for the logs
 * (naming the secret), `refusalKind` for the caller (naming none).
 */
export interface KeyReader {
  (envVarName: string): string | undefined;
  refusal(envVarName: string): string;
  refusalKind(envVarName: string): KeyRefusal | null;
}

/**
 * The key of `provider` named by a key row's env_var_name, or undefined when the secret is not set or
 * the name is not one of that provider's: outside its pattern, or inside another provider's as well
 * (two patterns that both take a name read it for neither, and the refusal names both: a row or a
 * pattern widened for one provider never hands it another's keys). Then the reservation is released
 * and another key is tried.
 */
export function keyReader(get: Env, provider: Provider, rows: readonly ProviderRow[] = BUILT_IN_PROVIDERS): KeyReader {
  const named = rows.map((r) => ({ name: r.name, who: r.display_name, pattern: keyNamePattern(get, r) }));
  const self = named.find((r) => r.name === provider);
  const own = self?.pattern ?? null;
  const who = self?.who ?? provider;
  const others = named.filter((r) => r.name !== provider);
  const alsoTakenBy = (name: string) => others.find((o) => o.pattern?.test(name) === true);
  // A worker's secrets are fixed when it starts: a key found once is kept, not looked up and checked
  // again for every request. One not found is looked up again (it is rare, and may be set meanwhile
  // where the environment can change, as in tests).
  const found = new Map<string, string>();
  const read = (name: string) => {
    const known = found.get(name);
    if (known !== undefined) return known;
    if (own === null || !ENV_NAME.test(name) || NEVER_A_KEY.test(name) || !own.test(name)) return undefined;
    if (alsoTakenBy(name) !== undefined) return undefined;
    const value = get(name)?.trim();
    if (value === undefined || value === "") return undefined;
    found.set(name, value);
    return value;
  };
  const refusalKind = (name: string): KeyRefusal | null => {
    if (own === null) return "no_pattern";
    if (!ENV_NAME.test(name) || NEVER_A_KEY.test(name)) return "never";
    if (!own.test(name)) return "outside";
    if (alsoTakenBy(name) !== undefined) return "overlap";
    return read(name) === undefined ? "unset" : null;
  };
  const refusal = (name: string) => {
    if (own === null) return `provider ${provider} has no usable key-secret pattern`;
    if (!ENV_NAME.test(name) || NEVER_A_KEY.test(name)) return `${name} is never read as a provider's key`;
    if (!own.test(name)) return `${name} is not one of ${who}'s key names (${own.source})`;
    const other = alsoTakenBy(name);
    if (other !== undefined) {
      return `${name} matches both ${who}'s and ${other.who}'s key-secret patterns: read for neither (narrow one)`;
    }
    return read(name) === undefined ? "it is not set, or empty" : "";
  };
  return Object.assign(read, { refusal, refusalKind });
}
