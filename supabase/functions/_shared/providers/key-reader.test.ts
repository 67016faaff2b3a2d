import { describe, expect, it } from "vitest";
import { keyEnvPatternVariable, keyReader } from "./key-reader.ts";
import { BUILT_IN_PROVIDERS, dialectModule, isDialect } from "./registry.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

describe("keyReader", () => {
  const read = keyReader(envOf({
    GOOGLE_API_KEY: " AIza-key ",
    GOOGLE_EMPTY: "",
    SUPABASE_SERVICE_ROLE_KEY: "sb_secret_x",
    SUPABASE_DB_URL: "postgres://u:p@h/d",
    GATEWAY_DB_URL: "postgres://u:p@h/d",
    DATABASE_URL: "postgres://u:p@h/d",
    PGPASSWORD: "pw",
  }), "google");

  it("reads the named secret, trimmed; unset or empty is undefined", () => {
    expect(read("GOOGLE_API_KEY")).toBe("AIza-key");
    expect(read("GOOGLE_EMPTY")).toBeUndefined();
    expect(read("GOOGLE_MISSING")).toBeUndefined();
  });

  it("never hands out the project's own credentials as a key", () => {
    for (
      const name of ["SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL", "GATEWAY_DB_URL", "DATABASE_URL", "PGPASSWORD"]
    ) {
      expect(read(name)).toBeUndefined();
    }
    expect(read("bad name; rm -rf")).toBeUndefined();
  });

  it("reads each built-in provider's keys by its dialect's pattern, or by its variable's", () => {
    for (const dialect of BUILT_IN_PROVIDERS.map((r) => r.dialect).filter(isDialect)) {
      const name = dialectModule(dialect).keyEnvPattern.split("[")[0] + "KEY_1";
      expect(keyReader(envOf({ [name]: "k" }), dialect)(name)).toBe("k");
      const variable = keyEnvPatternVariable(dialect);
      expect(variable).toBe(`GATEWAY_${dialect.toUpperCase()}_KEY_ENV_PATTERN`);
      expect(keyReader(envOf({ MY_KEY: "m", [variable]: "MY_KEY" }), dialect)("MY_KEY")).toBe("m");
    }
    expect(BUILT_IN_PROVIDERS.map((r) => r.name)).toEqual(BUILT_IN_PROVIDERS.map((r) => r.dialect));
  });

  it("reads an added provider's keys by its row's pattern, and says why it read none", () => {
    const rows = [...BUILT_IN_PROVIDERS, {
      name: "deepseek",
      dialect: "openai",
      display_name: "DeepSeek",
      base_url: "https://api.deepseek.com",
      key_env_pattern: "DEEPSEEK_[A-Z0-9_]{1,100}",
      day_zone: "UTC",
      has_responses_api: false,
    }];
    const env = envOf({ DEEPSEEK_API_KEY: "sk-d", OPENAI_API_KEY: "sk-o" });
    const deepseek = keyReader(env, "deepseek", rows);
    expect(deepseek("DEEPSEEK_API_KEY")).toBe("sk-d");
    expect(deepseek("OPENAI_API_KEY")).toBeUndefined();
    expect(deepseek.refusal("OPENAI_API_KEY")).toBe("OPENAI_API_KEY is not one of DeepSeek's key names (^(?:DEEPSEEK_[A-Z0-9_]{1,100})$)");
    expect(deepseek.refusal("DEEPSEEK_OTHER")).toBe("it is not set, or empty");
    expect(deepseek.refusal("SUPABASE_DB_URL")).toBe("SUPABASE_DB_URL is never read as a provider's key");
    expect(keyReader(env, "openai", rows)("DEEPSEEK_API_KEY")).toBeUndefined();
  });

  it("reads only the provider's own key names by default, or what its variable allows", () => {
    const env = { GOOGLE_API_KEY_2: "AIza-2", OPENAI_API_KEY: "sk-x", STRIPE_SECRET: "sk_live", MY_KEY: "k" };
    const google = keyReader(envOf(env), "google");
    expect(google("GOOGLE_API_KEY_2")).toBe("AIza-2");
    expect(google("OPENAI_API_KEY")).toBeUndefined();
    expect(google("STRIPE_SECRET")).toBeUndefined();
    const openai = keyReader(envOf(env), "openai");
    expect(openai("OPENAI_API_KEY")).toBe("sk-x");
    expect(openai("GOOGLE_API_KEY_2")).toBeUndefined();
    const custom = keyReader(envOf({ ...env, GATEWAY_GOOGLE_KEY_ENV_PATTERN: "MY_KEY|GOOGLE_.*" }), "google");
    expect(custom("MY_KEY")).toBe("k");
    expect(custom("STRIPE_SECRET")).toBeUndefined();
    const openaiCustom = keyReader(envOf({ ...env, GATEWAY_OPENAI_KEY_ENV_PATTERN: "MY_KEY" }), "openai");
    expect(openaiCustom("MY_KEY")).toBe("k");
    expect(openaiCustom("OPENAI_API_KEY")).toBeUndefined();
    const malformed = keyReader(envOf({ ...env, GATEWAY_GOOGLE_KEY_ENV_PATTERN: "(" }), "google");
    expect(malformed("MY_KEY")).toBeUndefined();
    expect(malformed("GOOGLE_API_KEY_2")).toBe("AIza-2");
  });

  it("never reads another provider's key, nor the project's credentials, however wide a pattern is", () => {
    const env = { GOOGLE_API_KEY: "AIza", OPENAI_API_KEY: "sk-x", SUPABASE_SERVICE_ROLE_KEY: "sb" };
    const everything = keyReader(envOf({ ...env, GATEWAY_GOOGLE_KEY_ENV_PATTERN: ".*" }), "google");
    expect(everything("GOOGLE_API_KEY")).toBe("AIza");
    expect(everything("OPENAI_API_KEY")).toBeUndefined();
    expect(everything("SUPABASE_SERVICE_ROLE_KEY")).toBeUndefined();
  });

  it("looks a key up once per worker, and a missing one again until it is set", () => {
    const env: Record<string, string> = {};
    let lookups = 0;
    const read = keyReader((name) => {
      lookups++;
      return env[name];
    }, "google");
    const before = lookups; // the providers' pattern variables, read once
    expect(read("GOOGLE_API_KEY")).toBeUndefined();
    env.GOOGLE_API_KEY = "AIza-late";
    expect(read("GOOGLE_API_KEY")).toBe("AIza-late");
    expect(read("GOOGLE_API_KEY")).toBe("AIza-late");
    expect(lookups - before).toBe(2);
  });
});
