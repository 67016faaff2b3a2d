// A normalised, deterministic description of what the migrations build, read from pg_catalog:
// tables, views and composite types (columns, types, defaults, NOT NULL, options, RLS, ACLs,
// comments), constraints, indexes, functions (arguments, result, language, volatility, SECURITY
// DEFINER, config, ACL, body), policies, triggers, sequences, the gateway's roles, the public
// schema's ACL, extensions and the gateway's pg_cron jobs (eve-gateway-*). No OIDs and nothing that
// depends on creation order other than column order, so two databases built the same way describe
// the same.
import type { Sql } from "./migrate.ts";

export interface SchemaDescription {
  relations: Record<string, unknown>;
  constraints: Record<string, string>;
  indexes: Record<string, string>;
  functions: Record<string, FunctionDescription>;
  policies: Record<string, unknown>;
  triggers: Record<string, string>;
  roles: Record<string, unknown>;
  schemaAcl: string | null;
  extensions: string[];
  cronJobs: Record<string, unknown>;
}

export interface FunctionDescription {
  arguments: string;
  result: string;
  language: string;
  volatility: string;
  strict: boolean;
  securityDefiner: boolean;
  leakproof: boolean;
  parallel: string;
  config: string[] | null;
  acl: string | null;
  comment: string | null;
  body: string;
}

export async function describeSchema(sql: Sql, schema = "public"): Promise<SchemaDescription> {
  const relations: Record<string, unknown> = {};
  const rels = await sql<{ name: string; kind: string; rls: boolean; force_rls: boolean; options: string[] | null;
    acl: string | null; comment: string | null; view: string | null }[]>`
    select c.relname as name, c.relkind as kind, c.relrowsecurity as rls, c.relforcerowsecurity as force_rls,
           c.reloptions as options,
           -- (A composite type's ACL and comment are its pg_type row's.)
           case when c.relkind = 'c' then t.typacl::text else c.relacl::text end as acl,
           case when c.relkind = 'c' then obj_description(t.oid, 'pg_type')
                else obj_description(c.oid, 'pg_class') end as comment,
           case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid) end as view
    from pg_class c
    left join pg_type t on t.oid = c.reltype
    where c.relnamespace = ${schema}::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    order by c.relname`;
  for (const r of rels) {
    const columns = await sql<{ name: string; type: string; not_null: boolean; default: string | null;
      identity: string; generated: string; comment: string | null }[]>`
      select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
             pg_get_expr(d.adbin, d.adrelid) as default, a.attidentity as identity, a.attgenerated as generated,
             col_description(a.attrelid, a.attnum) as comment
      from pg_attribute a
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = ${`${schema}.${r.name}`}::regclass and a.attnum > 0 and not a.attisdropped
      order by a.attnum`;
    relations[r.name] = {
      kind: r.kind, rls: r.rls, forceRls: r.force_rls, options: r.options, acl: r.acl, comment: r.comment,
      ...(r.view === null ? {} : { definition: r.view }),
      columns: columns.map((c) => [c.name, c.type, c.not_null ? "not null" : "null", c.default, c.identity,
        c.generated, c.comment]),
    };
  }

  const constraints = Object.fromEntries((await sql<{ k: string; def: string }[]>`
    select conrelid::regclass::text || ' ' || conname as k, pg_get_constraintdef(oid) as def
    from pg_constraint where connamespace = ${schema}::regnamespace order by 1`).map((r) => [r.k, r.def]));

  const indexes = Object.fromEntries((await sql<{ k: string; def: string }[]>`
    select indexname as k, indexdef as def from pg_indexes where schemaname = ${schema} order by 1`)
    .map((r) => [r.k, r.def]));

  const functions: Record<string, FunctionDescription> = {};
  for (const f of await sql<{ signature: string; arguments: string; result: string; language: string; volatility: string;
    strict: boolean; security_definer: boolean; leakproof: boolean; parallel: string; config: string[] | null;
    acl: string | null; comment: string | null; body: string }[]>`
    select p.oid::regprocedure::text as signature, pg_get_function_arguments(p.oid) as arguments,
           pg_get_function_result(p.oid) as result, l.lanname as language, p.provolatile as volatility,
           p.proisstrict as strict, p.prosecdef as security_definer, p.proleakproof as leakproof,
           p.proparallel as parallel, p.proconfig as config, p.proacl::text as acl,
           obj_description(p.oid, 'pg_proc') as comment, p.prosrc as body
    from pg_proc p join pg_language l on l.oid = p.prolang
    where p.pronamespace = ${schema}::regnamespace order by 1`) {
    const { signature, security_definer, ...rest } = f;
    functions[signature] = { ...rest, securityDefiner: security_definer };
  }

  const policies = Object.fromEntries((await sql<{ k: string; v: unknown }[]>`
    select tablename || ' ' || policyname as k,
           jsonb_build_object('permissive', permissive, 'roles', roles, 'cmd', cmd, 'qual', qual, 'with_check', with_check) as v
    from pg_policies where schemaname = ${schema} order by 1`).map((r) => [r.k, r.v]));

  const triggers = Object.fromEntries((await sql<{ k: string; def: string }[]>`
    select t.tgrelid::regclass::text || ' ' || t.tgname as k, pg_get_triggerdef(t.oid) as def
    from pg_trigger t join pg_class c on c.oid = t.tgrelid
    where c.relnamespace = ${schema}::regnamespace and not t.tgisinternal order by 1`).map((r) => [r.k, r.def]));

  // The gateway's own roles (the bootstrap's Supabase roles are not the migrations' business). Not
  // whether one may log in: that is the deployment's (gateway-role.ts turns it on for a local server),
  // and roles are the whole server's, so a test beside this one may turn it on at any moment.
  const roles = Object.fromEntries((await sql<{ name: string; v: unknown }[]>`
    select rolname as name, jsonb_build_object('inherit', rolinherit, 'bypassrls', rolbypassrls,
             'createrole', rolcreaterole, 'createdb', rolcreatedb, 'superuser', rolsuper) as v
    from pg_roles where rolname like 'eve%' order by 1`).map((r) => [r.name, r.v]));

  const [{ acl: schemaAcl }] = await sql<{ acl: string | null }[]>`
    select nspacl::text as acl from pg_namespace where nspname = ${schema}`;
  const extensions = (await sql<{ extname: string }[]>`select extname from pg_extension order by 1`).map((r) => r.extname);

  const cronJobs: Record<string, unknown> = {};
  const [{ has_cron }] = await sql<{ has_cron: boolean }[]>`select to_regclass('cron.job') is not null as has_cron`;
  if (has_cron) {
    for (const j of await sql.unsafe<{ jobname: string; schedule: string; command: string; active: boolean }[]>(
      `select jobname, schedule, command, active from cron.job
       where database = current_database() and jobname like 'eve-gateway-%' order by jobname`)) {
      cronJobs[j.jobname] = { schedule: j.schedule, command: j.command, active: j.active };
    }
  }

  return { relations, constraints, indexes, functions, policies, triggers, roles, schemaAcl, extensions, cronJobs };
}

/** What differs between two descriptions, one line per object ("functions public.f(integer)"), in order. */
export function describeDifferences(a: SchemaDescription, b: SchemaDescription): string[] {
  const out: string[] = [];
  for (const section of Object.keys(a) as (keyof SchemaDescription)[]) {
    const x = a[section], y = b[section];
    if (x !== null && y !== null && typeof x === "object" && typeof y === "object" && !Array.isArray(x)) {
      const keys = [...new Set([...Object.keys(x), ...Object.keys(y as object)])].sort();
      for (const k of keys) {
        const vx = (x as Record<string, unknown>)[k], vy = (y as Record<string, unknown>)[k];
        if (JSON.stringify(vx) === JSON.stringify(vy)) continue;
        out.push(`${section} ${k}: ${vx === undefined ? "only in the second" : vy === undefined ? "only in the first"
          : `${fieldsThatDiffer(vx, vy) || "differs"}`}`);
      }
    } else if (JSON.stringify(x) !== JSON.stringify(y)) {
      out.push(`${section}: differs`);
    }
  }
  return out;
}

function fieldsThatDiffer(x: unknown, y: unknown): string {
  if (!x || !y || typeof x !== "object" || typeof y !== "object" || Array.isArray(x)) return "";
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])];
  const fields: string[] = [];
  for (const k of keys) {
    const a = JSON.stringify((x as Record<string, unknown>)[k]), b = JSON.stringify((y as Record<string, unknown>)[k]);
    if (a === b) continue;
    // Short values are shown (grants, options, a comment); long ones (a body) only named.
    fields.push(a.length + b.length <= 400 ? `${k} ${a} vs ${b}` : k);
  }
  return fields.join(", ");
}
