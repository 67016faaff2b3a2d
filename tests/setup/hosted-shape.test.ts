// The test server is shaped as a hosted Supabase project's cluster (shared/db/supabase-cluster.sql and
// supabase-bootstrap.sql, which name the Supabase sources they follow): read as `postgres`, the role
// every test and migration runs as, it is not a superuser and holds exactly hosted `postgres`'s
// attributes and memberships; the superuser is supabase_admin; pg_stat_statements and pg_cron are there
// as the platform makes them (Supabase's CLI reads its statistics). And the count that keeps tests off
// the superuser counts what it should.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_APPLICATION, connect, superuserUrl, type Sql } from "../../shared/db/migrate.ts";
import { startPostgres } from "../../shared/db/postgres-server.ts";
import { cliDbUrl, supabase } from "../../shared/db/supabase-cli.ts";
import { freshDatabase, type TestDatabase, testServer } from "../support/test-database.ts";

let postgresDb: Sql;
let db: TestDatabase;
beforeAll(async () => {
  postgresDb = connect(testServer().serverUrl, { max: 1 });
  db = await freshDatabase("hosted_shape");
});
afterAll(async () => {
  await postgresDb?.end({ timeout: 5 });
  await db?.drop();
});

describe("the test server, as a hosted project's cluster", () => {
  it("connects tests as postgres: no superuser, hosted postgres's attributes and memberships", async () => {
    const [me] = await postgresDb`
      select current_user as name, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin,
             array(select b.rolname::text from pg_auth_members m join pg_roles b on b.oid = m.roleid
                   where m.member = r.oid order by 1) as member_of
      from pg_roles r where rolname = current_user`;
    expect(me).toEqual({
      name: "postgres", rolsuper: false, rolcreaterole: true, rolcreatedb: true, rolreplication: true, rolbypassrls: true,
      rolcanlogin: true,
      // eve_gateway: PostgreSQL 16+ makes a role's creator (postgres, running the migrations) its admin.
      member_of: ["anon", "authenticated", "eve_gateway", "pg_monitor", "pg_read_all_data", "pg_signal_backend", "service_role"],
    });
  });

  it("belongs to supabase_admin, the only superuser; the postgres database to postgres", async () => {
    expect(await postgresDb`select rolname from pg_roles where rolsuper order by 1`).toEqual([{ rolname: "supabase_admin" }]);
    expect(await postgresDb`select rolname from pg_roles where oid = 10`).toEqual([{ rolname: "supabase_admin" }]);
    expect(await postgresDb`select datdba::regrole::text as owner from pg_database where datname = 'postgres'`).toEqual([{ owner: "postgres" }]);
    await expect(postgresDb`alter system set work_mem = '8MB'`).rejects.toMatchObject({ code: "42501" });
  });

  it("has pg_stat_statements preloaded and pg_cron made, cron.job readable but written only through cron.schedule", async () => {
    const [{ calls }] = await postgresDb<{ calls: number }[]>`select count(*)::int as calls from extensions.pg_stat_statements`;
    expect(calls).toBeGreaterThan(0);
    expect(await postgresDb`select extname, extnamespace::regnamespace::text as schema from pg_extension
                            where extname in ('pg_cron', 'pg_stat_statements') order by 1`).toEqual([
      { extname: "pg_cron", schema: "pg_catalog" },
      { extname: "pg_stat_statements", schema: "extensions" },
    ]);
    await expect(postgresDb`delete from cron.job where jobname = 'none'`).rejects.toMatchObject({ code: "42501" });
  });

  it("answers `supabase inspect db outliers` and `calls` (pg_stat_statements, read as postgres)", async () => {
    for (const report of ["outliers", "calls"]) {
      const run = await supabase(["inspect", "db", report, "--db-url", cliDbUrl(db.url)]);
      expect(run.code, `inspect db ${report}: ${run.stderr}`).toBe(0);
      expect(run.stdout, report).toMatch(/Query/);
    }
  }, 60_000);

  it("has every table of the migrated template owned by postgres, which ran the migrations", async () => {
    const owners = await db.sql<{ owner: string }[]>`select distinct tableowner::text as owner from pg_tables
                                                    where schemaname in ('public', 'supabase_migrations')`;
    expect(owners).toEqual([{ owner: "postgres" }]);
  });
});

describe("the count of superuser connections", () => {
  it("counts each supabase_admin connection by its application_name, the bootstrap's apart", async () => {
    const server = await startPostgres();
    try {
      const before = server.superuserConnections()!;
      expect([...before.keys()]).toEqual([BOOTSTRAP_APPLICATION]);
      const stray = connect(superuserUrl(server.url), { max: 1 });
      await stray`select 1`.finally(() => stray.end());
      const plain = connect(server.url, { max: 1 });
      await plain`select 1`.finally(() => plain.end());
      const strays = () => [...server.superuserConnections()!].filter(([app]) => app !== BOOTSTRAP_APPLICATION);
      await expect.poll(strays).toEqual([["postgres.js", 1]]); // postgres.js names itself when not told
      expect(server.superuserConnections()!.get(BOOTSTRAP_APPLICATION)).toBe(before.get(BOOTSTRAP_APPLICATION));
    } finally {
      await server.stop();
    }
  }, 60_000);
});
