// _shared holds only code that two or more functions use (Supabase's convention: a function's own
// code lives in its own folder). Walks the import graph from each function's index.ts and checks
// that every module under _shared (tests aside) is reached from at least two of them.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const FUNCTIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SHARED = path.join(FUNCTIONS, "_shared");

function modulesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return modulesUnder(full);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [full] : [];
  });
}

/** Every local module `entry` reaches through relative imports (type-only imports included). */
function reachable(entry: string, seen = new Set<string>()): Set<string> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const source = readFileSync(entry, "utf8");
  for (const m of source.matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+\.ts)"/g)) {
    const target = path.resolve(path.dirname(entry), m[1]!);
    if (existsSync(target)) reachable(target, seen);
  }
  return seen;
}

const functionNames = readdirSync(FUNCTIONS).filter((n) =>
  !n.startsWith("_") && existsSync(path.join(FUNCTIONS, n, "index.ts"))
);
const reach = new Map(functionNames.map((n) => [n, reachable(path.join(FUNCTIONS, n, "index.ts"))]));

describe("_shared", () => {
  it("is reached from each of the three functions", () => {
    expect(functionNames.sort()).toEqual(["issue-kaggle-token", "llm-invoke", "maintenance"]);
  });

  it.each(modulesUnder(SHARED).map((f) => path.relative(SHARED, f)))("%s is used by two or more functions", (rel) => {
    const file = path.join(SHARED, rel);
    const users = functionNames.filter((n) => reach.get(n)!.has(file));
    expect(users.length, `${rel} is used by ${users.join(", ") || "no function"}`).toBeGreaterThanOrEqual(2);
  });

  it("no function imports another function's own modules", () => {
    for (const [name, files] of reach) {
      const foreign = [...files].filter((f) => {
        const owner = path.relative(FUNCTIONS, f).split(path.sep)[0];
        return owner !== name && owner !== "_shared";
      });
      expect(foreign, name).toEqual([]);
    }
  });
});
