// The next migration, written by a tool: the difference between the database the migrations build
// and the one supabase/schemas builds, both on throwaway databases of one server.
//
// @pgkit/migra (a TypeScript port of migra, the diff Supabase's own `db diff` has used) writes the
// statements; then what it gets wrong or leaves out is fixed here:
//   - idempotency: migra's output is rewritten to apply twice (CREATE ... IF NOT EXISTS, DROP ... IF
//     EXISTS, constraints and types added only when missing, policies and triggers dropped before they
//     are created);
//   - access and options: migra writes no function grants, and a view it drops and creates again loses
//     its security_invoker, grants and comments. After its statements are applied to the migrations'
//     database, every function and relation whose grants, options, RLS, comment or definition still
//     differ from the schema files' gets them by name: a revoke from PUBLIC, anon, authenticated and
//     whoever holds it, then the target's grants in the target's order (99_access.sql's least
//     privilege), touching no other object's grants;
//   - a function whose result type changes is dropped first (migra replaces it, which PostgreSQL
//     refuses); a changed signature is migra's own drop and create, so no overload is left behind;
//   - dependents: what depends on a view migra drops (a column added in its middle), a composite type
//     it drops (an attribute added) or a function dropped (its result type or signature changed, or
//     gone), such as a function returning the view's rows or taking the type, or a trigger executing the
//     function, is dropped before it and created again after it from the schema files' definition, in
//     dependency order, with its grants, options and comment (below);
//     what cannot be (a table's column of the view's row type...) is refused, naming it;
//   - a new type is created before the functions (migra sorts them by name: a function taking it came first);
//   - pg-promise's warning on stdout (two clients of one server) is silenced, and migra reads the
//     definitions with an empty search_path, so views name every object with its schema;
//   - the owner's data: a statement that would drop one of the owner's tables or columns, or rewrite a
//     column's type, is refused (the change needs a hand-written migration).
// The result is checked before it is returned: applied twice to the migrations' database, that
// database must describe the same as the schema files' (shared/db/schema-description.ts); what still
// differs is returned by name.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { createClient } from "@pgkit/client";
import { Migration } from "@pgkit/migra";
import { ADOPTED_TABLES, splitStatements } from "./baseline.ts";
import {
  applyMigrations,
  applySchemas,
  applySupabaseBootstrap,
  connect,
  databaseUrl,
  dropDatabase,
  listMigrations,
  migrationsDir,
  quoteIdent,
  schemasDir,
  type Sql,
} from "./migrate.ts";
import { describeDifferences, describeSchema } from "./schema-description.ts";

/** What declarative files cannot hold (rows, the pg_cron schedule): applied after the schema files. */
export const ROWS_AND_SCHEDULE = "20261122000200_rows_and_schedule.sql";

export interface SchemaDiff {
  /** The migration's text, or null when the two databases are already equal. */
  sql: string | null;
  /** migra's statements, made idempotent. */
  statements: string[];
  /** The statements added after migra's: grants, view options, comments, definitions it missed. */
  fixups: string[];
  /** What still differs after the migration was applied twice (empty when it is complete). */
  remaining: string[];
}

/** A change the generator will not write: it would drop or rewrite the owner's data. */
export class OwnersDataRefused extends Error {}

/**
 * Builds both databases on the server, diffs them and drops them again. `schemas` reads the schema
 * files from another folder (a copy being edited); `migrations` likewise.
 */
export async function diffSchemas(
  serverUrl: string,
  { schemas = schemasDir, migrations = migrationsDir, what }: { schemas?: string; migrations?: string; what?: string } =
    {},
): Promise<SchemaDiff> {
  const suffix = Math.random().toString(16).slice(2, 10);
  const from = `diff_from_${suffix}`, target = `diff_target_${suffix}`;
  try {
    // One after the other: both create the same roles, which belong to the server.
    const fromUrl = await buildDatabase(serverUrl, from, (sql) => applyMigrations(sql, { dir: migrations }).then(() => {}));
    const targetUrl = await buildDatabase(serverUrl, target, (sql) =>
      applySchemas(sql, { dir: schemas, migrations: [path.join(migrations, ROWS_AND_SCHEDULE)] }));
    return await diffDatabases(fromUrl, targetUrl, what);
  } finally {
    await Promise.all([dropDatabase(serverUrl, from), dropDatabase(serverUrl, target)]);
  }
}

/** An empty Supabase-like database `name` on the server, then `build` applied to it. */
export async function buildDatabase(serverUrl: string, name: string, build: (sql: Sql) => Promise<void>): Promise<string> {
  const admin = connect(serverUrl, { max: 1 });
  try {
    await admin.unsafe(`create database ${quoteIdent(name)}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(serverUrl, name);
  await applySupabaseBootstrap(url);
  const sql = connect(url, { max: 1 });
  try {
    await build(sql);
  } finally {
    await sql.end();
  }
  return url;
}

/**
 * The migration that takes `fromUrl`'s database to `targetUrl`'s; `what` (what it changes, in words)
 * goes in its header. Leaves `fromUrl`'s database changed: the migration is applied to it twice, to check it.
 */
export async function diffDatabases(fromUrl: string, targetUrl: string, what?: string): Promise<SchemaDiff> {
  const header = migrationHeader(what);
  const from = connect(fromUrl, { max: 1 });
  const target = connect(targetUrl, { max: 1 });
  try {
    // migra replaces a function whose result type changed, which PostgreSQL refuses: drop it first.
    const [had, wanted] = await Promise.all([objectStates(from), objectStates(target)]);
    const resultChanged = [...wanted].filter(([name, f]) => f.kind === "function" && had.has(name) && had.get(name)!.result !== f.result)
      .map(([name]) => name);
    const migra = checksLast(typesFirst(typeDropsInOrder(await migraStatements(fromUrl, targetUrl)))).map(idempotent);
    refuseOwnersData(migra);
    // What the dropped views and functions leave behind, dropped before them and created after them.
    const dropped = {
      views: migra.flatMap((s) => /^drop view if exists (\S+);$/i.exec(s)?.[1] ?? []),
      types: migra.flatMap((s) => /^drop type if exists (\S+);$/i.exec(s)?.[1] ?? []),
      functions: [...resultChanged, ...[...had].filter(([name, f]) => f.kind === "function" && !wanted.has(name)).map(([name]) => name)],
    };
    const dependents = await dependentsToRecreate(from, target, wanted, dropped, migra);
    // A new function taking or returning a type migra drops and creates again: on a second run it exists
    // and would block the drop, so it is dropped first (migra's statement creates it again).
    const newOnDropped = [...wanted].filter(([name, f]) => f.kind === "function" && !had.has(name) &&
      dropped.types.some((t) => new RegExp(`${unquotedName(t).replaceAll(".", "\\.")}(?!\\w)`)
        .test(`${unquotedName(name)} ${unquotedName(f.result ?? "")}`)))
      .map(([name]) => `drop function if exists ${name};`);
    const statements = [...newOnDropped, ...dependents.drops, ...resultChanged.map((name) => `drop function if exists ${name};`), ...migra,
      ...dependents.creates];
    await applyScript(from, [header, ...statements].join("\n\n"));
    const fixups = await alignAccessAndOptions(from, target);
    if (statements.length === 0 && fixups.length === 0) {
      return { sql: null, statements, fixups, remaining: describeDifferences(await describeSchema(from), await describeSchema(target)) };
    }
    const sql = [header, ...statements, ...(fixups.length ? [FIXUPS_NOTE + fixups.join("\n")] : [])].join("\n\n") + "\n";
    await applyScript(from, fixups.join("\n"));
    await applyScript(from, sql); // the second time: must change nothing
    const remaining = describeDifferences(await describeSchema(from), await describeSchema(target));
    return { sql, statements, fixups, remaining };
  } finally {
    await Promise.all([from.end(), target.end()]);
  }
}

/** A name as PostgreSQL may print it, without its quotes, in lower case. */
function unquotedName(name: string): string {
  return name.replaceAll('"', "").toLowerCase();
}

/** The first words of every migration the command writes. */
export const GENERATED_MARK = "-- Written by `npm run db:diff`";
/** The header line that says what a migration changes: every migration after the baseline has one. */
export const WHAT_MARK = "-- What it changes: ";

/** The header: how the file was written and, when given, what it changes (wrapped to comment lines). */
export function migrationHeader(what?: string): string {
  const lines = [
    `${GENERATED_MARK} from the difference between what the migrations before it build and`,
    "-- what supabase/schemas builds. Applying it twice changes nothing.",
  ];
  const words = (what ?? "").split(/\s+/).filter(Boolean);
  let line = WHAT_MARK.trimEnd();
  for (const word of words) {
    if (line.length + 1 + word.length > 110) {
      lines.push(line);
      line = "--  ";
    }
    line += ` ${word}`;
  }
  if (words.length > 0) lines.push(line);
  return [...lines, "set check_function_bodies = off;"].join("\n");
}
const FIXUPS_NOTE = `-- Grants, view options, comments and definitions as supabase/schemas has them, object by object
-- (no other object's grants are touched).
`;

async function applyScript(sql: Sql, text: string): Promise<void> {
  if (text.trim()) await sql.begin((tx) => tx.unsafe(text).simple());
}

async function migraStatements(fromUrl: string, targetUrl: string): Promise<string[]> {
  // noWarnings: pg-promise otherwise prints a warning on stdout when two clients share a server. An
  // empty search_path: the definitions migra reads back (views') name every object with its schema.
  const options = { pgpOptions: { initialize: { noWarnings: true } } };
  const emptySearchPath = (url: string) => {
    const u = new URL(url);
    u.searchParams.set("options", "-c search_path=");
    return u.toString();
  };
  const from = createClient(emptySearchPath(fromUrl), options);
  const target = createClient(emptySearchPath(targetUrl), options);
  try {
    const migration = await Migration.create(from, target, { schema: "public" });
    migration.set_safety(false); // drops are allowed; the owner's data is guarded by refuseOwnersData
    migration.add_all_changes(true);
    return [...migration.statements].flatMap((s) => splitStatements(s)).map((s) => s.trim())
      // (Its own `set check_function_bodies = off` comes once, in the header.)
      .filter((s) => s && !/^select 1;$/.test(s) && !/^set check_function_bodies = off;$/i.test(s));
  } finally {
    await Promise.all([from.end(), target.end()]);
  }
}

/**
 * migra's statements with every new type created before the first function is: migra sorts them by
 * name, so a function taking a new composite type as a parameter came before the type.
 */
export function typesFirst(statements: string[]): string[] {
  const isType = (s: string) => /^create (type|domain) /i.test(s);
  const firstFunction = statements.findIndex((s) => /^create (or replace )?function /i.test(s));
  if (firstFunction < 0) return statements;
  const before = statements.slice(0, firstFunction), after = statements.slice(firstFunction);
  return [...before, ...after.filter(isType), ...after.filter((s) => !isType(s))];
}

/**
 * migra's statements with its drops of types (each changed type is dropped and created again) in an
 * order PostgreSQL takes: a type whose new definition names another dropped type is dropped before that
 * one, which on the migration's second run it would hold (migra sorts them by name).
 */
export function typeDropsInOrder(statements: string[]): string[] {
  const dropOf = (s: string) => /^drop type (?:if exists )?(\S+);$/i.exec(s)?.[1];
  const slots = statements.flatMap((s, i) => (dropOf(s) ? [i] : []));
  const names = slots.map((i) => dropOf(statements[i]!)!);
  const definition = (name: string) =>
    statements.find((s) => s.toLowerCase().startsWith(`create type ${name.toLowerCase()} `)) ?? "";
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (visiting.has(name)) return;
    visiting.add(name);
    const named = new RegExp(`\\b${unquotedName(name).replaceAll(".", "\\.")}(?!\\w)`);
    for (const other of names) if (other !== name && named.test(unquotedName(definition(other)))) visit(other);
    ordered.push(name);
  };
  names.forEach(visit);
  const out = [...statements];
  slots.forEach((slot, k) => (out[slot] = `drop type ${ordered[k]};`));
  return out;
}

/**
 * migra's statements with the checks it adds (and validates) after its functions: migra writes tables'
 * changes first, and a check may ask a function the same migration creates.
 */
export function checksLast(statements: string[]): string[] {
  const isCheck = (s: string) => /^alter table \S+ (add constraint \S+ check |validate constraint )/i.test(s);
  return [...statements.filter((s) => !isCheck(s)), ...statements.filter(isCheck)];
}

const TABLE = String.raw`("[^"]+"\."[^"]+"|[\w.]+)`;

/** One of migra's statements, written to apply a second time without error or change. */
export function idempotent(statement: string): string {
  const s = statement;
  const rewrites: [RegExp, string][] = [
    [/^create (unlogged )?table (?!if not exists)/i, "create $1table if not exists "],
    [/^drop table (?!if exists)/i, "drop table if exists "],
    [/^drop (type|domain|sequence|materialized view|view) (?!if exists)/i, "drop $1 if exists "],
    [/^create sequence (?!if not exists)/i, "create sequence if not exists "],
    [/^create (unique )?index (?!if not exists)/i, "create $1index if not exists "],
    [new RegExp(`^alter table ${TABLE} add column (?!if not exists)`, "i"), "alter table $1 add column if not exists "],
    [new RegExp(`^alter table ${TABLE} drop column (?!if exists)`, "i"), "alter table $1 drop column if exists "],
    [new RegExp(`^alter table ${TABLE} drop constraint (?!if exists)`, "i"), "alter table $1 drop constraint if exists "],
    [/^drop policy (?!if exists)/i, "drop policy if exists "],
    [/^drop trigger (?!if exists)/i, "drop trigger if exists "],
    [/^(alter type \S+ add value) (?!if not exists)/i, "$1 if not exists "],
  ];
  for (const [pattern, replacement] of rewrites) if (pattern.test(s)) return s.replace(pattern, replacement);

  const constraint = new RegExp(`^alter table ${TABLE} add constraint ("[^"]+"|\\w+) `, "i").exec(s);
  if (constraint) {
    return `do $migration$ begin\n  if not exists (select 1 from pg_catalog.pg_constraint where conrelid = '${constraint[1]}'::regclass\n` +
      `                 and conname = '${unquote(constraint[2]!)}') then\n    ${s}\n  end if;\nend $migration$;`;
  }
  const type = /^create (type|domain) (\S+) /i.exec(s);
  if (type) {
    return `do $migration$ begin\n  if pg_catalog.to_regtype('${type[2]!.replaceAll("'", "''")}') is null then\n    ${s}\n  end if;\nend $migration$;`;
  }
  const policy = new RegExp(`^create policy ("[^"]+"|\\w+)\\s+on ${TABLE}`, "i").exec(s.replace(/^\s+/, ""));
  if (policy) return `drop policy if exists ${policy[1]} on ${policy[2]};\n${s.trim()}`;
  const trigger = new RegExp(`^create (?:constraint )?trigger ("[^"]+"|\\w+) [\\s\\S]*? on ${TABLE} `, "i").exec(s);
  if (trigger) return `drop trigger if exists ${trigger[1]} on ${trigger[2]};\n${s}`;
  return s;
}

function unquote(identifier: string): string {
  return identifier.startsWith('"') ? identifier.slice(1, -1).replaceAll('""', '"') : identifier;
}

/** A change the generator cannot write: what depends on a view or function it must drop is not a view or function. */
export class DependentsRefused extends Error {}

interface Dependent {
  kind: "view" | "function" | "trigger" | "other";
  /**
   * Views `"schema"."name"`, functions as objectStates names them, triggers `"name" on "schema"."table"`,
   * anything else as PostgreSQL describes it.
   */
  name: string;
  oid: number;
}

/**
 * The views and functions that depend on what the migration drops (`dropped`: views and types as migra
 * names them, functions as objectStates does), found in `from` through pg_depend, at any depth: a view
 * reading a dropped view or function, a function taking or returning a dropped view's row type or a
 * dropped type (a composite type migra changes by dropping it and creating it again), or an array of it,
 * and a trigger executing a dropped function (two trigger functions folded into one). PostgreSQL refuses
 * the drop while they exist, so each is dropped first (dependents of dependents before them) and created
 * again last from `target`'s definition, in the opposite order (a trigger only if `target` still has it,
 * and as `target` has it: on its new function); its grants and comment come back with the fixups
 * (alignAccessAndOptions). One that migra drops itself is left to it. Anything else depending on them (a
 * table's column of the row type, a default, a constraint, a policy) cannot be dropped without data or
 * access lost: refused with DependentsRefused, naming it.
 */
async function dependentsToRecreate(from: Sql, target: Sql, wanted: Map<string, ObjectState>,
  dropped: { views: string[]; functions: string[]; types: string[] }, migra: string[]): Promise<{ drops: string[]; creates: string[] }> {
  // (Names as objectStates gives them: read with an empty search_path, every type qualified.)
  const order = await from.begin(async (tx) => {
    await tx.unsafe("set local search_path = ''");
    return dependentsInOrder(tx as unknown as Sql, dropped);
  });
  const others = order.dependents.filter((d) => d.kind === "other");
  if (others.length) {
    throw new DependentsRefused(`refused: ${others.map((d) => `${d.name} depends on ${order.why.get(d.name)}`).join("; ")}, ` +
      "which db:diff drops and creates again only for views, functions and triggers: write this migration by hand, keeping " +
      "those rows (supabase/MIGRATIONS.md).");
  }
  // Every dependent is dropped before the first drop (migra's own drop of one, later, finds it gone);
  // one that migra drops and creates again itself is left to it to create.
  const droppedByMigra = (name: string) => migra.some((s) => s.toLowerCase() === `drop view if exists ${name};`.toLowerCase());
  // A trigger whose definition changed (its new function's name) migra drops and creates itself.
  const unquoted = (s: string) => s.replaceAll('"', "").toLowerCase();
  const triggerByMigra = (name: string) => migra.some((s) => unquoted(s).startsWith(`drop trigger if exists ${unquoted(name)};`));
  const dependents = order.dependents.filter((d) => !(d.kind === "trigger" && triggerByMigra(d.name)));
  const drops = [...dependents].reverse().map((d) => `drop ${d.kind} if exists ${d.name};`);
  const creates: string[] = [];
  for (const d of dependents.filter((d) => !(d.kind === "view" && droppedByMigra(d.name)))) {
    const goal = wanted.get(d.name);
    const text = d.kind === "view" ? await viewDefinition(target, d.name)
      : d.kind === "trigger" ? await triggerDefinition(target, d.name)
      : goal?.kind === "function" ? `${goal.definition!.trim()};` : null;
    if (text) creates.push(text);
  }
  return { drops, creates };
}

/** The dependents of `dropped` in `sql`, each after what it depends on, and what first reached each. */
async function dependentsInOrder(sql: Sql, dropped: { views: string[]; functions: string[]; types: string[] }):
    Promise<{ dependents: Dependent[]; why: Map<string, string> }> {
  const from = sql;
  const roots = await from.unsafe<{ classid: string; oid: number; name: string }[]>(`
    select 'pg_class' as classid, c.oid::int as oid, v.name from unnest($1::text[]) v(name)
      join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(v.name)
    union all
    select 'pg_proc', p.oid::int, format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
    from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) = any($2::text[])
    union all
    select 'pg_type', t.oid::int, v.name from unnest($3::text[]) v(name)
      join pg_catalog.pg_type t on t.oid = pg_catalog.to_regtype(v.name)`,
  [dropped.views, dropped.functions, dropped.types]);
  // Breadth first from the roots; an object met again moves behind the one that reached it.
  const order: Dependent[] = [];
  const why = new Map<string, string>();
  let frontier = roots.map((r) => ({ classid: r.classid, oid: r.oid, name: r.name }));
  for (let depth = 0; frontier.length && depth < 50; depth++) {
    const next: typeof frontier = [];
    for (const object of frontier) {
      for (const d of await directDependents(from, object.classid, object.oid)) {
        if (!why.has(d.name)) why.set(d.name, object.name);
        const at = order.findIndex((o) => o.name === d.name);
        if (at >= 0) order.splice(at, 1);
        order.push(d);
        if (d.kind === "view" || d.kind === "function") next.push({ classid: d.kind === "view" ? "pg_class" : "pg_proc", oid: d.oid, name: d.name });
      }
    }
    frontier = next;
  }
  return { dependents: order, why };
}

/** The views and functions (and anything else) that depend on one object or, for a relation, on its row type. */
async function directDependents(sql: Sql, classid: string, oid: number): Promise<Dependent[]> {
  return sql.unsafe<Dependent[]>(`
    with refs(refclassid, refobjid) as (
      select $1::regclass, $2::oid
      union all
      select 'pg_catalog.pg_type'::regclass, t.oid from pg_catalog.pg_class c join pg_catalog.pg_type t
        on t.oid in (c.reltype, (select rt.typarray from pg_catalog.pg_type rt where rt.oid = c.reltype))
      where $1::regclass = 'pg_catalog.pg_class'::regclass and c.oid = $2::oid
      union all
      select 'pg_catalog.pg_type'::regclass, t.typarray from pg_catalog.pg_type t
      where $1::regclass = 'pg_catalog.pg_type'::regclass and t.oid = $2::oid and t.typarray <> 0
    )
    select distinct case when v.oid is not null and v.relkind = 'v' then 'view'
                         when p.oid is not null then 'function'
                         when tg.oid is not null then 'trigger' else 'other' end as kind,
           case when v.oid is not null and v.relkind = 'v' then format('"%s"."%s"', vn.nspname, v.relname)
                when p.oid is not null then format('%I.%I(%s)', pn.nspname, p.proname,
                  pg_catalog.pg_get_function_identity_arguments(p.oid))
                when tg.oid is not null then format('%I on %I.%I', tg.tgname, tn.nspname, tc.relname)
                else pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) end as name,
           coalesce(v.oid, p.oid, d.objid)::int as oid
    from pg_catalog.pg_depend d join refs on d.refclassid = refs.refclassid and d.refobjid = refs.refobjid
    left join pg_catalog.pg_rewrite r on d.classid = 'pg_catalog.pg_rewrite'::regclass and r.oid = d.objid
    left join pg_catalog.pg_class v on v.oid = r.ev_class
    left join pg_catalog.pg_namespace vn on vn.oid = v.relnamespace
    left join pg_catalog.pg_proc p on d.classid = 'pg_catalog.pg_proc'::regclass and p.oid = d.objid
    left join pg_catalog.pg_namespace pn on pn.oid = p.pronamespace
    left join pg_catalog.pg_trigger tg on d.classid = 'pg_catalog.pg_trigger'::regclass and tg.oid = d.objid
      and not tg.tgisinternal
    left join pg_catalog.pg_class tc on tc.oid = tg.tgrelid
    left join pg_catalog.pg_namespace tn on tn.oid = tc.relnamespace
    where d.deptype = 'n'
      and not (r.oid is not null and r.ev_class = $2::oid and $1::regclass = 'pg_catalog.pg_class'::regclass)`, [`pg_catalog.${classid}`, oid]);
}

/**
 * A trigger of `sql` (`"name" on "schema"."table"`) as `target` defines it, dropped first so that it
 * applies twice (a constraint trigger has no OR REPLACE); null when `sql` has no such trigger.
 */
async function triggerDefinition(sql: Sql, name: string): Promise<string | null> {
  return sql.begin(async (tx) => {
    await tx.unsafe(`set local search_path = ''`);
    const [row] = await tx.unsafe<{ definition: string }[]>(`
      select pg_catalog.pg_get_triggerdef(t.oid) as definition
      from pg_catalog.pg_trigger t join pg_catalog.pg_class c on c.oid = t.tgrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where format('%I on %I.%I', t.tgname, n.nspname, c.relname) = $1 and not t.tgisinternal`, [name]);
    return row ? `drop trigger if exists ${name};\n${row.definition};` : null;
  });
}

/** A view of `sql` as `create or replace view` with its options, every name qualified; null when it has none. */
async function viewDefinition(sql: Sql, name: string): Promise<string | null> {
  return sql.begin(async (tx) => {
    await tx.unsafe(`set local search_path = ''`);
    const [row] = await tx.unsafe<{ options: string[] | null; definition: string }[]>(`
      select c.reloptions as options, pg_catalog.pg_get_viewdef(c.oid) as definition
      from pg_catalog.pg_class c where c.oid = pg_catalog.to_regclass($1) and c.relkind = 'v'`, [name]);
    if (!row) return null;
    const options = row.options?.length ? ` with (${row.options.map(optionText).join(", ")})` : "";
    return `create or replace view ${name}${options} as ${row.definition.trim().replace(/;$/, "")};`;
  });
}

/** Refuses statements that would drop or rewrite the owner's tables' data. */
export function refuseOwnersData(statements: string[]): void {
  const owners = ADOPTED_TABLES.map((t) => t.replace(/^public\./, ""));
  const tableOf = (s: string) => {
    const m = /^(?:drop table(?: if exists)?|alter table(?: only)?) (?:"public"\.|public\.)"?(\w+)"?/i.exec(s);
    return m && owners.includes(m[1]!) ? m[1]! : null;
  };
  const refused = statements.filter((s) => {
    const table = tableOf(s);
    return table !== null && (/^drop table/i.test(s) || /\bdrop column\b/i.test(s) || /\balter column \S+ (set data )?type\b/i.test(s));
  });
  if (refused.length) {
    throw new OwnersDataRefused(
      "refused: this change would drop or rewrite data in the owner's tables (" + owners.join(", ") + "):\n  " +
      refused.join("\n  ") + "\nKeep the column or table in supabase/schemas, or write that migration by hand " +
      "(supabase/MIGRATIONS.md).",
    );
  }
}

interface ObjectState {
  kind: "function" | "procedure" | "table" | "sequence" | "view" | "type";
  acl: string | null;
  /** [grantee ('public' or a quoted role), privilege, grantable] in the ACL's order, the owner left out. */
  grants: [string, string, boolean][];
  comment: string | null;
  /** Functions and procedures: pg_get_functiondef and the result type; relations: reloptions, RLS, column comments. */
  definition?: string;
  result?: string;
  options?: string[] | null;
  rls?: boolean;
  forceRls?: boolean;
  columnComments?: [string, string | null][];
}

/**
 * Every function, procedure and relation of the public schema, by qualified name (routines with their arguments),
 * read with an empty search_path so that every type in a name or definition is qualified too.
 */
async function objectStates(sql: Sql): Promise<Map<string, ObjectState>> {
  return sql.begin(async (tx) => {
    await tx.unsafe("set local search_path = ''");
    return readObjectStates(tx as unknown as Sql);
  });
}

async function readObjectStates(sql: Sql): Promise<Map<string, ObjectState>> {
  const states = new Map<string, ObjectState>();
  const grantsOf = (acl: string, owner: string) => `
    (select coalesce(json_agg(json_build_array(case when a.grantee = 0 then 'public' else quote_ident(a.grantee::regrole::text) end,
                                               a.privilege_type, a.is_grantable) order by a.n), '[]')
     from aclexplode(${acl}) with ordinality as a(grantor, grantee, privilege_type, is_grantable, n)
     where a.grantee <> ${owner})`;
  for (const { procedure, ...f } of await sql.unsafe<{ name: string; procedure: boolean; acl: string | null;
    grants: [string, string, boolean][]; comment: string | null; definition: string; result: string }[]>(`
    select format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as name,
           p.prokind = 'p' as procedure, p.proacl::text as acl, ${grantsOf(`coalesce(p.proacl, acldefault('f'::"char", p.proowner))`, "p.proowner")} as grants,
           obj_description(p.oid, 'pg_proc') as comment, pg_get_functiondef(p.oid) as definition,
           pg_get_function_result(p.oid) as result
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.prokind in ('f', 'p')`)) {
    states.set(f.name, { kind: procedure ? "procedure" : "function", ...f });
  }
  for (const r of await sql.unsafe<{ name: string; relkind: string; acl: string | null; grants: [string, string, boolean][];
    comment: string | null; options: string[] | null; rls: boolean; force_rls: boolean; columns: [string, string | null][] }[]>(`
    select format('%I.%I', n.nspname, c.relname) as name, c.relkind, c.relacl::text as acl,
           ${grantsOf(`coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner))`, "c.relowner")} as grants,
           case when c.relkind = 'c' then obj_description(c.reltype, 'pg_type') else obj_description(c.oid, 'pg_class') end
             as comment, c.reloptions as options,
           c.relrowsecurity as rls, c.relforcerowsecurity as force_rls,
           (select coalesce(json_agg(json_build_array(a.attname, col_description(c.oid, a.attnum)) order by a.attnum), '[]')
            from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'c')`)) {
    const kind = r.relkind === "S" ? "sequence" : r.relkind === "v" || r.relkind === "m" ? "view" : r.relkind === "c" ? "type" : "table";
    states.set(r.name, { kind, acl: r.acl, grants: r.grants, comment: r.comment, options: r.options, rls: r.rls,
      forceRls: r.force_rls, columnComments: r.columns });
  }
  return states;
}

/**
 * Statements that give each function and relation of `from` the grants, options, RLS, comments and
 * definition it has in `target`, only where they differ; applied to `from` as they are written.
 */
export async function alignAccessAndOptions(from: Sql, target: Sql): Promise<string[]> {
  const [have, want] = await Promise.all([objectStates(from), objectStates(target)]);
  const out: string[] = [];
  for (const [name, goal] of [...want].sort(([a], [b]) => a.localeCompare(b))) {
    const now = have.get(name);
    const grantKind = goal.kind === "sequence" || goal.kind === "function" || goal.kind === "procedure" ? goal.kind : "table";
    const routine = goal.kind === "function" || goal.kind === "procedure";
    let recreated = !now;
    if (routine && (!now || now.definition !== goal.definition)) {
      // CREATE OR REPLACE cannot change a result type: drop first (which resets the grants below).
      if (now && now.result !== goal.result) {
        out.push(`drop ${goal.kind} if exists ${name};`);
        recreated = true;
      }
      out.push(`${goal.definition!.trim()};`);
    }
    // (A composite type's comments only: its grants are the type's, which the schema files never set.)
    if (goal.kind !== "type" && (recreated || now!.acl !== goal.acl)) {
      // Revoked from the target's grantees too: applied again, the grants then come back in the same order.
      const holders = new Set(["public", "anon", "authenticated", ...[...now?.grants ?? [], ...goal.grants].map(([grantee]) => grantee)]);
      out.push(`revoke all on ${grantKind} ${name} from ${[...holders].join(", ")};`);
      out.push(...grantStatements(grantKind, name, goal.grants));
    }
    if (goal.kind === "view" || goal.kind === "table") {
      const options = goal.options ?? [];
      const dropped = (now?.options ?? []).map((o) => o.split("=")[0]!).filter((k) => !options.some((o) => o.startsWith(`${k}=`)));
      if (JSON.stringify(now?.options ?? []) !== JSON.stringify(options)) {
        const alter = goal.kind === "view" ? "alter view" : "alter table";
        if (dropped.length) out.push(`${alter} ${name} reset (${dropped.join(", ")});`);
        if (options.length) out.push(`${alter} ${name} set (${options.map(optionText).join(", ")});`);
      }
    }
    if (goal.kind === "table") {
      if (now?.rls !== goal.rls) out.push(`alter table ${name} ${goal.rls ? "enable" : "disable"} row level security;`);
      if (now?.forceRls !== goal.forceRls) out.push(`alter table ${name} ${goal.forceRls ? "" : "no "}force row level security;`);
    }
    if (now?.comment !== goal.comment) out.push(`comment on ${goal.kind} ${name} is ${literal(goal.comment)};`);
    const before = new Map(now?.columnComments ?? []);
    for (const [column, comment] of goal.columnComments ?? []) {
      if ((before.get(column) ?? null) !== comment) out.push(`comment on column ${name}.${quoteIdent(column)} is ${literal(comment)};`);
    }
  }
  for (const [name, state] of have) {
    if ((state.kind === "function" || state.kind === "procedure") && !want.has(name)) out.push(`drop ${state.kind} if exists ${name};`);
  }
  return out;
}

function grantStatements(kind: string, name: string, grants: [string, string, boolean][]): string[] {
  const byGrantee = new Map<string, { privileges: string[]; grantable: string[] }>();
  for (const [grantee, privilege, grantable] of grants) {
    const entry = byGrantee.get(grantee) ?? { privileges: [], grantable: [] };
    (grantable ? entry.grantable : entry.privileges).push(privilege.toLowerCase());
    byGrantee.set(grantee, entry);
  }
  const out: string[] = [];
  for (const [grantee, { privileges, grantable }] of byGrantee) {
    if (privileges.length) out.push(`grant ${privileges.join(", ")} on ${kind} ${name} to ${grantee};`);
    if (grantable.length) out.push(`grant ${grantable.join(", ")} on ${kind} ${name} to ${grantee} with grant option;`);
  }
  return out;
}

function optionText(option: string): string {
  const i = option.indexOf("=");
  return `${option.slice(0, i)}=${literal(option.slice(i + 1))}`;
}

function literal(text: string | null): string {
  return text === null ? "null" : `'${text.replaceAll("'", "''")}'`;
}

/** `<UTC yyyymmddhhmmss>_<name>.sql`, later than every migration in `dir`. */
export async function nextMigrationFile(name: string, dir = migrationsDir, now = new Date()): Promise<string> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`a migration's name is lower case letters, digits and _ (got '${name}')`);
  let version = now.toISOString().replace(/\D/g, "").slice(0, 14);
  const last = (await listMigrations(dir)).at(-1)?.version;
  if (last && version <= last) version = String(BigInt(last) + 1n);
  return path.join(dir, `${version}_${name}.sql`);
}

/** Writes the migration into `dir`, returning its path. */
export async function writeMigration(name: string, sql: string, dir = migrationsDir): Promise<string> {
  const file = await nextMigrationFile(name, dir);
  await writeFile(file, sql);
  return file;
}

