// Statements sent as one text statement: one network round trip through a transaction-mode pooler.
//
// postgres.js sends a statement with parameters in two flights when it cannot use a prepared one:
// Parse/Describe/Flush, waits for the parameter types, then Bind/Execute/Sync (postgres 3.4.9,
// src/connection.js: `describeFirst = parameters.length && !prepared`). A transaction-mode pooler
// (Supavisor on port 6543, PgBouncer) keeps no prepared statements, so there every call would cost
// two round trips, whatever the parameters' declared types. A statement without parameters is sent
// in one flight (Parse/Bind/Execute/Sync of an unnamed statement). So, on a pooler, the values are
// written into the statement as literals here, and the text goes out through `sql.unsafe`.
//
// Literals keep the parameters' meaning: text is an escape string (E'…', read the same whatever
// standard_conforming_strings says) with no type of its own, as an untyped parameter; booleans,
// dates, `sql.array` and `sql.json` keep the types postgres.js would have declared. A NUL cannot be
// in a PostgreSQL text value: it is refused with the server's own error code, as before.
import type postgres from "postgres";
import { arrayLiteral } from "./pg-arrays.ts";

type Sql = postgres.Sql;

const ARRAY = Symbol("array");
const JSON_VALUE = Symbol("json");

/** A statement or a fragment of one, with its values already written in. */
class InlineStatement {
  constructor(readonly text: string, private readonly sql: Sql) {}
  #pending?: Promise<postgres.RowList<postgres.Row[]>>;
  /** Sent once, when first awaited (as postgres.js queries are). */
  private send() {
    return this.#pending ??= this.sql.unsafe(this.text, [], { prepare: false, simple: false } as never)
      .then((rows) => rows);
  }
  then<A, B>(ok?: (rows: postgres.RowList<postgres.Row[]>) => A, fail?: (e: unknown) => B) {
    return this.send().then(ok, fail);
  }
  catch<B>(fail: (e: unknown) => B) {
    return this.send().catch(fail);
  }
  finally(f: () => void) {
    return this.send().finally(f);
  }
}

class NulInText extends Error {
  readonly code = "22021"; // character_not_in_repertoire, as the server answers a NUL in a parameter
  constructor() {
    super('invalid byte sequence for encoding "UTF8": 0x00');
  }
}

/** A text literal with no type of its own, as an untyped parameter. */
export function textLiteral(value: string): string {
  if (value.includes("\0")) throw new NulInText();
  return "E'" + value.replaceAll("\\", "\\\\").replaceAll("'", "''") + "'";
}

/** One value of a tagged template as SQL text. */
export function literal(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof InlineStatement) return value.text;
  switch (typeof value) {
    case "string":
      return textLiteral(value);
    case "number":
    case "bigint":
      return textLiteral(String(value));
    case "boolean":
      return value ? "true" : "false";
  }
  if (Array.isArray(value)) return textLiteral(arrayLiteral(value)); // as pg-arrays.ts writes a plain array
  if (value instanceof Date) return textLiteral(value.toISOString()) + "::timestamptz";
  const tagged = value as { [ARRAY]?: readonly unknown[]; [JSON_VALUE]?: unknown };
  if (ARRAY in tagged) return textLiteral(arrayLiteral(tagged[ARRAY]!));
  if (JSON_VALUE in tagged) return textLiteral(JSON.stringify(tagged[JSON_VALUE])) + "::jsonb";
  throw new TypeError("a value the one-statement writer cannot write (use sql.array or sql.json)");
}

const isTemplate = (x: unknown): x is TemplateStringsArray => Array.isArray(x) && "raw" in x;

/**
 * `sql` whose tagged-template statements go out as one text statement each (see above); everything
 * else (`begin`, `end`, …) is the pool's own.
 */
export function oneStatementSql(sql: Sql): Sql {
  const tag = (strings: TemplateStringsArray, ...values: unknown[]) => {
    let text = strings[0]!;
    for (let i = 0; i < values.length; i++) text += literal(values[i]) + strings[i + 1]!;
    return new InlineStatement(text, sql);
  };
  return new Proxy(sql, {
    apply(target, self, args: unknown[]) {
      if (isTemplate(args[0])) return tag(args[0], ...args.slice(1));
      return Reflect.apply(target, self, args);
    },
    get(target, key, receiver) {
      if (key === "array") return (values: readonly unknown[]) => ({ [ARRAY]: values });
      if (key === "json") return (value: unknown) => ({ [JSON_VALUE]: value });
      return Reflect.get(target, key, receiver);
    },
  });
}
