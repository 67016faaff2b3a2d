// supabase/schemas/ is applied in name order, and read in it: a file names only what it or an earlier
// file defines (functions, tables, views), so each file can be understood with the ones before it and
// nothing after; and no file, line or function body is longer than a reader takes in. Function bodies are not checked when created (check_function_bodies is off), so
// PostgreSQL would not notice a call upward; this test does.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";

const SCHEMAS = path.join(repoRoot, "supabase", "schemas");
const files = readdirSync(SCHEMAS).filter((f) => f.endsWith(".sql")).sort();
const texts = new Map(files.map((f) => [f, readFileSync(path.join(SCHEMAS, f), "utf8")]));

const DEFINES = [
  /create\s+(?:or\s+replace\s+)?function\s+public\.(\w+)\s*\(/gi,
  /create\s+(?:or\s+replace\s+)?(?:table|view|type|sequence)\s+(?:if\s+not\s+exists\s+)?public\.(\w+)/gi,
];

/** The file that defines each name (its first definition), files in name order. */
function definitions(texts: Map<string, string>): Map<string, string> {
  const defined = new Map<string, string>();
  for (const [file, text] of texts) {
    for (const pattern of DEFINES) {
      for (const m of text.matchAll(pattern)) if (!defined.has(m[1]!)) defined.set(m[1]!, file);
    }
  }
  return defined;
}

/** Each name a file uses that a later file defines. Comments may point anywhere: that is how they explain. */
function upwardNames(texts: Map<string, string>): string[] {
  const defined = definitions(texts);
  const upward = new Set<string>();
  for (const [file, text] of texts) {
    for (const m of text.replace(/--[^\n]*/g, "").matchAll(/public\.(\w+)/g)) {
      const home = defined.get(m[1]!);
      if (home !== undefined && home > file) upward.add(`${file} names ${m[1]} of ${home}`);
    }
  }
  return [...upward].sort();
}

interface FunctionText {
  header: string;
  body: string;
}

/** Each function's header (up to its body) and body, comments removed. */
function functionTexts(texts: Map<string, string>): Map<string, FunctionText> {
  const found = new Map<string, FunctionText>();
  for (const text of texts.values()) {
    const pattern = /create\s+(?:or\s+replace\s+)?function\s+public\.(\w+)\s*\(([\s\S]*?)\bas\s+(\$\w*\$)([\s\S]*?)\3/gi;
    for (const m of text.replace(/--[^\n]*/g, "").matchAll(pattern)) found.set(m[1]!, { header: m[2]!, body: m[4]! });
  }
  return found;
}

/** The longest a function body may be: the lines between its dollar quotes, as ../shared/tools/sql-shape counts. */
const BODY_LINES = 80;
/** The longest a schema file may be. */
const FILE_LINES = 600;

/**
 * Named exceptions to those lengths, each with its reason (as a `deno-lint-ignore` names its rule beside
 * the code it excuses): a function or file a change would take past its rule and that is not split by
 * concept (CONTRIBUTING.md, "A body's length"). An exception that no longer exceeds its rule fails the test.
 */
const LONGER_BODIES: Readonly<Record<string, string>> = {};
const LONGER_FILES: Readonly<Record<string, string>> = {};

/** Each function's body length in lines (comments included), with its name, longest first. */
function bodyLengths(texts: Map<string, string>): [name: string, lines: number][] {
  const out: [string, number][] = [];
  for (const text of texts.values()) {
    for (const m of text.matchAll(/create\s+(?:or\s+replace\s+)?function\s+public\.(\w+)\s*\(/gi)) {
      const tag = /\$[a-zA-Z_]*\$/.exec(text.slice(m.index + m[0].length));
      if (!tag) continue;
      const start = m.index + m[0].length + tag.index + tag[0].length;
      const end = text.indexOf(tag[0], start);
      out.push([m[1]!, text.slice(start, end < 0 ? text.length : end).split("\n").length - 1]);
    }
  }
  return out.sort((a, b) => b[1] - a[1]);
}

/**
 * Functions a request's statements reach (from the RPCs llm-invoke calls per request) that PostgreSQL
 * plans again on every call: SQL functions it cannot inline (a SET clause, SECURITY DEFINER, or a
 * row as the result). Before PostgreSQL 18 such a function's plan lives for one statement only; a
 * PL/pgSQL function keeps its plans for the session.
 */
function replannedOnEveryCall(texts: Map<string, string>, entries: string[]): string[] {
  const fns = functionTexts(texts);
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name) || !fns.has(name)) continue;
    seen.add(name);
    for (const m of fns.get(name)!.body.matchAll(/public\.(\w+)\s*\(/g)) todo.push(m[1]!);
  }
  return [...seen].filter((name) => {
    const h = fns.get(name)!.header.toLowerCase();
    return /language\s+sql\b/.test(h) &&
      (/\bset\s+search_path\b/.test(h) || /security\s+definer/.test(h) ||
        /returns\s+(record|public\.\w+)\s/.test(h) || /\bout\s+\w+/.test(h));
  }).sort();
}

/** What llm-invoke calls for every request (store/pg-store.ts). */
const PER_REQUEST = [
  "google_ai_reserve_models", "google_ai_answer_quota", "google_ai_finalize", "google_ai_release",
  "google_ai_end_request", "google_ai_cooldown_cause",
  "google_ai_step_causes",
  "google_ai_cooldown_for_cause",
];

describe("supabase/schemas in call order", () => {
  it("reads every file and what it defines", () => {
    expect(files.length).toBeGreaterThan(10);
    expect(definitions(texts).size).toBeGreaterThan(100);
  });

  it("names in each file only what that file or an earlier one defines", () => {
    expect(upwardNames(texts)).toEqual([]);
  });

  it(`keeps each file within ${FILE_LINES} lines and each line under 121 characters (a file read in one sitting)`, () => {
    const lines = new Map([...texts].map(([file, text]) => [file, text.split("\n").length]));
    const long = [...lines].filter(([file, n]) => n > FILE_LINES && !(file in LONGER_FILES)).map(([file]) => file);
    expect(Object.keys(LONGER_FILES).filter((file) => !((lines.get(file) ?? 0) > FILE_LINES)), "stale exceptions").toEqual([]);
    const wide = [...texts].flatMap(([file, text]) =>
      text.split("\n").flatMap((line, i) => (line.length > 120 ? [`${file}:${i + 1}`] : []))
    );
    expect({ long, wide }).toEqual({ long: [], wide: [] });
  });

  it(`keeps each function body within ${BODY_LINES} lines (a step read at once; a longer one is split into named steps)`, () => {
    const lengths = bodyLengths(texts);
    expect(lengths.length).toBeGreaterThan(100);
    expect(lengths.filter(([name, n]) => n > BODY_LINES && !(name in LONGER_BODIES))).toEqual([]);
    const over = new Set(lengths.filter(([, n]) => n > BODY_LINES).map(([name]) => name));
    expect(Object.keys(LONGER_BODIES).filter((name) => !over.has(name)), "stale exceptions").toEqual([]);
    // Counted as sql-shape counts: the newlines between the dollar quotes.
    const sample = new Map([["10_a.sql", "create function public.f() returns int language sql as $f$\n" +
      "select 1\n".repeat(BODY_LINES) + "$f$;"]]);
    expect(bodyLengths(sample)).toEqual([["f", BODY_LINES + 1]]);
  });

  it("plans a request's helpers once per session: none is a SQL function PostgreSQL cannot inline", () => {
    const fns = functionTexts(texts);
    for (const entry of PER_REQUEST) expect(fns.has(entry), entry).toBe(true);
    expect(replannedOnEveryCall(texts, PER_REQUEST)).toEqual([]);
  });

  it("finds a SQL helper with a SET clause under an entry, and not an inlinable one", () => {
    const sample = new Map([
      ["10_a.sql", "create function public.helper() returns int language sql set search_path to '' as $$ select 1 $$;\n" +
        "create function public.inlined() returns int language sql stable as $$ select 2 $$;"],
      ["20_b.sql", "create function public.entry() returns int language plpgsql as $$ begin\n" +
        "  return public.helper() + public.inlined(); end $$;"],
    ]);
    expect(replannedOnEveryCall(sample, ["entry"])).toEqual(["helper"]);
  });

  it("finds a call to a later file, and not one in a comment", () => {
    const sample = new Map([
      ["10_a.sql", "-- see public.later()\ncreate function public.early() returns int as $$ select public.later() $$;"],
      ["20_b.sql", "create or replace function public.later() returns int as $$ select 1 $$;"],
    ]);
    expect(upwardNames(sample)).toEqual(["10_a.sql names later of 20_b.sql"]);
    sample.set("10_a.sql", "-- see public.later()\ncreate function public.early() returns int as $$ select 2 $$;");
    expect(upwardNames(sample)).toEqual([]);
  });
});
