// No import cycle between folders, in any function or in _shared: a folder is one job, and a folder
// that reaches back into one that imports it has two (the provider directory once read keys through a
// module above it that read the registry beside it). Every non-test module under supabase/functions,
// its relative imports (type-only ones included) gathered per folder; the folder graph must have no
// cycle. (llm-invoke/layers.test.ts holds the order of llm-invoke's own layers and of the files in each.)
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const FUNCTIONS = path.dirname(fileURLToPath(import.meta.url));

function modulesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (name === "node_modules") return [];
    if (statSync(full).isDirectory()) return modulesUnder(full);
    // Tests and their fixtures are no folder's job: they may read any of them.
    return name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith("test-fixtures.ts") ? [full] : [];
  });
}

/** Layers whose parts are nodes of their own: each surface (its module and its folder) and the module they share. */
const PARTED = new Set(["llm-invoke/surfaces"]);

/**
 * A module's node: in _shared its folder (upstream/, providers/, each dialect's own); in a function
 * its layer (llm-invoke's attempt/, http/, model/, store/), but in a parted layer its part
 * (llm-invoke's surfaces/native.ts with surfaces/native/, each other surface alike, surfaces/shared/);
 * a module at a function's top (its index.ts wiring, llm-invoke's contract.ts and clock.ts at the
 * bottom of its layers) is a node of its own.
 */
export function nodeOf(root: string, file: string): string {
  const folder = path.relative(root, path.dirname(file)).split(path.sep);
  if (folder[0]!.startsWith("_")) return folder.join("/");
  if (folder.length === 1) return path.relative(root, file).split(path.sep).join("/");
  const layer = folder.slice(0, 2).join("/");
  if (!PARTED.has(layer)) return layer;
  return `${layer}/${folder[2] ?? path.basename(file, ".ts")}`;
}

/** Node → the nodes its modules import from (itself left out). */
export function folderGraph(root: string): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of modulesUnder(root)) {
    const from = nodeOf(root, file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const m of readFileSync(file, "utf8").matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+\.ts)"/g)) {
      const to = nodeOf(root, path.resolve(path.dirname(file), m[1]!));
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

/** One cycle of the graph as the folders on it (first repeated at the end), or null when there is none. */
export function cycleOf(graph: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === "done") return null;
    if (state.get(node) === "open") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const found = visit(next);
      if (found !== null) return found;
    }
    stack.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    const found = visit(node);
    if (found !== null) return found;
  }
  return null;
}

describe("folders", () => {
  it("import one another without a cycle", () => {
    expect(cycleOf(folderGraph(FUNCTIONS))).toBeNull();
  });

  it("counts each surface apart, and the module they share apart from them", () => {
    const graph = folderGraph(FUNCTIONS);
    const surfaces = [...graph.keys()].filter((n) => n.startsWith("llm-invoke/surfaces/")).sort();
    expect(surfaces).toEqual([
      "llm-invoke/surfaces/anthropic",
      "llm-invoke/surfaces/gemini",
      "llm-invoke/surfaces/native",
      "llm-invoke/surfaces/openai",
      "llm-invoke/surfaces/shared",
    ]);
    // The native body is Gemini's (the bot's contract): native reads Gemini's, never the other way.
    expect(graph.get("llm-invoke/surfaces/native")).toContain("llm-invoke/surfaces/gemini");
    // Every other surface reads only the shared module, never another surface.
    const across = surfaces.filter((s) => s !== "llm-invoke/surfaces/native").flatMap((s) =>
      [...graph.get(s)!].filter((n) => n.startsWith("llm-invoke/surfaces/") && n !== "llm-invoke/surfaces/shared")
        .map((n) => `${s} -> ${n}`)
    );
    expect(across).toEqual([]);
    expect(nodeOf(FUNCTIONS, path.join(FUNCTIONS, "llm-invoke/surfaces/native.ts"))).toBe("llm-invoke/surfaces/native");
  });

  it("a cycle is found where there is one (the check can fail)", () => {
    const graph = new Map([["a", new Set(["b"])], ["b", new Set(["c"])], ["c", new Set(["a"])], ["d", new Set(["a"])]]);
    expect(cycleOf(graph)).toEqual(["a", "b", "c", "a"]);
    expect(cycleOf(new Map([["a", new Set(["b"])], ["b", new Set<string>()]]))).toBeNull();
  });
});
