// Guards the Deno layout: every function's deno.json maps the bare names _shared imports, to the
// same npm: specifiers, and those specifiers agree with package.json's versions, which is what
// vitest (Node) and local Deno (nodeModulesDir: manual) actually load. A mismatch would mean the
// tests exercise one version and the deployed function another.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const FUNCTIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = path.resolve(FUNCTIONS, "..", "..");

function imports(file: string): Record<string, string> {
  return (JSON.parse(readFileSync(file, "utf8")) as { imports?: Record<string, string> }).imports ?? {};
}

const shared = imports(path.join(FUNCTIONS, "_shared", "deno.json"));
const functionDirs = readdirSync(FUNCTIONS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !d.name.startsWith("_") && !d.name.startsWith("."))
  .filter((d) => existsSync(path.join(FUNCTIONS, d.name, "index.ts")))
  .map((d) => d.name);
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const pinned = { ...pkg.devDependencies, ...pkg.dependencies };

describe("Deno layout", () => {
  it("has at least llm-invoke, each with a deno.json", () => {
    expect(functionDirs).toContain("llm-invoke");
    for (const name of functionDirs) expect(existsSync(path.join(FUNCTIONS, name, "deno.json"))).toBe(true);
  });

  it.each(functionDirs)("%s/deno.json maps every bare name _shared uses, identically", (name) => {
    const own = imports(path.join(FUNCTIONS, name, "deno.json"));
    for (const [bare, specifier] of Object.entries(shared)) expect(own[bare]).toBe(specifier);
  });

  // Exact versions: a deploy resolves the import map itself, so a range would let production run a
  // version the tests never saw.
  it.each(Object.entries(shared))("%s -> %s pins package.json's exact version", (bare, specifier) => {
    const m = /^npm:(@?[^@]+)@(\d+\.\d+\.\d+)$/.exec(specifier);
    expect(m, `${bare} should be npm:<name>@<x.y.z>`).not.toBeNull();
    const [, name, version] = m!;
    expect(pinned[name!], `${name} must be in package.json`).toBeDefined();
    expect(pinned[name!]).toBe(version);
  });
});
