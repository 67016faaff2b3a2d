import { describe, expect, it } from "vitest";
import { googleKeyReader } from "./key-reader.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

describe("googleKeyReader", () => {
  const read = googleKeyReader(envOf({
    GOOGLE_API_KEY: " AIza-key ",
    EMPTY: "",
    SUPABASE_SERVICE_ROLE_KEY: "sb_secret_x",
    SUPABASE_DB_URL: "postgres://u:p@h/d",
    GATEWAY_DB_URL: "postgres://u:p@h/d",
    DATABASE_URL: "postgres://u:p@h/d",
    PGPASSWORD: "pw",
  }));

  it("reads the named secret, trimmed; unset or empty is undefined", () => {
    expect(read("GOOGLE_API_KEY")).toBe("AIza-key");
    expect(read("EMPTY")).toBeUndefined();
    expect(read("MISSING")).toBeUndefined();
  });

  it("never hands out the project's own credentials as a Google key", () => {
    for (
      const name of ["SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL", "GATEWAY_DB_URL", "DATABASE_URL", "PGPASSWORD"]
    ) {
      expect(read(name)).toBeUndefined();
    }
    expect(read("bad name; rm -rf")).toBeUndefined();
  });

  it("reads only Google key names by default, or what GATEWAY_KEY_ENV_PATTERN allows", () => {
    const env = { GOOGLE_API_KEY_2: "AIza-2", OPENAI_API_KEY: "sk-x", STRIPE_SECRET: "sk_live", MY_KEY: "k" };
    const byDefault = googleKeyReader(envOf(env));
    expect(byDefault("GOOGLE_API_KEY_2")).toBe("AIza-2");
    expect(byDefault("OPENAI_API_KEY")).toBeUndefined();
    expect(byDefault("STRIPE_SECRET")).toBeUndefined();
    const custom = googleKeyReader(envOf({ ...env, GATEWAY_KEY_ENV_PATTERN: "MY_KEY|GOOGLE_.*" }));
    expect(custom("MY_KEY")).toBe("k");
    expect(custom("STRIPE_SECRET")).toBeUndefined();
    const malformed = googleKeyReader(envOf({ ...env, GATEWAY_KEY_ENV_PATTERN: "(" }));
    expect(malformed("MY_KEY")).toBeUndefined();
    expect(malformed("GOOGLE_API_KEY_2")).toBe("AIza-2");
    const everything = googleKeyReader(
      envOf({ ...env, SUPABASE_SERVICE_ROLE_KEY: "sb", GATEWAY_KEY_ENV_PATTERN: ".*" }),
    );
    expect(everything("SUPABASE_SERVICE_ROLE_KEY")).toBeUndefined();
  });

  it("looks a key up once per worker, and a missing one again until it is set", () => {
    const env: Record<string, string> = {};
    let lookups = 0;
    const read = googleKeyReader((name) => {
      lookups++;
      return env[name];
    });
    const before = lookups; // GATEWAY_KEY_ENV_PATTERN, read once
    expect(read("GOOGLE_API_KEY")).toBeUndefined();
    env.GOOGLE_API_KEY = "AIza-late";
    expect(read("GOOGLE_API_KEY")).toBe("AIza-late");
    expect(read("GOOGLE_API_KEY")).toBe("AIza-late");
    expect(lookups - before).toBe(2);
  });
});
