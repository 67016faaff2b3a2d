// Helpers of the tests that hold every copy of a closed list (supabase/functions/_shared/vocabulary.ts)
// equal to it: compare as sets, and say where a copy is written.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../../shared/db/migrate.ts";

export interface ListDifference {
  /** The file (and the place in it) that holds the copy. */
  place: string;
  /** In the list, not in the copy. */
  missing: string[];
  /** In the copy, not in the list. */
  extra: string[];
}

/** How `copy` differs from `list`, as sets; `{place, missing: [], extra: []}` when equal. */
export function difference(place: string, list: readonly string[], copy: readonly string[]): ListDifference {
  return {
    place,
    missing: list.filter((x) => !copy.includes(x)),
    extra: [...new Set(copy)].filter((x) => !list.includes(x)),
  };
}

/** The equal answer of difference(), to compare against: the failure then shows the place and the values. */
export function same(place: string): ListDifference {
  return { place, missing: [], extra: [] };
}

const SCHEMAS = path.join(repoRoot, "supabase", "schemas");

/** The schema file (repository path) whose text contains `text`, e.g. "CONSTRAINT x_check" or "FUNCTION public.f(". */
export function schemaFileWith(text: string): string {
  const files = readdirSync(SCHEMAS).filter((f) => f.endsWith(".sql")).sort();
  const found = files.find((f) => readFileSync(path.join(SCHEMAS, f), "utf8").includes(text));
  return found === undefined ? `supabase/schemas/ (no file has "${text}")` : `supabase/schemas/${found}`;
}

/** The values of a check constraint's text array: `'{a,b}'::text[]` or `ARRAY['a'::text, 'b'::text]`. */
export function checkValues(definition: string): string[] {
  const constant = /'\{([^}]*)\}'::text\[\]/.exec(definition);
  if (constant !== null) return constant[1]!.split(",").map((v) => v.trim().replace(/^"|"$/g, ""));
  return [...definition.matchAll(/'([^']*)'::text/g)].map((m) => m[1]!);
}

/** The quoted strings of a SQL list, `('a', 'b')` or `array['a', 'b']`. */
export function sqlStrings(list: string): string[] {
  return [...list.matchAll(/'([^']*)'/g)].map((m) => m[1]!);
}
