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
    for (const name of ["SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL", "GATEWAY_DB_URL", "DATABASE_URL", "PGPASSWORD"]) {
      expect(read(name)).toBeUndefined();
    }
    expect(read("bad name; rm -rf")).toBeUndefined();
  });
});
