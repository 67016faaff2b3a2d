import { describe, expect, it } from "vitest";
import { z } from "zod";
import { boundedName, formatPath, invalidRequest } from "./validation.ts";

describe("invalidRequest", () => {
  const schema = z.strictObject({ model: z.string(), metadata: z.record(z.string(), z.number()).optional() });

  it("names an unknown key in a few dozen characters, however long the key", () => {
    const huge = "k".repeat(128 * 1024);
    const parsed = schema.safeParse({ model: "m", [huge]: 1 });
    const error = invalidRequest(parsed.error!);
    expect(error.code).toBe("invalid_request");
    expect(error.message.length).toBeLessThan(120);
    expect(JSON.stringify(error.toBody()).length).toBeLessThan(400);
    expect(error.message).toContain("Unrecognized key");
  });

  it("bounds many unknown keys and a record key in the path", () => {
    const keys = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`${"x".repeat(1000)}${i}`, 1]));
    const many = invalidRequest(schema.safeParse({ model: "m", ...keys }).error!);
    expect(many.message).toContain("and 497 more");
    expect(JSON.stringify(many.toBody()).length).toBeLessThan(600);
    const inPath = invalidRequest(
      schema.safeParse({ model: "m", metadata: { ["p".repeat(100_000)]: "not a number" } }).error!,
    );
    expect(JSON.stringify(inPath.toBody()).length).toBeLessThan(600);
  });

  it("redacts a secret used as a key name and shows control characters as ?", () => {
    const parsed = schema.safeParse({ model: "m", ["sb_secret_abcdefghijklmnop"]: 1 });
    expect(JSON.stringify(invalidRequest(parsed.error!).toBody())).not.toContain("sb_secret_abcdefghijklmnop");
    expect(boundedName("a\u0000b\nc")).toBe("a?b?c");
  });

  it("formats paths with indexes and cuts deep ones", () => {
    expect(formatPath(["messages", 2, "content"])).toBe("messages[2].content");
    expect(formatPath(Array.from({ length: 20 }, () => "a"))).toBe("a.a.a.a.a.a.a.a.…");
  });
});
