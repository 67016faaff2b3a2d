// The pg_cron schedule for real: pg_cron can only live in the server's cron.database_name
// (`postgres` on this test server, as on Supabase), which the template does not cover, so this file
// migrates that database itself (it is throwaway). Needs pg_cron installed and preloaded: without it
// these tests fail, they are never skipped.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigration, connect, listMigrations, migrationsDir, prepareDatabase, type Sql } from "../../shared/db/migrate.ts";
import { freshDatabase, testServer } from "../support/test-database.ts";
import { runMaintenance } from "../../supabase/functions/maintenance/run.ts";
import { createPgMaintenanceStore } from "../../supabase/functions/maintenance/store.ts";

const JOB = "eve-gateway-housekeeping";
const FUNCTION_JOB = "eve-gateway-maintenance";
const VACUUM_JOB = "eve-gateway-counters-vacuum";
const SCHEDULE_MIGRATION = path.join(migrationsDir, "20261122000200_rows_and_schedule.sql");

let sql: Sql;

beforeAll(async () => {
  const { serverUrl, pgCron } = testServer();
  expect(pgCron, "pg_cron must be installed and preloaded (the first `npm test` installs it into the embedded PostgreSQL 17: shared/db/embedded-extensions.ts)").toBe(true);
  await prepareDatabase(serverUrl);
  sql = connect(serverUrl, { max: 4 });
});

afterAll(async () => {
  await sql?.end({ timeout: 5 });
});

async function job(name: string) {
  return sql<{ jobid: string; schedule: string; command: string; database: string; active: boolean }[]>`
    select jobid, schedule, command, database, active from cron.job where jobname = ${name}`;
}

/** The job's first run after run id `after` to end, or undefined when none ended within `ms`. */
async function nextRun(jobid: string, after: string, ms: number) {
  const deadline = Date.now() + ms;
  let run: { status: string; return_message: string } | undefined;
  while (Date.now() < deadline && run === undefined) {
    await new Promise((r) => setTimeout(r, 1000));
    [run] = await sql<{ status: string; return_message: string }[]>`
      select status, return_message from cron.job_run_details
      where jobid = ${jobid} and runid > ${after}::bigint and status in ('succeeded', 'failed') order by runid limit 1`;
  }
  return run;
}

describe("the housekeeping job in pg_cron", () => {
  it("exists in the cron database, hourly at :17, running google_ai_housekeeping()", async () => {
    expect(await job(JOB)).toEqual([
      { jobid: expect.any(String), schedule: "17 * * * *", command: "select public.google_ai_housekeeping()", database: "postgres", active: true },
    ]);
  });

  it("its command does the housekeeping and logs the run", async () => {
    const tag = `cron-${Date.now()}`;
    await sql`insert into public.google_ai_attempts (status, caller, model, created_at)
              select 'succeeded', ${tag}, 'gemma-3-27b-it', now() - interval '31 days' from generate_series(1, 12)`;
    await sql`insert into public.google_ai_attempts (status, caller, model, created_at)
              values ('succeeded', ${tag + "-recent"}, 'gemma-3-27b-it', now() - interval '1 day')`;
    await sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
              values (${tag}, 'gemma-3-27b-it', now() - interval '1 minute', 'expired')`;
    // pg_cron's own history: an old finished run goes, a recent one stays.
    const [{ jobid }] = await job(JOB);
    const old = await sql`insert into cron.job_run_details (jobid, command, status, start_time, end_time)
      values (${jobid}, ${tag}, 'succeeded', now() - interval '8 days', now() - interval '8 days') returning runid`;
    const recent = await sql`insert into cron.job_run_details (jobid, command, status, start_time, end_time)
      values (${jobid}, ${tag}, 'succeeded', now() - interval '6 days', now() - interval '6 days') returning runid`;

    const [{ command }] = await job(JOB);
    const [row] = await sql.unsafe(command);
    const result = Object.values(row!)[0] as { status: string; log_id: number; steps: Record<string, { status: string }> };
    expect(result.status).toBe("succeeded");
    expect(result.steps.cron_history!.status).toBe("succeeded");

    expect((await sql`select count(*)::int as n from public.google_ai_attempts where caller = ${tag}`)[0]!.n).toBe(0);
    expect((await sql`select count(*)::int as n from public.google_ai_attempts where caller = ${tag + "-recent"}`)[0]!.n).toBe(1);
    expect((await sql`select count(*)::int as n from public.google_ai_cooldowns where quota_group = ${tag}`)[0]!.n).toBe(0);
    const runs = await sql`select runid from cron.job_run_details where command = ${tag}`;
    expect(runs.map((r) => r.runid)).toEqual([recent[0]!.runid]);
    expect(runs.map((r) => r.runid)).not.toContain(old[0]!.runid);

    const [log] = await sql`select operation, status, deleted_count, tables_affected, completed_at >= started_at as ordered
                            from public.google_ai_maintenance_log where id = ${result.log_id}`;
    expect(log).toMatchObject({ operation: "housekeeping", status: "succeeded", ordered: true });
    expect(log!.deleted_count).toBeGreaterThanOrEqual(14);
    expect(log!.tables_affected).toEqual(expect.arrayContaining(["google_ai_attempts", "google_ai_cooldowns", "cron.job_run_details"]));
  });

  it("is overwritten, not duplicated, when the migration that schedules it is applied again", async () => {
    const [before] = await job(JOB);
    await applyMigration(sql, (await listMigrations()).find((m) => m.name === "rows_and_schedule")!);
    const after = await job(JOB);
    expect(after).toHaveLength(1);
    expect(after[0]).toEqual(before);
    const names = await sql`select jobname from cron.job where jobname like 'eve-gateway-%' order by 1`;
    expect(names.map((r) => r.jobname)).toEqual([VACUUM_JOB, JOB]);
  });

  it("runs under pg_cron's scheduler itself (a probe job with the same command, every minute)", async () => {
    const [{ jobid: hourly, command }] = await job(JOB);
    // The hourly job runs at :17: met there, one of the two runs is logged as skipped (one run at a
    // time), so it rests while the probe runs.
    await sql`select cron.alter_job(${hourly}::bigint, active := false)`;
    const [{ max }] = await sql`select coalesce(max(id), 0)::int as max from public.google_ai_maintenance_log`;
    const [{ jobid }] = await sql`select cron.schedule('probe-eve-housekeeping', '* * * * *', ${command}) as jobid`;
    try {
      // pg_cron starts a job at a minute's start once its job cache has reloaded: a job scheduled just
      // before one may wait for the next, and on a loaded machine the run takes seconds of its own.
      const run = await nextRun(jobid, "0", 140_000);
      expect(run, "pg_cron did not run the probe job within 140 s").toBeDefined();
      expect(run).toEqual({ status: "succeeded", return_message: "1 row" });
      const logs = await sql`select operation, status from public.google_ai_maintenance_log where id > ${max}`;
      expect(logs).toContainEqual({ operation: "housekeeping", status: "succeeded" });
    } finally {
      await sql`select cron.unschedule(${jobid}::bigint)`;
      await sql`select cron.alter_job(${hourly}::bigint, active := true)`;
    }
  }, 160_000);
});

describe("the counter rows' vacuum in pg_cron", () => {
  it("exists in the cron database, every 10 seconds, vacuuming google_ai_usage_counters", async () => {
    expect(await job(VACUUM_JOB)).toEqual([{
      jobid: expect.any(String),
      schedule: "10 seconds",
      command: "vacuum (skip_locked) public.google_ai_usage_counters",
      database: "postgres",
      active: true,
    }]);
  });

  it("runs under pg_cron's scheduler: the counter table is vacuumed", async () => {
    const [{ jobid }] = await job(VACUUM_JOB);
    const vacuums = async () => (await sql<{ n: number }[]>`
      select vacuum_count::int as n from pg_stat_user_tables where relid = 'public.google_ai_usage_counters'::regclass`)[0]!.n;
    const before = await vacuums();
    const [{ max }] = await sql`select coalesce(max(runid), 0)::text as max from cron.job_run_details where jobid = ${jobid}`;
    expect(await nextRun(jobid, max, 60_000), "pg_cron did not run the vacuum within 60 s").toEqual({ status: "succeeded", return_message: "VACUUM" });
    // VACUUM (SKIP_LOCKED) answers VACUUM with a warning when it skips the table: the table's own count
    // says it was vacuumed (the job's backend reports it when it ends).
    await expect.poll(vacuums, { timeout: 10_000 }).toBeGreaterThan(before);
  }, 80_000);
});

describe("the maintenance function job (pg_net + Vault)", () => {
  // pg_net and Vault have no Debian packages. Where they are missing, stand-ins with their names and
  // signatures are created inside a transaction that is rolled back, so nothing stays behind (and a
  // database with the real extensions is used as it is: the request is only queued, then rolled back).
  it("is scheduled where both exist, and calls <functions url>/maintenance with the key from Vault", async () => {
    const tx = await sql.reserve();
    try {
      await tx`begin`;
      const [{ net, vault }] = await tx`
        select to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null as net,
               to_regprocedure('vault.create_secret(text, text, text, uuid)') is not null as vault`;
      if (!net) {
        await tx.unsafe(`
          create schema net;
          create table net.http_request_queue (id bigserial primary key, method text, url text, headers jsonb,
            body bytea, timeout_milliseconds int);
          create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
            headers jsonb default '{"Content-Type": "application/json"}', timeout_milliseconds int default 1000)
          returns bigint language sql as $$
            insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
            values ('POST', url, headers, convert_to(body::text, 'UTF8'), timeout_milliseconds) returning id $$;`).simple();
      }
      if (!vault) {
        await tx.unsafe(`
          create schema vault;
          create table vault.secrets (id uuid primary key default gen_random_uuid(), name text unique, secret text,
            description text, created_at timestamptz not null default now());
          create view vault.decrypted_secrets as select id, name, description, secret, secret as decrypted_secret, created_at from vault.secrets;
          create function vault.create_secret(new_secret text, new_name text default null, new_description text default '',
            new_key_id uuid default null) returns uuid language sql as $$
            insert into vault.secrets (name, secret, description) values (new_name, new_secret, new_description) returning id $$;`).simple();
      }
      await tx.unsafe(await readFile(SCHEDULE_MIGRATION, "utf8")).simple();
      const jobs = await tx`select schedule, command from cron.job where jobname = ${FUNCTION_JOB}`;
      expect(jobs).toEqual([{ schedule: "47 */6 * * *", command: "select public.google_ai_invoke_maintenance_function()" }]);
      expect((await tx`select schedule from cron.job where jobname = ${JOB}`)).toEqual([{ schedule: "17 * * * *" }]);
      // With pg_net and Vault, the maintenance function's job is expected too, and found.
      expect(await tx`select job, present from public.google_ai_cron_jobs()`).toEqual([
        { job: VACUUM_JOB, present: true }, { job: JOB, present: true }, { job: FUNCTION_JOB, present: true }]);

      await tx`select vault.create_secret('http://127.0.0.1:9/functions/v1', 'eve_gateway_functions_url')`;
      await tx`select vault.create_secret('sb_secret_cron_test', 'eve_gateway_service_key')`;
      const [row] = await tx.unsafe(jobs[0]!.command);
      const requestId = Object.values(row!)[0];
      const [request] = await tx`select url, headers, convert_from(body, 'UTF8')::jsonb as body
                                 from net.http_request_queue where id = ${requestId as string}`;
      expect(request!.url).toBe("http://127.0.0.1:9/functions/v1/maintenance");
      expect(request!.headers).toMatchObject({ authorization: "Bearer sb_secret_cron_test", apikey: "sb_secret_cron_test" });
      expect(request!.body).toEqual({ housekeeping: false, source: "pg_cron" });
    } finally {
      await tx`rollback`;
      tx.release();
    }
    expect(await job(FUNCTION_JOB)).toEqual([]);
  });
});

describe("a job that is not scheduled is seen", () => {
  /** The metric's samples: job -> 1 missing, 0 present. */
  async function missingMetric(q: Sql) {
    const rows = await q<{ labels: string; value: string }[]>`
      select labels, value::text as value from public.google_ai_metrics() where family = 'eve_gateway_cron_job_missing'
      order by labels`;
    return Object.fromEntries(rows.map((r) => [r.labels, Number(r.value)]));
  }

  it("finds every expected job after the migrations: the metric says 0 for each", async () => {
    expect(await sql`select job, present from public.google_ai_cron_jobs()`).toEqual([
      { job: VACUUM_JOB, present: true }, { job: JOB, present: true }]);
    expect(await missingMetric(sql)).toEqual({ [`job="${VACUUM_JOB}"`]: 0, [`job="${JOB}"`]: 0 });
  });

  it("names one unscheduled as missing, to the functions' role, in the metric and the maintenance run's answer", async () => {
    const tx = await sql.reserve();
    try {
      await tx`begin`;
      await tx`select cron.unschedule(${JOB})`;
      // A hosted project's postgres administers the roles it made but is no member of them: it takes
      // the functions' role for this transaction only (the grant goes with the rollback).
      await tx`grant eve_gateway to current_user with inherit false, set true`;
      await tx`set local role eve_gateway`;
      expect(await missingMetric(tx)).toEqual({ [`job="${VACUUM_JOB}"`]: 0, [`job="${JOB}"`]: 1 });
      const store = createPgMaintenanceStore({ run: (_what, work) => work(tx as unknown as Sql) });
      const summary = await runMaintenance({ store, providers: {} }, { housekeeping: false, keys: false, dryRun: false, caller: "test" });
      expect(summary.schedule).toMatchObject({ status: "checked", missing: [JOB] });
      expect(summary.problems.join("\n")).toContain(`pg_cron job ${JOB} (17 * * * *) is not scheduled`);
    } finally {
      await tx`rollback`;
      tx.release();
    }
    expect(await job(JOB)).toHaveLength(1);
  });

  it("leaves the jobs unscheduled, not the migration stopped, for a role that may not read cron.database_name", async () => {
    // A database without pg_cron (pg_cron lives in `postgres` only) and a role without pg_read_all_settings,
    // as a hosted project's migration role may be: the setting cannot be read, the schedule's block goes on.
    const db = await freshDatabase("cron_unreadable");
    const role = `eve_no_settings_${Math.random().toString(16).slice(2, 10)}`;
    const schedule = await readFile(SCHEDULE_MIGRATION, "utf8");
    const block = schedule.slice(schedule.lastIndexOf("\ndo $$") + 1);
    expect(block).toMatch(/^do \$\$[\s\S]*cron\.database_name[\s\S]*\$\$;\s*$/);
    await db.sql.unsafe(`create role ${role}`);
    // Its maker (postgres, not a superuser) may administer it but not become it until it says so.
    await db.sql.unsafe(`grant ${role} to current_user with inherit false, set true`);
    try {
      const asRole = async (statement: string) => {
        const tx = await db.sql.reserve();
        try {
          await tx.unsafe(`begin; set local role ${role}`).simple();
          return await tx.unsafe(statement).simple();
        } finally {
          await tx.unsafe("rollback").simple();
          tx.release();
        }
      };
      await expect(asRole(`select pg_catalog.current_setting('cron.database_name', true)`))
        .rejects.toThrow(/permission denied to examine "cron.database_name"/);
      await expect(asRole(block)).resolves.toBeDefined();
      expect(await db.sql`select job, present from public.google_ai_cron_jobs()`).toEqual([
        { job: VACUUM_JOB, present: false }, { job: JOB, present: false }]);
      expect(await missingMetric(db.sql)).toEqual({ [`job="${VACUUM_JOB}"`]: 1, [`job="${JOB}"`]: 1 });
    } finally {
      await db.sql.unsafe(`drop role ${role}`);
      await db.drop();
    }
  });
});
