// The SQL/TypeScript contract: every RPC the functions' stores call is called with named arguments,
// and each name exists on that function in pg_proc, with every parameter that has no default passed.
// A parameter renamed on either side — in a migration or in a store — fails here, not in production.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

interface RpcCall {
  file: string;
  fn: string;
  /** Named arguments in the order written; empty for a call without arguments. */
  names: string[];
  /** Arguments given without a name. */
  positional: number;
}

interface Signature {
  names: string[];
  required: number;
}

/** The text of a call's argument list, `${…}` holes blanked out (they may hold parentheses). */
function argumentText(source: string, open: number): string {
  let depth = 0;
  let out = "";
  for (let i = open; i < source.length; i++) {
    const c = source[i]!;
    if (c === "$" && source[i + 1] === "{") {
      let braces = 0;
      for (; i < source.length; i++) {
        if (source[i] === "{") braces++;
        else if (source[i] === "}" && --braces === 0) break;
      }
      out += "?";
      continue;
    }
    if (c === "(") depth++;
    if (c === ")" && --depth === 0) return out.slice(1);
    out += c;
  }
  throw new Error("unbalanced call");
}

function rpcCalls(file: string, text: string): RpcCall[] {
  const calls: RpcCall[] = [];
  // Comments name RPCs too ("google_ai_housekeeping()'s answer"): only code counts.
  const source = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of source.matchAll(/public\.(google_ai_\w+)\(/g)) {
    const args = argumentText(source, m.index! + m[0].length - 1).trim();
    const parts = args === "" ? [] : splitTopLevel(args);
    const names = parts.flatMap((p) => /^\s*(p_\w+)\s*=>/.exec(p)?.[1] ?? []);
    calls.push({ file, fn: m[1]!, names, positional: parts.length - names.length });
  }
  return calls;
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const c of text) {
    if (c === "(" || c === "[") depth++;
    if (c === ")" || c === "]") depth--;
    if (c === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function problems(calls: RpcCall[], signatures: Map<string, Signature>): string[] {
  const out: string[] = [];
  for (const c of calls) {
    const where = `${c.file}: ${c.fn}`;
    const sig = signatures.get(c.fn);
    if (sig === undefined) {
      out.push(`${where}: no such function`);
      continue;
    }
    if (c.positional > 0) out.push(`${where}: ${c.positional} argument(s) without a name`);
    for (const n of c.names) if (!sig.names.includes(n)) out.push(`${where}: no parameter ${n}`);
    for (const n of sig.names.slice(0, sig.required)) if (!c.names.includes(n)) out.push(`${where}: required ${n} not passed`);
  }
  return out;
}

function storeFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return storeFiles(full);
    return /(^|-)store\.ts$/.test(name) ? [full] : [];
  });
}

let db: TestDatabase;
let signatures: Map<string, Signature>;
const calls = storeFiles(path.join(repoRoot, "supabase", "functions")).flatMap((f) =>
  rpcCalls(path.relative(repoRoot, f), readFileSync(f, "utf8"))
);

beforeAll(async () => {
  db = await freshDatabase("rpc_signatures");
  const rows = await db.sql<{ name: string; args: string[] | null; nargs: number; ndefaults: number }[]>`
    select p.proname as name, p.proargnames as args, p.pronargs as nargs, p.pronargdefaults as ndefaults
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.proname like 'google\\_ai\\_%'`;
  signatures = new Map(rows.map((r) => [r.name, {
    // proargnames also lists OUT/TABLE columns after the inputs: keep the inputs only.
    names: (r.args ?? []).slice(0, r.nargs),
    required: r.nargs - r.ndefaults,
  }]));
});

afterAll(async () => {
  await db?.drop();
});

describe("RPC signatures", () => {
  it("finds the calls of all three functions' stores", () => {
    const fns = new Set(calls.map((c) => c.fn));
    // One reservation entry: the steps under it are not the functions' to call.
    for (const step of ["google_ai_admit_at", "google_ai_fall_back_at", "google_ai_reserve_models_at"]) {
      expect(fns, step).not.toContain(step);
    }
    for (const fn of ["google_ai_reserve_call", "google_ai_quota_report",
      "google_ai_model_traits", "google_ai_model_list", "google_ai_finalize", "google_ai_finalize_call", "google_ai_release",
      "google_ai_end_request", "google_ai_check_token", "google_ai_mint_token", "google_ai_housekeeping",
      "google_ai_record_key_check", "google_ai_log_maintenance_run", "google_ai_metrics",
      "google_ai_model_lifecycle_review"]) {
      expect(fns, fn).toContain(fn);
    }
  });

  it("no function but an entry takes more than 8 parameters: records pass between the kernel's steps", async () => {
    const wide = await db.sql<{ name: string }[]>`select distinct p.proname as name from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.pronargs > 8 order by 1`;
    // The functions' entries; the kernel's (google_ai_reserve_models, which google_ai_reserve_call runs
    // with the same arguments); the clients script's (scripts/clients.ts).
    const entries = new Set([...calls.map((c) => c.fn), "google_ai_reserve_models", "google_ai_create_client"]);
    expect(wide.map((w) => w.name).filter((name) => !entries.has(name))).toEqual([]);
  });

  it("finalize has one entry, google_ai_finalize(p_reservation_id, p_outcome jsonb): its former signatures are gone", async () => {
    const finalizes = await db.sql<{ signature: string }[]>`
      select p.oid::regprocedure::text as signature from pg_proc p
      where p.pronamespace = 'public'::regnamespace
        and p.proname in ('google_ai_finalize', 'google_ai_finalize_cut', 'google_ai_finalize_withdrawn',
                          'google_ai_former_outcome')
      order by 1`;
    expect(finalizes.map((f) => f.signature)).toEqual(["google_ai_finalize(uuid,jsonb)"]);
    expect(signatures.get("google_ai_finalize")).toEqual({ names: ["p_reservation_id", "p_outcome"], required: 2 });
  });

  it("every call names its arguments, and every name matches pg_proc", () => {
    expect(problems(calls, signatures)).toEqual([]);
  });

  it("reports a renamed parameter on either side, and a call without names", () => {
    const store = rpcCalls("a-store.ts", "sql`select public.google_ai_release(p_reservation => ${id}::uuid, p_reason => ${'x'})`");
    expect(problems(store, signatures)).toEqual([
      "a-store.ts: google_ai_release: no parameter p_reservation",
      "a-store.ts: google_ai_release: required p_reservation_id not passed",
    ]);
    const renamedInSql = new Map(signatures).set("google_ai_release", { names: ["p_attempt_id", "p_reason"], required: 1 });
    const real = rpcCalls("pg-store.ts", "sql`select public.google_ai_release(p_reservation_id => ${id}, p_reason => ${r})`");
    expect(problems(real, renamedInSql)).toContain("pg-store.ts: google_ai_release: no parameter p_reservation_id");
    expect(problems(rpcCalls("s.ts", "public.google_ai_end_request(${id}::uuid)"), signatures))
      .toEqual([
        "s.ts: google_ai_end_request: 1 argument(s) without a name",
        "s.ts: google_ai_end_request: required p_reservation_id not passed",
      ]);
  });
});
