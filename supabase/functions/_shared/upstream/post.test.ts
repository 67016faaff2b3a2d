// Every call to a provider under _shared/ that is not a GET goes through postOnce (post.ts), the one
// POST nothing below the attempt loop can send twice. A `fetch` anywhere else under _shared/ fails
// this check, but for the GETs it names: model checks and model lists, which are not billed.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Where `fetch` may be called: a file under _shared/ and the function that calls it. */
const ALLOWED: ReadonlyArray<{ file: string; inFunction: string; why: string }> = [
  { file: "upstream/post.ts", inFunction: "postOnce", why: "the one POST" },
  { file: "upstream/call.ts", inFunction: "fetchModel", why: "GET: whether a key sees a model" },
  { file: "providers/google/models.ts", inFunction: "*", why: "GET: Google's model list" },
  { file: "providers/openai/models.ts", inFunction: "*", why: "GET: OpenAI's model list" },
  { file: "providers/anthropic/models.ts", inFunction: "*", why: "GET: Anthropic's model list" },
];

function modulesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return modulesUnder(full);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [full] : [];
  });
}

/** The source without its comments (so that prose naming `fetch` is not a call). */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

interface Use {
  file: string;
  inFunction: string;
  /** The call's text, to its closing parenthesis: a GET sets no method. */
  call: string;
}

/** Every use of `fetch` (a call, or the function passed on) in a module, with its enclosing function. */
function usesOf(file: string): Use[] {
  const text = code(readFileSync(file, "utf8"));
  return [...text.matchAll(/\bfetch\b/g)].map((m) => {
    const before = text.slice(0, m.index);
    const enclosing = [...before.matchAll(/\bfunction\*?\s+(\w+)/g)].pop()?.[1] ?? "(module)";
    return {
      file: path.relative(SHARED, file).split(path.sep).join("/"),
      inFunction: enclosing,
      call: callText(text, m.index),
    };
  });
}

/** From `at` to the parenthesis that closes the first one opened after it. */
function callText(text: string, at: number): string {
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return text.slice(at, i + 1);
  }
  return text.slice(at);
}

const uses = modulesUnder(SHARED).flatMap(usesOf);

describe("a provider's POST", () => {
  it("goes through postOnce: no fetch under _shared/ but the one POST and the named GETs", () => {
    const around = uses
      .filter((u) => !ALLOWED.some((a) => a.file === u.file && (a.inFunction === "*" || a.inFunction === u.inFunction)))
      .map((u) => `${u.file} (${u.inFunction}): ${u.call.slice(0, 80)}`);
    expect(around, "use postOnce (upstream/post.ts) for a POST to a provider").toEqual([]);
  });

  it("the allowed GETs stay GETs: each sets no method", () => {
    const gets = uses.filter((u) =>
      u.file !== "upstream/post.ts" &&
      ALLOWED.some((a) => a.file === u.file && (a.inFunction === "*" || a.inFunction === u.inFunction))
    );
    expect(gets.length).toBeGreaterThanOrEqual(ALLOWED.length - 1);
    for (const get of gets) expect(get.call, `${get.file} (${get.inFunction})`).not.toMatch(/\bmethod\s*:/);
  });

  it("finds the calls it guards (the scan reads the sources it means to)", () => {
    expect(uses.map((u) => `${u.file}:${u.inFunction}`)).toEqual(
      expect.arrayContaining(["upstream/post.ts:postOnce", "upstream/call.ts:fetchModel"]),
    );
  });
});
