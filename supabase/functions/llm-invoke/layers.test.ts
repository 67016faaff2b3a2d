// Guards llm-invoke's layout (README.md beside this file): its folders are layers, and a module may
// import only from its own layer or a lower one, so the vocabulary at the bottom never learns about
// the stages built on it. And the import graph as Deno itself reads it (`deno info --json`, type
// imports included) has no circle anywhere under supabase/functions.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { denoBin } from "../../../shared/deno-bin.ts";

const LLM_INVOKE = path.dirname(fileURLToPath(import.meta.url));
const FUNCTIONS = path.resolve(LLM_INVOKE, "..");

/** Lowest first. A module's layer is its top folder under llm-invoke (or its own name at the top). */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ["contract.ts", "clock.ts", "field-codes.ts"],
  ["store"],
  ["model"],
  ["cache"],
  ["attempt"],
  ["embedding"],
  ["surfaces"],
  ["http"],
  ["index.ts"],
];

function layerOf(file: string): number {
  const top = path.relative(LLM_INVOKE, file).split(path.sep)[0]!;
  const layer = LAYERS.findIndex((names) => names.includes(top));
  if (layer < 0) throw new Error(`${top} is in no layer: add it to LAYERS and to README.md`);
  return layer;
}

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    if (d.isDirectory()) return modules(full);
    return d.name.endsWith(".ts") && !d.name.endsWith(".test.ts") ? [full] : [];
  });
}

/** Relative specifiers a module names: static, type-only, re-exports and dynamic import(). */
function localImports(file: string): string[] {
  const source = readFileSync(file, "utf8");
  const specs = [
    ...source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gm),
    ...source.matchAll(/\bimport\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => path.resolve(path.dirname(file), s)).filter((t) => t.startsWith(LLM_INVOKE + path.sep));
}

describe("llm-invoke's layers", () => {
  const own = modules(LLM_INVOKE).filter((f) => !f.endsWith("test-fixtures.ts"));

  it("every module is in a layer", () => {
    expect(own.length).toBeGreaterThan(40);
    for (const file of own) expect(() => layerOf(file)).not.toThrow();
  });

  it("no module imports from a higher layer", () => {
    const upward = own.flatMap((file) =>
      localImports(file)
        .filter((target) => layerOf(target) > layerOf(file))
        .map((target) => `${path.relative(LLM_INVOKE, file)} -> ${path.relative(LLM_INVOKE, target)}`)
    );
    expect(upward).toEqual([]);
  });
});

interface DenoInfo {
  modules: Array<
    { specifier: string; dependencies?: Array<{ code?: { specifier: string }; type?: { specifier: string } }> }
  >;
}

/** Every strongly connected set of more than one module (or a module importing itself). */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const set: string[] = [];
      let w: string;
      do set.push(w = stack.pop()!); while (w !== v);
      if (set.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(set);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("the functions' import graph as Deno reads it", () => {
  const functions = readdirSync(FUNCTIONS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith("_") && !d.name.startsWith("."))
    .map((d) => d.name);

  it.each(functions)("%s has no import circle", (name) => {
    const dir = path.join(FUNCTIONS, name);
    const info = JSON.parse(
      execFileSync(denoBin(), ["info", "--json", "--config", path.join(dir, "deno.json"), path.join(dir, "index.ts")], {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      }),
    ) as DenoInfo;
    const local = (s: string) => s.startsWith("file://") && fileURLToPath(s).startsWith(FUNCTIONS + path.sep);
    const graph = new Map<string, string[]>();
    for (const m of info.modules.filter((m) => local(m.specifier))) {
      const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
        .filter((s): s is string => s !== undefined && local(s));
      graph.set(
        path.relative(FUNCTIONS, fileURLToPath(m.specifier)),
        deps.map((s) => path.relative(FUNCTIONS, fileURLToPath(s))),
      );
    }
    expect(graph.size).toBeGreaterThan(1); // Deno did read the graph
    expect(circles(graph)).toEqual([]);
  });
});
