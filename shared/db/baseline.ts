// The migrations' baseline, generated from supabase/schemas: the same statements, made safe to
// apply to the owner's project (whose production tables already exist, with rows) and to apply
// twice. The hand-edited text lives only in supabase/schemas; `npx tsx scripts/schemas-baseline.ts`
// wrote the baseline when the migrations were re-laid, and it stays as written (later changes are
// migrations of their own): its header carries the SHA-256 of its statements, which
// tests/db/schemas.test.ts checks, so a hand edit shows.
//
// What changes, statement by statement (everything else is already idempotent in the schema files:
// CREATE OR REPLACE FUNCTION/VIEW/TRIGGER, CREATE INDEX/SEQUENCE IF NOT EXISTS, COMMENT, GRANT, REVOKE):
//   CREATE TABLE t (...)             CREATE TABLE IF NOT EXISTS t (...); for the owner's production
//                                    tables, every column again as ALTER TABLE t ADD COLUMN IF NOT
//                                    EXISTS and every constraint written in its body as a guarded ADD
//                                    CONSTRAINT (an adopted table gains what it lacks; nothing is
//                                    dropped or rewritten), and its storage options as ALTER TABLE t
//                                    SET (...).
//                                    The gateway's own tables exist only in the shape the baseline
//                                    gives them, so creating them if missing is enough.
//   ALTER TABLE [ONLY] t ADD CONSTRAINT c ... only if t has no constraint named c yet, through one
//                                    session-local function defined at the top (PostgreSQL has no ADD
//                                    CONSTRAINT IF NOT EXISTS); a foreign key of an owner's table NOT
//                                    VALID, validated by the rows migration once the rows it names exist
//   CREATE CONSTRAINT TRIGGER g ON t ...      after DROP TRIGGER IF EXISTS g ON t (no OR REPLACE for it)
//   CREATE [UNIQUE] INDEX i ON ...   CREATE [UNIQUE] INDEX IF NOT EXISTS i ON ... (where a schema file
//                                    leaves it out)
//   CREATE TYPE t AS ...             only if no type t exists yet (no IF NOT EXISTS for it); a type
//                                    in an older shape is changed by a migration of its own
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { listSchemaFiles, migrationsDir, repoRoot } from "./migrate.ts";

/** The baseline migration: supabase/schemas made idempotent and adopting. */
/** The owner's production tables (20261122000000_adopt_production_tables.sql): they may exist in an older shape. */
export const ADOPTED_TABLES = ["google_ai_api_keys", "google_ai_model_limits", "google_ai_usage_counters",
  "google_ai_maintenance_log", "token_usage"].map((t) => `public.${t}`);
export const BASELINE_FILE = path.join(migrationsDir, "20261122000100_baseline.sql");

export async function baselineText(): Promise<string> {
  const parts: string[] = [];
  for (const file of await listSchemaFiles()) {
    const text = await readFile(file, "utf8");
    parts.push(`-- ${"=".repeat(96)}\n-- ${path.relative(repoRoot, file)}\n-- ${"=".repeat(96)}\n`);
    parts.push(splitStatements(text).map(adopting).join("\n\n"));
  }
  const body = CONSTRAINT_ONCE + "\n" + parts.join("\n") + "\n";
  return HEADER + `-- sha256 of what follows: ${sha256(body)}\n` + body;
}

/** Whether a baseline's statements are still those its generator wrote (the header's hash). */
export function baselineIntact(text: string): boolean {
  const m = /^-- sha256 of what follows: ([0-9a-f]{64})\n/m.exec(text);
  return m !== null && sha256(text.slice(m.index + m[0].length)) === m[1];
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

const HEADER = `-- GENERATED from supabase/schemas by \`npx tsx scripts/schemas-baseline.ts\` when a release
-- squashed the migrations: never edit it. A change is an edit of supabase/schemas plus a later migration
-- holding only that change (supabase/MIGRATIONS.md).
-- The baseline: every schema file in name order, made safe for a project that already has the
-- owner's production tables (20261122000000_adopt_production_tables.sql ran first) and safe to
-- apply twice.
`;

function adopting(statement: string): string {
  const code = stripLeadingComments(statement);
  const table = /^CREATE TABLE (public\.\w+) \(\n([\s\S]*)\n\)(\s*WITH \(([^)]*)\))?;$/.exec(code);
  if (table && ADOPTED_TABLES.includes(table[1])) {
    const [, name, body, , options] = table;
    const lead = statement.slice(0, statement.length - code.length);
    const items = splitTopLevel(body).map((c) => c.trim());
    const columns = items.filter((c) => !/^CONSTRAINT /.test(c));
    const constraints = items.filter((c) => /^CONSTRAINT /.test(c));
    return [
      lead + code.replace(/^CREATE TABLE /, "CREATE TABLE IF NOT EXISTS "),
      ...columns.map((c) => `ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${c};`),
      ...constraints.map((c) => guardedConstraint(name, /^CONSTRAINT (\w+)/.exec(c)![1], `ALTER TABLE ${name} ADD ${notValidOnAdopted(name, c)};`)),
      ...(options ? [`ALTER TABLE ${name} SET (${options});`] : []),
    ].join("\n");
  }
  if (table) return statement.replace(/^(\s*(--[^\n]*\n)*\s*)CREATE TABLE /, "$1CREATE TABLE IF NOT EXISTS ");
  const constraint = /^ALTER TABLE (?:ONLY )?(public\.\w+)\s+ADD CONSTRAINT (\w+)\s([\s\S]*);$/.exec(code);
  if (constraint) {
    return guardedConstraint(constraint[1], constraint[2], ADOPTED_TABLES.includes(constraint[1]) ? notValidOnAdopted(constraint[1], code.slice(0, -1)) + ";" : code);
  }
  const type = /^CREATE TYPE (public\.\w+) AS /.exec(code);
  if (type) {
    const lead = statement.slice(0, statement.length - code.length);
    return `${lead}DO $type$\nBEGIN\n  IF pg_catalog.to_regtype('${type[1]}') IS NULL THEN\n    ${code}\n  END IF;\nEND\n$type$;`;
  }
  const trigger = /^CREATE CONSTRAINT TRIGGER (\w+) [\s\S]*? ON (public\.\w+)\s/.exec(code);
  if (trigger) return `DROP TRIGGER IF EXISTS ${trigger[1]} ON ${trigger[2]};\n${statement}`;
  if (/^CREATE (UNIQUE )?INDEX (?!IF NOT EXISTS )\w+ ON /.test(code)) {
    return statement.slice(0, statement.length - code.length) + code.replace(/^CREATE (UNIQUE )?INDEX /, "CREATE $1INDEX IF NOT EXISTS ");
  }
  return statement;
}

// Adds a constraint unless its table already has one of that name. In pg_temp: it lives only as long as
// the migration's session and leaves nothing behind in the project.
const CONSTRAINT_ONCE = `CREATE OR REPLACE FUNCTION pg_temp.add_constraint_once(p_table regclass, p_name text, p_statement text)
RETURNS void LANGUAGE plpgsql AS $baseline$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = p_table AND conname = p_name) THEN
    EXECUTE p_statement;
  END IF;
END
$baseline$;
`;

/**
 * A foreign key added to one of the owner's tables is added NOT VALID: its rows may name what only the
 * rows migration (20261122000200_rows_and_schedule.sql) inserts (the built-in providers), which then
 * validates it. On a table the baseline creates the key comes with the table, valid.
 */
function notValidOnAdopted(table: string, constraint: string): string {
  return ADOPTED_TABLES.includes(table) && /\bFOREIGN KEY\b/.test(constraint) ? `${constraint} NOT VALID` : constraint;
}

/** A constraint added only if its table has none of that name yet. */
function guardedConstraint(table: string, conname: string, statement: string): string {
  return `SELECT pg_temp.add_constraint_once('${table}', '${conname}',\n  $constraint$${statement}$constraint$);`;
}

function stripLeadingComments(statement: string): string {
  return statement.replace(/^(\s*(--[^\n]*)?\n)*\s*/, "");
}

/** Splits on commas outside parentheses and quotes (a CREATE TABLE body into its columns). */
function splitTopLevel(body: string): string[] {
  const out: string[] = [];
  let depth = 0, start = 0, quote = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quote) { if (c === "'") quote = false; continue; }
    if (c === "'") quote = true;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) { out.push(body.slice(start, i)); start = i + 1; }
  }
  out.push(body.slice(start));
  return out;
}

/**
 * A SQL script's statements, each with the comments before it, split on `;` outside quotes,
 * dollar quotes and comments.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let start = 0, i = 0;
  while (i < text.length) {
    if (text.startsWith("--", i)) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
      continue;
    }
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      i = end < 0 ? text.length : end + 1;
      continue;
    }
    const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i, i + 64));
    if (tag) {
      const end = text.indexOf(tag[0], i + tag[0].length);
      i = end < 0 ? text.length : end + tag[0].length;
      continue;
    }
    if (c === ";") {
      out.push(text.slice(start, i + 1).replace(/^\n+/, ""));
      start = i + 1;
    }
    i++;
  }
  const rest = text.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}
