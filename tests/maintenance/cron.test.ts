// The pg_cron schedule for real: pg_cron can only live in the server's cron.database_name
// (`postgres` on this test server, as on Supabase), which the template does not cover, so this file
// migrates that database itself (it is throwaway). Needs pg_cron installed and preloaded: without it
// these tests fail, they are never skipped.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigration, connect, listMigrations, migrationsDir, prepareDatabase, type Sql } from "../../shared/db/migrate.ts";
import { testServer } from "../support/test-database.ts";

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
    const [{ command }] = await job(JOB);
    const [{ max }] = await sql`select coalesce(max(id), 0)::int as max from public.google_ai_maintenance_log`;
    const [{ jobid }] = await sql`select cron.schedule('probe-eve-housekeeping', '* * * * *', ${command}) as jobid`;
    try {
      let run: { status: string; return_message: string } | undefined;
      // pg_cron starts a job at a minute's start once its job cache has reloaded: a job scheduled just
      // before one may wait for the next, and on a loaded machine the run takes seconds of its own.
      const deadline = Date.now() + 140_000;
      while (Date.now() < deadline && run === undefined) {
        await new Promise((r) => setTimeout(r, 1000));
        [run] = await sql<{ status: string; return_message: string }[]>`
          select status, return_message from cron.job_run_details
          where jobid = ${jobid} and status in ('succeeded', 'failed') order by runid limit 1`;
      }
      expect(run, "pg_cron did not run the probe job within 140 s").toBeDefined();
      expect(run).toEqual({ status: "succeeded", return_message: "1 row" });
      const logs = await sql`select operation, status from public.google_ai_maintenance_log where id > ${max}`;
      expect(logs).toContainEqual({ operation: "housekeeping", status: "succeeded" });
    } finally {
      await sql`select cron.unschedule(${jobid}::bigint)`;
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
    const [{ max }] = await sql`select coalesce(max(runid), 0)::text as max from cron.job_run_details where jobid = ${jobid}`;
    let run: { status: string; return_message: string } | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && run === undefined) {
      await new Promise((r) => setTimeout(r, 1000));
      [run] = await sql<{ status: string; return_message: string }[]>`
        select status, return_message from cron.job_run_details
        where jobid = ${jobid} and runid > ${max}::bigint and status in ('succeeded', 'failed') order by runid limit 1`;
    }
    expect(run, "pg_cron did not run the vacuum within 60 s").toEqual({ status: "succeeded", return_message: "VACUUM" });
  }, 70_000);
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
