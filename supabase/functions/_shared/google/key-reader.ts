// The one place that reads a Google key: by a key row's env_var_name, from the function's secrets.
// Pure (the environment is passed in), so vitest covers it; index.ts passes Deno.env.get.
type Env = (name: string) => string | undefined;

// Secrets that are never a Google key, whatever a key row says: the function must not send the
// project's own credentials to the Google endpoint (or to whatever GOOGLE_AI_BASE_URL names).
const NOT_A_GOOGLE_KEY = /^(SUPABASE_|GATEWAY_DB_|DATABASE_URL$|PG[A-Z]*$|DENO_|PATH$|HOME$)/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/**
 * Which secrets a key row may name: Google key names only by default, so a key row (which an
 * operator or a mistake can write) cannot make the function send any other Edge secret to Google.
 * GATEWAY_KEY_ENV_PATTERN replaces it (a regular expression the whole name must match); the names
 * above stay refused whatever it says.
 */
export const DEFAULT_KEY_ENV_PATTERN = "GOOGLE_[A-Z0-9_]{1,100}";

function allowedNames(get: Env): RegExp {
  const configured = get("GATEWAY_KEY_ENV_PATTERN")?.trim();
  if (configured) {
    try {
      return new RegExp(`^(?:${configured})$`);
    } catch {
      // A malformed pattern must not open every secret: keep the default.
    }
  }
  return new RegExp(`^(?:${DEFAULT_KEY_ENV_PATTERN})$`);
}

/**
 * The Google key named by a key row's env_var_name, or undefined when the secret is not set or the
 * name is one the gateway refuses to treat as a Google key (then the reservation is released and
 * another key is tried).
 */
export function googleKeyReader(get: Env): (envVarName: string) => string | undefined {
  const allowed = allowedNames(get);
  // A worker's secrets are fixed when it starts: a key found once is kept, not looked up and checked
  // again for every request. One not found is looked up again (it is rare, and may be set meanwhile
  // where the environment can change, as in tests).
  const found = new Map<string, string>();
  return (name) => {
    const known = found.get(name);
    if (known !== undefined) return known;
    if (!ENV_NAME.test(name) || NOT_A_GOOGLE_KEY.test(name) || !allowed.test(name)) return undefined;
    const value = get(name)?.trim();
    if (value === undefined || value === "") return undefined;
    found.set(name, value);
    return value;
  };
}
