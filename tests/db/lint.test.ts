// `supabase db lint --fail-on error` (Supabase's CLI, which runs plpgsql_check on every PL/pgSQL
// function of the user schemas) passes on a project built by the migrations alone, and says nothing at
// all: every warning is mended, or allowed in its function's body by name (`@plpgsql_check_options`,
// the CLI offers no other way) with the reason beside it. Without the CLI or plpgsql_check: skipped
// here, failed in CI (.ci/run installs both).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, databaseUrl, type Sql } from "../../shared/db/migrate.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { inCi } from "../support/prometheus.ts";
import { testServer } from "../support/test-database.ts";
import { cliDbUrl, runSupabase, supabaseCli } from "../support/supabase-cli.ts";

/** The functions that turn a kind of warning off, each saying why in its body. */
const ALLOWED = {
  google_ai_booking_outcome: "p_class is unused by design",
  google_ai_reserve_call: "v_setting and v_lsn are assigned and never read by design",
  google_ai_reserve_calls: "v_setting and v_lsn are assigned and never read by design",
  google_ai_housekeeping_response_cache: "p_settings and p_deadline are every housekeeping step's parameters, unused here",
  google_ai_record_admission: "v_setting is assigned and never read by design",
};

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const cli = supabaseCli();
let sql: Sql;
let url: string;
let hasPlpgsqlCheck = false;

beforeAll(async () => {
  sql = await emptySupabaseDatabase("lint", cleanups, { max: 1 });
  await applyMigrations(sql);
  const [{ db }] = await sql<{ db: string }[]>`select current_database() as db`;
  url = databaseUrl(testServer().serverUrl, db);
  hasPlpgsqlCheck = (await sql`select 1 from pg_available_extensions where name = 'plpgsql_check'`).length === 1;
});

function lint() {
  return runSupabase(["db", "lint", "--fail-on", "error", "--db-url", cliDbUrl(url)]);
}

describe.skipIf(cli === null && !inCi)("supabase db lint", () => {
  it("has the CLI (npm ci) and plpgsql_check in the engine (.ci/run)", () => {
    expect(cli, "node_modules/.bin/supabase is missing: npm ci").not.toBeNull();
    expect(hasPlpgsqlCheck, "plpgsql_check is not installed in this PostgreSQL (shared/db/embedded-extensions.ts)").toBe(true);
  });

  it("passes with --fail-on error on the migrations' database, and finds no warning either", () => {
    const r = lint();
    expect(r.stderr).toContain("Linting schema: public");
    expect(r.stdout.trim(), "the CLI's findings (JSON)").toBe("");
    expect(r.stderr).toContain("No schema errors found");
    expect(r.status, r.stderr).toBe(0);
  });

  it("passes where Vault is enabled and pg_net is not (the maintenance call reaches both by the names it found)", async () => {
    // A stand-in with Vault's names (no Debian package has it); gone again afterwards.
    await sql.unsafe(`
      create schema vault;
      create table vault.secrets (id uuid primary key, name text, secret text, created_at timestamptz);
      create view vault.decrypted_secrets as select id, name, secret as decrypted_secret, created_at from vault.secrets;`)
      .simple();
    try {
      const r = lint();
      expect(r.stdout.trim(), "the CLI's findings (JSON)").toBe("");
      expect(r.status, r.stderr).toBe(0);
    } finally {
      await sql.unsafe(`drop schema vault cascade`);
    }
  });

  it("allows a warning only by name, in the function's own body, with its reason", async () => {
    // (The one other option: the row type a polymorphic argument is checked as. It checks more, not less.)
    const typing = /-- @plpgsql_check_options: anyelementtype = public\.google_ai_\w+\n/g;
    const rows = (await sql<{ name: string; src: string }[]>`
      select p.proname as name, p.prosrc as src from pg_proc p
      where p.prosrc like '%@plpgsql_check_options%' order by 1`)
      .map((r) => ({ ...r, src: r.src.replace(typing, "") }))
      .filter((r) => r.src.includes("@plpgsql_check_options"));
    expect(rows.map((r) => r.name)).toEqual(Object.keys(ALLOWED).sort());
    for (const r of rows) {
      expect(r.src).toMatch(/-- @plpgsql_check_options: extra_warnings = off\n/);
      expect(r.src).toContain(ALLOWED[r.name as keyof typeof ALLOWED]);
    }
  });

  it("fails on a function that would fail when it runs (the check is live here)", async () => {
    await sql.unsafe(`
      create function public.lint_probe() returns text language plpgsql as $$
      declare v record;
      begin
        select 1 as a into v;
        return v.b;  -- no such field
      end $$`);
    try {
      const r = lint();
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("fail-on is set to error");
      const found = JSON.parse(r.stdout) as { function: string; issues: { level: string; message: string }[] }[];
      expect(found).toEqual([{ function: "public.lint_probe",
        issues: [expect.objectContaining({ level: "error", message: 'record "v" has no field "b"' })] }]);
    } finally {
      await sql.unsafe(`drop function public.lint_probe()`);
    }
  });
});
