// Every function body checked once the whole schema is loaded. The schema files are applied with
// `check_function_bodies = off` (a function may name one defined further down), so nothing would
// parse a body until its first call. Here each function of the public schema goes through its
// language's validator with the check on and its own settings (search_path = '' for most), as
// CREATE FUNCTION would have checked it: a SQL-language body is parsed and analysed whole (a misspelt
// table or column fails), a PL/pgSQL body is compiled (its syntax and the syntax of every SQL
// statement in it; the names inside PL/pgSQL statements are resolved only when they run, which
// plpgsql_check would do, and no build of it exists here for PostgreSQL 17).
import type { Sql } from "./migrate.ts";

/** A body that does not compile: the function, the line of its body (from 1), PostgreSQL's words. */
export interface BrokenBody {
  name: string;
  line: number | null;
  message: string;
}

/** The function bodies that fail their validator, each named with its line; empty when all compile. */
export async function brokenFunctionBodies(sql: Sql): Promise<BrokenBody[]> {
  const functions = await sql.unsafe<{ oid: number; name: string; validator: string; config: string[] | null; source: string }[]>(`
    select p.oid::int as oid, p.oid::regprocedure::text as name, l.lanvalidator::regproc::text as validator,
           p.proconfig as config, p.prosrc as source
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    join pg_catalog.pg_language l on l.oid = p.prolang
    where n.nspname = 'public' and l.lanvalidator <> 0 and l.lanname in ('sql', 'plpgsql')
    order by 2`);
  const broken: BrokenBody[] = [];
  for (const f of functions) {
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe("set local check_function_bodies = on");
        for (const setting of f.config ?? []) {
          const at = setting.indexOf("=");
          await tx`select pg_catalog.set_config(${setting.slice(0, at)}, ${setting.slice(at + 1)}, true)`;
        }
        await tx.unsafe(`select ${f.validator}(${f.oid})`);
      });
    } catch (err) {
      broken.push({ name: `public.${f.name.replace(/^public\./, "")}`, line: lineOf(err, f.source), message: (err as Error).message });
    }
  }
  return broken;
}

/** The body's line an error points at: PL/pgSQL's "near line N", else its position in the body. */
function lineOf(err: unknown, source: string): number | null {
  const e = err as { where?: string; internal_position?: string; position?: string; internal_query?: string };
  const near = /near line (\d+)/.exec(e.where ?? "");
  if (near) return Number(near[1]);
  const position = Number(e.internal_position ?? NaN);
  if (Number.isFinite(position) && position > 0) {
    return ((e.internal_query ?? source).slice(0, position - 1).match(/\n/g)?.length ?? 0) + 1;
  }
  return null;
}

/** One line per broken body: `public.f(args) line N: message`. */
export function describeBrokenBodies(broken: BrokenBody[]): string {
  return broken.map((b) => `${b.name}${b.line === null ? "" : ` line ${b.line}`}: ${b.message}`).join("\n  ");
}

/** Thrown when bodies do not compile; its message names each function and line. */
export class BrokenFunctionBodies extends Error {
  constructor(readonly broken: BrokenBody[]) {
    super(`function bodies that do not compile (the line counts from the body's first line):\n  ${describeBrokenBodies(broken)}`);
  }
}

/** Throws BrokenFunctionBodies when any body fails its validator. */
export async function checkFunctionBodies(sql: Sql): Promise<void> {
  const broken = await brokenFunctionBodies(sql);
  if (broken.length) throw new BrokenFunctionBodies(broken);
}
