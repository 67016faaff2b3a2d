// Array parameters for a pool that does not look up types (db.ts sets fetch_types: false, which saves
// every new connection a round trip). postgres.js learns how to write arrays only from that look-up;
// without it, `sql.array(["a", "b"])` goes out declared as text with the value "a,b", and a plain
// array whose type the server describes (`${xs}::text[]`) the same way or as "" when empty, which
// Postgres rejects as a malformed array literal. These serializers write a real array literal.
//
// Results are the other half: array columns come back as their text form ("{a,b}"), so queries
// return arrays as jsonb (`coalesce(to_jsonb(x), '[]'::jsonb)`), which postgres.js parses built in.
import type postgres from "postgres";

/** A Postgres array literal: every element quoted (so commas, braces, quotes and "NULL" stay data). */
export function arrayLiteral(values: readonly unknown[]): string {
  return "{" + values.map(element).join(",") + "}";
}

function element(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (Array.isArray(value)) return arrayLiteral(value);
  const text = value instanceof Date ? value.toISOString() : String(value);
  return '"' + text.replaceAll("\\", "\\\\").replaceAll('"', '\\"') + '"';
}

/** An array as its literal, anything else as postgres.js writes text. */
const write = (x: unknown): string => (Array.isArray(x) ? arrayLiteral(x) : "" + x);
const keep = (raw: unknown): unknown => raw;

// Type oids (pg_type): the array types the functions pass, and text, which sql.array declares.
const TEXT = 25;
const ARRAY_TYPES = { bool: 1000, int4: 1007, text: 1009, int8: 1016, uuid: 2951 };

/**
 * The `types` option of the pool. `from: []` leaves every result parser as it is; only parameters
 * are written differently: text (sql.array declares its strings so) and the array types above (a
 * parameter postgres.js could not type, cast by the statement, is written by the described type).
 * A statement passing another array type adds its oid here.
 */
export const ARRAY_PARAMETER_TYPES: Record<string, postgres.PostgresType> = {
  text: { to: TEXT, from: [], serialize: write, parse: keep },
  ...Object.fromEntries(
    Object.entries(ARRAY_TYPES).map(([name, oid]) => [
      `${name}_array`,
      { to: oid, from: [], serialize: write, parse: keep },
    ]),
  ),
};
