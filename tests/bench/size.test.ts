// The bench measures the gateway; it must not outgrow the function it measures. It grew past
// llm-invoke twice as parts were added, each time unnoticed until someone counted, so the count is a
// test: bench/**/*.ts against llm-invoke's own code (its tests and test fixtures left out).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";

/** Lines of the .ts files below dir, those whose name says test left out when asked. */
function tsLines(dir: string, withoutTests: boolean): number {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !(withoutTests && path.basename(f).includes("test")))
    .reduce((sum, f) => sum + readFileSync(path.join(dir, f), "utf8").split("\n").length - 1, 0);
}

describe("the bench's size", () => {
  it("is smaller than llm-invoke's code", () => {
    const bench = tsLines(path.join(repoRoot, "bench"), false);
    const llmInvoke = tsLines(path.join(repoRoot, "supabase", "functions", "llm-invoke"), true);
    expect(llmInvoke).toBeGreaterThan(1000);
    expect(bench, `bench/**/*.ts has ${bench} lines, llm-invoke ${llmInvoke}`).toBeLessThan(llmInvoke);
  });
});
