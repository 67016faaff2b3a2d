// The bench measures the gateway; it must not outgrow the function it measures. It grew past
// llm-invoke twice as parts were added, each time unnoticed until someone counted, so the count is a
// test: bench/**/*.ts against llm-invoke's code as it is deployed — its own modules and the _shared
// ones it imports (a list moved to _shared is still the function's code) — its tests left out.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";

const lines = (file: string) => readFileSync(file, "utf8").split("\n").length - 1;

/** Lines of the .ts files below dir. */
function tsLines(dir: string): number {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .reduce((sum, f) => sum + lines(path.join(dir, f)), 0);
}

/** Every local module `entry` reaches through relative imports (type-only ones included). */
function reachable(entry: string, seen = new Set<string>()): Set<string> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  for (const m of readFileSync(entry, "utf8").matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+\.ts)"/g)) {
    const target = path.resolve(path.dirname(entry), m[1]!);
    if (existsSync(target)) reachable(target, seen);
  }
  return seen;
}

describe("the bench's size", () => {
  it("is smaller than llm-invoke's code", () => {
    const bench = tsLines(path.join(repoRoot, "bench"));
    const modules = reachable(path.join(repoRoot, "supabase", "functions", "llm-invoke", "index.ts"));
    const llmInvoke = [...modules].reduce((sum, f) => sum + lines(f), 0);
    expect(llmInvoke).toBeGreaterThan(1000);
    expect(bench, `bench/**/*.ts has ${bench} lines, llm-invoke ${llmInvoke}`).toBeLessThan(llmInvoke);
  });
});
