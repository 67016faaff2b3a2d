// The registry: each provider's module, reached at its base URL variable's value or its own.
import { describe, expect, it } from "vitest";
import { baseUrlOf, providerModule, PROVIDERS } from "./registry.ts";

describe("baseUrlOf", () => {
  it("uses GOOGLE_AI_BASE_URL when set and Google's endpoint otherwise", () => {
    expect(baseUrlOf("google", (n) => (n === "GOOGLE_AI_BASE_URL" ? "http://127.0.0.1:8788" : undefined)))
      .toBe("http://127.0.0.1:8788");
    expect(baseUrlOf("google", () => " ")).toBe("https://generativelanguage.googleapis.com");
  });

  it("uses OPENAI_BASE_URL when set and OpenAI's endpoint otherwise", () => {
    expect(baseUrlOf("openai", (n) => (n === "OPENAI_BASE_URL" ? "http://127.0.0.1:8789/v1" : undefined)))
      .toBe("http://127.0.0.1:8789/v1");
    expect(baseUrlOf("openai", () => undefined)).toBe("https://api.openai.com");
  });

  it("stops on a base URL that is not one, naming the variable", () => {
    for (const bad of ["generativelanguage.googleapis.com", "ftp://x", "http://x/?key=1", "http//x"]) {
      expect(() => baseUrlOf("google", () => bad)).toThrow(/^GOOGLE_AI_BASE_URL is not an http\(s\) base URL/);
    }
    expect(() => baseUrlOf("openai", () => "not a url")).toThrow(/^OPENAI_BASE_URL /);
    expect(baseUrlOf("openai", () => "http://127.0.0.1:8789/v1/")).toBe("http://127.0.0.1:8789/v1/");
  });

  it("gives every provider its own variable and key names", () => {
    const variables = PROVIDERS.map((p) => providerModule(p).baseUrlVariable);
    expect(new Set(variables).size).toBe(PROVIDERS.length);
    const patterns = PROVIDERS.map((p) => providerModule(p).keyEnvPattern);
    expect(new Set(patterns).size).toBe(PROVIDERS.length);
  });
});
