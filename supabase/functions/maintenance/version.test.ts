import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GATEWAY_VERSION } from "./version.ts";

describe("GATEWAY_VERSION", () => {
  const root = new URL("../../../", import.meta.url);
  it("is package.json's version, a semantic version", () => {
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string };
    expect(GATEWAY_VERSION).toBe(pkg.version);
    expect(GATEWAY_VERSION).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
  });

  it("has its section in CHANGELOG.md", () => {
    const changelog = readFileSync(new URL("CHANGELOG.md", root), "utf8");
    expect(changelog).toMatch(new RegExp(`^## ${GATEWAY_VERSION.split("-")[0]!.replaceAll(".", "\\.")}\\b`, "m"));
  });
});
