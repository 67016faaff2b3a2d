// Gemini's, OpenAI's and Anthropic's surfaces are loaded on their first request (http/surfaces.ts), so
// a worker that is only asked in the gateway's own dialect never evaluates them: their zod schemas cost
// several milliseconds of a new worker's boot (docs/benchmarks.md, part "boot"). Walks the modules a
// worker evaluates at start-up (the static, non-type imports from index.ts) and checks that no such
// surface is among them, while each stays reachable through the handler's dynamic imports (so the
// deployed bundle still holds them).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const LLM_INVOKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const INDEX = path.join(LLM_INVOKE, "index.ts");
const LAZY = [
  "surfaces/gemini.ts",
  "surfaces/openai.ts",
  "surfaces/anthropic.ts",
  "surfaces/gemini/request.ts",
  "surfaces/openai/request.ts",
  "surfaces/anthropic/request.ts",
];

/** Relative specifiers `source` imports: evaluated at start-up (static, not type-only) or on demand (import()). */
function importsOf(source: string): { eager: string[]; lazy: string[] } {
  const eager = [...source.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+\.ts)"/gm)]
    .map((m) => m[1]!);
  const lazy = [...source.matchAll(/\bimport\(\s*"(\.{1,2}\/[^"]+\.ts)"\s*\)/g)].map((m) => m[1]!);
  return { eager, lazy };
}

/** The local modules reached from `entry`, following eager imports only, or eager and lazy ones. */
function reached(entry: string, withLazy: boolean, seen = new Set<string>()): Set<string> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const { eager, lazy } = importsOf(readFileSync(entry, "utf8"));
  for (const spec of withLazy ? [...eager, ...lazy] : eager) {
    const target = path.resolve(path.dirname(entry), spec);
    if (existsSync(target)) reached(target, withLazy, seen);
  }
  return seen;
}

const relative = (set: Set<string>) => [...set].map((f) => path.relative(LLM_INVOKE, f));

describe("llm-invoke's start-up", () => {
  it("evaluates none of Gemini's, OpenAI's and Anthropic's surfaces", () => {
    const atStart = relative(reached(INDEX, false));
    expect(atStart).toContain("surfaces/native.ts"); // the walk does reach the surfaces folder
    for (const module of LAZY) expect(atStart).not.toContain(module);
  });

  it("still reaches each through the handler's dynamic imports (they are in the deployed bundle)", () => {
    const all = relative(reached(INDEX, true));
    for (const module of LAZY) expect(all).toContain(module);
  });
});
