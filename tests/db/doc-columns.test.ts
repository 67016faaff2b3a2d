// The docs' column tables held to the schema, as the vocabulary tests hold the refusal causes. A table
// in docs/ marked `<!-- columns of public.T -->` names every column of T in its first cells (backticked),
// and nothing that is not one; one marked `<!-- some columns of public.T -->` (an example row, a log
// row's fields) names only columns T has. docs/architecture.md's table of tables names every table of
// the public schema, and for the owner's five tables every column the gateway added to production's
// shape (tests/support/production-tables.ts), or the doc whose full column table holds them.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sql } from "../../shared/db/migrate.ts";
import { ADOPTED_TABLES } from "../../shared/db/baseline.ts";
import { createProductionTables } from "../support/production-tables.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const docsDir = path.join(process.cwd(), "docs");
const docs = readdirSync(docsDir).filter((f) => f.endsWith(".md")).map((f) => path.join("docs", f));

interface MarkedTable {
  doc: string;
  table: string;
  full: boolean;
  /** Per row of the markdown table: the names its first cell gives. */
  rows: string[][];
}

/** The names a first cell gives: its backticked words, else its words split on `/` and `,`. */
function cellNames(cell: string): string[] {
  const ticked = [...cell.matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((m) => m[1]!);
  if (ticked.length) return ticked;
  return cell.split(/[/,]/).map((w) => w.trim()).filter((w) => /^[a-z_][a-z0-9_]*$/.test(w));
}

function markedTables(): MarkedTable[] {
  const out: MarkedTable[] = [];
  for (const doc of docs) {
    const lines = readFileSync(doc, "utf8").split("\n");
    lines.forEach((line, i) => {
      const m = /^<!-- (some )?columns of public\.(\w+) -->$/.exec(line.trim());
      if (!m) return;
      let at = i + 1;
      while (lines[at]?.trim() === "") at++;
      const rows: string[][] = [];
      for (at += 2; lines[at]?.startsWith("|"); at++) rows.push(cellNames(lines[at]!.split("|")[1]!));
      out.push({ doc, table: m[2]!, full: !m[1], rows });
    });
  }
  return out;
}

async function columnsOf(sql: Sql): Promise<Map<string, string[]>> {
  const rows = await sql<{ table: string; columns: string[] }[]>`
    select c.relname as table, array_agg(a.attname::text order by a.attnum) as columns
    from pg_catalog.pg_class c join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
    group by c.relname`;
  return new Map(rows.map((r) => [r.table, r.columns]));
}

const cleanups: (() => Promise<void>)[] = [];
let db: TestDatabase;
let schema: Map<string, string[]>;
let production: Map<string, string[]>;
beforeAll(async () => {
  db = await freshDatabase("doc_columns");
  cleanups.push(() => db.drop());
  schema = await columnsOf(db.sql);
  const owner = await emptySupabaseDatabase("doc_columns_production", cleanups);
  await createProductionTables(owner);
  production = await columnsOf(owner);
});
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe("the docs' column tables", () => {
  it("are found (the marks are read)", () => {
    const tables = markedTables();
    expect(tables.filter((t) => t.full).map((t) => t.table)).toEqual(expect.arrayContaining(
      ["google_ai_model_limits", "google_ai_providers", "google_ai_model_prices", "google_ai_service_tiers"]));
    for (const t of tables) expect(t.rows.flat().length, `${t.doc}: ${t.table}'s table has rows`).toBeGreaterThan(0);
  });

  it("name only columns the schema has, and every column where they say they are whole", () => {
    const wrong: string[] = [];
    for (const t of markedTables()) {
      const columns = schema.get(t.table);
      if (!columns) {
        wrong.push(`${t.doc}: public.${t.table} is no table of the schema`);
        continue;
      }
      const named = new Set(t.rows.flat());
      for (const n of named) if (!columns.includes(n)) wrong.push(`${t.doc}: ${t.table}.${n} is no column`);
      if (t.full) for (const c of columns) if (!named.has(c)) wrong.push(`${t.doc}: ${t.table}.${c} is not documented`);
    }
    expect(wrong).toEqual([]);
  });

  it("docs/architecture.md names every table, and what the gateway added to the owner's tables", () => {
    const text = readFileSync(path.join(docsDir, "architecture.md"), "utf8");
    const start = text.indexOf("| table | role | gateway additions |");
    expect(start).toBeGreaterThan(0);
    const rows = text.slice(start).split("\n").slice(2).filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith("|")))
      .map((l) => l.split("|").map((c) => c.trim()));
    const listed = new Map<string, string>();
    for (const [, first, , additions] of rows) for (const t of cellNames(first!)) listed.set(t, additions!);
    expect([...schema.keys()].filter((t) => !listed.has(t)).sort(), "tables missing from the list").toEqual([]);
    expect([...listed.keys()].filter((t) => !schema.has(t)), "listed tables that do not exist").toEqual([]);
    const fullTables = new Map(markedTables().filter((t) => t.full).map((t) => [t.table, t.doc]));
    const unsaid: string[] = [];
    for (const table of ADOPTED_TABLES.map((t) => t.replace(/^public\./, ""))) {
      const cell = listed.get(table)!;
      const elsewhere = fullTables.get(table);
      if (elsewhere && cell.includes(path.basename(elsewhere))) continue; // every column is in that doc's table
      const named = new Set(cellNames(cell).concat([...cell.matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((m) => m[1]!)));
      for (const c of schema.get(table)!) if (!production.get(table)!.includes(c) && !named.has(c)) unsaid.push(`${table}.${c}`);
    }
    expect(unsaid, "columns the gateway added to the owner's tables that docs/architecture.md does not name").toEqual([]);
  });
});
